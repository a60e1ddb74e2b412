"""A real browser for end-to-end tests of the web pages: Debian's Chromium
(`apt-get install -y chromium`, done by .ci/run) driven by Playwright for
Python with the system executable, so no browser is downloaded. Every request
to a host other than loopback is aborted: the pages must work offline.

Without /usr/bin/chromium the tests are skipped with the reason, except in CI
(CI set), where that is a failure."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("RECO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    yield chromium
    chromium.close()
    playwright.stop()


def _is_local(url: str) -> bool:
    return url.startswith(("data:", "about:", "blob:")) or urlsplit(url).hostname in LOOPBACK


@pytest.fixture
def blocked_requests():
    return []


@pytest.fixture
def page(browser, blocked_requests):
    """A fresh page (own cookies) at 1280 x 860; console errors are collected
    in page.console_errors, aborted requests in blocked_requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})

    def loopback_only(route):
        if _is_local(route.request.url):
            route.continue_()
        else:
            blocked_requests.append(route.request.url)
            route.abort()

    context.route("**/*", loopback_only)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    yield page
    context.close()
