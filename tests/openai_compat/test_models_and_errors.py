"""`GET /api/ai/v1/models/{id}`, every failure under `/api/ai/v1` in OpenAI's error shape, validation
messages that name the caller's field, and embeddings token ids refused with what to do instead.

Each is driven through the `openai` package (the exception class it raises and what it reads from
the body) and, where the package hides the wire, through plain HTTP.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support import Gateway, MakeGateway

MODEL = "openai/gpt-4o-mini"
THINKING = "anthropic/claude-3.7-sonnet:thinking"
EMBED = "openai/text-embedding-3-small"
TOKEN_IDS_HINT = "check_embedding_ctx_length=False"


def client(gw: Gateway, token: str | None = None) -> OpenAI:
    return OpenAI(base_url=gw.url + "/api/ai/v1", api_key=token or gw.token(), max_retries=0, timeout=20)


def openai_error(r: httpx.Response, status: int) -> dict[str, Any]:
    """The body of an OpenAI-shaped error answer, its four keys checked."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["message"] == body["message"] and body["statusCode"] == status
    return body["error"]


# -- the model object ------------------------------------------------------------------------------


def test_retrieve_returns_the_model_object_for_ids_with_slashes_and_colons(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    gateway.enable(THINKING)
    oa = client(gateway)
    listed = {m.id: m for m in oa.models.list().data}
    for model_id in (MODEL, THINKING):
        got = oa.models.retrieve(model_id)
        assert got.id == model_id and got.object == "model"
        assert got == listed[model_id]
    assert oa.models.retrieve(THINKING).owned_by == "anthropic"
    raw = httpx.get(gateway.url + "/api/ai/v1/models/" + MODEL, headers=gateway.user()).json()
    assert set(raw) == {"id", "object", "created", "owned_by"} and raw["created"] > 1_700_000_000


def test_retrieve_of_a_model_not_enabled_is_a_404(gateway: Gateway) -> None:
    cid = gateway.enable(MODEL)
    gateway.client.delete(f"/api/ai/configurations/{cid}", headers=gateway.admin())
    for model_id in (MODEL, "openai/never-enabled", "nope"):
        with pytest.raises(openai.NotFoundError) as caught:
            client(gateway).models.retrieve(model_id)
        assert caught.value.status_code == 404 and caught.value.code == "AI_INVALID_MODEL"
        assert caught.value.type == "not_found_error" and model_id in caught.value.message
    error = openai_error(httpx.get(gateway.url + "/api/ai/v1/models/a/b/c", headers=gateway.user()), 404)
    assert error["type"] == "not_found_error"


def test_retrieve_needs_a_token(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    with pytest.raises(openai.AuthenticationError):
        client(gateway, "not-a-jwt").models.retrieve(MODEL)
    error = openai_error(httpx.get(gateway.url + "/api/ai/v1/models/" + MODEL), 401)
    assert error["type"] == "authentication_error"


# -- every status in OpenAI's shape ----------------------------------------------------------------


def test_unknown_path_wrong_method_and_large_body_raise_the_sdk_classes(make_gateway: MakeGateway) -> None:
    gw = make_gateway(max_body_bytes=4096)
    oa = client(gw)

    with pytest.raises(openai.NotFoundError) as unknown:
        oa.get("/assistants", cast_to=object)
    assert unknown.value.code == "NOT_FOUND" and unknown.value.type == "not_found_error"
    assert "/api/ai/v1/assistants" in unknown.value.message

    with pytest.raises(openai.APIStatusError) as method:
        oa.delete("/chat/completions", cast_to=object)
    assert method.value.status_code == 405 and method.value.code == "METHOD_NOT_ALLOWED"
    assert method.value.type == "invalid_request_error"

    with pytest.raises(openai.APIStatusError) as large:
        oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x" * 8000}])
    assert large.value.status_code == 413 and large.value.code == "PAYLOAD_TOO_LARGE"
    assert isinstance(large.value.body, dict) and large.value.body["message"] in large.value.message

    for r, status in (
        (httpx.get(gw.url + "/api/ai/v1/assistants"), 404),
        (httpx.patch(gw.url + "/api/ai/v1/embeddings", json={}), 405),
        (httpx.post(gw.url + "/api/ai/v1/embeddings", content=b"x" * 5000), 413),
    ):
        openai_error(r, status)


def test_validation_failures_are_400_naming_the_field_as_param(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    oa = client(gateway)
    with pytest.raises(openai.BadRequestError) as bad:
        oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": 5}])  # type: ignore[misc,list-item]
    assert bad.value.code == "INVALID_INPUT" and bad.value.param == "messages.0.content"
    assert isinstance(bad.value.body, dict) and bad.value.body["message"] == (
        "Validation error: messages.0.content: must be a string, a list of content parts or an object"
    )
    with pytest.raises(openai.BadRequestError) as bad_model:
        oa.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert bad_model.value.code == "AI_INVALID_MODEL" and bad_model.value.param == "model"
    error = openai_error(
        httpx.post(gateway.url + "/api/ai/v1/chat/completions", json={"messages": []}, headers=gateway.user()), 400
    )
    assert error["param"] == "model" and error["message"].startswith("Validation error: model: ")


# -- validation messages name the caller's field, in every dialect -----------------------------------

CHAT_CASES: list[tuple[Any, str]] = [
    (5, "messages.0.content: must be a string, a list of content parts or an object"),
    ([{"type": "text"}], "messages.0.content.0.text: Field required"),
    ([{"type": "video"}], "messages.0.content.0.type: must be one of 'text', 'image_url', 'input_audio', 'file'"),
]


@pytest.mark.parametrize(("content", "expected"), CHAT_CASES)
def test_chat_messages_name_the_field_natively_and_in_openai(gateway: Gateway, content: Any, expected: str) -> None:
    gateway.enable(MODEL)
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    native = gateway.client.post("/api/ai/chat/completion", json=body, headers=gateway.user()).json()
    assert native["message"] == "Validation error: " + expected
    error = openai_error(gateway.client.post("/api/ai/v1/chat/completions", json=body, headers=gateway.user()), 400)
    assert error["message"] == "Validation error: " + expected and error["param"] == expected.split(":")[0]


def test_union_fields_say_what_they_may_be(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    gateway.enable(EMBED, outputModality=["embeddings"])
    hi = [{"role": "user", "content": "hi"}]
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/api/ai/embeddings", {"model": EMBED, "input": 5}, "input: must be a string or a list of strings"),
        ("/api/ai/v1/embeddings", {"model": EMBED, "input": {"a": 1}}, "input: must be a string or a list of strings"),
        (
            "/api/ai/v1/chat/completions",
            {"model": MODEL, "messages": hi, "stop": 5},
            "stop: must be a string or a list of strings",
        ),
        (
            "/api/ai/v1/chat/completions",
            {"model": MODEL, "messages": hi, "tool_choice": "maybe"},
            "tool_choice: must be one of 'auto', 'none', 'required' or an object",
        ),
    ]
    cases.append(  # a dict key in the path stays: it is the caller's, not a type's name
        (
            "/api/ai/v1/chat/completions",
            {"model": MODEL, "messages": hi, "logit_bias": {"50256": "x"}},
            "logit_bias.50256: must be a valid number, unable to parse string as a number",
        )
    )
    for path, body, expected in cases:
        r = gateway.client.post(path, json=body, headers=gateway.user())
        assert r.status_code == 400 and r.json()["message"] == "Validation error: " + expected, (path, r.text)
        assert "str]" not in r.text and "literal[" not in r.text and "tagged-union" not in r.text


def test_anthropic_messages_name_the_field_in_its_own_shape(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": 5}]}
    r = gateway.client.post("/api/ai/v1/messages", json=body, headers=gateway.user())
    assert r.status_code == 400 and r.json()["type"] == "error", r.text
    message = r.json()["error"]["message"]
    assert message.startswith("Validation error: messages.0.content: must be ") and "[" not in message, message


# -- embeddings token ids ----------------------------------------------------------------------------


def test_token_id_inputs_are_refused_saying_what_to_set(gateway: Gateway) -> None:
    """LangChain's `OpenAIEmbeddings` sends `int[][]` by default; a string input works unchanged."""
    gateway.enable(EMBED, outputModality=["embeddings"])
    oa = client(gateway)
    for token_ids in ([[9906, 1917], [15339]], [9906, 1917]):
        with pytest.raises(openai.BadRequestError) as caught:
            oa.embeddings.create(model=EMBED, input=token_ids)
        assert caught.value.code == "INVALID_INPUT" and caught.value.param == "input"
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["message"].startswith("Validation error: input: token ids are not accepted")
        assert TOKEN_IDS_HINT in caught.value.message
    native = gateway.client.post(
        "/api/ai/embeddings", json={"model": EMBED, "input": [[1, 2]]}, headers=gateway.user()
    ).json()
    assert native["error"] == "INVALID_INPUT" and TOKEN_IDS_HINT in native["message"]
    assert len(oa.embeddings.create(model=EMBED, input=["hello", "world"]).data) == 2


def test_retrieve_of_ids_no_configuration_can_hold_is_a_404(gateway: Gateway) -> None:
    for model_id in ("x" * 300, "a%00b", "openai/gpt%00"):
        r = httpx.get(gateway.url + "/api/ai/v1/models/" + model_id, headers=gateway.user())
        error = openai_error(r, 404)
        assert error["code"] == "AI_INVALID_MODEL" and len(error["message"]) < 300


def test_endpoints_not_served_raise_not_found_in_the_sdk(gateway: Gateway) -> None:
    """The README's "Not served" list, called as the `openai` package calls it."""
    gateway.enable(MODEL)
    oa = client(gateway)
    calls: list[Any] = [
        lambda: oa.completions.create(model=MODEL, prompt="hi"),
        lambda: oa.images.generate(model=MODEL, prompt="a fox"),
        lambda: oa.moderations.create(input="hi"),
        lambda: oa.uploads.create(bytes=1, filename="a.jsonl", mime_type="text/jsonl", purpose="batch"),
        lambda: oa.fine_tuning.jobs.list(),
        lambda: oa.vector_stores.list(),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert caught.value.code == "NOT_FOUND" and caught.value.type == "not_found_error"


def test_responses_and_anthropic_unions_are_named_in_words(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    cases = [
        ("/api/ai/v1/responses", {"model": MODEL, "input": 5}, "input: must be a string or a list of input items"),
        (
            "/api/ai/v1/messages",
            {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": 5}]},
            "messages.0.content: must be a string or a list of content blocks",
        ),
    ]
    for path, body, expected in cases:
        r = gateway.client.post(path, json=body, headers=gateway.user())
        assert r.status_code == 400 and r.json()["error"]["message"] == "Validation error: " + expected, r.text
