"""Fixtures for the Lambda harness: the built bundle, moto as the AWS endpoint, and environments.

Every function gets the environment template.yaml gives it, with the template's references
resolved to moto resources made here (the JWT and admin-key secrets, the BYOK key, the spool
queue, the images bucket). Three things differ from a deployment, each because this machine has
no such service: the database comes by DATABASE_URL (the embedded server listens on a Unix
socket, not on the DB_HOST the secret would name), OpenRouter is the simulator, and AWS APIs
answer at AWS_ENDPOINT_URL (moto's server on loopback).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from aigateway.local import EmbeddedPostgres

from tests.lambda_runtime.bundle import Bundle, FunctionSpec, build_bundle, function_specs, runtime_python
from tests.lambda_runtime.harness import UNSHARE, AdapterEnvironment, BufferedEnvironment
from tests.support import ServerThread, free_port


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run([*UNSHARE, "mount", "-t", "tmpfs", "tmpfs", "/opt"], capture_output=True)
    return probe.returncode == 0


@pytest.fixture(scope="session")
def bundle() -> Bundle:
    """The layer and functions as `sam build` makes them, plus the python3.12 runtime."""
    missing = None
    if runtime_python() is None:
        missing = "no CPython 3.12 (the Lambda runtime's interpreter) on this machine"
    elif not _unshare_works():
        missing = f"{' '.join(UNSHARE)} cannot make a private mount namespace here"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the Lambda harness cannot run: {missing}")
        pytest.skip(missing)
    return build_bundle()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def aws(moto_endpoint: str) -> dict[str, str]:
    """The AWS resources template.yaml creates, made in moto; returns the values `!Ref` gives."""
    kw: dict[str, Any] = {
        "endpoint_url": moto_endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    sm = boto3.client("secretsmanager", **kw)
    jwt = sm.create_secret(Name="harness-jwt", SecretString="harness-jwt-" + secrets.token_hex(24))["ARN"]
    admin = sm.create_secret(Name="harness-admin-key", SecretString="ik_" + secrets.token_hex(32))["ARN"]
    origin = sm.create_secret(Name="harness-origin-verify", SecretString=secrets.token_hex(32))["ARN"]
    key_id = boto3.client("kms", **kw).create_key()["KeyMetadata"]["KeyId"]
    sqs = boto3.client("sqs", **kw)
    queue = sqs.create_queue(QueueName="harness-usage-spool")["QueueUrl"]
    batch_queue = sqs.create_queue(QueueName="harness-batches")["QueueUrl"]
    s3 = boto3.client("s3", **kw)
    s3.create_bucket(Bucket="harness-images")
    return {
        "JwtSecret": jwt,
        "AdminApiKeySecret": admin,
        "OriginVerifySecret": origin,
        "ByokKey": key_id,
        "ByokKey.Arn": f"arn:aws:kms:us-east-1:123456789012:key/{key_id}",
        "UsageSpoolQueue": queue,
        "BatchQueue": batch_queue,
        "ImagesBucket": "harness-images",
        "DbHost": "db.invalid",
        "DbSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:unused-db",
    }


@pytest.fixture(scope="session")
def aws_secret(moto_endpoint: str) -> Callable[[str], str]:
    def read(arn: str) -> str:
        sm = boto3.client(
            "secretsmanager",
            endpoint_url=moto_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        return str(sm.get_secret_value(SecretId=arn)["SecretString"])

    return read


@pytest.fixture(scope="session")
def specs(aws: dict[str, str], aws_secret: Callable[[str], str]) -> dict[str, FunctionSpec]:
    return function_specs(aws, {aws["OriginVerifySecret"]: aws_secret(aws["OriginVerifySecret"])})


@pytest.fixture(scope="session")
def front_door(aws: dict[str, str], aws_secret: Callable[[str], str]) -> dict[str, str]:
    """The header CloudFront adds to every request it forwards to a function URL."""
    return {"x-origin-verify": aws_secret(aws["OriginVerifySecret"])}


@pytest.fixture(scope="session")
def site_env(pg: EmbeddedPostgres, simulator: ServerThread, moto_endpoint: str) -> dict[str, str]:
    """What this machine has instead of RDS, OpenRouter and AWS (see the module docstring)."""
    return {
        "DATABASE_URL": pg.uri,
        "OPENROUTER_BASE_URL": simulator.url + "/api/v1",
        "OPENROUTER_API_KEY": "sk-or-v1-harness-env",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "CONFIG_CACHE_TTL_S": "0",
        "MODELS_CACHE_TTL_S": "0",
    }


StartBuffered = Callable[..., BufferedEnvironment]


@pytest.fixture
def start_function(
    bundle: Bundle, specs: dict[str, FunctionSpec], site_env: dict[str, str], front_door: dict[str, str]
) -> Iterator[StartBuffered]:
    """`start_function("ConfigsFunction", freeze=True, **env)`: a new execution environment."""
    started: list[BufferedEnvironment] = []

    def start(logical_id: str, *, freeze: bool = True, **env: str) -> BufferedEnvironment:
        fn = BufferedEnvironment(bundle, specs[logical_id], site_env | env, freeze=freeze, edge_headers=front_door)
        started.append(fn)
        fn.wait_ready()
        return fn

    yield start
    for fn in started:
        fn.close()


@pytest.fixture
def chat_function(
    bundle: Bundle, specs: dict[str, FunctionSpec], site_env: dict[str, str], front_door: dict[str, str]
) -> Iterator[AdapterEnvironment]:
    fn = AdapterEnvironment(bundle, specs["ChatFunction"], site_env, port=free_port(), edge_headers=front_door)
    fn.wait_ready()
    yield fn
    fn.close()
