"""The library page's secondary flows in headless Chromium against a real library server
on 127.0.0.1: naming and colouring a hot cue, editing a track's tags, importing a
playlist file, the narrow layout of a phone, the track table's columns on desktop
windows, and the analysis view (a failed job with its error, retried). Each flow checks
through the API that its change was stored, and saves screenshots under the test's tmp
path (printed)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import page_errors
from tests.conftest import LiveServer
from tests.library.analysislib import drum_loop, scanned_library, wait_job
from tests.library.pagekit import horizontal_overflow, shot, table_columns

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]
expect.set_options(timeout=20_000)

BPMS = (120, 124)


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    """A desktop window."""
    return {"viewport": {"width": 1400, "height": 900}}


@pytest.fixture
def library(tmp_path: Path, lib_ctx: Any, lib_server: LiveServer) -> Iterator[dict[str, Any]]:
    """Two short drum loops, scanned (not analysed): the server's ``url``, an ``api``
    client, the loops' ``ids`` and ``paths`` by title, the ``folder``."""
    folder = tmp_path / "music"
    for bpm in BPMS:
        drum_loop(folder / f"Loop {bpm}.wav", bpm, seconds=4.0)
    scanned_library(lib_ctx, folder)
    api = httpx.Client(base_url=lib_server.url, timeout=30)
    rows = api.get("/api/tracks").json()["data"]
    yield {"url": lib_server.url, "api": api, "folder": folder,
           "ids": {t["title"]: t["id"] for t in rows},
           "paths": {t["title"]: t["file_path"] for t in rows}}
    api.close()


def _open_track(page: Page, library: dict[str, Any], title: str) -> None:
    """Load the page and open `title` from the track table with the keyboard."""
    page.goto(library["url"] + "/")
    row = page.locator(f".rows .row[data-track-id='{library['ids'][title]}']")
    row.click()
    page.keyboard.press("Enter")
    expect(page.locator(".trackview h2")).to_have_text(title)


def test_hot_cue_is_named_and_coloured(page: Page, library: dict[str, Any],
                                       tmp_path: Path) -> None:
    """Set cue A with the keyboard, name it, change its colour: the API has both, and a
    reload of the page shows them."""
    _open_track(page, library, "Loop 120")
    tid = library["ids"]["Loop 120"]
    set_a = page.get_by_role("button", name="Set A")
    set_a.focus()
    page.keyboard.press("Enter")
    cue = page.locator("[data-cue=A]")
    expect(cue).to_be_visible()

    # typed in two goes, the page re-rendering between them (the toast of the new cue
    # goes): the typing stays, Enter saves it
    name = page.get_by_label("Name of cue A")
    name.focus()
    page.keyboard.type("Dr")
    expect(page.locator(".toast", has_text="Hot cue A set")).to_have_count(0)
    page.keyboard.type("op")
    expect(name).to_have_value("Drop")
    name.press("Enter")
    page.get_by_label("Colour of cue A").fill("#2ec4b6")

    def stored() -> dict[str, Any]:
        [c] = library["api"].get(f"/api/tracks/{tid}/hot-cues").json()["data"]
        return dict(c)

    expect(cue).to_have_css("border-left-color", "rgb(46, 196, 182)")
    expect(name).to_have_value("Drop")
    _wait_api(lambda: stored()["color"].lower() == "#2ec4b6", "the colour")
    c = stored()
    assert (c["cue_index"], c["name"], c["color"].lower()) == (0, "Drop", "#2ec4b6")

    # a second rename, committed by leaving the field (Tab)
    name.fill("Break")
    name.press("Tab")
    expect(page.get_by_role("button", name="Set A")).to_have_count(0)
    _wait_api(lambda: stored()["name"] == "Break", "the second name")
    page.reload()
    _open_again(page, library, "Loop 120")
    expect(page.get_by_label("Name of cue A")).to_have_value("Break")
    expect(page.get_by_label("Colour of cue A")).to_have_value("#2ec4b6")
    shot(page, tmp_path, "hot-cue")


def _open_again(page: Page, library: dict[str, Any], title: str) -> None:
    page.locator(f".rows .row[data-track-id='{library['ids'][title]}']").dblclick()
    expect(page.locator(".trackview h2")).to_have_text(title)


def _wait_api(check: Any, what: str) -> None:
    from tests.polling import wait_for

    wait_for(check, 20, what)


def test_tag_editor_saves_title_bpm_and_key(page: Page, library: dict[str, Any],
                                            tmp_path: Path) -> None:
    """Edit title, BPM and key (Camelot 8A = A minor) and save with Enter: the API has
    them, the table and the track's header show them."""
    _open_track(page, library, "Loop 124")
    tid = library["ids"]["Loop 124"]
    editor = page.get_by_role("form", name="Edit track")
    editor.get_by_label("Title").fill("Night Drive")
    editor.get_by_label("BPM").fill("124.5")
    editor.get_by_label("Key").select_option("8A")
    editor.get_by_label("Artist").fill("Taperoom Crew")
    editor.get_by_label("Artist").press("Enter")
    expect(page.locator(".trackview h2")).to_have_text("Taperoom Crew – Night Drive")
    expect(page.locator(".trackview .bpm")).to_have_text("124.50 BPM")
    expect(page.locator(".trackview .key.big")).to_have_text("8A")
    t = library["api"].get(f"/api/tracks/{tid}").json()["data"]
    assert (t["title"], t["artist"], t["bpm"]) == ("Night Drive", "Taperoom Crew", 124.5)
    assert (t["musical_key"], t["mode"]) == (9, 0)  # A minor
    expect(page.locator(f".rows .row[data-track-id='{tid}']")).to_contain_text("Night Drive")
    shot(page, tmp_path, "tag-editor")


def test_playlist_files_are_imported_from_the_page(page: Page, library: dict[str, Any],
                                                   tmp_path: Path) -> None:
    """An M3U8 (one line not in the library) and a rekordbox XML chosen in the Import
    control become playlists of the library's tracks, in the files' order."""
    ids, paths = library["ids"], library["paths"]
    m3u = tmp_path / "Friday set.m3u8"
    m3u.write_text("#EXTM3U\n"
                   f"#EXTINF:4,Loop 124\n{paths['Loop 124']}\n"
                   "#EXTINF:4,Elsewhere\n/nowhere/else.wav\n"
                   f"#EXTINF:4,Loop 120\n{paths['Loop 120']}\n", encoding="utf-8")
    xml = tmp_path / "rekordbox.xml"
    xml.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<DJ_PLAYLISTS Version="1.0.0">
  <PRODUCT Name="rekordbox" Version="6.8.5" Company="AlphaTheta"/>
  <COLLECTION Entries="2">
    <TRACK TrackID="1" Name="Loop 120" Location="file://localhost{quote(paths['Loop 120'])}"/>
    <TRACK TrackID="2" Name="Loop 124" Location="file://localhost{quote(paths['Loop 124'])}"/>
  </COLLECTION>
  <PLAYLISTS>
    <NODE Type="0" Name="ROOT" Count="1">
      <NODE Type="1" Name="Warm up" KeyType="0" Entries="2"><TRACK Key="1"/><TRACK Key="2"/></NODE>
    </NODE>
  </PLAYLISTS>
</DJ_PLAYLISTS>
""", encoding="utf-8")
    page.goto(library["url"] + "/")
    control = page.get_by_label("Import a playlist file (M3U, M3U8 or rekordbox XML)")
    expect(control).to_be_attached()
    control.set_input_files(str(m3u))
    expect(page.locator(".toast", has_text="Imported Friday set.m3u8")).to_have_text(
        "Imported Friday set.m3u8: 1 playlist, 2 tracks, 1 not in the library")
    control.set_input_files(str(xml))
    expect(page.locator(".toast", has_text="Imported rekordbox.xml")).to_contain_text(
        "1 playlist, 2 tracks")

    playlists = {p["name"]: p for p in library["api"].get("/api/playlists").json()["playlists"]}
    assert {"Friday set", "Warm up"} <= set(playlists)
    for name, order in (("Friday set", ["Loop 124", "Loop 120"]),
                        ("Warm up", ["Loop 120", "Loop 124"])):
        item = page.locator(".pl", has_text=name)
        expect(item.locator("small")).to_have_text("2")
        got = library["api"].get(f"/api/playlists/{playlists[name]['id']}").json()["tracks"]
        assert [e["track_id"] for e in got] == [ids[t] for t in order]
    page.locator(".pl", has_text="Friday set").click()
    expect(page.locator(".entry")).to_have_count(2)
    expect(page.locator(".entry").first).to_have_attribute("data-track-id", ids["Loop 124"])
    shot(page, tmp_path, "import")


def test_import_control_is_reachable_with_the_keyboard(page: Page,
                                                       library: dict[str, Any]) -> None:
    """Tabbing from the playlist buttons reaches the Import control, which shows its
    focus."""
    page.goto(library["url"] + "/")
    page.get_by_role("button", name="Start session").focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "Import a playlist file (M3U, M3U8 or rekordbox XML)"
    outline = page.locator(".filebtn").evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline == "solid"


def _fail_analysis(library: dict[str, Any], lib_ctx: Any, title: str) -> tuple[Path, Path, str]:
    """Move the file of `title` aside and ask for its analysis, which fails; (path, where
    it went, the job id)."""
    tid, path = library["ids"][title], Path(library["paths"][title])
    api = library["api"]
    file_hash = api.get(f"/api/tracks/{tid}").json()["data"]["file_hash"]
    aside = path.with_name(path.name + ".aside")
    os.rename(path, aside)
    api.post("/api/analysis/request", json={"track_id": tid}).raise_for_status()
    assert wait_job(lib_ctx, file_hash) == "failed"
    return path, aside, str(file_hash)


def test_narrow_layout_stays_usable(browser: Browser, library: dict[str, Any], lib_ctx: Any,
                                    tmp_path: Path) -> None:
    """At 400 px wide the body never scrolls sideways, and the search, the views, the
    folders, the playlists, a track's editor and the analysis view (a failure's long
    error) are on screen and usable."""
    _fail_analysis(library, lib_ctx, "Loop 120")
    context = browser.new_context(viewport={"width": 400, "height": 800})
    try:
        page = context.new_page()
        errors = page_errors(page)
        page.goto(library["url"] + "/")
        rows = page.locator(".rows .row")
        expect(rows).to_have_count(2)

        def fits(where: str) -> None:
            got = horizontal_overflow(page)
            assert got["overflow"] == 0, (where, got)

        fits("the track list")
        for control in (page.get_by_label("Search tracks"),
                        page.get_by_role("button", name="Analysis"),
                        page.get_by_role("button", name="Add folder…"),
                        page.get_by_label("New playlist name"),
                        page.locator(".filebtn")):
            control.scroll_into_view_if_needed()
            expect(control).to_be_in_viewport()
        page.get_by_label("Search tracks").fill("124")
        expect(rows).to_have_count(1)
        shot(page, tmp_path, "narrow-1-tracks")
        rows.first.dblclick()
        expect(page.locator(".trackview h2")).to_have_text("Loop 124")
        fits("the track view")
        save = page.get_by_role("button", name="Save tags")
        save.scroll_into_view_if_needed()
        expect(save).to_be_in_viewport()
        shot(page, tmp_path, "narrow-2-track")
        page.get_by_role("button", name="Close the track").click()
        page.get_by_role("button", name="Analysis").click()
        retry = page.get_by_role("button", name="Retry Loop 120.wav")
        retry.scroll_into_view_if_needed()
        expect(retry).to_be_in_viewport()
        expect(page.get_by_role("table", name="Failed").locator("td.error")).to_contain_text(
            "File not found")
        fits("the analysis view")
        shot(page, tmp_path, "narrow-3-analysis")
        page.get_by_role("button", name="Duplicates").click()
        expect(page.get_by_role("button", name="Find duplicates")).to_be_visible()
        fits("the duplicates view")
        assert errors == []
    finally:
        context.close()


ALL_COLUMNS = ["Title", "Artist", "BPM", "Key", "Energy", "Genre", "Time", "Rating"]
IMPORTANT_COLUMNS = ["Title", "BPM", "Key", "Energy", "Time", "Rating"]


def _columns_fit(page: Page, where: str) -> list[str]:
    """Every header cell and data cell the track table shows lies inside the box where
    the table can be seen, each label fits its cell, and the header shows as many
    columns as the rows do, each header cell over its column: the labels of the
    columns shown."""
    got = table_columns(page)
    box, rows = got["box"], got["rows"]
    assert got["head"], (where, got)
    for c in got["head"]:
        assert box["left"] - 0.5 <= c["left"] and c["right"] <= box["right"] + 0.5, (where, c, box)
        assert not c["clipped"], (where, c)
    assert len(got["cells"]) == len(got["head"]), (where, got)
    for c in got["cells"]:
        inside = rows["left"] - 0.5 <= c["left"] and c["right"] <= rows["right"] + 0.5
        assert inside, (where, c, rows)
    for h, c in zip(got["head"], got["cells"], strict=True):  # each label over its column
        assert abs(h["left"] - c["left"]) <= 1 and abs(h["right"] - c["right"]) <= 1, (
            where, h, c)
    return [c["label"] for c in got["head"]]


@pytest.mark.parametrize("size", [(1280, 800), (1440, 900)], ids=["1280x800", "1440x900"])
def test_track_table_columns_stay_in_view_on_a_desktop(
        browser: Browser, library: dict[str, Any], tmp_path: Path, size: tuple[int, int]) -> None:
    """On a desktop window, with no track open and with one open beside the table, every
    column the track table shows is wholly inside its visible box, and title, BPM, key,
    energy, time and rating are among them (the less important columns go first); with no
    track open all of them are shown."""
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        errors = page_errors(page)
        page.goto(library["url"] + "/")
        expect(page.locator(".rows .row[data-track-id]")).to_have_count(2)
        shown = _columns_fit(page, "no track open")
        assert shown == ALL_COLUMNS, shown
        shot(page, tmp_path, f"columns-{width}-1-table")
        _open_track(page, library, "Loop 120")
        expect(page.locator(".trackview")).to_be_visible()
        shown = _columns_fit(page, "a track open")
        assert set(IMPORTANT_COLUMNS) <= set(shown), shown
        shot(page, tmp_path, f"columns-{width}-2-track")
        assert errors == []
    finally:
        context.close()


def test_analysis_view_shows_a_failure_and_retries_it(
        page: Page, library: dict[str, Any], lib_ctx: Any, tmp_path: Path) -> None:
    """A loop whose file went away fails; the analysis view lists it under Failed with
    its error; once the file is back, Retry analyses it and the failure goes."""
    api = library["api"]
    path, aside, file_hash = _fail_analysis(library, lib_ctx, "Loop 120")

    page.goto(library["url"] + "/")
    page.get_by_role("button", name="Analysis").click()
    failed = page.get_by_role("table", name="Failed")
    row = failed.locator(f"tr.job[data-job-id='{file_hash}']")
    expect(row).to_be_visible()
    expect(row.locator("td.error")).to_have_text(f"File not found: {path}")
    expect(page.get_by_role("table", name="Queue")).to_contain_text("Nothing queued.")
    shot(page, tmp_path, "analysis-1-failed")

    os.rename(aside, path)
    retry = row.get_by_role("button", name=f"Retry {path.name}")
    retry.focus()
    page.keyboard.press("Enter")
    expect(failed).to_contain_text("No failures.")
    latest = page.get_by_role("table", name="Latest").locator(f"tr.job[data-job-id='{file_hash}']")
    expect(latest).to_have_attribute("data-status", "completed")
    expect(latest.locator("progress")).to_have_attribute("value", "100")
    assert wait_job(lib_ctx, file_hash) == "completed"
    job = api.get(f"/api/analysis/jobs/{file_hash}").json()["job"]
    assert job["status"] == "completed" and job["last_error"] is None
    assert api.get("/api/analysis/jobs", params={"status": "failed"}).json()["total"] == 0
    shot(page, tmp_path, "analysis-2-retried")
