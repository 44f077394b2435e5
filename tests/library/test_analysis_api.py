"""The /api/analysis routes on a real server: requests, jobs, results on every copy of a
recording, waveforms, the callback of an external server, user-set fields, events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.library import models
from tests.conftest import LiveServer
from tests.library.analysislib import (
    analysis_events,
    copy_file,
    drum_loop,
    fresh,
    scanned_library,
    track_by_name,
    wait_job,
)


@pytest.fixture
def lib(tmp_path: Path, lib_ctx: Any, lib_server: LiveServer) -> dict[str, Any]:
    """A library of a 120 BPM loop, a copy of it in a sub-folder, and a 128 BPM loop."""
    folder = tmp_path / "music"
    loop = drum_loop(folder / "loop.wav", 120.0)
    copy_file(loop, folder / "copies" / "loop copy.wav")
    drum_loop(folder / "other.wav", 128.0, root=196.0)
    scanned_library(lib_ctx, folder)
    a = track_by_name(lib_ctx, "loop.wav")
    b = track_by_name(lib_ctx, "copies/loop copy.wav")
    assert a.file_hash and a.file_hash == b.file_hash
    return {"url": lib_server.url + "/api/analysis", "a": a, "b": b,
            "other": track_by_name(lib_ctx, "other.wav"), "folder": folder}


async def test_request_analyses_every_copy_and_serves_waveforms(
        lib: dict[str, Any], lib_ctx: Any, lib_server: LiveServer) -> None:
    """A request queues the recording's job (id = audio hash); a WebSocket client sees it
    start, progress per stage and complete; both copies get the results; the waveforms
    are stored once per hash and served at every zoom level and one by one."""
    a, b = lib["a"], lib["b"]
    answers: list[httpx.Response] = []

    def start() -> None:
        answers.append(httpx.post(f"{lib['url']}/request", json={"track_id": a.id},
                                  timeout=30))

    events = await analysis_events(lib_server.url, a.file_hash, start)
    answer = answers[0]
    assert answer.status_code == 200
    body = answer.json()
    assert body["message"] == "Analysis requested successfully"
    assert set(body["job"]) == {"job_id", "track_id", "status", "priority",
                                "progress_percent", "created_at"}
    assert body["job"]["job_id"] == a.file_hash and body["job"]["track_id"] == a.id
    assert body["job"]["priority"] == "normal"

    names = [e["event"] for e in events]
    assert names[0] == "analysis:started" and names[-1] == "analysis:complete"
    stages = [e["data"]["stage"] for e in events if e["event"] == "analysis:progress"]
    assert {"decode", "rhythm", "key", "waveforms", "loudness", "characteristics"} <= set(stages)
    percents = [e["data"]["progress"] for e in events if e["event"] == "analysis:progress"]
    assert percents == sorted(percents)
    complete = events[-1]["data"]
    assert complete["trackId"] == a.id and sorted(complete["trackIds"]) == sorted([a.id, b.id])
    assert complete["results"]["bpm"] == pytest.approx(120.0, abs=1.0)

    job = httpx.get(f"{lib['url']}/jobs/{a.file_hash}", timeout=30).json()["job"]
    assert job["status"] == "completed" and job["progress_percent"] == 100
    assert job["stages_completed"] == ["basic_features", "characteristics"]
    assert job["stages_total"] == 2 and job["retry_count"] == 0 and job["max_retries"] == 3
    assert job["file_path"] == a.file_path and job["last_error"] is None

    for track in (fresh(lib_ctx, a.id), fresh(lib_ctx, b.id)):
        assert track.bpm == pytest.approx(120.0, abs=1.0)
        assert track.musical_key is not None and track.mode in (0, 1)
        assert track.date_analyzed is not None and track.analysis_version == 2
        assert track.loudness is not None and track.energy_level is not None
        assert track.valence is None  # no model here: never invented
        beats = json.loads(track.beats_data or b"null")
        assert len(beats) >= 12 and track.first_beat_offset == pytest.approx(beats[0], abs=1e-3)
    other = fresh(lib_ctx, lib["other"].id)
    assert other.bpm is None and other.date_analyzed is None

    with lib_ctx.db() as s:
        stored = s.query(models.Waveform).filter(
            models.Waveform.file_hash == a.file_hash).all()
        assert sorted(w.zoom_level for w in stored) == [0, 1, 2]
        assert all(bytes(w.data[:4]) == b"TRWF" for w in stored)
    waves = httpx.get(f"{lib['url']}/waveforms/{b.id}", timeout=30).json()
    assert waves["track_id"] == b.id
    assert [w["num_pixels"] for w in waves["waveforms"]] == [1000, 4000, 16000]
    for w in waves["waveforms"]:
        assert w["file_hash"] == a.file_hash and w["sample_rate"] == 44100
        for band in ("low", "mid", "high"):
            for kind in ("amplitude", "intensity"):
                values = w[f"{band}_freq_{kind}"]
                assert len(values) == w["num_pixels"] and 0 <= min(values) <= max(values) <= 1
    assert max(waves["waveforms"][0]["low_freq_amplitude"]) == 1.0
    one = httpx.get(f"{lib['url']}/waveforms/{b.id}/1", timeout=30).json()
    assert one == {"waveform": waves["waveforms"][1]}
    # the track routes serve the same stored waveform
    track_wave = httpx.get(f"{lib_server.url}/api/tracks/{a.id}/waveform?zoom=2",
                           timeout=30).json()["data"]
    assert track_wave["low_freq_amplitude"] == waves["waveforms"][2]["low_freq_amplitude"]


def test_request_errors_are_bare_with_their_status(lib: dict[str, Any],
                                                   lib_ctx: Any) -> None:
    """Malformed requests 400, unknown ids 404, in the analysis routes' bare shape."""
    url = lib["url"]
    cases = [
        (httpx.post(f"{url}/request", json={}, timeout=30), 400, "Invalid request"),
        (httpx.post(f"{url}/request", json={"track_id": lib["a"].id, "priority": "asap"},
                    timeout=30), 400, "Invalid request"),
        (httpx.post(f"{url}/request", json=[1, 2], timeout=30), 400, "Invalid request"),
        (httpx.post(f"{url}/request", json={"track_id": "nope"}, timeout=30), 404,
         "Track not found"),
        (httpx.post(f"{url}/reanalyze", json={}, timeout=30), 400, "Invalid request"),
        (httpx.get(f"{url}/jobs/0123456789abcdef", timeout=30), 404, "Job not found"),
        (httpx.delete(f"{url}/jobs/0123456789abcdef", timeout=30), 404, "Job not found"),
        (httpx.get(f"{url}/waveforms/nope", timeout=30), 404, "Track not found"),
        (httpx.get(f"{url}/waveforms/{lib['a'].id}/3", timeout=30), 400,
         "Invalid zoom level"),
        (httpx.get(f"{url}/waveforms/{lib['a'].id}/x", timeout=30), 400,
         "Invalid zoom level"),
        (httpx.get(f"{url}/waveforms/{lib['a'].id}/0", timeout=30), 404,
         "Waveform not found"),
        (httpx.post(f"{url}/callback", json={"stage": "basic_features"}, timeout=30), 400,
         "Invalid callback"),
    ]
    for answer, status, error in cases:
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert set(body) == {"error", "message"} and body["error"] == error, body
    assert httpx.get(f"{url}/waveforms/{lib['a'].id}", timeout=30).json() == {
        "track_id": lib["a"].id, "waveforms": []}


def test_user_set_bpm_and_key_survive_reanalysis(lib: dict[str, Any], lib_ctx: Any,
                                                 lib_server: LiveServer) -> None:
    """A BPM and key the user set through the track route stay through a forced
    re-analysis (with the beat grid and mode that go with them); the copy of the same
    recording, which the user did not touch, gets the analysed values."""
    a, b = lib["a"], lib["b"]
    put = httpx.put(f"{lib_server.url}/api/tracks/{a.id}",
                    json={"bpm": 99.5, "musical_key": 2}, timeout=30)
    assert put.status_code == 200, put.text
    assert sorted(fresh(lib_ctx, a.id).user_fields or []) == ["bpm", "musical_key"]
    answer = httpx.post(f"{lib['url']}/reanalyze", json={"track_ids": [a.id]}, timeout=30)
    assert answer.json() == {"message": "Re-analysis queued for 1 tracks", "summary": {
        "total_requested": 1, "queued": 1, "failed": 0, "errors": []}}
    assert wait_job(lib_ctx, a.file_hash) == "completed"
    mine, copy = fresh(lib_ctx, a.id), fresh(lib_ctx, b.id)
    assert (mine.bpm, mine.musical_key) == (99.5, 2)
    assert mine.beats_data is None and mine.mode is None  # the grid and mode go with them
    assert mine.date_analyzed is not None and mine.loudness is not None
    assert copy.bpm == pytest.approx(120.0, abs=1.0) and copy.beats_data is not None
    # null hands the field back to the analysis
    httpx.put(f"{lib_server.url}/api/tracks/{a.id}", json={"bpm": None}, timeout=30)
    assert fresh(lib_ctx, a.id).user_fields == ["musical_key"]
    httpx.post(f"{lib['url']}/request", json={"track_id": a.id, "force": True}, timeout=30)
    assert wait_job(lib_ctx, a.file_hash) == "completed"
    assert fresh(lib_ctx, a.id).bpm == pytest.approx(120.0, abs=1.0)
    assert fresh(lib_ctx, a.id).musical_key == 2


def test_a_request_for_an_analysed_track_answers_its_job_unless_forced(
        lib: dict[str, Any], lib_ctx: Any) -> None:
    """Asking again for an analysed track queues nothing; ``force`` analyses it again."""
    a = lib["a"]
    httpx.post(f"{lib['url']}/request", json={"track_id": a.id}, timeout=30)
    assert wait_job(lib_ctx, a.file_hash) == "completed"
    again = httpx.post(f"{lib['url']}/request", json={"track_id": lib["b"].id},
                       timeout=30).json()
    assert again["job"]["status"] == "completed" and again["job"]["job_id"] == a.file_hash
    with lib_ctx.db() as s:
        assert s.query(models.AnalysisJob).count() == 1
    forced = httpx.post(f"{lib['url']}/request", json={"track_id": a.id, "force": True},
                        timeout=30).json()
    assert forced["job"]["status"] in ("queued", "processing")
    assert wait_job(lib_ctx, a.file_hash) == "completed"
    with lib_ctx.db() as s:
        assert s.query(models.AnalysisJob).count() == 2


def test_callback_of_a_job_never_sent_to_a_server_is_refused(lib: dict[str, Any],
                                                              lib_ctx: Any) -> None:
    """Without an external analysis server no job has a callback secret: a callback is
    refused (403) and stores nothing (stored callbacks: test_analysis_external.py)."""
    url, a = lib["url"], lib["a"]
    httpx.post(f"{url}/stop", timeout=30)
    httpx.post(f"{url}/request", json={"track_id": a.id}, timeout=30)
    answer = httpx.post(f"{url}/callback", params={"token": "guess"}, json={
        "job_id": a.file_hash, "stage": "basic_features", "status": "completed",
        "data": {"tempo": 128.0, "key": 9, "mode": 0}}, timeout=30)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "Invalid callback"
    assert fresh(lib_ctx, a.id).bpm is None
    job = httpx.get(f"{url}/jobs/{a.file_hash}", timeout=30).json()["job"]
    assert (job["status"], job["stages_completed"]) == ("queued", [])


def test_status_stop_start_restart_health_and_queue(lib: dict[str, Any], lib_ctx: Any) -> None:
    """The analyzer runs in the leader: status names its process; stop pauses the queue
    (health 503, queued jobs wait), start and restart resume it."""
    import os

    url = lib["url"]
    status = httpx.get(f"{url}/status", timeout=30).json()
    assert status == {"url": None, "port": None, "isHealthy": True, "isProcessRunning": True,
                      "isReady": True, "autoStart": True, "pid": os.getpid()}
    health = httpx.get(f"{url}/health", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    httpx.post(f"{url}/stop", timeout=30)
    stopped = httpx.get(f"{url}/status", timeout=30).json()
    assert (stopped["isProcessRunning"], stopped["isReady"]) == (False, False)
    health = httpx.get(f"{url}/health", timeout=30)
    assert health.status_code == 503
    assert health.json() == {"status": "unhealthy", "message": "Analysis is stopped"}
    httpx.post(f"{url}/request", json={"track_id": lib["a"].id}, timeout=30)
    httpx.post(f"{url}/request", json={"track_id": lib["other"].id, "priority": "high"},
               timeout=30)
    queue = httpx.get(f"{url}/queue", timeout=30).json()
    assert queue == {"queue": {"isProcessing": False, "maxConcurrentJobs": 2,
                               "processingCount": 0, "queuedCount": 2, "paused": True},
                     "stats": {"queued": {"total": 2, "high": 1, "normal": 1, "low": 0},
                               "processing": {"total": 0, "high": 0, "normal": 0,
                                              "low": 0}}}
    started = httpx.post(f"{url}/start", timeout=30).json()
    assert started["message"] == "Analysis server started successfully"
    assert started["status"]["isProcessRunning"] is True
    restarted = httpx.post(f"{url}/restart", timeout=30).json()
    assert restarted["message"] == "Analysis server restarted successfully"
    assert restarted["status"]["isReady"] is True
    assert wait_job(lib_ctx, lib["a"].file_hash) == "completed"
    assert wait_job(lib_ctx, lib["other"].file_hash) == "completed"


def test_openapi_documents_the_bodies_the_service_checks(lib_server: LiveServer) -> None:
    """The routes read their bodies as any JSON (so that a malformed one gets the bare
    ``{error, message}`` answer), yet /openapi.json shows each body's shape: the fields
    of its request model, nested options included."""
    doc = httpx.get(f"{lib_server.url}/openapi.json", timeout=30).json()
    expected = {"/api/analysis/request": {"track_id", "options", "priority", "force"},
                "/api/analysis/reanalyze": {"track_ids", "library_id", "all", "options",
                                            "priority"},
                "/api/analysis/callback": {"job_id", "stage", "status", "timestamp", "data"}}
    for path, fields in expected.items():
        body = doc["paths"][path]["post"].get("requestBody")
        assert body is not None, f"{path}: no request body"
        schema = body["content"]["application/json"]["schema"]
        assert set(schema.get("properties", {})) == fields, (path, schema)
        if "options" in fields:
            options = schema["properties"]["options"]
            assert {"basic_features", "stems"} <= set(options.get("properties", {})), options
    assert doc["paths"]["/api/analysis/request"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["required"] == ["track_id"]
