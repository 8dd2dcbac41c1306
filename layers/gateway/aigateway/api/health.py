"""A cheap liveness route: the Lambda Web Adapter polls it before sending traffic."""

from __future__ import annotations

from fastapi import APIRouter

from .responses import JSON

router = APIRouter()


@router.get("/api/ai/health", include_in_schema=False)
async def health() -> JSON:
    return JSON({"status": "ok"})
