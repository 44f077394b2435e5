"""The analytics page in a real browser: its charts draw the plays and the wear.

Headless Chromium (Playwright) opens ``/analytics`` on a live server with two
recordings of the shared corpus that were played through ``POST /degrade``.
The charts (Chart.js, served by the app) hold the figures of ``/api/analytics``
and paint their canvases; a new play reaches the open page over ``/ws/wear``.
Nothing is loaded from any other host. Each test saves a screenshot in its
tmp folder and prints its path.

The page never shows fewer plays than the server counted once its live channel
is up: Playwright's WebSocket routing holds the connection to the server (or
its first message) and drops it, while plays are made through the real API.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import httpx
import pytest
from playwright.sync_api import APIResponse, BrowserContext, Page, Route, WebSocketRoute, expect

from taperoom.ephemeral.app import create_app
from tests.polling import wait_for

TAGGED = ("scanner", "real_music_tagged")
GARNER = "06 - John Garner - Partita No. 1 in B minor: Tempo di Borea (BWV1002).wav"
DANCE = ("14 - various (librosa example data) - Hungarian Dance number 5 - Allegro in F sharp "
         "minor (string orchestra).wav")
STATE = "window.taperoomAnalytics.state()"
WAIT_MS = 20_000

pytestmark = [pytest.mark.timeout(90)]


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    return {"viewport": {"width": 1000, "height": 1100}}


@pytest.fixture
def server(corpus: Path, eph_settings: Callable[..., Any],
           live_server: Callable[[Any], Any]) -> Any:
    """The ephemeral app serving two corpus recordings, worn 8 and 3 times."""
    settings = eph_settings(degrade_rate_limit="off", degradation_rate=20.0)
    settings.audio_dir.mkdir(parents=True)
    for name in (GARNER, DANCE):
        shutil.copyfile(corpus.joinpath(*TAGGED, name), settings.audio_dir / name)
    srv = live_server(create_app(settings))
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        for name, plays in ((GARNER, 8), (DANCE, 3)):
            for i in range(plays):
                r = client.post(f"/degrade/{quote(name)}", json={"segment_index": i % 4})
                assert r.status_code == 200, r.text
    return srv


def stats(url: str, name: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/stats/{quote(name)}", timeout=10)
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


def painted(page: Page, testid: str) -> int:
    """Pixels of the canvas that the chart painted (alpha > 0)."""
    count: int = page.evaluate(
        """(id) => {
          const c = document.querySelector(`[data-testid=${id}]`);
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
          return n;
        }""", testid)
    return count


def bar_pixels(page: Page) -> int:
    """Pixels of the plays chart in the bars' colour (the page's accent, #4fd1c5)."""
    count: int = page.evaluate(
        """() => {
          const c = document.querySelector('[data-testid=plays-chart]');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4)
            if (d[i] === 0x4f && d[i + 1] === 0xd1 && d[i + 2] === 0xc5 && d[i + 3] === 255) n++;
          return n;
        }""")
    return count


def open_page(context: BrowserContext, url: str, hosts: list[str]) -> Page:
    """A new tab that records the host of every request it makes."""
    page = context.new_page()
    page.on("request", lambda request: hosts.append(urlparse(request.url).netloc))
    page.goto(url)
    page.wait_for_function(f"{STATE}.loads > 0 && {STATE}.live === 'on'", timeout=WAIT_MS)
    return page


def shoot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    print(f"screenshot: {path}")


def test_all_tracks_page_draws_plays_and_wear_and_follows_new_plays(
        browser_context: BrowserContext, server: Any, tmp_path: Path) -> None:
    """/analytics for all tracks: the bar chart holds the 11 plays and paints bars, the
    line chart ends at the mean wear of the two tracks, the table lists both; one more
    play reaches the page by WebSocket and is drawn again; every request went to the app."""
    hosts: list[str] = []
    page = open_page(browser_context, f"{server.url}/analytics", hosts)
    state = page.evaluate(STATE)
    assert state["error"] is None
    assert state["totalPlays"] == 11 == sum(state["plays"])
    mean = (stats(server.url, GARNER)["overall_degradation"]
            + stats(server.url, DANCE)["overall_degradation"]) / 2
    assert state["degradation"][-1] == pytest.approx(mean)
    assert page.get_by_test_id("total-plays").inner_text() == "11"
    assert painted(page, "plays-chart") > 1000 and bar_pixels(page) > 50
    assert painted(page, "degradation-chart") > 1000
    rows = page.get_by_test_id("tracks-table").locator("tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("td").nth(1).inner_text() == "8"
    shoot(page, tmp_path, "analytics-all.png")

    r = httpx.post(f"{server.url}/degrade/{quote(DANCE)}", json={"segment_index": 9},
                   timeout=10)
    assert r.status_code == 200
    page.wait_for_function(f"{STATE}.totalPlays === 12", timeout=WAIT_MS)
    state = page.evaluate(STATE)
    assert state["pushes"] >= 1 and sum(state["plays"]) == 12
    assert bar_pixels(page) > 50
    assert set(hosts) == {urlparse(server.url).netloc}, hosts


def test_track_page_draws_its_wear_growing(browser_context: BrowserContext, server: Any,
                                           tmp_path: Path) -> None:
    """/analytics?filename=<track>: the charts hold that track's 8 plays and end at its
    /stats degradation; the JSON and CSV links name the track."""
    hosts: list[str] = []
    page = open_page(browser_context, f"{server.url}/analytics?filename={quote(GARNER)}", hosts)
    state = page.evaluate(STATE)
    assert state["totalPlays"] == 8 == sum(state["plays"])
    assert state["degradation"][-1] == stats(server.url, GARNER)["overall_degradation"]
    assert page.get_by_test_id("track-name").inner_text() == GARNER
    assert page.get_by_test_id("tracks-table").is_hidden()
    assert painted(page, "plays-chart") > 1000 and bar_pixels(page) > 50
    assert painted(page, "degradation-chart") > 1000
    csv_href = page.get_by_test_id("csv-link").get_attribute("href") or ""
    assert "format=csv" in csv_href and "filename=" in csv_href
    r = httpx.get(server.url + csv_href, timeout=10)
    assert r.status_code == 200 and r.text.startswith("bucket_start,")
    shoot(page, tmp_path, "analytics-track.png")
    assert set(hosts) == {urlparse(server.url).netloc}, hosts


def test_unknown_track_page_is_404_and_says_so(browser_context: BrowserContext,
                                               server: Any) -> None:
    """/analytics?filename=<unknown>: status 404, the page names the problem, no chart data."""
    page = browser_context.new_page()
    response = page.goto(f"{server.url}/analytics?filename=nope.wav")
    assert response is not None and response.status == 404
    assert "nope.wav" in page.get_by_test_id("error").inner_text()
    assert page.evaluate(f"{STATE}.loads") == 0


def play(url: str, name: str, segment: int) -> None:
    """One play of `name` through the real API."""
    r = httpx.post(f"{url}/degrade/{quote(name)}", json={"segment_index": segment}, timeout=10)
    assert r.status_code == 200, r.text


def until(page: Page, predicate: Callable[[], Any], what: str) -> Any:
    """Wait for a condition that Playwright's route handlers make true; each look is a
    call to the browser, during which Playwright runs the handlers."""
    return wait_for(lambda: page.evaluate("0") == 0 and predicate(), WAIT_MS / 1000, what)


def test_live_is_on_only_from_the_hello_and_a_play_made_before_it_is_shown(
        browser_context: BrowserContext, server: Any) -> None:
    """A play counted while the page's socket is open but not yet subscribed at the
    server is shown: the page is "live" only from the server's hello (sent once the
    subscription exists), and reads the figures again then."""
    routes: list[WebSocketRoute] = []
    held: list[str | bytes] = []
    page = browser_context.new_page()
    page.route_web_socket("**/ws/wear", lambda ws: routes.append(ws))   # not at the server yet
    page.goto(f"{server.url}/analytics")
    live, total = page.get_by_test_id("live"), page.get_by_test_id("total-plays")
    expect(total).to_have_text("11", timeout=WAIT_MS)
    until(page, lambda: routes, "the page to open its live channel")

    play(server.url, DANCE, 5)   # counted before the server has the subscription
    upstream = routes[0].connect_to_server()
    upstream.on_message(lambda message: held.append(message))   # the server's messages wait here
    until(page, lambda: held, "the server's first message")
    assert '"hello"' in str(held[0]) and len(held) == 1, held
    # the socket is open, but nothing the server sends has reached the page: not live
    expect(live).to_have_text("off", timeout=WAIT_MS)
    expect(total).to_have_text("11", timeout=WAIT_MS)

    upstream.on_message(lambda message: routes[0].send(message))
    routes[0].send(held[0])
    expect(live).to_have_text("on", timeout=WAIT_MS)
    expect(total).to_have_text("12", timeout=WAIT_MS)
    play(server.url, GARNER, 6)  # and the pushes go on after the hello
    expect(total).to_have_text("13", timeout=WAIT_MS)
    state = page.evaluate(STATE)
    assert state["hellos"] == 1 and state["pushes"] >= 1 and sum(state["plays"]) == 13


def test_plays_made_while_the_connection_was_lost_are_shown_after_the_reconnect(
        browser_context: BrowserContext, server: Any) -> None:
    """The connection drops; plays are counted before the page's next connection is
    subscribed; once it is, the page shows every one of them."""
    routes: list[WebSocketRoute] = []

    def route(ws: WebSocketRoute) -> None:
        routes.append(ws)
        if len(routes) == 1:
            ws.connect_to_server()   # the first connection goes through; later ones wait

    page = browser_context.new_page()
    page.route_web_socket("**/ws/wear", route)
    page.goto(f"{server.url}/analytics")
    live, total = page.get_by_test_id("live"), page.get_by_test_id("total-plays")
    expect(live).to_have_text("on", timeout=WAIT_MS)
    expect(total).to_have_text("11", timeout=WAIT_MS)

    routes[0].close()   # the page's connection (and its side at the server) is gone
    expect(live).to_have_text("off", timeout=WAIT_MS)
    play(server.url, DANCE, 7)
    play(server.url, GARNER, 8)
    until(page, lambda: len(routes) == 2, "the page to connect again")
    play(server.url, GARNER, 9)   # still before the new subscription
    expect(live).to_have_text("off", timeout=WAIT_MS)
    expect(total).to_have_text("11", timeout=WAIT_MS)

    routes[1].connect_to_server()
    expect(live).to_have_text("on", timeout=WAIT_MS)
    expect(total).to_have_text("14", timeout=WAIT_MS)
    rows = page.get_by_test_id("tracks-table").locator("tbody tr")
    expect(rows.nth(0).locator("td").nth(1)).to_have_text("10", timeout=WAIT_MS)
    expect(rows.nth(1).locator("td").nth(1)).to_have_text("4", timeout=WAIT_MS)
    assert page.evaluate(STATE)["hellos"] == 2


def test_an_answer_older_than_the_one_shown_is_not_drawn(
        browser_context: BrowserContext, server: Any) -> None:
    """The page's first reading of the figures is answered late, after the reading
    that the hello asked for: the older answer is dropped, the newer one stays."""
    routes: list[WebSocketRoute] = []
    late: list[tuple[Route, APIResponse]] = []

    def analytics(route: Route) -> None:
        if late:
            route.continue_()
        else:
            late.append((route, route.fetch()))   # the server's answer now, given later

    page = browser_context.new_page()
    page.route("**/api/analytics?*", analytics)
    page.route_web_socket("**/ws/wear", lambda ws: routes.append(ws))
    page.goto(f"{server.url}/analytics")
    until(page, lambda: late and routes, "the first reading and the live channel")
    assert late[0][1].json()["total_plays"] == 11

    play(server.url, DANCE, 5)
    routes[0].connect_to_server()
    total = page.get_by_test_id("total-plays")
    expect(total).to_have_text("12", timeout=WAIT_MS)
    late[0][0].fulfill(response=late[0][1])
    # both answers have been handled, each drawn (loads) or dropped as stale
    page.wait_for_function(f"{STATE}.loads + {STATE}.stale === 2", timeout=WAIT_MS)
    expect(total).to_have_text("12")
    state = page.evaluate(STATE)
    assert state["loads"] == 1 and state["totalPlays"] == 12 and state["error"] is None
