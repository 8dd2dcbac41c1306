"""ai.configs: the models an admin enabled, their system prompts, fallbacks and policies."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from ..db import Conn, Database


@dataclass(frozen=True)
class Config:
    id: str
    model_id: str
    provider: str
    input_modality: list[str]
    output_modality: list[str]
    system_prompt: str | None
    fallback_models: list[str]
    content_policy: dict[str, Any] | None = None  # see policy.py; None = off
    request_policy: dict[str, Any] | None = None  # see request_policy.py; None = the defaults
    cache: dict[str, Any] | None = None  # see cache.py; None = off

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Config:
        return cls(
            id=str(r["id"]),
            model_id=r["model_id"],
            provider=r["provider"],
            input_modality=list(r["input_modality"]),
            output_modality=list(r["output_modality"]),
            system_prompt=r["system_prompt"],
            fallback_models=list(r["fallback_models"] or []),
            content_policy=r.get("content_policy"),
            request_policy=r.get("request_policy"),
            cache=r.get("cache"),
        )


@dataclass(frozen=True)
class ActiveModel:
    model_id: str
    created_at: datetime


async def list_active_models(db: Database) -> list[ActiveModel]:
    """The enabled models, by id (the OpenAI dialect's model list)."""
    rows = await db.fetch("SELECT model_id, created_at FROM {s}.configs WHERE is_active ORDER BY model_id")
    return [ActiveModel(r["model_id"], r["created_at"]) for r in rows]


async def find_active_model(db: Database, model_id: str) -> ActiveModel | None:
    """One enabled model by id, or None when it is not enabled (the OpenAI dialect's model object)."""
    row = await db.fetchone(
        "SELECT model_id, created_at FROM {s}.configs WHERE is_active AND model_id = %s", (model_id,)
    )
    return ActiveModel(row["model_id"], row["created_at"]) if row else None


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


async def upsert(
    conn: Conn,
    db: Database,
    *,
    model_id: str,
    provider: str,
    input_modality: list[str],
    output_modality: list[str],
    system_prompt: str | None,
    fallback_models: list[str] | None,
    content_policy: dict[str, Any] | None = None,
    set_policy: bool = False,
    request_policy: dict[str, Any] | None = None,
    set_request_policy: bool = False,
    cache: dict[str, Any] | None = None,
    set_cache: bool = False,
) -> tuple[str, bool]:
    """Insert, or re-enable and update the row for `model_id`; keeps the old prompt if none given
    and the old content / request policy unless `set_policy` / `set_request_policy`."""
    cur = await conn.execute(
        db.q(
            """INSERT INTO {s}.configs
                   (model_id, provider, input_modality, output_modality, system_prompt, fallback_models,
                    content_policy, request_policy, cache)
               VALUES (%(model_id)s, %(provider)s, %(inp)s, %(out)s, %(prompt)s,
                       COALESCE(%(fb)s, '{}'::text[]), %(policy)s, %(rpolicy)s, %(cache)s)
               ON CONFLICT (model_id) DO UPDATE SET
                   provider = EXCLUDED.provider,
                   input_modality = EXCLUDED.input_modality,
                   output_modality = EXCLUDED.output_modality,
                   system_prompt = COALESCE(EXCLUDED.system_prompt, {s}.configs.system_prompt),
                   fallback_models = COALESCE(%(fb)s, {s}.configs.fallback_models),
                   content_policy = CASE WHEN %(set_policy)s THEN EXCLUDED.content_policy
                                         ELSE {s}.configs.content_policy END,
                   request_policy = CASE WHEN %(set_rpolicy)s THEN EXCLUDED.request_policy
                                         ELSE {s}.configs.request_policy END,
                   cache = CASE WHEN %(set_cache)s THEN EXCLUDED.cache ELSE {s}.configs.cache END,
                   is_active = true,
                   updated_at = now()
               RETURNING id, (xmax = 0) AS inserted"""
        ),
        {
            "model_id": model_id,
            "provider": provider,
            "inp": input_modality,
            "out": output_modality,
            "prompt": system_prompt,
            "fb": fallback_models,
            "policy": Jsonb(content_policy) if content_policy is not None else None,
            "set_policy": set_policy,
            "rpolicy": Jsonb(request_policy) if request_policy is not None else None,
            "set_rpolicy": set_request_policy,
            "cache": Jsonb(cache) if cache is not None else None,
            "set_cache": set_cache,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return str(row["id"]), bool(row["inserted"])


async def list_active_with_usage(db: Database) -> list[dict[str, Any]]:
    return await db.fetch(
        """SELECT c.id, c.model_id, c.provider, c.input_modality, c.output_modality, c.system_prompt,
                  c.fallback_models, c.content_policy, c.request_policy, c.cache, c.created_at, c.updated_at,
                  COALESCE(SUM(u.input_tokens), 0) AS total_input_tokens,
                  COALESCE(SUM(u.output_tokens), 0) AS total_output_tokens,
                  COALESCE(SUM(COALESCE(u.input_tokens, 0) + COALESCE(u.output_tokens, 0)), 0) AS total_tokens,
                  COALESCE(SUM(u.image_count), 0) AS total_image_count,
                  COUNT(u.id) AS total_requests,
                  COALESCE(SUM(u.cost_usd), 0) AS total_cost_usd
             FROM {s}.configs c LEFT JOIN {s}.usage u ON u.config_id = c.id
            WHERE c.is_active
            GROUP BY c.id
            ORDER BY c.created_at DESC"""
    )


async def active(db: Database) -> list[Config]:
    rows = await db.fetch(
        """SELECT id, model_id, provider, input_modality, output_modality, system_prompt, fallback_models,
                  content_policy, request_policy, cache
             FROM {s}.configs WHERE is_active"""
    )
    return [Config.from_row(r) for r in rows]


async def update(conn: Conn, db: Database, config_id: str, changes: dict[str, Any]) -> bool:
    """Apply `systemPrompt` / `fallbackModels` / `contentPolicy` / `requestPolicy` / `cache` changes;
    False when no such row."""
    cur = await conn.execute(
        db.q(
            """UPDATE {s}.configs SET
                   system_prompt = CASE WHEN %(set_prompt)s THEN %(prompt)s ELSE system_prompt END,
                   fallback_models = CASE WHEN %(set_fb)s THEN %(fb)s::text[] ELSE fallback_models END,
                   content_policy = CASE WHEN %(set_policy)s THEN %(policy)s::jsonb ELSE content_policy END,
                   request_policy = CASE WHEN %(set_rpolicy)s THEN %(rpolicy)s::jsonb ELSE request_policy END,
                   cache = CASE WHEN %(set_cache)s THEN %(cache)s::jsonb ELSE cache END,
                   updated_at = now()
                WHERE id = %(id)s"""
        ),
        {
            "id": config_id,
            "set_prompt": "system_prompt" in changes,
            "prompt": changes.get("system_prompt"),
            "set_fb": "fallback_models" in changes,
            "fb": changes.get("fallback_models") or [],
            "set_policy": "content_policy" in changes,
            "policy": Jsonb(changes["content_policy"]) if changes.get("content_policy") is not None else None,
            "set_rpolicy": "request_policy" in changes,
            "rpolicy": Jsonb(changes["request_policy"]) if changes.get("request_policy") is not None else None,
            "set_cache": "cache" in changes,
            "cache": Jsonb(changes["cache"]) if changes.get("cache") is not None else None,
        },
    )
    return cur.rowcount > 0


async def disable(conn: Conn, db: Database, config_id: str) -> bool:
    cur = await conn.execute(
        db.q("UPDATE {s}.configs SET is_active = false, updated_at = now() WHERE id = %s"), (config_id,)
    )
    return cur.rowcount > 0


async def exists(db: Database, config_id: str) -> bool:
    return await db.fetchone("SELECT 1 AS x FROM {s}.configs WHERE id = %s", (config_id,)) is not None
