"""Shared fixtures: a real PostgreSQL (embedded), the OpenRouter simulator and gateways, all on loopback.

Servers run under uvicorn in background threads, each with its own event loop, and tests
talk to them over real HTTP. Tests never touch a server's `Services.db` from the test
thread (its connections belong to the server's loop); they read the database through the
`sql` fixture's own connection instead.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aigateway.local import EmbeddedPostgres
from aigateway.migrations import apply
from aigateway.services import Services
from aigateway.settings import Settings
from psycopg.rows import dict_row

from tests.support import SQL, Gateway, MakeGateway, ServerThread, private_dir

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
TABLES = ("usage", "audit_logs", "secrets", "configs")


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    """One throw-away PostgreSQL for the session, migrated."""
    base = private_dir("aigw-pg-")
    server = EmbeddedPostgres(base / "data", delete_on_exit=True)
    uri = server.start()
    apply(uri, "ai")
    yield server
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def sql(pg: EmbeddedPostgres) -> Iterator[SQL]:
    """Run SQL against the test database from the test thread: `sql("SELECT ...", params)`."""
    holder = [psycopg.connect(pg.uri, autocommit=True, row_factory=dict_row)]

    def run(query: str, params: Any = None) -> list[dict[str, Any]]:
        for attempt in (1, 2):
            try:
                cur = holder[0].execute(query.replace("{s}", "ai"), params)
                return cur.fetchall() if cur.description else []
            except psycopg.OperationalError:
                if attempt == 2:
                    raise
                holder[0] = psycopg.connect(pg.uri, autocommit=True, row_factory=dict_row)  # server restarted
        raise AssertionError("unreachable")

    yield run
    holder[0].close()


@pytest.fixture(scope="session")
def simulator() -> Iterator[ServerThread]:
    """The OpenRouter simulator on loopback; `simulator.url + "/api/v1"` is its base URL."""
    from aigateway.simulator import create_app

    server = ServerThread(create_app()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def base_settings(pg: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home: Path = tmp_path_factory.mktemp("home")
    return Settings(
        deployment_id="test",
        home=home,
        database_url=pg.uri,
        db_pool_size=4,
        jwt_secret="test-jwt-secret-" + secrets.token_hex(16),
        access_api_key="ik_" + secrets.token_hex(32),
        openrouter_api_key="sk-or-v1-env-test-key",
        master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        config_cache_ttl_s=0.0,
        models_cache_ttl_s=0.0,
        forward_header_prefix="x-sim-",
    )


AppFactory = Callable[[Services], Any]


def _default_app(services: Services) -> Any:
    from aigateway.api.local import local_app

    return local_app(services)


@pytest.fixture
def make_gateway(base_settings: Settings, sql: SQL, request: pytest.FixtureRequest) -> Iterator[MakeGateway]:
    """Start a gateway with settings overrides: `make_gateway(allow_anon=False)`.

    The database is emptied first, so each test starts from no configurations and no usage.
    The upstream is the session's simulator unless `openrouter_base_url` is overridden.
    """
    started: list[Gateway] = []
    sql("TRUNCATE " + ", ".join(f"ai.{t}" for t in TABLES) + " CASCADE")
    for extra in _extra_tables(sql):
        sql(f"TRUNCATE ai.{extra} CASCADE")

    def make(app_factory: AppFactory = _default_app, **overrides: Any) -> Gateway:
        if "openrouter_base_url" not in overrides and not os.environ.get("TEST_NO_SIM"):
            sim: ServerThread = request.getfixturevalue("simulator")
            overrides["openrouter_base_url"] = sim.url + "/api/v1"
        settings = base_settings.with_overrides(**overrides)
        services = Services.from_settings(settings)
        server = ServerThread(app_factory(services)).start()
        gw = Gateway(server.url, settings, services, server, httpx.Client(base_url=server.url, timeout=30))
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.client.close()
        gw.server.stop()


def _extra_tables(sql: SQL) -> list[str]:
    """Tables later migrations add (limits, rollups...): emptied too, except the migration ledger."""
    rows = sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ai' AND table_type = 'BASE TABLE'"
    )
    return [r["table_name"] for r in rows if r["table_name"] not in (*TABLES, "schema_migrations")]


@pytest.fixture
def gateway(make_gateway: MakeGateway) -> Gateway:
    """A gateway with default test settings, simulator upstream, empty database."""
    return make_gateway()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every AWS API in this process (the gateway threads included), with fake
    credentials; Powertools' per-process clients and cached values are cleared around it."""
    from aws_lambda_powertools.utilities import parameters
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    parameters.clear_caches()
    with mock_aws():
        yield
    parameters.clear_caches()
