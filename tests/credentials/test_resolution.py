"""Resolution order BYOK → cloud → env for every combination; replacing, removing, caching."""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aigateway.credentials import parse_cloud_secret
from aws_lambda_powertools.utilities.parameters import base as pt_base
from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider
from botocore.stub import Stubber

from .conftest import ENV_KEY, Gw, Sim, create_cloud_secret, models_key, set_key

BYOK = "sk-or-v1-byok-aaaa1111bbbb2222"
CLOUD = "sk-or-v1-cloud-cccc3333dddd4444"
ROUTE = "/api/ai/gateway/config"


@pytest.mark.parametrize(("byok", "cloud", "env"), list(itertools.product([True, False], repeat=3)))
def test_every_combination_resolves_in_order(
    make_gw: Callable[..., Gw], aws: None, sim: Sim, byok: bool, cloud: bool, env: bool
) -> None:
    gw = make_gw(
        openrouter_api_key=ENV_KEY if env else None,
        openrouter_cloud_key_secret=create_cloud_secret(CLOUD) if cloud else None,
    )
    if byok:
        assert set_key(gw, BYOK).status_code == 200
    expected_source, expected_key = next(
        ((s, k) for s, k, present in (("byok", BYOK, byok), ("cloud", CLOUD, cloud), ("env", ENV_KEY, env)) if present),
        ("unconfigured", None),
    )
    status = gw.client.get(ROUTE, headers=gw.admin()).json()
    assert status["keySource"] == expected_source and status["hasByokKey"] is byok
    assert models_key(gw, sim) == expected_key, "the upstream saw the key of the first present source"


@pytest.mark.parametrize(
    "secret",
    [
        CLOUD,
        f"  {CLOUD}\n",
        json.dumps({"apiKey": CLOUD}),
        json.dumps({"OPENROUTER_API_KEY": CLOUD, "other": 1}),
    ],
)
def test_cloud_secret_forms(make_gw: Callable[..., Gw], aws: None, sim: Sim, secret: str) -> None:
    gw = make_gw(openrouter_cloud_key_secret=create_cloud_secret(secret))
    assert models_key(gw, sim) == CLOUD


@pytest.mark.parametrize("value", ["", "   ", "{}", '{"apiKey": ""}', "{not json", b"", json.dumps({"x": "y"})])
def test_unusable_cloud_secret_is_absent(value: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert parse_cloud_secret(value) is None
    assert "cloud-managed OpenRouter key secret" in caplog.text


def test_missing_cloud_secret_is_absent_with_a_warning(
    make_gw: Callable[..., Gw], aws: None, sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    gw = make_gw(openrouter_cloud_key_secret="no-such-secret")
    assert gw.client.get(ROUTE, headers=gw.admin()).json()["keySource"] == "env"
    assert models_key(gw, sim) == ENV_KEY
    assert "not readable (ResourceNotFoundException); treating it as absent" in caplog.text


def test_throttled_cloud_secret_is_a_503(make_gw: Callable[..., Gw], aws: None, sim: Sim) -> None:
    client = boto3.client("secretsmanager")
    stub = Stubber(client)
    for _ in range(2):
        stub.add_client_error("get_secret_value", service_error_code="ThrottlingException", http_status_code=400)
    stub.activate()
    pt_base.DEFAULT_PROVIDERS["secrets"] = SecretsProvider(boto3_client=client)
    gw = make_gw(openrouter_cloud_key_secret="throttled-secret")
    for path in (ROUTE, "/api/ai/models"):
        r = gw.client.get(path, headers=gw.admin())
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["error"] == "SERVICE_UNAVAILABLE"
        assert "cloud-managed OpenRouter key from AWS Secrets Manager (ThrottlingException)" in body["message"]
        assert "Retry" in body["nextActions"]
    assert sim.keys() == [], "no silent fall-through to the environment key"


def test_replacing_the_key_takes_effect_and_removing_falls_back(
    make_gw: Callable[..., Gw], aws: None, sim: Sim
) -> None:
    gw = make_gw(openrouter_cloud_key_secret=create_cloud_secret(CLOUD))
    assert models_key(gw, sim) == CLOUD
    assert set_key(gw, BYOK).status_code == 200
    assert models_key(gw, sim) == BYOK
    replacement = "sk-or-v1-byok-replacement-9999"
    assert set_key(gw, replacement).status_code == 200
    assert models_key(gw, sim) == replacement
    assert gw.client.get(ROUTE, headers=gw.admin()).json()["maskedKey"] == "sk-o****9999"
    assert gw.client.delete(ROUTE, headers=gw.admin()).status_code == 200
    assert models_key(gw, sim) == CLOUD, "removing BYOK falls back to the cloud-managed key"


def test_other_processes_see_a_change_within_the_cache_time(make_gw: Callable[..., Gw], sim: Sim) -> None:
    """Two gateways on one database: the writer sees the change at once, the other after its TTL."""
    writer = make_gw()
    reader = make_gw(key_cache_ttl_s=2.0)
    assert models_key(reader, sim) == ENV_KEY  # caches "no BYOK key" for 2 s
    assert set_key(writer, BYOK).status_code == 200
    changed_at = time.monotonic()
    assert models_key(writer, sim) == BYOK
    assert models_key(reader, sim) == ENV_KEY, "still within the reader's cache time"
    assert reader.client.get(ROUTE, headers=reader.admin()).json()["keySource"] == "byok", "status reads fresh"
    time.sleep(max(0.0, 2.1 - (time.monotonic() - changed_at)))
    assert models_key(reader, sim) == BYOK

    assert writer.client.delete(ROUTE, headers=writer.admin()).status_code == 200
    removed_at = time.monotonic()
    assert models_key(writer, sim) == ENV_KEY
    assert models_key(reader, sim) == BYOK
    time.sleep(max(0.0, 2.1 - (time.monotonic() - removed_at)))
    assert models_key(reader, sim) == ENV_KEY
