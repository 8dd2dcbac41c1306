"""The overview page shows the period's batches (usage grouped by batch) once there are any."""

from __future__ import annotations

from tests.batches.helpers import chat_item, enable_models, submit, wait_ended
from tests.support import SQL, Gateway

from .conftest import Page


def test_the_overview_shows_the_top_batches(page: Page, gateway: Gateway, sql: SQL) -> None:
    enable_models(gateway)
    page.sign_in()
    assert page.all('svg[data-chart="top-batches"]') == []  # no batch yet: no card
    user = gateway.user(sub="ann")
    big = submit(gateway, [chat_item(f"i{n}") for n in range(3)], user)
    small = submit(gateway, [chat_item("only")], user)
    wait_ended(gateway, big["id"], user)
    wait_ended(gateway, small["id"], user)
    page.reload("overview")
    bars = page.all('svg[data-chart="top-batches"] rect')
    assert {page.attr(r, "data-key"): page.number(r, "data-value") for r in bars} == {big["id"]: 3, small["id"]: 1}
    assert page.console_errors() == []
