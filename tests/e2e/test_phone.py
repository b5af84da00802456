"""On a phone (390 px wide) the self-service pages fit the screen: nothing scrolls sideways."""

import pytest

from tests.e2e.conftest import TIMEOUT_MS

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser, live_server, transactional_db):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, is_mobile=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_my_roles_fits_a_phone_and_activate_is_on_screen(phone, login, eligible_user):
    login(phone, eligible_user.username)
    phone.goto("/my/roles/")

    assert scroll_width(phone) <= PHONE["width"]
    activate = phone.locator("#my-roles-table").get_by_role("link", name="Activate").first
    box = activate.bounding_box()  # x does not depend on how far down the page is scrolled
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"]


def test_my_requests_fits_a_phone(phone, login, eligible_user):
    login(phone, eligible_user.username)
    phone.goto("/my/requests/")

    assert scroll_width(phone) <= PHONE["width"]
