"""A real `aigateway serve` process for the durability tests, and a way to freeze a PostgreSQL.

Freezing (SIGSTOP of the postmaster and every backend) is what a hung database looks like to
its clients: connections stay open, nothing answers, nothing fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from aigateway.auth import mint_jwt

JWT_SECRET = "durability-test-secret-0123456789abcdef"
ADMIN_KEY = "ik_" + "d" * 64
CHAT = "openai/gpt-4o-mini"


class Served:
    """One `aigateway serve` subprocess on a free port; `client` talks to it."""

    def __init__(self, home: Path, port: int, env: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.home = home
        full = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER_", "AWS_LAMBDA", "DATABASE_"))},
            "AIGATEWAY_HOME": str(home),
            "JWT_SECRET": JWT_SECRET,
            "ACCESS_API_KEY": ADMIN_KEY,
            "UPSTREAM_FORWARD_HEADER_PREFIX": "x-sim-",
            **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aigateway", "serve", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=full,
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_ready(self, timeout: float = 90) -> Served:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.client.get("/api/ai/health").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and self.proc.poll() is None, "gateway did not start"
            time.sleep(0.1)

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    def user(self, sub: str = "durable-user") -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_jwt(JWT_SECRET, {'sub': sub, 'role': 'authenticated'})}"}

    def enable(self, model: str = CHAT) -> None:
        body = {"inputModality": ["text"], "outputModality": ["text"], "provider": "openrouter", "modelId": model}
        r = self.client.post("/api/ai/configurations", headers=self.admin(), json=body)
        assert r.status_code == 201, r.text

    def chat(self, *, stream: bool = False, headers: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        """(status, whole body, seconds until the last byte)."""
        body: dict[str, Any] = {"model": CHAT, "messages": [{"role": "user", "content": "count me"}], "stream": stream}
        started = time.monotonic()
        with self.client.stream(
            "POST", "/api/ai/chat/completion", json=body, headers={**self.user(), **(headers or {})}
        ) as r:
            content = r.read()
        return r.status_code, content, time.monotonic() - started

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> float:
        """Send `sig` and wait for the process to end; the seconds it took."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        finally:
            self.client.close()
        return time.monotonic() - started


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """The postmaster of `pgdata` (its postmaster.pid) and all its children."""
    pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    master = psutil.Process(pid)
    return [master, *master.children(recursive=True)]


def freeze(pgdata: Path) -> list[psutil.Process]:
    procs = postgres_processes(pgdata)
    for p in procs:
        p.send_signal(signal.SIGSTOP)
    return procs


def thaw(procs: list[psutil.Process]) -> None:
    for p in procs:
        try:
            p.send_signal(signal.SIGCONT)
        except psutil.NoSuchProcess:
            pass
