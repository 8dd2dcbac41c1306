"""The admin web page: static files from the package (aigateway/dashboard/), served under `/dashboard/`.

The page is a client of the admin routes and nothing more: it signs in with the admin API key,
keeps it in sessionStorage and sends it as a bearer token, so no cookie exists for another origin
to ride on. These routes need no credentials themselves (the files hold no data).

Every answer carries a strict Content-Security-Policy: scripts and styles only from this origin,
no inline code, no frames, no plugins, requests only back to this origin. The page renders
caller-influenced values as text nodes, so a stored `<img onerror=…>` stays text; the policy is
the second wall if that ever slipped. The files are read on first request, not at import, so the
configs function's cold start pays only for this module (no new imports: pathlib and
starlette are loaded already).

Each file goes gzip-compressed to a caller that accepts it (the page is about 45 KB, 17 KB
compressed; the front door passes the function's answer through uncompressed), and with an ETag:
the files are revalidated on every load (`no-cache`, so a deploy never mixes versions), and a
revalidation of an unchanged file is a 304 with no body.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ..errors import not_found

router = APIRouter(include_in_schema=False)

PREFIX = "/dashboard/"
_DIR = Path(__file__).resolve().parent.parent / "dashboard"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

# name → media type: only these files are served, whatever the path asks for.
_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "core.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "admin.js": "text/javascript; charset=utf-8",
    "records.js": "text/javascript; charset=utf-8",
    "cache.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Revalidated each time: a deploy changes the files and the page must not mix versions.
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class _Asset:
    raw: bytes
    gzipped: bytes
    etag: str


@cache
def _read(name: str) -> _Asset:
    import gzip  # first request only: the cold start does not pay for it

    raw = (_DIR / name).read_bytes()
    return _Asset(raw, gzip.compress(raw, 9, mtime=0), '"' + hashlib.sha256(raw).hexdigest()[:32] + '"')


def _file(name: str, request: Request) -> Response:
    media = _FILES.get(name)
    if media is None:
        raise not_found("Not Found")
    asset = _read(name)
    headers = {**HEADERS, "ETag": asset.etag, "Vary": "Accept-Encoding"}
    if asset.etag in (t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    if _accepts_gzip(request.headers.get("accept-encoding", "")):
        return Response(asset.gzipped, media_type=media, headers={**headers, "Content-Encoding": "gzip"})
    return Response(asset.raw, media_type=media, headers=headers)


def _accepts_gzip(header: str) -> bool:
    """`gzip` (or `*`) listed in Accept-Encoding without `q=0`."""
    for part in header.lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


@router.get("/dashboard")
async def dashboard_root() -> RedirectResponse:
    """Relative URLs in the page resolve against the folder, so the bare path moves to it."""
    return RedirectResponse(PREFIX, status_code=308, headers=HEADERS)


@router.get(PREFIX)
async def dashboard_page(request: Request) -> Response:
    return _file("index.html", request)


@router.get(PREFIX + "{name}")
async def dashboard_asset(name: str, request: Request) -> Response:
    return _file(name, request)
