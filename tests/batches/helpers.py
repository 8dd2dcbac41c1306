"""What the batch tests share: enabling the models, submitting, waiting for a batch to end."""

from __future__ import annotations

from typing import Any

from tests.support import Gateway, wait_for

CHAT = "openai/gpt-4o-mini"
EMBED = "openai/text-embedding-3-small"


def enable_models(gw: Gateway) -> None:
    gw.enable(CHAT)
    gw.enable(EMBED, inputModality=["text"], outputModality=["embeddings"])


def chat_item(cid: str, text: str = "hi", **body: Any) -> dict[str, Any]:
    return {
        "customId": cid,
        "type": "chat",
        "body": {"model": CHAT, "messages": [{"role": "user", "content": text}], **body},
    }


def embed_item(cid: str, text: str = "hello") -> dict[str, Any]:
    return {"customId": cid, "type": "embeddings", "body": {"model": EMBED, "input": text}}


def submit(gw: Gateway, items: list[dict[str, Any]], headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    r = gw.client.post("/api/ai/batches", json={"items": items, **extra}, headers=headers)
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


def wait_ended(gw: Gateway, batch_id: str, headers: dict[str, str], timeout: float = 30) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        body: dict[str, Any] = gw.client.get(f"/api/ai/batches/{batch_id}", headers=headers).json()
        return body if body["status"] in ("completed", "cancelled") else None

    found = wait_for(ended, timeout)
    assert found, f"batch {batch_id} did not end in {timeout} s"
    return found


def results(gw: Gateway, batch_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        r = gw.client.get(f"/api/ai/batches/{batch_id}/results", params={"after": after, "limit": 3}, headers=headers)
        assert r.status_code == 200, r.text
        out += r.json()["results"]
        after = r.json()["nextCursor"]
    return out
