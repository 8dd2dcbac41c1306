"""CloudFormation custom resource that applies the database migrations on deploy.

Create and Update run ``aigateway.migrations.apply_all()``; Delete does nothing (the schema and its
data outlive the stack). CloudFormation is always answered, SUCCESS or FAILED, before the Lambda
timeout: a missing answer would hold the stack until the resource's ServiceTimeout. The Reason
never carries exception text (it may name hosts or users); details go to the function's log.

Invoked directly (no ResponseURL in the event, e.g. ``aws lambda invoke``), it just applies the
migrations and returns the applied names.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

from aigateway.logs import bound_request_id, configure_logging
from aigateway.settings import Settings

# The handler module is `app`, not a package module: its logger is named under the aigateway tree
# by hand so the configured level and format apply. JSON lines on Lambda.
logger = logging.getLogger("aigateway.migrate")
configure_logging(Settings.from_env())

SEND_TIMEOUT_S = 10.0
SEND_ATTEMPTS = 3
# Seconds kept back from the Lambda timeout to report a failure while apply_all() still runs.
RESERVE_S = 20.0

_running: threading.Thread | None = None


def _stack_name(event: dict[str, Any]) -> str:
    name = os.environ.get("AIGATEWAY_DEPLOYMENT_ID", "")
    if not name:
        # StackId: arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid>
        parts = str(event.get("StackId", "")).split(":")[-1].split("/")
        name = parts[1] if len(parts) > 1 else "aigateway"
    return name


def _physical_id(event: dict[str, Any]) -> str:
    # Reusing the id CloudFormation sent keeps Updates from looking like replacements.
    return str(event.get("PhysicalResourceId") or f"{_stack_name(event)}-migrations")


def _apply_with_deadline(seconds: float) -> list[str]:
    """Run apply_all() in a worker thread so a stuck migration cannot outlive the answer."""
    global _running
    if _running is not None and _running.is_alive():
        raise RuntimeError("a previous migration run is still in progress in this environment")
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            from aigateway.migrations import apply_all

            result["applied"] = list(apply_all())
        except BaseException as exc:  # reported by the caller
            result["error"] = exc

    _running = threading.Thread(target=work, name="migrations", daemon=True)
    _running.start()
    _running.join(max(seconds, 1.0))
    if _running.is_alive():
        raise TimeoutError(f"migrations still running after {seconds:.0f} s")
    if "error" in result:
        raise result["error"]
    return result["applied"]


def _send(event: dict[str, Any], status: str, reason: str, data: dict[str, Any]) -> None:
    url = str(event.get("ResponseURL", ""))
    if urlparse(url).scheme != "https":
        logger.error("not answering CloudFormation: ResponseURL is not https")
        return
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000],
            "PhysicalResourceId": _physical_id(event),
            "StackId": event.get("StackId"),
            "RequestId": event.get("RequestId"),
            "LogicalResourceId": event.get("LogicalResourceId"),
            "NoEcho": False,
            "Data": data,
        }
    ).encode()
    # The presigned S3 URL is signed without a content type: send an empty one.
    headers = {"Content-Type": "", "Content-Length": str(len(body))}
    for attempt in range(1, SEND_ATTEMPTS + 1):
        request = urllib.request.Request(url, data=body, method="PUT", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as response:  # noqa: S310
                logger.info("answered CloudFormation: %s (HTTP %s)", status, response.status)
                return
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            logger.warning("answering CloudFormation failed (attempt %d): %s", attempt, exc)
            if attempt < SEND_ATTEMPTS:
                time.sleep(attempt)
    logger.error("gave up answering CloudFormation after %d attempts", SEND_ATTEMPTS)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with bound_request_id(getattr(context, "aws_request_id", None)):
        return _handle(event, context)


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remaining_s = context.get_remaining_time_in_millis() / 1000.0 if context is not None else 300.0
    budget_s = remaining_s - RESERVE_S

    if "ResponseURL" not in event:  # direct invocation
        applied = _apply_with_deadline(budget_s)
        logger.info("applied %d migration(s): %s", len(applied), applied)
        return {"applied": applied}

    request_type = event.get("RequestType")
    status, reason, data = "SUCCESS", "", {"applied": 0}
    try:
        if request_type in ("Create", "Update"):
            applied = _apply_with_deadline(budget_s)
            logger.info("applied %d migration(s): %s", len(applied), applied)
            data = {"applied": len(applied)}
            reason = f"applied {len(applied)} migration(s)"
        else:
            reason = f"{request_type}: nothing to do (the schema is kept)"
    except BaseException as exc:
        logger.exception("migrations failed on %s", request_type)
        where = ""
        if context is not None:
            where = f"; see log group {context.log_group_name}, stream {context.log_stream_name}"
        status, reason = "FAILED", f"migrations failed ({type(exc).__name__}){where}"
    _send(event, status, reason, data)
    return {"Status": status, "Reason": reason, "Data": data}
