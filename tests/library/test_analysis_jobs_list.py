"""``GET /api/analysis/jobs`` on a real server and a real SQLite database: the newest job
of each recording, newest first, filtered by status and paged; bad queries refused
with the analysis routes' bare 400; the routes of one job still answer beside it."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest

from taperoom.db import transaction
from taperoom.library import models
from taperoom.library.repository.analysis import ACTIVE_STATUSES, FINISHED_STATUSES
from taperoom.library.schemas import ANALYSIS_JOB_STATUSES, AnalysisJobsQuery
from tests.conftest import LiveServer
from tests.library.analysislib import drum_loop, scanned_library, track_by_name, wait_job

#: (audio hash, status of each of its rows, oldest first): the newest row answers.
ROWS = [
    ("hash-a", ["failed", "completed"]),
    ("hash-b", ["failed"]),
    ("hash-c", ["queued"]),
    ("hash-d", ["completed", "failed"]),
    ("hash-e", ["processing"]),
]


@pytest.fixture
def seeded(lib_ctx: Any, lib_server: LiveServer) -> str:
    """Rows of `ROWS`, requested one after the other (each hash's rows together);
    the URL of the server's ``/api/analysis``."""
    start = models.utcnow() - timedelta(hours=1)
    n = 0
    with transaction(lib_ctx.db) as s:
        for job_id, statuses in ROWS:
            for status in statuses:
                n += 1
                s.add(models.AnalysisJob(
                    job_id=job_id, file_path=f"/music/{job_id}.wav", status=status,
                    priority="normal", options={}, stages_completed=[], stages_total=2,
                    progress_percent=100 if status == "completed" else 0,
                    last_error=f"Cannot analyse {job_id} ({n})" if status == "failed" else None,
                    created_at=start + timedelta(seconds=n)))
    return lib_server.url + "/api/analysis"


def _get(url: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{url}/jobs", params=params, timeout=30)


def test_the_list_holds_the_newest_job_of_each_recording_newest_first(seeded: str) -> None:
    """One job per audio hash (its newest row, in the shape of ``GET /jobs/:jobId``),
    the last requested first; the defaults are limit 50, offset 0."""
    answer = _get(seeded)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["total"], body["limit"], body["offset"]) == (5, 50, 0)
    assert [j["job_id"] for j in body["jobs"]] == ["hash-e", "hash-d", "hash-c", "hash-b",
                                                    "hash-a"]
    assert [j["status"] for j in body["jobs"]] == ["processing", "failed", "queued", "failed",
                                                   "completed"]
    for job in body["jobs"]:
        one = httpx.get(f"{seeded}/jobs/{job['job_id']}", timeout=30).json()["job"]
        assert job == one
    failed = next(j for j in body["jobs"] if j["job_id"] == "hash-d")
    assert failed["last_error"] == "Cannot analyse hash-d (6)"


@pytest.mark.parametrize(("status", "expected"), [
    ("failed", ["hash-d", "hash-b"]),
    ("completed", ["hash-a"]),
    ("queued", ["hash-c"]),
    ("processing", ["hash-e"]),
    ("cancelled", []),
    ("", ["hash-e", "hash-d", "hash-c", "hash-b", "hash-a"]),
])
def test_the_status_filter_reads_each_recordings_newest_job(
        seeded: str, status: str, expected: list[str]) -> None:
    """A failure that a later request replaced (hash-a) is not listed as failed; an
    empty status lists every job."""
    body = _get(seeded, status=status).json()
    assert [j["job_id"] for j in body["jobs"]] == expected
    assert body["total"] == len(expected)
    assert all(j["status"] == status for j in body["jobs"] if status)


def test_pages_follow_one_another_without_gap_or_overlap(seeded: str) -> None:
    """limit and offset page the list; total counts every page; past the end is empty."""
    pages = [_get(seeded, limit=2, offset=offset).json() for offset in (0, 2, 4, 6)]
    assert [[j["job_id"] for j in p["jobs"]] for p in pages] == [
        ["hash-e", "hash-d"], ["hash-c", "hash-b"], ["hash-a"], []]
    assert {p["total"] for p in pages} == {5}
    assert [(p["limit"], p["offset"]) for p in pages] == [(2, 0), (2, 2), (2, 4), (2, 6)]
    failed = _get(seeded, status="failed", limit=1, offset=1).json()
    assert [j["job_id"] for j in failed["jobs"]] == ["hash-b"] and failed["total"] == 2
    assert _get(seeded, limit=200).json()["total"] == 5


@pytest.mark.parametrize(("params", "field"), [
    ({"status": "done"}, "status"),
    ({"status": "FAILED"}, "status"),
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "1.5"}, "limit"),
    ({"offset": "-1"}, "offset"),
    ({"offset": "99999999999"}, "offset"),
    ({"offset": "x"}, "offset"),
    ({"status": "q" * 33}, "status"),
])
def test_bad_queries_are_refused_bare_with_400(seeded: str, params: dict[str, str],
                                               field: str) -> None:
    """An unknown status, a limit outside 1-200 or an offset below 0 (or not whole
    numbers) get the analysis routes' ``{error: "Invalid request", message}``."""
    answer = _get(seeded, **params)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    if body.get("error") == "Invalid request":  # the service's refusal
        assert set(body) == {"error", "message"} and field in body["message"]
    else:  # a query too long for its declared bound, refused before the service
        assert field in answer.text


def test_the_routes_of_one_job_still_answer(seeded: str) -> None:
    """``/jobs`` does not take the place of ``GET`` and ``DELETE /jobs/:jobId``."""
    assert httpx.get(f"{seeded}/jobs/hash-b", timeout=30).json()["job"]["status"] == "failed"
    missing = httpx.get(f"{seeded}/jobs/hash-z", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"] == "Job not found"
    gone = httpx.delete(f"{seeded}/jobs/hash-z", timeout=30)
    assert gone.status_code == 404 and gone.json()["error"] == "Job not found"
    assert httpx.post(f"{seeded}/jobs", timeout=30).status_code == 405


def test_a_failed_job_leaves_the_failures_once_retried(
        tmp_path: Path, lib_ctx: Any, lib_server: LiveServer) -> None:
    """A loop whose file went away fails with its error; the list of failures shows it;
    once the file is back, a forced request (the page's retry) completes it and the
    list of failures is empty again."""
    folder = tmp_path / "music"
    loop = drum_loop(folder / "loop.wav", 120.0)
    scanned_library(lib_ctx, folder)
    track = track_by_name(lib_ctx, "loop.wav")
    url = lib_server.url + "/api/analysis"
    aside = loop.with_name("loop.wav.aside")
    os.rename(loop, aside)
    httpx.post(f"{url}/request", json={"track_id": track.id}, timeout=30).raise_for_status()
    assert wait_job(lib_ctx, track.file_hash) == "failed"
    [job] = _get(url, status="failed").json()["jobs"]
    assert job["job_id"] == track.file_hash and job["track_id"] == track.id
    assert job["last_error"] == f"File not found: {track.file_path}"

    os.rename(aside, loop)
    retry = httpx.post(f"{url}/request", json={"track_id": track.id, "force": True},
                       timeout=30)
    assert retry.status_code == 200
    assert wait_job(lib_ctx, track.file_hash) == "completed"
    assert _get(url, status="failed").json() == {"jobs": [], "total": 0, "limit": 50,
                                                 "offset": 0}
    [done] = _get(url).json()["jobs"]
    assert done["status"] == "completed" and done["last_error"] is None


def test_the_statuses_agree_with_the_repository() -> None:
    """The query's statuses are those the job rows take."""
    assert set(ANALYSIS_JOB_STATUSES) == set(ACTIVE_STATUSES) | set(FINISHED_STATUSES)
    status = AnalysisJobsQuery.model_fields["status"].annotation
    literal = next(a for a in get_args(status) if a is not type(None))
    assert set(get_args(literal)) == set(ANALYSIS_JOB_STATUSES)
