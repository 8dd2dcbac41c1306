"""GET /api/ai/usage/summary over rollups + raw rows equals the plain aggregation over raw rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from aigateway.local import EmbeddedPostgres
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import Gateway, MakeGateway

from .conftest import SQL, at, insert_usage, make_configs, roll_up_all, run_rollup, today

# The reference: the same filter and groups over ai.usage only, written out independently.
_KEYS = {
    "day": "(u.created_at AT TIME ZONE 'UTC')::date::text",
    "model": "COALESCE(u.model_id, '')",
    "user": "COALESCE(u.user_id, '')",
}
_REF_TOTALS = """COALESCE(sum(u.input_tokens), 0) AS i, COALESCE(sum(u.output_tokens), 0) AS o,
    COALESCE(sum(COALESCE(u.input_tokens, 0) + COALESCE(u.output_tokens, 0)), 0) AS t,
    COALESCE(sum(u.image_count), 0) AS img, count(*) AS n, COALESCE(sum(u.cost_usd), 0) AS c,
    count(*) FILTER (WHERE u.cached) AS h, COALESCE(sum(u.saved_usd), 0) AS sv"""
_REF_WHERE = """WHERE (%(start)s::timestamptz IS NULL OR u.created_at >= %(start)s)
    AND (%(end)s::timestamptz IS NULL OR u.created_at <= %(end)s)
    AND (%(user)s::text IS NULL OR u.user_id = %(user)s)
    AND (%(config)s::uuid IS NULL OR u.config_id = %(config)s)"""


def _body(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "totalInputTokens": int(r["i"]),
        "totalOutputTokens": int(r["o"]),
        "totalTokens": int(r["t"]),
        "totalImageCount": int(r["img"]),
        "totalRequests": int(r["n"]),
        "totalCostUsd": round(float(r["c"]), 10),
        "cacheHits": int(r["h"]),
        "cacheHitRate": round(int(r["h"]) / int(r["n"]), 4) if int(r["n"]) else 0.0,
        "savedUsd": round(float(r["sv"]), 10),
    }


def expected(
    sql: SQL, start: datetime | None, end: datetime | None, user: str | None, config: str | None, group: str | None
) -> dict[str, Any]:
    p = {"start": start, "end": end, "user": user, "config": config}
    body = _body(sql(f"SELECT {_REF_TOTALS} FROM ai.usage u {_REF_WHERE}", p)[0])  # noqa: S608 - constants
    if group:
        key = _KEYS[group]
        rows = sql(f"SELECT {key} AS key, {_REF_TOTALS} FROM ai.usage u {_REF_WHERE} GROUP BY 1 ORDER BY 1", p)  # noqa: S608
        body["groupBy"] = group
        body["groups"] = [{"key": r["key"], **_body(r)} for r in rows]
    return body


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")


def ask(
    gw: Gateway, start: datetime | None, end: datetime | None, user: str | None, config: str | None, group: str | None
) -> dict[str, Any]:
    params = {
        k: v
        for k, v in {
            "startDate": _iso(start),
            "endDate": _iso(end),
            "userId": user,
            "configId": config,
            "groupBy": group,
        }.items()
        if v is not None
    }
    r = gw.client.get("/api/ai/usage/summary", params=params, headers=gw.admin())
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    # The Python SDK's names for the same totals (tests/sdks/test_python_sdk.py checks them).
    assert body.pop("totalCost") == body["totalCostUsd"]
    if group == "model":
        assert set(body.pop("byModel")) == {str(g["key"] or "unknown") for g in body["groups"]}
    return body


def _reset(sql: SQL) -> None:
    sql("TRUNCATE ai.usage, ai.usage_daily, ai.usage_rollup_state")


# ---------------------------------------------------------------- the property

_USERS = ["u1", "u2", "", None]
_MODELS = ["a/m1", "b/m2", None]


def _instant(draw: Callable[..., Any], base: date) -> datetime:
    day = base + timedelta(days=draw(st.integers(-7, 1)))
    kind = draw(st.sampled_from(["midnight", "after-midnight", "last-micro", "any"]))
    if kind == "midnight":
        return at(day, 0)
    if kind == "after-midnight":
        return at(day, 0, 0, 0, 1)
    if kind == "last-micro":
        return at(day, 23, 59, 59, 999_999)
    return at(
        day, draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59)), draw(st.integers(0, 999_999))
    )


@st.composite
def usage_rows(draw: Callable[..., Any], base: date, configs: list[str]) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 25))
    rows = []
    for _ in range(n):
        rows.append(
            {
                "created_at": _instant(draw, base),
                "model_id": draw(st.sampled_from(_MODELS)),
                "user_id": draw(st.sampled_from(_USERS)),
                "config_id": draw(st.sampled_from([*configs, None])),
                "input_tokens": draw(st.one_of(st.none(), st.integers(1, 5000))),
                "output_tokens": draw(st.one_of(st.none(), st.integers(1, 5000))),
                "image_count": draw(st.one_of(st.none(), st.integers(1, 4))),
                "cost_usd": draw(
                    st.one_of(
                        st.none(),
                        st.decimals(
                            min_value=Decimal(0), max_value=Decimal(5), places=10, allow_nan=False, allow_infinity=False
                        ),
                    )
                ),
                "cached": draw(st.booleans()),
                "saved_usd": draw(
                    st.one_of(st.none(), st.decimals(min_value=Decimal(0), max_value=Decimal(5), places=10))
                ),
            }
        )
    return rows


@st.composite
def windows(draw: Callable[..., Any], base: date, configs: list[str]) -> dict[str, Any]:
    return {
        "start": _instant(draw, base) if draw(st.booleans()) else None,
        "end": _instant(draw, base) if draw(st.booleans()) else None,
        "user": draw(st.sampled_from(["u1", "u2", None])),
        "config": draw(st.sampled_from([*configs, None])),
        "group": draw(st.sampled_from(["day", "model", "user", None])),
    }


def test_summary_equals_the_raw_aggregation_on_random_data(
    make_gateway: MakeGateway, sql: SQL, pg: EmbeddedPostgres
) -> None:
    gw = make_gateway()
    configs = make_configs(sql, 2)
    base = today(sql)

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        _reset(sql)
        insert_usage(sql, data.draw(usage_rows(base, configs), label="rows"))
        if data.draw(st.booleans(), label="rolled up"):
            roll_up_all(sql, pg.uri)
            # Rows that arrive after the run (late spool replays, today's traffic) are read raw.
            insert_usage(sql, data.draw(usage_rows(base, configs), label="late rows"))
            if data.draw(st.booleans(), label="lagging state"):
                # A rollup state that lags behind: yesterday not rolled up yet.
                sql("UPDATE ai.usage_rollup_state SET rolled_through = rolled_through - 1")
                sql("DELETE FROM ai.usage_daily WHERE day > (SELECT rolled_through FROM ai.usage_rollup_state)")
        for _ in range(3):
            w = data.draw(windows(base, configs), label="window")
            got = ask(gw, w["start"], w["end"], w["user"], w["config"], w["group"])
            assert got == expected(sql, w["start"], w["end"], w["user"], w["config"], w["group"]), w

    check()


# ---------------------------------------------------------------- examples


def test_whole_days_come_from_the_rollups_and_edges_from_raw_rows(
    make_gateway: MakeGateway, sql: SQL, pg: EmbeddedPostgres
) -> None:
    gw = make_gateway()
    t = today(sql)
    d3, d2 = t - timedelta(days=3), t - timedelta(days=2)
    insert_usage(
        sql,
        [
            {"created_at": at(d3, 6), "user_id": "u", "input_tokens": 10},
            {"created_at": at(d2, 6), "user_id": "u", "input_tokens": 20},
            {"created_at": at(t, 0, 0, 0, 5), "user_id": "u", "input_tokens": 40},
        ],
    )
    roll_up_all(sql, pg.uri)
    # Mark the rollup of d3 so the answer shows where it read from.
    sql(
        "UPDATE ai.usage_daily SET input_tokens = input_tokens + 1000, total_tokens = total_tokens + 1000"
        " WHERE day = %s",
        (d3,),
    )

    def tokens(start: datetime | None, end: datetime | None) -> int:
        return int(ask(gw, start, end, None, None, None)["totalInputTokens"])

    assert tokens(None, None) == 1070  # d3 from rollups, the rest too
    assert tokens(at(d3, 0), at(d3, 23, 59, 59, 999_999)) == 1010  # d3 whole: rollup
    assert tokens(at(d3, 0, 0, 0, 1), None) == 70  # d3 partial: raw; d2 rollup; today raw
    assert tokens(None, at(d3, 23, 59, 59, 999_998)) == 10  # d3 partial at the end: raw
    assert tokens(at(d2, 0), at(t, 0)) == 20  # today's first instant is raw
    grouped = ask(gw, None, None, None, None, "day")
    assert [(g["key"], g["totalInputTokens"]) for g in grouped["groups"]] == [
        (d3.isoformat(), 1010),
        (d2.isoformat(), 20),
        (t.isoformat(), 40),
    ]


def test_before_the_first_rollup_and_after_a_late_row_the_answer_is_exact(
    make_gateway: MakeGateway, sql: SQL, pg: EmbeddedPostgres
) -> None:
    gw = make_gateway()
    t = today(sql)
    old = t - timedelta(days=4)
    insert_usage(sql, [{"created_at": at(old, 3), "user_id": "u", "cost_usd": Decimal("0.1")}])
    whole = (at(old, 0), at(old, 23, 59, 59, 999_999))
    assert ask(gw, *whole, None, None, None) == expected(sql, *whole, None, None, None)
    run_rollup(pg.uri)
    insert_usage(sql, [{"created_at": at(old, 4), "user_id": "u", "cost_usd": Decimal("0.2")}])
    body = ask(gw, *whole, "u", None, "user")
    assert body == expected(sql, *whole, "u", None, "user")
    assert body["totalRequests"] == 2 and body["totalCostUsd"] == 0.3


def test_a_rollup_committing_between_state_and_query_is_detected(clean: SQL, pg: EmbeddedPostgres) -> None:
    """The summary reads the rollup state, then aggregates; a rollup committing in between changes
    what usage_daily holds, so the aggregate must notice (same snapshot check) and read again."""
    import asyncio
    import threading

    from aigateway.db import Database
    from aigateway.store.usage import summary

    sql = clean
    old = today(sql) - timedelta(days=2)
    insert_usage(sql, [{"created_at": at(old, 5), "user_id": "u", "input_tokens": 5}])
    roll_up_all(sql, pg.uri)
    insert_usage(sql, [{"created_at": at(old, 6), "user_id": "u", "input_tokens": 7}])  # late row
    reads: list[Any] = []

    class Racing(Database):
        async def fetchone(self, template: str, params: Any = None) -> dict[str, Any] | None:
            row = await super().fetchone(template, params)
            if "usage_rollup_state" in template:
                reads.append(row)
                if len(reads) == 1:  # a rollup commits right after the first state read
                    th = threading.Thread(target=run_rollup, args=(pg.uri,))
                    th.start()
                    th.join()
            return row

    async def go() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        db = Racing(lambda: pg.uri, schema="ai")
        try:
            return await summary(db, start=None, end=None, config_id=None, user_id=None, group_by="day")
        finally:
            await db.close()

    total, groups = asyncio.run(go())
    assert len(reads) == 2 and reads[0] != reads[1]
    assert int(total["total_input_tokens"]) == 12 and int(total["total_requests"]) == 2
    assert [(g["key"], int(g["total_input_tokens"])) for g in groups] == [(old.isoformat(), 12)]


def test_an_empty_window_still_has_totals(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway()
    body = ask(gw, None, None, "nobody", None, "model")
    assert body == {
        "totalInputTokens": 0,
        "totalOutputTokens": 0,
        "totalTokens": 0,
        "totalImageCount": 0,
        "totalRequests": 0,
        "totalCostUsd": 0.0,
        "cacheHits": 0,
        "cacheHitRate": 0.0,
        "savedUsd": 0.0,
        "groupBy": "model",
        "groups": [],
    }
