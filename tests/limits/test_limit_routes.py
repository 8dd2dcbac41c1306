"""GET/PUT /api/ai/limits and per-user overrides: validation, null = unlimited, audit, auth.

The routes are described in docs/api.md#limit-routes.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Gateway

UNLIMITED = {
    "requestsPerMinute": None,
    "burst": 0,
    "tokensPerDay": None,
    "tokensPerMonth": None,
    "spendPerMonthUsd": None,
}


def _audit(gateway: Gateway, action: str) -> list[dict[str, Any]]:
    r = gateway.client.get("/api/ai/audit", params={"action": action}, headers=gateway.admin())
    records: list[dict[str, Any]] = r.json()["records"]
    return records


def test_defaults_are_unlimited_and_put_replaces(gateway: Gateway) -> None:
    c, admin = gateway.client, gateway.admin()
    r = c.get("/api/ai/limits", headers=admin)
    assert r.status_code == 200
    assert r.json() == {
        "perUser": UNLIMITED,
        "perProject": UNLIMITED,
        "exemptAdmins": True,
        "updatedAt": None,
        "updatedBy": None,
    }

    body = {
        "perUser": {"requestsPerMinute": 30, "burst": 5, "tokensPerDay": 10_000},
        "perProject": {"spendPerMonthUsd": 12.5, "tokensPerMonth": None},
        "exemptAdmins": False,
        "x": 1,
    }
    r = c.put("/api/ai/limits", json=body, headers=admin)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["perUser"] == {**UNLIMITED, "requestsPerMinute": 30, "burst": 5, "tokensPerDay": 10_000}
    assert got["perProject"] == {**UNLIMITED, "spendPerMonthUsd": 12.5}
    assert got["exemptAdmins"] is False and got["updatedBy"] == "api-key" and got["updatedAt"].endswith("Z")
    assert c.get("/api/ai/limits", headers=admin).json() == got

    # PUT replaces: what is not sent is unlimited again.
    r = c.put("/api/ai/limits", json={"perUser": {"requestsPerMinute": 1}}, headers=admin)
    assert r.json()["perUser"] == {**UNLIMITED, "requestsPerMinute": 1}
    assert r.json()["perProject"] == UNLIMITED and r.json()["exemptAdmins"] is True

    records = _audit(gateway, "UPDATE_LIMITS")
    assert len(records) == 2 and records[0]["actor"] == "api-key"
    assert records[1]["details"]["perUser"]["requestsPerMinute"] == 30
    assert records[0]["ipAddress"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"perUser": {"requestsPerMinute": -1}}, "perUser.requestsPerMinute"),
        ({"perUser": {"requestsPerMinute": "many"}}, "perUser.requestsPerMinute"),
        ({"perUser": {"burst": None}}, "perUser.burst"),
        ({"perProject": {"tokensPerDay": 1.5}}, "perProject.tokensPerDay"),
        ({"perProject": {"spendPerMonthUsd": -0.01}}, "perProject.spendPerMonthUsd"),
        ({"perUser": []}, "perUser"),
        ({"exemptAdmins": "perhaps"}, "exemptAdmins"),
    ],
)
def test_put_validation_names_the_field(gateway: Gateway, body: dict[str, Any], field: str) -> None:
    r = gateway.client.put("/api/ai/limits", json=body, headers=gateway.admin())
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "INVALID_INPUT" and r.json()["statusCode"] == 400
    assert r.json()["message"].startswith(f"Validation error: {field}: ")
    assert _audit(gateway, "UPDATE_LIMITS") == []


def test_user_overrides_crud(gateway: Gateway) -> None:
    c, admin = gateway.client, gateway.admin()
    c.put("/api/ai/limits", json={"perUser": {"requestsPerMinute": 10, "tokensPerDay": 500}}, headers=admin)
    r = c.get("/api/ai/limits/users/alice", headers=admin)
    assert r.status_code == 404 and r.json()["error"] == "NOT_FOUND"

    r = c.put("/api/ai/limits/users/alice", json={"tokensPerDay": None, "requestsPerMinute": 100}, headers=admin)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["userId"] == "alice"
    assert got["overrides"] == {"tokensPerDay": None, "requestsPerMinute": 100}
    assert got["effective"] == {**UNLIMITED, "requestsPerMinute": 100}
    assert got["usage"] == {"tokensToday": 0, "tokensThisMonth": 0, "spendThisMonthUsd": 0.0}
    assert c.get("/api/ai/limits/users/alice", headers=admin).json() == got

    listed = c.get("/api/ai/limits/users", headers=admin).json()
    assert listed["total"] == 1 and listed["records"][0]["userId"] == "alice"

    r = c.put("/api/ai/limits/users/alice", json={"burst": -3}, headers=admin)
    assert r.status_code == 400 and r.json()["message"].startswith("Validation error: burst: ")

    r = c.delete("/api/ai/limits/users/alice", headers=admin)
    assert r.status_code == 200 and r.json() == {"message": "User limit overrides removed"}
    assert c.delete("/api/ai/limits/users/alice", headers=admin).status_code == 404
    assert c.get("/api/ai/limits/users/alice", headers=admin).status_code == 404
    assert [a["details"]["userId"] for a in _audit(gateway, "SET_USER_LIMITS")] == ["alice"]
    assert len(_audit(gateway, "DELETE_USER_LIMITS")) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/ai/limits"),
        ("put", "/api/ai/limits"),
        ("get", "/api/ai/limits/users"),
        ("get", "/api/ai/limits/users/u"),
        ("put", "/api/ai/limits/users/u"),
        ("delete", "/api/ai/limits/users/u"),
    ],
)
def test_admin_only(gateway: Gateway, method: str, path: str) -> None:
    c = gateway.client
    kwargs: dict[str, Any] = {"json": {}} if method == "put" else {}
    r = getattr(c, method)(path, **kwargs)
    assert r.status_code == 401 and r.json()["error"] == "AUTH_INVALID_CREDENTIALS"
    r = getattr(c, method)(path, headers=gateway.user(), **kwargs)
    assert r.status_code == 403 and r.json()["error"] == "AUTH_UNAUTHORIZED"
    r = getattr(c, method)(path, headers={"Authorization": "Bearer ik_" + "0" * 64}, **kwargs)
    assert r.status_code == 401 and r.json()["error"] == "AUTH_INVALID_API_KEY"
    r = getattr(c, method)(path, headers=gateway.user(role="project_admin"), **kwargs)
    assert r.status_code in (200, 404)
