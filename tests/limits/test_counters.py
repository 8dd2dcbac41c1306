"""The counters in PostgreSQL, driven directly with pinned clocks; hypothesis checks them against a model.

Each example runs `store.limits.admit` / `charge` against the real database (its own
connections and event loop, not a server's), at chosen instants, and compares every verdict
with a few lines of Python stating the intended semantics.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aigateway import limits
from aigateway.auth import Principal
from aigateway.services import Services
from aigateway.settings import Settings
from aigateway.store import limits as store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import SQL

BASE = datetime(2031, 3, 31, 23, 57, tzinfo=UTC)  # windows, a day and a month boundary within 3 minutes
NO_QUOTAS: dict[str, Any] = {k: None for k in ("u_day", "u_month", "u_spend", "p_day", "p_month", "p_spend")}
HYP = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Db:
    """A private Services + event loop for calling the async store from a sync test."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.svc = Services.from_settings(settings.with_overrides(db_pool_size=8))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def reset(self) -> None:
        self.run(self.svc.db.execute("TRUNCATE {s}.rate_counters, {s}.quota_counters, {s}.quota_holds, {s}.audit_logs"))

    def admit(
        self,
        subject: str,
        at: datetime,
        *,
        user: int | None = None,
        project: int | None = None,
        quotas: dict[str, Any] | None = None,
    ) -> store.Verdict:
        return self.run(
            store.admit(
                self.svc.db,
                subject=subject,
                user_rate=user,
                project_rate=project,
                quotas=quotas or NO_QUOTAS,
                actor="t",
                ip=None,
                details={},
                at=at,
            )
        )

    def close(self) -> None:
        self.run(self.svc.aclose())
        self.loop.close()


@pytest.fixture
def db(base_settings: Settings, sql: SQL) -> Iterator[Db]:
    d = Db(base_settings)
    d.reset()
    yield d
    d.close()


def _window(offset: float) -> int:
    return int((BASE + timedelta(seconds=offset)).timestamp() // 60)


@HYP
@given(
    rpm=st.integers(0, 5),
    burst=st.integers(0, 3),
    offsets=st.lists(st.floats(0, 179.999, allow_nan=False), max_size=25),
)
def test_fixed_window_admits_exactly_the_ceiling(db: Db, rpm: int, burst: int, offsets: list[float]) -> None:
    db.reset()
    ceiling = rpm + burst
    admitted: Counter[int] = Counter()
    sent: Counter[int] = Counter()
    for off in sorted(offsets):
        v = db.admit("u", BASE + timedelta(seconds=off), user=ceiling)
        w = _window(off)
        sent[w] += 1
        assert v.user_hits == sent[w]  # every attempt is counted, each gets its own number
        assert v.window_start == datetime.fromtimestamp(w * 60, UTC)
        if v.refused is None:
            admitted[w] += 1
        else:
            assert v.refused == "user.requestsPerMinute"
        headers = limits.rate_headers(v, limits.Rule(requests_per_minute=rpm, burst=burst), limits.Rule())
        assert headers["X-RateLimit-Limit"] == str(ceiling)
        assert headers["X-RateLimit-Remaining"] == str(max(0, ceiling - sent[w]))
        assert int(headers["X-RateLimit-Reset"]) == (w + 1) * 60
        assert 1 <= limits.retry_after_s(v) <= 60
    for w in sent:
        assert admitted[w] == min(sent[w], ceiling)


@HYP
@given(
    umax=st.integers(0, 4),
    pmax=st.integers(0, 6),
    calls=st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 119.999, allow_nan=False)), max_size=30),
)
def test_user_and_project_scopes_match_the_model(db: Db, umax: int, pmax: int, calls: list[tuple[str, float]]) -> None:
    """A call refused by its user's limit does not use the project's minute; the converse does count."""
    db.reset()
    user_n: Counter[tuple[str, int]] = Counter()
    project_n: Counter[int] = Counter()
    for who, off in sorted(calls, key=lambda c: c[1]):
        w = _window(off)
        user_n[who, w] += 1
        if user_n[who, w] > umax:
            expected: str | None = "user.requestsPerMinute"
        else:
            project_n[w] += 1
            expected = "project.requestsPerMinute" if project_n[w] > pmax else None
        v = db.admit(who, BASE + timedelta(seconds=off), user=umax, project=pmax)
        assert v.refused == expected
        assert v.user_hits == user_n[who, w]


@HYP
@given(quota=st.integers(1, 300), events=st.lists(st.one_of(st.just(0), st.integers(1, 120)), min_size=1, max_size=20))
def test_token_quota_refuses_only_once_used_up(db: Db, quota: int, events: list[int]) -> None:
    """0 = try a call; n > 0 = a finished call charges n tokens. The call that crosses still ran."""
    db.reset()
    used = 0
    at = BASE - timedelta(hours=1)
    for e in events:
        if e == 0:
            v = db.admit("q", at, quotas={**NO_QUOTAS, "u_day": quota})
            assert (v.refused == "user.tokensPerDay") == (used >= quota)
            assert v.used["user_day"] == used
        else:
            db.run(store.charge(db.svc.db, subject="q", tokens=e, cost_usd=None, at=at))
            used += e


def test_day_and_month_periods_roll_over(db: Db) -> None:
    """Charges land in the UTC day/month of the call; the next day starts from zero."""
    before = BASE  # 2031-03-31 23:57Z
    db.run(store.charge(db.svc.db, subject="p", tokens=100, cost_usd=0.5, at=before))
    quotas = {**NO_QUOTAS, "u_day": 100}
    assert db.admit("p", before, quotas=quotas).refused == "user.tokensPerDay"
    after = BASE + timedelta(minutes=4)  # 2031-04-01: a new day and a new month
    v = db.admit("p", after, quotas={**quotas, "u_month": 100, "u_spend": 0.5})
    assert v.refused is None and v.used["user_day"] == 0 and v.used["user_month"] == 0
    v = db.admit("p", before, quotas={**NO_QUOTAS, "u_spend": 0.5})
    assert v.refused == "user.spendPerMonthUsd"
    v = db.admit("other", before, quotas={**NO_QUOTAS, "p_month": 100})
    assert v.refused == "project.tokensPerMonth"  # every user's tokens count against the project


def test_a_quota_refusal_does_not_use_a_rate_slot_and_is_audited(db: Db, sql: SQL) -> None:
    db.run(store.charge(db.svc.db, subject="z", tokens=5, cost_usd=None, at=BASE))
    v = db.admit("z", BASE, user=1, quotas={**NO_QUOTAS, "u_day": 5})
    assert v.refused == "user.tokensPerDay" and v.user_hits is None
    assert sql("SELECT count(*) AS n FROM ai.rate_counters")[0]["n"] == 0
    rows = sql("SELECT action, details FROM ai.audit_logs")
    assert rows == [{"action": "QUOTA_EXCEEDED", "details": {"limit": "user.tokensPerDay"}}]


def test_only_an_audited_refusal_waits_for_the_wal_flush(db: Db) -> None:
    """Counters and holds are disposable, so an admission commits without waiting for the WAL
    flush; a refusal that writes an audit record is committed durably."""
    db.reset()
    admitted = db.admit("user:durable", BASE, user=1)
    refused = db.admit("user:durable", BASE, user=1)
    quiet = db.run(
        store.admit(
            db.svc.db, subject="user:durable", user_rate=1, project_rate=None, quotas=NO_QUOTAS, actor="t",
            ip=None, details={}, at=BASE, audit=False,
        )
    )  # fmt: skip
    assert (admitted.refused, admitted.durable) == (None, False)
    assert (refused.refused, refused.durable) == ("user.requestsPerMinute", True)
    assert (quiet.refused, quiet.durable) == ("user.requestsPerMinute", False)


def test_concurrent_admits_on_many_connections_admit_exactly_the_ceiling(db: Db) -> None:
    async def burst() -> list[store.Verdict]:
        return await asyncio.gather(
            *(
                store.admit(
                    db.svc.db,
                    subject="c",
                    user_rate=None,
                    project_rate=7,
                    quotas=NO_QUOTAS,
                    actor="t",
                    ip=None,
                    details={},
                    at=BASE,
                )
                for _ in range(40)
            )
        )

    verdicts = db.run(burst())
    assert sum(v.refused is None for v in verdicts) == 7
    assert sorted(v.project_hits for v in verdicts) == list(range(1, 41))


def test_cleanup_drops_old_counters_only(db: Db, sql: SQL) -> None:
    now = datetime.now(UTC)
    db.admit("old", now - timedelta(minutes=30), user=5)
    db.admit("new", now, user=5)
    db.run(store.charge(db.svc.db, subject="old", tokens=1, cost_usd=None, at=now - timedelta(days=100)))
    db.run(store.charge(db.svc.db, subject="new", tokens=1, cost_usd=None, at=now))
    db.run(store.cleanup(db.svc.db))
    assert {r["subject"] for r in sql("SELECT subject FROM ai.rate_counters")} == {"new"}
    assert {r["subject"] for r in sql("SELECT subject FROM ai.quota_counters WHERE scope = 'user'")} == {"new"}


# ---- pure pieces --------------------------------------------------------------------------


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_quota_reset_is_the_next_period_start(now: datetime) -> None:
    day = limits.quota_reset("tokensPerDay", now)
    month = limits.quota_reset("tokensPerMonth", now)
    assert day > now and day - now <= timedelta(days=1) and (day.hour, day.minute) == (0, 0)
    assert month > now and month.day == 1 and month - now <= timedelta(days=31)
    assert month >= day


@given(st.fixed_dictionaries({}, optional={k: st.one_of(st.none(), st.integers(0, 100)) for k in limits.RULE_KEYS}))
def test_override_keys_replace_defaults_and_null_means_unlimited(override: dict[str, Any]) -> None:
    base = limits.Rule(requests_per_minute=10, burst=2, tokens_per_day=5, tokens_per_month=50, spend_per_month_usd=1.0)
    merged = base.merged(override).to_json()
    for key in limits.RULE_KEYS:
        want = override[key] if key in override else base.to_json()[key]
        if key == "burst":
            want = want or 0
        assert merged[key] == want


def test_identity_of_each_kind_of_caller() -> None:
    """Typed, hashed, fixed-size keys: no caller's claims shape a key's kind or length."""
    admin = limits.identity(Principal(role="project_admin", via_api_key=True), "1.2.3.4")
    assert admin == limits.ADMIN and admin.key == "key:admin"
    user = limits.identity(Principal(role="authenticated", user_id="u1"), "1.2.3.4")
    assert user == limits.user_subject("u1") and user.key.startswith("user:") and user.label == "user:u1"
    named_admin = limits.identity(Principal(role="project_admin", user_id="admin"), None)
    assert named_admin.key != admin.key and named_admin.key.startswith("user:")
    anon = limits.identity(Principal(role="anon", user_id="anon-key"), "1.2.3.4")
    assert anon.key.startswith("anon:") and anon.label == "anon:anon-key:1.2.3.4"
    assert anon != limits.identity(Principal(role="anon", user_id="anon-key"), "1.2.3.5")
    assert limits.identity(Principal(role="anon"), None).label == "anon:anon:unknown"
    huge = limits.identity(Principal(role="authenticated", user_id="x" * 5000), None)
    keys = {s.key for s in (admin, user, named_admin, anon, huge)}
    assert len(keys) == 5 and all(len(k) <= 80 for k in keys) and len(huge.label) <= 80
