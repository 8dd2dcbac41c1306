"""Image generation over real HTTP against the simulator (docs/api.md#images).

The simulator answers `modalities: ["image", ...]` with real PNG data URLs whose size follows
`image_config.aspect_ratio`; `x-sim-*` caller headers reach it through the test gateway's
`forward_header_prefix`, which is how a result past the 6 MB Lambda limit is produced.
"""

from __future__ import annotations

import base64
import struct
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import httpx
import pytest
from aigateway.flows.images import INLINE_LIMIT_BYTES, aspect_ratio
from aigateway.image_store import sign, signing_key
from moto import mock_aws

from tests.support import SQL, Gateway, MakeGateway, ServerThread, sim_chats, wait_usage

MODEL = "google/gemini-2.5-flash-image-preview"
ROUTE = "/api/ai/image/generation"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BUCKET = "aigw-test-images"  # S3 bucket names need at least 3 characters


def _enable(gw: Gateway, **fields: Any) -> str:
    return gw.enable(MODEL, inputModality=["text", "image"], outputModality=["image", "text"], **fields)


def _post(gw: Gateway, body: dict[str, Any], headers: dict[str, str] | None = None, sub: str = "alice") -> Any:
    auth = {**gw.user(sub=sub), **(headers or {})}
    return gw.client.post(ROUTE, json={"model": MODEL, **body}, headers=auth)


def _png(data_url: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix), data_url[:60]
    raw = base64.b64decode(data_url[len(prefix) :], validate=True)
    assert raw.startswith(PNG_SIGNATURE)
    return raw


def _dims(png: bytes) -> tuple[int, int]:
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _camel(u: dict[str, Any]) -> dict[str, int]:
    return {
        "promptTokens": u["prompt_tokens"],
        "completionTokens": u["completion_tokens"],
        "totalTokens": u["total_tokens"],
    }


def _replay(simulator: ServerThread, entry: dict[str, Any], headers: dict[str, str] | None = None) -> bytes:
    """Send the request the gateway made straight to the simulator again: the PNG upstream produced."""
    r = httpx.post(
        simulator.url + "/api/v1/chat/completions",
        json=entry["body"],
        timeout=60,
        headers={"Authorization": entry["headers"]["authorization"], **(headers or {})},
    )
    assert r.status_code == 200
    return _png(r.json()["choices"][0]["message"]["images"][0]["image_url"]["url"])


def test_one_image_shape_upstream_body_and_usage_row(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    config_id = _enable(gateway)
    r = _post(gateway, {"prompt": "A watercolor fox", "unknownKey": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"model", "text", "images", "count", "metadata", "nextActions"}
    assert body["text"] == "Here is your image." and body["model"] == MODEL and body["count"] == 1
    assert len(body["images"]) == 1 and body["images"][0]["type"] == "imageUrl"
    assert body["images"][0]["image_url"] == {"url": body["images"][0]["imageUrl"]}  # the Python/Kotlin SDKs' key
    assert _dims(_png(body["images"][0]["imageUrl"])) == (64, 64)  # no size: the model's default 1:1

    [sent] = sim_chats(simulator.url)
    assert sent["body"] == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "A watercolor fox"}],
        "modalities": ["image", "text"],
        "stream": False,
    }
    reported = sent["usage"]
    assert body["metadata"] == {"model": MODEL, "usage": _camel(reported)}

    [row] = wait_usage(sql)
    assert row["request_id"] == r.headers["x-request-id"]
    assert row["kind"] == "image" and row["image_count"] == 1 and row["image_resolution"] is None
    assert row["config_id"] is not None and str(row["config_id"]) == config_id
    assert row["model_id"] == MODEL and row["user_id"] == "alice" and row["key_source"] == "env"
    assert row["input_tokens"] == reported["prompt_tokens"]
    assert row["output_tokens"] == reported["completion_tokens"]
    assert float(row["cost_usd"]) == pytest.approx(reported["cost"])
    assert row["latency_ms"] is not None and row["latency_ms"] >= 0


def test_four_images_are_four_parallel_calls_summed(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    _enable(gateway)
    started = time.monotonic()
    r = _post(gateway, {"prompt": "Four foxes", "numImages": 4}, {"x-sim-latency-ms": "600"})
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["images"]) == 4
    for item in body["images"]:
        assert item["type"] == "imageUrl" and _png(item["imageUrl"])

    calls = sim_chats(simulator.url)
    assert len(calls) == 4
    arrivals = [c["time"] for c in calls]
    assert max(arrivals) - min(arrivals) < 0.45  # all four were sent before any answered (600 ms each)
    assert elapsed < 4 * 0.6

    reported = [c["usage"] for c in calls]
    prompt = sum(u["prompt_tokens"] for u in reported)
    completion = sum(u["completion_tokens"] for u in reported)
    assert body["metadata"]["usage"] == {
        "promptTokens": prompt,
        "completionTokens": completion,
        "totalTokens": sum(u["total_tokens"] for u in reported),
    }
    [row] = wait_usage(sql)
    assert row["image_count"] == 4
    assert (row["input_tokens"], row["output_tokens"]) == (prompt, completion)
    assert float(row["cost_usd"]) == pytest.approx(sum(u["cost"] for u in reported))


def test_size_quality_style_and_the_admins_system_prompt(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    _enable(gateway, systemPrompt="House style: ink and watercolour.")
    r = _post(gateway, {"prompt": "A lighthouse", "size": "1792x1024", "quality": "hd", "style": "natural"})
    assert r.status_code == 200, r.text
    assert _dims(_png(r.json()["images"][0]["imageUrl"])) == (96, 54)  # the simulator's 16:9

    upstream = sim_chats(simulator.url)[0]["body"]
    assert upstream["image_config"] == {"aspect_ratio": "16:9"}
    assert [m["role"] for m in upstream["messages"]] == ["user"]  # image models ignore system messages
    content = upstream["messages"][0]["content"]
    assert content.startswith("House style: ink and watercolour.\n\nA lighthouse\n\n")
    assert "high definition" in content and "natural" in content
    assert "quality" not in upstream and "style" not in upstream and "size" not in upstream

    [row] = wait_usage(sql)
    assert row["image_resolution"] == "1792x1024"


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ("1024x1024", "1:1"),
        ("512x512", "1:1"),
        ("1024x1792", "9:16"),
        ("1792x1024", "16:9"),
        ("1024x768", "4:3"),
        ("768x1024", "3:4"),
        ("1024x1536", "2:3"),
        ("2520x1080", "21:9"),
        ("1000x800", "5:4"),
        ("1100x1000", "1:1"),
        ("1200x1000", "5:4"),
        ("3000x1000", "21:9"),
        ("1000x3000", "9:16"),
    ],
)
def test_size_maps_to_the_nearest_supported_aspect_ratio(size: str, ratio: str) -> None:
    assert aspect_ratio(size) == ratio


def test_input_images_are_forwarded_as_image_url_parts(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    _enable(gateway)
    inputs = ["https://example.com/input.jpg", "data:image/png;base64,iVBORw0KGgo="]
    r = _post(gateway, {"prompt": "Make it night", "images": [{"url": u} for u in inputs]})
    assert r.status_code == 200, r.text
    [sent] = sim_chats(simulator.url)
    assert sent["body"]["messages"][0]["content"] == [
        {"type": "text", "text": "Make it night"},
        {"type": "image_url", "image_url": {"url": inputs[0]}},
        {"type": "image_url", "image_url": {"url": inputs[1]}},
    ]
    [row] = wait_usage(sql)
    assert row["input_tokens"] == sent["usage"]["prompt_tokens"] > 170  # 85 per input image part


def test_a_result_past_6mb_comes_back_as_a_signed_local_url(
    gateway: Gateway, simulator: ServerThread, sql: SQL
) -> None:
    _enable(gateway)
    big = {"x-sim-image-bytes": "6500000"}
    r = _post(gateway, {"prompt": "A very detailed map"}, big)
    assert r.status_code == 200, r.text
    assert len(r.content) < 10_000
    body = r.json()
    url = body["images"][0]["imageUrl"]
    assert url.startswith(gateway.url + "/api/ai/images/files/"), url
    assert body["text"] == "Here is your image." and body["metadata"]["usage"]["completionTokens"] > 0

    got = httpx.get(url, timeout=30)  # no bearer token: the signature is the authorisation
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert len(got.content) > INLINE_LIMIT_BYTES
    assert got.content == _replay(simulator, sim_chats(simulator.url)[0], big)

    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    name = parts.path.rsplit("/", 1)[1]
    base = gateway.url + parts.path

    def fetch(**params: Any) -> httpx.Response:
        return httpx.get(base + "?" + urlencode(params), timeout=30)

    flipped = query["sig"][:-1] + ("0" if query["sig"][-1] != "0" else "1")
    for bad in (
        {"expires": query["expires"], "sig": flipped},  # tampered signature
        {"expires": str(int(query["expires"]) + 3600), "sig": query["sig"]},  # extended expiry
        {"expires": query["expires"]},  # no signature
        {"expires": "-1", "sig": query["sig"]},
    ):
        denied = fetch(**bad)
        assert denied.status_code == 403, bad
        assert denied.json()["error"] == "AUTH_UNAUTHORIZED" and denied.json()["statusCode"] == 403

    key = signing_key(gateway.settings)
    past = int(time.time()) - 5
    expired = fetch(expires=past, sig=sign(key, name, past))  # correctly signed, but expired
    assert expired.status_code == 403 and "expired" in expired.json()["message"]

    future = int(time.time()) + 60
    missing = "nope-0.png"
    gone = httpx.get(
        f"{gateway.url}/api/ai/images/files/{missing}", params={"expires": future, "sig": sign(key, missing, future)}
    )
    assert gone.status_code == 404 and gone.json()["error"] == "NOT_FOUND"

    [row] = wait_usage(sql)
    assert row["image_count"] == 1


def test_storage_true_forces_urls_with_the_same_bytes(gateway: Gateway, simulator: ServerThread) -> None:
    _enable(gateway)
    inline = _post(gateway, {"prompt": "A small red square"})
    stored = _post(gateway, {"prompt": "A small red square", "storage": True})
    assert inline.status_code == stored.status_code == 200
    url = stored.json()["images"][0]["imageUrl"]
    assert url.startswith("http://127.0.0.1:") and "/api/ai/images/files/" in url and "sig=" in url
    got = httpx.get(url)
    assert got.status_code == 200
    assert got.content == _png(inline.json()["images"][0]["imageUrl"])


def test_s3_storage_returns_presigned_https_urls(
    make_gateway: MakeGateway, simulator: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        gw = make_gateway(images_bucket=BUCKET, images_url_ttl_s=900)
        _enable(gw)
        r = _post(gw, {"prompt": "Two boats", "numImages": 2, "storage": True})
        assert r.status_code == 200, r.text
        rid = r.headers["x-request-id"]
        urls = [i["imageUrl"] for i in r.json()["images"]]
        assert len(urls) == 2
        day = time.strftime("%Y/%m/%d", time.gmtime())
        for n, url in enumerate(urls):
            parts = urlsplit(url)
            assert parts.scheme == "https" and BUCKET in parts.netloc + parts.path
            key = f"images/{day}/{rid}-{n}.png"
            assert parts.path.endswith("/" + key)
            query = parse_qs(parts.query)
            assert query["X-Amz-Expires"] == ["900"] and query["X-Amz-Signature"]
            head = s3.head_object(Bucket=BUCKET, Key=key)
            assert head["ContentType"] == "image/png" and head["ServerSideEncryption"] == "AES256"
            stored = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            assert stored == _replay(simulator, sim_chats(simulator.url)[n])


def test_one_failed_call_of_several_returns_the_others(
    make_gateway: MakeGateway, simulator: ServerThread, sql: SQL
) -> None:
    gw = make_gateway(upstream_max_tries=1)
    _enable(gw)
    r = _post(
        gw, {"prompt": "Three owls", "numImages": 3}, {"x-sim-fail-times": "1", "x-sim-request-key": "owls-partial"}
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["images"]) == 2
    calls = sim_chats(simulator.url)
    assert sorted(c["status"] for c in calls) == [200, 200, 502]
    served = [c["usage"] for c in calls if c["status"] == 200]
    [row] = wait_usage(sql)
    assert row["image_count"] == 2
    assert row["output_tokens"] == sum(u["completion_tokens"] for u in served)


def test_all_calls_failing_is_the_mapped_error_and_no_usage(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway(upstream_max_tries=1)
    gw.enable("google/gemini-image-down", outputModality=["image", "text"])
    r = gw.client.post(
        ROUTE, json={"model": "google/gemini-image-down", "prompt": "x", "numImages": 2}, headers=gw.user()
    )
    assert r.status_code == 502
    assert r.json()["error"] == "AI_UPSTREAM_UNAVAILABLE" and r.json()["statusCode"] == 502
    time.sleep(0.3)
    assert sql("SELECT * FROM ai.usage") == []


def test_caps_gating_and_auth(gateway: Gateway, simulator: ServerThread) -> None:
    r = _post(gateway, {"prompt": "x"})
    assert r.status_code == 400 and r.json()["error"] == "AI_INVALID_MODEL"
    assert MODEL in r.json()["message"]

    _enable(gateway)
    r = _post(gateway, {"prompt": "x", "numImages": 5})
    assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT"
    assert r.json()["message"].startswith("Validation error: numImages")
    for bad in ({"numImages": 0}, {"size": "big"}, {"size": "0x512"}, {"quality": "ultra"}, {"prompt": ""}):
        r = _post(gateway, {"prompt": "x", **bad})
        assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT", bad
        field = next(iter(bad))
        assert r.json()["message"].startswith(f"Validation error: {field}"), r.json()

    r = gateway.client.post(ROUTE, json={"model": MODEL, "prompt": "x"})
    assert r.status_code == 401 and r.json()["error"] == "AUTH_INVALID_CREDENTIALS"
    assert sim_chats(simulator.url) == []  # nothing above reached the upstream


def test_local_store_sweeps_files_whose_links_have_all_expired(tmp_path: Any) -> None:
    import asyncio
    import os

    from aigateway.image_store import DecodedImage, LocalImageStore

    store = LocalImageStore(tmp_path, b"k" * 32, ttl_s=60)
    old = tmp_path / "old-0.png"
    old.write_bytes(PNG_SIGNATURE)
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    recent = tmp_path / "recent-0.png"
    recent.write_bytes(PNG_SIGNATURE)
    url = asyncio.run(store.put("rid", 0, DecodedImage("image/png", PNG_SIGNATURE), base_url="http://h:1/"))
    assert url.startswith("http://h:1/api/ai/images/files/rid-0.png?expires=")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recent-0.png", "rid-0.png"]


def test_content_policy_blocks_the_prompt_and_moderation_is_asked_for(
    gateway: Gateway, simulator: ServerThread
) -> None:
    _enable(gateway, contentPolicy={"denyPatterns": ["forbidden\\s{1,3}castle"], "moderation": True})
    r = _post(gateway, {"prompt": "Paint the FORBIDDEN  castle at dusk"})
    assert r.status_code == 400 and r.json()["error"] == "CONTENT_BLOCKED"
    assert sim_chats(simulator.url) == []
    r = _post(gateway, {"prompt": "Paint a castle at dusk"})
    assert r.status_code == 200, r.text
    assert sim_chats(simulator.url)[0]["body"]["plugins"] == [{"id": "moderation"}]
