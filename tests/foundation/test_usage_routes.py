"""Usage and audit routes: filters, pagination, userId/costUsd, and 400s for bad queries.

InsForge's own AI layer answers 500 for a bad query; the gateway answers 400 naming the field.
"""

from __future__ import annotations

import uuid

import pytest

from tests.support import SQL, Gateway


def _seed(sql: SQL, config_id: str) -> None:
    rows = [
        ("alice", "2026-05-01T10:00:00Z", 10, 20, 0.001),
        ("alice", "2026-05-02T10:00:00Z", 5, 5, 0.0005),
        ("bob", "2026-05-02T11:00:00Z", 7, 3, None),
    ]
    for user, at, inp, out, cost in rows:
        sql(
            "INSERT INTO ai.usage (request_id, config_id, model_id, input_tokens, output_tokens, user_id,"
            " cost_usd, created_at) VALUES (%s, %s, 'openai/gpt-4o-mini', %s, %s, %s, %s, %s)",
            (uuid.uuid4().hex, config_id, inp, out, user, cost, at),
        )


def test_usage_lists_filters_and_summaries(gateway: Gateway, sql: SQL) -> None:
    cid = gateway.enable("openai/gpt-4o-mini")
    _seed(sql, cid)
    c, admin = gateway.client, gateway.admin()
    body = c.get("/api/ai/usage", params={"limit": "2"}, headers=admin).json()
    assert body["total"] == 3 and len(body["records"]) == 2
    assert body["records"][0]["userId"] == "bob" and body["records"][0]["costUsd"] is None  # newest first
    body = c.get("/api/ai/usage", params={"userId": "alice", "startDate": "2026-05-02T00:00:00Z"}, headers=admin).json()
    assert body["total"] == 1 and body["records"][0]["costUsd"] == pytest.approx(0.0005)
    s = c.get("/api/ai/usage/summary", params={"groupBy": "user"}, headers=admin).json()
    assert (s["totalInputTokens"], s["totalOutputTokens"], s["totalTokens"], s["totalRequests"]) == (22, 28, 50, 3)
    assert {g["key"]: g["totalTokens"] for g in s["groups"]} == {"alice": 40, "bob": 10}
    s = c.get("/api/ai/usage/summary", params={"configId": cid, "userId": "bob"}, headers=admin).json()
    assert s["totalTokens"] == 10
    rows = c.get(f"/api/ai/usage/config/{cid}", headers=admin).json()
    assert len(rows) == 3 and {r["userId"] for r in rows} == {"alice", "bob"}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/ai/usage", {"startDate": "yesterday"}, "startDate"),
        ("/api/ai/usage", {"endDate": "2026-13-40"}, "endDate"),
        ("/api/ai/usage", {"limit": "abc"}, "limit"),
        ("/api/ai/usage", {"limit": "5000"}, "limit"),
        ("/api/ai/usage", {"offset": "-1"}, "offset"),
        ("/api/ai/usage/summary", {"groupBy": "week"}, "groupBy"),
        ("/api/ai/usage/summary", {"configId": "not-a-uuid"}, "configId"),
        ("/api/ai/usage/config/not-a-uuid", {}, "configId"),
        ("/api/ai/audit", {"limit": "0"}, "limit"),
        ("/api/ai/audit", {"startDate": "soon"}, "startDate"),
    ],
)
def test_bad_queries_are_400_naming_the_field(gateway: Gateway, path: str, params: dict[str, str], field: str) -> None:
    r = gateway.client.get(path, params=params, headers=gateway.admin())
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "INVALID_INPUT" and body["statusCode"] == 400
    assert body["message"].startswith(f"Validation error: {field}"), body["message"]


def test_audit_filters_and_pages(gateway: Gateway) -> None:
    for model in ("a/one", "a/two", "a/three"):
        gateway.enable(model)
    c, admin = gateway.client, gateway.admin()
    page = c.get("/api/ai/audit", params={"action": "CREATE_CONFIGURATION", "limit": "2"}, headers=admin).json()
    assert page["total"] == 3 and len(page["records"]) == 2
    rest = c.get(
        "/api/ai/audit", params={"action": "CREATE_CONFIGURATION", "limit": "2", "offset": "2"}, headers=admin
    ).json()
    assert len(rest["records"]) == 1
    seen = {r["details"]["modelId"] for r in page["records"] + rest["records"]}
    assert seen == {"a/one", "a/two", "a/three"}
    assert c.get("/api/ai/audit", params={"actor": "nobody"}, headers=admin).json()["total"] == 0
