"""Pydantic's validation errors as one message that names the field the caller sent.

Pydantic locates an error inside a union by the member it tried (`input.list[str].0`,
`tool_choice.literal['auto','none','required']`, `content.list[tagged-union[TextPart,...]].0.text`),
and a value that fits no member gets one error per member. Callers know their fields, not our
types, so this module drops those member steps from the path and, when the value fitted no member
at all, says what the field may be instead: `input: must be a string or a list of strings`.
When one member did fit the value's shape and failed deeper (`messages.0.content.0.text` missing),
that deeper error is the one reported. Every dialect renders validation failures through
`render`, so the native, OpenAI and Anthropic routes word them alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TYPE_NAMES = {"str", "int", "float", "bool", "bytes", "none", "dict", "list", "any"}
# Error types that mean "the value is not of this member's type" rather than "it is, but wrong inside".
_MISMATCH = re.compile(
    r".*_(type|parsing)$|literal_error|model_type|model_attributes_type|is_instance_of|none_required"
)
_WORDS = {
    "str": ("a string", "strings"),
    "int": ("an integer", "integers"),
    "float": ("a number", "numbers"),
    "bool": ("a boolean", "booleans"),
    "none": ("null", "nulls"),
}
# What a tagged union's members are called, by the word all their model names contain.
_KINDS = (("Part", "content parts"), ("Block", "content blocks"), ("Item", "input items"))
_ROOTS = ("body", "query", "path", "header", "cookie")


@dataclass(frozen=True)
class _Located:
    path: tuple[str, ...]  # the caller's field path, member steps removed
    member: str | None  # the first union member stepped into, if any...
    member_at: int  # ...after this many steps of `path`
    type: str
    msg: str

    def under(self, union: tuple[str, ...]) -> bool:
        """An error of one of the members of the union at `union`."""
        return self.member is not None and self.member_at == len(union) and self.path[: len(union)] == union


def _is_member(part: str) -> bool:
    """A union member's name (`str`, `list[str]`, `literal[...]`, `constrained-str`, a model class),
    not a field or a dict key (`logit_bias.50256`)."""
    return part in _TYPE_NAMES or "[" in part or part.startswith("constrained-") or part[:1].isupper()


def _locate(error: dict[str, Any]) -> _Located:
    loc = list(error.get("loc", ()))
    if loc and loc[0] in _ROOTS:
        loc = loc[1:]
    path: list[str] = []
    member: str | None = None
    member_at = 0
    discriminator_next = False
    for part in loc:
        if isinstance(part, int):
            path.append(str(part))
            continue
        text = str(part)
        if _is_member(text):
            if member is None:
                member, member_at = text, len(path)
            discriminator_next = discriminator_next or "tagged-union[" in text
            continue
        if discriminator_next:  # the tag value pydantic chose the member by: not a field
            discriminator_next = False
            continue
        path.append(text)
    return _Located(tuple(path), member, member_at, str(error.get("type", "")), str(error.get("msg", "Invalid input")))


def _plural(member: str) -> str:
    if member in _WORDS:
        return _WORDS[member][1]
    if member.startswith("list["):
        return "lists of " + _plural(member[5:-1])
    if member.startswith("tagged-union["):
        names = member[13:-1].split(",")
        for word, words in _KINDS:
            if all(word in n for n in names):
                return words
    return "objects"


def _describe(member: str) -> str:
    """A union member's type in words: `list[str]` → `a list of strings`."""
    if member in _WORDS:
        return _WORDS[member][0]
    if member.startswith("list["):
        return "a list of " + _plural(member[5:-1])
    if member.startswith("literal["):
        return "one of " + ", ".join(member[8:-1].split(","))
    return "an object"


def _wording(msg: str) -> str:
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg.replace("Input should be", "must be", 1)


def _plain(here: _Located, error: dict[str, Any]) -> tuple[str, str]:
    ctx = error.get("ctx") or {}
    if here.type == "union_tag_invalid" and "discriminator" in ctx:  # content part of an unknown `type`
        field = str(ctx["discriminator"]).strip("'")
        return ".".join((*here.path, field)), f"must be one of {ctx.get('expected_tags', '')}"
    return ".".join(here.path), _wording(here.msg)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def render(errors: list[Any], under: str = "") -> tuple[str, str | None]:
    """`Validation error: <field>: <what is wrong>, ...` and the first field named (OpenAI's `param`).
    `under` is where the validated value sits in what the caller sent (`items.3.body`: a batch
    item's request), put before each field."""
    located = [_locate(e) for e in errors]
    items: list[tuple[str, str]] = []
    done: set[int] = set()
    for i, here in enumerate(located):
        if i in done:
            continue
        if here.member is None:
            items.append(_plain(here, errors[i]))
            continue
        union = here.path[: here.member_at]
        group = [j for j, x in enumerate(located) if x.under(union)]
        done.update(group)
        if all(_MISMATCH.fullmatch(located[j].type) for j in group):
            # The value fitted no member: say what the field may be.
            members = dict.fromkeys(_describe(located[j].member or "") for j in group)
            items.append((".".join(union), "must be " + _join(list(members))))
            continue
        # A member fitted the value's shape and failed inside it: that failure is the answer.
        items += [_plain(located[j], errors[j]) for j in group if not _MISMATCH.fullmatch(located[j].type)]
    if under:
        items = [(f"{under}.{where}" if where else under, msg) for where, msg in items]
    unique = list(dict.fromkeys(items))
    text = ", ".join(f"{where}: {msg}" if where else msg for where, msg in unique)
    param = next((where for where, _ in unique if where), None)
    return "Validation error: " + text, param
