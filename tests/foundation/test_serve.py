"""`aigateway serve` as a user runs it: fresh data folder, printed credentials, the admin tour, a restart."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(home: Path, port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENROUTER_API_KEY", "DATABASE_URL", "JWT_SECRET", "ACCESS_API_KEY", "OPENROUTER_BASE_URL")
    }
    env["AIGATEWAY_HOME"] = str(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aigateway", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    printed: dict[str, str] = {}
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        for key, pattern in (
            ("admin", r"Admin API key:\s+(\S+)"),
            ("user", r"Demo user token:\s+(\S+)"),
            ("base", r"AI gateway:\s+(\S+)"),
            ("simulator", r"(SIMULATOR)"),
        ):
            m = re.search(pattern, line)
            if m:
                printed[key] = m.group(1)
        if line.startswith("=") and "admin" in printed:
            break
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/ai/health").status_code == 200:
                return proc, printed
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"server did not come up: {printed}")


@pytest.fixture
def home() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="aigw-home-"))  # outside pytest's private temp tree
    yield folder / "home"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def served(home: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def start() -> dict[str, str]:
        for proc in procs:  # one server at a time on a data folder
            proc.terminate()
            proc.wait(timeout=15)
        port = free_port()
        proc, printed = _start(home, port)
        procs.append(proc)
        printed["url"] = f"http://127.0.0.1:{port}"
        return printed

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=15)


def test_fresh_folder_admin_tour_and_restart(served: Any, home: Path) -> None:
    first = served()
    assert first["simulator"] == "SIMULATOR"  # no OPENROUTER_API_KEY: said loudly
    assert first["admin"].startswith("ik_") and len(first["admin"]) == 67
    secrets_file = home / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    base, admin = first["url"], {"Authorization": f"Bearer {first['admin']}"}

    r = httpx.post(
        base + "/api/ai/configurations",
        headers=admin,
        json={
            "inputModality": ["text"],
            "outputModality": ["text"],
            "provider": "openrouter",
            "modelId": "openai/gpt-4o-mini",
            "systemPrompt": "Be brief.",
        },
    )
    assert r.status_code == 201
    cid = r.json()["id"]
    assert [c["id"] for c in httpx.get(base + "/api/ai/configurations", headers=admin).json()] == [cid]
    chat = httpx.post(
        base + "/api/ai/chat/completion",
        headers={"Authorization": f"Bearer {first['user']}"},
        json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.status_code == 200 and chat.json()["text"].startswith("Simulated reply")
    assert httpx.delete(f"{base}/api/ai/configurations/{cid}", headers=admin).status_code == 200
    actions = [a["action"] for a in httpx.get(base + "/api/ai/audit", headers=admin).json()["records"]]
    assert actions == ["DISABLE_CONFIGURATION", "CREATE_CONFIGURATION"]
    # The disabled model is refused.
    chat = httpx.post(
        base + "/api/ai/chat/completion",
        headers={"Authorization": f"Bearer {first['user']}"},
        json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.status_code == 400 and chat.json()["error"] == "AI_INVALID_MODEL"

    # A restart keeps the generated secrets and the data.
    second = served()
    assert second["admin"] == first["admin"]
    records = httpx.get(second["url"] + "/api/ai/audit", headers=admin).json()["records"]
    assert [a["action"] for a in records] == ["DISABLE_CONFIGURATION", "CREATE_CONFIGURATION"]
    r = httpx.get(second["url"] + "/api/ai/configurations", headers={"Authorization": f"Bearer {first['user']}"})
    assert r.status_code == 403  # the old demo token is still valid (same JWT secret), and still not admin
