"""Deterministic token counts and cost, so tests can compare the gateway's usage rows to ours.

The formula (also reported verbatim in each ``/_sim/requests`` log entry as ``"usage"``):

* ``prompt_tokens`` = sum over messages of ``len(text.split()) + 4``, where ``text`` is the string
  content, or the text parts of a list content (words of every ``text`` part added up), plus
  **85 per ``image_url`` part**. Other parts (files, audio), tool definitions and ``null`` content
  add nothing beyond the 4 per message.
* ``completion_tokens`` = whitespace-separated words of the reply text + words of the reasoning
  text (``:thinking``) + **10 per tool call** + **1290 per generated image**.
* ``total_tokens`` = prompt + completion.
* ``cost`` = ``round(prompt_tokens * 0.0000001 + completion_tokens * 0.0000004, 10)``;
  ``cost_details.upstream_inference_prompt_cost`` / ``..._completions_cost`` are the two terms,
  each rounded to 10 decimals; ``upstream_inference_cost`` is ``null`` (not BYOK).
* ``completion_tokens_details`` = ``{reasoning_tokens, image_tokens}``;
  ``prompt_tokens_details`` = ``{cached_tokens: 0, audio_tokens: 0}``; ``is_byok: false``.
* With web search, ``server_tool_use_details: {web_search_requests: 1}`` (cost unchanged).

Embeddings: ``prompt_tokens`` = words of each input (tokens of a token-array input) + 1 per input,
``total_tokens`` = ``prompt_tokens``, ``cost = round(prompt_tokens * 0.0000001, 10)``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "COMPLETION_PRICE",
    "IMAGE_OUTPUT_TOKENS",
    "IMAGE_PART_TOKENS",
    "PROMPT_PRICE",
    "TOOL_CALL_TOKENS",
    "chat_usage",
    "embedding_usage",
]

PROMPT_PRICE = 0.0000001
COMPLETION_PRICE = 0.0000004
IMAGE_PART_TOKENS = 85
IMAGE_OUTPUT_TOKENS = 1290
TOOL_CALL_TOKENS = 10
MESSAGE_OVERHEAD = 4


def chat_usage(
    prompt_tokens: int,
    completion_tokens: int,
    *,
    reasoning_tokens: int = 0,
    image_tokens: int = 0,
    web_search_requests: int = 0,
) -> dict[str, Any]:
    """The ``usage`` object in the observed OpenRouter key order (non-stream body and final stream chunk)."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "cost": round(prompt_tokens * PROMPT_PRICE + completion_tokens * COMPLETION_PRICE, 10),
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "cost_details": {
            "upstream_inference_cost": None,
            "upstream_inference_prompt_cost": round(prompt_tokens * PROMPT_PRICE, 10),
            "upstream_inference_completions_cost": round(completion_tokens * COMPLETION_PRICE, 10),
        },
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens, "image_tokens": image_tokens},
    }
    if web_search_requests:
        usage["server_tool_use_details"] = {"web_search_requests": web_search_requests}
    return usage


def embedding_usage(prompt_tokens: int) -> dict[str, Any]:
    """The embeddings ``usage`` object (``prompt_tokens``, ``total_tokens``, ``cost``)."""
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens,
        "cost": round(prompt_tokens * PROMPT_PRICE, 10),
        "is_byok": False,
    }
