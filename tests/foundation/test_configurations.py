"""Configuration CRUD: 201 + upsert, list with usage, patch, soft-disable, audit.

The routes are described in docs/api.md#models-and-configurations.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.support import SQL, Gateway


def test_create_list_disable_and_audit(gateway: Gateway) -> None:
    c, admin = gateway.client, gateway.admin()
    r = c.post(
        "/api/ai/configurations",
        json={
            "inputModality": ["text"],
            "outputModality": ["text"],
            "provider": "openrouter",
            "modelId": "openai/gpt-4o-mini",
            "systemPrompt": "Be brief.",
            "unknownKey": 1,
        },
        headers=admin,
    )
    assert r.status_code == 201
    config_id = r.json()["id"]
    assert r.json()["message"] == "AI configuration created successfully"
    uuid.UUID(config_id)

    listed = c.get("/api/ai/configurations", headers=admin).json()
    assert [x["modelId"] for x in listed] == ["openai/gpt-4o-mini"]
    assert listed[0]["systemPrompt"] == "Be brief."
    assert listed[0]["usageStats"] == {
        "totalInputTokens": 0,
        "totalOutputTokens": 0,
        "totalTokens": 0,
        "totalImageCount": 0,
        "totalRequests": 0,
        "totalCostUsd": 0.0,
    }

    r = c.delete(f"/api/ai/configurations/{config_id}", headers=admin)
    assert r.status_code == 200 and r.json()["message"] == "AI configuration disabled successfully"
    assert c.get("/api/ai/configurations", headers=admin).json() == []

    audit = c.get("/api/ai/audit", headers=admin).json()
    assert audit["total"] == 2
    assert [a["action"] for a in audit["records"]] == ["DISABLE_CONFIGURATION", "CREATE_CONFIGURATION"]
    assert all(a["actor"] == "api-key" for a in audit["records"])
    assert audit["records"][1]["details"]["modelId"] == "openai/gpt-4o-mini"


def test_create_is_an_upsert_on_model_id_and_keeps_the_prompt(gateway: Gateway, sql: SQL) -> None:
    first = gateway.enable("openai/gpt-4o", systemPrompt="Keep me.")
    gateway.client.delete(f"/api/ai/configurations/{first}", headers=gateway.admin())
    second = gateway.enable("openai/gpt-4o", inputModality=["text"])
    assert second == first
    row = sql("SELECT is_active, system_prompt, input_modality FROM ai.configs WHERE id = %s", (first,))[0]
    assert row == {"is_active": True, "system_prompt": "Keep me.", "input_modality": ["text"]}


def test_patch_updates_the_prompt_and_404s(gateway: Gateway, sql: SQL) -> None:
    c, admin = gateway.client, gateway.admin()
    cid = gateway.enable("anthropic/claude-3.5-haiku")
    r = c.patch(f"/api/ai/configurations/{cid}", json={"systemPrompt": "New."}, headers=admin)
    assert r.status_code == 200 and r.json() == {"message": "AI configuration updated successfully"}
    assert sql("SELECT system_prompt FROM ai.configs WHERE id = %s", (cid,))[0]["system_prompt"] == "New."
    r = c.patch(f"/api/ai/configurations/{cid}", json={"systemPrompt": None}, headers=admin)
    assert r.status_code == 200
    assert sql("SELECT system_prompt FROM ai.configs WHERE id = %s", (cid,))[0]["system_prompt"] is None

    r = c.patch(f"/api/ai/configurations/{cid}", json={}, headers=admin)
    assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT"
    assert r.json()["message"] == "Validation error: systemPrompt: Required"

    missing = str(uuid.uuid4())
    for method in ("patch", "delete"):
        kwargs: dict[str, Any] = {"json": {"systemPrompt": "x"}} if method == "patch" else {}
        for bad in (missing, "not-a-uuid"):
            r = getattr(c, method)(f"/api/ai/configurations/{bad}", headers=admin, **kwargs)
            assert r.status_code == 404, (method, bad, r.text)
            assert r.json() == {"error": "NOT_FOUND", "message": "AI configuration not found", "statusCode": 404}
    actions = [a["action"] for a in c.get("/api/ai/audit", headers=admin).json()["records"]]
    assert actions.count("UPDATE_CONFIGURATION") == 2


def test_validation_errors_name_the_field(gateway: Gateway) -> None:
    c, admin = gateway.client, gateway.admin()
    r = c.post(
        "/api/ai/configurations",
        json={"inputModality": [], "outputModality": ["text"], "modelId": "m/x"},
        headers=admin,
    )
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "INVALID_INPUT" and body["statusCode"] == 400
    assert body["message"].startswith("Validation error: inputModality: ")
    r = c.post(
        "/api/ai/configurations",
        json={"inputModality": ["smell"], "outputModality": ["text"], "modelId": "m/x"},
        headers=admin,
    )
    assert r.json()["message"].startswith("Validation error: inputModality.0: ")
    r = c.post("/api/ai/configurations", content=b"{not json", headers={**admin, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT"
    assert r.json()["nextActions"] == "Please ensure your request body contains valid JSON"


def test_nul_characters_in_stored_strings_are_a_400_naming_the_field(gateway: Gateway) -> None:
    """PostgreSQL text cannot hold NUL: refused at the edge, not a 500 from the database."""
    base = {"inputModality": ["text"], "outputModality": ["text"], "modelId": "a/b"}
    for field, value in (
        ("systemPrompt", "be\x00brief"),
        ("modelId", "a/\x00b"),
        ("provider", "open\x00router"),
        ("contentPolicy", {"denyPatterns": ["bad\x00word"]}),
    ):
        r = gateway.client.post("/api/ai/configurations", json={**base, field: value}, headers=gateway.admin())
        assert r.status_code == 400, (field, r.text)
        assert r.json()["message"].startswith(f"Validation error: {field}"), r.json()["message"]
    r = gateway.client.get("/api/ai/usage", params={"userId": "x\x00y"}, headers=gateway.admin())
    assert r.status_code == 400 and "userId" in r.json()["message"]
