from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.batches.helpers import enable_models
from tests.support import Gateway, MakeGateway, ServerThread, sim_reset


@pytest.fixture(autouse=True)
def _fresh_simulator_log(simulator: ServerThread) -> Iterator[None]:
    sim_reset(simulator.url)
    yield


@pytest.fixture
def gw(make_gateway: MakeGateway) -> Gateway:
    """A local gateway running four items at a time, with the batch tests' models enabled (a module
    that needs other settings defines its own)."""
    gw = make_gateway(batch_local_concurrency=4)
    enable_models(gw)
    return gw
