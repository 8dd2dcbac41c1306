from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .helpers import sim_reset


@pytest.fixture(autouse=True)
def _fresh_simulator_log(simulator: Any) -> Iterator[None]:
    sim_reset(simulator.url)
    yield
