"""Every buffered function run as Lambda runs it: built bundle, awslambdaric, function-URL events,
frozen the moment each response has been posted (see harness.py)."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from typing import Any

import pytest
from aigateway.auth import mint_jwt

from tests.lambda_runtime.bundle import Bundle
from tests.lambda_runtime.conftest import StartBuffered
from tests.lambda_runtime.harness import PAYLOAD_LIMIT, BufferedEnvironment, url_response
from tests.support import SQL, ServerThread, sim_log

CHAT, EMBED, IMAGE = "openai/gpt-4o-mini", "openai/text-embedding-3-small", "google/gemini-2.5-flash-image-preview"
BUFFERED = ("ConfigsFunction", "UsageFunction", "EmbeddingsFunction", "ImagesFunction", "GatewayKeysFunction")


class Keys:
    def __init__(self, aws: dict[str, str], read: Callable[[str], str]) -> None:
        self.admin = {"authorization": f"Bearer {read(aws['AdminApiKeySecret'])}"}
        token = mint_jwt(read(aws["JwtSecret"]), {"sub": "lambda-user", "role": "authenticated"})
        self.user = {"authorization": f"Bearer {token}"}


@pytest.fixture
def keys(aws: dict[str, str], aws_secret: Callable[[str], str]) -> Keys:
    return Keys(aws, aws_secret)


@pytest.fixture
def configured(start_function: StartBuffered, sql: SQL, keys: Keys) -> BufferedEnvironment:
    """A clean database whose chat, embeddings and image models are enabled through the configs
    function itself; returns that function's environment."""
    sql("TRUNCATE ai.usage, ai.configs, ai.audit_logs, ai.rate_counters, ai.quota_counters CASCADE")
    sql("DELETE FROM ai.limit_settings")
    configs = start_function("ConfigsFunction")
    for model, out in ((CHAT, ["text"]), (EMBED, ["embeddings"]), (IMAGE, ["image"])):
        body = {"inputModality": ["text"], "outputModality": out, "provider": "openrouter", "modelId": model}
        r = configs.request("POST", "/api/ai/configurations", body=body, headers=keys.admin)
        assert r.status == 201, r.body
    r = configs.request(
        "PUT", "/api/ai/limits", body={"perProject": {"tokensPerMonth": 10_000_000}}, headers=keys.admin
    )
    assert r.status == 200, r.body
    return configs


def test_each_function_starts_from_the_built_read_only_bundle(start_function: StartBuffered, bundle: Bundle) -> None:
    before = sorted(str(p) for p in bundle.layer.rglob("*"))
    for name in BUFFERED:
        fn = start_function(name)
        assert fn.init_ms is not None and fn.api.init_error is None
        r = fn.request("GET", "/api/ai/health")
        assert r.status == 200, (name, r.body, fn.process.log())
        assert fn.process.frozen, "the environment is frozen once the response is posted"
        # With the front door on, a caller that goes around CloudFront to the function URL is refused.
        direct = fn.request("GET", "/api/ai/v1/models", direct=True)
        assert direct.status == 403 and b"front door" in direct.body, (name, direct.body)
    # Nothing was written into the layer (it is mounted read-only, as /opt is on Lambda) and
    # nothing needed to be: every module of the package ships its CPython 3.12 bytecode.
    assert sorted(str(p) for p in bundle.layer.rglob("*")) == before
    for source in (bundle.layer / "aigateway").rglob("*.py"):
        assert (source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc").is_file(), source


def test_configs_serve_the_catalog_configurations_and_model_list(configured: BufferedEnvironment, keys: Keys) -> None:
    catalog = configured.request("GET", "/api/ai/models", headers=keys.admin)  # through the simulator
    assert catalog.status == 200 and {m["id"] for m in catalog.json()} >= {CHAT, EMBED, IMAGE}, catalog.body
    listed = configured.request("GET", "/api/ai/configurations", headers=keys.admin)
    assert listed.status == 200 and {c["modelId"] for c in listed.json()} == {CHAT, EMBED, IMAGE}
    openai = configured.request("GET", "/api/ai/v1/models", headers=keys.user)
    assert openai.status == 200 and {m["id"] for m in openai.json()["data"]} == {CHAT, EMBED, IMAGE}


def test_configs_serve_the_admin_page_from_the_layer(configured: BufferedEnvironment) -> None:
    """The page's static files ship in the layer and leave the function with their safety headers."""
    for path, media in (("/dashboard/", "text/html"), ("/dashboard/app.js", "text/javascript")):
        r = configured.request("GET", path)
        assert r.status == 200 and r.headers["content-type"].startswith(media), (path, r.body[:200])
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
    assert b'<script type="module" src="app.js">' in configured.request("GET", "/dashboard/").body
    packed = configured.request("GET", "/dashboard/", headers={"accept-encoding": "gzip"})  # sent base64 by Mangum
    assert packed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(packed.body) == configured.request("GET", "/dashboard/").body


def _charged(sql: SQL) -> int:
    return int(sql("SELECT coalesce(sum(tokens), 0) AS t FROM ai.quota_counters")[0]["t"])


CALLS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("native embeddings", "EmbeddingsFunction", "/api/ai/embeddings", {"model": EMBED, "input": ["a", "b"]}),
    ("openai embeddings", "EmbeddingsFunction", "/api/ai/v1/embeddings", {"model": EMBED, "input": "a"}),
    ("images", "ImagesFunction", "/api/ai/image/generation", {"model": IMAGE, "prompt": "a red square"}),
    ("stored images", "ImagesFunction", "/api/ai/image/generation", {"model": IMAGE, "prompt": "x", "storage": True}),
]


@pytest.mark.parametrize(("name", "function", "path", "body"), CALLS, ids=[c[0] for c in CALLS])
def test_usage_is_committed_before_the_response_is_posted(
    configured: BufferedEnvironment,
    start_function: StartBuffered,
    sql: SQL,
    keys: Keys,
    name: str,
    function: str,
    path: str,
    body: dict[str, Any],
) -> None:
    fn = start_function(function)
    charged = _charged(sql)
    r = fn.request("POST", path, body=body, headers=keys.user)
    assert fn.process.frozen  # frozen since its response was posted: nothing of it runs now
    assert r.status == 200, r.body
    rows = sql("SELECT user_id, input_tokens FROM ai.usage WHERE request_id = %s", [r.headers["x-request-id"]])
    assert len(rows) == 1 and rows[0]["user_id"] == "lambda-user", f"{name}: no usage row while frozen"
    assert _charged(sql) > charged, f"{name}: the quota was not charged before the response"
    if body.get("storage"):
        [image] = r.json()["images"]  # stored in the images bucket (moto), answered as a signed URL
        assert image["imageUrl"].startswith("http") and "harness-images" in image["imageUrl"], image


def test_an_embeddings_answer_over_the_6_mb_cap_is_never_attempted(
    configured: BufferedEnvironment, start_function: StartBuffered, simulator: ServerThread, keys: Keys, sql: SQL
) -> None:
    fn = start_function("EmbeddingsFunction")
    calls = len(sim_log(simulator.url))
    # 300 x 1536 floats is 9.8 MB of JSON: refused before the upstream call, nothing billed.
    big = {"model": EMBED, "input": [f"text {i}" for i in range(300)]}
    r = fn.request("POST", "/api/ai/v1/embeddings", body=big, headers=keys.user)
    assert r.status == 413 and r.json()["error"]["code"] == "RESPONSE_TOO_LARGE", r.body
    assert "base64" in r.json()["error"]["message"] + r.json().get("nextActions", "")
    assert len(sim_log(simulator.url)) == calls and not sql("SELECT 1 FROM ai.usage")
    # The same inputs in base64 fit, and the largest float request the error allows fits too.
    inv = fn.invoke_url("POST", "/api/ai/v1/embeddings", body=big | {"encoding_format": "base64"}, headers=keys.user)
    assert url_response(inv).status == 200 and inv.payload is not None and len(inv.payload) < PAYLOAD_LIMIT
    most = {"model": EMBED, "input": [f"t{i}" for i in range(161)]}
    inv = fn.invoke_url("POST", "/api/ai/embeddings", body=most, headers=keys.user)
    assert url_response(inv).status == 200 and inv.payload is not None and len(inv.payload) < PAYLOAD_LIMIT
    assert len(url_response(inv).json()["data"]) == 161


def test_function_url_event_shapes(configured: BufferedEnvironment, start_function: StartBuffered, keys: Keys) -> None:
    """A base64-encoded body, cookies, repeated headers and a repeated query parameter arrive as a
    function URL delivers them and are answered as the plain request is."""
    fn = start_function("EmbeddingsFunction")
    body = json.dumps({"model": EMBED, "input": "shapes"}).encode()
    plain = fn.request("POST", "/api/ai/embeddings", body=body, headers=keys.user)
    shaped = fn.request(
        "POST",
        "/api/ai/embeddings",
        body=body,
        base64_body=True,
        cookies=["session=abc", "theme=dark"],
        headers=[*keys.user.items(), ("accept", "application/json"), ("accept", "text/plain"), ("x-trace", "a")],
    )
    assert plain.status == shaped.status == 200, shaped.body
    assert shaped.json()["data"] == plain.json()["data"]
    usage = start_function("UsageFunction")
    listed = usage.request("GET", "/api/ai/usage", query="limit=1&limit=1", headers=keys.admin)
    assert listed.status in (200, 400), listed.body  # a repeated parameter is answered, never a 502
    assert base64.b64encode(body)  # the shaped request really was base64 on the wire


def test_a_body_near_the_payload_limit(
    configured: BufferedEnvironment, start_function: StartBuffered, keys: Keys
) -> None:
    """5.9 MB fits a function URL's 6 MB request limit but not the stack's MaxBodyBytes (5 MiB):
    a clear 413, where a body under it is answered."""
    fn = start_function("EmbeddingsFunction")
    chunk = "word " * 10_000  # 50 KB per input
    over = {"model": EMBED, "input": [chunk] * 118}  # 5.9 MB
    r = fn.request("POST", "/api/ai/embeddings", body=over, headers=keys.user)
    assert r.status == 413 and r.json()["error"] == "PAYLOAD_TOO_LARGE", r.body
    under = {"model": EMBED, "input": [chunk] * 100}  # 5.0 MB
    r = fn.request("POST", "/api/ai/embeddings", body=under, headers=keys.user)
    assert r.status == 200 and len(r.json()["data"]) == 100, r.body[:500]


def test_the_scheduled_rollup_and_the_migrations(start_function: StartBuffered) -> None:
    rollup = start_function("UsageSummaryFunction")
    inv = rollup.invoke({"version": "0", "detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}})
    assert inv.error is None and inv.payload is not None, rollup.process.log()
    migrate = start_function("MigrateFunction")
    inv = migrate.invoke({})
    assert inv.error is None and json.loads(inv.payload or b"{}") == {"applied": []}, migrate.process.log()


def test_a_byok_key_set_by_one_function_is_used_by_another(
    configured: BufferedEnvironment, start_function: StartBuffered, simulator: ServerThread, keys: Keys, sql: SQL
) -> None:
    """gateway_keys encrypts the key under the stack's KMS key (moto); embeddings decrypts it in
    another environment and calls the upstream with it. Both KMS calls are signed by aigateway.aws."""
    sql("DELETE FROM ai.secrets")
    byok = "sk-or-v1-harness-byok-" + "7" * 40
    admin = start_function("GatewayKeysFunction")
    r = admin.request("POST", "/api/ai/gateway/config", body={"apiKey": byok}, headers=keys.admin)
    assert r.status == 200, r.body
    status = admin.request("GET", "/api/ai/gateway/config", headers=keys.admin).json()
    assert byok not in json.dumps(status)
    stored = sql("SELECT * FROM ai.secrets")
    assert stored and byok.encode() not in json.dumps(stored, default=str).encode()
    fn = start_function("EmbeddingsFunction")
    r = fn.request("POST", "/api/ai/embeddings", body={"model": EMBED, "input": "byok"}, headers=keys.user)
    assert r.status == 200, r.body
    last = [e for e in sim_log(simulator.url) if e["path"].endswith("/embeddings")][-1]
    assert byok in json.dumps(last), "the upstream call did not use the BYOK key"
    row = sql("SELECT key_source FROM ai.usage WHERE request_id = %s", [r.headers["x-request-id"]])
    assert row == [{"key_source": "byok"}]
    sql("DELETE FROM ai.secrets")
