"""The ephemeral web player in a real browser: /player and the embed snippet.

Headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) loads the
player from a live server on 127.0.0.1, plays a generated 20 s tone and seeks in
it; the wear it reports is checked against ``GET /stats`` read with httpx.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from taperoom import __version__
from taperoom.ephemeral.app import create_app
from tests.browser import page_errors
from tests.wavgen import tone, write_wav

TRACK = "tone.wav"
SECONDS = 20.0
SEGMENT = 0.5
SEGMENTS = 40
RATE = 25.0  # percent per play: one play already shows in the wear colours
PLAYER = "TaperoomPlayer.instances[0]"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    """The player's tabs are 1000 × 900 CSS pixels."""
    return {"viewport": {"width": 1000, "height": 900}}


class PlayerPage:
    """A browser tab, with the console kept and helpers to read the player."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.errors = page_errors(self.page)
        self.console: list[tuple[str, str]] = []
        self.page.on("console", lambda msg: self.console.append((msg.type, msg.text)))

    def state(self, n: int = 0) -> dict[str, Any]:
        """What player `n` believes (``TaperoomPlayer.instances[n].state()``)."""
        state: dict[str, Any] = self.page.evaluate(f"TaperoomPlayer.instances[{n}].state()")
        return state

    def wait(self, expression: str, timeout: float = 10_000) -> None:
        """Wait until the JavaScript `expression` is truthy."""
        self.page.wait_for_function(expression, timeout=timeout)

    def play_until(self, seconds: float) -> None:
        """Wait until player 0's playhead reaches `seconds`."""
        self.wait(f"{PLAYER}.audio.currentTime >= {seconds}")

    def pause(self) -> float:
        """Press the play/pause button, wait for every /degrade answer; the paused time."""
        self.page.get_by_test_id("play").first.click()
        self.wait(f"{PLAYER}.playBtn.dataset.state === 'paused' && {PLAYER}.state().pending === 0")
        return float(self.state()["currentTime"])

    def pixel(self, seconds: float, row: float) -> list[int]:
        """RGBA of the waveform canvas at time `seconds`, `row` (0..1) of its height."""
        pixel: list[int] = self.page.evaluate(
            """([t, row]) => {
                const p = TaperoomPlayer.instances[0], c = p.canvas;
                const x = Math.floor(t / p.duration() * c.width);
                const y = Math.min(c.height - 1, Math.floor(row * c.height));
                return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);
            }""", [seconds, row])
        return pixel

    def drawn_fraction(self) -> float:
        """Share of the waveform canvas's pixels that are not transparent."""
        fraction: float = self.page.evaluate(
            """() => {
                const c = TaperoomPlayer.instances[0].canvas;
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                return n / (c.width * c.height);
            }""")
        return fraction


@pytest.fixture
def tab(browser_context: BrowserContext) -> PlayerPage:
    """A page in the test's fresh browser context (closed after the test)."""
    return PlayerPage(browser_context)


@pytest.fixture
def ephemeral(eph_settings: Callable[..., Any], live_server: Callable[[Any], Any]
              ) -> Callable[..., Any]:
    """Start the ephemeral app with a 20 s stereo tone; keyword overrides go to the settings."""

    def start(**overrides: Any) -> Any:
        settings = eph_settings(**{"degrade_rate_limit": "off", "degradation_rate": RATE,
                                   **overrides})
        settings.audio_dir.mkdir(parents=True, exist_ok=True)
        write_wav(settings.audio_dir / TRACK, tone(SECONDS, 44100, 2))
        return live_server(create_app(settings))

    return start


def server_counts(url: str) -> list[int]:
    """``segment_play_counts`` of the tone, from the server."""
    r = httpx.get(f"{url}/stats/{TRACK}", timeout=5)
    r.raise_for_status()
    counts: list[int] = r.json()["segment_play_counts"]
    return counts


def expected_counts(played: list[int]) -> list[int]:
    """Per-segment counts when each index in `played` was worn once."""
    return [played.count(i) for i in range(SEGMENTS)]


@pytest.mark.slow
def test_player_lists_plays_seeks_and_wears_only_the_played_segments(
        tab: PlayerPage, ephemeral: Callable[..., Any]) -> None:
    """/player lists the track, really plays it and wears exactly what was heard.

    Asserts: the page lists the track (title, duration) with the version filled
    in; the waveform canvas is drawn; the audio clock advances in step with wall
    time; after ~2.2 s and a pause, /stats counts 1 for segments 0..floor(t/0.5)
    (at least 0..3) and 0 for every later segment; after a click on the waveform
    at 12.25 s and ~1 s more of playback, segments 24..26 count 1 and every segment
    skipped by the seek still counts 0; the page's posted segments and believed
    counts equal /stats; played segments change colour on the canvas while
    unplayed ones keep the fresh colour.
    """
    srv = ephemeral()
    page = tab.page
    page.goto(f"{srv.url}/player")
    row = page.get_by_test_id("track-row")
    row.first.wait_for()
    assert row.count() == 1
    assert row.first.get_attribute("data-filename") == TRACK
    assert "tone" in row.first.inner_text()
    assert "0:20" in row.first.inner_text()
    html = page.content()
    assert "{{version}}" not in html
    assert f"embed.js?v={__version__}" in html
    assert tab.state()["api"] == srv.url

    page.get_by_test_id("track-button").first.click()
    # the peaks and the wear come by separate requests, and the canvas is drawn with the
    # peaks only once both have come (data-drawn): wait for that drawing, not the peaks
    tab.wait(f"{PLAYER}.state().waveformPoints > 0 && {PLAYER}.state().totalSegments === "
             f"{SEGMENTS} && {PLAYER}.canvas.dataset.drawn === 'true'")
    assert page.get_by_test_id("track-button").first.get_attribute("aria-pressed") == "true"
    assert tab.drawn_fraction() > 0.5, "the waveform canvas is blank"
    fresh = tab.pixel(15.25, 0.4)
    assert fresh[3] == 255
    assert tab.pixel(0.75, 0.4) == fresh, "nothing played yet, yet colours differ"

    # Play ~2.2 s from the start.
    play = page.get_by_test_id("play")
    assert play.get_attribute("aria-label") == "Play"
    play.click()
    tab.play_until(0.3)
    # the audio clock against the page's own clock over 1 s, both read in the page (a
    # loaded machine delays the round trips to the test, not the clocks)
    rate = page.evaluate("""async () => {
        const a = TaperoomPlayer.instances[0].audio;
        const t0 = a.currentTime, w0 = performance.now();
        await new Promise((done) => setTimeout(done, 1000));
        return (a.currentTime - t0) / ((performance.now() - w0) / 1000);
    }""")
    assert 0.5 <= rate <= 1.5, f"the audio clock runs at {rate:.2f} times real time"
    assert play.get_attribute("aria-label") == "Pause"
    tab.play_until(2.2)
    paused_at = tab.pause()
    assert "Paused" in page.get_by_test_id("status").inner_text()
    last = math.floor(paused_at / SEGMENT)
    assert 4 <= last <= 7, f"paused at {paused_at}"
    counts = server_counts(srv.url)
    assert all(counts[i] > 0 for i in range(4))
    assert counts == expected_counts(list(range(last + 1))), (paused_at, counts)
    state = tab.state()
    assert state["posted"] == list(range(last + 1))
    assert state["counts"] == counts
    assert page.get_by_test_id("waveform").get_attribute("data-counts") == \
        ",".join(map(str, counts))
    worn = tab.pixel(0.75, 0.4)
    assert worn != fresh, "a played segment kept the fresh colour"
    assert tab.pixel(0.75, 0.995) != tab.pixel(15.25, 0.995), "the wear strip did not change"
    assert tab.pixel(15.25, 0.4) == fresh

    # Resume, then jump to 12.25 s with a click on the waveform while playing.
    play.click()
    tab.wait(f"{PLAYER}.audio.currentTime >= {paused_at + 0.3}")
    box = page.get_by_test_id("waveform").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 12.25 / SECONDS, box["y"] + box["height"] / 2)
    tab.wait(f"{PLAYER}.audio.currentTime >= 12")
    tab.play_until(13.2)
    paused_at = tab.pause()
    end = math.floor(paused_at / SEGMENT)
    assert 26 <= end <= 29, f"paused at {paused_at}"

    posted = tab.state()["posted"]
    split = next(i for i, s in enumerate(posted) if s >= 24)
    before, after = posted[:split], posted[split:]
    assert before == list(range(len(before))) and 5 <= len(before) <= 12, posted
    assert after == list(range(24, end + 1)), posted
    counts = server_counts(srv.url)
    assert counts == expected_counts(posted), (posted, counts)
    assert counts[24] == counts[25] == 1
    assert all(counts[i] == 0 for i in range(len(before), 24)), counts
    assert all(counts[i] == 0 for i in range(end + 1, SEGMENTS)), counts
    assert tab.state()["counts"] == counts
    assert tab.pixel(12.25, 0.4) != fresh
    assert tab.pixel(8.25, 0.4) == fresh, "a segment skipped by the seek changed colour"
    assert tab.errors == []
    assert [text for kind, text in tab.console if kind == "error"] == []


@pytest.mark.slow
def test_refused_degrade_is_ignored_and_playback_goes_on(
        tab: PlayerPage, ephemeral: Callable[..., Any]) -> None:
    """A 429 from /degrade is logged to the console and does not stop the player.

    With a limit of one /degrade a minute, asserts: playback runs past 2 s, the page
    posted every segment it played, only segment 0 was counted by the server, the
    page's counts equal /stats, refusals are logged as console messages naming HTTP
    429, and no script error was raised.
    """
    srv = ephemeral(degrade_rate_limit="1/minute")
    page = tab.page
    page.goto(f"{srv.url}/player")
    page.get_by_test_id("track-button").first.click()
    tab.wait(f"{PLAYER}.state().waveformPoints > 0")
    page.get_by_test_id("play").click()
    tab.play_until(2.1)
    paused_at = tab.pause()
    last = math.floor(paused_at / SEGMENT)
    state = tab.state()
    assert state["posted"] == list(range(last + 1))
    counts = server_counts(srv.url)
    assert counts == expected_counts([0])
    assert state["counts"] == counts
    assert state["acked"] == 1
    refusals = [text for kind, text in tab.console if "HTTP 429" in text and kind == "info"]
    assert len(refusals) == last
    assert tab.errors == []


SNIPPET_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Someone else's site</title>
<link rel="icon" href="data:,"></head>
<body>
<h1>A post with a player in it</h1>
<div id="taperoom-player" data-api="{api}"></div>
<div data-taperoom-player></div>
<script src="{api}/static/embed.js"></script>
</body></html>
"""


@pytest.mark.slow
def test_embed_snippet_works_from_another_origin(
        tab: PlayerPage, ephemeral: Callable[..., Any],
        live_server: Callable[[Any], Any]) -> None:
    """The 2-line snippet on a page of another origin lists, plays and wears (CORS).

    Asserts: both containers (``data-api`` given, and API taken from the script's
    own address) list the track from the API server; the stylesheet is injected
    and applied; keyboard only (Enter on the track, Space on the play button)
    selects and plays it; the cross-origin ``POST /degrade`` calls (JSON, so
    preflighted) are counted by the server; the console shows no error.
    """
    api = ephemeral()

    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse(SNIPPET_PAGE.format(api=api.url))

    site = live_server(Starlette(routes=[Route("/", home)]))
    assert site.url != api.url
    page = tab.page
    page.goto(f"{site.url}/")
    rows = page.get_by_test_id("track-row")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    assert all(rows.nth(i).get_attribute("data-filename") == TRACK for i in range(2))
    assert tab.state(0)["api"] == api.url
    assert tab.state(1)["api"] == api.url
    assert page.evaluate("document.querySelectorAll('link[data-taperoom-css]').length") == 1
    tab.wait("getComputedStyle(document.querySelector('.trp')).backgroundColor "
             "=== 'rgb(20, 22, 27)'")

    page.get_by_test_id("track-button").first.focus()
    page.keyboard.press("Enter")
    tab.wait(f"{PLAYER}.state().waveformPoints > 0")
    page.get_by_test_id("play").first.focus()
    page.keyboard.press("Space")
    tab.wait(f"{PLAYER}.state().acked >= 2")
    page.keyboard.press("Space")
    tab.wait(f"{PLAYER}.playBtn.dataset.state === 'paused' && {PLAYER}.state().pending === 0")
    state = tab.state()
    counts = server_counts(api.url)
    assert counts == expected_counts(state["posted"])
    assert sum(counts) >= 2
    assert state["counts"] == counts
    assert tab.errors == []
    assert [text for kind, text in tab.console if kind == "error"] == []
