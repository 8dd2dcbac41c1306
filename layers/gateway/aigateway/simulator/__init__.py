"""An OpenRouter simulator for local runs, tests and benchmarks.

It serves OpenRouter's own paths under ``/api/v1`` so ``OPENROUTER_BASE_URL=http://HOST:PORT/api/v1``
points the gateway (or the OpenAI SDK, or LiteLLM) at it, and reproduces OpenRouter's wire format:
``: OPENROUTER PROCESSING`` comments, ``gen-`` ids, tool-call deltas by index, the final usage
chunk, ``[DONE]``, mid-stream errors, error bodies with ``Retry-After``, ``url_citation``
annotations, image data URLs, embeddings, ``/models`` and ``/key``. Behaviour is deterministic
and chosen per request by the key, the model id and ``x-sim-*`` headers (:mod:`.controls`);
token counts and cost follow :mod:`.usage`; ``/_sim/requests`` shows what it received (:mod:`.app`).

Public API: :func:`create_app` (a fresh Starlette app), :func:`serve` (run it with uvicorn) and
:func:`main` (the CLI).
"""

from __future__ import annotations

from .app import create_app
from .server import main, serve

__all__ = ["create_app", "main", "serve"]
