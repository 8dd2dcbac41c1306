"""A charge that cannot silently fail: the project counter is never hostage to the user's, and a
statement the database refuses is an error, not a dropped connection."""

from __future__ import annotations

import asyncio
import logging
import secrets
from decimal import Decimal

import psycopg
import pytest
from aigateway import limits
from aigateway.errors import GatewayError
from aigateway.flows import metering
from aigateway.services import Services
from aigateway.settings import Settings
from aigateway.store import usage
from aigateway.store.usage import UsageRecord

from tests.support import SQL, MakeGateway

MODEL = "openai/gpt-4o-mini"


def _tokens(sql: SQL, scope: str, subject: str) -> int:
    rows = sql(
        "SELECT COALESCE(SUM(tokens), 0) AS t FROM ai.quota_counters WHERE scope = %s AND subject = %s"
        " AND period = 'day'",
        (scope, subject),
    )
    return int(rows[0]["t"])


@pytest.mark.parametrize("hops", [0, 1])
def test_a_3kb_forwarded_header_loses_no_charge(make_gateway: MakeGateway, sql: SQL, hops: int) -> None:
    gw = make_gateway(trusted_proxy_hops=hops)
    gw.enable(MODEL)
    r = gw.client.put("/api/ai/limits", json={"perProject": {"tokensPerMonth": 10**9}}, headers=gw.admin())
    assert r.status_code == 200, r.text
    huge = secrets.token_urlsafe(2300)  # ~3 KB that does not compress: once past the btree row limit
    anon = {**gw.user(role="anon", sub="anon-key"), "X-Forwarded-For": huge}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "maxTokens": 10}
    r = gw.client.post("/api/ai/chat/completion", json=body, headers=anon)
    assert r.status_code == 200, r.text
    used = sql("SELECT input_tokens + output_tokens AS t FROM ai.usage")
    assert len(used) == 1 and used[0]["t"] > 0
    assert _tokens(sql, "project", "") == used[0]["t"]
    anon_rows = sql("SELECT subject, tokens FROM ai.quota_counters WHERE scope = 'user' AND period = 'day'")
    assert [(len(r["subject"]) <= 80, r["tokens"]) for r in anon_rows] == [(True, used[0]["t"])]
    assert sql("SELECT count(*) AS n FROM ai.quota_holds")[0]["n"] == 0


def test_a_refused_settle_keeps_the_row_and_still_charges_the_project(
    base_settings: Settings, sql: SQL, caplog: pytest.LogCaptureFixture
) -> None:
    """A settle the database refuses (here: a subject longer than the counters allow, which no
    real caller can produce) is written apart: the usage row lands, the project is charged and
    the hold settled, and the refused user charge is logged as an error."""
    sql("TRUNCATE ai.quota_counters, ai.quota_holds")
    svc = Services.from_settings(base_settings)
    hold = sql(
        "INSERT INTO ai.quota_holds (subject, tokens, spend_usd, expires_at) VALUES ('x', 9, 0, now() + "
        "interval '1 hour') RETURNING id"
    )[0]["id"]
    bad = limits.Admission(subject=limits.Subject("user:" + "f" * 200, "user:too-long"), hold_id=hold)
    request_id = "refused-" + secrets.token_hex(4)
    record = UsageRecord(request_id=request_id, model_id=MODEL, input_tokens=3, output_tokens=4, cost_usd=0.25)

    async def run() -> None:
        try:
            await metering.settle(svc, bad, record)
        finally:
            await svc.aclose()

    with caplog.at_level(logging.ERROR):
        asyncio.run(run())
    rows = sql(
        "SELECT input_tokens + output_tokens AS t, quota_charged FROM ai.usage WHERE request_id = %s", (request_id,)
    )
    assert [(r["t"], r["quota_charged"]) for r in rows] == [(7, True)]
    assert _tokens(sql, "project", "") == 7  # the project's counters were charged all the same
    assert sql("SELECT count(*) AS n FROM ai.quota_holds")[0]["n"] == 0  # and the hold settled
    assert any(r.levelno == logging.ERROR and "user's quota counters" in r.getMessage() for r in caplog.records)


def test_a_statement_the_database_refuses_is_not_a_dropped_connection(
    base_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLSTATE 54000 (program limit exceeded) is an OperationalError in psycopg: it must not pass
    for a lost connection (no reconnect and retry, no 503), and the connection stays in use."""
    svc = Services.from_settings(base_settings.with_overrides(db_pool_size=1))

    async def run() -> tuple[type[BaseException], bool]:
        await svc.db.fetch("SELECT 1")
        conn = svc.db._idle[0]
        try:
            await svc.db.fetch("SELECT repeat('x', 1073741824)")
        except BaseException as exc:
            kind = type(exc)
        else:
            raise AssertionError("the statement should have been refused")
        await svc.db.fetch("SELECT 1")
        same = svc.db._idle == [conn]
        await svc.aclose()
        return kind, same

    with caplog.at_level(logging.ERROR):
        kind, same = asyncio.run(run())
    assert kind is psycopg.errors.ProgramLimitExceeded and same
    assert any(r.levelno == logging.ERROR and "54000" in r.getMessage() for r in caplog.records)


def test_a_statement_timeout_is_a_503_and_keeps_the_connection(base_settings: Settings) -> None:
    svc = Services.from_settings(base_settings.with_overrides(db_pool_size=1))

    async def run() -> tuple[int, bool]:
        await svc.db.fetch("SELECT 1")
        conn = svc.db._idle[0]
        try:
            await svc.db.fetch("SELECT set_config('statement_timeout', '50ms', false)")
            await svc.db.fetch("SELECT pg_sleep(1)")
        except GatewayError as err:
            status = err.status
        else:
            raise AssertionError("the statement should have timed out")
        await svc.db.fetch("SELECT set_config('statement_timeout', '0', false)")
        same = svc.db._idle == [conn]
        await svc.aclose()
        return status, same

    assert asyncio.run(run()) == (503, True)


def test_a_cached_row_is_recorded_with_its_tokens_but_spends_no_quota(base_settings: Settings, sql: SQL) -> None:
    """A call answered from the gateway's cache bought nothing upstream: its row keeps the tokens it
    would have cost, its saving and its batch, and no counter moves; a bought call beside it in the
    same settle is charged as usual."""
    sql("TRUNCATE ai.quota_counters, ai.quota_holds")
    svc = Services.from_settings(base_settings)
    who = limits.Subject("user:" + "a" * 64, "user:u1")
    tag = secrets.token_hex(4)
    hit = UsageRecord(
        request_id="hit-" + tag, model_id=MODEL, input_tokens=30, output_tokens=12, cost_usd=0.0,
        cached=True, saved_usd=0.125, batch_id="b-" + tag, charge_subject=who.key,
    )  # fmt: skip
    bought = UsageRecord(
        request_id="buy-" + tag, model_id=MODEL, input_tokens=5, output_tokens=2, cost_usd=0.5,
        charge_subject=who.key,
    )  # fmt: skip

    async def run() -> None:
        try:
            await usage.settle(svc.db, [hit, bought])
        finally:
            await svc.aclose()

    asyncio.run(run())
    rows = sql(
        "SELECT input_tokens + output_tokens AS t, cost_usd, saved_usd, batch_id, cached FROM ai.usage"
        " WHERE request_id = %s",
        ("hit-" + tag,),
    )
    assert [(r["t"], float(r["cost_usd"]), float(r["saved_usd"]), r["batch_id"], r["cached"]) for r in rows] == [
        (42, 0.0, 0.125, "b-" + tag, True)
    ]
    assert _tokens(sql, "project", "") == 7  # only the bought call
    assert _tokens(sql, "user", who.key) == 7


def test_the_previous_releases_array_settle_lands_and_charges_like_the_current_one(sql: SQL) -> None:
    """During a deploy the previous release still calls `settle_calls` with eighteen arrays; that
    form hands its calls to the JSON one, so the row, its one charge and the released hold are the
    same — and a second copy of the same call charges nothing more."""
    sql("TRUNCATE ai.quota_counters, ai.quota_holds")
    subject, tag = "user:" + "b" * 64, secrets.token_hex(4)
    hold = sql(
        "INSERT INTO ai.quota_holds (subject, tokens, spend_usd, expires_at)"
        " VALUES (%s, 500, 0.5, now() + interval '1 hour') RETURNING id",
        (subject,),
    )[0]["id"]
    call = (
        ["old-" + tag], [None], [MODEL], ["chat"], [40], [2], [None], [None], ["u1"], [0.000125], ["env"], [12],
        [None], [subject], [hold], [False], [None], [None],
    )  # fmt: skip
    statement = (
        "SELECT ai.settle_calls(%s::text[], %s::uuid[], %s::text[], %s::text[], %s::integer[], %s::integer[],"
        " %s::integer[], %s::text[], %s::text[], %s::numeric[], %s::text[], %s::integer[], %s::timestamptz[],"
        " %s::text[], %s::bigint[], %s::boolean[], %s::numeric[], %s::text[])"
    )
    sql(statement, call)
    sql(statement, call)  # a redelivered copy: the row exists and is charged, nothing changes
    rows = sql(
        "SELECT input_tokens, output_tokens, cost_usd, quota_charged FROM ai.usage WHERE request_id = %s", (call[0][0],)
    )
    assert [(r["input_tokens"], r["output_tokens"], str(r["cost_usd"]), r["quota_charged"]) for r in rows] == [
        (40, 2, "0.0001250000", True)
    ]
    assert _tokens(sql, "user", subject) == 42
    assert _tokens(sql, "project", "") == 42
    assert sql("SELECT count(*) AS n FROM ai.quota_holds WHERE id = %s", (hold,))[0]["n"] == 0


def test_costs_settle_exactly_whether_float_or_decimal(base_settings: Settings, sql: SQL) -> None:
    """The calls travel as one JSON document: a float cost keeps the digits the upstream sent, a
    Decimal its exact value, and the spend counter adds the stored (rounded) costs."""
    sql("TRUNCATE ai.quota_counters, ai.quota_holds")
    svc = Services.from_settings(base_settings)
    subject, tag = "user:" + "c" * 64, secrets.token_hex(4)
    calls = [
        UsageRecord(request_id=f"f-{tag}", model_id=MODEL, input_tokens=1, cost_usd=1.2e-05, charge_subject=subject),
        UsageRecord(request_id=f"d-{tag}", model_id=MODEL, input_tokens=1, cost_usd=Decimal("0.0000000001"),  # type: ignore[arg-type]
                    charge_subject=subject),
        UsageRecord(request_id=f"s-{tag}", model_id=MODEL, input_tokens=1, cost_usd=0.1 + 0.2, charge_subject=subject),
    ]  # fmt: skip

    async def run() -> None:
        try:
            await usage.settle(svc.db, calls)
        finally:
            await svc.aclose()

    asyncio.run(run())
    costs = {
        r["request_id"][0]: r["cost_usd"]
        for r in sql("SELECT request_id, cost_usd FROM ai.usage WHERE request_id LIKE %s", (f"%-{tag}",))
    }
    assert costs == {"f": Decimal("0.000012"), "d": Decimal("0.0000000001"), "s": Decimal("0.3")}
    spend = sql(
        "SELECT spend_usd FROM ai.quota_counters WHERE scope = 'user' AND subject = %s AND period = 'day'", (subject,)
    )
    assert [r["spend_usd"] for r in spend] == [Decimal("0.3000120001")]
