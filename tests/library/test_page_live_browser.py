"""The library's page keeps up with the server in headless Chromium against a real library
server: a list asked for again is not painted over by an earlier answer that comes late,
and after its live connection (``/ws``) comes back the page reads again what the events
it missed would have told it (the folders' scans, the track totals)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import APIResponse, Page, Route, WebSocketRoute, expect

from tests.library.pagekit import answers, count_answers, loops_with_a_copy, wait_answers
from tests.polling import wait_for

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
expect.set_options(timeout=20_000)


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    """A desktop window."""
    return {"viewport": {"width": 1400, "height": 900}}


@pytest.fixture
def music(tmp_path: Path) -> Path:
    """Three generated drum loops, one of them twice (a duplicate group): four tracks."""
    return loops_with_a_copy(tmp_path / "music")


def scanned(api: httpx.Client, folder: dict[str, Any]) -> bool:
    """Whether the folder's scan has ended (its status has the result)."""
    status = api.get(f"/api/scan/library/{folder['id']}/status").json()["data"]
    return not status["scanning"] and "lastResult" in status


def scan(api: httpx.Client, folder: dict[str, Any]) -> None:
    """Scan `folder` (a library folder) through the API and wait for the scan's end."""
    assert api.post(f"/api/scan/library/{folder['id']}",
                    json={"strategy": "hybrid"}).status_code == 202
    wait_for(lambda: scanned(api, folder), 60, f"the scan of {folder['path']}")


def add_and_scan(api: httpx.Client, path: Path) -> dict[str, Any]:
    """Add `path` as a library folder, scan it and wait for the scan's end; the folder."""
    folder: dict[str, Any] = api.post("/api/library/directories",
                                      json={"path": str(path)}).json()["data"]
    scan(api, folder)
    return folder


def test_a_late_list_of_duplicates_does_not_bring_back_a_resolved_group(
        services: Any, live_server: Any, page: Page, music: Path) -> None:
    """The list that "Find duplicates" asks for comes only after the group has been
    resolved and the list asked for then has been shown: the page keeps showing no group
    (it painted the late list over the newer one, and the resolved group came back)."""
    from taperoom.library.app import create_app

    url = live_server(create_app(services=services())).url
    with httpx.Client(base_url=url, timeout=30) as api:
        add_and_scan(api, music)
        assert len(api.get("/api/duplicates").json()["data"]) == 1

    asked: list[str] = []
    late: list[tuple[Route, APIResponse]] = []

    def duplicates(route: Route) -> None:
        asked.append(route.request.url)
        if len(asked) != 2:   # the list of the panel's opening, and the one after the resolve
            route.continue_()
            return
        # the search's list, as the server answers it now (with the group), held back
        late.append((route, route.fetch()))
        page.evaluate("window.__held = true")

    count_answers(page)
    page.route(lambda u: "/api/duplicates?" in u, duplicates)
    page.goto(url + "/")
    page.get_by_role("button", name="Duplicates").click()
    group = page.locator(".dupgroup")
    expect(group).to_have_count(1)
    page.get_by_role("button", name="Find duplicates").click()
    page.wait_for_function("window.__held === true")
    group.get_by_role("button", name="Keep the chosen copy").click()
    expect(page.get_by_text("No duplicates.")).to_be_visible()
    assert len(asked) == 3
    route, answer = late[0]
    route.fulfill(response=answer)
    wait_answers(page, "/api/duplicates?", 3)   # the late list has been read and acted on
    expect(group).to_have_count(0)
    expect(page.get_by_text("No duplicates.")).to_be_visible()


class Connection:
    """The page's ``/ws`` through ``page.route_web_socket``: events are passed on until
    :meth:`cut` (at once, or right after the next scan event has been passed on) closes
    the page's socket; new sockets are then refused (closed at once) until :meth:`restore`.

    Parameters
    ----------
    page : Page
        The page, before it opens the library.
    """

    def __init__(self, page: Page) -> None:
        self.refuse = False
        self.cut_on_scan = False
        self.sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        page.route_web_socket("**/ws", self._open)

    def _open(self, ws: WebSocketRoute) -> None:
        if self.refuse:
            ws.close()
            return
        server = ws.connect_to_server()
        self.sockets.append((ws, server))

        def to_page(message: str | bytes) -> None:
            if (ws, server) not in self.sockets:
                return
            ws.send(message)
            if self.cut_on_scan and isinstance(message, str) \
                    and '"library:directory:scan:' in message:
                self.cut()

        server.on_message(to_page)

    def cut(self, on_scan: bool = False) -> None:
        """Close the page's socket now, or after the next scan event (`on_scan`)."""
        if on_scan:
            self.cut_on_scan = True
            return
        self.refuse = True
        while self.sockets:
            ws, server = self.sockets.pop()
            ws.close()
            server.close()

    def restore(self) -> None:
        """Let the page connect again."""
        self.refuse = False
        self.cut_on_scan = False


@pytest.mark.parametrize("drop", ["while the scan runs", "before the scan starts"])
def test_the_page_reads_the_scan_again_after_its_live_connection_comes_back(
        services: Any, live_server: Any, page: Page, music: Path, drop: str) -> None:
    """The page's WebSocket drops right after the scan has started (or before it starts);
    the scan ends, its events are sent to nobody; once the page is connected again it shows
    the scan ended and the new totals (it kept showing the scan running, or no scan, and
    no tracks)."""
    from taperoom.library.app import create_app

    url = live_server(create_app(services=services())).url
    api = httpx.Client(base_url=url, timeout=30)
    folder = api.post("/api/library/directories", json={"path": str(music)}).json()["data"]
    connection = Connection(page)
    page.goto(url + "/")
    row = page.locator(f".folder[data-directory-id='{folder['id']}']")
    progress = page.get_by_role("progressbar", name=f"Scan of {folder['name']}")
    expect(row).to_contain_text("0 tracks")
    expect(page.locator(".live.on")).to_be_attached()
    if drop == "while the scan runs":
        connection.cut(on_scan=True)
        row.get_by_role("button", name="Scan", exact=True).click()
        expect(progress).to_be_visible()   # the scan's start was heard
    else:
        connection.cut()
    expect(page.locator(".live.on")).to_have_count(0)   # and then the connection dropped
    if drop == "before the scan starts":
        scan(api, folder)
    else:
        wait_for(lambda: scanned(api, folder), 60, "the scan of the loops")
    assert api.get("/api/tracks").json()["pagination"]["total"] == 4
    expect(progress).to_have_count(1 if drop == "while the scan runs" else 0)   # all it heard
    expect(page.locator("[data-field=total]")).to_have_text("0 tracks")
    connection.restore()
    expect(page.locator(".live.on")).to_be_attached()
    expect(row.locator(".scan-done")).to_have_text("Scan done: +4")
    expect(progress).to_have_count(0)
    expect(row).to_contain_text("4 tracks")
    expect(page.locator("[data-field=total]")).to_have_text("4 tracks")
    api.close()


def test_a_late_playlist_does_not_replace_the_one_picked_after_it(
        services: Any, live_server: Any, page: Page) -> None:
    """Playlist "First" is picked and its tracks are slow to come; "Second" is picked and
    shown; the late answer of "First" then leaves "Second" on the page (it replaced it,
    while "Second" stayed the one highlighted in the tree)."""
    from taperoom.library.app import create_app

    url = live_server(create_app(services=services())).url
    with httpx.Client(base_url=url, timeout=30) as api:
        first, second = (api.post("/api/playlists", json={"name": name}).json()["id"]
                         for name in ("First", "Second"))
    held: list[Route] = []
    count_answers(page)
    page.route(lambda u: u.endswith(f"/api/playlists/{first}"), lambda route: held.append(route))
    page.goto(url + "/")
    page.locator(f".pl[data-playlist-id='{first}']").click()
    page.locator(f".pl[data-playlist-id='{second}']").click()
    heading = page.locator("section.playlist h2")
    expect(heading).to_have_text("Second")
    assert len(held) == 1   # asked before the second playlist, so handed over before it
    held[0].fulfill(response=held[0].fetch())
    wait_answers(page, f"/api/playlists/{first}", 1)   # the late answer has been read
    expect(heading).to_have_text("Second")
    expect(page.locator(".pl.current")).to_have_attribute("data-playlist-id", str(second))


def test_the_open_playlist_shows_a_track_edited_elsewhere(
        services: Any, live_server: Any, page: Page, music: Path) -> None:
    """A track of the open playlist gets a new title and BPM through the API (another
    client, or the track view): the playlist's entry shows them, while an edit of a
    track that is not in it does not make it read itself again."""
    from taperoom.library.app import create_app

    url = live_server(create_app(services=services())).url
    with httpx.Client(base_url=url, timeout=30) as api:
        add_and_scan(api, music)
        ids = {t["title"]: t["id"] for t in api.get("/api/tracks").json()["data"]
               if "copy" not in t["file_path"]}
        pid = api.post("/api/playlists", json={"name": "Set"}).json()["id"]
        assert api.post(f"/api/playlists/{pid}/tracks",
                        json={"track_ids": [ids["Loop 120"]]}).status_code in (200, 201)

        count_answers(page)
        page.add_init_script("window.tracksChanged = []; window.addEventListener("
                             "'tracks-changed', (e) => window.tracksChanged.push(e.detail));")
        page.goto(url + "/")
        expect(page.locator(".live.on")).to_be_attached()
        page.locator(f".pl[data-playlist-id='{pid}']").click()
        entry = page.locator(f".entry[data-track-id='{ids['Loop 120']}']")
        expect(entry).to_contain_text("Loop 120")
        wait_answers(page, f"/api/playlists/{pid}", 1)

        # an edit of a track not in it: the page hears it, and does not read the playlist
        r = api.put(f"/api/tracks/{ids['Loop 122']}", json={"title": "Not in the set"})
        assert r.status_code == 200, r.text
        page.wait_for_function("window.tracksChanged.includes(" + json.dumps(ids["Loop 122"])
                               + ")")
        page.evaluate("() => new Promise((done) => setTimeout(done, 1000))")  # > its wait
        assert answers(page, f"/api/playlists/{pid}") == 1

        r = api.put(f"/api/tracks/{ids['Loop 120']}", json={"title": "Opener", "bpm": 121.5})
        assert r.status_code == 200, r.text
        expect(entry).to_contain_text("Opener")
        expect(entry).to_contain_text("121.5")


def test_the_duplicates_panel_follows_groups_resolved_and_found_elsewhere(
        services: Any, live_server: Any, page: Page, music: Path) -> None:
    """With the Duplicates panel open, another client resolves its group (the panel shows
    none), then a scan finds a new pair (the panel shows it), without a click."""
    from taperoom.library.app import create_app

    url = live_server(create_app(services=services())).url
    with httpx.Client(base_url=url, timeout=30) as api:
        folder = add_and_scan(api, music)
        [group] = api.get("/api/duplicates").json()["data"]

        page.goto(url + "/")
        expect(page.locator(".live.on")).to_be_attached()
        page.get_by_role("button", name="Duplicates").click()
        groups = page.locator(".dupgroup")
        expect(groups).to_have_count(1)

        r = api.post(f"/api/duplicates/{group['id']}/resolve", json={"deleteFiles": True})
        assert r.status_code == 200, r.text
        expect(page.get_by_text("No duplicates.")).to_be_visible()
        expect(groups).to_have_count(0)

        shutil.copyfile(music / "Loop 124.wav", music / "copies" / "Loop 124 copy.wav")
        scan(api, folder)
        expect(groups).to_have_count(1)
        expect(groups.locator(".copy")).to_have_count(2)
        expect(groups).to_contain_text("Loop 124")
