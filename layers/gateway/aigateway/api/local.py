"""The local server: every function's router in one app, as the front door would route them."""

from __future__ import annotations

from ..services import Services
from . import configs, usage
from .app import GatewayApp, build_app


def local_app(services: Services) -> GatewayApp:
    return build_app(configs.router, usage.router, services=services, title="AI Gateway (local)")
