"""Decode JSON the way the Swift and Kotlin SDKs do, from a description of their model types.

Swift's `JSONDecoder` and kotlinx.serialization agree on the rules that matter here: a key of a
non-optional property must be present and not null, a value must have the property's JSON type
(a Swift or Kotlin `Int` takes only an integral number, a `String` only a string), optional
properties may be missing or null. Where they differ, the type says so: `strict=True` is
kotlinx's default `Json` (an unknown key is an error: the Kotlin SDK uses it for stream frames
and error bodies), otherwise unknown keys are ignored (Swift always; Kotlin's HTTP bodies, whose
`Json` sets `ignoreUnknownKeys`).

`decode(value, TYPE)` returns the problems found, `[]` when the SDK would decode the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scalar:
    name: str  # "String", "Int", "Double", "Bool"


@dataclass(frozen=True)
class Arr:
    item: Type


@dataclass(frozen=True)
class F:
    """A property: its type, and whether it may be missing or null (Swift `T?`, Kotlin `T? = null`)."""

    type: Type
    optional: bool = False


@dataclass(frozen=True)
class Obj:
    fields: dict[str, F] = field(default_factory=dict)
    strict: bool = False


Type = Scalar | Arr | Obj

STRING, INT, DOUBLE, BOOL = Scalar("String"), Scalar("Int"), Scalar("Double"), Scalar("Bool")


def opt(t: Type) -> F:
    return F(t, optional=True)


def req(t: Type) -> F:
    return F(t)


def _scalar_ok(name: str, v: Any) -> bool:
    if name == "String":
        return isinstance(v, str)
    if name == "Bool":
        return isinstance(v, bool)
    if name == "Int":
        return isinstance(v, int) and not isinstance(v, bool)
    return isinstance(v, int | float) and not isinstance(v, bool)  # Double


def decode(value: Any, t: Type, path: str = "$") -> list[str]:
    if isinstance(t, Scalar):
        return [] if _scalar_ok(t.name, value) else [f"{path}: expected {t.name}, got {value!r:.60}"]
    if isinstance(t, Arr):
        if not isinstance(value, list):
            return [f"{path}: expected an array, got {type(value).__name__}"]
        return [p for i, v in enumerate(value) for p in decode(v, t.item, f"{path}[{i}]")]
    if not isinstance(value, dict):
        return [f"{path}: expected an object, got {type(value).__name__}"]
    problems: list[str] = []
    for key, f in t.fields.items():
        if value.get(key) is None:
            if not f.optional:
                problems.append(f"{path}.{key}: required, {'null' if key in value else 'missing'}")
            continue
        problems += decode(value[key], f.type, f"{path}.{key}")
    if t.strict:
        problems += [f"{path}.{k}: unknown key (strict decoder)" for k in value if k not in t.fields]
    return problems


def assert_decodes(value: Any, t: Type) -> None:
    problems = decode(value, t)
    assert not problems, "\n".join(problems) + f"\nin {value!r:.2000}"
