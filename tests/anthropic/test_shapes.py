"""api/anthropic_shapes.py on upstream sequences the simulator does not send: tool calls one after
the other, text after a tool call, and a provider that reports its stop sequence."""

from __future__ import annotations

import json
from typing import Any

from aigateway.api.anthropic_shapes import Blocks, message_body
from aigateway.flows.common import Answer


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in raw.decode().split("\n\n"):
        if frame:
            name, data = frame.split("\n")
            out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def fragment(index: int, *, args: str = "", call_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    fn: dict[str, Any] = {"arguments": args}
    if name:
        fn["name"] = name
    return {"index": index, **({"id": call_id} if call_id else {}), "function": fn}


def test_sequential_tool_calls_and_late_text_keep_their_blocks_apart() -> None:
    blocks = Blocks()
    blocks.text("Let me check.")
    blocks.tool(fragment(0, call_id="c0", name="a", args='{"x":'))
    blocks.tool(fragment(0, args="1}"))
    blocks.tool(fragment(1, call_id="c1", name="b", args='{"y":'))
    blocks.text(" Done.")
    blocks.tool(fragment(1, args="2}"))
    blocks.end()
    got = [e for e in events(blocks.take()) if e[0] != "ping"]
    starts = [(p["index"], p["content_block"]) for n, p in got if n == "content_block_start"]
    assert starts == [
        (0, {"type": "text", "text": ""}),
        (1, {"type": "tool_use", "id": "c0", "name": "a", "input": {}}),
        (2, {"type": "text", "text": ""}),
        (3, {"type": "tool_use", "id": "c1", "name": "b", "input": {}}),
    ]
    deltas = [(p["index"], p["delta"]) for n, p in got if n == "content_block_delta"]
    assert deltas == [
        (0, {"type": "text_delta", "text": "Let me check."}),
        (1, {"type": "input_json_delta", "partial_json": '{"x":'}),
        (1, {"type": "input_json_delta", "partial_json": "1}"}),
        (2, {"type": "text_delta", "text": " Done."}),
        (3, {"type": "input_json_delta", "partial_json": '{"y":2}'}),
    ]
    # One block open at a time: each delta goes to the open block, each is stopped before the next starts.
    open_index = None
    for name, payload in got:
        if name == "content_block_start":
            assert open_index is None
            open_index = payload["index"]
        elif name == "content_block_stop":
            assert open_index == payload["index"]
            open_index = None
        else:
            assert open_index == payload["index"]
    assert open_index is None


def _answer(choice: dict[str, Any]) -> Answer[dict[str, Any]]:
    upstream = {"model": "m", "choices": [choice], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    return Answer(upstream, "m", "rid", None, None)  # type: ignore[arg-type]


def test_stop_reasons() -> None:
    sequence = _answer(
        {
            "message": {"content": "a"},
            "finish_reason": "stop",
            "native_finish_reason": "stop_sequence",
            "stop_reason": "END",
        }
    )
    body = message_body(sequence)
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "END")
    assert body["usage"] == {"input_tokens": 3, "output_tokens": 2} and body["id"] == "msg_rid"
    assert (
        message_body(_answer({"message": {"content": "a"}, "finish_reason": "length"}))["stop_reason"] == "max_tokens"
    )
    filtered = message_body(_answer({"message": {"content": ""}, "finish_reason": "content_filter"}))
    assert filtered["stop_reason"] == "refusal" and filtered["content"] == []
    bad_args = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "not json"}}
    called = message_body(_answer({"message": {"content": None, "tool_calls": [bad_args]}, "finish_reason": None}))
    assert called["stop_reason"] == "tool_use"
    assert called["content"] == [{"type": "tool_use", "id": "c", "name": "f", "input": {}}]
