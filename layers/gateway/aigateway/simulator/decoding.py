"""Stop sequences and log probabilities of a text answer, chunk by chunk.

``stop`` (a string or a list of them) cuts the answer at the first occurrence of any of them, the
sequence itself left out, and the answer then ends with ``finish_reason: "stop"``; the chunks keep
their boundaries up to the cut, so stream and non-stream return the same text.

``logprobs: true`` gives each token (a word with its leading whitespace, the unit the simulator
counts tokens in) OpenAI's entry ``{"token", "logprob", "bytes", "top_logprobs"}``, with a
deterministic log probability and ``top_logprobs`` alternatives (0–20) that start with the token.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

_TOKEN = re.compile(r"\s*\S+|\s+$")
_MAX_TOP = 20


def stop_sequences(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    items = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    return [s for s in items if isinstance(s, str) and s]


def cut_at_stop(chunks: list[str], stops: list[str]) -> list[str] | None:
    """The chunks up to the first stop sequence, or None when none occurs."""
    text = "".join(chunks)
    at = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    if at < 0:
        return None
    kept: list[str] = []
    used = 0
    for chunk in chunks:
        if used + len(chunk) >= at:
            if at > used:
                kept.append(chunk[: at - used])
            break
        kept.append(chunk)
        used += len(chunk)
    return kept


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def _logprob(token: str) -> float:
    return -round((zlib.crc32(token.encode()) % 2000) / 1000, 3)


def token_logprobs(chunk: str, top: int) -> list[dict[str, Any]]:
    """OpenAI's per-token entries of one chunk of the answer."""
    top = max(0, min(top, _MAX_TOP))
    out = []
    for token in _TOKEN.findall(chunk):
        lp = _logprob(token)
        alternatives = [_entry(token, lp)] + [_entry(f"{token}{i}", round(lp - i, 3)) for i in range(1, top)]
        out.append({**_entry(token, lp), "top_logprobs": alternatives[:top]})
    return out


def wants_logprobs(body: dict[str, Any]) -> tuple[bool, int]:
    """(logprobs asked for, how many alternatives per token)."""
    top = body.get("top_logprobs")
    count = top if isinstance(top, int) and not isinstance(top, bool) else 0
    return body.get("logprobs") is True, count
