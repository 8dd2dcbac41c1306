"""Fixtures of the durability tests: a fresh simulator log, and a PostgreSQL of their own to freeze."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from aigateway.local import EmbeddedPostgres
from aigateway.migrations import apply

from tests.support import ServerThread, private_dir, sim_reset


@pytest.fixture(autouse=True)
def _fresh_simulator_log(simulator: ServerThread) -> Iterator[None]:
    sim_reset(simulator.url)
    yield


@pytest.fixture(scope="module")
def own_pg() -> Iterator[EmbeddedPostgres]:
    """A migrated PostgreSQL only this module uses, so freezing it stalls nobody else."""
    base = private_dir("aigw-own-")
    server = EmbeddedPostgres(base / "data", delete_on_exit=True)
    apply(server.start(), "ai")
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)
