"""PostgreSQL access: a few long-lived async connections per process, reconnecting.

Why not a pool library: on Lambda each execution environment serves one request at a time,
so one connection is right (and keeps RDS Proxy from pinning: no server-side prepared
statements, no session state). The local server serves many requests at once, so it keeps
a handful. `prepare_threshold=None` disables psycopg's automatic prepared statements.

Prepared statements (`prepare=True`) are for a direct connection only, i.e. not behind RDS
Proxy, where they would pin. They matter on the hot path: the admission statement of
store/limits.py spends more time being parsed and planned than run (measured: 1.17 ms a call
unprepared, 0.48 ms prepared), so the local server turns them on (`build_app`).

`GroupCommit` coalesces the writes that follow each answer (usage rows, quota charges): under
load many requests finish at once, and one statement for all of them costs PostgreSQL and the
event loop far less than one round trip each.

Deadlines: every operation (`run`, `fetch`, `execute`, and the connection and BEGIN of
`transaction`) ends within `op_timeout_s`, waiting for a pool slot and connecting included. A
hung server (alive but not answering: frozen, a network partition) would otherwise hold a
caller for as long as the hang lasts; now the caller gets a 503 and usage goes to the spool.
The statement runs in a task of its own that is abandoned at the deadline, because psycopg
answers a cancellation by asking the server to cancel and waiting for that, which a hung
server never answers. After a failed connect or a timeout the database is left alone for a
growing, jittered back-off (0.2 s doubling, up to 5 s or twice the deadline): an operation
whose deadline outlasts the back-off waits it out (a restart or failover stays invisible), one
whose deadline does not fails at once. So there is no tight reconnect loop against a server
that is down, and in a long outage most callers learn it at once while one now and then probes.

A rotated password: when connecting fails on authentication, `reauth` (re-read the secret,
bypassing its cache) runs once and the connect is tried again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import lru_cache
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.rows import dict_row

from .errors import GatewayError, service_unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
Item = TypeVar("Item")
Conn = psycopg.AsyncConnection[dict[str, Any]]

PREPARE_AFTER = 5  # psycopg's default: only statements a connection runs repeatedly get prepared
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.2, 5.0
_AUTH_SQLSTATES = frozenset({"28P01", "28000"})
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema(schema: str) -> str:
    """The schema name is spliced into SQL text, so it must be a plain identifier."""
    if not _IDENT.match(schema):
        raise ValueError(f"DB_SCHEMA must be a lower-case SQL identifier, got {schema!r}")
    return schema


@lru_cache(maxsize=512)
def sql(template: str, schema: str) -> str:
    """`template` with `{s}` replaced by the schema; cached so the hot path does no formatting."""
    return template.replace("{s}", check_schema(schema))


class Database:
    """Hands out connections; turns 'cannot reach the database' into a 503 GatewayError."""

    def __init__(
        self,
        conninfo: Callable[[], str],
        *,
        schema: str = "ai",
        pool_size: int = 1,
        connect_timeout_s: int = 5,
        op_timeout_s: float = 60.0,
        prepare: bool = False,
        reauth: Callable[[], object] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self.prepare = prepare  # read when a connection is opened
        self.schema = check_schema(schema)
        self._size = max(1, pool_size)
        self._timeout = connect_timeout_s
        self.op_timeout_s = op_timeout_s
        self._reauth = reauth
        self._idle: list[Conn] = []
        self._opened = 0
        self._waiters: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failures = 0  # consecutive failed connects / timeouts
        self._resting_until = 0.0  # monotonic; before it, operations fail at once

    def q(self, template: str) -> str:
        return sql(template, self.schema)

    async def _connect(self) -> Conn:
        try:
            try:
                conn = await self._open(self._conninfo())
            except psycopg.OperationalError as exc:
                if self._reauth is None or not is_auth_failure(exc):
                    raise
                log.warning("database authentication failed; re-reading the database secret once")
                await asyncio.to_thread(self._reauth)
                conn = await self._open(self._conninfo())
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("database connect failed: %s", type(exc).__name__)
            self._note_failure()
            raise service_unavailable() from exc
        self._failures = 0
        return conn

    async def _open(self, conninfo: str) -> Conn:
        return await asyncio.wait_for(
            psycopg.AsyncConnection.connect(
                conninfo,
                autocommit=True,
                prepare_threshold=PREPARE_AFTER if self.prepare else None,
                connect_timeout=self._timeout,
                row_factory=dict_row,
                application_name="aigateway",
            ),
            timeout=self._timeout + 1,
        )

    def _note_failure(self) -> None:
        """Rest for a growing, jittered while: failing at once beats queueing on a dead server."""
        self._failures += 1
        # Capped past the deadline, so that in a long outage most callers fail at once and one
        # now and then probes the database.
        cap = max(BACKOFF_MAX_S, 2 * self.op_timeout_s)
        pause = min(cap, BACKOFF_FIRST_S * 2 ** (self._failures - 1)) * (0.5 + random.random() / 2)
        self._resting_until = time.monotonic() + pause

    async def _rest(self) -> float:
        """Wait out the back-off if it ends before this operation's deadline (a restart or a
        failover is then invisible), else fail now. Returns the deadline (monotonic)."""
        now = time.monotonic()
        deadline = now + self.op_timeout_s
        if now < self._resting_until:
            if self._resting_until >= deadline - 0.05:
                raise service_unavailable()
            await asyncio.sleep(self._resting_until - now)
        return deadline

    async def _bounded(self, work: Awaitable[T], deadline: float) -> T:
        """`work` before `deadline`, else a 503 at once (the work is cancelled and left to end)."""
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()))
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done:
            return task.result()
        task.cancel()
        task.add_done_callback(_retrieve)
        log.warning("database operation timed out (deadline %.1fs)", self.op_timeout_s)
        self._note_failure()
        raise service_unavailable()

    def _bind_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._waiters is None:
            # A new event loop (tests, a fresh Mangum loop): connections of the old loop are unusable.
            self._loop, self._idle, self._opened = loop, [], 0
            self._waiters = asyncio.Semaphore(self._size)
        return self._waiters

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A connection for one unit of work; broken ones are dropped, not returned."""
        sem = self._bind_loop()
        async with sem:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._connect()
            try:
                yield conn
            except psycopg.Error as exc:
                if connection_lost(conn, exc):
                    await _discard(conn)
                    raise (_Dropped() if reused else service_unavailable()) from exc
                await self._put_back(conn)  # the server answered: the connection is fine
                if server_busy(exc):
                    log.warning("database too busy for a statement: SQLSTATE %s", exc.sqlstate)
                    raise service_unavailable() from exc
                _log_refused(exc)
                raise
            except BaseException:
                await self._put_back(conn)
                raise
            else:
                await self._put_back(conn)

    async def _put_back(self, conn: Conn) -> None:
        """Back to the idle list when it is usable (open, no transaction left open), else closed."""
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await _discard(conn)
        else:
            self._idle.append(conn)

    async def run(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run `work` on a connection, within the deadline; once more on a fresh connection if
        the first had been dropped.

        A connection the server closed while idle fails on first use, before the statement
        ran, so one retry on a new connection is safe and hides restarts and failovers.
        """
        deadline = await self._rest()
        return await self._bounded(self._run(work), deadline)

    async def _run(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        for attempt in (1, 2):
            try:
                async with self.connection() as conn:
                    return await work(conn)
            except _Dropped:
                if attempt == 2:
                    raise
                log.info("database connection dropped; reconnecting once")
        raise AssertionError("unreachable")

    async def fetch(self, template: str, params: Any = None) -> list[dict[str, Any]]:
        async def work(conn: Conn) -> list[dict[str, Any]]:
            cur = await conn.execute(self.q(template), params)
            return await cur.fetchall() if _has_rows(cur) else []

        return await self.run(work)

    async def fetchone(self, template: str, params: Any = None) -> dict[str, Any] | None:
        rows = await self.fetch(template, params)
        return rows[0] if rows else None

    async def execute(self, template: str, params: Any = None) -> int:
        async def work(conn: Conn) -> int:
            cur = await conn.execute(self.q(template), params)
            return cur.rowcount

        return await self.run(work)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A connection inside one transaction (an admin mutation and its audit record).

        Getting the connection and BEGIN are bounded like `run`; the statements inside are bounded
        by the server's statement_timeout and the TCP keepalives (the caller's code runs between).
        """
        deadline = await self._rest()
        async with AsyncExitStack() as stack:
            conn = await self._bounded(stack.enter_async_context(self.connection()), deadline)
            await self._bounded(stack.enter_async_context(conn.transaction()), deadline)
            yield conn

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await _discard(conn)


_ROWS = frozenset({psycopg.pq.ExecStatus.TUPLES_OK, psycopg.pq.ExecStatus.SINGLE_TUPLE})


def is_auth_failure(exc: psycopg.Error) -> bool:
    """The server refused the credentials (a rotated password), as opposed to being unreachable."""
    return exc.sqlstate in _AUTH_SQLSTATES or "password authentication failed" in str(exc)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Read an abandoned task's outcome, so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()


def _has_rows(cur: psycopg.AsyncCursor[Any]) -> bool:
    """`cur.description is not None`, without building a Column object per column on every call
    (that was ~2 % of the gateway's CPU under load, py-spy)."""
    res = cur.pgresult
    return res is not None and (res.nfields > 0 or res.status in _ROWS)


_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})  # admin / crash shutdown, cannot connect now
_BUSY_STATES = frozenset({"57014", "55P03", "40P01", "40001"})


def connection_lost(conn: Conn, exc: psycopg.Error) -> bool:
    """Whether `exc` means the connection is gone (server closed it, network failed: reconnect),
    as opposed to the server refusing the statement — data, constraint and limit errors
    (SQLSTATE classes 22, 23, 54, ...), which a reconnect would only repeat and which must not
    pass for an outage. psycopg files some of those (54 "program limit exceeded": an index row
    too large) under OperationalError, so the class alone does not tell."""
    if conn.closed or conn.broken:
        return True
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _LOST_STATES


def server_busy(exc: psycopg.Error) -> bool:
    """Whether the server could not run the statement for now — out of resources (class 53),
    cancelled by a statement timeout (57014), a lock wait or deadlock (55P03, 40P01, 40001):
    a 503 for the caller, but the same statement later may well succeed, and no reconnect."""
    state = exc.sqlstate or ""
    return state.startswith("53") or state in _BUSY_STATES


def _log_refused(exc: psycopg.Error) -> None:
    """A refused statement is a bug or bad data, never routine: logged as an error (no values)."""
    primary = exc.diag.message_primary if exc.diag else None
    log.error("database refused a statement: %s (SQLSTATE %s): %s", type(exc).__name__, exc.sqlstate, primary)


class _Dropped(GatewayError):
    """A reused connection failed: the server restarted or closed it while idle."""

    def __init__(self) -> None:
        base = service_unavailable()
        super().__init__(base.code, base.status, base.message, base.next_actions)


async def _discard(conn: Conn) -> None:
    try:
        await conn.close()
    except Exception:
        log.debug("closing a broken connection failed", exc_info=True)


class GroupCommit(Generic[Item]):
    """Group commit: items submitted while a write is running go out together in the next one.

    Nothing waits for a timer: with no write in flight an item is written at once, so a lone
    request (and every Lambda, which serves one request at a time) sees exactly the write it
    would have made alone. While a write runs, new items queue up and the next write takes
    them all (up to `max_batch`), so N requests finishing together cost one round trip, not N.
    `submit` returns when the write holding its item is done and raises what that write
    raised, so each caller keeps the semantics of writing its own row.
    """

    def __init__(self, write: Callable[[list[Item]], Awaitable[None]], max_batch: int = 200) -> None:
        self._write = write
        self._max = max(1, max_batch)
        self._queue: list[tuple[Item, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, item: Item) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests, a fresh Mangum loop): start over
            self._loop, self._queue, self._task = loop, [], None
        done: asyncio.Future[None] = loop.create_future()
        self._queue.append((item, done))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            try:
                await self._write([item for item, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            except BaseException:  # cancelled (shutdown): so are the callers waiting on it
                for _, done in batch:
                    done.cancel()
                raise
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
