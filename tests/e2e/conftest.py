"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Mark them `@pytest.mark.browser`; they are skipped when Chromium is not installed.
"""

import os
from pathlib import Path

import pytest

from tests.factories import PASSWORD

# Playwright's sync API runs an asyncio loop in this thread, and Django refuses ORM calls
# while a loop runs. The tests and the live server still use the ORM synchronously.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--disable-sync",
    "--no-first-run",
]
MISSING = f"Chromium not found at {CHROMIUM}: apt-get install chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 15_000


def pytest_configure(config):
    # WhiteNoise looks for collected static files; the live server serves them from the apps.
    config.addinivalue_line("filterwarnings", "ignore:No directory at:UserWarning")


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=MISSING)
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser(django_db_setup):
    if not os.path.exists(CHROMIUM):
        pytest.skip(MISSING)
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Django keeps its connections per asyncio context, and Playwright's running loop gives
    # this thread a new one: keep using the connections the test database was set up on
    # (the test database's settings and, on SQLite, the in-memory database itself).
    kept = {alias: connections[alias] for alias in connections}
    with sync_playwright() as playwright:
        for alias, connection in kept.items():
            connections[alias] = connection
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(request, browser, live_server, transactional_db):
    """A fresh browser context per test, its relative URLs on the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        # Keep what the browser showed, for the person reading a CI failure.
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def login(page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form and wait for the dashboard."""
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login/" not in url)


@pytest.fixture(name="login")
def login_fixture():
    return login
