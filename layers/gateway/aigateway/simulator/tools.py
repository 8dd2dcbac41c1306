"""Which tool calls the simulator answers with, and the arguments it makes up for them.

``tool_choice`` is honoured on every turn, as the real models behind OpenRouter do:

* ``"none"``: never a tool call;
* ``"auto"`` (or absent): a call while the last message is not a tool result, then text;
* ``"required"`` or a named function (``{"type": "function", "function": {"name": ...}}``): a call
  on every turn, a tool result last included. Agents that take their structured output as a tool
  call (pydantic-ai's output tools, sent with ``"required"``) would otherwise wait forever for it.
  With ``"required"`` the call goes to the first tool this conversation has not called yet (the
  last one when all were called), so such an agent moves from its function tools to its output tool.

Arguments are built from the parameter schema: strings ``"Paris"`` or the first enum value,
numbers 1, booleans true.
"""

from __future__ import annotations

import random
import string
from itertools import cycle, islice
from typing import Any

import orjson

_ALNUM = string.ascii_letters + string.digits


def call_id() -> str:
    return "call_" + "".join(random.choices(_ALNUM, k=24))


def sample(schema: object, depth: int = 0) -> Any:
    """A small value that satisfies a JSON schema well enough for tests."""
    if not isinstance(schema, dict):
        return "Paris"
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "null":
        return None
    if kind == "object" or "properties" in schema:
        props = schema.get("properties")
        if depth >= 5 or not isinstance(props, dict):
            return {}
        return {name: sample(sub, depth + 1) for name, sub in props.items()}
    return "Paris"


def function_tools(tools: object) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        return []
    found = []
    for tool in tools:
        if isinstance(tool, dict) and tool.get("type", "function") == "function":
            fn = tool.get("function")
            if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                found.append(fn)
    return found


def _forced(choice: object, tools: list[dict[str, Any]], called: set[str]) -> list[dict[str, Any]]:
    """The tools a forcing ``tool_choice`` allows this turn, in the order to call them."""
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        return [t for t in tools if t["name"] == wanted] or tools
    fresh = [t for t in tools if t["name"] not in called]
    return fresh or tools[-1:]


def plan_tool_calls(
    body: dict[str, Any], last_role: str, called: set[str], parallel_count: int
) -> list[tuple[str, str, str]]:
    """(id, name, arguments JSON) of each call this turn; empty for a text answer."""
    tools = function_tools(body.get("tools"))
    choice = body.get("tool_choice")
    forcing = choice == "required" or isinstance(choice, dict)
    if not tools or choice == "none" or (last_role == "tool" and not forcing):
        return []
    if forcing:
        tools = _forced(choice, tools, called if last_role == "tool" else set())
    count = parallel_count if body.get("parallel_tool_calls") is not False else 1
    return [
        (call_id(), tool["name"], orjson.dumps(sample(tool.get("parameters") or {"type": "object"})).decode())
        for tool in islice(cycle(tools), count)
    ]
