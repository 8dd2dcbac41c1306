"""Batches, the domain's part: whose a batch is, what an item may be, and how its calls are named.

A batch runs as the caller who submitted it. The submitter's identity (role, user, email, whether
the admin key, the network address its limits are keyed by, and the upstream headers the
deployment forwards) is stored with the batch when it is created, and each item's call is made
with a `CallContext` rebuilt from that record (flows/batches.py): nothing an item says can change who it runs as.
Each item's call has the request id `batch:<batch_id>:<index>`, which the usage table holds once,
so an item that runs twice (a redelivered queue message, a worker that died) is billed once.

Who may submit: an authenticated user (a JWT with a subject) or the admin key. Anonymous callers
share one role and often one subject, so "their own batches" would mean everybody's; they get a
403 instead.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal

from .auth import Principal
from .errors import AUTH_UNAUTHORIZED, GatewayError, invalid_input
from .schemas import ChatRequest, EmbeddingsRequest
from .store.batches import Owner

Kind = Literal["chat", "embeddings"]
KINDS: tuple[Kind, ...] = ("chat", "embeddings")
MAX_CUSTOM_ID = 200


def new_id(prefix: str = "batch_") -> str:
    """An opaque id that sorts by nothing and guesses to nothing (128 random bits)."""
    return prefix + secrets.token_hex(16)


def request_id(batch_id: str, idx: int) -> str:
    """The request id of an item's call: the same on every run of the item."""
    return f"batch:{batch_id}:{idx}"


def check_may_own(principal: Principal) -> Principal:
    """The caller, or 403 for callers that may not own batches (every batch route checks it)."""
    if not principal.via_api_key and (principal.role == "anon" or not principal.user_id):
        raise GatewayError(
            AUTH_UNAUTHORIZED,
            403,
            "Batches need a signed-in user or the admin API key.",
            "Call with a user's access token, or with the admin API key.",
        )
    return principal


def owner_of(principal: Principal, ip: str | None, upstream_headers: dict[str, str]) -> Owner:
    """The stored identity of a batch's submitter."""
    check_may_own(principal)
    return Owner(principal.role, principal.user_id, principal.email, principal.via_api_key, ip, dict(upstream_headers))


def principal_of(owner: Owner) -> Principal:
    return Principal(owner.role, owner.user_id, owner.email, owner.via_api_key)


@dataclass(frozen=True)
class ItemRequest:
    """An item's request, parsed: the native request and (chat) the pass-through fields."""

    kind: Kind
    request: ChatRequest | EmbeddingsRequest
    extra: dict[str, Any]

    def stored(self) -> dict[str, Any]:
        """The item body as stored: the native request, so a run parses what submission checked."""
        out: dict[str, Any] = {"request": self.request.model_dump(mode="json", exclude_none=True)}
        if self.extra:
            out["extra"] = self.extra
        return out


def parse_stored(kind: str, body: dict[str, Any]) -> ItemRequest:
    """A stored item body back as its request (it was validated at submission)."""
    if kind == "chat":
        return ItemRequest("chat", ChatRequest.model_validate(body["request"]), dict(body.get("extra") or {}))
    return ItemRequest("embeddings", EmbeddingsRequest.model_validate(body["request"]), {})


def check_not_streamed(req: ChatRequest | EmbeddingsRequest, where: str) -> None:
    if isinstance(req, ChatRequest) and req.stream:
        raise invalid_input(f"Validation error: {where}.stream: batch items are not streamed", "Leave out stream.")


def check_items(custom_ids: list[str], max_items: int) -> None:
    """1..max_items items, each with a custom id of its own."""
    if not custom_ids:
        raise invalid_input("Validation error: items: a batch holds at least one item")
    if len(custom_ids) > max_items:
        raise invalid_input(
            f"Validation error: items: at most {max_items} items per batch (got {len(custom_ids)})",
            "Split the items over several batches.",
        )
    seen: set[str] = set()
    for i, cid in enumerate(custom_ids):
        if not cid or len(cid) > MAX_CUSTOM_ID or "\x00" in cid:
            raise invalid_input(f"Validation error: items.{i}.customId: 1 to {MAX_CUSTOM_ID} characters, no NUL")
        if cid in seen:
            raise invalid_input(f"Validation error: items.{i}.customId: {cid!r} is used twice in this batch")
        seen.add(cid)


def may_see(principal: Principal) -> dict[str, Any]:
    """The visibility parameters of the store's queries for this caller."""
    return {"user_id": principal.user_id, "via_api_key": principal.via_api_key, "see_all": principal.is_admin}
