"""Sign-in and CSRF of the recorder dashboard in headless Chromium, against the
recorder listening on a non-loopback address of this machine with a user.

The login form (wrong then right password, back to the page asked for), the
dashboard's live WebSocket on the session cookie, an action sent with the page's
CSRF token, the same action refused once the token is gone, a hostile page's
form post refused, and signing out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.access import PASSWORD
from tests.browser import page_errors
from tests.recorder.test_access import STATION

TOKEN = "browser-token-" + "z" * 24
BEARER = {"Authorization": f"Bearer {TOKEN}"}
pytestmark = pytest.mark.timeout(120)
expect.set_options(timeout=10_000)


@pytest.fixture
def server(rec_settings: Any, live_server: Any, exposed_address: str) -> Iterator[Any]:
    """The recorder on `exposed_address` with the user ``dj`` (and an API token for the
    test's own setup calls), one station and one active schedule."""
    from taperoom.recorder.app import create_app
    from taperoom.recorder.context import build_services
    from taperoom.recorder.users import user_store

    services = build_services(rec_settings(host=exposed_address, api_token=TOKEN))
    user_store(services.db).add_user("dj", PASSWORD)
    try:
        srv = live_server(create_app(services=services), host=exposed_address)
        st = httpx.post(f"{srv.url}/api/streams", json=STATION, headers=BEARER).json()
        sc = httpx.post(f"{srv.url}/api/schedules", headers=BEARER, json={
            "stream_config_id": st["id"], "cron_expression": "0 21 * * *",
            "duration_minutes": 60})
        assert sc.status_code == 201
        srv.schedule_id = sc.json()["id"]
        yield srv
    finally:
        services.close()


@pytest.fixture
def page(browser_context: BrowserContext) -> Iterator[Page]:
    """A page in a fresh browser context; fails the test on uncaught page errors."""
    p = browser_context.new_page()
    errors = page_errors(p)
    p.on("dialog", lambda dialog: dialog.accept())
    yield p
    browser_context.close()
    assert not errors, f"JavaScript errors: {errors}"


def schedule_active(server: Any) -> bool:
    r = httpx.get(f"{server.url}/api/schedules/{server.schedule_id}", headers=BEARER)
    return bool(r.json()["is_active"])


@pytest.mark.slow
def test_sign_in_then_actions_carry_the_csrf_token(server: Any, page: Page) -> None:
    """Asking for /schedules leads to the login form; a wrong password is refused there;
    the right one leads back to /schedules, whose live status connects; Deactivate
    works with the page's token and Activate fails once the token is removed; signing
    out ends the session."""
    page.goto(server.url + "/schedules")
    expect(page).to_have_url(server.url + "/login?next=/schedules")
    page.get_by_label("User name").fill("dj")
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(server.url + "/schedules")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    expect(page.locator(".signed-in")).to_contain_text("dj")

    page.get_by_role("button", name="Deactivate").click()
    expect(page.locator("#flash")).to_contain_text("Schedule deactivated")
    assert schedule_active(server) is False

    page.evaluate("document.querySelector('meta[name=\"csrf-token\"]').remove()")
    page.get_by_role("button", name="Activate").click()
    expect(page.locator("#flash")).to_contain_text("CSRF")
    assert schedule_active(server) is False

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(server.url + "/login")
    page.goto(server.url + "/streams")
    expect(page).to_have_url(server.url + "/login?next=/streams")


@pytest.mark.slow
def test_hostile_page_form_post_is_refused(server: Any, page: Page) -> None:
    """A page of another site (served here through Playwright's routing) that posts a
    form to the recorder, even while the user is signed in, gets 403; the schedule
    stays active."""
    page.goto(server.url + "/login")
    page.get_by_label("User name").fill("dj")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(server.url + "/")

    target = f"{server.url}/api/schedules/{server.schedule_id}/deactivate"
    html = (f'<form id="f" method="post" action="{target}"><input name="x" value="1"></form>'
            '<script>document.getElementById("f").submit()</script>')
    page.route("http://evil.example/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body=html))
    with page.expect_response(target) as answer:
        page.goto("http://evil.example/radio.html")
    assert answer.value.status == 403
    assert schedule_active(server) is True
