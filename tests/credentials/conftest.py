"""Fixtures for the credential tests: moto AWS, gateways with the key routes, simulator inspection."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aigateway.api import configs, gateway_keys, usage
from aigateway.api.app import build_app
from aigateway.db import Database
from aigateway.local import EmbeddedPostgres
from aigateway.services import Services

from tests.support import SQL, Gateway, ServerThread, free_port, sim_log

ENV_KEY = "sk-or-v1-env-test-key"  # base_settings' OPENROUTER_API_KEY
Gw = Gateway


@pytest.fixture
def kms_key_id(aws: None) -> str:
    import boto3

    key_id: str = boto3.client("kms").create_key(Description="byok test")["KeyMetadata"]["KeyId"]
    return key_id


def create_cloud_secret(value: str) -> str:
    """A Secrets Manager secret holding `value` (inside the `aws` fixture); returns its name."""
    import boto3

    name = f"openrouter-cloud-key-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=value)
    return name


def key_routes_app(services: Services) -> Any:
    """The routers these tests use, independent of what else the local app mounts."""
    return build_app(configs.router, usage.router, gateway_keys.router, services=services)


@pytest.fixture
def make_gw(make_gateway: Callable[..., Gw]) -> Callable[..., Gw]:
    """`make_gw(**settings)`: a gateway serving the key routes, the model list and the audit log."""

    def make(**overrides: Any) -> Gw:
        return make_gateway(key_routes_app, **overrides)

    return make


class Sim:
    """What the upstream simulator received: which keys reached which path."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.mark = self._last_seq()

    def _entries(self) -> list[dict[str, Any]]:
        return sim_log(self.url)

    def _last_seq(self) -> int:
        entries = self._entries()
        return int(entries[-1]["seq"]) if entries else 0

    def since_mark(self, path_suffix: str = "") -> list[dict[str, Any]]:
        """Requests after the last `reset_mark()` whose path ends with `path_suffix`."""
        return [e for e in self._entries() if e["seq"] > self.mark and e["path"].endswith(path_suffix)]

    def keys(self, path_suffix: str = "") -> list[str]:
        """The bearer keys of those requests, oldest first."""
        out = []
        for e in self.since_mark(path_suffix):
            auth = e["headers"].get("authorization", "")
            out.append(auth.partition(" ")[2])
        return out

    def reset_mark(self) -> None:
        self.mark = self._last_seq()


@pytest.fixture
async def db(pg: EmbeddedPostgres, sql: SQL) -> AsyncIterator[Database]:
    """A `Database` on the test PostgreSQL, with no stored keys and no audit rows."""
    sql("TRUNCATE ai.secrets, ai.audit_logs")
    database = Database(lambda: pg.uri, schema="ai")
    yield database
    await database.close()


@pytest.fixture
def sim(simulator: ServerThread) -> Sim:
    return Sim(simulator.url)


def models_key(gw: Gw, sim: Sim) -> str | None:
    """Trigger one upstream call (GET /api/ai/models) and return the key the simulator saw."""
    sim.reset_mark()
    r = gw.client.get("/api/ai/models", headers=gw.admin())
    assert r.status_code == 200, r.text
    keys = sim.keys("/models/user")
    if not keys:
        assert r.json() == []
        return None
    assert len(keys) == 1 and r.json(), (keys, r.text)
    return keys[0]


def free_port_url() -> str:
    """An upstream base URL on a loopback port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}/api/v1"


def set_key(gw: Gw, key: str) -> httpx.Response:
    return gw.client.post("/api/ai/gateway/config", json={"apiKey": key}, headers=gw.admin())


def encodings(secret: str) -> list[str]:
    """The forms a leaked key could take in text: as is, base64 (JSON bytes, botocore), hex (bytea)."""
    raw = secret.encode()
    return [secret, base64.b64encode(raw).decode(), raw.hex()]
