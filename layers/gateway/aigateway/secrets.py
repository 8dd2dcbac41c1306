"""Secrets that come from AWS Secrets Manager on a deployment and from the environment locally.

Each value is cached in memory (`max_age`), so a Lambda execution environment reads a secret
once per few minutes, not once per request. On Lambda the read is one GetSecretValue signed by
aigateway.aws with the role's credentials from the environment: every function reads its JWT
secret and admin key on its first request, and boto3's import and first client would add
~180 ms to it. Elsewhere Powertools' parameters utility (boto3, its full credential chain)
reads and caches it. A rotated
database password is the exception: `conninfo(fresh=True)` reads the secret again, bypassing
the cache, when the server refuses the cached one (db.Database's `reauth`).

The connection string also carries what every connection needs whatever its source: TCP
keepalives and tcp_user_timeout (a server that vanished is noticed), PostgreSQL's
statement_timeout, and TLS. With TLS to RDS the server is verified (`verify-full` against the
CA bundle at `db_ca_bundle`, by default `certs/rds-global-bundle.pem` in this package when the
layer build put it there; README, "Database TLS").
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .settings import Settings

DEFAULT_CA_BUNDLE = Path(__file__).resolve().parent / "certs" / "rds-global-bundle.pem"
_VERIFYING = frozenset({"verify-ca", "verify-full"})
_SSLMODES = frozenset({"disable", "allow", "prefer", "require", *_VERIFYING})


_cache: dict[str, tuple[str, float]] = {}


def secret_string(arn: str, max_age_s: int = 300, *, fresh: bool = False) -> str:
    """The SecretString of a Secrets Manager secret (cached `max_age_s` unless `fresh`)."""
    from . import aws

    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and aws.available():
        now = time.monotonic()
        hit = _cache.get(arn)
        if hit is not None and not fresh and now - hit[1] < max_age_s:
            return hit[0]
        doc = aws.call("secretsmanager", "GetSecretValue", {"SecretId": arn})
        value = str(doc["SecretString"])
        _cache[arn] = (value, now)
        return value
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(arn, max_age=max_age_s, force_fetch=fresh)
    return value if isinstance(value, str) else value.decode()


def resolve(value: str | None, arn: str | None) -> str | None:
    """A plain value wins; else the secret named by `arn`; else None."""
    if value:
        return value
    if arn:
        return secret_string(arn)
    return None


def conninfo(settings: Settings, *, fresh: bool = False) -> str:
    """The PostgreSQL connection string: DATABASE_URL, or built from the RDS-style DB secret.

    Keywords the URL sets itself win over the defaults added here.
    """
    if settings.database_url:
        base = settings.database_url
    elif settings.db_secret_arn:
        doc = json.loads(secret_string(settings.db_secret_arn, fresh=fresh))
        base = make_conninfo(
            host=settings.db_host or doc.get("host"),
            port=str(settings.db_port or doc.get("port") or 5432),
            dbname=settings.db_name or doc.get("dbname") or "postgres",
            user=str(doc["username"]),
            password=str(doc["password"]),
        )
    else:
        raise RuntimeError("No database configured: set DATABASE_URL, or DB_SECRET_ARN and DB_HOST.")
    present = conninfo_to_dict(base)
    extra = {k: v for k, v in connect_options(settings).items() if k not in present}
    return make_conninfo(base, **extra) if extra else base


def connect_options(settings: Settings) -> dict[str, str]:
    """libpq keywords for deadlines and TLS (ignored by libpq on a Unix socket, except options)."""
    opts = {
        "keepalives": "1",
        "keepalives_idle": str(settings.db_keepalive_idle_s),
        "keepalives_interval": "5",
        "keepalives_count": "3",
        "tcp_user_timeout": str(settings.db_tcp_user_timeout_ms),
    }
    if settings.db_statement_timeout_ms > 0:
        opts["options"] = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    opts.update(tls_options(settings))
    return opts


def tls_options(settings: Settings) -> dict[str, str]:
    """sslmode (and sslrootcert when the server is verified); a clear error for a bad setting."""
    bundle = settings.db_ca_bundle or (DEFAULT_CA_BUNDLE if DEFAULT_CA_BUNDLE.is_file() else None)
    mode = settings.db_sslmode
    if mode is None:
        if not settings.on_aws:
            return {"sslmode": "prefer"} if settings.db_secret_arn else {}
        mode = "verify-full" if bundle else "require"
    if mode not in _SSLMODES:
        raise RuntimeError(f"DB_SSLMODE must be one of {', '.join(sorted(_SSLMODES))}, got {mode!r}")
    if mode not in _VERIFYING:
        return {"sslmode": mode}
    if bundle is None or not bundle.is_file():
        raise RuntimeError(
            f"DB_SSLMODE={mode} needs a CA bundle: set AIGATEWAY_DB_CA_BUNDLE or ship {DEFAULT_CA_BUNDLE}"
            + (f" ({bundle} does not exist)" if bundle else "")
        )
    return {"sslmode": mode, "sslrootcert": str(bundle)}
