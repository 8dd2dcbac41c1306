"""The SigV4 signer of aigateway.aws against botocore's, and a real call against moto's server."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from aigateway import aws
from botocore import auth as botocore_auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials

from tests.support import free_port

NOW = dt.datetime(2026, 12, 2, 12, 34, 56, tzinfo=dt.UTC)


@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
@pytest.mark.parametrize(
    ("url", "service"),
    [
        ("https://secretsmanager.eu-west-1.amazonaws.com/", "secretsmanager"),
        ("http://127.0.0.1:4566/", "kms"),
    ],
)
def test_signature_is_botocores(monkeypatch: pytest.MonkeyPatch, url: str, service: str, token: str | None) -> None:
    body = json.dumps({"SecretId": "arn:aws:secretsmanager:eu-west-1:1:secret:x"}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "secretsmanager.GetSecretValue"}
    ours = aws.sign(
        "POST", url, headers, body, aws.Credentials("AKIDEXAMPLE", "s3cr3t", token), "eu-west-1", service, NOW
    )

    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    botocore_auth.SigV4Auth(BotocoreCredentials("AKIDEXAMPLE", "s3cr3t", token), service, "eu-west-1").add_auth(request)
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["X-Amz-Date"] == request.headers["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == request.headers.get("X-Amz-Security-Token")


@pytest.fixture
def moto_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_get_secret_value_and_a_refusal_from_a_real_endpoint(moto_env: str) -> None:
    sm = boto3.client("secretsmanager", endpoint_url=moto_env, region_name="us-east-1")
    arn = sm.create_secret(Name="signed", SecretString="s3cret-value")["ARN"]
    assert aws.call("secretsmanager", "GetSecretValue", {"SecretId": arn})["SecretString"] == "s3cret-value"
    with pytest.raises(aws.AwsError) as refused:
        aws.call("secretsmanager", "GetSecretValue", {"SecretId": "no-such-secret"})
    assert refused.value.code == "ResourceNotFoundException" and refused.value.status in (400, 404)


def test_throttling_is_retried_and_an_unreachable_endpoint_is_an_aws_error(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [(400, {"__type": "ThrottlingException", "message": "slow down"}), (200, {"SecretString": "ok"})]
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers["Authorization"].split("Credential=")[1].split("/")[0])
            status, doc = answers.pop(0)
            raw = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDRETRY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    try:
        assert aws.call("secretsmanager", "GetSecretValue", {"SecretId": "s"}) == {"SecretString": "ok"}
        assert seen == ["AKIDRETRY", "AKIDRETRY"]
    finally:
        server.shutdown()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(aws.AwsError) as unreachable:
        aws.call("secretsmanager", "GetSecretValue", {"SecretId": "s"}, attempts=2)
    assert unreachable.value.code == "EndpointUnreachable"


def test_without_environment_credentials_there_is_nothing_to_sign_with(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    assert not aws.available()
    with pytest.raises(aws.AwsError) as missing:
        aws.call("kms", "Decrypt", {})
    assert missing.value.code == "MissingCredentials"
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_KMS", raising=False)
    assert aws.endpoint("kms", "cn-north-1") == "https://kms.cn-north-1.amazonaws.com.cn/"
