"""Fixtures for the simulator's own tests: one simulator on loopback for the module, real HTTP.

The server runs under uvicorn (httptools/uvloop when installed, as in benchmarks) in a daemon
thread with its own event loop; port 0 lets the OS pick a free port, read back from the socket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from aigateway.simulator import create_app

KEY = "sk-or-v1-simtest"


@dataclass
class Sim:
    """A running simulator: its root URL and a client bound to ``/api/v1`` with a valid key."""

    url: str
    client: httpx.Client

    def requests(self) -> list[dict[str, Any]]:
        """The ``/_sim/requests`` log, oldest first."""
        r = httpx.get(self.url + "/_sim/requests")
        assert r.status_code == 200
        entries: list[dict[str, Any]] = r.json()["requests"]
        return entries

    def last(self) -> dict[str, Any]:
        return self.requests()[-1]


@pytest.fixture(scope="module")
def sim_server() -> Iterator[str]:
    config = uvicorn.Config(
        create_app(), host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sim-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("simulator did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def sim(sim_server: str) -> Iterator[Sim]:
    """A reset simulator (empty log, fresh fail counters) and a client with a valid key."""
    assert httpx.post(sim_server + "/_sim/reset").status_code == 200
    with httpx.Client(
        base_url=sim_server + "/api/v1", headers={"Authorization": f"Bearer {KEY}"}, timeout=15
    ) as client:
        yield Sim(sim_server, client)
