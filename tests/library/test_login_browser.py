"""The library's login page in headless Chromium, against the library listening on a
non-loopback address of this machine with a user: sign in, call the API from the
page with and without the CSRF token of its meta tag, sign out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from taperoom.db import transaction
from taperoom.library import models
from tests.access import PASSWORD

pytestmark = pytest.mark.timeout(120)
expect.set_options(timeout=10_000)

CALL = """async ([url, token]) => {
  const headers = token ? {'X-CSRF-Token': token} : {};
  const res = await fetch(url, {method: 'POST', headers});
  return res.status;
}"""


@pytest.fixture
def page(browser_context: BrowserContext) -> Page:
    """A page in a fresh browser context (closed after the test)."""
    return browser_context.new_page()


@pytest.mark.slow
def test_library_sign_in_and_csrf_in_chromium(lib_settings: Any, live_server: Any,
                                              exposed_address: str, tmp_path: Path,
                                              page: Page) -> None:
    """Sign in on /login; fetch() from the page changes a track only with the meta
    tag's token; after signing out the API is 401 again."""
    from taperoom.library.app import create_app
    from taperoom.library.context import build_services
    from taperoom.library.users import user_store

    ctx = build_services(lib_settings(host=exposed_address))
    try:
        user_store(ctx.db).add_user("dj", PASSWORD)
        with transaction(ctx.db) as s:
            track = models.Track(file_path=str(tmp_path / "a.mp3"), title="A")
            s.add(track)
        srv = live_server(create_app(services=ctx), host=exposed_address)
        url = f"{srv.url}/api/tracks/{track.id}/mark-missing"

        page.goto(srv.url + "/login")
        page.get_by_label("User name").fill("dj")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("[data-field=user]")).to_have_text("dj")
        token = page.locator('meta[name="csrf-token"]').get_attribute("content")
        assert token
        assert page.evaluate(CALL, [url, ""]) == 403
        with ctx.db() as s:
            assert s.get(models.Track, track.id).is_missing == 0
        assert page.evaluate(CALL, [url, token]) == 200
        with ctx.db() as s:
            assert s.get(models.Track, track.id).is_missing == 1

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert page.evaluate(CALL, [url, token]) == 401
    finally:
        ctx.close()
