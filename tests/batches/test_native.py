"""Native batches through the local server: mixed items complete, callers see their own batches only."""

from __future__ import annotations

import pytest

from tests.batches.helpers import CHAT, EMBED, chat_item, embed_item, enable_models, results, submit, wait_ended
from tests.support import SQL, Gateway, MakeGateway, sim_chats


def test_mixed_batch_completes_with_one_result_and_one_usage_row_per_item(gw: Gateway, sql: SQL) -> None:
    user = gw.user(sub="alice")
    items = [chat_item(f"c{i}", f"question {i}") for i in range(5)] + [embed_item(f"e{i}") for i in range(3)]
    created = submit(gw, items, user, metadata={"job": "nightly"})
    assert created["status"] == "in_progress" and created["counts"]["total"] == 8
    assert created["metadata"] == {"job": "nightly"}

    ended = wait_ended(gw, created["id"], user)
    assert ended["status"] == "completed" and ended["completedAt"]
    assert ended["counts"] == {"total": 8, "done": 8, "failed": 0, "pending": 0, "cancelled": 0}

    got = results(gw, created["id"], user)  # three pages of three
    assert [r["customId"] for r in got] == [i["customId"] for i in items]
    for r in got[:5]:
        assert r["status"] == "done" and r["statusCode"] == 200
        assert r["body"]["success"] is True and r["body"]["text"] and r["body"]["model"] == CHAT
    for r in got[5:]:
        assert r["body"]["object"] == "list" and r["body"]["data"][0]["embedding"]

    rows = sql("SELECT request_id, kind, user_id, batch_id FROM ai.usage ORDER BY request_id")
    assert len(rows) == 8
    assert {r["batch_id"] for r in rows} == {created["id"]}
    assert {r["user_id"] for r in rows} == {"alice"}
    assert sorted(r["request_id"] for r in rows) == sorted(f"batch:{created['id']}:{i}" for i in range(8))
    assert sorted(r["kind"] for r in rows) == ["chat"] * 5 + ["embedding"] * 3


def test_items_run_with_the_admins_system_prompt_and_the_submitters_identity(
    make_gateway: MakeGateway, sql: SQL
) -> None:
    gw = make_gateway()
    gw.enable(CHAT, systemPrompt="Be brief.")
    # An item cannot say who it runs as: a `user` field in its body is not an identity.
    batch = submit(gw, [chat_item("only", user="mallory")], gw.user(sub="bob"))
    wait_ended(gw, batch["id"], gw.user(sub="bob"))
    sent = sim_chats(gw.settings.openrouter_base_url.removesuffix("/api/v1"))[-1]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sql("SELECT user_id FROM ai.usage")[0]["user_id"] == "bob"


def test_a_caller_sees_only_its_own_batches_and_admins_see_all(gw: Gateway) -> None:
    a = submit(gw, [chat_item("x")], gw.user(sub="alice"))
    b = submit(gw, [chat_item("y")], gw.user(sub="bob"))
    wait_ended(gw, a["id"], gw.user(sub="alice"))
    wait_ended(gw, b["id"], gw.user(sub="bob"))

    assert gw.client.get(f"/api/ai/batches/{a['id']}", headers=gw.user(sub="bob")).status_code == 404
    r = gw.client.get(f"/api/ai/batches/{a['id']}/results", headers=gw.user(sub="bob"))
    assert r.status_code == 404 and r.json()["error"] == "NOT_FOUND"
    assert gw.client.post(f"/api/ai/batches/{a['id']}/cancel", headers=gw.user(sub="bob")).status_code == 404
    mine = gw.client.get("/api/ai/batches", headers=gw.user(sub="bob")).json()["batches"]
    assert [x["id"] for x in mine] == [b["id"]]
    every = gw.client.get("/api/ai/batches", headers=gw.admin()).json()["batches"]
    assert {x["id"] for x in every} == {a["id"], b["id"]}
    assert gw.client.get(f"/api/ai/batches/{a['id']}", headers=gw.admin()).status_code == 200


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "items: a batch holds at least one item"),
        ([chat_item("a"), chat_item("a")], "items.1.customId: 'a' is used twice"),
        ([chat_item("")], "items.0.customId"),
        ([chat_item("a", stream=True)], "items.0.body.stream: batch items are not streamed"),
        ([{"customId": "a", "type": "chat", "body": {"model": CHAT}}], "items.0.body.messages"),
        ([{"customId": "a", "type": "images", "body": {}}], "items.0.type"),
        ([embed_item("a")] * 4, "at most 3 items per batch"),
    ],
)
def test_bad_batches_are_refused_whole_with_a_400_naming_the_field(
    make_gateway: MakeGateway, sql: SQL, items: list[dict[str, object]], message: str
) -> None:
    gw = make_gateway(batch_max_items=3)
    r = gw.client.post("/api/ai/batches", json={"items": items}, headers=gw.user())
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "INVALID_INPUT" and message in r.json()["message"]
    assert sql("SELECT COUNT(*) AS n FROM ai.batches")[0]["n"] == 0


def test_anonymous_callers_cannot_own_batches(gw: Gateway) -> None:
    r = gw.client.post("/api/ai/batches", json={"items": [chat_item("a")]}, headers=gw.user(role="anon", sub="x"))
    assert r.status_code == 403 and r.json()["error"] == "AUTH_UNAUTHORIZED"
    assert gw.client.get("/api/ai/batches", headers={}).status_code == 401


def test_an_item_for_a_model_not_enabled_fails_alone_with_the_contracts_body(gw: Gateway, sql: SQL) -> None:
    user = gw.user()
    batch = submit(
        gw,
        [
            chat_item("ok"),
            {**chat_item("bad"), "body": {"model": "x/unknown", "messages": [{"role": "user", "content": "a"}]}},
        ],
        user,
    )
    ended = wait_ended(gw, batch["id"], user)
    assert ended["counts"]["done"] == 1 and ended["counts"]["failed"] == 1
    bad = results(gw, batch["id"], user)[1]
    assert bad["status"] == "failed" and bad["statusCode"] == 400
    assert bad["body"]["error"] == "AI_INVALID_MODEL" and bad["body"]["statusCode"] == 400
    assert sql("SELECT COUNT(*) AS n FROM ai.usage")[0]["n"] == 1


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "1001"}, {"after": "-1"}, {"after": "x"}])
def test_bad_result_pages_are_a_400(gw: Gateway, params: dict[str, str]) -> None:
    batch = submit(gw, [chat_item("a")], gw.user())
    r = gw.client.get(f"/api/ai/batches/{batch['id']}/results", params=params, headers=gw.user())
    assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT"


def test_listing_pages_with_a_cursor(gw: Gateway) -> None:
    user = gw.user(sub="pager")
    ids = [submit(gw, [chat_item("a")], user)["id"] for _ in range(3)]
    first = gw.client.get("/api/ai/batches", params={"limit": 2}, headers=user).json()
    assert [b["id"] for b in first["batches"]] == ids[::-1][:2] and first["nextCursor"] == ids[1]
    rest = gw.client.get("/api/ai/batches", params={"limit": 2, "after": first["nextCursor"]}, headers=user).json()
    assert [b["id"] for b in rest["batches"]] == [ids[0]] and rest["nextCursor"] is None


def test_result_pages_fit_the_response_cap(make_gateway: MakeGateway) -> None:
    """Lambda's buffered answers are capped (MAX_RESPONSE_BYTES): a page holds what fits, the
    cursor goes on from there, and an item too large alone is a 413 that says how to read it."""
    gw = make_gateway(max_response_bytes=3000)
    enable_models(gw)
    user = gw.user()

    def item(cid: str) -> dict[str, object]:
        return {"customId": cid, "type": "embeddings", "body": {"model": EMBED, "input": "text", "dimensions": 40}}

    batch = submit(gw, [item(f"e{i}") for i in range(4)], {**user, "x-sim-embedding-dims": "40"})
    wait_ended(gw, batch["id"], user)
    seen: list[str] = []
    after: int | None = 0
    pages = 0
    while after is not None:
        r = gw.client.get(f"/api/ai/batches/{batch['id']}/results", params={"after": after}, headers=user)
        assert r.status_code == 200 and len(r.content) <= 3000, r.text[:200]
        assert all(x["status"] == "done" for x in r.json()["results"])
        seen += [x["customId"] for x in r.json()["results"]]
        after, pages = r.json()["nextCursor"], pages + 1
    assert seen == ["e0", "e1", "e2", "e3"] and pages > 1

    # An answer stored by a gateway without the cap (the local server, say) does not fit a page here.
    uncapped = make_gateway()
    big = submit(uncapped, [embed_item("huge")], {**user, "x-sim-embedding-dims": "400"})
    wait_ended(uncapped, big["id"], user)
    r = gw.client.get(f"/api/ai/batches/{big['id']}/results", headers=user)
    assert r.status_code == 413 and r.json()["error"] == "RESPONSE_TOO_LARGE" and "limit=1" in r.json()["nextActions"]
