"""Without a browser the browser tests skip on a workstation and fail in CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests/dashboard/test_browser.py::test_connect_shows_the_base_url_and_snippets"


def _run_without_browser(**extra: str) -> subprocess.CompletedProcess[str]:
    drop = ("CI", "REQUIRE_BROWSER", "CHROMIUM", "CHROMEDRIVER")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = str(Path(sys.executable).parent)  # no chromium, no chromedriver
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-cov", TARGET],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("ci", [{"CI": "true"}, {"REQUIRE_BROWSER": "1"}])
def test_ci_fails_when_the_browser_is_missing(ci: dict[str, str]) -> None:
    r = _run_without_browser(**ci)
    assert r.returncode != 0, r.stdout
    assert "the browser tests cannot run" in r.stdout


def test_a_workstation_skips_when_the_browser_is_missing() -> None:
    r = _run_without_browser()
    assert r.returncode == 0, r.stdout
    assert "1 skipped" in r.stdout
