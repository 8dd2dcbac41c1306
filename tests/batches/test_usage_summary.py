"""Batches in the admin's usage summary: `groupBy=batch` totals each batch's rows (live calls under '')."""

from __future__ import annotations

from tests.batches.helpers import CHAT, chat_item, embed_item, enable_models, submit, wait_ended
from tests.support import SQL, MakeGateway, wait_usage


def test_group_by_batch(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway()
    enable_models(gw)
    user = gw.user(sub="fay")
    one = submit(gw, [chat_item("a"), chat_item("b"), embed_item("c")], user)
    two = submit(gw, [chat_item("a")], user)
    wait_ended(gw, one["id"], user)
    wait_ended(gw, two["id"], user)
    live = gw.client.post(
        "/api/ai/chat/completion", json={"model": CHAT, "messages": [{"role": "user", "content": "x"}]}, headers=user
    )
    assert live.status_code == 200
    wait_usage(sql, 5)

    r = gw.client.get("/api/ai/usage/summary", params={"groupBy": "batch"}, headers=gw.admin())
    assert r.status_code == 200, r.text
    body = r.json()
    groups = {g["key"]: g for g in body["groups"]}
    assert body["groupBy"] == "batch" and set(groups) == {one["id"], two["id"], ""}
    assert (groups[one["id"]]["totalRequests"], groups[two["id"]]["totalRequests"], groups[""]["totalRequests"]) == (
        3,
        1,
        1,
    )
    assert body["totalRequests"] == 5 and body["cacheHits"] == 0 and groups[one["id"]]["savedUsd"] == 0
    tokens = sql(
        "SELECT SUM(input_tokens + COALESCE(output_tokens, 0)) AS t FROM ai.usage WHERE batch_id = %s", (one["id"],)
    )
    assert groups[one["id"]]["totalTokens"] == tokens[0]["t"]
    # The other filters still apply.
    r = gw.client.get("/api/ai/usage/summary", params={"groupBy": "batch", "userId": "nobody"}, headers=gw.admin())
    assert r.json()["groups"] == [] and r.json()["totalRequests"] == 0
    r = gw.client.get("/api/ai/usage/summary", params={"groupBy": "batches"}, headers=gw.admin())
    assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT"
