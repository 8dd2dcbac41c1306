"""Helpers for the logging tests: every test leaves the process's logging as it found it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state (root handlers, the aigateway level): undo it,
    so later tests (caplog users among them) see the logging they would have seen without these."""
    root = logging.getLogger()
    package = logging.getLogger("aigateway")
    saved = (list(root.handlers), root.level, package.level, package.propagate)
    yield
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    package.setLevel(saved[2])
    package.propagate = saved[3]


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line that is a JSON object; a line that starts like one must parse."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
