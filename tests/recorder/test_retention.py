"""Retention: the oldest local recordings go first, and only once they are safe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from taperoom.db import transaction
from taperoom.recorder import repository as repo
from taperoom.recorder.context import build_services
from taperoom.recorder.settings import RecorderSettings


def _session(services: Any, name: str, age_days: float, transfer: str, size: int
             ) -> tuple[int, Path]:
    path = services.settings.recordings_dir / name
    path.write_bytes(b"\xff\xfb" * (size // 2))
    with transaction(services.db) as db:
        row = repo.create_session(db, {
            "station_name": "S", "status": "completed", "transfer_status": transfer,
            "start_time": datetime.now(UTC).replace(tzinfo=None) - timedelta(days=age_days),
            "output_file_path": str(path), "file_size_bytes": size})
        return row.id, path


def test_retention_days_deletes_only_uploaded_or_local_only(
        rec_settings: Callable[..., RecorderSettings]) -> None:
    """Past RETENTION_DAYS, uploaded and never-to-be-uploaded files are deleted; a
    failed or pending upload keeps its file; recent files stay."""
    services = build_services(rec_settings(retention_days=7))
    try:
        old_up = _session(services, "old-uploaded.mp3", 10, "completed", 1000)
        old_local = _session(services, "old-local.mp3", 9, "skipped", 1000)
        old_failed = _session(services, "old-failed.mp3", 12, "failed", 1000)
        old_pending = _session(services, "old-pending.mp3", 11, "pending", 1000)
        new_up = _session(services, "new-uploaded.mp3", 1, "completed", 1000)
        deleted = services.recordings.apply_retention()
        assert sorted(deleted) == sorted([old_up[0], old_local[0]])
        assert not old_up[1].exists() and not old_local[1].exists()
        assert old_failed[1].exists() and old_pending[1].exists() and new_up[1].exists()
        with services.db() as db:
            assert repo.get_session(db, old_up[0]).local_deleted
            assert not repo.get_session(db, new_up[0]).local_deleted
    finally:
        services.close()


def test_retention_size_cap_deletes_oldest_first(
        rec_settings: Callable[..., RecorderSettings]) -> None:
    """Over RETENTION_MAX_GB, the oldest safe files go until the total fits."""
    cap_bytes = 2500
    services = build_services(rec_settings(retention_max_gb=cap_bytes / 2**30))
    try:
        a = _session(services, "a.mp3", 5, "completed", 1000)
        b = _session(services, "b.mp3", 4, "skipped", 1000)
        c = _session(services, "c.mp3", 3, "completed", 1000)
        d = _session(services, "d.mp3", 2, "completed", 1000)
        deleted = services.recordings.apply_retention()
        assert deleted == [a[0], b[0]]
        assert [p.exists() for _, p in (a, b, c, d)] == [False, False, True, True]
    finally:
        services.close()


def test_retention_off_by_default(rec_settings: Callable[..., RecorderSettings]) -> None:
    """With neither limit set, nothing is ever deleted."""
    services = build_services(rec_settings())
    try:
        old = _session(services, "old.mp3", 400, "completed", 1000)
        assert services.recordings.apply_retention() == []
        assert old[1].exists()
    finally:
        services.close()
