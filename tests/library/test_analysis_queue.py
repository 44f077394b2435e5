"""The analysis queue's behaviour: priorities, the concurrency limit, retries with backoff,
missing files, cancel, resume after a restart, automatic analysis of new tracks.

Every test runs the library's services on a real SQLite database and a real Huey
queue in ``tmp_path``, on short generated drum loops.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taperoom.library import models
from taperoom.library.analysis.service import AnalysisConflict, AnalysisNotFound
from taperoom.library.context import LibraryServices
from tests.conftest import LiveServer
from tests.library.analysislib import (
    DEADLINE,
    Timeline,
    drum_loop,
    fresh,
    job_status,
    scanned_library,
    track_by_name,
    wait_job,
)
from tests.polling import wait_for


def _loops(folder: Path, bpms: list[float], seconds: float = 6.0) -> list[str]:
    names = []
    for i, bpm in enumerate(bpms):
        name = f"{folder.name}-loop{i}.wav"
        drum_loop(folder / name, bpm, seconds, root=196.0 + 20 * i)
        names.append(name)
    return names


def test_deck_load_goes_first_then_high_normal_low(
        services: Callable[..., LibraryServices], tmp_path: Path) -> None:
    """With one job at a time, a deck load's quick pass runs before a high request, which
    runs before a normal one and the automatic (low) analysis of a new track; the rest
    of the deck load's analysis then waits its turn at normal priority."""
    svc = services(max_concurrent_analysis=1)
    names = _loops(tmp_path / "music", [120, 124, 128, 132])
    scanned_library(svc, tmp_path / "music")
    low, normal, high, deck = (track_by_name(svc, n) for n in names)
    timeline = Timeline(svc)
    svc.analysis.stop()
    assert svc.analysis.queue()["queue"]["isProcessing"] is False
    assert svc.analysis.queue_unanalysed(track_ids=[low.id]) == 1
    svc.analysis.request({"track_id": normal.id})
    svc.analysis.request({"track_id": high.id, "priority": "high"})
    job = svc.analysis.analyze_for_deck(deck.id)
    assert job is not None and job["priority"] == "high"
    assert job["callback_metadata"] == {"type": "deck_load", "trackId": deck.id}
    stats = svc.analysis.queue()["stats"]["queued"]
    assert stats == {"total": 4, "high": 2, "normal": 1, "low": 1}
    svc.analysis.start()
    for t in (low, normal, high, deck):
        assert wait_job(svc, t.file_hash) == "completed"
    assert timeline.started_order() == [deck.file_hash, high.file_hash, normal.file_hash,
                                        deck.file_hash, low.file_hash]
    assert timeline.most_at_once() == 1
    quick = [d for _, d in timeline.of("analysis:progress", deck.file_hash)
             if d["stage"] == "basic_features"]
    assert quick and quick[0]["progress"] == 50  # one of its two stages, stored first
    deck_job = svc.analysis.job(deck.file_hash)
    assert deck_job["stages_completed"] == ["basic_features", "characteristics"]
    assert fresh(svc, deck.id).loudness is not None
    with svc.db() as s:
        rows = {r.job_id: r.priority for r in s.query(models.AnalysisJob)}
    assert rows[low.file_hash] == "low" and rows[normal.file_hash] == "normal"
    # an analysed track loaded on a deck needs nothing
    assert svc.analysis.analyze_for_deck(deck.id) is None


def test_no_more_jobs_run_at_once_than_the_limit(
        services: Callable[..., LibraryServices], tmp_path: Path) -> None:
    """MAX_CONCURRENT_ANALYSIS=2: four queued recordings never run more than two at once,
    and the queue route says so."""
    svc = services(max_concurrent_analysis=2)
    names = _loops(tmp_path / "music", [118, 122, 126, 130], seconds=10.0)
    scanned_library(svc, tmp_path / "music")
    tracks = [track_by_name(svc, n) for n in names]
    timeline = Timeline(svc)
    svc.analysis.stop()
    for t in tracks:
        svc.analysis.request({"track_id": t.id})
    svc.analysis.start()
    seen = []

    def all_done() -> bool:
        seen.append(svc.analysis.queue()["queue"])
        return all(job_status(svc, t.file_hash) == "completed" for t in tracks)

    wait_for(all_done, DEADLINE, "every job to complete")
    assert 1 <= timeline.most_at_once() <= 2
    assert all(q["maxConcurrentJobs"] == 2 and q["processingCount"] <= 2 for q in seen)


def test_an_unreadable_file_is_retried_with_backoff_then_fails(
        services: Callable[..., LibraryServices], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """A file that cannot be decoded is tried 1 + ANALYSIS_MAX_RETRIES times, each wait
    twice the one before, then fails with the decoder's error; the consumer goes on.
    Each retry is one log line naming the attempt and the error."""
    caplog.set_level(logging.INFO)
    svc = services(analysis_max_retries=2, analysis_retry_delay=0.5)
    names = _loops(tmp_path / "music", [120, 126])
    scanned_library(svc, tmp_path / "music")
    bad, good = (track_by_name(svc, n) for n in names)
    Path(bad.file_path).write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(4000))
    timeline = Timeline(svc)
    svc.analysis.request({"track_id": bad.id})
    assert wait_job(svc, bad.file_hash) == "failed"
    job = svc.analysis.job(bad.file_hash)
    assert job["retry_count"] == 2 and job["max_retries"] == 2
    assert job["last_error"].startswith(f"Cannot analyse {bad.file_path}: ")
    starts = [t for t, _ in timeline.of("analysis:started", bad.file_hash)]
    assert len(starts) == 3
    assert starts[1] - starts[0] >= 0.5 and starts[2] - starts[1] >= 1.0
    [(_, failed)] = timeline.of("analysis:failed", bad.file_hash)
    assert failed["error"] == job["last_error"]
    assert fresh(svc, bad.id).date_analyzed is None
    retries = [r.getMessage() for r in caplog.records
               if bad.file_hash in r.getMessage() and "attempt" in r.getMessage()]
    assert len(retries) == 2
    for line, (n, delay) in zip(retries, ((1, 0.5), (2, 1.0)), strict=True):
        assert re.fullmatch(rf"analysis job \d+ of {bad.file_hash} queued again "
                            rf"\(in {delay:.1f} s\): attempt {n} of 3 failed: "
                            + re.escape(job["last_error"]), line), line
    svc.analysis.request({"track_id": good.id})
    assert wait_job(svc, good.file_hash) == "completed"


def test_a_missing_file_fails_at_once_with_its_path(
        services: Callable[..., LibraryServices], tmp_path: Path) -> None:
    """A track whose file is gone fails without retries, naming the file."""
    svc = services(analysis_retry_delay=30.0)
    [name] = _loops(tmp_path / "music", [120])
    scanned_library(svc, tmp_path / "music")
    track = track_by_name(svc, name)
    os.unlink(track.file_path)
    svc.analysis.request({"track_id": track.id})
    assert wait_job(svc, track.file_hash) == "failed"
    job = svc.analysis.job(track.file_hash)
    assert job["last_error"] == f"File not found: {track.file_path}"
    assert job["retry_count"] == 0


def test_cancel_a_queued_and_a_running_job(
        services: Callable[..., LibraryServices], tmp_path: Path) -> None:
    """A queued job cancelled never starts; a running one stops during its decoding and
    stores nothing; a finished job cannot be cancelled (409), an unknown one is 404."""
    svc = services(max_concurrent_analysis=1)
    names = _loops(tmp_path / "music", [120, 126])
    # long enough that it is still decoding when the cancel comes, whatever the load
    drum_loop(tmp_path / "music" / "long.wav", 124, seconds=600.0)
    scanned_library(svc, tmp_path / "music")
    queued, after = (track_by_name(svc, n) for n in names)
    long = track_by_name(svc, "long.wav")
    timeline = Timeline(svc)
    svc.analysis.stop()
    svc.analysis.request({"track_id": queued.id})
    assert svc.analysis.cancel(queued.file_hash) == {
        "message": "Job cancelled successfully", "job_id": queued.file_hash}
    assert job_status(svc, queued.file_hash) == "cancelled"
    svc.analysis.start()
    svc.analysis.request({"track_id": long.id})
    wait_for(lambda: timeline.of("analysis:progress", long.file_hash), DEADLINE,
             "the long job runs")
    svc.analysis.cancel(long.file_hash)
    assert wait_job(svc, long.file_hash) == "cancelled"
    svc.analysis.request({"track_id": after.id})
    assert wait_job(svc, after.file_hash) == "completed"
    assert queued.file_hash not in timeline.started_order()
    assert timeline.of("analysis:complete", long.file_hash) == []
    assert fresh(svc, long.id).bpm is None and fresh(svc, queued.id).date_analyzed is None
    with pytest.raises(AnalysisConflict):
        svc.analysis.cancel(after.file_hash)
    with pytest.raises(AnalysisNotFound):
        svc.analysis.cancel("0" * 16)


def test_a_job_that_has_just_completed_cannot_be_cancelled(
        services: Callable[..., LibraryServices], tmp_path: Path) -> None:
    """A cancel that comes once the job's results are stored, while its worker is still
    winding the job up, is 409 like any cancel of a finished job, never a 200 that
    claims to cancel a completed analysis."""
    svc = services(max_concurrent_analysis=1)
    (name,) = _loops(tmp_path / "music", [122])
    scanned_library(svc, tmp_path / "music")
    track = track_by_name(svc, name)
    answers: list[str] = []

    def cancel_on_complete(event: str, data: dict[str, Any]) -> None:
        # sent by the worker after the results are stored, before its job ends
        if event == "analysis:complete" and data.get("jobId") == track.file_hash:
            try:
                svc.analysis.cancel(track.file_hash)
                answers.append("cancelled")
            except AnalysisConflict:
                answers.append("409")

    svc.bus.subscribe(cancel_on_complete)
    svc.analysis.request({"track_id": track.id})
    assert wait_job(svc, track.file_hash) == "completed"
    wait_for(lambda: answers, DEADLINE, "the cancel sent on analysis:complete")
    assert answers == ["409"]
    assert job_status(svc, track.file_hash) == "completed"


def test_queued_and_interrupted_jobs_resume_after_a_restart(
        services: Callable[..., LibraryServices], tmp_path: Path) -> None:
    """Jobs queued, and a job running, when the services close are finished by the
    services built again on the same data folder."""
    first = services(max_concurrent_analysis=1)
    names = _loops(tmp_path / "music", [120, 126])
    # long enough that it still runs when the services close, whatever the load
    drum_loop(tmp_path / "music" / "long.wav", 124, seconds=300.0)
    scanned_library(first, tmp_path / "music")
    a, b = (track_by_name(first, n) for n in names)
    long = track_by_name(first, "long.wav")
    timeline = Timeline(first)
    first.analysis.request({"track_id": long.id, "priority": "high"})
    wait_for(lambda: timeline.of("analysis:progress", long.file_hash), DEADLINE,
             "the long job runs")
    first.analysis.request({"track_id": a.id})
    first.analysis.request({"track_id": b.id})
    first.close()
    assert job_status(first, long.file_hash) == "queued"  # interrupted, back in the queue
    second = services(max_concurrent_analysis=1)
    for t in (long, a, b):
        assert wait_job(second, t.file_hash) == "completed"
    assert fresh(second, long.id).bpm is not None
    assert len(timeline.of("analysis:started", long.file_hash)) == 1  # the first run


def test_new_tracks_are_analysed_after_a_scan_and_at_start_up(
        services: Callable[..., LibraryServices], tmp_path: Path,
        live_server: Callable[[Any], LiveServer]) -> None:
    """With ANALYZE_ON_SCAN a scan queues its new tracks (priority low); at start-up the
    server queues every track lacking an analysis; without it, nothing is queued."""
    from taperoom.library.app import create_app

    off = services(analyze_on_scan=False)
    first = _loops(tmp_path / "one", [120])
    scanned_library(off, tmp_path / "one")
    assert off.jobs.active_jobs("analysis") == []
    old = track_by_name(off, first[0])
    off.close()

    on = services(analyze_on_scan=True)
    second = _loops(tmp_path / "two", [128])
    scanned_library(on, tmp_path / "two")
    new = track_by_name(on, second[0])
    assert wait_job(on, new.file_hash) == "completed"
    assert on.analysis.job(new.file_hash)["priority"] == "low"
    assert fresh(on, new.id).date_analyzed is not None
    assert job_status(on, old.file_hash) is None  # left to the start-up pass
    live_server(create_app(services=on))
    assert wait_job(on, old.file_hash) == "completed"
    assert fresh(on, old.id).bpm is not None


def test_a_job_of_a_dead_process_is_queued_again_and_its_row_says_so(
        services: Callable[..., LibraryServices], tmp_path: Path) -> None:
    """After a crash, a job left running by a dead process goes back to the queue and its
    contract row back to ``queued``; a row whose job is gone fails, saying why; the
    next leader with consumers finishes the job."""
    from datetime import timedelta

    from taperoom.db import transaction
    from taperoom.jobs import Priority
    from taperoom.library.models import Job, utcnow

    svc = services(max_concurrent_analysis=0)  # this one runs no analysis
    names = _loops(tmp_path / "music", [120, 126])
    scanned_library(svc, tmp_path / "music")
    crashed, orphan = (track_by_name(svc, n) for n in names)
    long_ago = utcnow() - timedelta(minutes=5)
    with transaction(svc.db) as s:
        s.add(Job(kind="analysis", subject=crashed.file_hash,
                  active_key=f"analysis:{crashed.file_hash}", state="running",
                  priority=int(Priority.NORMAL), params={"track_id": crashed.id},
                  cancel_requested=False, owner="nowhere.invalid:1:dead",
                  created_at=long_ago, started_at=long_ago, heartbeat_at=long_ago))
        for t in (crashed, orphan):
            s.add(models.AnalysisJob(job_id=t.file_hash, track_id=t.id, status="processing",
                                     priority="normal", stages_total=2, created_at=long_ago))
    svc.close()
    again = services(max_concurrent_analysis=0)
    assert job_status(again, crashed.file_hash) == "queued"
    assert job_status(again, orphan.file_hash) == "failed"
    assert "interrupted" in (again.analysis.job(orphan.file_hash)["last_error"] or "")
    again.close()
    last = services(max_concurrent_analysis=1)
    assert wait_job(last, crashed.file_hash) == "completed"
    assert fresh(last, crashed.id).bpm is not None


def test_a_follower_worker_controls_the_leaders_analysis(
        services: Callable[..., LibraryServices], tmp_path: Path) -> None:
    """Analysis runs in the leader; another worker process's status, stop and start act
    on the leader's consumers, and its requests run there."""
    from taperoom.library.context import build_services as build

    leader = services(max_concurrent_analysis=1)
    follower = build(leader.settings, lead=False)
    try:
        [name] = _loops(tmp_path / "music", [120])
        scanned_library(leader, tmp_path / "music")
        track = track_by_name(leader, name)
        assert follower.analysis.status()["pid"] == os.getpid()
        follower.analysis.stop()
        assert not leader.jobs.consuming("analysis")
        assert follower.analysis.health()[0] is False
        follower.analysis.request({"track_id": track.id})
        assert follower.analysis.queue()["stats"]["queued"]["total"] == 1
        follower.analysis.start()
        assert leader.jobs.consuming("analysis")
        assert wait_job(follower, track.file_hash) == "completed"
        assert follower.jobs.running_here() == set()
    finally:
        follower.close()


def test_a_track_added_outside_a_scan_is_analysed(
        services: Callable[..., LibraryServices], tmp_path: Path,
        live_server: Callable[[Any], LiveServer]) -> None:
    """With ANALYZE_ON_SCAN, a track added through ``POST /api/tracks`` (as the watcher
    adds them, one by one) is analysed at low priority."""
    import httpx

    from taperoom.library.app import create_app
    from tests.library.test_scanner import add_directory

    svc = services(analyze_on_scan=True)
    [name] = _loops(tmp_path / "music", [124])
    add_directory(svc, tmp_path / "music")
    server = live_server(create_app(services=svc))
    answer = httpx.post(f"{server.url}/api/tracks",
                        json={"file_path": str(tmp_path / "music" / name)}, timeout=30)
    assert answer.status_code == 201, answer.text
    track = fresh(svc, answer.json()["data"]["id"])
    assert track.file_hash
    assert wait_job(svc, track.file_hash) == "completed"
    assert svc.analysis.job(track.file_hash)["priority"] == "low"
    assert fresh(svc, track.id).bpm is not None


def test_a_first_beat_the_user_set_keeps_the_beat_grid(
        lib_ctx: LibraryServices, lib_server: LiveServer, tmp_path: Path) -> None:
    """``POST /api/tracks/:id/first-beat-offset`` marks the first beat as the user's:
    stage data then leaves it and the beat grid alone, and sets the rest."""
    import httpx

    [name] = _loops(tmp_path / "music", [120])
    scanned_library(lib_ctx, tmp_path / "music")
    track = track_by_name(lib_ctx, name)
    r = httpx.post(f"{lib_server.url}/api/tracks/{track.id}/first-beat-offset",
                   json={"first_beat_offset": 0.1}, timeout=30)
    assert r.status_code == 200, r.text
    assert fresh(lib_ctx, track.id).user_fields == ["first_beat_offset"]
    lib_ctx.analysis.store_stage(track.file_hash, "basic_features", {
        "tempo": 120.0, "key": 9, "mode": 0, "beats": [0.35, 0.85], "downbeats": [0.35],
        "firstBeatOffset": 0.35})
    now = fresh(lib_ctx, track.id)
    assert (now.first_beat_offset, now.beats_data, now.downbeats_data) == (0.1, None, None)
    assert (now.bpm, now.musical_key, now.mode) == (120.0, 9, 0)


def test_a_request_for_a_waiting_recording_joins_its_job_and_moves_it_up(
        services: Callable[..., LibraryServices], tmp_path: Path) -> None:
    """A copy's request while the recording's automatic (low) job waits does not queue a
    second job: it answers the waiting one, raised to the request's priority."""
    from tests.library.analysislib import copy_file

    svc = services()
    [name] = _loops(tmp_path / "music", [120])
    copy_file(tmp_path / "music" / name, tmp_path / "music" / "copy" / name)
    scanned_library(svc, tmp_path / "music")
    original, copy = track_by_name(svc, name), track_by_name(svc, f"copy/{name}")
    svc.analysis.stop()
    assert svc.analysis.queue_unanalysed() == 1  # one recording, two tracks
    answer = svc.analysis.request({"track_id": copy.id, "priority": "high"})
    assert answer["job"]["job_id"] == original.file_hash
    # the waiting job was queued for one of the two copies (the first one added, by path)
    first = min((original, copy), key=lambda t: t.file_path)
    assert answer["job"]["track_id"] == first.id and answer["job"]["priority"] == "high"
    assert svc.analysis.queue()["stats"]["queued"] == {"total": 1, "high": 1, "normal": 0,
                                                       "low": 0}
    with svc.db() as s:
        assert s.query(models.AnalysisJob).count() == 1
    svc.analysis.start()
    assert wait_job(svc, original.file_hash) == "completed"
    assert fresh(svc, copy.id).bpm is not None


def test_a_queued_job_follows_its_track_to_new_audio(
        services: Callable[..., LibraryServices], tmp_path: Path) -> None:
    """A rescan that finds a file's audio changed (a new audio hash) while the job of its
    old audio waits moves that job to the new hash, at its priority; the old hash's job
    ends (it would fail later: no track has that audio any more)."""
    svc = services()
    [name] = _loops(tmp_path / "music", [120])
    did = scanned_library(svc, tmp_path / "music")
    track = track_by_name(svc, name)
    old_hash = track.file_hash
    svc.analysis.stop()
    assert svc.analysis.request({"track_id": track.id, "priority": "high"})["job"][
        "job_id"] == old_hash
    drum_loop(tmp_path / "music" / name, 132.0, 7.0, root=233.0)  # new audio, same file
    svc.scans.scan_sync(did, "full")
    new_hash = fresh(svc, track.id).file_hash
    assert new_hash and new_hash != old_hash
    assert svc.jobs.active("analysis", old_hash) is None
    moved = svc.jobs.active("analysis", new_hash)
    assert moved is not None and moved.state == "queued"
    job = svc.analysis.job(new_hash)
    assert (job["track_id"], job["status"], job["priority"]) == (track.id, "queued", "high")
    assert svc.analysis.job(old_hash)["status"] == "cancelled"
    svc.analysis.start()
    assert wait_job(svc, new_hash) == "completed"
    assert fresh(svc, track.id).bpm == pytest.approx(132.0, abs=1.0)
