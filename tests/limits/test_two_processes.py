"""Done-criterion of issue #7: 50 concurrent calls against 10/minute, across two server PROCESSES
sharing one database, admit exactly 10.

Each server is a separate `python -m uvicorn` process built from environment settings, so it has
its own Services, cache and database connections; only PostgreSQL is shared.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aigateway.auth import mint_jwt
from aigateway.settings import Settings

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "DATABASE_URL": settings.database_url or "",
        "DB_SCHEMA": settings.db_schema,
        "DB_POOL_SIZE": "4",
        "JWT_SECRET": settings.jwt_secret or "",
        "ACCESS_API_KEY": settings.access_api_key or "",
        "CONFIG_CACHE_TTL_S": "0",
        "OPENROUTER_API_KEY": "sk-or-v1-unused",
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "admit_app:create_app", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log", "--lifespan", "off"]
    return subprocess.Popen(cmd, env=env, cwd=HERE)


@pytest.fixture
def two_servers(base_settings: Settings, sql: Any) -> Iterator[list[str]]:
    sql("TRUNCATE ai.limit_settings, ai.limit_overrides, ai.rate_counters, ai.quota_counters, ai.audit_logs")
    ports = [free_port(), free_port()]
    procs = [_start(base_settings, p) for p in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        deadline = time.monotonic() + 30
        for url, proc in zip(urls, procs, strict=True):
            while True:
                assert proc.poll() is None, "server process exited"
                try:
                    if httpx.get(url + "/api/ai/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server process did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _fire(urls: list[str], headers_for: Any, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(
            *(client.post(urls[i % 2] + "/test/admit", headers=headers_for(i)) for i in range(n))
        )


def _wait_for_fresh_window() -> None:
    if (left := 60 - datetime.now(UTC).second) < 4:
        time.sleep(left + 0.2)


@pytest.mark.parametrize("scope", ["perUser", "perProject"])
def test_fifty_concurrent_across_two_processes_admit_exactly_ten(
    two_servers: list[str], base_settings: Settings, sql: Any, scope: str
) -> None:
    assert base_settings.jwt_secret
    secret = base_settings.jwt_secret
    admin = {"Authorization": f"Bearer {base_settings.access_api_key}"}
    r = httpx.put(two_servers[0] + "/api/ai/limits", json={scope: {"requestsPerMinute": 10}}, headers=admin)
    assert r.status_code == 200, r.text
    # perUser: one user hammering; perProject: 50 different users sharing the project's minute.
    tokens = [mint_jwt(secret, {"sub": "hammer" if scope == "perUser" else f"user-{i}", "role": "authenticated"})
              for i in range(50)]
    _wait_for_fresh_window()
    responses = asyncio.run(_fire(two_servers, lambda i: {"Authorization": f"Bearer {tokens[i]}"}, 50))

    codes = [r.status_code for r in responses]
    assert codes.count(200) == 10 and codes.count(429) == 40, codes
    for r in responses:
        assert r.headers["X-RateLimit-Limit"] == "10"
        if r.status_code == 429:
            body = r.json()
            assert set(body) == {"error", "message", "statusCode", "nextActions"}
            assert body["error"] == "RATE_LIMITED" and body["statusCode"] == 429
            assert 1 <= int(r.headers["Retry-After"]) <= 60
            assert r.headers["X-RateLimit-Remaining"] == "0"
    assert sorted(int(r.headers["X-RateLimit-Remaining"]) for r in responses if r.status_code == 200) == list(
        range(10)
    )
    # Both processes served calls, and every refusal left an audit record.
    assert {r.url.port for r in responses} == {int(u.rsplit(":", 1)[1]) for u in two_servers}
    assert sql("SELECT count(*) AS n FROM ai.audit_logs WHERE action = 'RATE_LIMITED'")[0]["n"] == 40
