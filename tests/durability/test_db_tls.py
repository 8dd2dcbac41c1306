"""The connection string: server verification when TLS to RDS is configured, deadlines always."""

from __future__ import annotations

from pathlib import Path

import pytest
from aigateway.secrets import DEFAULT_CA_BUNDLE, conninfo
from aigateway.settings import Settings
from psycopg.conninfo import conninfo_to_dict

URL = "postgresql://gw:pw@db.example.internal:5432/postgres"


def test_verify_full_names_the_ca_bundle_from_the_setting(tmp_path: Path) -> None:
    bundle = tmp_path / "global-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    s = Settings.from_env({"DATABASE_URL": URL, "DB_SSLMODE": "verify-full", "AIGATEWAY_DB_CA_BUNDLE": str(bundle)})
    info = conninfo_to_dict(conninfo(s))
    assert info["sslmode"] == "verify-full" and info["sslrootcert"] == str(bundle)


def test_on_aws_the_default_verifies_when_a_bundle_is_there(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    s = Settings(database_url=URL, on_aws=True, db_ca_bundle=bundle)
    assert conninfo_to_dict(conninfo(s))["sslmode"] == "verify-full"
    if not DEFAULT_CA_BUNDLE.is_file():  # a layer built without the bundle still encrypts
        assert conninfo_to_dict(conninfo(Settings(database_url=URL, on_aws=True)))["sslmode"] == "require"


def test_verification_without_a_bundle_is_a_clear_error(tmp_path: Path) -> None:
    s = Settings(database_url=URL, db_sslmode="verify-full", db_ca_bundle=tmp_path / "missing.pem")
    with pytest.raises(RuntimeError, match="AIGATEWAY_DB_CA_BUNDLE"):
        conninfo(s)
    with pytest.raises(RuntimeError, match="DB_SSLMODE must be one of"):
        conninfo(Settings(database_url=URL, db_sslmode="verify-everything"))


def test_every_connection_carries_keepalives_and_a_statement_timeout() -> None:
    info = conninfo_to_dict(conninfo(Settings(database_url=URL, db_statement_timeout_ms=2500)))
    assert info["keepalives"] == "1" and int(str(info["tcp_user_timeout"])) > 0
    assert info["options"] == "-c statement_timeout=2500"
    # What the URL says itself wins.
    own = conninfo_to_dict(conninfo(Settings(database_url=URL + "?sslmode=disable&keepalives=0")))
    assert own["sslmode"] == "disable" and own["keepalives"] == "0"
