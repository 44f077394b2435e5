"""Old ``analysis_jobs`` rows are pruned: a finished row (completed, failed, cancelled) that
ended more than ``ANALYSIS_JOBS_KEEP_DAYS`` days ago goes, unless it is the newest row of
its job id (which ``GET /api/analysis/jobs/:jobId`` answers); queued and processing rows
always stay. The leader deletes them when it takes the lead and then every hour.

Real SQLite and PostgreSQL databases, the real leader of real library services.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from taperoom.db import transaction
from taperoom.library import models
from taperoom.library.context import build_services
from taperoom.library.repository import analysis as repo

pytestmark = pytest.mark.backends()


def _rows(now: datetime) -> dict[str, dict[str, Any]]:
    """Rows by name, oldest first within each job id: their job id, status and age."""
    def at(days: float) -> datetime:
        return now - timedelta(days=days)

    return {
        # job a: two old finished rows before its newest, old too (kept: newest)
        "a-old-completed": {"job_id": "a" * 32, "status": "completed", "ended": at(40)},
        "a-old-failed": {"job_id": "a" * 32, "status": "failed", "ended": at(35)},
        "a-newest": {"job_id": "a" * 32, "status": "completed", "ended": at(31)},
        # job b: an old cancelled row, then a queued one
        "b-old-cancelled": {"job_id": "b" * 32, "status": "cancelled", "ended": at(70)},
        "b-queued": {"job_id": "b" * 32, "status": "queued", "ended": None},
        # job c: young rows stay
        "c-young": {"job_id": "c" * 32, "status": "failed", "ended": at(10)},
        "c-newest": {"job_id": "c" * 32, "status": "completed", "ended": at(1)},
        # job d: an old processing row is not finished; a failed row without an end
        # time counts from its creation
        "d-processing": {"job_id": "d" * 32, "status": "processing", "ended": None,
                         "created": at(50)},
        "d-unended-failed": {"job_id": "d" * 32, "status": "failed", "ended": None,
                             "created": at(40)},
        "d-newest": {"job_id": "d" * 32, "status": "completed", "ended": at(2)},
    }


def _insert(db: Any, now: datetime) -> dict[str, int]:
    ids: dict[str, int] = {}
    with transaction(db) as s:
        for name, row in _rows(now).items():
            job = models.AnalysisJob(
                job_id=row["job_id"], status=row["status"], priority="normal",
                created_at=row.get("created") or (row["ended"] or now) - timedelta(minutes=5),
                completed_at=row["ended"], stages_total=2)
            s.add(job)
            s.flush()
            ids[name] = job.id
    return ids


def _left(db: Any, ids: dict[str, int]) -> set[str]:
    with db() as s:
        present = set(s.scalars(models.AnalysisJob.__table__.select().with_only_columns(
            models.AnalysisJob.id)))
    return {name for name, i in ids.items() if i in present}


KEPT_AT_30_DAYS = {"a-newest", "b-queued", "c-young", "c-newest", "d-processing", "d-newest"}


def test_prune_keeps_the_newest_row_of_each_job_young_and_unfinished_rows(
        lib_ctx: Any) -> None:
    """The repository's delete: finished rows that ended before the limit, except the
    newest row of their job id; the count it answers is what went."""
    now = models.utcnow()
    ids = _insert(lib_ctx.db, now)
    with transaction(lib_ctx.db) as s:
        assert repo.prune_finished_jobs(s, now - timedelta(days=30)) == 4
    assert _left(lib_ctx.db, ids) == KEPT_AT_30_DAYS
    with transaction(lib_ctx.db) as s:
        assert repo.prune_finished_jobs(s, now - timedelta(days=30)) == 0


def test_the_leader_prunes_with_the_setting(lib_settings: Callable[..., Any]) -> None:
    """Library services that take the lead prune the old rows at once, with
    ``ANALYSIS_JOBS_KEEP_DAYS``: 60 days keep this month's rows, 30 days do not."""
    first = build_services(lib_settings())
    try:
        ids = _insert(first.db, models.utcnow())
    finally:
        first.close()
    every = set(ids)
    patient = build_services(lib_settings(analysis_jobs_keep_days=60))
    try:
        assert patient.leadership.leading
        assert _left(patient.db, ids) == every - {"b-old-cancelled"}  # 70 days old
    finally:
        patient.close()
    services = build_services(lib_settings(analysis_jobs_keep_days=30))
    try:
        assert services.leadership.leading
        assert _left(services.db, ids) == KEPT_AT_30_DAYS
    finally:
        services.close()
