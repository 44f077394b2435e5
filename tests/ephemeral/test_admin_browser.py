"""The curator's page (/admin) in a real browser: headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright) against a live server on 127.0.0.1, with a
real recording from the shared corpus. Every wait is on a condition of the page."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from taperoom.ephemeral.app import create_app
from taperoom.ephemeral.settings import EphemeralSettings
from tests.browser import page_errors
from tests.wavgen import tone, write_wav

TOKEN = "curator-secret"
WAV = "06 - John Garner - Partita No. 1 in B minor: Tempo di Borea (BWV1002).wav"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    """Downloads allowed (the backup)."""
    return {"accept_downloads": True, "viewport": {"width": 1100, "height": 900}}


def _start(eph_settings: Callable[..., EphemeralSettings], live_server: Callable[[Any], Any],
           **overrides: Any) -> tuple[str, EphemeralSettings]:
    settings = eph_settings(**{"admin_token": TOKEN, "keep_originals": True,
                               "degrade_rate_limit": "off", "degradation_rate": 50.0,
                               **overrides})
    return live_server(create_app(settings)).url, settings


def _page(context: BrowserContext) -> tuple[Page, list[str]]:
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors = page_errors(page)
    page.on("dialog", lambda dialog: dialog.accept())
    return page, errors


def _sign_in(page: Page, url: str, token: str = TOKEN) -> None:
    page.goto(f"{url}/admin")
    page.get_by_label("Admin token").fill(token)
    page.get_by_label("Admin token").press("Enter")  # the keyboard signs in


def _row(page: Page, filename: str) -> Any:
    return page.locator(f'tr[data-filename="{filename}"]')


def _idle(page: Page) -> None:
    page.wait_for_function("document.body.dataset.busy === '0'")


def test_curator_signs_in_uploads_sets_a_wear_model_resets_backs_up_restores_signs_out(
        browser_context: BrowserContext, eph_settings: Callable[..., EphemeralSettings],
        live_server: Callable[[Any], Any], corpus: Path, tmp_path: Path) -> None:
    """The whole round of the page, checked against the server's files and API."""
    url, settings = _start(eph_settings, live_server)
    page, errors = _page(browser_context)
    _sign_in(page, url)
    expect(page.get_by_role("heading", name="Tracks")).to_be_visible()
    cookies = {c["name"]: c for c in browser_context.cookies()}
    session = cookies["taperoom_ephemeral_admin"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    expect(page.locator("#tracks")).to_have_attribute("data-loaded", "0")

    # upload a real recording
    src = corpus / "scanner" / "real_music_tagged" / WAV
    page.set_input_files("#upload-file", str(src))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_test_id("status")).to_have_text(f"{WAV} added.")
    expect(_row(page, WAV)).to_be_visible()
    assert (settings.audio_dir / WAV).read_bytes() == src.read_bytes()

    # choose a wear model with the keyboard-usable select
    select = page.get_by_label(f"Wear model of {WAV}")
    select.select_option("lowpass")
    expect(page.get_by_test_id("status")).to_have_text(f"{WAV} now wears with lowpass.")
    with httpx.Client(base_url=url, timeout=30) as client:
        rows = client.get("/admin/api/tracks",
                          headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert rows[0]["wear_model"] == "lowpass"
        for _ in range(2):
            for i in range(6):
                assert client.post(f"/degrade/{quote(WAV)}", json={"segment_index": i}
                                   ).status_code == 200
    worn = (settings.audio_dir / WAV).read_bytes()
    assert worn != src.read_bytes()

    # back up the worn state
    page.reload()
    expect(_row(page, WAV).get_by_test_id("worn")).not_to_have_text("0.0 %")
    with page.expect_download() as download:
        page.get_by_test_id("backup").click()
    archive = tmp_path / "backup.tar"
    download.value.save_as(archive)
    with tarfile.open(archive) as tar:
        assert f"audio/{WAV}" in tar.getnames()

    # reset: pristine again
    _row(page, WAV).get_by_test_id("reset").click()
    expect(page.get_by_test_id("status")).to_have_text(f"{WAV} is pristine again.")
    expect(_row(page, WAV).get_by_test_id("worn")).to_have_text("0.0 %")
    assert (settings.audio_dir / WAV).read_bytes() == src.read_bytes()

    # restore the backup: worn again, with its wear model
    page.set_input_files("#restore-file", str(archive))
    page.get_by_role("button", name="Restore", exact=True).click()
    expect(page.get_by_test_id("status")).to_have_text("Restored 1 tracks; removed 0.")
    expect(_row(page, WAV).get_by_test_id("worn")).not_to_have_text("0.0 %")
    expect(page.get_by_label(f"Wear model of {WAV}")).to_have_value("lowpass")
    assert (settings.audio_dir / WAV).read_bytes() == worn

    # delete it
    _row(page, WAV).get_by_test_id("delete").click()
    expect(page.get_by_test_id("status")).to_have_text(f"{WAV} deleted.")
    expect(_row(page, WAV)).to_have_count(0)
    assert not (settings.audio_dir / WAV).exists()

    _idle(page)
    # sign out: back to the form, and the old cookie no longer opens the API
    page.get_by_test_id("logout").click()
    expect(page.get_by_label("Admin token")).to_be_visible()
    with httpx.Client(base_url=url, timeout=10,
                      cookies={"taperoom_ephemeral_admin": session["value"]}) as client:
        assert client.get("/admin/api/tracks").status_code == 401
    assert not errors


def test_a_change_without_the_pages_csrf_token_is_refused(
        browser_context: BrowserContext, eph_settings: Callable[..., EphemeralSettings],
        live_server: Callable[[Any], Any]) -> None:
    """From the signed-in page, a fetch that carries the cookie but not the CSRF token
    (as a forged request would) is 403 and changes nothing; with it, it works."""
    url, settings = _start(eph_settings, live_server)
    write_wav(settings.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)
    page, errors = _page(browser_context)
    _sign_in(page, url)
    expect(_row(page, "a.wav")).to_be_visible()
    status = page.evaluate("""() => fetch('/admin/api/tracks/a.wav', {method: 'PUT',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({wear_model: 'noise'})}).then(r => r.status)""")
    assert status == 403
    status = page.evaluate("""() => fetch('/admin/api/tracks/a.wav', {method: 'DELETE',
        headers: {'X-CSRF-Token': 'forged'}}).then(r => r.status)""")
    assert status == 403
    assert (settings.audio_dir / "a.wav").exists()
    status = page.evaluate("""() => fetch('/admin/api/tracks/a.wav', {method: 'PUT',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token':
                  document.querySelector('meta[name=csrf-token]').content},
        body: JSON.stringify({wear_model: 'noise'})}).then(r => r.status)""")
    assert status == 200
    page.reload()
    expect(page.get_by_label("Wear model of a.wav")).to_have_value("noise")
    assert not errors


def test_a_wrong_token_does_not_sign_in(
        browser_context: BrowserContext, eph_settings: Callable[..., EphemeralSettings],
        live_server: Callable[[Any], Any]) -> None:
    """A wrong token shows the error on the form and sets no session cookie."""
    url, _ = _start(eph_settings, live_server)
    page, errors = _page(browser_context)
    _sign_in(page, url, token="not-the-token")
    expect(page.get_by_test_id("login-error")).to_have_text("Wrong token.")
    assert "taperoom_ephemeral_admin" not in {c["name"] for c in browser_context.cookies()}
    assert page.request.get(f"{url}/admin/api/tracks").status == 401
    assert not errors


def test_no_admin_token_no_page(
        browser_context: BrowserContext, eph_settings: Callable[..., EphemeralSettings],
        live_server: Callable[[Any], Any]) -> None:
    """Without ADMIN_TOKEN the browser finds no curator's page: 404."""
    url, _ = _start(eph_settings, live_server, admin_token="")
    page, _ = _page(browser_context)
    response = page.goto(f"{url}/admin")
    assert response is not None and response.status == 404
