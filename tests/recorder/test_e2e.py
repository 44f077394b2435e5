"""End to end: a station on a real Icecast-like server, recorded through the whole
pipeline (capture, MP3, tags, cover art, cue sheet, gaps) and uploaded to a real
SFTP server, started by hand, by the scheduler and from the command line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import av
import httpx
import pytest
from mutagen.id3 import ID3
from PIL import Image

from taperoom.recorder.settings import RecorderSettings
from tests.conftest import LiveServer
from tests.polling import wait_for
from tests.recorder.sshserver import SshTestServer
from tests.recorder.streamserver import Plan, StreamServer

DENVER = ZoneInfo("America/Denver")


def _png(path: Path, size: int = 1200) -> Path:
    Image.new("RGB", (size, size // 2), (200, 40, 90)).save(path, "PNG")
    return path



def _mp3_seconds(path: Path) -> float:
    with av.open(str(path)) as f:
        stream = f.streams.audio[0]
        n = sum(fr.samples for fr in f.decode(stream))
        return n / stream.rate


def _station(client: httpx.Client, stream_url: str, dest: str = "") -> dict[str, Any]:
    r = client.post("/api/streams", json={
        "name": "KTPR Night Jazz", "stream_url": stream_url, "artist": "KTPR",
        "album": "Night Jazz", "album_artist": "KTPR 88.1",
        "output_filename_pattern": "{date}_{name}_{artist}.mp3", "scp_destination": dest})
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
def server_for(rec_settings: Callable[..., RecorderSettings],
               live_server: Callable[[Any], LiveServer]) -> Any:
    """Start a recorder on real uvicorn with settings overrides; closes it after."""
    from taperoom.recorder.app import create_app
    from taperoom.recorder.context import build_services

    opened: list[Any] = []

    def start(**overrides: Any) -> tuple[LiveServer, Any]:
        services = build_services(rec_settings(**overrides))
        opened.append(services)
        return live_server(create_app(services=services)), services

    yield start
    for services in opened:
        services.close()


@pytest.mark.slow
def test_record_now_with_drop_icy_titles_artwork_and_upload(
        server_for: Any, stream_server: StreamServer, sftp_server: SshTestServer,
        tmp_path: Path) -> None:
    """A 7 s recording across a dropped connection becomes one tagged MP3 with its gap,
    a cue sheet of the ICY titles, cover art, and a verified upload (local copy removed)."""
    stream_server.mount("/jazz.mp3", titles=[(0.0, "Miles Davis - So What"),
                                             (2.5, "Bill Evans - Peace Piece")],
                        plans=[Plan(drop_after=3.0)])
    server, _ctx = server_for(ssh_config_dir=sftp_server.config_dir, retry_delay_seconds=1.0)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        st = _station(client, stream_server.url("/jazz.mp3"), sftp_server.destination("/shows/"))
        r = client.post(f"/api/streams/{st['id']}/artwork",
                        files={"artwork": ("cover.png", _png(tmp_path / "c.png").read_bytes(),
                                           "image/png")})
        assert r.status_code == 200, r.text
        r = client.post(f"/api/streams/{st['id']}/record", json={"duration_seconds": 7})
        assert r.status_code == 202, r.text
        sid = r.json()["id"]
        active = client.get("/api/sessions/active").json()
        assert [s["id"] for s in active["active_sessions"]] == [sid]

        def done() -> dict[str, Any] | None:
            s = client.get(f"/api/sessions/{sid}").json()
            return s if s["transfer_status"] in ("completed", "failed") else None

        session = wait_for(done, 60, "recording and upload")
    assert session["status"] == "completed", session
    assert session["transfer_status"] == "completed", session
    assert session["reconnects"] >= 1
    assert len(session["gaps"]) >= 1
    gap = session["gaps"][0]
    assert 2.0 < gap["at_seconds"] < 4.5 and gap["length_seconds"] >= 0
    assert session["stream_copy"] is True
    # the uploaded copy is the recording, byte for byte in size; the local one is gone
    started = datetime.fromisoformat(session["start_time"]).astimezone(DENVER)
    name = f"{started:%Y-%m-%d}_KTPR Night Jazz_KTPR.mp3"
    remote = sftp_server.root / "shows" / name
    assert remote.is_file()
    assert session["remote_path"] == f"/shows/{name}"
    assert remote.stat().st_size == session["file_size_bytes"]
    assert not Path(session["output_file_path"]).exists()
    assert session["local_deleted"] is True
    # audio: one gapless, decodable file about as long as the time connected
    seconds = _mp3_seconds(remote)
    assert 4.0 < seconds < 7.5, seconds
    # ID3v2.4 tags as the contract says
    tags = ID3(remote)
    assert tags.version[:2] == (2, 4)
    assert str(tags["TIT2"]) == f"{started:%Y-%m-%d} KTPR Night Jazz"
    assert str(tags["TPE1"]) == "KTPR" and str(tags["TALB"]) == "Night Jazz"
    assert str(tags["TPE2"]) == "KTPR 88.1"
    assert str(tags["TRCK"]) == str((started.date() - date(2020, 1, 1)).days + 1)
    assert str(tags["TDRC"]) == str(started.year)
    apic = tags.getall("APIC")[0]
    assert apic.type == 3 and apic.desc == "Cover"
    assert apic.mime == "image/png"  # small enough in bytes: embedded as uploaded
    assert Image.open(io.BytesIO(apic.data)).size == (1200, 600)
    # the cue sheet travelled with it and lists both titles, in the order they were on air
    cue = (remote.with_suffix(".cue")).read_text()
    assert "So What" in cue and "Peace Piece" in cue and f'FILE "{name}" MP3' in cue
    assert cue.index("So What") < cue.index("Peace Piece")


def test_scheduled_run_goes_through_the_same_pipeline(
        server_for: Any, stream_server: StreamServer) -> None:
    """A schedule fired by APScheduler records its duration, tags the file and, with no
    destination, keeps it locally (transfer skipped); last_run_time is set."""
    stream_server.mount("/news.mp3", metaint=None)
    server, services = server_for()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        st = _station(client, stream_server.url("/news.mp3"))
        r = client.post("/api/schedules", json={"stream_config_id": st["id"],
                                                "cron_expression": "0 21 * * *",
                                                "duration_minutes": 1})
        assert r.status_code == 201, r.text
        sched = r.json()
        assert datetime.fromisoformat(sched["next_run_time"]).astimezone(DENVER).hour == 21
        services.scheduler.run_now(sched["id"])
        session = wait_for(lambda: (client.get("/api/sessions", params={"schedule_id": sched["id"]})
                                    .json() or [None])[0], 10, "the scheduled session")
        assert session["status"] == "recording" and session["trigger"] == "schedule"

        def audio_seconds() -> float:
            active = client.get("/api/sessions/active").json()["active_sessions"]
            return float(((active or [{}])[0].get("progress") or {}).get("audio_seconds", 0))

        wait_for(lambda: audio_seconds() > 1.5, 15, "audio")
        client.post(f"/api/sessions/{session['id']}/stop")
        final = wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed") else None)(
            client.get(f"/api/sessions/{session['id']}").json()), 30, "processing")
        assert final["status"] == "completed", final
        assert final["transfer_status"] == "skipped"
        assert "stopped on request" in (final["error_message"] or "")
        assert Path(final["output_file_path"]).is_file()
        assert ID3(final["output_file_path"])["TIT2"]
        again = client.get(f"/api/schedules/{sched['id']}").json()
        assert again["last_run_time"] is not None
        assert datetime.fromisoformat(again["next_run_time"]).astimezone(DENVER).hour == 21


def test_concurrency_limit_and_disk_guard(server_for: Any,
                                          stream_server: StreamServer) -> None:
    """Beyond MAX_CONCURRENT_RECORDINGS a record request is 409; below the free-space
    threshold it is 507; neither leaves a running session behind."""
    stream_server.mount("/a.mp3", metaint=None)
    server, services = server_for(max_concurrent_recordings=1)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        st = _station(client, stream_server.url("/a.mp3"))
        first = client.post(f"/api/streams/{st['id']}/record", json={"duration_seconds": 30})
        assert first.status_code == 202
        second = client.post(f"/api/streams/{st['id']}/record", json={"duration_seconds": 5})
        assert second.status_code == 409 and "MAX_CONCURRENT_RECORDINGS" in second.json()["message"]
        client.post(f"/api/sessions/{first.json()['id']}/stop")
        wait_for(lambda: not services.recordings.is_running(first.json()["id"]), 20, "stop")
        services.settings.min_free_disk_mb = 1e12
        full = client.post(f"/api/streams/{st['id']}/record", json={"duration_seconds": 5})
        assert full.status_code == 507, full.text
        assert client.get("/api/sessions/active").json()["count"] == 0
        bad = client.post(f"/api/streams/{st['id']}/record", json={"duration_seconds": -1})
        assert bad.status_code == 400
        assert client.post("/api/streams/999/record",
                           json={"duration_seconds": 5}).status_code == 404


def test_restart_keeps_an_interrupted_recording(
        rec_settings: Callable[..., RecorderSettings], stream_server: StreamServer) -> None:
    """A session left 'recording' by a killed process is failed at the next start and
    the part it captured is renamed to its final name, tagged and kept."""
    from taperoom.db import transaction
    from taperoom.recorder import repository as repo
    from taperoom.recorder.context import build_services

    stream_server.mount("/k.mp3", metaint=None)
    settings = rec_settings()
    services = build_services(settings)
    try:
        with transaction(services.db) as db:
            st = repo.create_station(db, {
                "name": "K", "stream_url": stream_server.url("/k.mp3"), "artist": "A",
                "album": "B", "album_artist": "C", "output_filename_pattern": "{name}.mp3",
                "scp_destination": ""})
            row = repo.create_session(db, {"station_id": st.id, "station_name": "K",
                                           "start_time": datetime.now(UTC).replace(tzinfo=None),
                                           "status": "recording"})
            sid = row.id
        partial = settings.recordings_dir / ".partial" / f"session-{sid}.mp3"
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"".join(stream_server.media.mp3_frames[:200]))  # ~5 s of MP3
        services.start()
        with services.db() as db:
            row = repo.get_session(db, sid)
            assert row.status == "failed" and "interrupted" in (row.error_message or "")
            kept = Path(row.output_file_path or "")
        assert kept == settings.recordings_dir / "K.mp3" and kept.is_file()
        assert not partial.exists()
        assert str(ID3(kept)["TPE1"]) == "A"
    finally:
        services.close()


@pytest.mark.slow
def test_cli_record_runs_the_pipeline(rec_settings: Callable[..., RecorderSettings],
                                      stream_server: StreamServer, sftp_server: SshTestServer,
                                      tmp_path: Path) -> None:
    """`taperoom recorder record <station> --duration 3` records, tags, uploads (to the
    SFTP server, through the queue) and reports; a station kept local says so."""
    from taperoom.db import transaction
    from taperoom.recorder import repository as repo
    from taperoom.recorder.context import build_services

    stream_server.mount("/cli.mp3", metaint=None)
    settings = rec_settings(ssh_config_dir=sftp_server.config_dir)
    services = build_services(settings)
    with transaction(services.db) as db:
        repo.create_station(db, {"name": "CLI FM", "stream_url": stream_server.url("/cli.mp3"),
                                 "artist": "A", "album": "B", "album_artist": "C",
                                 "output_filename_pattern": "{name}_{date}.mp3",
                                 "scp_destination": ""})
        repo.create_station(db, {"name": "Up FM", "stream_url": stream_server.url("/cli.mp3"),
                                 "artist": "U", "album": "P", "album_artist": "UP",
                                 "output_filename_pattern": "{name}_{timestamp}.mp3",
                                 "scp_destination": sftp_server.destination("/cli/")})
    services.close()
    env = {**os.environ, "DATA_DIR": str(settings.data_dir),
           "RECORDINGS_DIR": str(settings.recordings_dir), "ARTWORK_DIR": str(settings.artwork_dir),
           "SSH_CONFIG_DIR": str(settings.ssh_config_dir), "LOG_DIR": str(settings.log_dir),
           "TZ": "America/Denver", "MIN_FREE_DISK_MB": "1",
           "STREAM_ALLOWED_NETWORKS": ",".join(map(str, settings.stream_allowed_networks))}
    proc = subprocess.run([sys.executable, "-m", "taperoom", "recorder", "record", "cli fm",
                           "--duration", "3"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "kept locally" in proc.stderr
    files = list(settings.recordings_dir.glob("CLI FM_*.mp3"))
    assert len(files) == 1
    assert 1.5 < _mp3_seconds(files[0]) < 4.0
    up = subprocess.run([sys.executable, "-m", "taperoom", "recorder", "record", "Up FM",
                         "--duration", "3"], env=env, capture_output=True, text=True,
                        timeout=90, cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert "uploaded to /cli/Up FM_" in up.stderr, up.stderr
    uploaded = list((sftp_server.root / "cli").glob("Up FM_*.mp3"))
    assert len(uploaded) == 1
    assert 1.5 < _mp3_seconds(uploaded[0]) < 4.0
    assert str(ID3(uploaded[0])["TPE2"]) == "UP"
    assert not list(settings.recordings_dir.glob("Up FM_*.mp3"))  # verified, then removed
    missing = subprocess.run([sys.executable, "-m", "taperoom", "recorder", "record", "nope",
                              "--duration", "3"], env=env, capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
    assert missing.returncode == 4 and "no station" in missing.stderr


@pytest.mark.slow
def test_upload_retries_until_the_server_is_back(
        server_for: Any, stream_server: StreamServer, sftp_server: SshTestServer) -> None:
    """With the SFTP server down, the session shows the failed attempt and its next
    try; once the server is back the queued retry uploads the file."""
    stream_server.mount("/r.mp3", metaint=None)
    sftp_server.stop()
    server, _ctx = server_for(ssh_config_dir=sftp_server.config_dir, retry_delay_seconds=0.5,
                              transfer_backoff_max_seconds=1.0)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        st = _station(client, stream_server.url("/r.mp3"), sftp_server.destination("/in/"))
        sid = client.post(f"/api/streams/{st['id']}/record",
                          json={"duration_seconds": 2}).json()["id"]
        failed_once = wait_for(lambda: (lambda s: s if s["transfer_attempts"] >= 2 else None)(
            client.get(f"/api/sessions/{sid}").json()), 40, "failed upload attempts")
        assert failed_once["status"] == "completed"
        assert failed_once["transfer_status"] in ("pending", "in_progress")
        assert "next attempt" in (failed_once["transfer_error_message"] or "")
        sftp_server.start()
        done = wait_for(lambda: (lambda s: s if s["transfer_status"] == "completed" else None)(
            client.get(f"/api/sessions/{sid}").json()), 40, "upload after restart")
    assert (sftp_server.root / "in" / Path(done["remote_path"]).name).stat().st_size \
        == done["file_size_bytes"]


@pytest.mark.slow
def test_split_tracks_cuts_the_recording_at_icy_title_changes(
        server_for: Any, stream_server: StreamServer) -> None:
    """A station with split_tracks gets, beside the whole MP3 and its cue sheet, one file
    per ICY title, cut on frame boundaries: the pieces add up to the whole recording."""
    from taperoom.recorder.encode import mp3_frames

    server, _ctx = server_for()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/api/streams", json={
            "name": "Split FM", "stream_url": stream_server.url("/split.mp3"), "artist": "S",
            "album": "T", "album_artist": "U", "output_filename_pattern": "{name}.mp3",
            "split_tracks": True})
        assert r.status_code == 201 and r.json()["split_tracks"] is True, r.text
        # the station goes on air with the recording's request: it starts in the first title
        stream_server.mount("/split.mp3", metaint=4096,
                            titles=[(0.0, "Alpha - One"), (2.0, "Beta - Two")])
        sid = client.post(f"/api/streams/{r.json()['id']}/record",
                          json={"duration_seconds": 4.5}).json()["id"]
        session = wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed")
                                    else None)(client.get(f"/api/sessions/{sid}").json()),
                           30, "the recording")
    assert session["status"] == "completed", session
    whole = Path(session["output_file_path"])
    assert Path(session["cue_sheet_path"]).read_text().count("TRACK ") == 2
    pieces = sorted((whole.parent / f"{whole.stem} - tracks").glob("*.mp3"))
    assert [p.name for p in pieces] == ["01 - Alpha - One.mp3", "02 - Beta - Two.mp3"]
    def frames(path: Path) -> list[bytes]:
        data = path.read_bytes()
        return [data[f.offset:f.offset + f.length] for f in mp3_frames(data)]

    assert [f for p in pieces for f in frames(p)] == frames(whole)
    first = _mp3_seconds(pieces[0])
    assert 1.0 < first < 3.0, first  # the title changed 2 s into the station's time
    # each piece is tagged as a track of the show: song, performer, "n/N", show as album
    show = str(ID3(whole)["TIT2"])
    for n, (piece, performer, song) in enumerate(
            zip(pieces, ["Alpha", "Beta"], ["One", "Two"], strict=True), 1):
        tags = ID3(piece)
        assert tags.version[:2] == (2, 4)
        assert (str(tags["TIT2"]), str(tags["TPE1"])) == (song, performer)
        assert str(tags["TALB"]) == show and str(tags["TPE2"]) == "U"
        assert str(tags["TRCK"]) == f"{n}/2"
        assert str(tags["TDRC"]) == show[:4]


@pytest.mark.slow
def test_rtmp_station_records_through_the_pipeline(server_for: Any, stream_server: StreamServer
                                                   ) -> None:
    """A station with an ``rtmp://`` URL is accepted and records like any other (real
    RTMP server, FFmpeg's client): a tagged MP3 copied from the stream."""
    from tests.recorder.rtmpserver import RtmpServer

    media = stream_server.media
    server, _ctx = server_for()
    with RtmpServer(media.mp3_frames, media.mp3_frame_seconds) as rtmp, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        st = _station(client, rtmp.url("live/ktpr"))
        assert st["stream_url"] == rtmp.url("live/ktpr")
        test = client.post(f"/api/streams/{st['id']}/test").json()["connection_test"]
        assert test["success"] and test["codec"] in ("mp3", "mp3float"), test
        sid = client.post(f"/api/streams/{st['id']}/record",
                          json={"duration_seconds": 3}).json()["id"]
        session = wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed")
                                    else None)(client.get(f"/api/sessions/{sid}").json()),
                           30, "the RTMP recording")
    assert session["status"] == "completed", session
    assert session["stream_copy"] is True and session["source_codec"] == "mp3"
    assert rtmp.plays[-1] == "ktpr"
    assert 1.5 < _mp3_seconds(Path(session["output_file_path"])) < 3.2
    assert str(ID3(session["output_file_path"])["TALB"]) == "Night Jazz"


@pytest.mark.slow
def test_schedule_that_cannot_start_retries_within_its_slot(
        server_for: Any, stream_server: StreamServer) -> None:
    """A scheduled run refused by the concurrency limit leaves a failed session and is
    retried after RETRY_DELAY_SECONDS, at most max_retries times; once a slot is free a
    retry records the rest of the time slot, and success resets retry_count."""
    stream_server.mount("/busy.mp3", metaint=None)
    server, services = server_for(max_concurrent_recordings=1, retry_delay_seconds=1.0)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        st = _station(client, stream_server.url("/busy.mp3"))

        def schedule(max_retries: int) -> int:
            r = client.post("/api/schedules", json={
                "stream_config_id": st["id"], "cron_expression": "0 21 * * *",
                "duration_minutes": 1, "max_retries": max_retries})
            assert r.status_code == 201, r.text
            return int(r.json()["id"])

        def sessions_of(sched_id: int) -> list[dict[str, Any]]:
            return list(reversed(client.get("/api/sessions",
                                            params={"schedule_id": sched_id}).json()))

        blocker = client.post(f"/api/streams/{st['id']}/record",
                              json={"duration_seconds": 120}).json()["id"]
        # max_retries=1: the run and one retry fail, then it gives up
        once = schedule(1)
        services.scheduler.run_now(once)
        tried = wait_for(lambda: (lambda s: s if len(s) >= 2 else None)(sessions_of(once)),
                         15, "the retry of the refused run")
        assert [(s["trigger"], s["status"]) for s in tried] == [("schedule", "failed"),
                                                                ("retry", "failed")]
        assert all("MAX_CONCURRENT_RECORDINGS" in s["error_message"] for s in tried)
        time.sleep(2.5)
        assert len(sessions_of(once)) == 2
        assert client.get(f"/api/schedules/{once}").json()["retry_count"] == 1
        # max_retries=5: the blocker stops, and the next retry records the rest of the slot
        patient = schedule(5)
        services.scheduler.run_now(patient)
        wait_for(lambda: sessions_of(patient), 10, "the refused run")
        client.post(f"/api/sessions/{blocker}/stop")
        wait_for(lambda: not services.recordings.is_running(blocker), 20, "the blocker to stop")
        rec = wait_for(lambda: next((s for s in sessions_of(patient)
                                     if s["status"] == "recording"), None), 15, "the retry")
        assert rec["trigger"] == "retry"
        assert 40 < rec["planned_duration_seconds"] < 59
        wait_for(lambda: services.recordings.active() and (
            services.recordings.active()[0].get("progress") or {}).get("audio_seconds", 0) > 1,
                 15, "audio")
        client.post(f"/api/sessions/{rec['id']}/stop")
        done = wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed")
                                 else None)(client.get(f"/api/sessions/{rec['id']}").json()),
                        20, "processing")
        assert done["status"] == "completed", done
        assert client.get(f"/api/schedules/{patient}").json()["retry_count"] == 0


@pytest.mark.slow
def test_new_user_story_station_schedule_uploaded_tagged_mp3(
        server_for: Any, stream_server: StreamServer, sftp_server: SshTestServer) -> None:
    """What a new user does: add a station with an SFTP destination, schedule it, and
    (once the scheduler fires it) find the tagged MP3 and its cue sheet on the server."""
    stream_server.mount("/story.mp3", titles=[(0.0, "Nina Simone - Sinnerman")])
    server, services = server_for(ssh_config_dir=sftp_server.config_dir)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        st = _station(client, stream_server.url("/story.mp3"),
                      sftp_server.destination("/radio/"))
        sched = client.post("/api/schedules", json={
            "stream_config_id": st["id"], "cron_expression": "30 20 * * 1-5",
            "duration_minutes": 1}).json()
        services.scheduler.run_now(sched["id"])
        rec = wait_for(lambda: next((s for s in client.get(
            "/api/sessions", params={"schedule_id": sched["id"]}).json()
            if (s.get("duration_seconds") or 0) == 0 and s["status"] == "recording"), None),
            10, "the scheduled recording")
        wait_for(lambda: ((services.recordings.active() or [{}])[0].get("progress") or {}).get(
            "audio_seconds", 0) > 2.5, 15, "audio")
        client.post(f"/api/sessions/{rec['id']}/stop")
        done = wait_for(lambda: (lambda s: s if s["transfer_status"] in ("completed", "failed")
                                 else None)(client.get(f"/api/sessions/{rec['id']}").json()),
                        40, "the upload")
    assert done["status"] == "completed" and done["transfer_status"] == "completed", done
    started = datetime.fromisoformat(done["start_time"]).astimezone(DENVER)
    remote = sftp_server.root / "radio" / f"{started:%Y-%m-%d}_KTPR Night Jazz_KTPR.mp3"
    assert done["remote_path"] == "/radio/" + remote.name
    assert remote.stat().st_size == done["file_size_bytes"]
    assert str(ID3(remote)["TIT2"]) == f"{started:%Y-%m-%d} KTPR Night Jazz"
    assert ID3(remote).getall("APIC") == []  # no artwork uploaded for this station
    assert "Sinnerman" in remote.with_suffix(".cue").read_text()
    assert 2.0 < _mp3_seconds(remote) < 10.0
