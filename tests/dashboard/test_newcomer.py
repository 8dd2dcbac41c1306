"""What a newcomer does: `aigateway serve` (what `make run` runs), open the printed admin page URL,
sign in with the printed admin key, enable a model, chat as the demo user, see the chart of it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support import free_port

BANNER = {
    "page": r"Admin page:\s+(\S+)",
    "admin": r"Admin API key:\s+(\S+)",
    "user": r"Demo user token:\s+(\S+)",
    "base": r"AI gateway:\s+(\S+)",
}


@pytest.fixture
def served() -> Iterator[dict[str, str]]:
    folder = Path(tempfile.mkdtemp(prefix="aigw-dash-"))
    env = {k: v for k, v in os.environ.items() if k not in ("OPENROUTER_API_KEY", "DATABASE_URL", "ACCESS_API_KEY")}
    env["AIGATEWAY_HOME"] = str(folder / "home")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aigateway", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    printed: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(printed) < len(BANNER):
        line = proc.stdout.readline()
        if not line:
            break
        for key, pattern in BANNER.items():
            if m := re.search(pattern, line):
                printed[key] = m.group(1)
    try:
        for _ in range(200):
            try:
                if httpx.get(printed["base"] + "/api/ai/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield printed
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_printed_url_signs_in_and_charts_the_traffic(chromium: webdriver.Chrome, served: dict[str, str]) -> None:
    assert served["page"] == served["base"] + "/dashboard/"
    d = chromium
    d.get(served["page"])
    d.execute_script("sessionStorage.clear()")
    d.get(served["page"])
    d.find_element(By.ID, "key").send_keys(served["admin"])
    d.find_element(By.CSS_SELECTOR, "#signin button[type=submit]").click()
    ready = "return document.getElementById('view').dataset.ready"
    WebDriverWait(d, 15).until(lambda _: d.execute_script(ready) == "overview")
    d.execute_script("location.hash = 'models'")
    WebDriverWait(d, 15).until(lambda _: d.execute_script(ready) == "models")
    d.find_element(By.ID, "catalog-search").send_keys("openai/gpt-4o-mini")
    d.execute_script("document.getElementById('view').removeAttribute('data-ready')")
    d.find_element(By.CSS_SELECTOR, '#catalog tr[data-model="openai/gpt-4o-mini"] button').click()
    WebDriverWait(d, 15).until(lambda _: d.execute_script(ready) == "models")

    user = {"Authorization": f"Bearer {served['user']}"}
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        assert httpx.post(served["base"] + "/api/ai/chat/completion", headers=user, json=body).status_code == 200
    d.execute_script("location.hash = 'overview'")
    chart = 'svg[data-metric="requests"]'
    WebDriverWait(d, 15).until(lambda _: d.execute_script(ready) == "overview")
    assert d.find_element(By.CSS_SELECTOR, chart).get_attribute("data-total") == "2"
    bar = d.find_element(By.CSS_SELECTOR, chart + " rect")
    assert (bar.get_attribute("data-series"), bar.get_attribute("data-value")) == ("openai/gpt-4o-mini", "2")
