"""Live wear in a real browser: a play anywhere repaints every open player, without polling.

Headless Chromium (Playwright) opens ``/player`` twice, in two browser contexts,
on a live server with a real recording of the shared corpus. Plays made by one
page (real playback) or by a plain HTTP client repaint the other page's waveform
from the server's pushes; that page sends no request meanwhile.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import httpx
import pytest
from playwright.sync_api import Browser, Request

from taperoom.ephemeral.app import create_app
from tests.ephemeral.test_player_browser import PLAYER, PlayerPage

TRACK = "06 - John Garner - Partita No. 1 in B minor: Tempo di Borea (BWV1002).wav"
RATE = 25.0  # percent per play: one play shows in the wear colours

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


@pytest.fixture
def server(corpus: Path, eph_settings: Callable[..., Any],
           live_server: Callable[[Any], Any]) -> Any:
    """The ephemeral app serving one corpus recording."""
    settings = eph_settings(degrade_rate_limit="off", degradation_rate=RATE)
    settings.audio_dir.mkdir(parents=True)
    shutil.copyfile(corpus / "scanner" / "real_music_tagged" / TRACK, settings.audio_dir / TRACK)
    return live_server(create_app(settings))


@pytest.fixture
def tabs(browser: Browser) -> Iterator[Callable[[], PlayerPage]]:
    """Player tabs, each in a browser context of its own (closed after the test)."""
    contexts = []

    def open_tab() -> PlayerPage:
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        contexts.append(context)
        return PlayerPage(context)

    yield open_tab
    for context in contexts:
        context.close()


class RequestLog:
    """Every HTTP request a page's script makes from :meth:`start` on (paths only); the
    ``<audio>`` element's own loading of ``/stream`` (range requests whenever the browser
    wants more of the file) is not the player's doing and is left out."""

    def __init__(self, tab: PlayerPage) -> None:
        self.paths: list[str] = []
        self.on = False
        tab.page.on("request", self._seen)

    def _seen(self, request: Request) -> None:
        if self.on and request.resource_type != "media":
            self.paths.append(urlparse(request.url).path)

    def start(self) -> None:
        self.on = True


def open_player(tab: PlayerPage, url: str, channel: str) -> None:
    """Load /player, select the track and wait until its waveform and the track's own live
    channel are up: the channel's first message (``hello``, which sets ``seq``) has come,
    and with it the one read of /stats that a new subscription makes.

    ``state().live`` alone does not tell: it names the channel kind as soon as the
    selection opens the track's channel, while ``open`` still holds from the channel of
    every track that it replaced, before the new one has answered.
    """
    tab.page.goto(f"{url}/player")
    tab.page.get_by_test_id("track-button").first.click()
    tab.wait(f"{PLAYER}.state().waveformPoints > 0 && {PLAYER}.state().live === '{channel}'"
             f" && {PLAYER}.live.filename === {json.dumps(TRACK)} && {PLAYER}.live.seq !== null")
    assert not tab.state()["polling"]


def strip_pixel(tab: PlayerPage, seconds: float) -> list[int]:
    """Colour of the wear strip under `seconds`."""
    return tab.pixel(seconds, 0.995)


def counts(url: str) -> list[int]:
    r = httpx.get(f"{url}/stats/{quote(TRACK)}", timeout=10)
    r.raise_for_status()
    found: list[int] = r.json()["segment_play_counts"]
    return found


def test_a_play_in_one_page_repaints_the_other_without_polling(
        tabs: Callable[[], PlayerPage], server: Any) -> None:
    """Page B watches the track over a WebSocket. A plain HTTP play of segment 40, then
    2.6 s of real playback in page A, repaint B's waveform: B's counts equal /stats, the
    played segments changed colour and the others did not, and B sent no request at all
    meanwhile (the player polled /stats every 2 s before)."""
    a, b = tabs(), tabs()
    open_player(b, server.url, "socket")
    fresh = strip_pixel(b, 20.25)
    assert strip_pixel(b, 0.25) == fresh
    log = RequestLog(b)
    log.start()

    httpx.post(f"{server.url}/degrade/{quote(TRACK)}", json={"segment_index": 40}, timeout=10)
    b.wait(f"{PLAYER}.state().counts[40] === 1")
    assert strip_pixel(b, 20.25) != fresh

    open_player(a, server.url, "socket")
    a.page.get_by_test_id("play").click()
    a.play_until(2.6)
    a.pause()
    played = a.state()["posted"]
    assert played[:5] == [0, 1, 2, 3, 4]
    expected = counts(server.url)
    assert [i for i, n in enumerate(expected) if n] == sorted({*played, 40})
    b.wait(f"JSON.stringify({PLAYER}.state().counts) === '{expected}'".replace(" ", ""))
    assert b.state()["pushes"] == len(played) + 1
    assert strip_pixel(b, 0.25) != fresh
    assert strip_pixel(b, 12.25) == fresh
    assert b.page.get_by_test_id("waveform").get_attribute("data-counts") == \
        ",".join(map(str, expected))
    row = b.page.get_by_test_id("track-row").first
    stats = httpx.get(f"{server.url}/stats/{quote(TRACK)}", timeout=10).json()
    assert row.get_attribute("data-degradation") == str(stats["overall_degradation"])
    assert log.paths == [], f"page B polled: {log.paths}"
    assert b.errors == [] and a.errors == []


def test_without_websockets_the_player_follows_server_sent_events(
        tabs: Callable[[], PlayerPage], server: Any) -> None:
    """In a browser without WebSocket the player subscribes to /events/wear instead: HTTP
    plays repaint it, with no request from the page meanwhile."""
    b = tabs()
    b.page.add_init_script("delete window.WebSocket;")
    open_player(b, server.url, "events")
    fresh = strip_pixel(b, 5.25)
    log = RequestLog(b)
    log.start()
    for _ in range(2):
        httpx.post(f"{server.url}/degrade/{quote(TRACK)}", json={"segment_index": 10},
                   timeout=10)
    b.wait(f"{PLAYER}.state().counts[10] === 2")
    assert strip_pixel(b, 5.25) != fresh
    assert strip_pixel(b, 6.25) == fresh
    assert log.paths == [], f"the page polled: {log.paths}"
    assert b.errors == []


def test_when_the_server_goes_away_the_player_polls_and_resumes_live(
        tabs: Callable[[], PlayerPage], server: Any) -> None:
    """The live channel drops (the server closes every subscription): the player polls
    meanwhile, reopens the channel, and then stops polling; plays made while it was
    away show once it is back."""
    b = tabs()
    open_player(b, server.url, "socket")
    b.page.evaluate(f"{PLAYER}.live.channel.close(); {PLAYER}.live.failed("
                    f"{PLAYER}.live.channel, 'socket', true)")
    assert b.state()["polling"]
    httpx.post(f"{server.url}/degrade/{quote(TRACK)}", json={"segment_index": 3}, timeout=10)
    b.wait(f"{PLAYER}.state().live === 'socket' && !{PLAYER}.state().polling", timeout=15_000)
    b.wait(f"{PLAYER}.state().counts[3] === 1")
