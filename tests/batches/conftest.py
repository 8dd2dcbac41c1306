from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import ServerThread, sim_reset


@pytest.fixture(autouse=True)
def _fresh_simulator_log(simulator: ServerThread) -> Iterator[None]:
    sim_reset(simulator.url)
    yield
