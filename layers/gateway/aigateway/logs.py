"""Logging for every entry point: `configure_logging(settings)` once at start-up.

On Lambda (`settings.on_aws`, or AWS_LAMBDA_FUNCTION_NAME set) each record is one JSON line on
stdout: timestamp, level, logger, message, request_id, service, the record's `extra` fields and the
exception text. Locally it is one readable text line on stderr (stdout stays free for what a
command prints). The level is `settings.log_level` (LOG_LEVEL / POWERTOOLS_LOG_LEVEL) and applies to
the `aigateway` logger tree; every module logs through `logging.getLogger(__name__)` under it.
Other libraries keep the root logger's level (WARNING unless someone set it).

The request id comes from a context variable: the RequestId middleware sets it for each HTTP
request, the scheduled and custom-resource handlers set it to the Lambda invocation id, and a
filter on the handler copies it onto every record. asyncio tasks copy the context when they are
created, so work started by a request (its stream, its usage write) logs the request's id.

The standard library only: importing Powertools' Logger took ~90 ms on a cold interpreter (~27-49 ms
on top of logging/json/typing, which the gateway imports anyway); this module ~1 ms on top of those
(CPython 3.12, layer bytecode, wall clock). Too much for a cold start. Secrets stay out of the logs
as before: crypto.guard_aws_debug_logs() redacts botocore's body records at their logger, before
any handler sees them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .settings import Settings

ROOT_LOGGER = "aigateway"

request_id_var: ContextVar[str | None] = ContextVar("aigateway_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}


def set_request_id(value: str | None) -> Token[str | None]:
    """Make `value` the request id of this context; pass the token to `reset_request_id`."""
    return request_id_var.set(value)


def reset_request_id(token: Token[str | None]) -> None:
    request_id_var.reset(token)


@contextmanager
def bound_request_id(value: str | None) -> Iterator[None]:
    """`with bound_request_id(context.aws_request_id): ...` for handlers without the middleware."""
    token = request_id_var.set(value)
    try:
        yield
    finally:
        request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Copies the context's request id onto each record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id_var.get()
        if rid is not None or not hasattr(record, "request_id"):  # keeps an explicit extra={"request_id": ...}
            record.request_id = rid
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, for CloudWatch Logs Insights."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if self.service:
            doc["service"] = self.service
        for key, value in _extras(record).items():
            doc.setdefault(key, value)  # an extra never overwrites the fields above
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
            if record.exc_info[0] is not None:
                doc["exception_type"] = record.exc_info[0].__name__
        elif record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """`2026-05-01 10:00:00,123 INFO    aigateway.db [3f2a…] message key=value` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(rid)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.__dict__["rid"] = f"[{rid}] " if rid else ""
        try:
            text = super().format(record)
        finally:
            del record.__dict__["rid"]
        extras = _extras(record)
        if extras:
            first, nl, rest = text.partition("\n")
            text = first + "".join(f" {k}={v}" for k, v in extras.items()) + nl + rest
        return text


class _StdStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout / sys.stderr is at the time of the record (not at set-up),
    so a redirected or captured stream gets the line."""

    def __init__(self, to_stdout: bool) -> None:
        self.to_stdout = to_stdout
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stdout if self.to_stdout else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ assigns it; the property wins
        pass


_OURS = "_aigateway_handler"


def _is_lambda_runtime_handler(handler: logging.Handler) -> bool:
    # The Python runtime's bootstrap puts its own handler on the root logger; ours replaces it,
    # else every record would be written twice (once as JSON, once in the runtime's format).
    return type(handler).__name__.startswith("LambdaLoggerHandler")


def level_number(name: str | int | None) -> int:
    """The numeric level for a name such as "debug" or "WARNING"; INFO for anything unknown."""
    if isinstance(name, int):
        return name
    value = logging.getLevelNamesMapping().get((name or "").strip().upper())
    return value if value is not None else logging.INFO


def on_lambda(settings: Settings | None = None) -> bool:
    return bool((settings is not None and settings.on_aws) or os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def configure_logging(settings: Settings | None = None, *, json_lines: bool | None = None) -> logging.Handler:
    """Install the gateway's one handler on the root logger and set the `aigateway` level.

    Idempotent: a second call replaces the handler the first one installed (so a changed level or
    format applies) and never adds another. `json_lines` overrides the Lambda/local choice.
    Returns the handler.
    """
    if settings is None:
        from .settings import Settings

        settings = Settings.from_env()
    use_json = on_lambda(settings) if json_lines is None else json_lines
    handler = _StdStreamHandler(to_stdout=use_json)
    setattr(handler, _OURS, True)
    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or ROOT_LOGGER
    handler.setFormatter(JsonFormatter(service) if use_json else TextFormatter())
    handler.addFilter(RequestIdFilter())

    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _OURS, False) or (use_json and _is_lambda_runtime_handler(old)):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)

    requested = settings.log_level
    level = level_number(requested)
    package = logging.getLogger(ROOT_LOGGER)
    package.setLevel(level)
    package.propagate = True
    if logging.getLevelName(level) != (requested or "").strip().upper():
        package.warning("unknown log level %r: using %s", requested, logging.getLevelName(level))
    return handler
