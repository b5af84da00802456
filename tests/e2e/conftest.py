"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server.

Mark them `@pytest.mark.browser`; they are skipped when Chromium is not installed.
"""

import os
from pathlib import Path

import pytest

from tests.connectors.conftest import ldap_group, ldap_members, slapd  # noqa: F401  (fixtures)
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
    """Sign in through the login form and wait for the dashboard. A user who holds or is
    eligible for a role then enters a code from their authenticator (sign-in MFA), made
    here for them when they have none."""
    device = authenticator_of(username)  # before the code step, which asks for its code
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login/" not in url or "/login/code/" in url)
    if "/login/code/" in page.url:
        page.fill("input[name=code]", signin_code(device))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(lambda url: "/login/" not in url)
        # A person waits for the next code to activate a role; a test does not.
        signin_code(device)


def authenticator_of(username: str):
    """The user's authenticator app, made if they have none (a user the test creates may)."""
    from django.contrib.auth import get_user_model
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        return None
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)


def signin_code(device) -> str:
    """A current code of the device; the last code used is forgotten, so that signing in
    twice within 30 seconds works."""
    from binascii import unhexlify

    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    return f"{totp(unhexlify(device.key)):06d}"


@pytest.fixture(name="login")
def login_fixture():
    return login
