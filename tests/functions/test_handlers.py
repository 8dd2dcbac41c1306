"""Every Lambda handler, invoked as Lambda would invoke it.

Buffered functions: `functions/<name>/app.py` imported by path (the environment set first, as the
function's configuration would be: `build_app()` reads it at import), then `handler(event, context)`
called with a real function-URL event (payload 2.0) on one thread with one event loop, twice or
more, as a Lambda execution environment reuses them. The scheduled rollup gets a scheduler event,
the migrate custom resource a CloudFormation event whose ResponseURL is a local HTTPS server, and
the streaming chat function is started through its own `run.sh` (what the Lambda Web Adapter runs)
and streamed from over HTTP, which is all the adapter does.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import importlib.util
import json
import os
import secrets
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from aigateway.auth import mint_jwt
from aigateway.local import EmbeddedPostgres

from tests.support import SQL, ServerThread, free_port, sim_log

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
CHAT_MODEL = "openai/gpt-4o-mini"
EMBED_MODEL = "openai/text-embedding-3-small"
IMAGE_MODEL = "google/gemini-2.5-flash-image-preview"


class Context:
    """The parts of the Lambda context object the handlers read."""

    def __init__(self, name: str = "aigw-test") -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.memory_limit_in_mb = "1024"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "2026/05/01/[$LATEST]0123456789abcdef0123456789abcdef"
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def url_event(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Lambda function URL request, payload format 2.0, as AWS sends it."""
    now = dt.datetime.now(dt.UTC)
    domain = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
    h = {
        "host": domain,
        "user-agent": "aigw-tests/1.0",
        "x-amzn-trace-id": "Root=1-65f0a1b2-0123456789abcdef01234567",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        "accept": "application/json",
    }
    raw_body = None
    if body is not None:
        raw_body = json.dumps(body)
        h["content-type"] = "application/json"
        h["content-length"] = str(len(raw_body.encode()))
    h.update({k.lower(): v for k, v in (headers or {}).items()})
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": h,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": domain.split(".")[0],
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "aigw-tests/1.0",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if raw_body is not None:
        event["body"] = raw_body
    return event


def body_of(response: dict[str, Any]) -> Any:
    raw = response.get("body") or ""
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    return json.loads(raw) if raw else None


def _import(name: str) -> ModuleType:
    path = FUNCTIONS / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"lambda_fn_{name}_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Function:
    """One execution environment of a function: its module imported once, every invocation on the
    same thread with the same event loop (Mangum runs each request on the thread's loop)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.pool = ThreadPoolExecutor(
            1, thread_name_prefix=f"lambda-{name}", initializer=asyncio.set_event_loop, initargs=(self.loop,)
        )
        self.module: ModuleType = self.pool.submit(_import, name).result(timeout=60)

    def invoke(self, event: dict[str, Any], context: Any = None) -> Any:
        return self.pool.submit(self.module.handler, event, context or Context(self.name)).result(timeout=60)

    def request(self, method: str, path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        r = self.invoke(url_event(method, path, **kw))
        return r["statusCode"], body_of(r), r.get("headers") or {}

    @property
    def db(self) -> Any:
        return self.module.app.state.services.db

    def close(self) -> None:
        app = getattr(self.module, "app", None)
        if app is not None:
            self.pool.submit(self.loop.run_until_complete, app.state.services.aclose()).result(timeout=30)
        self.pool.shutdown()
        self.loop.close()


@pytest.fixture(scope="module")
def lambda_env(
    pg: EmbeddedPostgres, simulator: ServerThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The environment a deployed function gets, pointed at the test database and the simulator."""
    env = {
        "DATABASE_URL": pg.uri,
        "DB_SCHEMA": "ai",
        "DB_POOL_SIZE": "1",
        "JWT_SECRET": "fn-jwt-" + secrets.token_hex(16),
        "ACCESS_API_KEY": "ik_" + secrets.token_hex(32),
        "OPENROUTER_BASE_URL": simulator.url + "/api/v1",
        "OPENROUTER_API_KEY": "sk-or-v1-env-fn-test",
        "AIGATEWAY_HOME": str(tmp_path_factory.mktemp("fn-home")),
        "AIGATEWAY_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "AIGATEWAY_DEPLOYMENT_ID": "fn-test",
        "CONFIG_CACHE_TTL_S": "0",
        "MODELS_CACHE_TTL_S": "0",
        "POWERTOOLS_SERVICE_NAME": "aigateway",
        "POWERTOOLS_METRICS_NAMESPACE": "AIGatewayFnTest",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def functions(lambda_env: dict[str, str]) -> Iterator[Callable[[str], Function]]:
    started: dict[str, Function] = {}

    def get(name: str) -> Function:
        if name not in started:
            started[name] = Function(name)
        return started[name]

    yield get
    for fn in started.values():
        fn.close()


@pytest.fixture
def fresh(sql: SQL) -> SQL:
    """Every gateway table emptied (the migration ledger kept)."""
    tables = [
        r["table_name"]
        for r in sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ai' AND table_type = 'BASE TABLE'"
            " AND table_name <> 'schema_migrations'"
        )
    ]
    sql("TRUNCATE " + ", ".join(f"ai.{t}" for t in tables) + " CASCADE")
    return sql


def admin(env: dict[str, str]) -> dict[str, str]:
    return {"authorization": f"Bearer {env['ACCESS_API_KEY']}"}


def user(env: dict[str, str], sub: str = "fn-user") -> dict[str, str]:
    token = mint_jwt(env["JWT_SECRET"], {"sub": sub, "role": "authenticated", "email": f"{sub}@example.com"})
    return {"authorization": f"Bearer {token}"}


def enable(
    functions: Callable[[str], Function], env: dict[str, str], model: str, inputs: list[str], outputs: list[str]
) -> str:
    status, body, _ = functions("configs").request(
        "POST",
        "/api/ai/configurations",
        headers=admin(env),
        body={"modelId": model, "provider": "openrouter", "inputModality": inputs, "outputModality": outputs},
    )
    assert status == 201, body
    return str(body["id"])


def assert_same_connection(fn: Function, before: list[Any]) -> None:
    """The later invocations ran on the first one's event loop and database connection."""
    assert fn.db._loop is fn.loop
    if getattr(fn.module.handler, "lifespan", "off") != "off":
        # Mangum enters the ASGI lifespan around every invocation, and build_app's shutdown closes
        # the services: each request then reconnects to PostgreSQL (and to OpenRouter).
        pytest.xfail(
            f"functions/{fn.name}/app.py uses Mangum(lifespan={fn.module.handler.lifespan!r}): the "
            "app's shutdown closes the database connection after every invocation; needs lifespan='off'"
        )
    assert fn.db._idle == before and len(before) == 1, "the database connection was not kept between invocations"


# ---------------------------------------------------------------- buffered functions (Mangum)


def test_configs_handler(functions: Callable[[str], Function], lambda_env: dict[str, str], fresh: SQL) -> None:
    fn = functions("configs")
    config_id = enable(functions, lambda_env, CHAT_MODEL, ["text"], ["text"])
    conn = list(fn.db._idle)
    status, listed, headers = fn.request("GET", "/api/ai/configurations", headers=admin(lambda_env))
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert [(c["id"], c["modelId"]) for c in listed] == [(config_id, CHAT_MODEL)]

    status, body, _ = fn.request("GET", "/api/ai/configurations")
    assert status == 401 and body["error"] == "AUTH_INVALID_CREDENTIALS" and body["statusCode"] == 401
    status, body, _ = fn.request("GET", "/api/ai/nowhere", headers=admin(lambda_env))
    assert status == 404 and body["error"] == "NOT_FOUND"
    status, body, _ = fn.request("GET", "/api/ai/health")
    assert (status, body) == (200, {"status": "ok"})
    audit = fresh("SELECT action, ip_address FROM ai.audit_logs")
    assert audit == [{"action": "CREATE_CONFIGURATION", "ip_address": "203.0.113.7"}]
    assert_same_connection(fn, conn)


def test_configs_handler_serves_the_openai_model_object(
    functions: Callable[[str], Function], lambda_env: dict[str, str], fresh: SQL
) -> None:
    """The front door's default route: `GET /api/ai/v1/models/{id}` with the id's slash as sent."""
    fn = functions("configs")
    enable(functions, lambda_env, CHAT_MODEL, ["text"], ["text"])
    status, body, _ = fn.request("GET", f"/api/ai/v1/models/{CHAT_MODEL}", headers=user(lambda_env))
    assert status == 200 and body["id"] == CHAT_MODEL and body["object"] == "model", body
    status, body, _ = fn.request("GET", "/api/ai/v1/models/openai/not-enabled", headers=user(lambda_env))
    assert status == 404 and body["error"]["type"] == "not_found_error" and body["error"]["code"] == "AI_INVALID_MODEL"


def test_usage_handler(functions: Callable[[str], Function], lambda_env: dict[str, str], fresh: SQL) -> None:
    fn = functions("usage")
    fresh(
        "INSERT INTO ai.usage (request_id, model_id, user_id, input_tokens, output_tokens, cost_usd)"
        " VALUES ('fn-u-1', 'a/m1', 'alice', 10, 5, 0.001), ('fn-u-2', 'b/m2', 'bob', 1, NULL, NULL)"
    )
    status, body, _ = fn.request("GET", "/api/ai/usage/summary", headers=admin(lambda_env), query={"groupBy": "model"})
    assert status == 200, body
    assert body["totalRequests"] == 2 and body["totalTokens"] == 16 and body["totalCostUsd"] == 0.001
    assert [(g["key"], g["totalRequests"]) for g in body["groups"]] == [("a/m1", 1), ("b/m2", 1)]
    conn = list(fn.db._idle)
    status, body, _ = fn.request("GET", "/api/ai/usage", headers=admin(lambda_env), query={"userId": "alice"})
    assert status == 200 and body["total"] == 1 and body["records"][0]["userId"] == "alice"
    status, body, _ = fn.request("GET", "/api/ai/usage/summary", headers=admin(lambda_env), query={"groupBy": "week"})
    assert status == 400 and body["error"] == "INVALID_INPUT"
    assert_same_connection(fn, conn)


def test_gateway_keys_handler(functions: Callable[[str], Function], lambda_env: dict[str, str], fresh: SQL) -> None:
    fn = functions("gateway_keys")
    status, body, _ = fn.request("GET", "/api/ai/gateway/config", headers=admin(lambda_env))
    assert (status, body) == (200, {"keySource": "env", "hasByokKey": False})
    conn = list(fn.db._idle)
    byok = "sk-or-v1-" + secrets.token_hex(32)
    status, body, _ = fn.request("POST", "/api/ai/gateway/config", headers=admin(lambda_env), body={"apiKey": byok})
    assert status == 200, body
    status, body, _ = fn.request("GET", "/api/ai/gateway/config", headers=admin(lambda_env))
    assert status == 200 and body["keySource"] == "byok" and body["hasByokKey"] is True
    assert byok not in json.dumps(body) and body["maskedKey"].endswith(byok[-4:])
    status, body, _ = fn.request("DELETE", "/api/ai/gateway/config", headers=admin(lambda_env))
    assert status == 200, body
    status, body, _ = fn.request("GET", "/api/ai/gateway/config", headers=admin(lambda_env))
    assert body == {"keySource": "env", "hasByokKey": False}
    assert_same_connection(fn, conn)


def _wait_rows(sql: SQL, query: str, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = sql(query)
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_embeddings_handler(
    functions: Callable[[str], Function], lambda_env: dict[str, str], fresh: SQL, simulator: ServerThread
) -> None:
    enable(functions, lambda_env, EMBED_MODEL, ["text"], ["embeddings"])
    fn = functions("embeddings")
    seen = len(sim_log(simulator.url))
    for i, text in enumerate(["first call opens the connection", "second call reuses it"]):
        status, body, _ = fn.request(
            "POST", "/api/ai/embeddings", headers=user(lambda_env), body={"model": EMBED_MODEL, "input": text}
        )
        assert status == 200, body
        assert body["object"] == "list" and len(body["data"]) == 1 and len(body["data"][0]["embedding"]) > 0
        assert body["metadata"]["model"] == EMBED_MODEL
        if i == 0:
            conn = list(fn.db._idle)
    upstream = [r for r in sim_log(simulator.url)[seen:] if r["path"].endswith("/embeddings")]
    assert len(upstream) == 2
    rows = _wait_rows(fresh, "SELECT kind, user_id FROM ai.usage ORDER BY created_at", 2)
    assert rows == [{"kind": "embedding", "user_id": "fn-user"}] * 2
    assert_same_connection(fn, conn)


def test_images_handler(
    functions: Callable[[str], Function], lambda_env: dict[str, str], fresh: SQL, simulator: ServerThread
) -> None:
    enable(functions, lambda_env, IMAGE_MODEL, ["text", "image"], ["image", "text"])
    fn = functions("images")
    for i in range(2):
        status, body, _ = fn.request(
            "POST",
            "/api/ai/image/generation",
            headers=user(lambda_env, "painter"),
            body={"model": IMAGE_MODEL, "prompt": f"a red square #{i}"},
        )
        assert status == 200, body
        [image] = body["images"]
        assert image["type"] == "imageUrl" and image["imageUrl"].startswith("data:image/png;base64,")
        if i == 0:
            conn = list(fn.db._idle)
    rows = _wait_rows(fresh, "SELECT kind, user_id, image_count FROM ai.usage", 2)
    assert len(rows) == 2 and all(r["user_id"] == "painter" and r["image_count"] == 1 for r in rows)
    assert_same_connection(fn, conn)


# ---------------------------------------------------------------- scheduled rollup


def test_usage_summary_handler(
    functions: Callable[[str], Function], fresh: SQL, capsys: pytest.CaptureFixture[str]
) -> None:
    yesterday = fresh("SELECT (now() AT TIME ZONE 'UTC')::date - 1 AS d")[0]["d"]
    fresh(
        "INSERT INTO ai.usage (request_id, model_id, input_tokens, created_at) VALUES ('fn-r-1', 'a/m1', 7, %s)",
        (dt.datetime.combine(yesterday, dt.time(12), dt.UTC),),
    )
    fn = functions("usage_summary")
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/x"],
        "detail": "{}",
    }
    first = fn.invoke(event)
    assert first["days_rolled_up"] == 1 and first["totals"]["input_tokens"] == 7 and first["spool_drained"] == 0
    second = fn.invoke(event)
    assert second["days_rolled_up"] == 0
    assert fresh("SELECT input_tokens FROM ai.usage_daily") == [{"input_tokens": 7}]
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [x["message"] for x in out if "message" in x] == ["usage rollup", "usage rollup"]
    assert [x["_aws"]["CloudWatchMetrics"][0]["Namespace"] for x in out if "_aws" in x] == ["AIGatewayFnTest"] * 2
    # The module keeps no web framework on its import path (cold start).
    assert fn.module.handler.__module__ == "aigateway.rollup"


# ---------------------------------------------------------------- migrate custom resource


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 the handler's urllib will trust through SSL_CERT_FILE."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(ski, False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class ResponseCatcher:
    """A tiny HTTPS server standing in for CloudFormation's presigned S3 response URL."""

    def __init__(self, cert: Path, key: Path) -> None:
        received = self.received = []  # type: list[dict[str, Any]]

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                received.append(
                    {
                        "path": self.path,
                        "content_type": self.headers.get("content-type"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _cfn_event(request_type: str, response_url: str, physical_id: str | None = None) -> dict[str, Any]:
    event = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:aigw-MigrateFunction",
        "ResponseURL": response_url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/aigw-fn-test/"
        "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "Migrations",
        "ResourceType": "Custom::Migrations",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:...", "MigrationsVersion": "1", "DbSchema": "x"},
    }
    if physical_id:
        event["PhysicalResourceId"] = physical_id
    return event


def test_migrate_handler_answers_cloudformation(
    functions: Callable[[str], Function], sql: SQL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aigateway.migrations import migration_files

    cert, key = _self_signed(tmp_path)
    catcher = ResponseCatcher(cert, key)
    schema = "ai_fn_" + secrets.token_hex(4)  # a fresh schema: every migration applies
    monkeypatch.setenv("DB_SCHEMA", schema)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    fn = functions("migrate")
    try:
        create = fn.invoke(_cfn_event("Create", catcher.url + "/cfn-response/create?X-Amz-Signature=abc"))
        update = fn.invoke(_cfn_event("Update", catcher.url + "/cfn-response/update", "aigw-fn-test-migrations"))
        delete = fn.invoke(_cfn_event("Delete", catcher.url + "/cfn-response/delete", "aigw-fn-test-migrations"))
        direct = fn.invoke({})
    finally:
        catcher.close()
        tables = sql("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = %s", (schema,))
        sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    n = len(migration_files())
    assert create == {"Status": "SUCCESS", "Reason": f"applied {n} migration(s)", "Data": {"applied": n}}
    assert update["Status"] == "SUCCESS" and update["Data"] == {"applied": 0}
    assert delete["Status"] == "SUCCESS" and delete["Data"] == {"applied": 0}
    assert direct == {"applied": []}
    assert tables[0]["n"] >= 5
    assert [r["path"] for r in catcher.received] == [
        "/cfn-response/create?X-Amz-Signature=abc",
        "/cfn-response/update",
        "/cfn-response/delete",
    ]
    first = catcher.received[0]
    assert first["content_type"] == ""
    assert first["body"]["Status"] == "SUCCESS" and first["body"]["Data"] == {"applied": n}
    assert first["body"]["LogicalResourceId"] == "Migrations" and first["body"]["PhysicalResourceId"]
    assert catcher.received[1]["body"]["PhysicalResourceId"] == "aigw-fn-test-migrations"


# ---------------------------------------------------------------- streaming chat through run.sh


@pytest.fixture
def chat_server(lambda_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """functions/chat/run.sh as the Lambda Web Adapter starts it: task root, layer on PYTHONPATH, PORT."""
    port = free_port()
    env = {
        **os.environ,
        **lambda_env,
        "PORT": str(port),
        "LAMBDA_TASK_ROOT": str(FUNCTIONS / "chat"),
        "PYTHONPATH": str(ROOT / "layers" / "gateway"),  # in Lambda: /opt/python (the layer)
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "UPSTREAM_FORWARD_HEADER_PREFIX": "x-sim-",
        "AWS_LWA_INVOKE_MODE": "response_stream",
    }
    log = (tmp_path / "chat.log").open("wb")
    proc = subprocess.Popen(
        ["sh", str(FUNCTIONS / "chat" / "run.sh")], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp_path)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # the adapter's readiness check
            try:
                if httpx.get(url + "/api/ai/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("chat server did not start:\n" + (tmp_path / "chat.log").read_text())
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_chat_streams_through_run_sh(
    functions: Callable[[str], Function], lambda_env: dict[str, str], fresh: SQL, chat_server: str
) -> None:
    enable(functions, lambda_env, CHAT_MODEL, ["text"], ["text"])
    events: list[tuple[float, dict[str, Any]]] = []
    body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Count to five."}], "stream": True}
    headers = {**user(lambda_env, "streamer"), "x-sim-chunks": "5", "x-sim-chunk-delay-ms": "150"}
    with httpx.stream("POST", chat_server + "/api/ai/chat/completion", json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append((time.monotonic(), json.loads(line[len("data: ") :])))

    chunks = [(t, e) for t, e in events if "chunk" in e]
    assert len(chunks) == 5 and all(isinstance(e["chunk"], str) and e["chunk"] for _, e in chunks)
    assert events[-1][1]["done"] is True and "tokenUsage" in events[-1][1]
    # Each chunk arrived as the upstream sent it, not in one buffered block at the end.
    assert chunks[-1][0] - chunks[0][0] >= 0.4
    rows = _wait_rows(fresh, "SELECT kind, user_id, output_tokens FROM ai.usage", 1)
    assert len(rows) == 1 and rows[0]["user_id"] == "streamer" and rows[0]["output_tokens"]

    # A second request on the same process (the adapter keeps uvicorn running between invocations).
    r2 = httpx.post(
        chat_server + "/api/ai/chat/completion",
        headers=user(lambda_env, "streamer"),
        json={"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Hi"}]},
        timeout=30,
    )
    assert r2.status_code == 200 and r2.json()["text"]
