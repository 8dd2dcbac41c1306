"""The official `openai` SDK's batch flow, unchanged: upload JSONL, create, retrieve, list, cancel,
read the output and error files. The lines run through the same flows as live calls."""

from __future__ import annotations

import io
import json
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.batches.helpers import CHAT, EMBED
from tests.support import SQL, Gateway, MakeGateway, sim_chats, wait_for


def client(gw: Gateway, sub: str = "olga", **headers: str) -> OpenAI:
    return OpenAI(
        base_url=gw.url + "/api/ai/v1", api_key=gw.token(sub=sub), max_retries=0, timeout=20, default_headers=headers
    )


def jsonl(lines: list[dict[str, Any]]) -> io.BytesIO:
    buf = io.BytesIO(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    buf.name = "requests.jsonl"
    return buf


def chat_line(cid: str, model: str = CHAT, **body: Any) -> dict[str, Any]:
    messages = [{"role": "developer", "content": "Be terse."}, {"role": "user", "content": f"question {cid}"}]
    return {
        "custom_id": cid,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": messages, **body},
    }


def _ended(c: OpenAI, batch_id: str) -> Any:
    found = wait_for(lambda: (b := c.batches.retrieve(batch_id)).status in ("completed", "cancelled") and b, 30)
    assert found, "batch did not end"
    return found


def test_the_sdks_batch_flow_end_to_end(gw: Gateway, sql: SQL) -> None:
    c = client(gw)
    lines = [chat_line(f"req-{i}", max_completion_tokens=20, seed=i) for i in range(4)]
    lines.append(chat_line("req-bad", model="x/not-enabled"))
    uploaded = c.files.create(file=jsonl(lines), purpose="batch")
    assert uploaded.id.startswith("file-") and uploaded.purpose == "batch" and uploaded.bytes > 0
    assert c.files.retrieve(uploaded.id).filename == "requests.jsonl"
    assert c.files.content(uploaded.id).read() == jsonl(lines).getvalue()

    batch = c.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"run": "7"}
    )
    assert batch.object == "batch" and batch.status == "in_progress" and batch.metadata == {"run": "7"}
    done = _ended(c, batch.id)
    assert done.status == "completed" and done.completed_at
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (5, 4, 1)
    assert done.output_file_id and done.error_file_id

    content = c.files.content(done.output_file_id).read()
    assert c.files.retrieve(done.output_file_id).bytes == len(content)  # the file object's size is the file's
    assert c.files.retrieve(done.error_file_id).bytes == len(c.files.content(done.error_file_id).read())
    out = [json.loads(x) for x in content.splitlines()]
    assert sorted(x["custom_id"] for x in out) == [f"req-{i}" for i in range(4)]
    for x in out:
        assert x["response"]["status_code"] == 200 and x["error"] is None
        assert x["response"]["body"]["object"] == "chat.completion"
        assert x["response"]["body"]["choices"][0]["message"]["content"]
    errors = [json.loads(x) for x in c.files.content(done.error_file_id).read().splitlines()]
    assert len(errors) == 1 and errors[0]["custom_id"] == "req-bad"
    assert errors[0]["response"]["status_code"] == 400
    assert errors[0]["response"]["body"]["error"]["code"] == "AI_INVALID_MODEL"

    sent = [e["body"] for e in sim_chats(gw.settings.openrouter_base_url.removesuffix("/api/v1"))]
    assert len(sent) == 4 and {s["seed"] for s in sent} == {0, 1, 2, 3}  # pass-through fields kept
    assert all(s["messages"][0]["role"] == "system" for s in sent)  # developer → system, as live
    rows = sql("SELECT user_id, batch_id FROM ai.usage")
    assert len(rows) == 4 and {(r["user_id"], r["batch_id"]) for r in rows} == {("olga", batch.id)}

    listed = c.batches.list(limit=10)
    assert [b.id for b in listed.data] == [batch.id]
    assert client(gw, sub="someone-else").batches.list().data == []
    with pytest.raises(openai.NotFoundError):
        client(gw, sub="someone-else").batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        client(gw, sub="someone-else").files.content(uploaded.id)


def test_embeddings_batch(gw: Gateway) -> None:
    c = client(gw)
    lines = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": EMBED, "input": f"text {i}"},
        }
        for i in range(3)
    ]
    f = c.files.create(file=jsonl(lines), purpose="batch")
    done = _ended(c, c.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h").id)
    assert done.output_file_id and not done.error_file_id
    out = [json.loads(x) for x in c.files.content(done.output_file_id).read().splitlines()]
    assert [x["response"]["body"]["object"] for x in out] == ["list"] * 3
    assert out[0]["response"]["body"]["data"][0]["embedding"]


def test_cancel_through_the_sdk(gw: Gateway) -> None:
    c = client(gw, **{"x-sim-latency-ms": "300"})
    f = c.files.create(file=jsonl([chat_line(f"r{i}") for i in range(40)]), purpose="batch")
    batch = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    cancelled = c.batches.cancel(batch.id)
    assert cancelled.status in ("cancelling", "cancelled")
    done = _ended(c, batch.id)
    assert done.status == "cancelled" and done.cancelled_at
    assert done.request_counts is not None and done.request_counts.failed >= 30
    assert done.error_file_id
    lines = [json.loads(x) for x in c.files.content(done.error_file_id).read().splitlines()]
    assert sum(1 for x in lines if x["error"] and x["error"]["code"] == "batch_cancelled") >= 30


@pytest.mark.parametrize(
    ("lines", "endpoint", "message"),
    [
        ([{"custom_id": "a", "url": "/v1/embeddings", "body": {}}], "/v1/chat/completions", "line 1: url"),
        (
            [chat_line("a"), {"custom_id": "b", "method": "POST", "url": "/v1/chat/completions"}],
            "/v1/chat/completions",
            "line 2: body",
        ),
        ([chat_line("a", stream=True)], "/v1/chat/completions", "line 1: body.stream"),
        ([chat_line("a", n=2)], "/v1/chat/completions", "line 1: n: only n=1"),
        (
            [{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": CHAT}}],
            "/v1/chat/completions",
            "line 1: body.messages",
        ),
        ([chat_line("a")], "/v1/responses", "endpoint: one of"),
    ],
)
def test_bad_input_files_are_refused_with_a_400_naming_the_line(
    gw: Gateway, sql: SQL, lines: list[dict[str, Any]], endpoint: str, message: str
) -> None:
    c = client(gw)
    f = c.files.create(file=jsonl(lines), purpose="batch")
    with pytest.raises(openai.BadRequestError) as err:
        c.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]
    body: Any = err.value.body
    assert message in body["message"] and body["code"] == "INVALID_INPUT"
    assert sql("SELECT COUNT(*) AS n FROM ai.batches")[0]["n"] == 0


def test_bad_uploads_are_refused(gw: Gateway) -> None:
    c = client(gw)
    with pytest.raises(openai.BadRequestError, match="only 'batch'"):
        c.files.create(file=jsonl([]), purpose="fine-tune")
    r = gw.client.post("/api/ai/v1/files", content=b"{}", headers={**gw.user(), "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_INPUT"
    r = gw.client.post("/api/ai/v1/files", data={"purpose": "batch"}, files={}, headers=gw.user())
    assert r.status_code == 400
    with pytest.raises(openai.NotFoundError):
        c.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json\n", "line 1: not valid JSON"),
        (b"[1, 2]\n", "line 1: must be a JSON object"),
        (b'{"method": "POST", "url": "/v1/chat/completions", "body": {}}\n', "line 1: custom_id"),
        (b'{"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}}\n', "line 1: method"),
        (b"\n\n", "items: a batch holds at least one item"),
    ],
)
def test_malformed_lines_are_refused_naming_the_line(gw: Gateway, raw: bytes, message: str) -> None:
    c = client(gw)
    buf = io.BytesIO(raw)
    buf.name = "bad.jsonl"
    f = c.files.create(file=buf, purpose="batch")
    with pytest.raises(openai.BadRequestError) as err:
        c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert message in str(err.value)


def test_bad_batch_parameters_and_other_callers_files(gw: Gateway) -> None:
    c = client(gw)
    f = c.files.create(file=jsonl([chat_line("a")]), purpose="batch")
    r = gw.client.post(
        "/api/ai/v1/batches",
        json={"input_file_id": f.id, "endpoint": "/v1/chat/completions", "completion_window": "1h"},
        headers=gw.user(sub="olga"),
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_INPUT" and "completion_window" in r.text
    r = gw.client.post(
        "/api/ai/v1/batches",
        json={"input_file_id": f.id, "endpoint": "/v1/chat/completions", "metadata": {"n": 1}},
        headers=gw.user(sub="olga"),
    )
    assert r.status_code == 400 and "metadata" in r.json()["message"]
    with pytest.raises(openai.NotFoundError):
        client(gw, sub="mallory").batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.NotFoundError):
        client(gw, sub="mallory").files.retrieve(f.id)
    only_purpose = gw.client.post("/api/ai/v1/files", files={"purpose": (None, "batch")}, headers=gw.user())
    assert only_purpose.status_code == 400 and "file: Field required" in only_purpose.json()["message"]
    done = _ended(c, c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h").id)
    assert done.output_file_id
    assert c.files.retrieve(done.output_file_id).purpose == "batch_output"
    with pytest.raises(openai.NotFoundError):
        client(gw, sub="mallory").files.content(done.output_file_id)


def test_an_output_file_over_the_response_cap_is_a_413(gw: Gateway, make_gateway: MakeGateway) -> None:
    c = client(gw, **{"x-sim-embedding-dims": "400"})
    lines = [
        {"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings", "body": {"model": EMBED, "input": "t"}}
        for i in range(3)
    ]
    f = c.files.create(file=jsonl(lines), purpose="batch")
    done = _ended(c, c.batches.create(input_file_id=f.id, endpoint="/v1/embeddings", completion_window="24h").id)
    assert done.output_file_id
    capped = make_gateway(max_response_bytes=5000)  # as on Lambda, whose buffered answers are capped
    with pytest.raises(openai.APIStatusError) as err:
        client(capped).files.content(done.output_file_id)
    assert err.value.status_code == 413
    body: Any = err.value.body
    assert body["code"] == "RESPONSE_TOO_LARGE"
    assert client(capped).files.retrieve(done.output_file_id).bytes == len(c.files.content(done.output_file_id).read())


def test_list_and_delete_files(gw: Gateway) -> None:
    c = client(gw)
    a = c.files.create(file=jsonl([chat_line("a")]), purpose="batch")
    b = c.files.create(file=jsonl([chat_line("b")]), purpose="batch")
    assert [f.id for f in c.files.list()] == [b.id, a.id]
    assert list(client(gw, sub="someone-else").files.list()) == []
    with pytest.raises(openai.NotFoundError):
        client(gw, sub="someone-else").files.delete(a.id)
    deleted = c.files.delete(a.id)
    assert deleted.deleted is True and deleted.id == a.id
    assert [f.id for f in c.files.list()] == [b.id]
    with pytest.raises(openai.NotFoundError):
        c.files.content(a.id)
    assert not (gw.settings.home / "batch-files" / f"{a.id}.jsonl").exists()
