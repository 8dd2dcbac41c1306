"""A rotated database password: when the server refuses the cached password, the gateway reads the
database secret from Secrets Manager again (past Powertools' cache), once, and connects with it.

Real PostgreSQL with password authentication for one role (a pg_hba line added for the test and
removed after), moto for Secrets Manager.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aigateway.errors import GatewayError
from aigateway.local import EmbeddedPostgres
from aigateway.services import Services
from aigateway.settings import Settings

from tests.support import SQL

ROLE = "aigw_rotated"


@pytest.fixture
def password_role(sql: SQL) -> Iterator[None]:
    """ROLE logs in with a password over the Unix socket (the session server trusts everyone else)."""
    hba = sql("SHOW hba_file")[0]["hba_file"]
    original = sql("SELECT pg_read_file(%s) AS t", [hba])[0]["t"]

    def write(text: str) -> None:  # as the server's own user, which owns the file
        oid = sql("SELECT lo_from_bytea(0, convert_to(%s, 'UTF8')) AS o", [text])[0]["o"]
        sql("SELECT lo_export(%s, %s) AS ok", [oid, hba])
        sql("SELECT lo_unlink(%s) AS ok", [oid])
        sql("SELECT pg_reload_conf() AS ok")

    sql(f"DROP ROLE IF EXISTS {ROLE}")
    sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD 'first-password'")
    write(f"local all {ROLE} scram-sha-256\n" + original)
    yield
    write(original)
    sql(f"DROP ROLE IF EXISTS {ROLE}")


def test_a_rotated_password_is_read_again_and_the_next_call_succeeds(
    aws: None, password_role: None, pg: EmbeddedPostgres, sql: SQL
) -> None:
    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(Name="aigw/db", SecretString=json.dumps({"username": ROLE, "password": "first-password"}))[
        "ARN"
    ]
    socket_dir = str(pg.uri.split("host=", 1)[1])
    port = int(sql("SHOW port")[0]["port"])
    settings = Settings(db_secret_arn=arn, db_host=socket_dir, db_port=port, home=Path("/nonexistent"))
    svc = Services.from_settings(settings)

    async def whoami() -> str:
        row = await svc.db.fetchone("SELECT current_user AS u")
        assert row is not None
        return str(row["u"])

    async def scenario() -> None:
        assert await whoami() == ROLE  # the secret is now in Powertools' cache
        # Rotation: the role's password and the secret change; the cached secret is stale.
        sql(f"ALTER ROLE {ROLE} PASSWORD 'second-password'")
        sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": ROLE, "password": "second-password"}))
        await svc.db.close()  # the next call opens a new connection (as a new execution environment would)
        assert await whoami() == ROLE
        await svc.db.close()

    asyncio.run(scenario())


def test_a_wrong_password_in_the_secret_too_is_a_503(
    aws: None, password_role: None, pg: EmbeddedPostgres, sql: SQL
) -> None:
    sm = boto3.client("secretsmanager")
    arn = sm.create_secret(Name="aigw/db-wrong", SecretString=json.dumps({"username": ROLE, "password": "nope"}))["ARN"]
    settings = Settings(
        db_secret_arn=arn, db_host=pg.uri.split("host=", 1)[1], db_port=int(sql("SHOW port")[0]["port"])
    )
    svc = Services.from_settings(settings)

    async def call() -> None:
        await svc.db.fetch("SELECT 1")

    with pytest.raises(GatewayError) as info:
        asyncio.run(call())
    assert info.value.status == 503 and "nope" not in info.value.message
