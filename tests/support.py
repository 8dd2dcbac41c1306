"""What the test folders share: loopback servers, the `Gateway` handle, the simulator's log, SSE and polling.

`tests/conftest.py` builds its fixtures from these classes; test modules import the classes (to type
their fixtures) and the helpers from here, never from a conftest.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from aigateway.auth import mint_jwt
from aigateway.services import Services
from aigateway.settings import Settings

T = TypeVar("T")

SQL = Callable[..., list[dict[str, Any]]]
"""The `sql` fixture: `sql("SELECT ...", params)` returns the rows as dicts."""


def free_port() -> int:
    """A loopback port nothing listens on (at the time of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def private_dir(prefix: str) -> Path:
    """A temp folder outside pytest's own tree.

    The embedded server runs as a separate system user, and pytest makes its temp root
    private (0700) at every session start — a concurrent pytest run would lock the server out.
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


class ServerThread:
    """An ASGI app served by uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="auto",
            proxy_headers=False,  # the peer is the socket's, as in `aigateway serve` (api/client_address.py)
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@dataclass
class Gateway:
    """A running gateway (the `gateway` / `make_gateway` fixtures): its settings, services and a client."""

    url: str
    settings: Settings
    services: Services
    server: ServerThread
    client: httpx.Client
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def admin_key(self) -> str:
        assert self.settings.access_api_key
        return self.settings.access_api_key

    def token(self, role: str | None = "authenticated", sub: str | None = "user-1", **claims: Any) -> str:
        body: dict[str, Any] = dict(claims)
        if role is not None:
            body["role"] = role
        if sub is not None:
            body["sub"] = sub
        assert self.settings.jwt_secret
        return mint_jwt(self.settings.jwt_secret, body)

    def user(self, role: str = "authenticated", sub: str = "user-1", **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, sub, **claims)}"}

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def enable(self, model_id: str, **fields: Any) -> str:
        """Enable a model through the admin API; returns the configuration id."""
        body = {"inputModality": ["text", "image"], "outputModality": ["text"], "provider": "openrouter"}
        body.update(fields)
        body["modelId"] = model_id
        r = self.client.post("/api/ai/configurations", json=body, headers=self.admin())
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


MakeGateway = Callable[..., Gateway]
"""The `make_gateway` fixture: `make_gateway(app_factory=..., **settings_overrides)`."""


# -- the simulator's request log -----------------------------------------------------------------


def sim_log(sim_url: str) -> list[dict[str, Any]]:
    """What the simulator at `sim_url` received (`/_sim/requests`), oldest first."""
    data = httpx.get(sim_url + "/_sim/requests").json()
    return list(data["requests"] if isinstance(data, dict) else data)


def sim_chats(sim_url: str) -> list[dict[str, Any]]:
    """The chat completion requests in the simulator's log, oldest first."""
    return [e for e in sim_log(sim_url) if e["path"].endswith("/chat/completions")]


def sim_reset(sim_url: str) -> None:
    """Empty the simulator's log and reset its fail counters."""
    httpx.post(sim_url + "/_sim/reset")


# -- responses and rows that arrive over time ------------------------------------------------------


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The JSON payloads of `data:` lines, as they arrive."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


def wait_for(predicate: Callable[[], T], timeout: float = 5.0) -> T:
    """Poll until `predicate()` is truthy (usage rows land after the response); its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def wait_usage(sql: SQL, n: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The usage rows, oldest first, once at least `n` have been written (or the timeout passed).

    They are written after the response is sent, so a test reading them right away would race.
    """

    def rows() -> list[dict[str, Any]]:
        return sql("SELECT * FROM ai.usage ORDER BY created_at")

    wait_for(lambda: len(rows()) >= n, timeout)
    return rows()
