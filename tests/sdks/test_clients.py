"""`User-Agent` → `Client`: the SDKs' own agent strings, and everything else served as `@insforge/sdk` is."""

from __future__ import annotations

import pytest
from aigateway.api.clients import Client, client_from_user_agent


@pytest.mark.parametrize(
    ("agent", "client"),
    [
        ("InsForge-Python/0.1.0", Client.PYTHON),
        ("insforge-python/2.0", Client.PYTHON),
        ("insforge-swift/0.0.10", Client.SWIFT),
        ("InsForge-Kotlin/0.1.0-SNAPSHOT", Client.KOTLIN),
        ("  InsForge-Kotlin/1.0 okhttp/4.12", Client.KOTLIN),
        ("node", Client.JS),
        ("Mozilla/5.0 (Macintosh) InsForge-Python/0.1.0", Client.JS),  # the SDK names itself first
        ("python-httpx/0.28.1", Client.JS),
        ("", Client.JS),
        (None, Client.JS),
    ],
)
def test_client_from_user_agent(agent: str | None, client: Client) -> None:
    assert client_from_user_agent(agent) is client


def test_only_swift_and_kotlin_read_delta_streams() -> None:
    assert {c for c in Client if c.wants_delta_stream} == {Client.SWIFT, Client.KOTLIN}
