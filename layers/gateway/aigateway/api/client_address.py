"""The caller's IP address, from what the network reports, never from what the caller wrote.

The address keys the anon rate limit and is stored as the audit `ipAddress`, so a caller who
could choose it could walk through the limit by rotating it, or write markup into the audit log.
The left of `X-Forwarded-For` is exactly that: whatever the caller sent, with each proxy
appending the address it saw after it. So the address is, in order:

1. the header named by `CLIENT_IP_HEADER`, which a trusted edge sets and overwrites
   (`cloudfront-viewer-address` once the front door's origin request policy forwards it:
   "ip:port", IPv6 unbracketed) — only for deployments whose origin cannot be reached around
   that edge, since anyone reaching the origin directly can send the header too;
2. behind the front door (`AIGATEWAY_ORIGIN_SECRET` set: a request that went around CloudFront
   was already refused, api/front_door.py), the `X-Forwarded-For` entry CloudFront appended for
   its viewer — the right-most one once any entry for CloudFront itself (the event's
   `sourceIp`, should the function URL append it) is set aside; nothing left of it is read;
3. with `TRUSTED_PROXY_HOPS=N`, the N-th `X-Forwarded-For` entry from the right: the address
   the outermost trusted proxy saw (each of the N appends one);
4. the peer: the connection's address; on Lambda behind Mangum, the event's
   `requestContext.http.sourceIp` (Mangum puts it in the ASGI scope's `client`, next to
   `aws.event`); behind the Lambda Web Adapter (the chat function, on AWS without `aws.event`)
   the `sourceIp` of the `x-amzn-request-context` header the adapter writes from the event.

Servers we start run uvicorn without proxy headers (`proxy_headers=False`): by default uvicorn
replaces a loopback peer with the right end of X-Forwarded-For, and that would make the peer a
value the caller may have written.

Every candidate is parsed with `ipaddress`; one that does not parse is skipped, so nothing but
a normalised address ever reaches the database.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

import orjson

from ..settings import Settings

_LWA_CONTEXT = "x-amzn-request-context"


def parse_ip(text: str | None) -> str | None:
    """`text` as a normalised IP address, or None when it is not one (zone ids refused)."""
    if not text or len(text) > 64 or "%" in text:
        return None
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        return None


def parse_ip_port(text: str | None) -> str | None:
    """The address of an "ip:port" value ("[v6]:port" and CloudFront's unbracketed "v6:port")."""
    if not text:
        return None
    host, sep, port = text.strip().rpartition(":")
    if sep and port.isdigit() and len(port) <= 5:
        found = parse_ip(host)
        if found:
            return found
    return parse_ip(text)


def _lambda_source_ip(headers: Mapping[str, str]) -> str | None:
    raw = headers.get(_LWA_CONTEXT)
    if not raw or len(raw) > 64 * 1024:
        return None
    try:
        context = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(context, dict):
        return None
    for section in ("http", "identity"):  # function URL / HTTP API (v2), REST API (v1)
        part = context.get(section)
        if isinstance(part, dict) and isinstance(part.get("sourceIp"), str):
            return parse_ip(part["sourceIp"])
    return None


def peer_address(headers: Mapping[str, str], peer: str | None, settings: Settings, *, adapter: bool) -> str | None:
    """The address of whoever opened the connection to us (see the module docstring, step 4).

    `adapter`: the request came through the Lambda Web Adapter (on AWS, not through Mangum).
    uvicorn there rewrites its peer (the adapter, on loopback) from X-Forwarded-For, so the
    adapter's `x-amzn-request-context` — which it writes from the event, over any header of
    that name the caller sent — is the one trustworthy source.
    """
    if adapter:
        return _lambda_source_ip(headers) or parse_ip(peer)
    return parse_ip(peer)


def _forwarded(headers: Mapping[str, str]) -> list[str]:
    return [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]


def _hop_before(hops: list[str], edge: str | None) -> str | None:
    """The right-most entry that is not the edge itself: what the edge appended for its viewer."""
    while hops and edge is not None and parse_ip(hops[-1]) == edge:
        hops.pop()
    return parse_ip(hops[-1]) if hops else None


def client_address(
    headers: Mapping[str, str], peer: str | None, settings: Settings, *, adapter: bool = False
) -> str | None:
    """The caller's address: the trusted edge's header, the trusted proxies' hop, or the peer."""
    if settings.client_ip_header:
        found = parse_ip_port(headers.get(settings.client_ip_header))
        if found:
            return found
    if settings.origin_secret:
        edge = peer_address(headers, peer, settings, adapter=adapter)
        return _hop_before(_forwarded(headers), edge) or edge
    if settings.trusted_proxy_hops > 0:
        hops = _forwarded(headers)
        if len(hops) >= settings.trusted_proxy_hops:
            found = parse_ip(hops[-settings.trusted_proxy_hops])
            if found:
                return found
    return peer_address(headers, peer, settings, adapter=adapter)
