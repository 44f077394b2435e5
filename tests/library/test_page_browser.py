"""The library's page in headless Chromium against a real library server: add a folder
and watch its scan, search, open a track (waveform, beatgrid), set a hot cue, build a
playlist by drag and drop and reorder it, create a smart playlist, take a suggestion,
export a playlist, resolve a duplicate group. Each step saves a screenshot under the
test's tmp path (printed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.library.pagekit import loops_with_a_copy, shot
from tests.polling import wait_for

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
expect.set_options(timeout=20_000)


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    """A desktop window; downloads allowed (the export)."""
    return {"viewport": {"width": 1400, "height": 900}, "accept_downloads": True}


@pytest.fixture
def music(tmp_path: Path) -> Path:
    """Generated drum loops in one key at three tempos, one of them twice (a duplicate)."""
    return loops_with_a_copy(tmp_path / "music")


def test_prepare_a_set_in_the_page(services: Any, live_server: Any, page: Page,
                                   music: Path, tmp_path: Path) -> None:
    """Every flow of the page, one after the other, on one library."""
    from taperoom.library.app import create_app

    svc = services(analyze_on_scan=True)
    url = live_server(create_app(services=svc)).url
    api = httpx.Client(base_url=url, timeout=30)

    page.goto(url + "/")
    expect(page.get_by_role("button", name="Add folder…")).to_be_visible()
    # the scan's progress and its end reach the page only as live events: they are on
    expect(page.locator(".live.on")).to_be_attached()
    # add a folder through the picker, its scan runs with live progress
    page.get_by_role("button", name="Add folder…").click()
    page.get_by_label("Folder path").fill(str(music))
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".picker .path")).to_have_text(str(music.resolve()))
    page.get_by_role("button", name="Add this folder").click()
    expect(page.locator(".scan-done")).to_be_visible()
    expect(page.locator("[data-field=total]")).to_have_text("4 tracks")
    shot(page, tmp_path, "1-scanned")

    # analysis of the loops (waveforms, beats) runs in the background
    def analysed() -> bool:
        rows = api.get("/api/tracks", params={"is_analyzed": "true"}).json()
        return bool(rows["pagination"]["total"] == 4)

    wait_for(analysed, 180, "the analysis of the loops")
    ids = {t["title"]: t["id"] for t in api.get("/api/tracks").json()["data"]
           if "copy" not in t["file_path"]}

    # search as you type
    page.get_by_label("Search tracks").fill("loop 12")
    expect(page.locator(".rows .row")).to_have_count(4)
    page.get_by_label("Search tracks").fill("loop 124")
    expect(page.locator(".rows .row")).to_have_count(1)
    shot(page, tmp_path, "2-search")
    page.get_by_label("Search tracks").fill("")
    expect(page.locator(".rows .row")).to_have_count(4)

    # open a track: the waveform with its beatgrid and downbeats is drawn
    page.locator(f".rows .row[data-track-id='{ids['Loop 120']}']").dblclick()
    canvas = page.locator("canvas.waveform")
    # the waveform and the beats come by separate requests, in either order, and the
    # canvas is drawn again as each arrives: wait for the drawing that has both
    page.wait_for_function(
        "(() => { const c = document.querySelector('canvas.waveform');"
        " const d = c && c.dataset.drawn && JSON.parse(c.dataset.drawn);"
        " return !!d && d.bars > 100 && d.beats >= 10 && d.downbeats >= 2; })()")
    # set hot cue A at the play position (after seeking by a click on the waveform)
    box = canvas.bounding_box()
    assert box is not None
    canvas.click(position={"x": box["width"] * 0.25, "y": box["height"] / 2})
    page.get_by_role("button", name="Set A").click()
    expect(page.locator("[data-cue=A]")).to_be_visible()
    cues = api.get(f"/api/tracks/{ids['Loop 120']}/hot-cues").json()["data"]
    assert [c["cue_index"] for c in cues] == [0]
    shot(page, tmp_path, "3-track")

    # a playlist built by dragging tracks onto it, then reordered by dragging
    page.get_by_label("New playlist name").fill("Warm up")
    page.get_by_role("button", name="Create").click()
    target = page.locator(".pl", has_text="Warm up")
    expect(target).to_be_visible()
    page.get_by_role("button", name="Back to the tracks").click()
    pid = target.get_attribute("data-playlist-id")

    def entries() -> list[str]:
        return [e["track_id"] for e in api.get(f"/api/playlists/{pid}").json()["tracks"]]

    for n, title in enumerate(("Loop 120", "Loop 122"), start=1):
        page.locator(f".rows .row[data-track-id='{ids[title]}']").drag_to(target)
        expect(target.locator("small")).to_have_text(str(n))
    assert len(entries()) == 2
    assert entries() == [ids["Loop 120"], ids["Loop 122"]]
    target.click()
    rows = page.locator(".entry")
    expect(rows).to_have_count(2)
    rows.nth(1).drag_to(rows.nth(0))
    wait_for(lambda: entries() == [ids["Loop 122"], ids["Loop 120"]], 20, "the reorder")
    expect(rows.nth(0)).to_have_attribute("data-track-id", ids["Loop 122"])
    shot(page, tmp_path, "4-playlist")

    # take a suggestion of the open track into the playlist
    page.locator(".entry .link", has_text="Loop 120").click()
    suggestion = page.locator(f".suggestion[data-track-id='{ids['Loop 124']}']")
    expect(suggestion).to_be_visible()
    suggestion.get_by_role("button", name="Add Loop 124 to the playlist").click()
    wait_for(lambda: ids["Loop 124"] in entries(), 20, "the suggestion in the playlist")
    expect(page.locator(".entry")).to_have_count(3)
    shot(page, tmp_path, "5-suggestion")

    # export the playlist
    with page.expect_download() as got:
        page.get_by_role("link", name="Export M3U8").click()
    text = Path(got.value.path()).read_text(encoding="utf-8")
    assert text.startswith("#EXTM3U") and "Loop 124.wav" in text

    # a smart playlist whose matches show live
    page.get_by_role("button", name="New smart playlist").click()
    page.get_by_label("Name", exact=True).fill("Fast")
    page.get_by_label("Value").fill("123")
    expect(page.locator("[data-field=matches]")).to_have_text("1")
    page.get_by_label("Value").fill("121")
    expect(page.locator("[data-field=matches]")).to_have_text("2")
    shot(page, tmp_path, "6-smart")
    page.get_by_role("button", name="Save smart playlist").click()
    expect(page.locator(".pl", has_text="Fast")).to_be_visible()
    smart = [p for p in api.get("/api/playlists").json()["playlists"] if p["name"] == "Fast"]
    assert smart and smart[0]["type"] == "smart" and smart[0]["track_count"] == 2

    # the duplicate group, side by side; keep one
    page.get_by_role("button", name="Duplicates").click()
    find = page.get_by_role("button", name="Find duplicates")
    expect(find).to_be_visible()   # shown once the first list has come
    # the scan found the group already, so it shows before the new search has ended; the
    # list that search reloads then replaces the groups shown, and would bring back a
    # group resolved meanwhile: resolve only once it has come
    with page.expect_response(lambda r: "/api/duplicates?" in r.url):
        find.click()
    group = page.locator(".dupgroup")
    expect(group).to_have_count(1)
    expect(group.locator(".copy")).to_have_count(2)
    shot(page, tmp_path, "7-duplicates")
    group.get_by_role("button", name="Keep the chosen copy").click()
    expect(page.get_by_text("No duplicates.")).to_be_visible()
    api.close()


def test_a_drag_survives_a_refresh_of_the_tracks(services: Any, live_server: Any, page: Page,
                                                 music: Path) -> None:
    """A track changed elsewhere while a row is held (its ``track:updated`` event reloads
    the table) leaves the rows in place until the new answer comes: a drag begun on one
    still lands on the playlist while that answer is slow (issue 17: the table emptied
    itself while it reloaded, and a drag moving then had no row under it)."""
    from taperoom.library.app import create_app

    url = live_server(create_app(services=services())).url
    with httpx.Client(base_url=url, timeout=30) as api:
        folder = api.post("/api/library/directories", json={"path": str(music)}).json()["data"]
        assert api.post(f"/api/scan/library/{folder['id']}",
                        json={"strategy": "hybrid"}).status_code == 202
        wait_for(lambda: api.get("/api/tracks").json()["pagination"]["total"] == 4, 60,
                 "the scan of the loops")
        held, changed = (t["id"] for t in api.get("/api/tracks").json()["data"][:2])
        pid = api.post("/api/playlists", json={"name": "Held"}).json()["id"]

        page.goto(url + "/")
        target = page.locator(f".pl[data-playlist-id='{pid}']")
        expect(target.locator("small")).to_have_text("0")
        expect(page.locator(".live.on")).to_be_attached()   # the live events are on
        page.locator(f".rows .row[data-track-id='{held}']").hover()
        page.mouse.down()
        slow: list[Route] = []   # the table's reload, answered only after the drop
        page.route(lambda u: "/api/tracks?" in u, lambda route: slow.append(route))
        with page.expect_request(lambda r: "/api/tracks?" in r.url):
            assert api.put(f"/api/tracks/{changed}", json={"rating": 4}).status_code == 200

        def reload_held() -> bool:
            page.wait_for_timeout(20)   # Playwright hands the request to the route meanwhile
            return bool(slow)

        wait_for(reload_held, 10, "the table's reload")
        target.hover()
        page.mouse.up()
        expect(target.locator("small")).to_have_text("1")
        slow[0].continue_()
        page.unroute_all()
        expect(page.locator(f".rows .row[data-track-id='{changed}'] .c-rating")
               ).to_have_text("★★★★")   # and the table shows the reloaded rows
        tracks_in = [e["track_id"] for e in api.get(f"/api/playlists/{pid}").json()["tracks"]]
        assert tracks_in == [held]
