"""The page and the response cache: the Models form turns it on, the overview counts hits and
savings, the Cache page shows the entries and purges them, and caller-made ids stay text."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.support import SQL, Gateway, wait_usage

from .conftest import Page

MODEL = "openai/gpt-4o-mini"
MARKUP = '<img src=x onerror="window.__pwned=1">'


def _chat(gw: Gateway, sub: str = "alice", text: str = "the same question") -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    r = gw.client.post("/api/ai/chat/completion", json=body, headers=gw.user(sub=sub))
    assert r.status_code == 200, r.text
    return r


def _config(gw: Gateway) -> dict[str, Any]:
    configs = gw.client.get("/api/ai/configurations", headers=gw.admin()).json()
    return next(c for c in configs if c["modelId"] == MODEL)


def _edit(page: Page) -> None:
    page.find(f'#configs tr[data-model="{MODEL}"] button[data-action="edit"]').click()
    WebDriverWait(page.driver, 5).until(lambda d: page.all("#edit-cache-on"))


def _set_ttl(page: Page, value: str) -> None:
    ttl = page.find("#edit-cache-ttl")
    ttl.clear()
    ttl.send_keys(value)


def test_cache_on_from_the_page_then_hits_savings_and_a_purge(page: Page, gateway: Gateway, sql: SQL) -> None:
    page.sign_in()
    page.go("models")
    page.find("#catalog-search").send_keys("gpt-4o-mini")
    row = page.find(f'#catalog tr[data-model="{MODEL}"]')
    page.wait_ready_again("models", row.find_element(By.TAG_NAME, "button"))
    assert page.attr(page.find(f'#configs tr[data-model="{MODEL}"] td[data-cache]'), "data-cache") == "off"

    _edit(page)
    page.find("#edit-cache-on").click()
    _set_ttl(page, "0")  # out of range: the API refuses it and the page shows the API's message
    page.find("#edit-save").click()
    WebDriverWait(page.driver, 5).until(lambda d: page.find("#edit-error").text)
    refused = gateway.client.patch(
        f"/api/ai/configurations/{_config(gateway)['id']}",
        json={"cache": {"ttlSeconds": 0, "scope": "user"}},
        headers=gateway.admin(),
    )
    assert refused.status_code == 400 and refused.json()["error"] == "INVALID_INPUT"
    assert page.find("#edit-error").text == refused.json()["message"]
    assert _config(gateway).get("cache") is None
    page.shot("models-cache-refused")

    _set_ttl(page, "600")
    Select(page.find("#edit-cache-scope")).select_by_value("project")
    page.wait_ready_again("models", page.find("#edit-save"))
    assert _config(gateway)["cache"] == {"ttlSeconds": 600, "scope": "project"}
    assert page.attr(page.find(f'#configs tr[data-model="{MODEL}"] td[data-cache]'), "data-cache") == "project"

    assert _chat(gateway).headers["x-gateway-cache"] == "MISS"
    assert _chat(gateway, sub="bob").headers["x-gateway-cache"] == "HIT"
    wait_usage(sql, 2)
    want = gateway.client.get("/api/ai/usage/summary", headers=gateway.admin()).json()
    assert want["cacheHits"] == 1 and want["savedUsd"] > 0

    page.reload("overview")
    assert page.find("#cache-hits").text == "1"
    assert page.number(page.find("#cache-hit-rate"), "data-value") == 0.5
    saved = page.number(page.find("#cache-saved"), "data-value")
    assert saved == pytest.approx(want["savedUsd"], abs=1e-9) and saved > 0
    chart = page.number(page.find('svg[data-metric="saved"]'), "data-total")
    assert chart == pytest.approx(want["savedUsd"], abs=1e-6)
    page.shot("overview-cache")

    page.go("usage")
    hit = page.all('#usage-table td[data-cached="hit"]')
    assert len(hit) == 1 and hit[0].text.startswith("hit, saved $") and len(page.all("#usage-table tbody tr")) == 2

    page.go("cache")
    assert page.number(page.find("#cache-entries"), "data-value") == 1
    assert page.number(page.find("#cache-hits-30d"), "data-value") == 1
    bars = page.all('svg[data-chart="cache-entries"] rect')
    assert [(page.attr(b, "data-key"), page.number(b, "data-value")) for b in bars] == [(f"{MODEL} (chat)", 1)]
    page.shot("cache")

    Select(page.find("#purge-model")).select_by_value(MODEL)
    page.find("#purge-by-model").click()
    assert MODEL in page.find("#purge-confirm").text
    page.find("#purge-no").click()  # cancelled: nothing is deleted
    assert page.all("#purge-yes") == []
    assert int(sql("SELECT count(*) AS n FROM ai.cache_entries")[0]["n"]) == 1

    page.find("#purge-by-model").click()
    page.wait_ready_again("cache", page.find("#purge-yes"))
    assert page.number(page.find("#cache-entries"), "data-value") == 0
    assert page.find("#cache-empty").text == "The cache is empty."
    assert page.number(page.find("#purge-result"), "data-deleted") == 1
    assert page.find("#purge-result").text.startswith(f"Purged 1 entry: the entries of model {MODEL} (")
    assert _chat(gateway).headers["x-gateway-cache"] == "MISS"
    page.shot("cache-purged")

    page.go("audit")
    Select(page.find("#filter-action")).select_by_value("PURGE_CACHE")
    page.wait_ready_again("audit", page.find("#filter-apply"))
    rows = page.all('#audit-table tbody tr[data-action="PURGE_CACHE"]')
    assert len(rows) == 1 and f'"modelId":"{MODEL}"' in rows[0].text and '"deleted":1' in rows[0].text
    errors = page.console_errors()  # the browser logs the refused PATCH, and nothing else
    assert len(errors) == 1 and "/api/ai/configurations/" in errors[0] and "400" in errors[0]


def test_a_purge_needs_a_user_id(page: Page, gateway: Gateway) -> None:
    page.sign_in()
    page.go("cache")
    page.find("#purge-by-user").click()
    assert page.find("#purge-error").text == "A user id is required"
    assert page.all("#purge-yes") == []


def test_model_and_user_ids_with_markup_are_text(page: Page, gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL, cache={"ttlSeconds": 600, "scope": "user"})
    _chat(gateway, sub=MARKUP)
    sql(
        "INSERT INTO ai.cache_entries (key, kind, model_id, user_id, body, bytes, expires_at)"
        " VALUES ('\\x01', 'chat', %s, %s, '\\x00', 1, now() + interval '1 hour')",
        (MARKUP, MARKUP),
    )
    page.sign_in()
    assert page.find("#cache-hits").text == "0"
    page.go("cache")
    assert page.number(page.find("#cache-entries"), "data-value") == 2
    assert MARKUP + " (chat)" in [page.attr(r, "data-key") for r in page.all('svg[data-chart="cache-entries"] rect')]
    assert any(MARKUP in li.text for li in page.all("#cache-models li"))
    Select(page.find("#purge-model")).select_by_value(MARKUP)

    page.find("#purge-user").send_keys(MARKUP)
    page.find("#purge-by-user").click()
    assert MARKUP in page.find("#purge-confirm").text
    page.wait_ready_again("cache", page.find("#purge-yes"))
    assert page.number(page.find("#purge-result"), "data-deleted") == 2  # its chat's entry and the inserted one
    assert MARKUP in page.find("#purge-result").text
    assert page.all("#view img") == [] and page.all("#view script") == []
    assert page.driver.execute_script("return window.__pwned") is None
    page.shot("cache-markup")
