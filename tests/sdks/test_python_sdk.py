"""The InsForge Python SDK (`insforge` 0.1.0, unchanged) against a real gateway over HTTP.

Every AI method the SDK has is called as a new user would: one client built with the project's
admin key (`api_key`, sent as `X-API-Key` on every call) and, for the generation calls, a user's
token (`access_token`, sent as `Authorization: Bearer`). The SDK parses each answer into its own
pydantic models, so a call that returns here is a call the SDK understood.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator

import pytest
from insforge import InsforgeClient
from insforge.ai.models import AIChatMessage
from insforge.exceptions import InsforgeHTTPError

from tests.support import SQL, Gateway, MakeGateway, wait_usage

CHAT = "openai/gpt-4o-mini"
IMAGE = "google/gemini-2.5-flash-image-preview"
EMBED = "openai/text-embedding-3-small"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def sdk(gateway: Gateway) -> AsyncIterator[InsforgeClient]:
    async with InsforgeClient(base_url=gateway.url, api_key=gateway.admin_key) as client:
        yield client


async def test_configuration_lifecycle(gateway: Gateway, sdk: InsforgeClient) -> None:
    created = await sdk.ai.create_configuration(
        input_modality=["text"],
        output_modality=["text"],
        provider="openrouter",
        model_id=CHAT,
        system_prompt="Be brief.",
    )
    image = await sdk.ai.create_configuration(
        input_modality=["text", "image"], output_modality=["image", "text"], provider="openrouter", model_id=IMAGE
    )
    updated = await sdk.ai.update_configuration(created.id, system_prompt="Be terse.")
    assert created.id and updated.message

    configs = {c.model_id: c for c in await sdk.ai.list_configurations()}
    assert configs[CHAT].modality == "text" and configs[CHAT].system_prompt == "Be terse."
    assert configs[IMAGE].modality == "image" and configs[IMAGE].id == image.id
    assert configs[CHAT].updated_at >= configs[CHAT].created_at and configs[CHAT].created_at.tzinfo is not None

    deleted = await sdk.ai.delete_configuration(image.id)
    assert deleted.message
    assert [c.model_id for c in await sdk.ai.list_configurations()] == [CHAT]


async def test_generation_calls_with_a_user_token(gateway: Gateway, sdk: InsforgeClient, sql: SQL) -> None:
    gateway.enable(CHAT)
    gateway.enable(IMAGE, outputModality=["image", "text"])
    gateway.enable(EMBED, inputModality=["text"], outputModality=["embeddings"])
    token = gateway.token(sub="py-user")

    chat = await sdk.ai.chat_completion(
        model=CHAT, messages=[AIChatMessage(role="user", content="Say hi")], access_token=token
    )
    assert chat.text and chat.metadata and chat.metadata.model == CHAT
    assert chat.metadata.usage and chat.metadata.usage.total_tokens

    images = await sdk.ai.generate_images(model=IMAGE, prompt="A watercolor fox", access_token=token)
    [img] = images.images
    assert img.image_url and img.image_url.url and img.image_url.url.startswith("data:image/png;base64,")
    assert base64.b64decode(img.image_url.url.split(",", 1)[1]).startswith(PNG)
    assert images.count == 1 and images.model == IMAGE

    emb = await sdk.ai.generate_embeddings(model=EMBED, input=["hello", "world"], access_token=token)
    assert [d.index for d in emb.data] == [0, 1] and all(d.embedding for d in emb.data)
    assert emb.metadata and emb.metadata.usage and emb.metadata.usage.prompt_tokens

    # The user's bearer token, not the X-API-Key the SDK also sent, identified the caller.
    rows = wait_usage(sql, 3)
    assert {r["user_id"] for r in rows} == {"py-user"}


async def test_usage_and_credits(gateway: Gateway, sdk: InsforgeClient, sql: SQL) -> None:
    config_id = gateway.enable(CHAT)
    token = gateway.token(sub="py-user")
    for _ in range(2):
        await sdk.ai.chat_completion(
            model=CHAT, messages=[AIChatMessage(role="user", content="hi")], access_token=token
        )
    wait_usage(sql, 2)

    records = await sdk.ai.get_usage(limit=10, offset=0)
    assert len(records) == 2
    r = records[0]
    assert r.config_id == config_id and r.model_id == CHAT and r.created_at is not None
    assert r.prompt_tokens and r.completion_tokens and r.total_tokens == r.prompt_tokens + r.completion_tokens
    assert await sdk.ai.get_usage(limit=1, offset=1) != [] and len(await sdk.ai.get_usage(limit=1)) == 1

    summary = await sdk.ai.get_usage_summary(start_date="2020-01-01", end_date="2999-01-01")
    assert summary.total_requests == 2 and summary.total_tokens == sum(x.total_tokens or 0 for x in records)
    assert summary.by_model[CHAT].requests == 2 and summary.by_model[CHAT].tokens == summary.total_tokens
    assert (await sdk.ai.get_usage_summary(config_id=config_id)).total_requests == 2

    by_config = await sdk.ai.get_usage_by_configuration(config_id)
    assert len(by_config) == 2 and all(x.prompt_tokens and x.config_id == config_id for x in by_config)

    # `get_credits` parses `credits` and `usage`: both filled (no key limit: the account's balance).
    credits = await sdk.ai.get_credits()
    assert credits.usage is not None and credits.credits is not None
    assert credits.credits == pytest.approx(100.0 - credits.usage)


async def test_list_models_grouped(gateway: Gateway, sdk: InsforgeClient) -> None:
    models = await sdk.ai.list_models()
    [text] = models.text
    [image] = models.image
    assert text.provider == "openrouter" and text.configured
    ids = [m.id for m in text.models]
    assert CHAT in ids and all(m.name and m.architecture for m in text.models)
    assert IMAGE in [m.id for m in image.models]
    assert all("image" in (m.architecture or {}).get("output_modalities", []) for m in image.models)


async def test_errors_carry_the_gateway_code(gateway: Gateway, sdk: InsforgeClient) -> None:
    with pytest.raises(InsforgeHTTPError) as caught:
        await sdk.ai.chat_completion(
            model="openai/gpt-4o", messages=[AIChatMessage(role="user", content="hi")], access_token=gateway.token()
        )
    err = caught.value
    assert err.status_code == 400 and err.error == "AI_INVALID_MODEL" and err.next_action


# -- which credential wins: the user's token, never the app's key -----------------------------


async def test_a_user_token_is_not_promoted_by_the_apps_admin_key(gateway: Gateway, sdk: InsforgeClient) -> None:
    """X-API-Key carries a valid admin key, but the bearer token says who calls: a plain user."""
    with pytest.raises(InsforgeHTTPError) as caught:
        await sdk.ai.list_configurations(access_token=gateway.token(sub="py-user"))
    assert caught.value.status_code == 403 and caught.value.error == "AUTH_UNAUTHORIZED"


async def test_a_bad_user_token_does_not_fall_back_to_the_apps_key(gateway: Gateway, sdk: InsforgeClient) -> None:
    """An expired token is a 401 the SDK's caller must act on (sign in again), not an admin call."""
    gateway.enable(CHAT)
    expired = gateway.token(sub="py-user", exp=int(time.time()) - 3600)
    with pytest.raises(InsforgeHTTPError) as caught:
        await sdk.ai.chat_completion(
            model=CHAT, messages=[AIChatMessage(role="user", content="hi")], access_token=expired
        )
    assert caught.value.status_code == 401 and caught.value.error == "AUTH_UNAUTHORIZED"


async def test_without_a_user_token_the_apps_key_is_the_caller(gateway: Gateway) -> None:
    async with InsforgeClient(base_url=gateway.url, api_key="ik_wrong") as wrong:
        with pytest.raises(InsforgeHTTPError) as caught:
            await wrong.ai.list_configurations()
    assert caught.value.status_code == 401 and caught.value.error == "AUTH_INVALID_API_KEY"


async def test_list_models_without_an_upstream_key(make_gateway: MakeGateway) -> None:
    gw = make_gateway(openrouter_api_key=None)
    async with InsforgeClient(base_url=gw.url, api_key=gw.admin_key) as client:
        models = await client.ai.list_models()
    assert [(g.provider, g.configured, g.models) for g in (*models.text, *models.image)] == [
        ("openrouter", False, []),
        ("openrouter", False, []),
    ]
