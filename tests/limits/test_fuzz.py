"""Schemathesis against the served OpenAPI document: every operation, as admin and as a user.

Checks: no 5xx, and every response whose status the document declares matches its schema.
Bounded (a fixed number of derandomized examples per operation and role) so the module stays
well under 90 s; routes that call the upstream reach the session's simulator.

Routes whose handlers return `responses.JSON` without a declared response model are documented
by FastAPI as `{"type": "string"}` (JSON is not a JSONResponse subclass), which no JSON body
matches. For those the schema check is skipped — they are listed in UNDOCUMENTED on the run —
and only "no 5xx" is checked; once they declare schemas, conformance applies to them too.
"""

from __future__ import annotations

import time
from typing import Any, cast

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.support import Gateway, MakeGateway

MAX_EXAMPLES = 15
BUDGET_S = 90.0


def _operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    return [cast(Any, result).ok() for result in schema.get_all_operations()]


def _undocumented(url: str) -> set[str]:
    """`METHOD path` of operations whose success response is documented as a bare string."""
    doc = httpx.get(url + "/openapi.json").json()
    out = set()
    for path, ops in doc["paths"].items():
        for method, spec in ops.items():
            for status, resp in spec.get("responses", {}).items():
                schema = resp.get("content", {}).get("application/json", {}).get("schema")
                if status.startswith("2") and schema == {"type": "string"}:
                    out.add(f"{method.upper()} {path}")
    return out


def _fuzz(op: Any, headers: dict[str, str], checks: list[Any]) -> list[str]:
    failures: list[str] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy())
    def run(case: Any) -> None:
        try:
            case.call_and_validate(headers=headers, checks=checks, timeout=30)
        except Exception as exc:  # collect every operation's failure, not only the first
            failures.append(f"{op.label}: {type(exc).__name__}: {str(exc)[:600]}")
            raise

    try:
        run()
    except Exception:  # noqa: S110 - recorded above with the operation's label
        pass
    return failures


def test_every_operation_as_admin_and_as_user(make_gateway: MakeGateway) -> None:
    started = time.monotonic()
    gw = make_gateway()
    gw.enable("openai/gpt-4o-mini")
    roles = {"admin": gw.admin(), "user": gw.user(sub="fuzzer")}
    operations = _operations(gw.url)
    assert len(operations) >= 8, [op.label for op in operations]
    undocumented = _undocumented(gw.url)
    print("UNDOCUMENTED (schema check skipped):", ", ".join(sorted(undocumented)))
    failures: list[str] = []
    for op in operations:
        full = op.label not in undocumented
        checks = [not_a_server_error, response_schema_conformance] if full else [not_a_server_error]
        for headers in roles.values():
            failures += _fuzz(op, headers, checks)
    assert not failures, "\n".join(dict.fromkeys(failures))
    assert time.monotonic() - started < BUDGET_S


@pytest.mark.parametrize("path", ["/api/ai/limits", "/api/ai/limits/users/{userId}", "/api/ai/limits/users"])
def test_limit_routes_document_their_responses(gateway: Gateway, path: str) -> None:
    """The limits routes declare response schemas, so conformance is checked for them, not skipped."""
    doc = gateway.client.get("/openapi.json").json()
    for method, spec in doc["paths"][path].items():
        assert "schema" in spec["responses"]["200"]["content"]["application/json"], (method, path)
        assert "400" in spec["responses"] and "401" in spec["responses"]
