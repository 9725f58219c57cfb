"""Real Chromium through Playwright: Debian's /usr/bin/chromium, never a downloaded build.

Without Chromium the browser tests skip with the reason, except under CI=true, where a
missing browser fails them.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def require_chromium() -> str:
    path = chromium_path()
    if path is None:
        reason = "Chromium not found (apt-get install chromium, or set CHROMIUM_PATH)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: browser tests may not skip in CI")
        pytest.skip(reason)
    return path


class CspWatcher:
    """Collects Content-Security-Policy violations reported by the page."""

    def __init__(self, page):
        self.violations: list[str] = []
        page.on("console", self._on_console)

    def _on_console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(message.text)


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium per test module (registered as a plugin in tests/conftest.py)."""
    path = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def log_in(page, server, username: str, password: str | None = None) -> None:
    from tests.conftest import TEST_PASSWORD

    page.goto(server.url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(LANDING)  # admins land on the list, clients on their account


LANDING = re.compile(r"/(bots|accounts/[A-Za-z0-9_-]+)$")


def log_out(page) -> None:
    page.click("text=Log out")
    page.wait_for_url("**/login")


def open_as_client(chromium, server):
    """A fresh context logged in as the client `sharp`, on its bot list: (context, page, csp)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    csp = CspWatcher(page)
    log_in(page, server, "sharp")
    page.wait_for_url("**/accounts/client_sharp")  # clients land on their account's page
    page.goto(server.url + "/bots")
    return context, page, csp


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
