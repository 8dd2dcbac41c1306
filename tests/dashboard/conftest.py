"""A real headless Chromium (Debian's `chromium` + `chromium-driver`) driven by Selenium against a gateway.

Without the browser the tests skip on a workstation and fail in CI (`CI` or `REQUIRE_BROWSER` set,
as .ci/run does), so a CI machine that lost the browser cannot pass by skipping. Screenshots of
each page go to SCREENSHOTS (`build/screenshots/`, printed by `make test`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.support import Gateway

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def _binaries() -> tuple[str, str] | None:
    browser = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    found = _binaries()
    if found is None:
        missing = "no chromium + chromedriver on PATH (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") or os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"the browser tests cannot run: {missing}")
        pytest.skip(missing)
    browser, driver_path = found
    opts = Options()
    opts.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1100",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(20)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


class Page:
    """The dashboard of one gateway in the session's browser: navigation, waits and screenshots."""

    def __init__(self, driver: webdriver.Chrome, gateway: Gateway) -> None:
        self.driver = driver
        self.gateway = gateway
        self.base = gateway.url + "/dashboard/"

    def open(self) -> None:
        self.driver.get(self.base)
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get(self.base)

    def sign_in(self, key: str | None = None) -> None:
        self.open()
        self.find("#key").send_keys(key or self.gateway.admin_key)
        self.find("#signin button[type=submit]").click()
        self.ready("overview")

    def go(self, page: str) -> None:
        self.driver.execute_script("location.hash = arguments[0]", page)
        self.ready(page)

    def reload(self, page: str) -> None:
        """Draw the page again from the API (after traffic the test made outside the browser)."""
        self.driver.execute_script("location.hash = ''")
        self.driver.execute_script("location.hash = arguments[0]", page)
        self.ready(page)

    def ready(self, page: str, timeout: float = 15) -> None:
        WebDriverWait(self.driver, timeout).until(
            lambda d: d.execute_script("return document.getElementById('view').dataset.ready") == page
        )
        status = self.find("#status").text
        assert not status, f"the {page} page failed: {status}"

    def wait_ready_again(self, page: str, action: WebElement) -> None:
        """Click something that redraws the page, and wait for the redraw."""
        self.driver.execute_script("document.getElementById('view').removeAttribute('data-ready')")
        action.click()
        self.ready(page)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def attr(self, el: WebElement, name: str) -> str:
        value = el.get_attribute(name)
        assert value is not None, f"no {name} on {el.tag_name}"
        return value

    def number(self, el: WebElement, name: str) -> float:
        return float(self.attr(el, name))

    def shot(self, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(800, min(int(height) + 160, 4000)))
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1280, 1100)
        return path

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture
def page(chromium: webdriver.Chrome, gateway: Gateway) -> Iterator[Page]:
    chromium.get_log("browser")  # drop what earlier tests logged
    yield Page(chromium, gateway)
