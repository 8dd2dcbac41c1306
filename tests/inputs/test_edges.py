"""Bodies and query parameters the JSON parser accepts but nothing downstream can carry: each is a 400
in the route's dialect, never a 500 (and never after a rate-limit slot was spent)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import Gateway

MODEL = "openai/gpt-4o-mini"
NATIVE = "/api/ai/chat/completion"
OPENAI = "/api/ai/v1/chat/completions"


def _post_raw(gw: Gateway, path: str, raw: str, headers: dict[str, str]) -> Any:
    return gw.client.post(path, content=raw.encode(), headers={**headers, "content-type": "application/json"})


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        node = {"type": "object", "properties": {"x": node}}
    return node


LONE = "hi @LONE@ there"  # becomes a lone high surrogate escape in the raw JSON
USER_X = [{"role": "user", "content": "x"}]


def _raw(body: Any) -> str:
    return json.dumps(body).replace("@LONE@", "\\ud800")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (NATIVE, {"model": MODEL, "messages": [{"role": "user", "content": LONE}]}),
        (OPENAI, {"model": MODEL, "messages": [{"role": "user", "content": LONE}]}),
        (NATIVE, {"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": LONE}]}]}),
        ("/api/ai/embeddings", {"model": MODEL, "input": [LONE]}),
        ("/api/ai/image/generation", {"model": MODEL, "prompt": LONE}),
        (OPENAI, {"model": MODEL, "messages": USER_X, "seed": 2**64}),
        (OPENAI, {"model": MODEL, "messages": USER_X, "seed": 2**63}),
        (
            NATIVE,
            {
                "model": MODEL,
                "messages": USER_X,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": _nested(200)}}],
            },
        ),
        (
            OPENAI,
            {
                "model": MODEL,
                "messages": USER_X,
                "response_format": {"type": "json_schema", "json_schema": _nested(200)},
            },
        ),
        (
            NATIVE,
            {"model": MODEL, "messages": [*USER_X, {"role": "tool", "tool_call_id": "c", "content": _nested(200)}]},
        ),
        (
            NATIVE,
            {
                "model": MODEL,
                "messages": USER_X,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"maximum": 10**30}}}],
            },
        ),
        ("/api/ai/embeddings", {"model": MODEL, "input": "x", "dimensions": 2**70}),
    ],
)
def test_unsendable_bodies_are_400_in_the_dialect(gateway: Gateway, path: str, body: Any) -> None:
    gateway.enable(MODEL)
    r = _post_raw(gateway, path, _raw(body), gateway.user("anon", "anon-1"))
    assert r.status_code == 400, r.text
    answer = r.json()
    if path.startswith("/api/ai/v1/"):
        assert answer["error"]["code"] == "INVALID_INPUT" and answer["error"]["type"] == "invalid_request_error"
    else:
        assert answer["error"] == "INVALID_INPUT"
    assert answer["message"].startswith("Validation error: ")


def test_unsendable_admin_configuration_is_400(gateway: Gateway) -> None:
    body = {"inputModality": ["text"], "outputModality": ["text"], "modelId": "a/b", "systemPrompt": LONE}
    r = _post_raw(gateway, "/api/ai/configurations", _raw(body), gateway.admin())
    assert r.status_code == 400, r.text
    assert r.json()["message"] == (
        "Validation error: systemPrompt: must not contain unpaired surrogates (\\ud800-\\udfff)"
    )


def test_nesting_within_the_bound_still_passes(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    tools = [{"type": "function", "function": {"name": "f", "parameters": _nested(20)}}]
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "tools": tools}
    r = gateway.client.post(NATIVE, json=body, headers=gateway.user())
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("value", ["²", "٣", "1e3", "-5", "99999999999999999999999", "1_0", " 5", "+5"])
def test_non_ascii_digits_in_admin_list_queries_are_400(gateway: Gateway, value: str) -> None:
    for path in ("/api/ai/usage", "/api/ai/audit", "/api/ai/limits/users"):
        for name in ("limit", "offset"):
            r = gateway.client.get(path, params={name: value}, headers=gateway.admin())
            assert r.status_code == 400, (path, name, r.text)
            assert r.json()["error"] == "INVALID_INPUT"


@pytest.mark.parametrize("value", ["²", "١٢٣", "12345678901234567890123"])
def test_non_ascii_digits_in_a_signed_image_link_are_refused(gateway: Gateway, value: str) -> None:
    r = gateway.client.get("/api/ai/images/files/rid-0.png", params={"expires": value, "sig": "00"})
    assert r.status_code in (400, 403), r.text
    assert r.json()["error"] in ("INVALID_INPUT", "AUTH_UNAUTHORIZED")


def test_a_refused_body_spends_no_rate_limit_slot(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    limits = {"perUser": {"requestsPerMinute": 1, "burst": 0}, "perProject": {}, "exemptAdmins": True}
    assert gateway.client.put("/api/ai/limits", json=limits, headers=gateway.admin()).status_code == 200
    anon = gateway.user("anon", "anon-slots")
    bad = _raw({"model": MODEL, "messages": [{"role": "user", "content": LONE}]})
    for _ in range(3):
        assert _post_raw(gateway, NATIVE, bad, anon).status_code == 400
    good = gateway.client.post(NATIVE, json={"model": MODEL, "messages": USER_X}, headers=anon)
    assert good.status_code == 200, good.text
