"""Cold starts through the Lambda harness, side by side with the floor of their own stack.

Not part of the suite (pytest collects `test_*.py`): `make bench-lambda` runs it and prints the
figures; nothing is asserted about them. For each function, in one run and interleaved:

- **buffered functions**: Lambda's Init Duration (process start to the runtime's first `next`)
  plus the first request, which is what the first caller waits for. Two first requests: the
  health route (the framework's floor) and the function's real first call (secrets, database,
  upstream). The floor is a FastAPI + Mangum hello world started from the same layer.
- **chat**: readiness (process start to the adapter's first 2xx readiness check) plus the first
  streamed chat, against a FastAPI hello world under uvicorn from the same layer.

Each figure is the median of `AIGW_BENCH_RUNS` (default 5) fresh environments.
"""

from __future__ import annotations

import json
import os
import statistics
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aigateway.auth import mint_jwt

from tests.lambda_runtime.bundle import Bundle, FunctionSpec
from tests.lambda_runtime.harness import AdapterEnvironment, BufferedEnvironment
from tests.support import SQL, free_port

RUNS = int(os.environ.get("AIGW_BENCH_RUNS", "5"))
CHAT, EMBED = "openai/gpt-4o-mini", "openai/text-embedding-3-small"

HELLO_BUFFERED = """
from fastapi import FastAPI
from mangum import Mangum

app = FastAPI()


@app.get("/api/ai/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


handler = Mangum(app, lifespan="off")
"""
HELLO_ASGI = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/api/ai/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
"""
HELLO_RUN_SH = """#!/bin/sh
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT}:${LAMBDA_RUNTIME_DIR}"
cd "$LAMBDA_TASK_ROOT"
exec python -m uvicorn --host 127.0.0.1 --port "$PORT" --no-access-log app:app
"""


def _hello(tmp: Path, spec: FunctionSpec, name: str, files: dict[str, str]) -> FunctionSpec:
    task = tmp / name
    task.mkdir()
    for filename, text in files.items():
        (task / filename).write_text(textwrap.dedent(text).lstrip())
        (task / filename).chmod(0o755)
    return replace(spec, logical_id=name, task_dir=task)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def test_cold_starts(
    bundle: Bundle,
    specs: dict[str, FunctionSpec],
    site_env: dict[str, str],
    sql: SQL,
    aws: dict[str, str],
    aws_secret: Callable[[str], str],
    front_door: dict[str, str],
    tmp_path: Path,
) -> None:
    sql("TRUNCATE ai.configs CASCADE")
    for model, out in ((CHAT, "{text}"), (EMBED, "{embeddings}")):
        sql(
            "INSERT INTO ai.configs (input_modality, output_modality, provider, model_id) "
            "VALUES ('{text}', %s, 'openrouter', %s)",
            [out, model],
        )
    admin = {"authorization": f"Bearer {aws_secret(aws['AdminApiKeySecret'])}"}
    jwt = mint_jwt(aws_secret(aws["JwtSecret"]), {"sub": "bench", "role": "authenticated"})
    user = {"authorization": f"Bearer {jwt}"}
    first_calls: dict[str, tuple[str, str, dict[str, str], Any]] = {
        "ConfigsFunction": ("GET", "/api/ai/v1/models", user, None),
        "UsageFunction": ("GET", "/api/ai/usage/summary", admin, None),
        "EmbeddingsFunction": ("POST", "/api/ai/embeddings", user, {"model": EMBED, "input": "cold"}),
        "ImagesFunction": ("GET", "/api/ai/health", user, None),
        "GatewayKeysFunction": ("GET", "/api/ai/gateway/config", admin, None),
    }
    hello = _hello(tmp_path, specs["ConfigsFunction"], "HelloWorld", {"app.py": HELLO_BUFFERED})
    chat_hello = _hello(
        tmp_path, specs["ChatFunction"], "HelloWorldAsgi", {"app.py": HELLO_ASGI, "run.sh": HELLO_RUN_SH}
    )
    results: dict[str, dict[str, list[float]]] = {}

    def record(name: str, key: str, value: float) -> None:
        results.setdefault(name, {}).setdefault(key, []).append(value)

    for _ in range(RUNS):
        for name in ("HelloWorld", *first_calls):
            spec = hello if name == "HelloWorld" else specs[name]
            fn = BufferedEnvironment(bundle, spec, site_env, edge_headers=front_door)
            try:
                record(name, "init_ms", fn.wait_ready())
                health = fn.invoke_url("GET", "/api/ai/health")
                record(name, "health_ms", health.duration_ms)
                if name != "HelloWorld":
                    method, path, headers, body = first_calls[name]
                    call = fn.invoke_url(method, path, headers=headers, body=body)
                    assert call.error is None and call.payload is not None
                    assert json.loads(call.payload)["statusCode"] == 200, call.payload[:300]
                    record(name, "first_call_ms", call.duration_ms)
                    warm = [fn.invoke_url(method, path, headers=headers, body=body).duration_ms for _ in range(5)]
                    record(name, "warm_call_ms", _median(warm))
            finally:
                fn.close()
        for name, spec in (("HelloWorldAsgi", chat_hello), ("ChatFunction", specs["ChatFunction"])):
            chat = AdapterEnvironment(bundle, spec, site_env, port=free_port(), edge_headers=front_door)
            try:
                record(name, "ready_ms", chat.wait_ready())
                if name == "ChatFunction":
                    body = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "stream": True}
                    import time

                    t0 = time.perf_counter()
                    for response in chat.stream("POST", "/api/ai/chat/completion", json=body, headers=user):
                        response.read()
                        assert response.status_code == 200
                    record(name, "first_call_ms", (time.perf_counter() - t0) * 1000)
            finally:
                chat.close()

    floor = _median(results["HelloWorld"]["init_ms"]) + _median(results["HelloWorld"]["health_ms"])
    chat_floor = _median(results["HelloWorldAsgi"]["ready_ms"])
    lines = [f"Lambda harness cold starts, median of {RUNS} fresh environments (ms):"]
    lines.append(f"{'function':<22}{'init':>8}{'health':>8}{'first':>8}{'warm':>8}{'init+health':>13}{'ratio':>7}")
    for name, figures in results.items():
        init_ms = _median(figures.get("init_ms") or figures.get("ready_ms", []))
        health_ms = _median(figures.get("health_ms", [0.0]))
        first_ms = _median(figures.get("first_call_ms", []))
        warm_ms = _median(figures.get("warm_call_ms", []))
        base = chat_floor if name in ("HelloWorldAsgi", "ChatFunction") else floor
        total = init_ms + health_ms
        lines.append(
            f"{name:<22}{init_ms:>8.0f}{health_ms:>8.1f}{first_ms:>8.1f}{warm_ms:>8.1f}"
            f"{total:>13.0f}{total / base:>7.2f}"
        )
    report = "\n".join(lines)
    print("\n" + report)
    results_file = Path(os.environ.get("AIGW_BENCH_OUT", "bench-results")) / "lambda-coldstart.json"
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps({"runs": RUNS, "results": results, "report": report}, indent=2))
    assert results  # the figures above are the product of this run


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-q", "-s"]))
