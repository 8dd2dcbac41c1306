"""Who a call is counted against, and which address is audited: nothing the caller writes decides it."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from aigateway.api.client_address import client_address, parse_ip_port
from aigateway.settings import Settings

from tests.support import SQL, Gateway, MakeGateway

from .admit_app import app_for
from .test_admission import _next_window_is_far


def _set(gw: Gateway, **body: Any) -> None:
    r = gw.client.put("/api/ai/limits", json=body, headers=gw.admin())
    assert r.status_code == 200, r.text


def _admit(gw: Gateway, headers: dict[str, str], **params: Any) -> Any:
    return gw.client.post("/test/admit", headers=headers, params=params)


def test_rotating_x_forwarded_for_does_not_escape_the_anon_limit(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway(app_factory=app_for)
    _set(gw, perUser={"requestsPerMinute": 3})
    _next_window_is_far()
    anon = gw.user(role="anon", sub="anon-key")
    codes = []
    for i in range(10):
        spoof = f"198.51.100.{i}" if i % 2 else f"<script>alert({i})</script>"
        r = _admit(gw, {**anon, "X-Forwarded-For": spoof})
        codes.append(r.status_code)
        assert r.json().get("ip", "127.0.0.1") == "127.0.0.1"
    assert codes == [200] * 3 + [429] * 7
    rows = sql("SELECT ip_address, details FROM ai.audit_logs WHERE action = 'RATE_LIMITED'")
    assert len(rows) == 7 and {r["ip_address"] for r in rows} == {"127.0.0.1"}  # the real peer
    assert not sql("SELECT 1 FROM ai.audit_logs WHERE details::text LIKE '%%script%%'")


def test_a_3kb_forwarded_header_is_never_an_address(make_gateway: MakeGateway, sql: SQL) -> None:
    """Even behind a trusted proxy, an entry that is not an IP address falls back to the peer."""
    gw = make_gateway(app_factory=app_for, trusted_proxy_hops=1)
    _set(gw, perUser={"requestsPerMinute": 1})
    _next_window_is_far()
    anon = gw.user(role="anon", sub="anon-key")
    huge = secrets.token_urlsafe(3000)
    assert _admit(gw, {**anon, "X-Forwarded-For": huge}).json()["ip"] == "127.0.0.1"
    r = _admit(gw, {**anon, "X-Forwarded-For": huge + "x"})
    assert r.status_code == 429  # the same caller: the peer
    rows = sql("SELECT ip_address FROM ai.audit_logs WHERE action = %s", ("RATE_LIMITED",))
    assert [r["ip_address"] for r in rows] == ["127.0.0.1"]


def test_the_trusted_edge_header_names_the_viewer(make_gateway: MakeGateway) -> None:
    gw = make_gateway(app_factory=app_for, client_ip_header="cloudfront-viewer-address")
    u = gw.user()

    def ip(value: str) -> str:
        return str(_admit(gw, {**u, "CloudFront-Viewer-Address": value}).json()["ip"])

    assert ip("203.0.113.9:46532") == "203.0.113.9"
    assert ip("2001:0db8:85a3:0000:0000:8a2e:0370:7334:46532") == "2001:db8:85a3::8a2e:370:7334"
    assert ip("[2001:db8::1]:443") == "2001:db8::1"
    assert ip("<b>hi</b>:80") == "127.0.0.1"  # garbage: the peer, never the text


def test_lambda_source_ip_behind_the_web_adapter() -> None:
    """The chat function's uvicorn sees the adapter; the event's sourceIp, which the adapter
    writes into x-amzn-request-context, is the caller."""
    aws = Settings(on_aws=True)
    context = orjson.dumps({"http": {"sourceIp": "198.51.100.23", "method": "POST"}}).decode()
    headers = {"x-amzn-request-context": context, "x-forwarded-for": "10.9.9.9"}
    assert client_address(headers, "10.9.9.9", aws, adapter=True) == "198.51.100.23"
    assert client_address({"x-amzn-request-context": "{nope"}, "127.0.0.1", aws, adapter=True) == "127.0.0.1"
    bad = {"x-amzn-request-context": orjson.dumps({"http": {"sourceIp": "<x>"}}).decode()}
    assert client_address(bad, "127.0.0.1", aws, adapter=True) == "127.0.0.1"
    # Not behind the adapter (Mangum, the local server) the header is whatever the caller sent.
    assert client_address(headers, "203.0.113.5", aws) == "203.0.113.5"
    assert client_address(headers, "127.0.0.1", Settings()) == "127.0.0.1"
    # Mangum puts requestContext.http.sourceIp in the scope's client: the peer.
    assert client_address({}, "2001:db8::7", aws) == "2001:db8::7"
    assert client_address({}, "not-an-ip", Settings()) is None
    assert parse_ip_port("fe80::1%eth0:80") is None  # zone ids refused


def test_a_user_named_admin_does_not_share_the_admin_keys_counters(make_gateway: MakeGateway) -> None:
    gw = make_gateway(app_factory=app_for)
    _set(gw, perUser={"requestsPerMinute": 2, "tokensPerDay": 100}, exemptAdmins=False)
    _next_window_is_far()
    key = gw.admin()
    named_admin = gw.user(role="project_admin", sub="admin")
    assert _admit(gw, key, tokens=150).status_code == 200
    assert _admit(gw, key).status_code == 402  # the admin key's day is used up
    r = _admit(gw, named_admin, tokens=10)
    assert r.status_code == 200, r.text
    assert r.json()["subject"] == "user:admin" and r.headers["X-RateLimit-Remaining"] == "1"
    assert _admit(gw, named_admin).status_code == 200
    assert _admit(gw, named_admin).status_code == 429  # its own minute, not the key's
    usage = gw.client.put("/api/ai/limits/users/admin", json={}, headers=key)
    assert usage.status_code == 200
    assert gw.client.get("/api/ai/limits/users/admin", headers=key).json()["usage"]["tokensToday"] == 10


def test_behind_the_front_door_the_hop_cloudfront_appended_is_the_caller(make_gateway: MakeGateway) -> None:
    """With the front door's origin check on, only CloudFront reaches the app, so the entry it
    appended to X-Forwarded-For is the viewer; what the viewer wrote to its left is never read."""
    gw = make_gateway(app_factory=app_for, origin_secret="edge-secret")
    edge = {**gw.user(), "x-origin-verify": "edge-secret"}

    def ip(forwarded: str, **extra: str) -> str:
        return str(_admit(gw, {**edge, "X-Forwarded-For": forwarded, **extra}).json()["ip"])

    assert ip("203.0.113.77") == "203.0.113.77"
    assert ip("1.2.3.4, <b>x</b>, 203.0.113.77") == "203.0.113.77"
    assert ip("1.2.3.4, 203.0.113.77, 127.0.0.1") == "203.0.113.77"  # the edge's own entry set aside
    assert ip("1.2.3.4, garbage") == "127.0.0.1"  # never further left than CloudFront's entry
    assert ip("1.2.3.4", **{"CloudFront-Viewer-Address": "9.9.9.9:1"}) == "1.2.3.4"  # not forwarded: text
    assert _admit(gw, {**gw.user(), "X-Forwarded-For": "203.0.113.77"}).status_code == 403  # around the edge

    viewer = make_gateway(
        app_factory=app_for, origin_secret="edge-secret", client_ip_header="cloudfront-viewer-address"
    )
    headers = {**viewer.user(), "x-origin-verify": "edge-secret", "CloudFront-Viewer-Address": "2001:db8::5:443"}
    assert _admit(viewer, headers).json()["ip"] == "2001:db8::5"


def test_control_characters_and_length_of_a_sub_stay_out_of_the_audit_record(
    make_gateway: MakeGateway, sql: SQL
) -> None:
    gw = make_gateway(app_factory=app_for)
    _set(gw, perUser={"requestsPerMinute": 1})
    _next_window_is_far()
    odd = gw.user(role="anon", sub="a\u0007b\n" + "x" * 3000)  # (a NUL is already an invalid token)
    assert _admit(gw, odd).status_code == 200
    assert _admit(gw, odd).status_code == 429  # refused and audited, not a 500
    (row,) = sql("SELECT actor, details FROM ai.audit_logs WHERE action = 'RATE_LIMITED'")
    assert row["details"]["subject"].startswith("anon:a?b?x") and len(row["details"]["subject"]) < 100
