"""The local server: every function's router in one app, as the front door would route them."""

from __future__ import annotations

from ..services import Services
from . import (
    anthropic_messages,
    batches,
    cache,
    chat,
    configs,
    dashboard,
    embeddings,
    gateway_keys,
    images,
    limits,
    openai_batches,
    openai_chat,
    openai_embeddings,
    openai_models,
    openai_responses,
    usage,
)
from .app import GatewayApp, build_app


def local_app(services: Services) -> GatewayApp:
    routers = [
        chat.router,
        images.router,
        embeddings.router,
        openai_chat.router,
        openai_responses.router,
        openai_embeddings.router,
        openai_models.router,
        anthropic_messages.router,
    ]
    routers += [batches.router, openai_batches.router]
    routers += [configs.router, limits.router, usage.router, gateway_keys.router, dashboard.router, cache.router]
    return build_app(*routers, services=services, title="AI Gateway (local)")
