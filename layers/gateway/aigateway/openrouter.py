"""The upstream client: OpenRouter chat (plain and streamed), embeddings, models and key checks.

Why aiohttp and not httpx (docs/adr/0001): measured on this kind of machine,
httpx.AsyncClient's throughput falls as concurrency rises (815 → 368 req/s) while aiohttp's
rises (1,167 → 1,982) behind the same server (infra/bench/RESULTS.md; encode/httpx#3215).
The client is the gateway's hot path, so it decides our overhead.

One session per process and event loop, kept across Lambda invocations (Mangum reuses its
loop). Retries: at most `upstream_max_tries` tries on 408/429/5xx, connection errors,
connect timeouts and unreadable answers, with exponential backoff and jitter, honouring
Retry-After; a stream is never retried once its first byte has been read. A read timeout is not
retried either: the request was sent, so the upstream may be generating (and billing) it, and a
retry would pay for a second generation with no usage row for the first. Failover across a
configuration's fallback models is OpenRouter's own `models` list.

What a failure is and what the caller sees for it live in upstream_errors.py. aiohttp is imported
where a request is made, not with this module: aiohttp (with the SSL context it builds at import)
is ~115 ms of a cold start that the functions which never call upstream would pay for nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from . import sse
from .settings import Settings
from .upstream_errors import (
    StreamBroken,
    UpstreamFailure,
    error_of,
    read_timeout,
    retry_after_of,
    transport_failure,
)

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

MAX_RETRY_WAIT_S = 10.0
RELEASE_WAIT_S = 0.05  # for the end of a finished stream's body before its connection is reused


class UpstreamStream:
    """An open upstream SSE response: iterate `events()`, always `close()`."""

    def __init__(self, response: aiohttp.ClientResponse, model: str | None) -> None:
        self._resp = response
        self.requested_model = model
        self.generation_id = response.headers.get("X-Generation-Id")

    async def events(self) -> AsyncIterator[sse.Event]:
        """The stream's events; a broken connection or a read timeout raises StreamBroken."""
        import aiohttp

        try:
            async for event in sse.parse(aiter(self._resp.content)):
                yield event
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise StreamBroken(type(exc).__name__) from exc

    def close(self) -> None:
        """Closing the connection is how the upstream learns the caller went away."""
        self._resp.close()

    async def release(self) -> None:
        """After a stream relayed to its end (`[DONE]`): keep the connection for the next call.

        Only the end of the chunked body can be left unread; it is read (briefly), and the
        connection goes back to the pool, so the next stream skips a TCP (and, against
        OpenRouter, TLS) handshake. Anything else — the end not arriving, an error — closes it.
        """
        import aiohttp

        try:
            await asyncio.wait_for(self._resp.content.read(), RELEASE_WAIT_S)
        except (aiohttp.ClientError, TimeoutError):
            self._resp.close()
            return
        self._resp.release()


class OpenRouterClient:
    def __init__(self, settings: Settings) -> None:
        import aiohttp

        self.settings = settings
        self.base = settings.openrouter_base_url
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.upstream_connect_timeout_s, sock_read=settings.upstream_timeout_s
        )
        self._static_headers = {
            "HTTP-Referer": settings.http_referer,
            "X-Title": settings.app_title,
            "Content-Type": "application/json",
        }

    def session(self) -> aiohttp.ClientSession:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(limit=256, ttl_dns_cache=300, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                json_serialize=lambda o: orjson.dumps(o).decode(),
                raise_for_status=False,
                auto_decompress=True,
            )
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def _headers(self, key: str, extra: dict[str, str] | None) -> dict[str, str]:
        h = {**self._static_headers, "Authorization": f"Bearer {key}"}
        if extra:
            h.update(extra)
        return h

    async def _backoff(self, attempt: int, failure: UpstreamFailure) -> bool:
        """Sleep before the next try; False when no further try should be made."""
        if attempt >= self.settings.upstream_max_tries or not failure.retryable:
            return False
        if failure.retry_after is not None:
            if failure.retry_after > MAX_RETRY_WAIT_S:
                return False
            delay = failure.retry_after
        else:
            delay = min(MAX_RETRY_WAIT_S, 0.2 * 2 ** (attempt - 1)) * (0.5 + random.random())
        log.info("upstream %s; retry %d in %.2fs", failure.status, attempt, delay)
        await asyncio.sleep(delay)
        return True

    async def _post_json_once(self, path: str, key: str, payload: dict[str, Any], extra: dict[str, str] | None) -> Any:
        import aiohttp

        try:
            async with self.session().post(
                self.base + path, data=orjson.dumps(payload), headers=self._headers(key, extra)
            ) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        except aiohttp.SocketTimeoutError as exc:
            raise read_timeout() from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_failure(exc) from exc
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
            if status < 400:
                raise UpstreamFailure(502, "the AI provider sent an unreadable answer") from None
        if status >= 400 or (isinstance(body, dict) and body.get("error") and "choices" not in body):
            code, message, meta = error_of(body)
            effective = status if status >= 400 else (code or 502)
            raise UpstreamFailure(effective, message, retry_after_of(headers), meta)
        if not isinstance(body, dict):
            raise UpstreamFailure(502, "the AI provider sent an unexpected answer")
        return body

    async def post_json(
        self,
        path: str,
        key: str,
        payload: dict[str, Any],
        *,
        extra_headers: dict[str, str] | None = None,
        retry: bool = True,
    ) -> dict[str, Any]:
        """POST with retries; returns the JSON answer or raises UpstreamFailure.

        `retry=False` sends once: for a POST that creates something billed as a whole (an upstream
        batch), where a 5xx after the upstream acted would make a retry create it twice."""
        attempt = 0
        while True:
            attempt += 1
            try:
                result: dict[str, Any] = await self._post_json_once(path, key, payload, extra_headers)
                return result
            except UpstreamFailure as failure:
                if not retry or not await self._backoff(attempt, failure):
                    raise

    async def chat(
        self, key: str, payload: dict[str, Any], *, extra_headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = await self.post_json("/chat/completions", key, payload, extra_headers=extra_headers)
        choices = body.get("choices")
        if not isinstance(choices, list):
            raise UpstreamFailure(502, "the AI provider sent an answer without choices")
        first = choices[0] if choices else {}
        if isinstance(first, dict) and isinstance(first.get("error"), dict):
            code, message, meta = error_of(first)
            raise UpstreamFailure(code or 502, message, None, meta)
        return body

    async def embeddings(
        self, key: str, payload: dict[str, Any], *, extra_headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = await self.post_json("/embeddings", key, payload, extra_headers=extra_headers)
        if not isinstance(body.get("data"), list):
            raise UpstreamFailure(502, "the AI provider sent embeddings without data")
        return body

    async def open_stream(
        self, key: str, payload: dict[str, Any], *, extra_headers: dict[str, str] | None = None
    ) -> UpstreamStream:
        """Start a streamed chat; retried until the upstream answers 200, never after."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._open_stream_once(key, payload, extra_headers)
            except UpstreamFailure as failure:
                if not await self._backoff(attempt, failure):
                    raise

    async def _open_stream_once(
        self, key: str, payload: dict[str, Any], extra: dict[str, str] | None
    ) -> UpstreamStream:
        import aiohttp

        try:
            resp = await self.session().post(
                self.base + "/chat/completions", data=orjson.dumps(payload), headers=self._headers(key, extra)
            )
        except aiohttp.SocketTimeoutError as exc:
            raise read_timeout() from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_failure(exc) from exc
        if resp.status != 200:
            try:
                raw = await resp.read()
                body = orjson.loads(raw) if raw else None
            except (orjson.JSONDecodeError, aiohttp.ClientError, TimeoutError):
                body = None
            finally:
                resp.release()
            _, message, meta = error_of(body)
            raise UpstreamFailure(resp.status, message, retry_after_of(resp.headers), meta)
        ctype = resp.headers.get("Content-Type", "")
        if "text/event-stream" not in ctype:
            # Some failures come back as a 200 JSON error body even for stream requests.
            try:
                body = orjson.loads(await resp.read())
            except (orjson.JSONDecodeError, aiohttp.ClientError, TimeoutError):
                body = None
            finally:
                resp.release()
            code, message, meta = error_of(body)
            raise UpstreamFailure(code or 502, message, None, meta)
        return UpstreamStream(resp, payload.get("model"))

    async def get_json(self, path: str, key: str | None, timeout_s: float | None = None) -> dict[str, Any]:
        import aiohttp

        headers = self._headers(key, None) if key else dict(self._static_headers)
        timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s else None
        try:
            async with self.session().get(self.base + path, headers=headers, timeout=timeout) as resp:
                raw = await resp.read()
                status, rh = resp.status, resp.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_failure(exc) from exc
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            raise UpstreamFailure(502, "the AI provider sent an unreadable answer") from None
        if status >= 400 or not isinstance(body, dict):
            _, message, meta = error_of(body)
            raise UpstreamFailure(status if status >= 400 else 502, message, retry_after_of(rh), meta)
        return body

    async def list_models(self, key: str) -> list[dict[str, Any]]:
        body = await self.get_json("/models/user", key, timeout_s=15)
        data = body.get("data")
        return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []

    async def check_key(self, key: str) -> dict[str, Any]:
        """The key's own record from `/key`; UpstreamFailure(401/403) when it is refused."""
        body = await self.get_json("/key", key, timeout_s=self.settings.key_validation_timeout_s)
        data = body.get("data")
        return data if isinstance(data, dict) else {}


def elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
