"""/api/sessions on a real server: history filters, statistics, active sessions, stop and
retry-transfer; sessions are inserted through the repository (test setup) or recorded
for real from an MP3 stream served on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.db import transaction
from taperoom.recorder import repository as repo
from taperoom.recorder.models import utcnow
from tests.conftest import free_port
from tests.polling import wait_for
from tests.recorder.streamserver import StreamServer

http = httpx.Client(timeout=30)
STATION = {"name": "Test FM", "stream_url": "http://127.0.0.1:9/live", "artist": "Test",
           "album": "Shows", "album_artist": "Test FM"}
SESSION_KEYS = {"id", "schedule_id", "start_time", "end_time", "status", "output_file_path",
                "error_message", "file_size_bytes", "transfer_status"}


def assert_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    """The response has `status` and the contract's error body."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status_code"] == status and "error" in body and "message" in body
    return body


def add_session(services: Any, station_id: int | None, status: str, *, age_days: float = 0.0,
                schedule_id: int | None = None, transfer: str = "pending",
                path: str | None = None) -> int:
    """Insert one session row (test setup through the repository); returns its id."""
    start = utcnow() - timedelta(days=age_days)
    with transaction(services.db) as db:
        row = repo.create_session(db, {
            "station_id": station_id, "schedule_id": schedule_id,
            "station_name": "Test FM", "trigger": "schedule", "start_time": start,
            "end_time": start + timedelta(hours=1) if status in ("completed", "failed") else None,
            "planned_duration_seconds": 3600.0, "status": status,
            "transfer_status": transfer, "output_file_path": path,
            "file_size_bytes": 1000 if path else None})
        return row.id


@pytest.fixture
def base(rec_server: Any) -> str:
    """Base URL of the server."""
    return rec_server.url


@pytest.fixture
def station(base: str) -> dict[str, Any]:
    """One station without an upload destination."""
    return http.post(f"{base}/api/streams", json=STATION).json()


# --------------------------------------------------------------------------- reads


def test_list_filters_and_shape(base: str, station: dict[str, Any], rec_services: Any) -> None:
    """Sessions list newest first with status, schedule, station and recent_days filters."""
    other = http.post(f"{base}/api/streams", json={**STATION, "name": "Other"}).json()
    sched = http.post(f"{base}/api/schedules", json={
        "stream_config_id": station["id"], "cron_expression": "0 21 * * *",
        "duration_minutes": 60, "is_active": False}).json()
    old = add_session(rec_services, station["id"], "completed", age_days=10)
    mid = add_session(rec_services, station["id"], "failed", age_days=2, schedule_id=sched["id"])
    new = add_session(rec_services, other["id"], "completed", age_days=0.1)

    url = f"{base}/api/sessions"
    rows = http.get(url).json()
    assert [r["id"] for r in rows] == [new, mid, old]
    assert set(rows[0]) >= SESSION_KEYS
    assert rows[0]["start_time"][-6] in "+-" and rows[0]["end_time"][-6] in "+-"
    ids = lambda **p: [r["id"] for r in http.get(url, params=p).json()]  # noqa: E731
    assert ids(status="completed") == [new, old]
    assert ids(status="failed") == [mid]
    assert ids(schedule_id=sched["id"]) == [mid]
    assert ids(stream_config_id=station["id"]) == [mid, old]
    assert ids(recent_days=5) == [new, mid]
    assert ids(limit=1, skip=1) == [mid]
    got = http.get(f"{url}/{mid}").json()
    assert got["id"] == mid and got["status"] == "failed" and got["schedule_id"] == sched["id"]


@pytest.mark.parametrize("params", [{"status": "bad"}, {"status": "COMPLETED"},
                                    {"limit": 0}, {"limit": 5000}, {"skip": -1},
                                    {"schedule_id": "x"}, {"stream_config_id": 0},
                                    {"recent_days": 0}, {"recent_days": "soon"}])
def test_bad_list_params_are_400(base: str, params: dict[str, Any]) -> None:
    """Unknown statuses and malformed filters are 400 (never a 500)."""
    assert_error(http.get(f"{base}/api/sessions", params=params), 400)


def test_statistics(base: str, station: dict[str, Any], rec_services: Any) -> None:
    """Statistics count sessions by status; success rate is of finished sessions."""
    assert http.get(f"{base}/api/sessions/statistics").json() == {
        "total_sessions": 0, "completed_sessions": 0, "failed_sessions": 0,
        "active_sessions": 0, "success_rate": 0.0}
    for status in ("completed", "completed", "completed", "failed", "processing"):
        add_session(rec_services, station["id"], status)
    assert http.get(f"{base}/api/sessions/statistics").json() == {
        "total_sessions": 5, "completed_sessions": 3, "failed_sessions": 1,
        "active_sessions": 1, "success_rate": 75.0}


@pytest.mark.parametrize("path", ["999", "0", "99999999999999999999"])
def test_unknown_session_ids_are_404(base: str, path: str) -> None:
    """get, stop and retry-transfer answer 404 for unknown ids."""
    assert_error(http.get(f"{base}/api/sessions/{path}"), 404)
    assert_error(http.post(f"{base}/api/sessions/{path}/stop"), 404)
    assert_error(http.post(f"{base}/api/sessions/{path}/retry-transfer"), 404)
    assert_error(http.get(f"{base}/api/sessions/abc"), 404)


def test_stop_and_retry_conflicts(base: str, station: dict[str, Any], rec_services: Any,
                                  tmp_path: Path) -> None:
    """Stopping a session that is not running, or retrying an upload that did not fail, is 409."""
    done = add_session(rec_services, station["id"], "completed", transfer="completed")
    assert_error(http.post(f"{base}/api/sessions/{done}/stop"), 409)
    assert_error(http.post(f"{base}/api/sessions/{done}/retry-transfer"), 409)
    failed = add_session(rec_services, station["id"], "failed", transfer="failed")
    assert_error(http.post(f"{base}/api/sessions/{failed}/retry-transfer"), 409)
    mp3 = tmp_path / "x.mp3"
    mp3.write_bytes(b"\xff\xfb" * 10)
    no_dest = add_session(rec_services, station["id"], "completed", transfer="failed",
                          path=str(mp3))
    body = assert_error(http.post(f"{base}/api/sessions/{no_dest}/retry-transfer"), 409)
    assert "destination" in body["message"]


def test_active_empty(base: str) -> None:
    """With nothing recording, active sessions are an empty list with count 0."""
    assert http.get(f"{base}/api/sessions/active").json() == {"active_sessions": [],
                                                              "count": 0}


# --------------------------------------------------------------------------- real recording


class _Mp3Stream(BaseHTTPRequestHandler):
    mp3: bytes = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("icy-name", "Test FM")
        self.end_headers()
        data, pos, chunk = self.mp3, 0, 4096
        rate = 64_000  # bytes/s: twice a 256 kb/s stream, so the capture never starves
        t0 = time.monotonic()
        try:
            while True:
                self.wfile.write(data[pos:pos + chunk])
                pos = (pos + chunk) % len(data)
                sent_time = (time.monotonic() - t0)
                if sent_time < pos / rate:
                    time.sleep(min(0.05, pos / rate - sent_time))
        except OSError:
            pass

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stream_url(corpus: Path) -> Iterator[str]:
    """An endless MP3 stream (a real corpus MP3 in a loop) on 127.0.0.1."""
    _Mp3Stream.mp3 = (corpus / "scanner" / "real_music_tagged" / "09 - Maxstack - Aberrations.mp3"
                      ).read_bytes()
    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), _Mp3Stream)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/live"
    srv.shutdown()
    srv.server_close()


def test_record_now_active_and_stop(base: str, stream_url: str) -> None:
    """Record-now answers 202 with a recording session; it shows in active with progress;
    stop ends it early and the session leaves the active list."""
    st = http.post(f"{base}/api/streams", json={**STATION, "stream_url": stream_url}).json()
    resp = http.post(f"{base}/api/streams/{st['id']}/record", json={"duration_seconds": 120})
    assert resp.status_code == 202, resp.text
    session = resp.json()
    assert session["status"] == "recording" and session["stream_config_id"] == st["id"]
    sid = session["id"]

    def progressing() -> Any:
        active = http.get(f"{base}/api/sessions/active").json()
        found = [s for s in active["active_sessions"] if s["id"] == sid]
        ok = found and (found[0].get("progress") or {}).get("bytes_written", 0) > 0
        return active if ok else None

    active = wait_for(progressing, 20, "bytes written by the recording")
    assert active["count"] == 1
    assert http.get(f"{base}/api/sessions/{sid}").json()["progress"]["bytes_written"] > 0

    resp = http.post(f"{base}/api/sessions/{sid}/stop")
    assert resp.status_code == 200, resp.text
    assert resp.json()["session_id"] == sid and isinstance(resp.json()["message"], str)
    done = wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed") else None)(
        http.get(f"{base}/api/sessions/{sid}").json()), 20, "the stopped session to end")
    assert done["status"] == "completed", done
    assert done["end_time"] is not None
    assert datetime.fromisoformat(done["end_time"]) - datetime.fromisoformat(
        done["start_time"]) < timedelta(seconds=60)
    assert http.get(f"{base}/api/sessions/active").json()["count"] == 0
    assert_error(http.post(f"{base}/api/sessions/{sid}/stop"), 409)


# --------------------------------------------------------------------------- file names


def test_record_now_refuses_a_stored_pattern_with_a_format_spec(base: str, rec_services: Any
                                                                ) -> None:
    """A station whose pattern was stored before patterns were checked (``{name:d}``,
    inserted through the repository) is refused by record-now with a 422 that names the
    pattern, before any capture: no session, no file."""
    with transaction(rec_services.db) as db:
        sid = repo.create_station(db, {**STATION, "name": "Old FM",
                                       "output_filename_pattern": "{name:d}.mp3"}).id
    body = assert_error(http.post(f"{base}/api/streams/{sid}/record",
                                  json={"duration_seconds": 30}), 422)
    assert "{name:d}" in body["message"] and "format spec" in body["message"]
    assert http.get(f"{base}/api/sessions").json() == []
    recordings = rec_services.settings.recordings_dir
    assert [p for p in recordings.rglob("*") if p.is_file()] == []


@pytest.mark.slow
def test_a_failed_session_leaves_no_file(base: str, rec_services: Any,
                                         stream_server: StreamServer) -> None:
    """When processing fails after the capture (here the cue sheet cannot be written:
    a folder has its name), the session fails and every file it made is removed: the
    partial recording and the MP3 it was renamed to (the original left them behind)."""
    stream_server.mount("/live.mp3", metaint=2048, titles=[(0, "A - One")])
    st = http.post(f"{base}/api/streams", json={
        **STATION, "name": "Cue FM", "stream_url": stream_server.url("/live.mp3"),
        "output_filename_pattern": "{name}.mp3"}).json()
    recordings = rec_services.settings.recordings_dir
    (recordings / "Cue FM.cue").mkdir()  # not ours: it stays
    resp = http.post(f"{base}/api/streams/{st['id']}/record", json={"duration_seconds": 2})
    assert resp.status_code == 202, resp.text
    sid = resp.json()["id"]
    done = wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed") else None)(
        http.get(f"{base}/api/sessions/{sid}").json()), 30, "the session to end")
    assert done["status"] == "failed" and "cue sheet" in done["error_message"], done
    assert done["output_file_path"] is None
    left = sorted(str(p.relative_to(recordings)) for p in recordings.rglob("*"))
    assert left == [".partial", "Cue FM.cue"], left


# --------------------------------------------------------------------------- dead URLs


@pytest.fixture
def no_audio_server(rec_settings: Any, live_server: Any) -> Iterator[tuple[str, Any]]:
    """The recorder with NO_AUDIO_TIMEOUT_SECONDS=2 (and the default 10 s connect and
    stall timeouts) on a real server: (base URL, context)."""
    from taperoom.recorder.app import create_app
    from taperoom.recorder.context import build_services

    services = build_services(rec_settings(no_audio_timeout_seconds=2.0))
    try:
        yield live_server(create_app(services=services)).url, services
    finally:
        services.close()


def test_dead_urls_fail_and_free_their_slots(no_audio_server: tuple[str, Any],
                                             stream_server: StreamServer) -> None:
    """Three hour-long record-now calls on URLs that never give audio (a closed port, a
    server that accepts and never answers, a mount that answers 503) take all three
    slots; each fails after NO_AUDIO_TIMEOUT_SECONDS with a reason that says so and
    frees its slot, so a fourth recording can start (the original held the slots for
    hours)."""
    base, services = no_audio_server
    assert services.settings.max_concurrent_recordings == 3
    stream_server.mount("/silent", kind="hang")
    stream_server.mount("/busy.mp3", refuse_for=3600)
    stream_server.mount("/live.mp3")
    urls = [f"http://127.0.0.1:{free_port()}/live", stream_server.url("/silent"),
            stream_server.url("/busy.mp3")]
    ids = []
    for i, url in enumerate(urls):
        st = http.post(f"{base}/api/streams", json={**STATION, "name": f"Dead {i}",
                                                    "stream_url": url}).json()
        resp = http.post(f"{base}/api/streams/{st['id']}/record",
                         json={"duration_seconds": 3600})
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["id"])
    live = http.post(f"{base}/api/streams", json={
        **STATION, "name": "Live", "stream_url": stream_server.url("/live.mp3")}).json()
    assert_error(http.post(f"{base}/api/streams/{live['id']}/record",
                           json={"duration_seconds": 60}), 409)  # all slots taken

    def all_ended() -> Any:
        rows = [http.get(f"{base}/api/sessions/{i}").json() for i in ids]
        return rows if all(r["status"] == "failed" for r in rows) else None

    rows = wait_for(all_ended, 60, "the three dead recordings to fail")
    for row, why in zip(rows, ["connect failed", "no answer", "http 503"], strict=True):
        assert "no audio for 2 s" in row["error_message"] and why in row["error_message"], row
        assert row["output_file_path"] is None
    assert http.get(f"{base}/api/sessions/active").json()["count"] == 0
    resp = http.post(f"{base}/api/streams/{live['id']}/record", json={"duration_seconds": 60})
    assert resp.status_code == 202, resp.text
    assert http.post(f"{base}/api/sessions/{resp.json()['id']}/stop").status_code == 200
    wait_for(lambda: http.get(f"{base}/api/sessions/active").json()["count"] == 0, 20,
             "no active session")
