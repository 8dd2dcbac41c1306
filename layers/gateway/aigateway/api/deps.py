"""FastAPI dependencies: the shared services and the authenticated caller.

The dependencies FastAPI resolves (`Svc`, `User`, `Admin`) are `async def` on purpose: FastAPI
runs a plain `def` dependency in a worker thread, and two thread hops per request (services,
then the caller) cost more CPU than the whole JWT check they wrap (measured with py-spy under
`make bench`). They do no blocking work, so running them on the event loop is safe.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from ..auth import Principal
from ..cache import CacheControl
from ..flows.common import CallContext
from ..services import Services
from .client_address import client_address
from .failures import request_id_of as request_id


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
    """The caller's address as the network reports it, never as the caller wrote it
    (api/client_address.py); always a valid IP address or None."""
    peer = request.client.host if request.client else None
    settings = services(request).settings
    adapter = settings.on_aws and "aws.event" not in request.scope  # the chat function (run.sh)
    return client_address(request.headers, peer, settings, adapter=adapter)


async def _services_dep(request: Request) -> Services:
    return services(request)


async def _user_dep(request: Request) -> Principal:
    return user(request)


async def _admin_dep(request: Request) -> Principal:
    return admin(request)


async def _api_key_user_dep(request: Request) -> Principal:
    """`User`, with a user JWT also accepted in `x-api-key`, where the Anthropic SDKs put their key."""
    h = request.headers
    return services(request).auth.user(h.get("authorization"), h.get("x-api-key"), jwt_in_api_key=True)


Svc = Annotated[Services, Depends(_services_dep)]
User = Annotated[Principal, Depends(_user_dep)]
ApiKeyUser = Annotated[Principal, Depends(_api_key_user_dep)]
Admin = Annotated[Principal, Depends(_admin_dep)]


def forwarded_headers(request: Request) -> dict[str, str]:
    """Caller headers to pass upstream (only when the deployment configured a prefix)."""
    prefix = services(request).settings.forward_header_prefix
    if not prefix:
        return {}
    return {k: v for k, v in request.headers.items() if k.startswith(prefix)}


def call_context(request: Request, principal: Principal) -> CallContext:
    return CallContext(
        principal,
        client_ip(request),
        request_id(request),
        time.perf_counter(),
        forwarded_headers(request),
        CacheControl.from_header(request.headers.get("cache-control")),
    )
