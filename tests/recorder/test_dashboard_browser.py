"""The recorder dashboard in a real browser: headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright) against the recorder on a real
uvicorn server on 127.0.0.1.

Covers the station form (with artwork upload and preview, URL test), the schedule
form's live cron help and presets, edit/delete/deactivate, live session progress
over the real ``/ws`` WebSocket without a reload (events sent on the app's bus,
which is the path the recording service uses), the polling fallback with
reconnect backoff when the socket is refused, the session filters and actions, the
logs page, backups and the 404 page. Fields are found by their labels. Lists that
are loaded again (the logs' filters, the backup list, the dashboard's sections) are
checked with one answer held back until a newer one was shown: the older answer must
not replace it.
"""

from __future__ import annotations

import io
import itertools
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import APIResponse, BrowserContext, Page, Route, expect

from taperoom.db import transaction
from taperoom.events import Event
from taperoom.recorder import repository as repo
from taperoom.recorder.models import utcnow
from taperoom.recorder.schemas import session_dict
from tests.browser import page_errors
from tests.conftest import free_port
from tests.recorder.streamserver import StreamServer

STATION = {"name": "KUVO Jazz", "stream_url": "http://127.0.0.1:9/stream", "artist": "KUVO",
           "album": "Jazz Nights", "album_artist": "KUVO 89.3",
           "scp_destination": "radio@127.0.0.1:/srv/recordings/"}

http = httpx.Client(timeout=30)
pytestmark = pytest.mark.timeout(90)
expect.set_options(timeout=10_000)


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    """The dashboard's tabs are 1400 × 1000 CSS pixels."""
    return {"viewport": {"width": 1400, "height": 1000}}


class Tab:
    """A fresh browser context and page that records page errors and accepts dialogs."""

    def __init__(self, context: BrowserContext, base: str) -> None:
        self.base = base
        self.context = context
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.errors = page_errors(self.page)
        self.dialogs: list[str] = []

        def accept(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.accept()

        self.page.on("dialog", accept)

    def goto(self, path: str, status: int = 200) -> None:
        """Open `path` of the server; asserts the HTTP status."""
        resp = self.page.goto(self.base + path)
        assert resp is not None and resp.status == status, (path, resp and resp.status)

    def wait_live(self) -> None:
        """Wait until the page's WebSocket is open (indicator says live)."""
        expect(self.page.locator("#live-indicator")).to_have_attribute("data-state", "live")


@pytest.fixture
def tab(browser_context: BrowserContext, rec_server: Any) -> Iterator[Tab]:
    """A page on the recorder server; fails the test on any uncaught page error."""
    t = Tab(browser_context, rec_server.url)
    yield t
    t.context.close()
    assert not t.errors, f"JavaScript errors: {t.errors}"


def png_bytes(size: tuple[int, int]) -> bytes:
    """A real PNG made with Pillow."""
    img = Image.new("RGB", size, (30, 90, 200))
    for x in range(size[0]):
        img.putpixel((x, x % size[1]), (255, 200, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def create_station(base: str, **overrides: Any) -> dict[str, Any]:
    """POST /api/streams; asserts 201."""
    resp = http.post(f"{base}/api/streams", json={**STATION, **overrides})
    assert resp.status_code == 201, resp.text
    return resp.json()


def add_session(services: Any, station: dict[str, Any], **values: Any) -> dict[str, Any]:
    """Insert a session of `station` through the repository; its session dict."""
    start = values.pop("start_time", utcnow() - timedelta(hours=2))
    with transaction(services.db) as db:
        row = repo.create_session(db, {
            "station_id": station["id"], "station_name": station["name"],
            "trigger": "schedule", "start_time": start, "end_time": start + timedelta(hours=1),
            "planned_duration_seconds": 3600.0, "status": "completed",
            "transfer_status": "completed", **values})
        return session_dict(row, services.settings.zone)


def set_session(services: Any, session_id: int, **values: Any) -> dict[str, Any]:
    """Change a session through the repository; its new session dict."""
    with transaction(services.db) as db:
        return session_dict(repo.update_session(db, session_id, values), services.settings.zone)


class HeldAnswer:
    """Holds back the answer to the first request of `url` (a glob) made by the page's
    scripts: the server answers it when it is made (``route.fetch``), so the answer is of
    the state at that moment, and the page gets it only on :meth:`release`. Every other
    request goes through.

    Parameters
    ----------
    page : Page
        The page whose requests are routed (before it makes the request).
    url : str
        Glob of the request's URL.
    """

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.route: Route | None = None
        self.answer: APIResponse | None = None
        page.route(url, self._handle)

    def _handle(self, route: Route) -> None:
        if self.route is not None or route.request.resource_type != "fetch":
            route.fallback()
            return
        self.answer = route.fetch()
        self.route = route

    def wait(self, timeout: float = 10.0) -> Route:
        """Wait until the request was made and its answer is held; its route."""
        deadline = time.monotonic() + timeout
        while self.route is None:
            assert time.monotonic() < deadline, "the page made no request to hold"
            self.page.wait_for_timeout(50)
        return self.route

    def release(self) -> None:
        """Give the page the held answer; returns once the page has received all of it
        and its scripts have had a moment (0.2 s) to handle it."""
        route = self.wait()
        with self.page.expect_event("requestfinished",
                                    predicate=lambda r: r.url == route.request.url):
            route.fulfill(response=self.answer)
        self.page.evaluate("() => new Promise(done => setTimeout(done, 200))")


def rows(page: Page, table: str) -> list[int]:
    """Session ids of the rows of `table` (a CSS selector), in order."""
    ids: list[int] = [int(x) for x in page.locator(f"{table} tbody tr[data-session-id]")
                      .evaluate_all("rs => rs.map(r => r.dataset.sessionId)")]
    return ids


# --------------------------------------------------------------------------- stations


def test_create_station_through_the_form_with_artwork_preview(tab: Tab) -> None:
    """The station form creates the station, previews, uploads and removes its artwork."""
    page = tab.page
    tab.goto("/streams/new")
    page.get_by_label("Name", exact=True).fill("Radio Nova")
    page.get_by_label("Stream URL", exact=True).fill(f"http://127.0.0.1:{free_port()}/live")
    page.get_by_role("button", name="Test URL").click()
    expect(page.locator("#url-test-result")).to_contain_text("Not reachable")
    page.get_by_label("Artist", exact=True).fill("Nova")
    page.get_by_label("Album", exact=True).fill("Nova Nights")
    page.get_by_label("Album artist", exact=True).fill("Radio Nova")
    page.get_by_label("File name pattern").fill("{date}_{artist}_{album}.mp3")
    page.get_by_label("MP3 bit rate (kbit/s)").fill("160")
    page.get_by_label("Destination").fill("rec@127.0.0.1:2222:/srv/nova/")
    preview = page.locator("#artwork-preview")
    expect(preview).to_be_hidden()
    page.get_by_label("Artwork", exact=True).set_input_files(
        files=[{"name": "nova.png", "mimeType": "image/png", "buffer": png_bytes((72, 54))}])
    expect(preview).to_be_visible()
    assert preview.get_attribute("src", timeout=1000).startswith("blob:")  # type: ignore[union-attr]
    page.wait_for_function("document.getElementById('artwork-preview').naturalWidth === 72")

    page.get_by_role("button", name="Create station").click()
    page.wait_for_url(tab.base + "/streams")
    expect(page.locator("#flash")).to_contain_text("Radio Nova")
    expect(page.locator("#stations-table")).to_contain_text("Radio Nova")

    [st] = http.get(tab.base + "/api/streams").json()
    assert st["name"] == "Radio Nova" and st["artist"] == "Nova" and st["album"] == "Nova Nights"
    assert st["album_artist"] == "Radio Nova" and st["bitrate_kbps"] == 160
    assert st["output_filename_pattern"] == "{date}_{artist}_{album}.mp3"
    assert st["scp_destination"] == "rec@127.0.0.1:2222:/srv/nova/"
    assert st["artwork_path"], "the artwork was not uploaded"

    thumb = page.locator(f'tr[data-station-id="{st["id"]}"] img.thumb')
    expect(thumb).to_be_visible()
    page.get_by_role("link", name="Edit Radio Nova").click()
    page.wait_for_url(f"{tab.base}/streams/{st['id']}/edit")
    expect(preview).to_be_visible()
    assert f"/streams/{st['id']}/artwork" in (preview.get_attribute("src") or "")
    page.wait_for_function("document.getElementById('artwork-preview').naturalWidth === 72")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Radio Nova")

    page.get_by_role("button", name="Remove artwork").click()
    expect(preview).to_be_hidden()
    expect(page.locator("#artwork-empty")).to_be_visible()
    assert http.get(f"{tab.base}/api/streams/{st['id']}").json()["artwork_path"] is None


def test_station_form_shows_validation_errors(tab: Tab) -> None:
    """Missing fields and a refused URL scheme are reported on the form; nothing is created."""
    page = tab.page
    tab.goto("/streams/new")
    page.get_by_role("button", name="Create station").click()
    box = page.locator(".form-error")
    expect(box).to_be_visible()
    expect(box).to_contain_text("Name is required")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    for label, value in (("Name", "Bad"), ("Stream URL", "ftp://127.0.0.1/x"),
                         ("Artist", "a"), ("Album", "b"), ("Album artist", "c")):
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Create station").click()
    # until the server answers, the (hidden) box still holds the form's own message, which
    # names stream_url too; the submit took the fields' marks off, and the answer sets them
    expect(page.get_by_label("Stream URL", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(box).to_be_visible()
    expect(box).not_to_contain_text("Name is required")
    expect(box).to_contain_text("stream_url")
    assert http.get(tab.base + "/api/streams").json() == []


def test_station_form_refuses_a_pattern_with_a_format_spec(tab: Tab) -> None:
    """A file name pattern with a format spec is refused when the form is saved, with
    the reason on the pattern field; nothing is created, and an edit is refused too."""
    page = tab.page
    tab.goto("/streams/new")
    for label, value in (("Name", "Spec FM"), ("Stream URL", "http://127.0.0.1:9/live"),
                         ("Artist", "a"), ("Album", "b"), ("Album artist", "c"),
                         ("File name pattern", "{name:_>50000000}.mp3")):
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Create station").click()
    box = page.locator(".form-error")
    expect(box).to_contain_text("format spec")
    expect(page.get_by_label("File name pattern")).to_have_attribute("aria-invalid", "true")
    assert http.get(tab.base + "/api/streams").json() == []

    st = create_station(tab.base)
    tab.goto(f"/streams/{st['id']}/edit")
    page.get_by_label("File name pattern").fill("{date}_{name!r}.mp3")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".form-error")).to_contain_text("format spec")
    got = http.get(f"{tab.base}/api/streams/{st['id']}").json()
    assert got["output_filename_pattern"] == st["output_filename_pattern"]


def test_edit_then_delete_station_and_schedule(tab: Tab) -> None:
    """Edit forms change the API's data; confirmed deactivate/delete buttons take effect."""
    page = tab.page
    st = create_station(tab.base)
    sched = http.post(tab.base + "/api/schedules", json={
        "stream_config_id": st["id"], "cron_expression": "0 21 * * *",
        "duration_minutes": 60}).json()

    tab.goto(f"/streams/{st['id']}/edit")
    page.get_by_label("Name", exact=True).fill("KUVO Jazz HD")
    page.get_by_label("Destination").fill("")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(tab.base + "/streams")
    got = http.get(f"{tab.base}/api/streams/{st['id']}").json()
    assert got["name"] == "KUVO Jazz HD" and got["scp_destination"] == ""

    tab.goto(f"/schedules/{sched['id']}/edit")
    page.get_by_label("Duration (minutes)").fill("120")
    page.get_by_label("Max retries").fill("5")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(tab.base + "/schedules")
    got = http.get(f"{tab.base}/api/schedules/{sched['id']}").json()
    assert got["duration_minutes"] == 120 and got["max_retries"] == 5 and got["is_active"]

    page.get_by_role("button", name="Deactivate").click()
    expect(page.locator("#flash")).to_contain_text("deactivated")
    assert http.get(f"{tab.base}/api/schedules/{sched['id']}").json()["is_active"] is False
    expect(page.locator(f'tr[data-schedule-id="{sched["id"]}"]')).to_contain_text("inactive")

    page.get_by_role("button", name=f"Delete schedule {sched['id']}").click()
    expect(page.locator("#flash")).to_contain_text("Schedule deleted")
    assert http.get(f"{tab.base}/api/schedules/{sched['id']}").status_code == 404
    assert any("Delete this schedule" in d for d in tab.dialogs)

    tab.goto("/streams")
    page.get_by_role("button", name="Delete KUVO Jazz HD").click()
    expect(page.locator("#flash")).to_contain_text("Station deleted")
    assert http.get(f"{tab.base}/api/streams/{st['id']}").status_code == 404
    expect(page.locator(".empty")).to_contain_text("No stations yet")


# --------------------------------------------------------------------------- schedules


def test_schedule_form_cron_helper_and_create(tab: Tab) -> None:
    """Cron help shows description and next 5 runs as typed; presets; schedule created."""
    page = tab.page
    st = create_station(tab.base, name="Alpha FM")
    create_station(tab.base, name="Beta Radio")
    tab.goto("/schedules/new")
    cron = page.get_by_label("Cron expression")
    desc = page.locator("#cron-description")
    runs = page.locator("#cron-next-runs li")

    cron.fill("30 18 * * 1")
    expect(desc).to_contain_text("18:30")
    expect(desc).to_contain_text("Monday")
    expect(runs).to_have_count(5)
    want = http.post(tab.base + "/api/schedules/validate-cron",
                     json={"cron_expression": "30 18 * * 1"}).json()
    shown = runs.all_inner_texts()
    assert shown == [t[:16].replace("T", " ") for t in want["next_runs"]]
    assert all(t.endswith("18:30") for t in shown)

    cron.fill("61 * * * *")
    expect(page.locator("#cron-error")).to_be_visible()
    expect(cron).to_have_attribute("aria-invalid", "true")
    expect(runs).to_have_count(0)

    page.get_by_role("button", name="weekdays 21:00").click()
    expect(cron).to_have_value("0 21 * * 1-5")
    expect(desc).to_contain_text("Monday through Friday")
    expect(page.locator("#cron-error")).to_be_hidden()
    expect(runs).to_have_count(5)
    assert all(t.endswith("21:00") for t in runs.all_inner_texts())

    page.get_by_label("Station").select_option(label="Alpha FM")
    page.get_by_label("Duration (minutes)").fill("90")
    page.get_by_label("Active").uncheck()
    page.get_by_role("button", name="Create schedule").click()
    page.wait_for_url(tab.base + "/schedules")
    expect(page.locator("#flash")).to_contain_text("Schedule created")
    [sched] = http.get(tab.base + "/api/schedules").json()
    assert sched["stream_config_id"] == st["id"] and sched["cron_expression"] == "0 21 * * 1-5"
    assert sched["duration_minutes"] == 90 and sched["is_active"] is False
    expect(page.locator("#schedules-table")).to_contain_text("Monday through Friday")


# --------------------------------------------------------------------------- live status


@pytest.mark.slow
def test_dashboard_shows_live_progress_without_reloading(tab: Tab, rec_services: Any) -> None:
    """Bus recording events reach the dashboard over /ws and update the row, no reload."""
    page = tab.page
    st = create_station(tab.base)
    tab.goto("/")
    expect(page.locator("#live-empty")).to_be_visible()
    tab.wait_live()
    page.evaluate("window.__sameDocument = true")

    session = add_session(rec_services, st, status="recording", transfer_status="pending",
                          end_time=None, start_time=utcnow(), planned_duration_seconds=600.0)
    sid = session["id"]
    rec_services.bus.send(Event.RECORDING_STARTED, session)
    row = page.locator(f'#live-sessions tr[data-session-id="{sid}"]')
    expect(row).to_be_visible()
    expect(page.locator("#live-empty")).to_be_hidden()
    expect(row.locator('[data-field="station"]')).to_have_text("KUVO Jazz")
    expect(row.locator('[data-field="planned"]')).to_have_text("10:00")
    expect(row.locator('[data-badge="status"]')).to_have_text("recording")
    expect(page.locator('[data-stat="active"]')).to_have_text("1")

    bar = row.get_by_role("progressbar")
    for elapsed, connected, title in ((150.0, True, "Miles Davis - So What"),
                                      (300.0, False, "Miles Davis - So What"),
                                      (451.5, True, "John Coltrane - Naima")):
        rec_services.bus.send(Event.RECORDING_PROGRESS, {
            "session_id": sid, "elapsed_seconds": elapsed, "audio_seconds": elapsed - 2,
            "bytes_written": int(elapsed * 16000), "reconnects": 0 if connected else 1,
            "connected": connected, "title": title, "percent": round(elapsed / 6, 1)})
        expect(bar).to_have_attribute("aria-valuenow", f"{elapsed / 6:.1f}")
        expect(row.locator('[data-field="elapsed"]')).to_have_text(
            f"{int(elapsed // 60)}:{round(elapsed % 60):02d}")
        expect(row.locator('[data-field="title"]')).to_have_text(title)
        expect(row.locator('[data-field="connection"]')).to_have_text(
            "connected" if connected else "reconnecting…")
    expect(row.locator('[data-field="bytes"]')).to_have_text("6.9 MiB")
    expect(row.locator('[data-field="reconnects"]')).to_have_text("0")
    width = bar.locator(".bar-fill").evaluate("e => e.style.width")
    assert width == f"{round(451.5 / 6, 1)}%"

    done = set_session(rec_services, sid, status="completed", end_time=utcnow(),
                       output_file_path="/srv/x/2025-01-01_KUVO Jazz.mp3",
                       file_size_bytes=7_000_000, duration_seconds=451.5)
    rec_services.bus.send(Event.RECORDING_STATUS, done)
    expect(row.locator('[data-badge="status"]')).to_have_text("completed")
    expect(row.locator('[data-action="stop"]')).to_have_count(0)
    expect(row).to_have_count(0, timeout=8000)  # leaves the live table
    expect(page.locator("#live-empty")).to_be_visible()
    recent = page.locator(f'#recent-sessions tr[data-session-id="{sid}"]')
    expect(recent).to_contain_text("2025-01-01_KUVO Jazz.mp3")

    rec_services.bus.send(Event.TRANSFER_STATUS, {
        "session_id": sid, "transfer_status": "in_progress", "bytes_sent": 3_500_000,
        "bytes_total": 7_000_000})
    expect(recent.locator('[data-badge="transfer"]')).to_have_text("in progress")
    expect(recent.locator('[data-field="transfer-progress"]')).to_contain_text("50%")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"


@pytest.mark.slow
def test_record_now_from_the_dashboard_shows_real_progress_and_stops(
        tab: Tab, stream_server: StreamServer) -> None:
    """Record now shows a real recording's progress live and Stop finishes it early."""
    page = tab.page
    stream_server.mount("/jazz.mp3", metaint=8192,
                        titles=[(0.0, "Miles Davis - So What"), (2.0, "John Coltrane - Naima")])
    st = create_station(tab.base, stream_url=stream_server.url("/jazz.mp3"), scp_destination="")

    tab.goto(f"/streams/{st['id']}/edit")
    page.get_by_role("button", name="Test URL").click()
    expect(page.locator("#url-test-result")).to_contain_text("Reachable")

    tab.goto("/")
    tab.wait_live()
    page.evaluate("window.__sameDocument = true")
    page.locator(f'#stations-section tr[data-station-id="{st["id"]}"]').get_by_role(
        "button", name="Record now").click()
    page.get_by_label("Recording length (minutes)").fill("1")
    page.get_by_role("button", name="Start recording").click()
    expect(page.locator("#flash")).to_contain_text("Recording started: session #")
    [session] = http.get(tab.base + "/api/sessions/active").json()["active_sessions"]
    row = page.locator(f'#live-sessions tr[data-session-id="{session["id"]}"]')
    expect(row).to_be_visible()
    expect(row.locator('[data-field="planned"]')).to_have_text("1:00")
    expect(row.locator('[data-field="connection"]')).to_have_text("connected")
    expect(row.locator('[data-field="title"]')).to_have_text("John Coltrane - Naima",
                                                             timeout=15_000)
    bar = row.get_by_role("progressbar")
    first = float(bar.get_attribute("aria-valuenow") or 0)
    page.wait_for_function(
        f"""() => {{ const b = document.querySelector(
            '#live-sessions tr[data-session-id="{session["id"]}"] [role=progressbar]');
            return b && parseFloat(b.getAttribute('aria-valuenow')) >= {first} + 2; }}""")
    assert row.locator('[data-field="bytes"]').inner_text().endswith("KiB")

    row.get_by_role("button", name="Stop").click()
    expect(row).to_have_count(0, timeout=15_000)
    recent = page.locator(f'#recent-sessions tr[data-session-id="{session["id"]}"]')
    expect(recent.locator('[data-badge="status"]')).to_have_text("completed")
    expect(recent).to_contain_text(".mp3")
    expect(recent.locator('[data-badge="transfer"]')).to_have_text("skipped")
    done = http.get(f"{tab.base}/api/sessions/{session['id']}").json()
    assert done["status"] == "completed" and "stopped on request" in done["error_message"]
    assert 2.0 < done["duration_seconds"] < 30.0
    assert any("Stop this recording" in d for d in tab.dialogs)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"


@pytest.mark.slow
def test_dashboard_follows_station_and_schedule_changes(tab: Tab) -> None:
    """API station/schedule changes appear on an open dashboard without a reload."""
    page = tab.page
    tab.goto("/")
    tab.wait_live()
    page.evaluate("window.__sameDocument = true")
    st = create_station(tab.base, name="Late Night FM")
    stations = page.locator("#stations-section")
    expect(stations).to_contain_text("Late Night FM")
    expect(page.locator('[data-stat="stations"]')).to_have_text("1")
    sched = http.post(tab.base + "/api/schedules", json={
        "stream_config_id": st["id"], "cron_expression": "15 23 * * 6",
        "duration_minutes": 45}).json()
    row = page.locator(f'#schedules-section tr[data-schedule-id="{sched["id"]}"]')
    expect(row).to_contain_text("23:15")
    expect(row).to_contain_text("45 min")
    shown = sched["next_run_time"][:16].replace("T", " ")
    expect(row.locator('[data-field="next-run"]')).to_have_text(shown)
    http.post(f"{tab.base}/api/schedules/{sched['id']}/deactivate")
    expect(row.locator('[data-badge="flag"]')).to_have_text("inactive")
    http.delete(f"{tab.base}/api/streams/{st['id']}")
    expect(stations).to_contain_text("No stations yet")
    expect(row).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"


def test_dashboard_section_keeps_the_newer_of_two_refreshes(tab: Tab) -> None:
    """A section refresh whose answer comes after a newer refresh's answer is dropped:
    the stations section keeps the station added in between."""
    page = tab.page
    tab.goto("/")
    tab.wait_live()
    first = HeldAnswer(page, f"{tab.base}/")
    create_station(tab.base, name="Early FM")
    first.wait()  # the refresh asked for after Early FM was added, its answer held
    create_station(tab.base, name="Later FM")
    stations = page.locator("#stations-section")
    expect(stations).to_contain_text("Later FM")
    expect(page.locator('[data-stat="stations"]')).to_have_text("2")

    first.release()
    expect(stations).to_contain_text("Early FM")
    expect(stations).to_contain_text("Later FM")
    expect(page.locator('[data-stat="stations"]')).to_have_text("2")


def test_transfer_event_outlives_an_older_section_refresh(tab: Tab, rec_services: Any) -> None:
    """An upload's progress shown on a recent session stays when the refresh of the
    recent sessions asked for before it (when the recording finished) answers later."""
    page = tab.page
    st = create_station(tab.base)
    sid = add_session(rec_services, st, status="processing", transfer_status="pending",
                      start_time=utcnow() - timedelta(minutes=70))["id"]
    tab.goto("/")
    tab.wait_live()
    recent = page.locator(f'#recent-sessions tr[data-session-id="{sid}"]')
    transfer = recent.locator('[data-badge="transfer"]')
    progress = recent.locator('[data-field="transfer-progress"]')
    expect(transfer).to_have_text("pending")

    first = HeldAnswer(page, f"{tab.base}/")
    done = set_session(rec_services, sid, status="completed",
                       output_file_path="/srv/x/2025-01-01_KUVO Jazz.mp3",
                       file_size_bytes=7_000_000, duration_seconds=3600.0)
    rec_services.bus.send(Event.RECORDING_STATUS, done)  # the recent sessions are refreshed
    first.wait()  # that refresh's answer (upload pending) is held
    set_session(rec_services, sid, transfer_status="in_progress")
    rec_services.bus.send(Event.TRANSFER_STATUS, {
        "session_id": sid, "transfer_status": "in_progress", "bytes_sent": 3_500_000,
        "bytes_total": 7_000_000})
    expect(transfer).to_have_text("in progress")
    expect(progress).to_contain_text("50%")

    first.release()
    expect(recent).to_contain_text("2025-01-01_KUVO Jazz.mp3")  # the refresh's own news
    expect(recent.locator('[data-badge="status"]')).to_have_text("completed")
    expect(transfer).to_have_text("in progress")
    expect(progress).to_contain_text("50%")


def test_an_older_poll_answering_late_does_not_bring_back_a_finished_session(
        tab: Tab, rec_services: Any) -> None:
    """With /ws refused the page polls the active sessions; a poll that answers after a
    newer one (which no longer lists a finished session) is dropped."""
    page = tab.page
    page.route_web_socket("**/ws", lambda ws: ws.close())
    page.add_init_script("window.Taperoom = {POLL_MS: 600000}")  # polls only when asked
    st = create_station(tab.base)
    session = add_session(rec_services, st, status="recording", transfer_status="pending",
                          end_time=None, start_time=utcnow(), planned_duration_seconds=60.0)
    tab.goto("/")
    row = page.locator(f'#live-sessions tr[data-session-id="{session["id"]}"]')
    expect(row).to_be_visible()  # the first poll's answer

    older = HeldAnswer(page, "**/api/sessions/active")
    page.evaluate("() => { Taperoom.live.poll(); }")
    older.wait()  # its answer, with the session still recording, is held
    set_session(rec_services, session["id"], status="failed", error_message="capture failed")
    page.evaluate("() => Taperoom.live.poll()")  # the newer poll has answered
    expect(row).to_have_count(0)

    older.release()
    assert row.count() == 0, "the older poll's answer brought the finished session back"


@pytest.mark.slow
def test_polling_fallback_and_reconnect_backoff(tab: Tab, rec_services: Any) -> None:
    """With /ws refused the page polls active sessions and retries with growing delays."""
    page = tab.page
    page.route_web_socket("**/ws", lambda ws: ws.close())
    page.add_init_script("window.Taperoom = {POLL_MS: 1000}")  # default 3 s
    # each connection attempt's time on the page's clock: the test's own clock would add
    # the delay before Playwright hands it the attempt, which is longest under load
    page.add_init_script("""(() => {
        const Native = window.WebSocket;
        window.wsAttempts = [];
        window.WebSocket = function (...args) {
            window.wsAttempts.push(performance.now() / 1000);
            return new Native(...args);
        };
        window.WebSocket.prototype = Native.prototype;
        for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) {
            window.WebSocket[k] = Native[k];
        }
    })()""")
    st = create_station(tab.base)
    tab.goto("/")
    indicator = page.locator("#live-indicator")
    expect(indicator).to_have_attribute("data-state", "polling")
    expect(indicator).to_contain_text("polling")

    session = add_session(rec_services, st, status="recording", transfer_status="pending",
                          end_time=None, start_time=utcnow(), planned_duration_seconds=60.0)
    row = page.locator(f'#live-sessions tr[data-session-id="{session["id"]}"]')
    expect(row).to_be_visible()
    expect(row.locator('[data-field="planned"]')).to_have_text("1:00")
    set_session(rec_services, session["id"], status="failed", error_message="capture failed")
    expect(row).to_have_count(0)
    assert page.evaluate("Taperoom.live.polls") >= 2

    page.wait_for_function("window.wsAttempts.length >= 3", timeout=10_000)
    attempts: list[float] = page.evaluate("window.wsAttempts")
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert 0.6 <= gaps[0] < gaps[1], gaps  # 1 s, then 2 s (each +-20 % jitter)


# --------------------------------------------------------------------------- sessions


def test_sessions_filters_and_retry_upload(tab: Tab, rec_services: Any) -> None:
    """Session filters narrow the history; Retry upload re-queues or reports refusal."""
    page = tab.page
    a = create_station(tab.base, name="Alpha FM")
    b = create_station(tab.base, name="Beta Radio")
    rec_dir: Path = rec_services.settings.recordings_dir
    kept = rec_dir / "2025-01-02_Alpha FM.mp3"
    kept.write_bytes(b"\xff\xfb\x90\x00" * 1000)
    ok = add_session(rec_services, a, gaps=[{"at_seconds": 30.0, "length_seconds": 4.0,
                                        "reason": "dropped"}])
    gone = add_session(rec_services, a, transfer_status="failed", transfer_error_message="refused",
                       output_file_path=str(rec_dir / "missing.mp3"),
                       start_time=utcnow() - timedelta(minutes=90))
    retry = add_session(rec_services, a, transfer_status="failed", output_file_path=str(kept),
                        start_time=utcnow() - timedelta(minutes=80))
    bad = add_session(rec_services, b, status="failed", transfer_status="skipped",
                      error_message="capture failed: HTTP 404",
                      start_time=utcnow() - timedelta(minutes=10))

    tab.goto("/sessions")
    assert rows(page, "#sessions-table") == [bad["id"], retry["id"], gone["id"], ok["id"]]
    expect(page.locator(f'tr[data-session-id="{ok["id"]}"]')).to_contain_text("1 gap · 4.0 s")

    page.get_by_label("Status").select_option("failed")
    page.wait_for_url("**/sessions?status=failed*")
    assert rows(page, "#sessions-table") == [bad["id"]]
    expect(page.locator("#sessions-table")).to_contain_text("capture failed: HTTP 404")
    page.get_by_label("Status").select_option("")
    page.wait_for_url("**/sessions?status=&station=*")
    page.get_by_label("Station").select_option(label="Alpha FM")
    page.wait_for_url(f"**/sessions?status=&station={a['id']}*")
    assert rows(page, "#sessions-table") == [retry["id"], gone["id"], ok["id"]]

    page.locator(f'tr[data-session-id="{gone["id"]}"]').get_by_role(
        "button", name="Retry upload").click()
    expect(page.locator("#flash")).to_contain_text("gone")
    assert http.get(f"{tab.base}/api/sessions/{gone['id']}").json()["transfer_status"] == "failed"

    row = page.locator(f'tr[data-session-id="{retry["id"]}"]')
    row.get_by_role("button", name="Retry upload").click()
    expect(page.locator("#flash")).to_contain_text("Upload queued again")
    expect(row.get_by_role("button", name="Retry upload")).to_have_count(0)
    state = http.get(f"{tab.base}/api/sessions/{retry['id']}").json()["transfer_status"]
    assert state in ("pending", "in_progress"), state


# --------------------------------------------------------------------------- operations


@pytest.mark.slow
def test_logs_page_loads_and_filters_entries(tab: Tab) -> None:
    """/logs lists structured entries, filters them and refreshes automatically."""
    page = tab.page
    log = logging.getLogger("taperoom.recorder.dashboard_test")
    log.warning("upload of session 7 failed: connection refused",
                extra={"operation_type": "transfer", "session_id": 7})
    log.info("schedule 3 fired", extra={"operation_type": "scheduling"})
    tab.goto("/logs")
    table = page.locator("#log-table tbody")
    expect(table).to_contain_text("connection refused")
    expect(table).to_contain_text("schedule 3 fired")

    page.get_by_label("Operation type").select_option("transfer")
    expect(table).not_to_contain_text("schedule 3 fired")
    expect(table).to_contain_text("connection refused")
    expect(table.locator("tr").first).to_contain_text("#7")
    assert "operation_type=transfer" in page.url

    page.get_by_label("Operation type").select_option("")
    # every entry again before the level is chosen: the rows of the operation's filter
    # lack the INFO entry too, so the check below would pass on them before any answer
    expect(table).to_contain_text("schedule 3 fired")
    page.get_by_label("Level").select_option("WARNING")
    expect(table).not_to_contain_text("schedule 3 fired")
    page.get_by_label("Level").select_option("")
    page.get_by_label("Search").fill("fired")
    expect(table).to_contain_text("schedule 3 fired")
    expect(table).not_to_contain_text("connection refused")

    page.get_by_label("Search").fill("")
    expect(table).to_contain_text("connection refused")
    auto = page.get_by_label("Auto refresh")
    expect(auto).to_be_checked()
    page.evaluate("Taperoom.LOG_REFRESH_MS = 1000")  # 5 s in use; re-armed by the toggle
    auto.uncheck()
    auto.check()
    expect(table).to_contain_text("connection refused")
    loads = int(page.locator("#log-filters").get_attribute("data-loaded") or 0)
    log.error("late entry", extra={"operation_type": "system"})
    expect(table).to_contain_text("late entry", timeout=5000)  # by the auto refresh
    assert int(page.locator("#log-filters").get_attribute("data-loaded") or 0) > loads


def test_logs_filter_changed_during_a_load_wins(tab: Tab) -> None:
    """A filter changed while the page's first load is in flight is loaded at once (no
    auto refresh here to make up for it); the first answer, coming after the newer
    one, does not replace its rows."""
    page = tab.page
    log = logging.getLogger("taperoom.recorder.dashboard_test")
    log.warning("upload of session 8 failed: timed out",
                extra={"operation_type": "transfer", "session_id": 8})
    log.info("schedule 4 fired", extra={"operation_type": "scheduling"})
    first = HeldAnswer(page, "**/api/system/logs?*")
    tab.goto("/logs?auto=0")
    expect(page.get_by_label("Auto refresh")).not_to_be_checked()
    first.wait()  # the unfiltered list, held
    page.get_by_label("Operation type").select_option("transfer")
    table = page.locator("#log-table tbody")
    expect(table).to_contain_text("timed out")
    expect(table).not_to_contain_text("schedule 4 fired")
    form = page.locator("#log-filters")
    expect(form).to_have_attribute("data-loaded", "1")

    first.release()
    expect(form).to_have_attribute("data-loaded", "1")
    expect(table).to_contain_text("timed out")
    expect(table).not_to_contain_text("schedule 4 fired")
    assert "operation_type=transfer" in page.url


def test_backup_list_coming_late_keeps_the_new_backup(tab: Tab) -> None:
    """The page's first backup list, answered after the list reloaded by Create backup,
    does not take the new backup's row away."""
    page = tab.page
    create_station(tab.base)
    first = HeldAnswer(page, "**/api/backup/list")
    tab.goto("/backup")
    first.wait()  # the first list (no backups yet), held
    page.get_by_label("Backup name (optional)").fill("late")
    page.get_by_role("button", name="Create backup").click()
    row = page.locator('tr[data-backup="late.zip"]')
    expect(row).to_contain_text("1 stations")
    status = page.locator("#backup-status")
    expect(status).to_have_text("1 backup")

    first.release()
    expect(row).to_contain_text("1 stations")
    expect(status).to_have_text("1 backup")
    expect(page.locator("#backup-empty")).to_be_hidden()


def test_backup_create_validate_delete(tab: Tab, rec_services: Any) -> None:
    """A backup made from /backup is listed with its contents, validates, and deletes."""
    page = tab.page
    create_station(tab.base)
    tab.goto("/backup")
    expect(page.locator("#backup-empty")).to_be_visible()
    page.get_by_label("Backup name (optional)").fill("nightly")
    page.get_by_role("button", name="Create backup").click()
    row = page.locator('tr[data-backup="nightly.zip"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("1 stations")
    expect(row.locator('[data-badge="valid"]')).to_have_text("valid")
    assert (rec_services.settings.backups_dir / "nightly.zip").is_file()
    assert [b["filename"] for b in http.get(tab.base + "/api/backup/list").json()] == [
        "nightly.zip"]

    row.get_by_role("button", name="Validate nightly.zip").click()
    expect(page.locator("#flash")).to_contain_text("nightly.zip is valid")
    row.get_by_role("button", name="Delete nightly.zip").click()
    expect(row).to_have_count(0)
    expect(page.locator("#backup-empty")).to_be_visible()
    assert not (rec_services.settings.backups_dir / "nightly.zip").exists()


def test_unknown_id_shows_the_404_page(tab: Tab) -> None:
    """An unknown station or schedule id opens the HTML 404 page with the nav."""
    page = tab.page
    tab.goto("/streams/999/edit", status=404)
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    tab.goto("/schedules/abc/edit", status=404)
    page.get_by_role("link", name="Back to the dashboard").click()
    page.wait_for_url(tab.base + "/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_backup_restore_brings_a_deleted_station_back(tab: Tab, rec_services: Any) -> None:
    """Restore from /backup (after the confirm dialog) brings back a station and its
    schedule deleted since the backup, and says what it restored."""
    page = tab.page
    st = create_station(tab.base)
    r = http.post(tab.base + "/api/schedules", json={
        "stream_config_id": st["id"], "cron_expression": "0 21 * * 1-5", "duration_minutes": 60})
    assert r.status_code == 201, r.text
    tab.goto("/backup")
    expect(page.locator("#backup-empty")).to_be_visible()  # the page's first list
    page.get_by_label("Backup name (optional)").fill("before")
    page.get_by_role("button", name="Create backup").click()
    row = page.locator('tr[data-backup="before.zip"]')
    expect(row).to_contain_text("1 stations")
    assert http.delete(f"{tab.base}/api/streams/{st['id']}").status_code == 200
    assert http.get(tab.base + "/api/streams").json() == []
    row.get_by_role("button", name="Restore before.zip").click()
    expect(page.locator("#flash")).to_contain_text("Restored 1 streams")
    assert any(d.startswith("Restore before.zip?") for d in tab.dialogs)
    stations = http.get(tab.base + "/api/streams").json()
    assert [s["name"] for s in stations] == [STATION["name"]]
    schedules = http.get(tab.base + "/api/schedules").json()
    assert [(s["cron_expression"], s["stream_config_id"]) for s in schedules] == [
        ("0 21 * * 1-5", stations[0]["id"])]
    assert schedules[0]["next_run_time"] is not None  # the restored schedule has its job
