"""The plaintext key appears in no database row, API response, audit record or log line.

The rule is stated in docs/api.md#upstream-key-and-credits.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support import SQL

from .conftest import Gw, Sim, create_cloud_secret, encodings, models_key

ROUTE = "/api/ai/gateway/config"


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) for r in caplog.records)


def _db_text(sql: SQL) -> str:
    tables = sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'ai'")
    assert {"secrets", "audit_logs", "usage", "configs"} <= {t["table_name"] for t in tables}
    out: list[str] = []
    for t in tables:
        rows = sql(f'SELECT row_to_json(x)::text AS j FROM ai."{t["table_name"]}" x')  # noqa: S608 - catalog names
        out.extend(r["j"] for r in rows)
    return "\n".join(out)


def _response_text(r: httpx.Response) -> str:
    return r.text + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())


@pytest.mark.parametrize("wrapping", ["local", "kms"])
def test_plaintext_key_is_nowhere(
    make_gw: Callable[..., Gw],
    aws: None,
    sim: Sim,
    sql: SQL,
    caplog: pytest.LogCaptureFixture,
    wrapping: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    import boto3

    first = "sk-or-v1-canary-first-" + secrets.token_hex(16)
    second = "sk-or-v1-canary-second-" + secrets.token_hex(16)
    refused = "sk-or-v1-invalid-canary-" + secrets.token_hex(16)
    cloud = "sk-or-v1-canary-cloud-" + secrets.token_hex(16)
    extra: dict[str, Any] = {}
    if wrapping == "kms":
        extra = {"kms_key_id": boto3.client("kms").create_key()["KeyMetadata"]["KeyId"], "master_key": None}
    gw = make_gw(openrouter_api_key=None, openrouter_cloud_key_secret=create_cloud_secret(cloud), **extra)
    admin = gw.admin()
    responses: list[httpx.Response] = []

    def call(method: str, path: str, **kw: Any) -> httpx.Response:
        r = gw.client.request(method, path, headers=admin, **kw)
        responses.append(r)
        return r

    assert models_key(gw, sim) == cloud
    assert call("POST", ROUTE, json={"apiKey": first}).status_code == 200
    assert call("GET", ROUTE).json()["keySource"] == "byok"
    assert call("GET", "/api/ai/models").status_code == 200
    assert call("GET", "/api/ai/credits").status_code == 200
    assert call("POST", ROUTE, json={"apiKey": refused}).status_code == 400
    assert call("POST", ROUTE, json={"apiKey": second + " x"}).status_code == 400
    assert call("POST", ROUTE, json={"apiKey": second}).status_code == 200
    assert models_key(gw, sim) == second
    assert call("DELETE", ROUTE).status_code == 200
    assert call("DELETE", ROUTE).status_code == 404
    assert call("GET", ROUTE).json() == {"keySource": "cloud", "hasByokKey": False}
    assert call("GET", "/api/ai/audit").json()["total"] == 3
    assert call("GET", "/api/ai/usage").status_code == 200
    assert sim.since_mark() is not None

    logs = _log_text(caplog)
    assert "BYOK OpenRouter key set (wrapper=" + wrapping + ")" in logs, "the server thread's logs were captured"
    if wrapping == "kms":
        assert "secret material redacted" in logs, "botocore DEBUG body records were captured, and redacted"
    db = _db_text(sql)
    assert "SET_BYOK_OPENROUTER_KEY" in db and "sk-o****" in db, "the dump holds the rows we wrote"
    bodies = "\n".join(_response_text(r) for r in responses)
    for key in (first, second, refused, cloud):
        for form in encodings(key):
            assert form not in db, f"{key[:20]}... in a database row"
            assert form not in bodies, f"{key[:20]}... in an API response"
            assert form not in logs, f"{key[:20]}... in a log line"
