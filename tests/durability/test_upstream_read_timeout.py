"""A non-stream call whose upstream does not answer in time is not sent again: the first request may
be generating (and billing) upstream, and a retry would pay for a second generation with no usage row
for the first. Failures before a request reached the upstream are still retried."""

from __future__ import annotations

from tests.support import MakeGateway, ServerThread, free_port, sim_chats

MODEL = "openai/gpt-4o-mini"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "slow"}]}


def test_a_read_timeout_is_not_retried(make_gateway: MakeGateway, simulator: ServerThread) -> None:
    gw = make_gateway(upstream_timeout_s=0.3, upstream_max_tries=3)
    gw.enable(MODEL)
    r = gw.client.post("/api/ai/chat/completion", json=BODY, headers={**gw.user(), "x-sim-latency-ms": "1500"})
    assert r.status_code == 502 and "timed out" in r.json()["message"]
    assert len(sim_chats(simulator.url)) == 1, "one generation requested upstream, not one per try"


def test_a_retryable_status_before_the_body_is_still_retried(
    make_gateway: MakeGateway, simulator: ServerThread
) -> None:
    gw = make_gateway(upstream_max_tries=3)
    gw.enable(MODEL)
    headers = {**gw.user(), "x-sim-fail-status": "502", "x-sim-fail-times": "1", "x-sim-request-key": "retry-once"}
    r = gw.client.post("/api/ai/chat/completion", json=BODY, headers=headers)
    assert r.status_code == 200, r.text
    assert len(sim_chats(simulator.url)) == 2


def test_a_connect_failure_is_retried(make_gateway: MakeGateway) -> None:
    gw = make_gateway(openrouter_base_url=f"http://127.0.0.1:{free_port()}/api/v1", upstream_max_tries=2)
    gw.enable(MODEL)
    r = gw.client.post("/api/ai/chat/completion", json=BODY, headers=gw.user())
    assert r.status_code == 502 and r.json()["error"] == "AI_UPSTREAM_UNAVAILABLE"
