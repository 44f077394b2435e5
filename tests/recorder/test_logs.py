"""Structured recorder logs: JSON lines, idempotent setup, filters and reading back across
rotated files."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from taperoom.errors import InvalidInput
from taperoom.recorder.logs import (
    LOGGER_NAME,
    OPERATION_TYPES,
    default_operation_type,
    log_files,
    log_operation,
    read_logs,
    setup_recorder_logging,
)


@pytest.fixture
def settings(rec_settings: Any) -> Iterator[Any]:
    """Recorder settings on tmp_path; the log handler is removed again afterwards."""
    s = rec_settings()
    yield s
    logger = logging.getLogger(LOGGER_NAME)
    for h in list(logger.handlers):
        if getattr(h, "_taperoom_recorder_log", None):
            logger.removeHandler(h)
            h.close()


def ours(logger: logging.Logger) -> list[logging.Handler]:
    """The recorder's file handlers on `logger`."""
    return [h for h in logger.handlers if getattr(h, "_taperoom_recorder_log", None)]


def test_setup_is_idempotent_and_writes_json(settings: Any) -> None:
    """Setting up twice adds one handler; each record is one JSON line with its fields."""
    path = setup_recorder_logging(settings)
    setup_recorder_logging(settings)
    logger = logging.getLogger(LOGGER_NAME)
    assert len(ours(logger)) == 1
    log_operation("recording", "recording 7 started", session_id=7, station_id=3,
                  name="clash")
    logging.getLogger("taperoom.recorder.scheduler").warning("job missed")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("taperoom.recorder.service").exception("capture failed",
                                                                  extra={"session_id": 8})
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 3
    first = lines[0]
    assert first["operation_type"] == "recording" and first["session_id"] == 7
    assert first["station_id"] == 3 and first["field_name"] == "clash"
    assert first["level"] == "INFO" and first["message"] == "recording 7 started"
    ts = datetime.fromisoformat(first["timestamp"])
    assert ts.utcoffset() == ts.astimezone(settings.zone).utcoffset()  # in TZ (Denver)
    assert lines[1]["operation_type"] == "scheduling" and lines[1]["level"] == "WARNING"
    assert lines[2]["operation_type"] == "recording" and lines[2]["session_id"] == 8
    assert "RuntimeError: boom" in lines[2]["exception"]


def test_setup_with_another_dir_moves_the_handler(settings: Any, rec_settings: Any,
                                                  tmp_path: Any) -> None:
    """A second app with another LOG_DIR replaces the handler: no record is written twice."""
    first = setup_recorder_logging(settings)
    second = setup_recorder_logging(rec_settings(log_dir=tmp_path / "other-logs"))
    log_operation("system", "hello")
    assert len(ours(logging.getLogger(LOGGER_NAME))) == 1
    assert "hello" in second.read_text()
    assert "hello" not in (first.read_text() if first.exists() else "")


def test_filters(settings: Any) -> None:
    """read_logs filters by operation type, minimum level, session and time, newest first."""
    setup_recorder_logging(settings)
    log_operation("transfer", "upload 1 queued", session_id=1)
    log_operation("recording", "recording 2 started", session_id=2)
    log_operation("transfer", "upload 2 failed", session_id=2, level=logging.ERROR)
    log_operation("scheduling", "schedule fired", level=logging.WARNING)
    d = settings.log_dir
    msgs = lambda **kw: [e["message"] for e in read_logs(d, **kw)]  # noqa: E731
    assert msgs() == ["schedule fired", "upload 2 failed", "recording 2 started",
                      "upload 1 queued"]
    assert msgs(operation_type="transfer") == ["upload 2 failed", "upload 1 queued"]
    assert msgs(operation_type="error") == ["upload 2 failed"]  # ERROR entries of any type
    assert msgs(level="warning") == ["schedule fired", "upload 2 failed"]
    assert msgs(session_id=2) == ["upload 2 failed", "recording 2 started"]
    assert msgs(limit=2) == ["schedule fired", "upload 2 failed"]
    assert msgs(since=datetime.now(UTC) + timedelta(seconds=5)) == []
    assert len(msgs(since=datetime.now(UTC) - timedelta(minutes=1))) == 4


def test_bad_filters_raise() -> None:
    """Unknown operation types and levels, and a limit below 1, are InvalidInput."""
    with pytest.raises(InvalidInput):
        read_logs("/nonexistent", operation_type="bogus")
    with pytest.raises(InvalidInput):
        read_logs("/nonexistent", level="LOUD")
    with pytest.raises(InvalidInput):
        read_logs("/nonexistent", limit=0)
    with pytest.raises(InvalidInput):
        log_operation("bogus", "x")
    assert read_logs("/nonexistent") == []


def test_rotation_and_reading_across_files(settings: Any) -> None:
    """Rotation keeps backup_count old files; reading goes newest-first across them."""
    path = setup_recorder_logging(settings, max_bytes=2000, backup_count=3)
    for i in range(200):
        log_operation("processing", f"line {i:03d}", index=i)
    files = log_files(settings.log_dir)
    assert [f.name for f in files] == ["recorder.log", "recorder.log.1", "recorder.log.2",
                                       "recorder.log.3"]
    assert all(f.stat().st_size <= 2000 for f in files)
    entries = read_logs(settings.log_dir, limit=1000)
    idx = [e["index"] for e in entries]
    assert idx[0] == 199 and idx == sorted(idx, reverse=True)
    assert idx == list(range(199, 199 - len(idx), -1))  # contiguous: nothing lost between files
    assert len(entries) > sum(1 for _ in path.read_text().splitlines())
    assert [e["index"] for e in read_logs(settings.log_dir, limit=5)] == [199, 198, 197, 196,
                                                                         195]


def test_non_json_lines_are_skipped(settings: Any) -> None:
    """Lines that are not JSON objects (another formatter, a torn write) are skipped."""
    setup_recorder_logging(settings)
    log_operation("system", "before")
    with (settings.log_dir / "recorder.log").open("a") as f:
        f.write("plain text line\n[1, 2]\n{\"torn\": \n")
    log_operation("system", "after")
    assert [e["message"] for e in read_logs(settings.log_dir)] == ["after", "before"]


def test_default_operation_types() -> None:
    """Records without a type get one from their module; unknown modules get system/error."""
    assert default_operation_type("taperoom.recorder.uploads", logging.INFO) == "transfer"
    assert default_operation_type("taperoom.recorder.tagging", logging.INFO) == "processing"
    assert default_operation_type("taperoom.recorder.x", logging.INFO) == "system"
    assert default_operation_type("taperoom.recorder.x", logging.ERROR) == "error"
    assert set(OPERATION_TYPES) == {"recording", "processing", "transfer", "scheduling",
                                    "web_request", "system", "database", "configuration",
                                    "error"}
