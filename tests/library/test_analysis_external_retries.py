"""External analysis server mode when the server is down, silent, refuses or answers
garbage: attempts retried with backoff (ANALYSIS_MAX_RETRIES), the server asked about
a silent job (GET /jobs/{id}), and the job failed with a clear last_error."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.library import models
from tests.conftest import free_port
from tests.library.analysislib import Timeline, drum_loop, scanned_library, track_by_name
from tests.library.externalkit import StandIn, library
from tests.polling import wait_for

DEADLINE = 120.0
#: Quick retries: 0.1 s, then 0.2 s.
RETRIES = {"analysis_retry_delay": 0.1, "analysis_max_retries": 2}


@pytest.fixture
def music(tmp_path: Path) -> Path:
    drum_loop(tmp_path / "music" / "loop.wav", 120.0, seconds=4.0)
    return tmp_path / "music"


def _ended_row(ctx: Any, file_hash: str) -> models.AnalysisJob | None:
    with ctx.db() as s:
        row = (s.query(models.AnalysisJob).filter(models.AnalysisJob.job_id == file_hash)
               .order_by(models.AnalysisJob.id.desc()).first())
        if row is None or row.status not in ("completed", "failed", "cancelled"):
            return None
        s.expunge(row)
        return row


def _request_and_wait(ctx: Any, url: str, music: Path) -> tuple[models.Track,
                                                                 models.AnalysisJob, Timeline]:
    scanned_library(ctx, music)
    track = track_by_name(ctx, "loop.wav")
    events = Timeline(ctx)
    answer = httpx.post(f"{url}/api/analysis/request", json={"track_id": track.id},
                        timeout=30)
    assert answer.status_code == 200, answer.text
    row = wait_for(lambda: _ended_row(ctx, track.file_hash), DEADLINE, "the job to end")
    return track, row, events


def test_a_server_that_cannot_be_reached_is_retried_then_the_job_fails(
        music: Path, lib_settings: Callable[..., Any]) -> None:
    """Nothing listens at ANALYSIS_SERVER_URL: the job is tried 1 + ANALYSIS_MAX_RETRIES
    times, then fails with a last_error naming the server; nothing crashes."""
    down = f"http://127.0.0.1:{free_port()}"
    with library(lib_settings, analysis_server_url=down, **RETRIES) as (ctx, url):
        track, row, events = _request_and_wait(ctx, url, music)
        assert row.status == "failed" and row.retry_count == 2
        assert row.last_error and down in row.last_error
        assert "cannot be reached" in row.last_error
        assert len(events.of("analysis:started", track.file_hash)) == 3
        (_, failed), = events.of("analysis:failed", track.file_hash)
        assert failed["error"] == row.last_error
        job = httpx.get(f"{url}/api/analysis/jobs/{track.file_hash}", timeout=30).json()
        assert (job["job"]["status"], job["job"]["last_error"]) == ("failed", row.last_error)
        assert track.bpm is None


def test_a_silent_job_is_looked_up_retried_and_failed(
        music: Path, lib_settings: Callable[..., Any]) -> None:
    """A server that takes jobs and never calls back: after ANALYSIS_TIMEOUT_MS the
    library asks GET /jobs/{id} (answered garbage, then 404, then "failed"), sends the
    job again, and at last fails it with the server's word, cancelling it there."""
    views: Iterator[tuple[int, bytes]] = iter([
        (200, b"<html>not the contract</html>"),
        (404, b'{"error": "Job not found"}'),
        (200, json.dumps({"status": "failed", "error": "the model crashed"}).encode()),
    ])
    with StandIn(view=lambda job_id: next(views)) as peer, library(
            lib_settings, analysis_server_url=peer.url, analysis_timeout_ms=1000,
            **RETRIES) as (ctx, url):
        track, row, events = _request_and_wait(ctx, url, music)
        assert row.status == "failed" and row.retry_count == 2
        assert row.last_error == (
            f"Analysis server {peer.url}: No result from the analysis server within 1 s: "
            f"job {row.remote_job_id} failed there: the model crashed")
        posted = peer.requests("POST", "/jobs")
        assert len(posted) == 3 and all(
            p.json()["callback_url"] == posted[0].json()["callback_url"] for p in posted)
        looked = peer.requests("GET", "/jobs/")
        assert [p.path for p in looked][-1] == f"/jobs/{row.remote_job_id}"
        assert len(looked) == 3
        wait_for(lambda: peer.requests("DELETE", f"/jobs/{row.remote_job_id}"), DEADLINE,
                 "the job to be cancelled on the server")
        assert len(events.of("analysis:started", track.file_hash)) == 3


@pytest.mark.parametrize(("answer", "attempts", "why"), [
    ((200, b"surely not JSON"), 3, "no JSON object"),
    ((200, b'{"status": "queued"}'), 3, "without a job_id"),
    ((503, b'{"error": "Queue full"}'), 3, "HTTP 503 (Queue full)"),
    ((403, b'{"error": "file_path is outside the allowed folders"}'), 1,
     "refused the job: HTTP 403 (file_path is outside the allowed folders)"),
], ids=["garbage", "no-job-id", "busy", "refused"])
def test_garbage_and_refusals_of_the_server(
        answer: tuple[int, bytes], attempts: int, why: str, music: Path,
        lib_settings: Callable[..., Any]) -> None:
    """An answer to POST /jobs that is not the contract, or a 5xx, is retried and then
    fails the job; a refusal (4xx) fails it at once; last_error says which."""
    with StandIn(submit=lambda: answer) as peer, library(
            lib_settings, analysis_server_url=peer.url, **RETRIES) as (ctx, url):
        _, row, _ = _request_and_wait(ctx, url, music)
        assert row.status == "failed" and row.retry_count == attempts - 1
        assert why in (row.last_error or ""), row.last_error
        assert len(peer.requests("POST", "/jobs")) == attempts


def test_cancel_of_a_job_waiting_to_retry_reaches_the_server(
        music: Path, lib_settings: Callable[..., Any]) -> None:
    """A job that timed out and waits for its next attempt still has a job on the server:
    DELETE /api/analysis/jobs/{id} cancels that one too."""
    processing = json.dumps({"status": "processing", "progress": 10}).encode()
    with StandIn(view=lambda job_id: (200, processing)) as peer, library(
            lib_settings, analysis_server_url=peer.url, analysis_timeout_ms=1000,
            analysis_retry_delay=600, analysis_max_retries=2) as (ctx, url):
        scanned_library(ctx, music)
        track = track_by_name(ctx, "loop.wav")
        httpx.post(f"{url}/api/analysis/request", json={"track_id": track.id}, timeout=30)

        def waiting() -> models.AnalysisJob | None:
            with ctx.db() as s:
                row = s.query(models.AnalysisJob).one()
                s.expunge(row)
            return row if row.retry_count == 1 and row.status == "queued" else None

        row = wait_for(waiting, DEADLINE, "the first attempt to time out")
        assert row.last_error == (
            f"Analysis server {peer.url}: No result from the analysis server within 1 s: "
            f"job {row.remote_job_id} is processing there")
        assert not peer.requests("DELETE", "/jobs/")
        answer = httpx.delete(f"{url}/api/analysis/jobs/{track.file_hash}", timeout=30)
        assert answer.status_code == 200, answer.text
        assert [d.path for d in peer.requests("DELETE", "/jobs/")] == [
            f"/jobs/{row.remote_job_id}"]
