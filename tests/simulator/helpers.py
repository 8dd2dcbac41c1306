"""Shared request fixtures and the usage formula, written independently of the simulator's code."""

from __future__ import annotations

import re
from typing import Any

GEN_ID = re.compile(r"gen-\d{10}-[A-Za-z0-9]{20}")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather by city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}}},
    },
}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def expected_usage(prompt: int, completion: int, reasoning: int = 0, image: int = 0) -> dict[str, Any]:
    """The documented formula, written independently of the simulator's code."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost": round(prompt * 0.0000001 + completion * 0.0000004, 10),
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "cost_details": {
            "upstream_inference_cost": None,
            "upstream_inference_prompt_cost": round(prompt * 0.0000001, 10),
            "upstream_inference_completions_cost": round(completion * 0.0000004, 10),
        },
        "completion_tokens_details": {"reasoning_tokens": reasoning, "image_tokens": image},
    }
