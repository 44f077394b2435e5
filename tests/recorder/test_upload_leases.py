"""Claims, heartbeats and the hand-over of uploads, on the recorder's SQLite database
(the same SQL runs on PostgreSQL in test_upload_workers.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from taperoom.recorder import repository as repo
from taperoom.recorder.models import utcnow
from taperoom.recorder.upload_leases import SessionUploadLeases, StaleUploadWatcher
from tests.polling import wait_for


def _session(services: Any, path: Path, *, dest: str = "u@127.0.0.1:2222:/in/") -> int:
    with services.db() as db, db.begin():
        station = repo.create_station(db, {
            "name": f"Station {dest}", "stream_url": "http://127.0.0.1:9/live", "artist": "K",
            "album": "J", "album_artist": "K", "scp_destination": dest})
        return int(repo.create_session(db, {
            "station_id": station.id, "station_name": station.name, "trigger": "manual",
            "start_time": utcnow(), "status": "completed", "output_file_path": str(path),
            "transfer_status": "pending"}).id)


def _state(services: Any, sid: int) -> tuple[str, int]:
    with services.db() as db:
        row = repo.get_session(db, sid)
        return row.transfer_status, row.transfer_attempts


def test_an_attempt_is_claimed_once_and_fenced_by_the_next(rec_services: Any,
                                                           tmp_path: Path) -> None:
    """A second task of the same attempt gets no claim; a later attempt overtakes an
    earlier one, whose heartbeat then fails; a finished upload is claimed by nobody."""
    sid = _session(rec_services, tmp_path / "a.mp3")
    leases = SessionUploadLeases(rec_services.db, stale_after=60)
    assert leases.heartbeat_seconds == 15
    assert leases.claim(sid, 1)
    assert not leases.claim(sid, 1)
    assert leases.renew(sid, 1)
    assert _state(rec_services, sid) == ("in_progress", 1)
    assert leases.claim(sid, 2)  # the retry overtakes attempt 1
    assert not leases.renew(sid, 1)
    assert leases.renew(sid, 2)
    with rec_services.db() as db, db.begin():
        repo.update_session(db, sid, {"transfer_status": "completed"})
    assert not leases.claim(sid, 3)
    assert not leases.renew(sid, 2)


def test_watcher_hands_a_silent_upload_to_its_next_attempt(rec_services: Any,
                                                           tmp_path: Path) -> None:
    """An upload whose heartbeat stopped is taken (once) and its next attempt queued;
    one still renewed is left alone; one whose file is gone fails."""
    local = tmp_path / "a.mp3"
    local.write_bytes(b"\xff\xfb" * 100)
    silent = _session(rec_services, local)
    gone = _session(rec_services, tmp_path / "missing.mp3", dest="u@127.0.0.1:2222:/b/")
    alive = _session(rec_services, local, dest="u@127.0.0.1:2222:/c/")
    leases = SessionUploadLeases(rec_services.db, stale_after=0.5)
    for sid in (silent, gone, alive):
        assert leases.claim(sid, 1)
    watcher = StaleUploadWatcher(rec_services.db, rec_services.uploads, stale_after=0.5)
    start = utcnow()

    def stale() -> bool:
        leases.renew(alive, 1)
        return utcnow() - start > timedelta(seconds=0.6)

    wait_for(stale, 10, "the silent uploads to be stale")
    taken = watcher.check()
    assert sorted(taken) == sorted([silent, gone])
    assert watcher.check() == []  # taken once
    assert _state(rec_services, silent) == ("pending", 1)
    assert _state(rec_services, gone)[0] == "failed"
    assert _state(rec_services, alive) == ("in_progress", 1)
    queued = rec_services.uploads.entries()
    assert [(q.session_id, q.attempt) for q in queued] == [(silent, 2)]
    assert leases.claim(silent, 2)


def test_a_retry_asked_for_after_the_last_attempt_can_be_claimed(rec_services: Any,
                                                                 tmp_path: Path) -> None:
    """The dashboard's retry of a failed upload starts a new round of attempts, whose
    first attempt gets the claim."""
    local = tmp_path / "a.mp3"
    local.write_bytes(b"\xff\xfb" * 100)
    sid = _session(rec_services, local)
    with rec_services.db() as db, db.begin():
        repo.update_session(db, sid, {"transfer_status": "failed", "transfer_attempts": 6})
    rec_services.recordings.retry_transfer(sid)
    assert _state(rec_services, sid) == ("pending", 0)
    assert [(q.session_id, q.attempt) for q in rec_services.uploads.entries()] == [(sid, 1)]
    assert SessionUploadLeases(rec_services.db, stale_after=60).claim(sid, 1)
