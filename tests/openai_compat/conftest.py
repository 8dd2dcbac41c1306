from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest


@pytest.fixture(autouse=True)
def _fresh_simulator_log(simulator: Any) -> Iterator[None]:
    httpx.post(simulator.url + "/_sim/reset")
    yield
