"""The simulated model catalogue (``GET /api/v1/models``, OpenRouter's shape) and model routing facts.

The list covers the model ids the README and tests use plus the cases the gateway must handle: an image
generator (output ``image``), an embedding model (output ``embeddings``), a model with audio input,
an author outside openai/anthropic/google/amazon, and ``sim/tiny-context`` whose context window
is 64 tokens so "prompt over the model's context" can be provoked. Prices are USD-per-token strings
as OpenRouter sends them. The JSON is encoded once, at import, because ``/models`` is polled.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "CONTEXT_LENGTHS",
    "MODELS",
    "MODELS_JSON",
    "filter_models_json",
    "provider_name",
]

_CREATED = 1_735_689_600  # 2025-01-01, fixed so the catalogue is byte-stable

_PARAMS_TOOLS = [
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "structured_outputs",
]
_PARAMS_REASONING = ["max_tokens", "temperature", "top_p", "reasoning", "include_reasoning", "stop", "seed"]
_PARAMS_PLAIN = ["max_tokens", "temperature", "top_p", "stop", "seed"]


def _model(
    model_id: str,
    name: str,
    *,
    context: int,
    inputs: list[str],
    outputs: list[str],
    prompt: str,
    completion: str,
    params: list[str],
    tokenizer: str = "Other",
    max_completion: int | None = 16384,
    image: str = "0",
    description: str = "",
) -> dict[str, Any]:
    modality = "+".join(inputs) + "->" + "+".join(outputs)
    return {
        "id": model_id,
        "canonical_slug": model_id,
        "hugging_face_id": None,
        "name": name,
        "created": _CREATED,
        "description": description or f"{name} (simulated).",
        "context_length": context,
        "architecture": {
            "modality": modality,
            "input_modalities": inputs,
            "output_modalities": outputs,
            "tokenizer": tokenizer,
            "instruct_type": None,
        },
        "pricing": {
            "prompt": prompt,
            "completion": completion,
            "request": "0",
            "image": image,
            "web_search": "0.004",
            "internal_reasoning": "0",
        },
        "top_provider": {
            "context_length": context,
            "max_completion_tokens": max_completion,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": params,
        "default_parameters": None,
        "supported_voices": None,
        "knowledge_cutoff": None,
        "expiration_date": None,
        "links": {"details": f"/api/v1/models/{model_id}/endpoints"},
    }


MODELS: list[dict[str, Any]] = [
    _model(
        "openai/gpt-4o",
        "OpenAI: GPT-4o",
        context=128000,
        inputs=["text", "image", "file"],
        outputs=["text"],
        prompt="0.0000025",
        completion="0.00001",
        params=_PARAMS_TOOLS,
        tokenizer="GPT",
    ),
    _model(
        "openai/gpt-4o-mini",
        "OpenAI: GPT-4o-mini",
        context=128000,
        inputs=["text", "image", "file"],
        outputs=["text"],
        prompt="0.00000015",
        completion="0.0000006",
        params=_PARAMS_TOOLS,
        tokenizer="GPT",
    ),
    _model(
        "openai/gpt-4o-audio-preview",
        "OpenAI: GPT-4o Audio",
        context=128000,
        inputs=["text", "audio"],
        outputs=["text"],
        prompt="0.0000025",
        completion="0.00001",
        params=_PARAMS_TOOLS,
        tokenizer="GPT",
    ),
    _model(
        "anthropic/claude-3.5-haiku",
        "Anthropic: Claude 3.5 Haiku",
        context=200000,
        inputs=["text", "image"],
        outputs=["text"],
        prompt="0.0000008",
        completion="0.000004",
        params=_PARAMS_TOOLS,
        tokenizer="Claude",
        max_completion=8192,
    ),
    _model(
        "anthropic/claude-sonnet-4.5",
        "Anthropic: Claude Sonnet 4.5",
        context=1000000,
        inputs=["text", "image", "file"],
        outputs=["text"],
        prompt="0.000003",
        completion="0.000015",
        params=[*_PARAMS_TOOLS, "reasoning"],
        tokenizer="Claude",
        max_completion=64000,
    ),
    _model(
        "google/gemini-2.5-flash-image-preview",
        "Google: Gemini 2.5 Flash Image",
        context=32768,
        inputs=["image", "text"],
        outputs=["image", "text"],
        prompt="0.0000003",
        completion="0.0000025",
        params=_PARAMS_PLAIN,
        tokenizer="Gemini",
        max_completion=8192,
        image="0.001238",
    ),
    _model(
        "google/gemini-2.5-pro",
        "Google: Gemini 2.5 Pro",
        context=1048576,
        inputs=["text", "image", "file", "audio", "video"],
        outputs=["text"],
        prompt="0.00000125",
        completion="0.00001",
        params=[*_PARAMS_TOOLS, "reasoning"],
        tokenizer="Gemini",
        max_completion=65536,
    ),
    _model(
        "deepseek/deepseek-r1",
        "DeepSeek: R1",
        context=163840,
        inputs=["text"],
        outputs=["text"],
        prompt="0.0000004",
        completion="0.000002",
        params=_PARAMS_REASONING,
        tokenizer="DeepSeek",
    ),
    _model(
        "x-ai/grok-4",
        "xAI: Grok 4",
        context=256000,
        inputs=["image", "text"],
        outputs=["text"],
        prompt="0.000003",
        completion="0.000015",
        params=[*_PARAMS_TOOLS, "reasoning"],
        tokenizer="Grok",
    ),
    _model(
        "meta-llama/llama-3.3-70b-instruct",
        "Meta: Llama 3.3 70B Instruct",
        context=131072,
        inputs=["text"],
        outputs=["text"],
        prompt="0.00000013",
        completion="0.0000004",
        params=_PARAMS_TOOLS,
        tokenizer="Llama3",
    ),
    _model(
        "mistralai/mistral-small-3.2-24b-instruct",
        "Mistral: Mistral Small 3.2 24B",
        context=131072,
        inputs=["image", "text"],
        outputs=["text"],
        prompt="0.00000005",
        completion="0.0000001",
        params=_PARAMS_TOOLS,
        tokenizer="Mistral",
    ),
    _model(
        "openai/text-embedding-3-small",
        "OpenAI: Text Embedding 3 Small",
        context=8192,
        inputs=["text"],
        outputs=["embeddings"],
        prompt="0.00000002",
        completion="0",
        params=[],
        tokenizer="GPT",
        max_completion=None,
    ),
    _model(
        "sim/tiny-context",
        "Simulator: Tiny Context",
        context=64,
        inputs=["text"],
        outputs=["text"],
        prompt="0.0000001",
        completion="0.0000004",
        params=_PARAMS_PLAIN,
        max_completion=32,
        description="A simulated model with a 64-token context window, for context-length tests.",
    ),
]

MODELS_JSON: bytes = orjson.dumps({"data": MODELS})

# Base model id (no ":variant") -> context length, for the "prompt too long" check.
CONTEXT_LENGTHS: dict[str, int] = {m["id"]: m["context_length"] for m in MODELS}

_PROVIDERS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google": "Google AI Studio",
    "meta-llama": "Meta",
    "deepseek": "DeepSeek",
    "x-ai": "xAI",
    "mistralai": "Mistral",
    "amazon": "Amazon Bedrock",
}
_filtered_cache: dict[str, bytes] = {}


def provider_name(model_id: str) -> str:
    """The upstream provider display name OpenRouter would report for a model id."""
    author = model_id.partition("/")[0]
    return _PROVIDERS.get(author, "SimProvider")


def filter_models_json(output_modalities: str | None) -> bytes:
    """``/models?output_modalities=a,b`` (any of them); ``all`` or no filter returns everything."""
    if not output_modalities or output_modalities == "all":
        return MODELS_JSON
    cached = _filtered_cache.get(output_modalities)
    if cached is None:
        wanted = {m.strip() for m in output_modalities.split(",") if m.strip()}
        chosen = [m for m in MODELS if wanted & set(m["architecture"]["output_modalities"])]
        cached = orjson.dumps({"data": chosen})
        if len(_filtered_cache) < 64:
            _filtered_cache[output_modalities] = cached
    return cached
