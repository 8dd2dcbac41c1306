"""Thirty days of traffic drawn day by day and model by model, equal to the rows they come from."""

from __future__ import annotations

from selenium.webdriver.support.ui import Select

from tests.support import SQL, Gateway

from .conftest import Page

MODELS = ("openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "google/gemini-2.5-flash")


def test_thirty_days_stacked_by_model(page: Page, gateway: Gateway, sql: SQL) -> None:
    ids = [gateway.enable(m) for m in MODELS]
    for n, (cid, model) in enumerate(zip(ids, MODELS, strict=True)):
        # A different daily pattern per model, over the last 30 UTC days (today included).
        sql(
            """INSERT INTO ai.usage (config_id, model_id, input_tokens, output_tokens, user_id, cost_usd,
                                     key_source, created_at)
               SELECT %s, %s, 40 + d, 90 + 3 * d, 'user-' || (d %% 4), 0.0001 * (1 + d %% 5), 'env',
                      date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                        - make_interval(days => d) + make_interval(hours => 1 + r)
               FROM generate_series(0, 29) AS d, generate_series(0, 6) AS r
               WHERE r < 1 + ((d * (%s + 2) + %s) %% 7)""",
            (cid, model, n, n),
        )
    want = {
        (r["day"], r["model_id"]): int(r["n"])
        for r in sql(
            "SELECT (created_at AT TIME ZONE 'UTC')::date::text AS day, model_id, count(*) AS n FROM ai.usage"
            " GROUP BY 1, 2"
        )
    }
    page.sign_in()
    Select(page.find("#period")).select_by_value("30")
    page.ready("overview")
    drawn = {
        (page.attr(r, "data-key"), page.attr(r, "data-series")): int(page.number(r, "data-value"))
        for r in page.all('svg[data-metric="requests"] rect')
    }
    assert drawn == want
    assert len({day for day, _ in drawn}) == 30
    tokens = sql("SELECT sum(input_tokens + output_tokens) AS t, sum(cost_usd) AS c FROM ai.usage")[0]
    assert int(page.number(page.find('svg[data-metric="tokens"]'), "data-total")) == tokens["t"]
    assert abs(page.number(page.find('svg[data-metric="cost"]'), "data-total") - float(tokens["c"])) < 1e-6
    page.shot("overview-30-days")
