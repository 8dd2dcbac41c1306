"""Every setting, read once from the environment into one typed, immutable object.

Why one object: the same code runs as six Lambda functions and as one local server, and
each needs a slightly different subset. Reading the environment in one place keeps the
names, defaults and parsing rules in one file the admin can read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

MIB = 1024 * 1024
# Lambda's buffered response cap (6 MB) less 64 KiB for the envelope around the JSON body.
LAMBDA_BUFFERED_RESPONSE_BYTES = 6 * MIB - 64 * 1024


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(value: str | None, default: int) -> int:
    return int(value) if value not in (None, "") else default


def _float(value: str | None, default: float) -> float:
    return float(value) if value not in (None, "") else default


def _opt(value: str | None) -> str | None:
    return value if value not in (None, "") else None


@dataclass(frozen=True)
class Settings:
    """The gateway's configuration. Build it with `Settings.from_env()`."""

    deployment_id: str = "local"
    home: Path = field(default_factory=lambda: Path(".aigateway"))
    on_aws: bool = False

    # Database: a URL, or (on AWS) a Secrets Manager secret plus host.
    database_url: str | None = None
    db_secret_arn: str | None = None
    db_host: str | None = None
    db_port: int = 5432
    db_name: str = "postgres"
    db_schema: str = "ai"
    db_connect_timeout_s: int = 5
    db_pool_size: int = 1
    # Deadlines, so a hung database costs a caller seconds, not the whole hang (db.py): the
    # client-side bound of one operation, and PostgreSQL's own statement_timeout (0 = not sent;
    # off by default on AWS: RDS Proxy refuses the `options` startup parameter that carries it).
    db_op_timeout_s: float = 5.0
    db_statement_timeout_ms: int = 4000
    # TCP keepalives and tcp_user_timeout: a server that vanished mid-statement is noticed.
    db_keepalive_idle_s: int = 10
    db_tcp_user_timeout_ms: int = 10_000
    # TLS to the database: a libpq sslmode (verify-full checks the server's certificate and
    # name against `db_ca_bundle`); None = "verify-full" on AWS when the bundle exists, else
    # "require" on AWS and "prefer" locally.
    db_sslmode: str | None = None
    db_ca_bundle: Path | None = None

    # Caller authentication.
    jwt_secret: str | None = None
    jwt_secret_arn: str | None = None
    access_api_key: str | None = None
    access_api_key_secret_arn: str | None = None
    allow_anon: bool = True
    # Optional JWT rules (auth.TokenRules): longest lifetime of non-anon tokens, required aud / iss.
    jwt_max_lifetime_s: int | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    # Upstream.
    openrouter_api_key: str | None = None
    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    openrouter_cloud_key_secret: str | None = None
    http_referer: str = "https://insforge.dev"
    app_title: str = "InsForge"
    upstream_connect_timeout_s: float = 5.0
    upstream_timeout_s: float = 120.0
    upstream_max_tries: int = 3
    key_validation_timeout_s: float = 8.0
    fallback_on_exhaustion: bool = False
    # Caller headers with this prefix are passed to the upstream (the simulator's `x-sim-`
    # controls in local runs and tests). Off by default; never set it against real OpenRouter.
    forward_header_prefix: str | None = None

    # BYOK key wrapping: AWS KMS when a key id is set, else a local AES-256-GCM master key.
    kms_key_id: str | None = None
    master_key: str | None = None

    # Generated images and the usage retry path.
    images_bucket: str | None = None
    images_url_ttl_s: int = 3600
    usage_spool_queue_url: str | None = None
    # The local server replays its file spool at start-up and then every this many seconds.
    usage_replay_interval_s: float = 30.0
    # `aigateway serve`: how long a SIGTERM / Ctrl-C waits for open calls before cancelling them.
    shutdown_timeout_s: float = 10.0

    # Limits on a single request.
    max_body_bytes: int = 10 * MIB
    max_completion_tokens: int = 16384
    default_max_tokens: int = 4096
    max_messages: int = 500
    max_content_chars: int = 2_000_000
    max_embedding_inputs: int = 2048
    # The largest JSON answer a buffered response may carry; 0 = no cap. Lambda refuses a buffered
    # function-URL response over 6 MB (6,291,456 bytes) with a 502, so on Lambda the default is that
    # less room for the response envelope (status, headers, JSON string escaping).
    max_response_bytes: int = 0

    # Who the caller is, network-wise (api/client_address.py). A header the trusted edge sets
    # and overwrites (`cloudfront-viewer-address`, "ip:port"), and the number of proxies in
    # front of the gateway that append the address they saw to X-Forwarded-For. Neither is
    # trusted by default: the caller's address is then the connection's (or Lambda's sourceIp).
    client_ip_header: str | None = None
    trusted_proxy_hops: int = 0

    # How long an admitted call's quota hold counts at most (limits.py): longer than any call
    # runs, so a process that dies mid-call holds the quota only this long.
    quota_hold_ttl_s: int = 900

    # Caches (seconds).
    config_cache_ttl_s: float = 5.0
    key_cache_ttl_s: float = 300.0
    models_cache_ttl_s: float = 300.0

    # The response and embeddings cache (cache.py): the largest entry stored, the most all entries
    # of the deployment may hold together (oldest evicted first), and how often a process checks it.
    cache_max_entry_bytes: int = 256 * 1024
    cache_max_total_bytes: int = 256 * MIB
    cache_evict_interval_s: float = 60.0

    log_level: str = "INFO"

    # Batches (flows/batches.py): items per batch; runs of an item a passing refusal may take; on
    # AWS the SQS queue the batch worker consumes, locally how many items run at once in-process.
    batch_max_items: int = 1000
    batch_max_attempts: int = 5
    batch_queue_url: str | None = None
    batch_local_concurrency: int = 16
    # An open item untouched this long lost its queue message (flows/batch_sweep.py): above the SQS
    # visibility timeout (360 s), so a message still in flight is never taken for lost.
    batch_stale_after_s: float = 900.0
    # OpenRouter's Batch API for batches whose items qualify (flows/openrouter_batches.py): "off",
    # "allowed" (a batch asks with `upstreamBatch: true`) or "always"; polled every this many seconds
    # locally (on AWS by the scheduled usage_summary function).
    openrouter_batches: str = "off"
    batch_poll_interval_s: float = 30.0

    # The secret the CloudFront front door adds to every origin request (api/front_door.py).
    # Set, requests without it are refused: the function URLs are public.
    origin_secret: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        on_aws = bool(e.get("AWS_LAMBDA_FUNCTION_NAME"))
        return cls(
            deployment_id=e.get("AIGATEWAY_DEPLOYMENT_ID") or "local",
            home=Path(e.get("AIGATEWAY_HOME") or ".aigateway"),
            on_aws=on_aws,
            database_url=_opt(e.get("DATABASE_URL")),
            db_secret_arn=_opt(e.get("DB_SECRET_ARN")),
            db_host=_opt(e.get("DB_HOST")),
            db_port=_int(e.get("DB_PORT"), 5432),
            db_name=e.get("DB_NAME") or "postgres",
            db_schema=e.get("DB_SCHEMA") or "ai",
            db_connect_timeout_s=_int(e.get("DB_CONNECT_TIMEOUT_S"), 5),
            db_pool_size=_int(e.get("DB_POOL_SIZE"), 1 if on_aws else 4),
            db_op_timeout_s=_float(e.get("DB_OP_TIMEOUT_S"), 5.0),
            db_statement_timeout_ms=_int(e.get("DB_STATEMENT_TIMEOUT_MS"), 0 if on_aws else 4000),
            db_keepalive_idle_s=_int(e.get("DB_KEEPALIVE_IDLE_S"), 10),
            db_tcp_user_timeout_ms=_int(e.get("DB_TCP_USER_TIMEOUT_MS"), 10_000),
            db_sslmode=_opt(e.get("DB_SSLMODE")),
            db_ca_bundle=Path(e["AIGATEWAY_DB_CA_BUNDLE"]) if e.get("AIGATEWAY_DB_CA_BUNDLE") else None,
            jwt_secret=_opt(e.get("JWT_SECRET")),
            jwt_secret_arn=_opt(e.get("JWT_SECRET_ARN")),
            access_api_key=_opt(e.get("ACCESS_API_KEY")),
            access_api_key_secret_arn=_opt(e.get("ACCESS_API_KEY_SECRET_ARN")),
            allow_anon=_bool(e.get("ALLOW_ANON"), True),
            jwt_max_lifetime_s=_int(e.get("JWT_MAX_LIFETIME_S"), 0) or None,
            jwt_audience=_opt(e.get("JWT_AUDIENCE")),
            jwt_issuer=_opt(e.get("JWT_ISSUER")),
            openrouter_api_key=_opt(e.get("OPENROUTER_API_KEY")),
            openrouter_base_url=(e.get("OPENROUTER_BASE_URL") or "https://openrouter.ai/api/v1").rstrip("/"),
            openrouter_cloud_key_secret=_opt(e.get("OPENROUTER_CLOUD_KEY_SECRET")),
            http_referer=e.get("OPENROUTER_HTTP_REFERER") or "https://insforge.dev",
            app_title=e.get("OPENROUTER_APP_TITLE") or "InsForge",
            upstream_connect_timeout_s=_float(e.get("UPSTREAM_CONNECT_TIMEOUT_S"), 5.0),
            upstream_timeout_s=_float(e.get("UPSTREAM_TIMEOUT_S"), 120.0),
            upstream_max_tries=max(1, min(3, _int(e.get("UPSTREAM_MAX_TRIES"), 3))),
            key_validation_timeout_s=_float(e.get("KEY_VALIDATION_TIMEOUT_S"), 8.0),
            fallback_on_exhaustion=_bool(e.get("BYOK_FALLBACK_ON_EXHAUSTION"), False),
            forward_header_prefix=_opt(e.get("UPSTREAM_FORWARD_HEADER_PREFIX")),
            kms_key_id=_opt(e.get("KMS_KEY_ID")),
            master_key=_opt(e.get("AIGATEWAY_MASTER_KEY")),
            images_bucket=_opt(e.get("IMAGES_BUCKET")),
            images_url_ttl_s=_int(e.get("IMAGES_URL_TTL_S"), 3600),
            usage_spool_queue_url=_opt(e.get("USAGE_SPOOL_QUEUE_URL")),
            usage_replay_interval_s=_float(e.get("USAGE_REPLAY_INTERVAL_S"), 30.0),
            shutdown_timeout_s=_float(e.get("SHUTDOWN_TIMEOUT_S"), 10.0),
            max_body_bytes=_int(e.get("MAX_BODY_BYTES"), 10 * MIB),
            max_completion_tokens=_int(e.get("MAX_COMPLETION_TOKENS"), 16384),
            default_max_tokens=_int(e.get("DEFAULT_MAX_TOKENS"), 4096),
            max_messages=_int(e.get("MAX_MESSAGES"), 500),
            max_content_chars=_int(e.get("MAX_CONTENT_CHARS"), 2_000_000),
            max_embedding_inputs=_int(e.get("MAX_EMBEDDING_INPUTS"), 2048),
            client_ip_header=(_opt(e.get("CLIENT_IP_HEADER")) or "").lower() or None,
            trusted_proxy_hops=max(0, _int(e.get("TRUSTED_PROXY_HOPS"), 0)),
            quota_hold_ttl_s=max(60, _int(e.get("QUOTA_HOLD_TTL_S"), 900)),
            max_response_bytes=_int(e.get("MAX_RESPONSE_BYTES"), LAMBDA_BUFFERED_RESPONSE_BYTES if on_aws else 0),
            config_cache_ttl_s=_float(e.get("CONFIG_CACHE_TTL_S"), 5.0),
            key_cache_ttl_s=min(300.0, _float(e.get("KEY_CACHE_TTL_S"), 300.0)),
            models_cache_ttl_s=_float(e.get("MODELS_CACHE_TTL_S"), 300.0),
            cache_max_entry_bytes=_int(e.get("CACHE_MAX_ENTRY_BYTES"), 256 * 1024),
            cache_max_total_bytes=_int(e.get("CACHE_MAX_TOTAL_BYTES"), 256 * MIB),
            cache_evict_interval_s=_float(e.get("CACHE_EVICT_INTERVAL_S"), 60.0),
            log_level=(e.get("POWERTOOLS_LOG_LEVEL") or e.get("LOG_LEVEL") or "INFO").upper(),
            origin_secret=_opt(e.get("AIGATEWAY_ORIGIN_SECRET")),
            batch_max_items=max(1, _int(e.get("BATCH_MAX_ITEMS"), 1000)),
            batch_max_attempts=max(1, _int(e.get("BATCH_MAX_ATTEMPTS"), 5)),
            batch_queue_url=_opt(e.get("BATCH_QUEUE_URL")),
            batch_local_concurrency=max(1, _int(e.get("BATCH_LOCAL_CONCURRENCY"), 16)),
            batch_stale_after_s=max(60.0, _float(e.get("BATCH_STALE_AFTER_S"), 900.0)),
            openrouter_batches=(e.get("OPENROUTER_BATCHES") or "off").strip().lower(),
            batch_poll_interval_s=_float(e.get("BATCH_POLL_INTERVAL_S"), 30.0),
        )

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the local server use it)."""
        return replace(self, **changes)  # type: ignore[arg-type]
