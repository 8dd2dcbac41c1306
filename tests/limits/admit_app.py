"""A test-only app whose routes call `limits.admit`, `flows.metering.settle` and `policy.check_content`.

Used in-process through `make_gateway(app_factory=...)` and, for the cross-process test, as a
uvicorn factory (`admit_app:create_app`) whose settings come from the environment, so each
server process has its own Services and its own database connections.
"""

from __future__ import annotations

import uuid
from typing import Any

from aigateway import limits, policy
from aigateway.api import limits as limits_api
from aigateway.api.app import GatewayApp, build_app
from aigateway.api.deps import Svc, User, client_ip
from aigateway.api.responses import JSON
from aigateway.flows import metering
from aigateway.services import Services
from aigateway.settings import Settings
from aigateway.store.usage import UsageRecord
from fastapi import APIRouter, Request

router = APIRouter()


@router.post("/test/admit")
async def admit(request: Request, svc: Svc, who: User) -> JSON:
    """Admit one call; `?tokens=N&cost=X` also settles it (usage row and charge), as a finished
    answer would."""
    admission = await limits.admit(svc, who, client_ip(request), model="test/model", kind="chat")
    tokens = int(request.query_params.get("tokens") or 0)
    cost = request.query_params.get("cost")
    if tokens or cost:
        record = UsageRecord(
            request_id=uuid.uuid4().hex,
            model_id="test/model",
            output_tokens=tokens,
            cost_usd=float(cost) if cost else None,
        )
        await metering.settle(svc, admission, record)
    return JSON({"subject": admission.subject.label, "ip": client_ip(request)}, headers=admission.headers)


@router.post("/test/content")
async def content(request: Request, svc: Svc, who: User) -> JSON:
    body: dict[str, Any] = await request.json()
    config = await svc.configs.get(body["model"])
    await policy.check_content(
        svc,
        who,
        client_ip(request),
        config_id=config.id if config else None,
        policy=config.content_policy if config else None,
        texts=list(body["texts"]),
    )
    return JSON({"ok": True})


def app_for(services: Services) -> GatewayApp:
    from aigateway.api import configs, usage

    return build_app(router, limits_api.router, configs.router, usage.router, services=services)


def create_app() -> GatewayApp:
    """uvicorn factory for a separate server process: settings from the environment."""
    return app_for(Services.from_settings(Settings.from_env()))


def create_chat_app() -> GatewayApp:
    """The same, plus the real chat route (upstream: the simulator named in the environment)."""
    from aigateway.api import chat, configs

    svc = Services.from_settings(Settings.from_env())
    return build_app(chat.router, configs.router, limits_api.router, services=svc)
