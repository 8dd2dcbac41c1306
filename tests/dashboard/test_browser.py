"""The dashboard in a real headless Chromium against a gateway on the embedded PostgreSQL and the simulator."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.support import SQL, Gateway, sim_chats, sim_reset, wait_for

from .conftest import Page


def chat(gw: Gateway, model: str, user: str = "user-1", text: str = "hi") -> int:
    r = gw.client.post(
        "/api/ai/chat/completion",
        json={"model": model, "messages": [{"role": "user", "content": text}]},
        headers=gw.user(sub=user),
    )
    return r.status_code


def summary(gw: Gateway, **params: str) -> dict[str, Any]:
    return gw.client.get("/api/ai/usage/summary", params=params, headers=gw.admin()).json()


def test_a_wrong_key_is_refused_and_the_right_one_signs_in(page: Page) -> None:
    page.open()
    page.find("#key").send_keys("ik_wrong")
    page.find("#signin button[type=submit]").click()
    WebDriverWait(page.driver, 10).until(lambda d: page.find("#signin-error").text)
    assert "not the admin API key" in page.find("#signin-error").text
    page.shot("sign-in")
    assert page.driver.execute_script("return sessionStorage.length") == 0
    page.sign_in()
    assert page.driver.execute_script("return sessionStorage.length") == 1
    assert page.driver.get_cookies() == []
    page.find("#signout").click()
    assert page.find("#signin").is_displayed()
    assert page.driver.execute_script("return sessionStorage.length") == 0


def test_enable_a_model_then_the_charts_draw_the_traffic(page: Page, gateway: Gateway, sql: SQL) -> None:
    page.sign_in()
    page.shot("overview-empty")
    page.go("models")
    page.find("#catalog-search").send_keys("gpt-4o-mini")
    row = page.find('#catalog tr[data-model="openai/gpt-4o-mini"]')
    page.wait_ready_again("models", row.find_element(By.TAG_NAME, "button"))
    assert page.all('#configs tr[data-model="openai/gpt-4o-mini"]')
    gateway.enable("anthropic/claude-3.5-haiku")

    sent = [("openai/gpt-4o-mini", "alice")] * 3 + [("anthropic/claude-3.5-haiku", "bob")] * 2
    for model, user in sent:
        assert chat(gateway, model, user) == 200
    wait_for(lambda: len(sql("SELECT 1 FROM ai.usage")) == 5)
    want = summary(gateway)
    page.reload("overview")
    page.shot("overview")

    assert page.number(page.find('svg[data-metric="requests"]'), "data-total") == 5
    per_model: dict[str, float] = {}
    for bar in page.all('svg[data-metric="requests"] rect'):
        series = page.attr(bar, "data-series")
        per_model[series] = per_model.get(series, 0) + page.number(bar, "data-value")
    assert per_model == {"openai/gpt-4o-mini": 3, "anthropic/claude-3.5-haiku": 2}
    assert int(page.number(page.find('svg[data-metric="tokens"]'), "data-total")) == want["totalTokens"] > 0
    cost = page.number(page.find('svg[data-metric="cost"]'), "data-total")
    assert cost == pytest.approx(want["totalCostUsd"], abs=1e-6)
    assert page.find("#total-requests").text == "5"
    top_users = page.all('svg[data-chart="top-users"] rect')
    assert {page.attr(r, "data-key"): page.number(r, "data-value") for r in top_users} == {"alice": 3, "bob": 2}
    top_models = page.all('svg[data-chart="top-models"] rect')
    assert {page.attr(r, "data-key") for r in top_models} == {"openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"}
    assert page.console_errors() == []


def test_a_system_prompt_edited_in_the_page_reaches_the_next_chat(
    page: Page, gateway: Gateway, simulator: object
) -> None:
    gateway.enable("openai/gpt-4o-mini")
    page.sign_in()
    page.go("models")
    page.find('#configs tr[data-model="openai/gpt-4o-mini"] button[data-action="edit"]').click()
    prompt = page.find("#edit-system-prompt")
    prompt.clear()
    prompt.send_keys("Answer like a pirate.")
    page.find("#edit-fallbacks").send_keys("openai/gpt-4o")
    page.shot("models")
    page.wait_ready_again("models", page.find("#edit-save"))
    assert "Answer like a pirate." in page.find('#configs tr[data-model="openai/gpt-4o-mini"]').text

    sim_url = gateway.settings.openrouter_base_url.removesuffix("/api/v1")
    sim_reset(sim_url)
    assert chat(gateway, "openai/gpt-4o-mini") == 200
    sent = sim_chats(sim_url)[-1]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "Answer like a pirate."}
    cfg = gateway.client.get("/api/ai/configurations", headers=gateway.admin()).json()[0]
    assert cfg["fallbackModels"] == ["openai/gpt-4o"]


def test_a_bad_content_policy_is_refused_with_the_reason(page: Page, gateway: Gateway) -> None:
    gateway.enable("openai/gpt-4o-mini")
    page.sign_in()
    page.go("models")
    page.find('button[data-action="edit"]').click()
    policy = page.find("#edit-policy")
    policy.clear()
    policy.send_keys('{"denyPatterns": ["(unclosed"]}')
    page.find("#edit-save").click()
    WebDriverWait(page.driver, 10).until(lambda d: page.find("#edit-error").text)
    assert "pattern 0" in page.find("#edit-error").text
    cfg = gateway.client.get("/api/ai/configurations", headers=gateway.admin()).json()[0]
    assert cfg["contentPolicy"] in (None, {"denyPatterns": [], "moderation": False})


def test_set_replace_and_remove_a_byok_key(page: Page, gateway: Gateway) -> None:
    page.sign_in()
    page.go("credentials")
    assert page.find("#key-source").text == "env"
    page.find("#byok-key").send_keys("sk-or-v1-invalid-0000")  # the simulator refuses it
    page.find("#byok-save").click()
    WebDriverWait(page.driver, 10).until(lambda d: page.find("#byok-error").text)
    assert page.find("#key-source").text == "env"
    page.find("#byok-key").clear()
    page.find("#byok-key").send_keys("sk-or-v1-dash-1111222233334444")
    page.wait_ready_again("credentials", page.find("#byok-save"))
    assert page.find("#key-source").text == "byok"
    assert page.find("#masked-key").text == "sk-o****4444"
    assert "1111222233334444" not in page.driver.page_source
    page.shot("credentials")
    page.wait_ready_again("credentials", page.find("#byok-remove"))
    assert page.find("#key-source").text == "env"
    assert page.all("#byok-remove") == []
    status = gateway.client.get("/api/ai/gateway/config", headers=gateway.admin()).json()
    assert status["hasByokKey"] is False


def test_a_limit_set_in_the_page_refuses_and_the_refusal_shows_in_the_audit(page: Page, gateway: Gateway) -> None:
    gateway.enable("openai/gpt-4o-mini")
    page.sign_in()
    page.go("limits")
    page.find("#user-requestsPerMinute").send_keys("1")
    page.wait_ready_again("limits", page.find("#limits-save"))
    assert gateway.client.get("/api/ai/limits", headers=gateway.admin()).json()["perUser"]["requestsPerMinute"] == 1
    page.find("#override-user").send_keys("vip")
    page.find("#override-tokensPerDay").send_keys("5000")
    page.wait_ready_again("limits", page.find("#override-save"))
    assert page.all('#overrides tr[data-user="vip"]')
    page.shot("limits")

    assert chat(gateway, "openai/gpt-4o-mini", "carol") == 200
    assert chat(gateway, "openai/gpt-4o-mini", "carol") == 429
    page.go("audit")
    Select(page.find("#filter-action")).select_by_value("RATE_LIMITED")
    page.wait_ready_again("audit", page.find("#filter-apply"))
    rows = page.all('#audit-table tbody tr[data-action="RATE_LIMITED"]')
    assert len(rows) == 1
    assert "requestsPerMinute" in rows[0].text
    assert page.all('#audit-table tbody tr:not([data-action="RATE_LIMITED"])') == []
    page.go("overview")
    refused = {
        page.attr(r, "data-key"): page.number(r, "data-value") for r in page.all('svg[data-chart="refusals"] rect')
    }
    assert refused == {"RATE_LIMITED": 1, "QUOTA_EXCEEDED": 0, "CONTENT_BLOCKED": 0}


def test_usage_filters_pages_and_exports(page: Page, gateway: Gateway, sql: SQL, tmp_path: Path) -> None:
    mini = gateway.enable("openai/gpt-4o-mini")
    gateway.enable("openai/gpt-4o")
    formula = "=1+1"  # a user id a spreadsheet would run as a formula
    for i in range(55):
        assert chat(gateway, "openai/gpt-4o-mini", "u0" if i % 2 == 0 else formula) == 200
    assert chat(gateway, "openai/gpt-4o", "u0") == 200
    wait_for(lambda: len(sql("SELECT 1 FROM ai.usage")) == 56)
    page.sign_in()
    page.go("usage")
    assert len(page.all("#usage-table tbody tr")) == 50
    assert page.attr(page.find(".pager span"), "data-total") == "56"
    page.wait_ready_again("usage", page.find('.pager button[data-action="next"]'))
    assert len(page.all("#usage-table tbody tr")) == 6
    page.shot("usage")
    Select(page.find("#filter-configId")).select_by_value(mini)
    page.find("#filter-user").send_keys(formula)
    page.wait_ready_again("usage", page.find("#filter-apply"))
    assert page.attr(page.find(".pager span"), "data-total") == "27"
    for row in page.all("#usage-table tbody tr"):
        cells = row.find_elements(By.TAG_NAME, "td")
        assert (cells[1].text, cells[2].text) == ("openai/gpt-4o-mini", formula)

    page.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    page.find("#csv").click()
    csv_file = tmp_path / "usage.csv"
    assert wait_for(csv_file.is_file, timeout=10)
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text())))
    assert len(rows) == 27 == int(page.attr(page.find("#csv + p"), "data-rows"))
    assert {r["userId"] for r in rows} == {"'" + formula}
    assert {r["modelId"] for r in rows} == {"openai/gpt-4o-mini"}
    want = sql("SELECT sum(input_tokens) AS t FROM ai.usage WHERE user_id = %s", (formula,))[0]["t"]
    assert sum(int(r["inputTokens"]) for r in rows) == want


def test_stored_markup_is_shown_as_text_and_never_runs(page: Page, gateway: Gateway, sql: SQL) -> None:
    payload = '<img src=x onerror="window.__pwned=1">'
    sql(
        "INSERT INTO ai.audit_logs (actor, action, details, ip_address) VALUES (%s, 'CONTENT_BLOCKED', %s, %s)",
        ("<script>window.__pwned=2</script>", json.dumps({"model": payload, "userId": payload}), payload),
    )
    page.sign_in()
    page.go("audit")
    row = page.find("#audit-table tbody tr")
    assert payload in row.text
    assert "<script>window.__pwned=2</script>" in row.text
    assert page.all("#view img") == [] and page.all("#view script") == []
    assert page.driver.execute_script("return window.__pwned") is None
    page.shot("audit")


def test_connect_shows_the_base_url_and_snippets(page: Page, gateway: Gateway) -> None:
    page.sign_in()
    page.go("connect")
    assert page.find("#base-url").text == gateway.url
    snippets = [p.text for p in page.all("#view pre")][1:]
    assert len(snippets) == 5
    assert all(gateway.url in s for s in snippets)
    assert any(f'base_url="{gateway.url}/api/ai/v1"' in s for s in snippets)
    page.shot("connect")


def test_disable_from_the_models_page(page: Page, gateway: Gateway) -> None:
    gateway.enable("openai/gpt-4o-mini")
    page.sign_in()
    page.go("models")
    page.wait_ready_again("models", page.find('#configs tr[data-model="openai/gpt-4o-mini"] button.danger'))
    assert page.all("#configs") == []
    assert gateway.client.get("/api/ai/configurations", headers=gateway.admin()).json() == []
    assert chat(gateway, "openai/gpt-4o-mini") == 400


def test_every_page_draws_without_a_console_error_and_inline_script_is_refused(page: Page, gateway: Gateway) -> None:
    gateway.enable("openai/gpt-4o-mini")
    assert chat(gateway, "openai/gpt-4o-mini") == 200
    page.sign_in()
    for name in ("models", "credentials", "limits", "usage", "audit", "connect", "overview"):
        page.go(name)
        assert page.attr(page.find("#nav a.active"), "href").endswith("#" + name)
    assert page.console_errors() == []
    # The policy at work: a script element with inline code, added at run time, does not run.
    page.driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.append(s)"
    )
    assert page.driver.execute_script("return window.__inline") is None
    assert any("Content Security Policy" in e for e in page.console_errors())
