"""Secrets that come from AWS Secrets Manager on a deployment and from the environment locally.

Powertools' parameters utility caches each value in memory (`max_age`), so a Lambda
execution environment reads a secret once per few minutes, not once per request.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from .settings import Settings


def secret_string(arn: str, max_age_s: int = 300) -> str:
    """The SecretString of a Secrets Manager secret (cached by Powertools)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(arn, max_age=max_age_s)
    return value if isinstance(value, str) else value.decode()


def resolve(value: str | None, arn: str | None) -> str | None:
    """A plain value wins; else the secret named by `arn`; else None."""
    if value:
        return value
    if arn:
        return secret_string(arn)
    return None


def conninfo(settings: Settings) -> str:
    """The PostgreSQL connection string: DATABASE_URL, or built from the RDS-style DB secret."""
    if settings.database_url:
        return settings.database_url
    if settings.db_secret_arn:
        doc = json.loads(secret_string(settings.db_secret_arn))
        host = settings.db_host or doc.get("host")
        port = settings.db_port or doc.get("port") or 5432
        name = settings.db_name or doc.get("dbname") or "postgres"
        user, password = quote(str(doc["username"]), safe=""), quote(str(doc["password"]), safe="")
        sslmode = "require" if settings.on_aws else "prefer"
        return f"postgresql://{user}:{password}@{host}:{port}/{name}?sslmode={sslmode}"
    raise RuntimeError("No database configured: set DATABASE_URL, or DB_SECRET_ARN and DB_HOST.")
