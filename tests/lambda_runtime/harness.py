"""A Lambda execution environment on loopback, as close to the managed runtime as one machine gets.

- **The Runtime API** (`RuntimeAPI`): `GET /2018-06-01/runtime/invocation/next` (long poll, with the
  request-id, deadline, function-ARN and trace headers), `POST .../{id}/response`, `.../{id}/error`
  and `/init/error`. A response over 6 MB (6,291,456 bytes) is refused with 413 and the invocation
  fails as `Function.ResponseSizeTooLarge`, which a function URL answers with 502.
- **A fresh process per environment** (`BufferedEnvironment`), started the way the python3.12
  runtime starts: CPython 3.12 running `awslambdaric` with `_HANDLER`, `LAMBDA_TASK_ROOT`,
  `LAMBDA_RUNTIME_DIR`, `AWS_EXECUTION_ENV` and the rest of Lambda's reserved variables, no HOME,
  the layer mounted read-only at /opt/python and the task and runtime folders read-only too (a
  private mount namespace made by `unshare`: no Docker, no download).
- **The freeze**: the moment a response (or error) has been posted, the process is stopped with
  SIGSTOP, as Lambda freezes the environment; the next invocation thaws it with SIGCONT. Work
  left in background threads or tasks does not run between invocations, exactly as on Lambda.
- **Behind the Web Adapter** (`AdapterEnvironment`): the handler file (`run.sh`) is exec'd in the
  same mounts, readiness is polled at the adapter's check path, requests are forwarded over HTTP
  with the `x-amzn-request-context` header the adapter adds, and the process is frozen as soon as
  the response's last byte has been read.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.lambda_runtime.bundle import Bundle, FunctionSpec

PAYLOAD_LIMIT = 6 * 1024 * 1024  # buffered response and request payloads, bytes
PREFIX = "/2018-06-01/runtime"
# Inside the mount namespace: where the layer, the function and the runtime appear.
TASK_ROOT = "/opt/lambda/task"
RUNTIME_DIR = "/opt/lambda/runtime"
MOUNTS = (
    'mount -t tmpfs -o size=16m tmpfs /opt && mkdir -p /opt/python "$TASK" "$RUNTIME" && '
    'mount --bind -o ro "$SRC_LAYER" /opt/python && mount --bind -o ro "$SRC_TASK" "$TASK" && '
    'mount --bind -o ro "$SRC_RUNTIME" "$RUNTIME" && cd "$TASK" && exec "$@"'
)


# A private mount namespace. As root no user namespace is needed, and one would hide the embedded
# PostgreSQL's socket (owned by a user the namespace does not map); others map themselves to root.
UNSHARE = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]


class PayloadTooLarge(Exception):
    """The function URL refuses a request whose event is over the invocation payload limit (413)."""


@dataclass
class Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    payload: bytes | None = None
    error: dict[str, Any] | None = None
    started: float = 0.0
    duration_ms: float = 0.0


class RuntimeAPI:
    """The Runtime API of one execution environment; `on_settled` runs when an invocation ends."""

    def __init__(self) -> None:
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.current: dict[str, Invocation] = {}
        self.init_error: dict[str, Any] | None = None
        self.first_next = threading.Event()
        self.first_next_at = 0.0
        self.on_settled: Any = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes: without this, Nagle's algorithm and
                # the runtime client's delayed ACK add 40 ms to every invocation after the first.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b'{"status":"OK"}') -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorType":"NotFound"}')
                if not api.first_next.is_set():
                    api.first_next_at = time.perf_counter()
                    api.first_next.set()
                inv = api.pending.get()
                inv.started = time.perf_counter()
                api.current[inv.request_id] = inv
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Lambda-Runtime-Aws-Request-Id", inv.request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(inv.deadline_ms))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:h"
                )
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-65f0a1b2-0123456789abcdef01234567;Sampled=0")
                self.send_header("Content-Length", str(len(inv.event)))
                self.end_headers()
                self.wfile.write(inv.event)
                self.wfile.flush()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_error = json.loads(body or b"{}")
                    api.first_next.set()
                    return self._reply(202)
                if len(parts) != 3 or parts[0] != "invocation" or parts[1] not in api.current:
                    return self._reply(400, b'{"errorType":"InvalidRequestID"}')
                inv = api.current.pop(parts[1])
                if parts[2] == "response" and len(body) > PAYLOAD_LIMIT:
                    inv.error = {"errorType": "Function.ResponseSizeTooLarge", "size": len(body)}
                    self._reply(413, b'{"errorType":"RequestEntityTooLarge"}')
                elif parts[2] == "response":
                    inv.payload = body
                    self._reply(202)
                else:
                    inv.error = json.loads(body or b"{}")
                    self._reply(202)
                inv.duration_ms = (time.perf_counter() - inv.started) * 1000
                if api.on_settled is not None:
                    api.on_settled()
                inv.done.set()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the runtime's connection dropped when its process was stopped: expected

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True, name="runtime-api").start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def lambda_environment(spec: FunctionSpec, extra: Mapping[str, str]) -> dict[str, str]:
    """The variables Lambda sets (reserved ones included), then the function's, then the test's."""
    name = f"aigw-harness-{spec.logical_id}"
    env = {
        "PATH": f"{RUNTIME_DIR}/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/02/[$LATEST]0123456789abcdef0123456789abcdef",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "LAMBDA_TASK_ROOT": TASK_ROOT,
        "LAMBDA_RUNTIME_DIR": RUNTIME_DIR,
        "_HANDLER": spec.handler,
        "PYTHONPATH": f"{TASK_ROOT}:/opt/python:{RUNTIME_DIR}",
    }
    env.update(spec.environment)
    env.update(extra)
    return env


class _Process:
    """The function's process inside its mounts, frozen and thawed as Lambda does."""

    def __init__(self, bundle: Bundle, spec: FunctionSpec, env: dict[str, str], argv: list[str]) -> None:
        self.spec = spec
        task = bundle.task(spec.logical_id) if spec.task_dir is None else spec.task_dir
        mounts = {
            "SRC_LAYER": str(bundle.layer),
            "SRC_TASK": str(task),
            "SRC_RUNTIME": str(bundle.runtime),
            "TASK": TASK_ROOT,
            "RUNTIME": RUNTIME_DIR,
        }
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [*UNSHARE, "sh", "-c", MOUNTS, "sh", *argv],
            env=env | mounts,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.frozen = False
        self.output: list[str] = []
        threading.Thread(target=self._read_output, daemon=True).start()

    def _read_output(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.decode(errors="replace").rstrip("\n"))

    def freeze(self) -> None:
        os.killpg(self.proc.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            os.killpg(self.proc.pid, signal.SIGCONT)
            self.frozen = False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            self.thaw()
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def log(self) -> str:
        return "\n".join(self.output[-60:])


class BufferedEnvironment:
    """A buffered function: awslambdaric on the Runtime API, invoked with function-URL events."""

    def __init__(
        self,
        bundle: Bundle,
        spec: FunctionSpec,
        extra_env: Mapping[str, str],
        freeze: bool = True,
        edge_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.api = RuntimeAPI()
        self.spec = spec
        self.edge_headers = dict(edge_headers or {})
        env = lambda_environment(spec, extra_env) | {"AWS_LAMBDA_RUNTIME_API": self.api.address}
        self.process = _Process(bundle, spec, env, [bundle.python, "-m", "awslambdaric", spec.handler])
        if freeze:
            self.api.on_settled = self.process.freeze
        self.init_ms: float | None = None

    def wait_ready(self, timeout: float = 60) -> float:
        """Init duration in ms: process start to the first `next` (Lambda's Init Duration)."""
        if not self.api.first_next.wait(timeout):
            raise TimeoutError(f"{self.spec.logical_id} did not finish init:\n{self.process.log()}")
        if self.api.init_error is not None:
            raise RuntimeError(f"init error {self.api.init_error}\n{self.process.log()}")
        self.init_ms = (self.api.first_next_at - self.process.started) * 1000
        return self.init_ms

    def invoke(self, event: dict[str, Any], timeout: float | None = None) -> Invocation:
        body = json.dumps(event).encode()
        if len(body) > PAYLOAD_LIMIT:
            raise PayloadTooLarge(len(body))
        self.wait_ready()
        deadline = int(time.time() * 1000) + self.spec.timeout_s * 1000
        inv = Invocation(request_id=str(uuid.uuid4()), event=body, deadline_ms=deadline)
        self.api.pending.put(inv)
        self.process.thaw()
        if not inv.done.wait(timeout or self.spec.timeout_s + 5):
            raise TimeoutError(f"{self.spec.logical_id} timed out:\n{self.process.log()}")
        return inv

    def invoke_url(self, method: str, path: str, *, direct: bool = False, **kw: Any) -> Invocation:
        """A function URL request (see `url_event`) as the front door forwards it (its headers
        added), or `direct` to the URL; the raw invocation result."""
        if not direct and self.edge_headers:
            given = kw.get("headers") or []
            pairs = list(given.items()) if isinstance(given, Mapping) else list(given)
            kw["headers"] = pairs + list(self.edge_headers.items())
        return self.invoke(url_event(method, path, **kw))

    def request(self, method: str, path: str, **kw: Any) -> UrlResponse:
        """A function URL request: the event in, the URL's HTTP answer out."""
        return url_response(self.invoke_url(method, path, **kw))

    def close(self) -> None:
        self.process.close()
        self.api.close()


class AdapterEnvironment:
    """The chat function: its handler exec'd as the Web Adapter execs it, forwarded to over HTTP."""

    def __init__(
        self,
        bundle: Bundle,
        spec: FunctionSpec,
        extra_env: Mapping[str, str],
        port: int,
        edge_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.port = port
        self.edge_headers = dict(edge_headers or {})
        env = lambda_environment(spec, extra_env) | {"PORT": str(port)}
        self.process = _Process(bundle, spec, env, [f"{TASK_ROOT}/{spec.handler}"])
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=spec.timeout_s)
        self.ready_ms: float | None = None

    def wait_ready(self, timeout: float = 60) -> float:
        """Readiness in ms: process start to the first 2xx of the adapter's readiness check."""
        if self.ready_ms is not None:
            return self.ready_ms
        path = self.spec.environment.get("AWS_LWA_READINESS_CHECK_PATH", "/")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.process.alive():
                raise RuntimeError(f"{self.spec.logical_id} exited:\n{self.process.log()}")
            try:
                if self.client.get(path, timeout=1).status_code < 300:
                    self.ready_ms = (time.perf_counter() - self.process.started) * 1000
                    return self.ready_ms
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        raise TimeoutError(f"{self.spec.logical_id} never became ready:\n{self.process.log()}")

    def stream(self, method: str, path: str, **kw: Any) -> Iterator[httpx.Response]:
        """Forward one request; the response streams, and the environment freezes after its end."""
        if "json" in kw:
            kw["content"] = json.dumps(kw.pop("json")).encode()
            kw["headers"] = {"content-type": "application/json", **(kw.get("headers") or {})}
        if len(kw.get("content") or b"") > PAYLOAD_LIMIT:
            raise PayloadTooLarge(len(kw["content"]))
        self.wait_ready()
        self.process.thaw()
        context = {"http": {"method": method, "path": path, "sourceIp": "203.0.113.7"}, "requestId": str(uuid.uuid4())}
        edge = {} if kw.pop("direct", False) else self.edge_headers
        headers = {"x-amzn-request-context": json.dumps(context), **edge, **(kw.pop("headers", None) or {})}
        with self.client.stream(method, path, headers=headers, **kw) as response:
            try:
                yield response
            finally:
                self.process.freeze()

    def close(self) -> None:
        self.client.close()
        self.process.close()


# -- function URL events and answers ---------------------------------------------------------


def url_event(
    method: str,
    path: str,
    *,
    query: str = "",
    body: bytes | str | Any = None,
    headers: list[tuple[str, str]] | Mapping[str, str] | None = None,
    cookies: list[str] | None = None,
    base64_body: bool = False,
    source_ip: str = "203.0.113.7",
) -> dict[str, Any]:
    """A function-URL request (payload 2.0) as AWS builds it: header names lower-cased, repeated
    headers joined with commas, cookies moved to `cookies`, a binary body base64-encoded."""
    import base64

    domain = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    raw: bytes | None = None
    if body is not None:
        raw = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        if not any(k.lower() == "content-type" for k, _ in pairs):
            pairs.append(("content-type", "application/json"))
    merged: dict[str, str] = {"host": domain, "x-forwarded-for": source_ip, "x-forwarded-proto": "https"}
    for name, value in pairs:
        name = name.lower()
        merged[name] = f"{merged[name]},{value}" if name in merged and name != "host" else value
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": merged,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": domain.split(".")[0],
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        from urllib.parse import parse_qsl

        event["queryStringParameters"] = {}
        for k, v in parse_qsl(query, keep_blank_values=True):
            q = event["queryStringParameters"]
            q[k] = f"{q[k]},{v}" if k in q else v
    if cookies:
        event["cookies"] = cookies
    if raw is not None:
        event["body"] = base64.b64encode(raw).decode() if base64_body else raw.decode()
    return event


@dataclass
class UrlResponse:
    status: int
    headers: dict[str, str]
    cookies: list[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def url_response(inv: Invocation) -> UrlResponse:
    """What the function URL sends the caller for a buffered invocation's result."""
    import base64

    if inv.error is not None or inv.payload is None:
        return UrlResponse(
            502, {"x-amzn-errortype": str((inv.error or {}).get("errorType"))}, [], b"Internal Server Error"
        )
    doc = json.loads(inv.payload)
    if not isinstance(doc, dict) or "statusCode" not in doc:
        return UrlResponse(200, {"content-type": "application/json"}, [], inv.payload)
    body = doc.get("body") or ""
    raw = base64.b64decode(body) if doc.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): str(v) for k, v in (doc.get("headers") or {}).items()}
    return UrlResponse(int(doc["statusCode"]), headers, list(doc.get("cookies") or []), raw)
