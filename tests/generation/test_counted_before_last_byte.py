"""Usage is committed before the last byte of every answer, in every dialect, plain and streamed.

Lambda freezes an execution environment the moment its response ends, so a row written after the
answer would be late or lost. The gateway here is a real `aigateway serve` process; the moment the
caller has read the last byte it is frozen with SIGSTOP, exactly as Lambda freezes a function, and
the usage row (and the quota charge) must already be in the database.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aigateway.auth import mint_jwt
from aigateway.local import EmbeddedPostgres

from tests.support import SQL, ServerThread, free_port

CHAT, EMBED, IMAGE = "openai/gpt-4o-mini", "openai/text-embedding-3-small", "google/gemini-2.5-flash-image-preview"
JWT_SECRET = "freeze-test-secret-0123456789abcdef"
ADMIN_KEY = "ik_" + "f" * 64


class Frozen:
    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc, self.url = proc, url
        self.client = httpx.Client(base_url=url, timeout=30)

    def freeze(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)


@pytest.fixture
def served(pg: EmbeddedPostgres, simulator: ServerThread, sql: SQL) -> Iterator[Frozen]:
    sql("TRUNCATE ai.usage, ai.configs, ai.audit_logs, ai.rate_counters, ai.quota_counters CASCADE")
    sql("DELETE FROM ai.limit_settings")
    home = tempfile.mkdtemp(prefix="aigw-freeze-")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER_", "AWS_LAMBDA"))},
        "AIGATEWAY_HOME": str(Path(home) / "home"),
        "DATABASE_URL": pg.uri,
        "JWT_SECRET": JWT_SECRET,
        "ACCESS_API_KEY": ADMIN_KEY,
        "OPENROUTER_API_KEY": "sk-or-v1-freeze-test",
        "OPENROUTER_BASE_URL": simulator.url + "/api/v1",
        "CONFIG_CACHE_TTL_S": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "aigateway", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    gw = Frozen(proc, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while True:
        try:
            if gw.client.get("/api/ai/health").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, "gateway did not start"
        time.sleep(0.1)
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    for model, out in ((CHAT, ["text"]), (EMBED, ["embeddings"]), (IMAGE, ["image"])):
        r = gw.client.post(
            "/api/ai/configurations",
            headers=admin,
            json={"inputModality": ["text"], "outputModality": out, "provider": "openrouter", "modelId": model},
        )
        assert r.status_code == 201, r.text
    # A quota that every call is charged against, so the charge is checked too.
    r = gw.client.put("/api/ai/limits", headers=admin, json={"perProject": {"tokensPerMonth": 10_000_000}})
    assert r.status_code == 200, r.text
    yield gw
    gw.thaw()
    gw.client.close()
    proc.terminate()
    proc.wait(timeout=15)
    shutil.rmtree(home, ignore_errors=True)


def _user() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_jwt(JWT_SECRET, {'sub': 'frozen-user', 'role': 'authenticated'})}"}


CHAT_BODY = {"model": CHAT, "messages": [{"role": "user", "content": "count me"}]}
CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("native chat", "/api/ai/chat/completion", CHAT_BODY),
    ("native chat stream", "/api/ai/chat/completion", {**CHAT_BODY, "stream": True}),
    ("openai chat", "/api/ai/v1/chat/completions", CHAT_BODY),
    ("openai chat stream", "/api/ai/v1/chat/completions", {**CHAT_BODY, "stream": True}),
    ("native embeddings", "/api/ai/embeddings", {"model": EMBED, "input": ["a", "b"]}),
    ("openai embeddings", "/api/ai/v1/embeddings", {"model": EMBED, "input": "a"}),
    ("images", "/api/ai/image/generation", {"model": IMAGE, "prompt": "a red square"}),
]


@pytest.mark.parametrize(("name", "path", "body"), CALLS, ids=[c[0] for c in CALLS])
def test_the_row_and_the_charge_exist_when_the_caller_has_the_last_byte(
    served: Frozen, sql: SQL, name: str, path: str, body: dict[str, Any]
) -> None:
    charged_before = _charged(sql)
    with served.client.stream("POST", path, json=body, headers=_user()) as r:
        content = r.read()  # every byte, up to the end of the response
        served.freeze()  # what Lambda does the moment the response ends
    try:
        assert r.status_code == 200, content
        if body.get("stream"):
            assert content.rstrip().endswith((b'"done":true}', b"[DONE]")) or b'"done":true' in content
        rows = sql(
            "SELECT input_tokens, output_tokens, user_id FROM ai.usage WHERE request_id = %s",
            [r.headers["x-request-id"]],
        )
        assert len(rows) == 1, f"{name}: no usage row while the gateway is frozen"
        assert rows[0]["user_id"] == "frozen-user" and (rows[0]["input_tokens"] or 0) > 0
        assert _charged(sql) > charged_before, f"{name}: the quota was not charged before the last byte"
    finally:
        served.thaw()


def _charged(sql: SQL) -> int:
    rows = sql("SELECT coalesce(sum(tokens), 0) AS t FROM ai.quota_counters")
    return int(rows[0]["t"])
