"""Deterministic embeddings (OpenRouter's ``POST /api/v1/embeddings``, OpenAI-shaped).

Each input maps to a unit vector seeded by a BLAKE2b hash of the input, so equal inputs always
embed equally and tests can compare vectors across calls. Values are float32-exact: the float
list and ``encoding_format: "base64"`` (little-endian float32 bytes) decode to identical numbers.
Vectors are cached per (input, dimensions) because benchmarks repeat inputs; building one is a
``randbytes`` call plus one normalisation pass, no numpy.

Accepted ``input``: a string, a list of strings, a token array (list of ints), a list of token
arrays, or multimodal items ``{"content": [{"type": "text", "text": ...}, ...]}``.
Usage: see :mod:`.usage` (words + 1 per input).
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import sys
from array import array
from functools import lru_cache
from typing import Any

import orjson

from .catalog import provider_name
from .errors import SimError, error_body
from .usage import embedding_usage

__all__ = ["embedding_vector", "read_inputs", "render_embeddings"]

MAX_DIMENSIONS = 65_536


def _bad(message: str) -> SimError:
    return SimError(400, error_body(400, message))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_inputs(raw: object) -> list[tuple[str, int]]:
    """``[(cache key, token count)]`` for each input; 400 for an empty or malformed ``input``."""
    if isinstance(raw, str):
        return [("t:" + raw, len(raw.split()))]
    if not isinstance(raw, list) or not raw:
        raise _bad("input: expected a non-empty string or array")
    if all(_is_int(x) for x in raw):
        return [("n:" + ",".join(map(str, raw)), len(raw))]
    items: list[tuple[str, int]] = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            items.append(("t:" + item, len(item.split())))
        elif isinstance(item, list) and item and all(_is_int(x) for x in item):
            items.append(("n:" + ",".join(map(str, item)), len(item)))
        elif isinstance(item, dict) and isinstance(item.get("content"), list):
            texts = [p.get("text", "") for p in item["content"] if isinstance(p, dict) and p.get("type") == "text"]
            text = " ".join(t for t in texts if isinstance(t, str))
            items.append(("m:" + orjson.dumps(item["content"]).decode(), len(text.split())))
        else:
            raise _bad(f"input[{index}]: expected a string, a token array or a content object")
    return items


@lru_cache(maxsize=4096)
def embedding_vector(key: str, dimensions: int) -> array[float]:
    """A float32 unit vector seeded by ``key`` (cached)."""
    seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
    raw = array("h", random.Random(seed).randbytes(2 * dimensions))
    norm = math.sqrt(math.fsum(x * x for x in raw)) or 1.0
    return array("f", [x / norm for x in raw])


def _base64(vector: array[float]) -> str:
    if sys.byteorder == "big":  # pragma: no cover - every platform we run on is little-endian
        vector = array("f", vector)
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode("ascii")


def render_embeddings(body: dict[str, Any], model: str, gen_id: str, default_dims: int) -> tuple[bytes, dict[str, Any]]:
    """(response body, usage) for a validated request body."""
    inputs = read_inputs(body.get("input"))
    dims = body.get("dimensions")
    if dims is None:
        dims = default_dims
    elif not _is_int(dims) or not 1 <= dims <= MAX_DIMENSIONS:
        raise _bad(f"dimensions: expected an integer between 1 and {MAX_DIMENSIONS}")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise _bad("encoding_format: expected 'float' or 'base64'")
    data = []
    for index, (key, _) in enumerate(inputs):
        vector = embedding_vector(key, dims)
        value: object = _base64(vector) if encoding == "base64" else vector.tolist()
        data.append({"object": "embedding", "embedding": value, "index": index})
    usage = embedding_usage(sum(count + 1 for _, count in inputs))
    response = {
        "id": gen_id,
        "object": "list",
        "data": data,
        "model": model,
        "provider": provider_name(model),
        "usage": usage,
    }
    return orjson.dumps(response), usage
