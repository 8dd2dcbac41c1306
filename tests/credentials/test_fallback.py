"""`with_key`: upstream failures mapped per key source, and fallback on BYOK exhaustion (402 / 429)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from aigateway.credentials import KeyResolver, ResolvedKey, with_key
from aigateway.crypto import LocalKeyWrapper
from aigateway.db import Database
from aigateway.errors import GatewayError
from aigateway.openrouter import OpenRouterClient
from aigateway.settings import Settings

from tests.support import ServerThread

from .conftest import ENV_KEY, Sim, create_cloud_secret

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


class Rig:
    """A resolver and an upstream client pointed at the simulator, in this test's event loop."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        wrapper = LocalKeyWrapper(base64.b64decode(settings.master_key or ""))
        self.resolver = KeyResolver(settings, db, lambda: wrapper)
        self.upstream = OpenRouterClient(settings)

    async def chat(self, byok: str | None) -> tuple[dict[str, Any], ResolvedKey]:
        if byok:
            await self.resolver.set_byok(byok, actor="test", ip=None)

        async def call(key: ResolvedKey) -> dict[str, Any]:
            return await self.upstream.chat(key.key, CHAT)

        try:
            return await with_key(self.resolver, self.settings, call)
        finally:
            await self.upstream.aclose()


@pytest.fixture
def rig(base_settings: Settings, db: Database, simulator: ServerThread) -> Callable[..., Rig]:
    def make(**overrides: Any) -> Rig:
        overrides.setdefault("openrouter_base_url", simulator.url + "/api/v1")
        overrides.setdefault("upstream_max_tries", 1)
        return Rig(base_settings.with_overrides(**overrides), db)

    return make


@pytest.mark.parametrize("byok", ["sk-or-v1-nocredit-byok-1", "sk-or-v1-ratelimited-byok-1"])
async def test_exhausted_byok_falls_back_to_the_next_source(rig: Callable[..., Rig], sim: Sim, byok: str) -> None:
    body, served = await rig(fallback_on_exhaustion=True).chat(byok)
    assert served.source == "env" and served.key == ENV_KEY
    assert body["choices"][0]["message"]["content"]
    assert sim.keys("/chat/completions") == [byok, ENV_KEY]


async def test_fallback_prefers_the_cloud_key(rig: Callable[..., Rig], sim: Sim, aws: None) -> None:
    cloud = "sk-or-v1-cloud-fallback-7777"
    r = rig(fallback_on_exhaustion=True, openrouter_cloud_key_secret=create_cloud_secret(cloud))
    _, served = await r.chat("sk-or-v1-nocredit-byok-2")
    assert (served.source, served.key) == ("cloud", cloud)
    assert sim.keys("/chat/completions") == ["sk-or-v1-nocredit-byok-2", cloud]


async def test_without_the_setting_exhaustion_is_the_callers_error(rig: Callable[..., Rig], sim: Sim) -> None:
    with pytest.raises(GatewayError) as exc:
        await rig().chat("sk-or-v1-nocredit-byok-3")
    assert (exc.value.status, exc.value.code) == (402, "QUOTA_EXCEEDED")
    assert sim.keys("/chat/completions") == ["sk-or-v1-nocredit-byok-3"]

    sim.reset_mark()
    with pytest.raises(GatewayError) as exc:
        await rig().chat("sk-or-v1-ratelimited-byok-3")
    assert (exc.value.status, exc.value.code) == (429, "RATE_LIMITED") and exc.value.headers["Retry-After"]
    assert len(sim.keys("/chat/completions")) == 1


async def test_refused_byok_key_never_falls_back(rig: Callable[..., Rig], sim: Sim) -> None:
    with pytest.raises(GatewayError) as exc:
        await rig(fallback_on_exhaustion=True).chat("sk-or-v1-revoked-byok-4")
    assert (exc.value.status, exc.value.code) == (401, "AI_INVALID_API_KEY")
    assert "BYOK API key is invalid" in exc.value.message
    assert sim.keys("/chat/completions") == ["sk-or-v1-revoked-byok-4"]


async def test_no_next_source_or_not_byok_means_no_fallback(rig: Callable[..., Rig], sim: Sim) -> None:
    with pytest.raises(GatewayError) as exc:
        await rig(fallback_on_exhaustion=True, openrouter_api_key=None).chat("sk-or-v1-nocredit-byok-5")
    assert exc.value.status == 402
    assert sim.keys("/chat/completions") == ["sk-or-v1-nocredit-byok-5"]

    sim.reset_mark()
    env_only = rig(fallback_on_exhaustion=True, openrouter_api_key="sk-or-v1-nocredit-env")
    assert await env_only.resolver.remove_byok(actor="test", ip=None)
    with pytest.raises(GatewayError) as exc:
        await env_only.chat(None)
    assert exc.value.status == 402, "only a BYOK key falls back"
    assert sim.keys("/chat/completions") == ["sk-or-v1-nocredit-env"]


async def test_fallback_failure_is_mapped_for_the_serving_source(rig: Callable[..., Rig], sim: Sim) -> None:
    r = rig(fallback_on_exhaustion=True, openrouter_api_key="sk-or-v1-invalid-env")
    with pytest.raises(GatewayError) as exc:
        await r.chat("sk-or-v1-nocredit-byok-6")
    assert (exc.value.status, exc.value.code) == (401, "AI_INVALID_API_KEY")
    assert "BYOK" not in exc.value.message, "the env key failed, and the message says so"
    assert sim.keys("/chat/completions") == ["sk-or-v1-nocredit-byok-6", "sk-or-v1-invalid-env"]


async def test_no_key_anywhere_is_ai_not_configured(rig: Callable[..., Rig], sim: Sim) -> None:
    with pytest.raises(GatewayError) as exc:
        await rig(openrouter_api_key=None).chat(None)
    assert (exc.value.status, exc.value.code) == (503, "AI_NOT_CONFIGURED")
    assert sim.keys() == []


async def test_next_after_walks_the_order(rig: Callable[..., Rig], aws: None) -> None:
    r = rig(openrouter_cloud_key_secret=create_cloud_secret("sk-or-v1-cloud-next"))
    await r.resolver.set_byok("sk-or-v1-byok-next", actor="test", ip=None)
    assert (await r.resolver.resolve()).source == "byok"
    after_byok = await r.resolver.next_after("byok")
    after_cloud = await r.resolver.next_after("cloud")
    assert after_byok is not None and after_byok.source == "cloud"
    assert after_cloud is not None and after_cloud.source == "env"
    assert await r.resolver.next_after("env") is None
    assert await r.resolver.next_after("bogus") is None
