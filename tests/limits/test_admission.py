"""`limits.admit` / `charge` over real HTTP through a test route: 429s, 402s, headers, exemptions, audit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aigateway import limits
from aigateway.auth import Principal
from aigateway.db import Conn
from aigateway.flows import metering
from aigateway.services import Services
from aigateway.settings import Settings
from aigateway.store.usage import UsageRecord

from tests.support import SQL, Gateway, MakeGateway

from .admit_app import app_for

T = TypeVar("T")


@pytest.fixture
def gw(make_gateway: MakeGateway) -> Gateway:
    return make_gateway(app_factory=app_for)


def _set(gw: Gateway, **body: Any) -> None:
    r = gw.client.put("/api/ai/limits", json=body, headers=gw.admin())
    assert r.status_code == 200, r.text


def _admit(gw: Gateway, headers: dict[str, str], **params: Any) -> Any:
    return gw.client.post("/test/admit", headers=headers, params=params)


def _audit(sql: SQL, action: str) -> list[dict[str, Any]]:
    return sql(
        "SELECT actor, action, details, ip_address FROM ai.audit_logs WHERE action = %s ORDER BY created_at", (action,)
    )


def _next_window_is_far() -> None:
    """Tests that count within one minute window wait out its last seconds rather than straddle it."""
    left = 60 - datetime.now(UTC).second
    if left < 5:
        import time

        time.sleep(left + 0.2)


def test_rate_limit_429_with_headers_and_audit(gw: Gateway, sql: SQL) -> None:
    _set(gw, perUser={"requestsPerMinute": 2, "burst": 1})
    _next_window_is_far()
    alice = gw.user(sub="alice", email="alice@example.com")
    remaining = []
    for _ in range(3):
        r = _admit(gw, alice)
        assert r.status_code == 200, r.text
        assert r.headers["X-RateLimit-Limit"] == "3"
        remaining.append(r.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    r = _admit(gw, alice)
    assert r.status_code == 429
    body = r.json()
    assert body["error"] == "RATE_LIMITED" and body["statusCode"] == 429
    assert body["message"].startswith("Rate limit exceeded: 3 requests per minute per user.")
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= 60
    reset = int(r.headers["X-RateLimit-Reset"])
    assert reset % 60 == 0 and 0 < reset - datetime.now(UTC).timestamp() <= 61
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert _admit(gw, gw.user(sub="bob")).status_code == 200  # another user has their own minute

    rows = _audit(sql, "RATE_LIMITED")
    assert len(rows) == 1
    assert rows[0]["actor"] == "alice@example.com" and rows[0]["ip_address"] == "127.0.0.1"
    assert rows[0]["details"] == {
        "limit": "user.requestsPerMinute",
        "model": "test/model",
        "kind": "chat",
        "subject": "user:alice",
    }


def test_anon_callers_are_told_apart_by_the_address_a_trusted_proxy_saw(make_gateway: MakeGateway) -> None:
    """Behind one trusted proxy (TRUSTED_PROXY_HOPS=1) the right-most X-Forwarded-For entry is the
    caller: what the caller wrote to its left changes nothing."""
    gw = make_gateway(app_factory=app_for, trusted_proxy_hops=1)
    _set(gw, perUser={"requestsPerMinute": 1})
    _next_window_is_far()
    anon = gw.user(role="anon", sub="anon-key")
    one = {**anon, "X-Forwarded-For": "203.0.113.1"}
    spoofed_one = {**anon, "X-Forwarded-For": "198.51.100.9, 203.0.113.1"}
    two = {**anon, "X-Forwarded-For": "203.0.113.2"}
    assert _admit(gw, one).status_code == 200
    assert _admit(gw, spoofed_one).status_code == 429
    r = _admit(gw, two)
    assert r.status_code == 200 and r.json()["subject"] == "anon:anon-key:203.0.113.2"


def test_project_limit_spans_users_and_admin_keys_are_exempt_unless_configured(gw: Gateway) -> None:
    _set(gw, perProject={"requestsPerMinute": 2})
    _next_window_is_far()
    assert _admit(gw, gw.user(sub="a")).status_code == 200
    assert _admit(gw, gw.user(sub="b")).status_code == 200
    r = _admit(gw, gw.user(sub="c"))
    assert r.status_code == 429 and "for this project" in r.json()["message"]
    r = _admit(gw, gw.admin())
    assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers

    _set(gw, perProject={"requestsPerMinute": 2}, exemptAdmins=False)
    assert _admit(gw, gw.admin()).status_code == 429


def test_no_limits_no_headers(gw: Gateway) -> None:
    r = _admit(gw, gw.user())
    assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers


def test_daily_token_quota_lets_the_crossing_call_finish_then_402s(gw: Gateway, sql: SQL) -> None:
    _set(gw, perUser={"tokensPerDay": 100})
    u = gw.user(sub="quota-user")
    assert _admit(gw, u, tokens=60).status_code == 200
    assert _admit(gw, u, tokens=60).status_code == 200  # started at 60 < 100: finishes, ends at 120
    r = _admit(gw, u)
    assert r.status_code == 402
    body = r.json()
    assert body["error"] == "QUOTA_EXCEEDED" and body["statusCode"] == 402
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert f"It resets at {tomorrow}T00:00:00Z" in body["message"] and "daily token quota" in body["message"]
    assert _admit(gw, gw.user(sub="someone-else")).status_code == 200
    rows = _audit(sql, "QUOTA_EXCEEDED")
    assert [r["details"]["limit"] for r in rows] == ["user.tokensPerDay"]


def test_user_override_beats_the_default(gw: Gateway) -> None:
    _set(gw, perUser={"tokensPerDay": 10, "requestsPerMinute": 1})
    admin = gw.admin()
    r = gw.client.put("/api/ai/limits/users/vip", json={"tokensPerDay": None, "requestsPerMinute": 50}, headers=admin)
    assert r.status_code == 200
    _next_window_is_far()
    vip, plain = gw.user(sub="vip"), gw.user(sub="plain")
    for _ in range(3):
        r = _admit(gw, vip, tokens=100)
        assert r.status_code == 200 and r.headers["X-RateLimit-Limit"] == "50"
    assert _admit(gw, plain, tokens=100).status_code == 200
    assert _admit(gw, plain).status_code == 402  # tokens first: a quota refusal uses no rate slot
    assert gw.client.get("/api/ai/limits/users/vip", headers=admin).json()["usage"]["tokensToday"] == 300

    gw.client.delete("/api/ai/limits/users/vip", headers=admin)
    assert _admit(gw, vip).status_code == 402  # back on the defaults


def test_monthly_spend_quota_counts_upstream_cost(gw: Gateway) -> None:
    _set(gw, perProject={"spendPerMonthUsd": 0.01})
    u = gw.user(sub="spender")
    assert _admit(gw, u, tokens=10, cost="0.006").status_code == 200
    assert _admit(gw, u, tokens=10, cost="0.006").status_code == 200
    r = _admit(gw, gw.user(sub="another"))
    assert r.status_code == 402 and "this project's monthly spend quota (0.01 USD)" in r.json()["message"]
    nxt = limits.quota_reset("spendPerMonthUsd", datetime.now(UTC))
    assert nxt.isoformat().replace("+00:00", "Z") in r.json()["message"]


class CountingDb:
    """Counts database round trips by wrapping the real Database's `run`."""

    def __init__(self, svc: Services) -> None:
        self.calls = 0
        real = svc.db.run

        async def run(work: Callable[[Conn], Awaitable[T]]) -> T:
            self.calls += 1
            return await real(work)

        svc.db.run = run  # type: ignore[method-assign]


def test_round_trips(base_settings: Settings, sql: SQL) -> None:
    """Nothing configured: no round trip after the cached load. Configured: exactly one per call."""
    sql("TRUNCATE ai.limit_settings, ai.limit_overrides, ai.rate_counters, ai.quota_counters")
    svc = Services.from_settings(base_settings.with_overrides(config_cache_ttl_s=60.0))
    counter = CountingDb(svc)
    who = Principal(role="authenticated", user_id="rt")

    async def scenario() -> tuple[int, int, int]:
        for _ in range(5):
            await limits.admit(svc, who, "127.0.0.1", model="m", kind="chat")
        unconfigured = counter.calls
        sql("""INSERT INTO ai.limit_settings (id, body) VALUES ('project', '{"perUser": {"requestsPerMinute": 100,
               "tokensPerDay": 1000}, "perProject": {"spendPerMonthUsd": 5}}')""")
        svc.limits.invalidate()
        await limits.admit(svc, who, "127.0.0.1", model="m", kind="chat")  # reload + admit
        before = counter.calls
        for _ in range(5):
            await limits.admit(svc, who, "127.0.0.1", model="m", kind="chat")
        per_call = (counter.calls - before) / 5
        exempt = counter.calls
        await limits.admit(svc, Principal(role="project_admin", via_api_key=True), None, model="m", kind="chat")
        await svc.aclose()
        return unconfigured, int(per_call), counter.calls - exempt

    unconfigured, per_call, exempt = asyncio.run(scenario())
    assert unconfigured == 1 and per_call == 1 and exempt == 0


def test_an_unreachable_database_spools_the_settle_with_its_charge_and_releases_quietly(
    base_settings: Settings, tmp_path: Path
) -> None:
    """A settle that could not be written goes to the spool with the quota subject and the hold it
    owes (its replay charges it); a hold that could not be released is only logged: it expires."""
    svc = Services.from_settings(
        base_settings.with_overrides(
            home=tmp_path, database_url="postgresql://nobody@127.0.0.1:1/x", db_connect_timeout_s=1
        )
    )
    settled = limits.Admission(subject=limits.user_subject("x"), hold_id=1)
    record = UsageRecord(request_id="unreachable-1", model_id="m", output_tokens=5, cost_usd=0.1)

    async def scenario() -> list[UsageRecord]:
        await metering.settle(svc, settled, record)
        spooled = [r async for batch in svc.usage.spool.batches(10) for _, r in batch]
        await svc.aclose()
        return spooled

    spooled = asyncio.run(scenario())
    assert [(r.request_id, r.charge_subject, r.hold_id) for r in spooled] == [
        ("unreachable-1", limits.user_subject("x").key, 1)
    ]
    assert settled.hold_id is None  # the settle owns the hold now: never released as well
    released = limits.Admission(subject=limits.user_subject("x"), hold_id=2)
    asyncio.run(limits.release(svc, released))
    assert released.hold_id is None
