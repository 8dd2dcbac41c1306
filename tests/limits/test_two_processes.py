"""Limits hold across processes: 50 concurrent calls against 10/minute, across two server PROCESSES
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
from aigateway import limits
from aigateway.auth import mint_jwt
from aigateway.settings import Settings

from tests.support import SQL, ServerThread

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(settings: Settings, port: int, factory: str, upstream: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "DATABASE_URL": settings.database_url or "",
        "DB_SCHEMA": settings.db_schema,
        "DB_POOL_SIZE": "4",
        "JWT_SECRET": settings.jwt_secret or "",
        "ACCESS_API_KEY": settings.access_api_key or "",
        "CONFIG_CACHE_TTL_S": "0",
        "OPENROUTER_API_KEY": "sk-or-v1-test",
        "OPENROUTER_BASE_URL": upstream,
        "AIGATEWAY_MASTER_KEY": settings.master_key or "",
        "AIGATEWAY_HOME": str(settings.home),
    }
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"admit_app:{factory}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--lifespan",
        "off",
    ]
    return subprocess.Popen(cmd, env=env, cwd=HERE)


def _serve_two(settings: Settings, factory: str, upstream: str) -> Iterator[list[str]]:
    ports = [free_port(), free_port()]
    procs = [_start(settings, p, factory, upstream) for p in ports]
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


_TABLES = "ai.limit_settings, ai.limit_overrides, ai.rate_counters, ai.quota_counters, ai.audit_logs"


@pytest.fixture
def two_servers(base_settings: Settings, sql: SQL) -> Iterator[list[str]]:
    sql(f"TRUNCATE {_TABLES}")
    yield from _serve_two(base_settings, "create_app", "http://127.0.0.1:9/api/v1")


@pytest.fixture
def two_chat_servers(base_settings: Settings, sql: SQL, simulator: ServerThread) -> Iterator[list[str]]:
    sql(f"TRUNCATE {_TABLES}, ai.usage, ai.configs CASCADE")
    yield from _serve_two(base_settings, "create_chat_app", simulator.url + "/api/v1")


async def _fire(
    urls: list[str], headers_for: Any, n: int, path: str = "/test/admit", body: Any = None
) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(
            *(client.post(urls[i % 2] + path, headers=headers_for(i), json=body) for i in range(n))
        )


def _wait_for_fresh_window() -> None:
    if (left := 60 - datetime.now(UTC).second) < 4:
        time.sleep(left + 0.2)


@pytest.mark.parametrize("scope", ["perUser", "perProject"])
def test_fifty_concurrent_across_two_processes_admit_exactly_ten(
    two_servers: list[str], base_settings: Settings, sql: SQL, scope: str
) -> None:
    assert base_settings.jwt_secret
    secret = base_settings.jwt_secret
    admin = {"Authorization": f"Bearer {base_settings.access_api_key}"}
    r = httpx.put(two_servers[0] + "/api/ai/limits", json={scope: {"requestsPerMinute": 10}}, headers=admin)
    assert r.status_code == 200, r.text
    # perUser: one user hammering; perProject: 50 different users sharing the project's minute.
    tokens = [
        mint_jwt(secret, {"sub": "hammer" if scope == "perUser" else f"user-{i}", "role": "authenticated"})
        for i in range(50)
    ]
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
    assert sorted(int(r.headers["X-RateLimit-Remaining"]) for r in responses if r.status_code == 200) == list(range(10))
    # Both processes served calls, and every refusal left an audit record.
    assert {r.url.port for r in responses} == {int(u.rsplit(":", 1)[1]) for u in two_servers}
    assert sql("SELECT count(*) AS n FROM ai.audit_logs WHERE action = 'RATE_LIMITED'")[0]["n"] == 40


def test_through_the_real_chat_route(two_chat_servers: list[str], base_settings: Settings, sql: SQL) -> None:
    """The same criterion end to end: POST /api/ai/chat/completion on two processes, simulator upstream."""
    admin = {"Authorization": f"Bearer {base_settings.access_api_key}"}
    r = httpx.post(
        two_chat_servers[1] + "/api/ai/configurations",
        headers=admin,
        json={"inputModality": ["text"], "outputModality": ["text"], "modelId": "openai/gpt-4o-mini"},
    )
    assert r.status_code == 201, r.text
    r = httpx.put(two_chat_servers[0] + "/api/ai/limits", json={"perUser": {"requestsPerMinute": 10}}, headers=admin)
    assert r.status_code == 200, r.text
    assert base_settings.jwt_secret
    token = mint_jwt(base_settings.jwt_secret, {"sub": "chatter", "role": "authenticated"})
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    _wait_for_fresh_window()
    responses = asyncio.run(
        _fire(two_chat_servers, lambda i: {"Authorization": f"Bearer {token}"}, 50, "/api/ai/chat/completion", body)
    )
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 10 and codes.count(429) == 40, codes
    for r in responses:
        assert r.headers["X-RateLimit-Limit"] == "10"
        if r.status_code == 200:
            assert r.json()["text"]
        else:
            assert r.json()["error"] == "RATE_LIMITED" and int(r.headers["Retry-After"]) >= 1
    # The admitted answers were charged to the caller's quota counters.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = sql(
            "SELECT tokens FROM ai.quota_counters WHERE scope = 'user' AND subject = %s AND period = 'day'",
            (limits.user_subject("chatter").key,),
        )
        usage = sql("SELECT count(*) AS n FROM ai.usage")[0]["n"]
        if rows and usage == 10:
            break
        time.sleep(0.1)
    assert usage == 10 and rows and rows[0]["tokens"] > 0
