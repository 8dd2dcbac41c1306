"""Which InsForge SDK is calling, read once from `User-Agent`, for the few shapes the SDKs disagree on.

Most native bodies are one superset every SDK can parse (extra keys are ignored by all of them).
Three things cannot be: `GET /api/ai/usage` (the Python SDK wants a bare list, the others
`{records, total}`), `GET /api/ai/models` (the Python SDK wants the catalog grouped by output
modality, the others a flat list) and the chat stream (`@insforge/sdk` reads `{"chunk"}` events,
the Swift and Kotlin SDKs only OpenAI-style `choices[0].delta` frames). Those choices are made
from `Client` and nowhere else; docs/clients.md lists what each SDK sends and parses.

The header is a hint, not a credential: it never changes who may call what, only the shape.
An unknown or missing agent is `Client.JS`, the shape this gateway always served.
"""

from __future__ import annotations

from enum import Enum

from fastapi import Request


class Client(Enum):
    JS = "js"  # @insforge/sdk, browsers, curl, anything else
    PYTHON = "python"  # insforge (PyPI): `InsForge-Python/<version>`
    SWIFT = "swift"  # insforge-swift: `insforge-swift/<version>`
    KOTLIN = "kotlin"  # insforge-kotlin: `InsForge-Kotlin/<version>`

    @property
    def wants_delta_stream(self) -> bool:
        """Streams as `{"choices": [{"delta": ...}]}` frames ending in `[DONE]` (Swift, Kotlin)."""
        return self in (Client.SWIFT, Client.KOTLIN)


_PREFIXES = (
    ("insforge-python/", Client.PYTHON),
    ("insforge-swift/", Client.SWIFT),
    ("insforge-kotlin/", Client.KOTLIN),
)


def client_from_user_agent(user_agent: str | None) -> Client:
    """The SDK named at the start of the agent string (case-insensitive), else `Client.JS`."""
    agent = (user_agent or "").strip().lower()
    for prefix, client in _PREFIXES:
        if agent.startswith(prefix):
            return client
    return Client.JS


def client_of(request: Request) -> Client:
    return client_from_user_agent(request.headers.get("user-agent"))
