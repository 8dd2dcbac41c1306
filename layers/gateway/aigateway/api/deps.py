"""FastAPI dependencies: the shared services and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..auth import Principal
from ..flows.common import CallContext
from ..services import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def user(request: Request) -> Principal:
    h = request.headers
    return services(request).auth.user(h.get("authorization"), h.get("x-api-key"))


def admin(request: Request) -> Principal:
    h = request.headers
    return services(request).auth.admin(h.get("authorization"), h.get("x-api-key"))


def client_ip(request: Request) -> str | None:
    """The caller's address: the first X-Forwarded-For hop when behind the front door."""
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",")[0].strip() or None
    return request.client.host if request.client else None


def request_id(request: Request) -> str:
    rid: str = request.scope.get("state", {}).get("request_id", "")
    return rid


Svc = Annotated[Services, Depends(services)]
User = Annotated[Principal, Depends(user)]
Admin = Annotated[Principal, Depends(admin)]


def forwarded_headers(request: Request) -> dict[str, str]:
    """Caller headers to pass upstream (only when the deployment configured a prefix)."""
    prefix = services(request).settings.forward_header_prefix
    if not prefix:
        return {}
    return {k: v for k, v in request.headers.items() if k.startswith(prefix)}


def call_context(request: Request, principal: Principal) -> CallContext:
    import time

    return CallContext(
        principal, client_ip(request), request_id(request), time.perf_counter(), forwarded_headers(request)
    )
