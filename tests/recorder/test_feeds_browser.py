"""Podcast feeds in headless Chromium (Debian's ``/usr/bin/chromium`` through
Playwright) against the recorder on a real uvicorn server on 127.0.0.1: an
``<audio>`` element plays a feed's enclosure and seeks in it (served by ranges), and
the dashboard shows a copyable feed link whose "New link" button rotates the token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import feedparser
import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser import page_errors
from tests.conftest import LiveServer
from tests.recorder.feedkit import make_recording
from tests.recorder.streamserver import StreamMedia

STATION = {"name": "KUVO Jazz", "stream_url": "http://127.0.0.1:9/jazz", "artist": "KUVO",
           "album": "Jazz Nights", "album_artist": "KUVO 89.3"}
pytestmark = pytest.mark.timeout(120)
expect.set_options(timeout=15_000)


@pytest.fixture
def page(browser_context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on uncaught errors and accepts dialogs."""
    p = browser_context.new_page()
    errors = page_errors(p)
    p.on("dialog", lambda dialog: dialog.accept())
    yield p
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def station(rec_server: LiveServer) -> dict[str, Any]:
    r = httpx.post(f"{rec_server.url}/api/streams", json=STATION)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_audio_element_plays_an_enclosure_and_seeks_by_ranges(
        rec_services: Any, rec_server: LiveServer, stream_media: StreamMedia,
        station: dict[str, Any], page: Page) -> None:
    """A 90 s recording's enclosure from the parsed feed plays in <audio>; after a seek
    to 60 s the clock runs on from there; Chromium's requests were answered with 206."""
    make_recording(rec_services, stream_media, station,
                   start=datetime(2025, 10, 3, 3, 0, tzinfo=UTC), seconds=90)
    feed = feedparser.parse(httpx.get(station["feed_url"]).content)
    href = feed.entries[0].enclosures[0].href
    answers: list[tuple[int, str | None]] = []
    page.on("response", lambda r: answers.append((r.status, r.request.headers.get("range")))
            if r.url == href else None)
    page.goto(rec_server.url + "/static/recorder.css")  # any page of the server's origin
    page.set_content(f'<audio id="a" preload="auto" src="{href}"></audio>')
    state = page.evaluate("""async () => {
        const a = document.getElementById('a');
        await a.play();
        const until = (test) => new Promise((resolve, reject) => {
            const t0 = performance.now();
            (function check() {
                if (a.error) return reject(new Error('media error ' + a.error.code));
                if (test()) return resolve();
                if (performance.now() - t0 > 20000) return reject(new Error('timed out'));
                setTimeout(check, 50);
            })();
        });
        await until(() => a.currentTime > 0.3);
        const duration = a.duration;
        const seeked = new Promise((resolve) => a.addEventListener('seeked', resolve,
                                                                    {once: true}));
        a.currentTime = 60;
        await seeked;
        const after = a.currentTime;
        await until(() => a.currentTime > 60.5);
        a.pause();
        return {duration, after, now: a.currentTime, paused: a.paused};
    }""")
    assert 89 < state["duration"] < 91, state
    assert 59.5 < state["after"] < 61, state
    assert 60.5 < state["now"] < 75, state
    assert any(status == 206 for status, _ in answers), answers
    assert all(status in (200, 206) for status, _ in answers), answers


def test_dashboard_shows_a_copyable_feed_link_and_rotates_it(
        rec_server: LiveServer, station: dict[str, Any], page: Page,
        browser_context: BrowserContext) -> None:
    """The station page shows the feed link of the API object; "Copy link" puts it on
    the clipboard; "New link" rotates the token (the old link is a 404 from then on)
    and the page shows the new link. The stations page shows the feed of all stations."""
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"],
                                      origin=rec_server.url)
    old = station["feed_url"]
    page.goto(f"{rec_server.url}/streams/{station['id']}/edit")
    link = page.get_by_label("Podcast feed link")
    expect(link).to_have_value(old)
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#flash")).to_contain_text("Link copied")
    assert page.evaluate("navigator.clipboard.readText()") == old
    page.get_by_role("button", name="New link").click()
    expect(link).not_to_have_value(old)
    new = link.input_value()
    assert httpx.get(old).status_code == 404
    assert httpx.get(new).status_code == 200
    api = httpx.get(f"{rec_server.url}/api/streams/{station['id']}").json()
    assert api["feed_url"] == new

    page.goto(f"{rec_server.url}/streams")
    everything = page.get_by_label("Podcast feed of all stations link")
    expect(everything).to_have_value(
        httpx.get(f"{rec_server.url}/api/feeds").json()["all_feed_url"])
    assert httpx.get(everything.input_value()).status_code == 200
