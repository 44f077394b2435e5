"""Structured logs of the recorder: JSON lines with rotation, and reading them back.

Every record of the ``taperoom.recorder`` logger tree is written as one JSON
object per line to ``LOG_DIR/recorder.log`` (rotated at 10 MB, 5 old files
kept, as the original's ``RotatingFileHandler``). A record carries an
``operation_type`` (one of :data:`OPERATION_TYPES`, the contract's list for
``GET /api/system/logs``) and, when it concerns one recording, a
``session_id``; code passes them as ``extra={"operation_type": ...,
"session_id": ...}`` or through :func:`log_operation`. Records without an
operation type get one from the logger's module (``...scheduler`` ->
``scheduling``, ``...transfer``/``...uploads`` -> ``transfer``, ...), so
every line can be filtered.

:func:`read_logs` reads the current file and its rotated predecessors
newest-first, block by block from the end, so a filtered page of 100 lines
does not read 60 MB.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taperoom.errors import InvalidInput

if TYPE_CHECKING:
    from taperoom.recorder.settings import RecorderSettings

#: Logger whose records go to the structured log file.
LOGGER_NAME = "taperoom.recorder"
#: File name of the current log in ``LOG_DIR``; rotated copies end in ``.1`` … ``.5``.
LOG_FILE = "recorder.log"
#: Rotation size (bytes) and number of rotated files kept (original's 10 MB × 5).
MAX_BYTES = 10 * 1024 * 1024
BACKUP_COUNT = 5
#: Operation types of the contract (``GET /api/system/logs?operation_type=``).
OPERATION_TYPES = ("recording", "processing", "transfer", "scheduling", "web_request",
                   "system", "database", "configuration", "error")
#: Level names accepted by the ``level`` filter (minimum level).
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: Default operation type of a record by the last part of its logger name.
_TYPE_BY_MODULE = {
    "scheduler": "scheduling", "schedules": "scheduling", "stations": "configuration",
    "artwork": "configuration", "exports": "configuration", "backup": "configuration",
    "settings": "configuration", "transfer": "transfer", "uploads": "transfer",
    "upload_status": "transfer",
    "capture": "recording", "service": "recording", "encode": "processing",
    "tagging": "processing", "cues": "processing", "api": "web_request",
    "app": "web_request", "repository": "database", "migrate": "database",
    "monitor": "system", "logs": "system",
}
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName"}
_MARK = "_taperoom_recorder_log"
_BLOCK = 64 * 1024

log = logging.getLogger(LOGGER_NAME)
_ops = logging.getLogger(LOGGER_NAME + ".ops")


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return repr(value)


def default_operation_type(logger_name: str, levelno: int) -> str:
    """Operation type of a record that does not name one.

    Parameters
    ----------
    logger_name : str
        Dotted logger name (``taperoom.recorder.scheduler``).
    levelno : int
        Level of the record; ERROR and above without a module match -> ``error``.
    """
    for part in reversed(logger_name.split(".")):
        if part in _TYPE_BY_MODULE:
            return _TYPE_BY_MODULE[part]
    return "error" if levelno >= logging.ERROR else "system"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: ``timestamp`` (ISO 8601 with offset), ``level``,
    ``logger``, ``message``, ``operation_type``, ``session_id``, any other
    ``extra`` fields, and ``exception`` (traceback text) when there is one.

    Parameters
    ----------
    zone : tzinfo, optional
        Zone of the timestamps (``TZ``); the machine's zone when omitted.
    """

    def __init__(self, zone: tzinfo | None = None) -> None:
        super().__init__()
        self.zone = zone

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a single line of JSON."""
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).astimezone(
                self.zone).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        op = getattr(record, "operation_type", None)
        entry["operation_type"] = (op if op in OPERATION_TYPES
                                   else default_operation_type(record.name, record.levelno))
        entry["session_id"] = getattr(record, "session_id", None)
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in entry and not key.startswith("_"):
                entry[key] = _jsonable(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=repr)


def setup_recorder_logging(settings: RecorderSettings, *, max_bytes: int = MAX_BYTES,
                           backup_count: int = BACKUP_COUNT) -> Path:
    """Attach the rotating JSON-lines handler to the ``taperoom.recorder`` logger.

    Idempotent: calling it again with the same ``LOG_DIR`` changes nothing; with
    another ``LOG_DIR`` (a second app in the same process) the previous handler is
    closed and replaced, so no record is written twice.

    Parameters
    ----------
    settings : RecorderSettings
        ``LOG_DIR`` (created when missing) and ``LOG_LEVEL``.
    max_bytes : int
        Size (bytes) at which the file rotates (default 10 MB).
    backup_count : int
        Rotated files kept (default 5).

    Returns
    -------
    Path
        The log file.
    """
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    path = (settings.log_dir / LOG_FILE).resolve()
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        mark = getattr(handler, _MARK, None)
        if mark is None:
            continue
        if mark == str(path) and isinstance(handler, logging.handlers.RotatingFileHandler) \
                and handler.maxBytes == max_bytes and handler.backupCount == backup_count:
            handler.setLevel(level)
            logger.setLevel(min(level, logger.level or level))
            return path
        logger.removeHandler(handler)
        handler.close()
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes,
                                                   backupCount=backup_count, encoding="utf-8")
    setattr(handler, _MARK, str(path))
    handler.setFormatter(JsonLineFormatter(settings.zone))
    handler.setLevel(level)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    return path


def check_operation_type(operation_type: str | None) -> str | None:
    """Return `operation_type` if it is one of :data:`OPERATION_TYPES` (or None).

    Raises
    ------
    InvalidInput
        For any other value.
    """
    if operation_type is None or operation_type == "":
        return None
    if operation_type not in OPERATION_TYPES:
        raise InvalidInput(f"Invalid operation_type {operation_type!r}; valid types: "
                           f"{', '.join(OPERATION_TYPES)}")
    return operation_type


def log_operation(operation_type: str, message: str, *, level: int = logging.INFO,
                  session_id: int | None = None, **fields: Any) -> None:
    """Write one structured record to the recorder log.

    Parameters
    ----------
    operation_type : str
        One of :data:`OPERATION_TYPES`.
    message : str
        Human-readable text.
    level : int
        ``logging`` level (default INFO).
    session_id : int, optional
        Recording session concerned.
    **fields
        Extra JSON fields of the line (``station_id=3``, ``duration_seconds=60``);
        names of standard ``LogRecord`` attributes are prefixed with ``field_``.

    Raises
    ------
    InvalidInput
        Unknown operation type.
    """
    check_operation_type(operation_type)
    extra: dict[str, Any] = {"operation_type": operation_type, "session_id": session_id}
    for key, value in fields.items():
        extra[f"field_{key}" if key in _STANDARD_ATTRS or key in extra else key] = value
    _ops.log(level, message, extra=extra)


def _reverse_lines(path: Path) -> Iterator[str]:
    """Lines of a text file from the last to the first, read in 64 KB blocks."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return
    with f:
        f.seek(0, os.SEEK_END)
        pos = f.tell()
        rest = b""
        while pos > 0:
            step = min(_BLOCK, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step) + rest
            lines = chunk.split(b"\n")
            rest = lines[0]
            for line in reversed(lines[1:]):
                if line.strip():
                    yield line.decode("utf-8", "replace")
        if rest.strip():
            yield rest.decode("utf-8", "replace")


def log_files(log_dir: Path) -> list[Path]:
    """The current log and its rotated copies, newest first (those that exist)."""
    base = Path(log_dir) / LOG_FILE
    files = [base] if base.exists() else []
    n = 1
    while True:
        rotated = base.with_name(f"{LOG_FILE}.{n}")
        if not rotated.exists():
            break
        files.append(rotated)
        n += 1
    return files


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_logs(log_dir: Path, *, operation_type: str | None = None, level: str | None = None,
              session_id: int | None = None, limit: int = 100,
              since: datetime | None = None) -> list[dict[str, Any]]:
    """Structured log entries, newest first, across the rotated files.

    Parameters
    ----------
    log_dir : Path
        ``LOG_DIR``.
    operation_type : str, optional
        Only entries of this type; ``error`` also matches every ERROR/CRITICAL
        entry, whatever its type.
    level : str, optional
        Minimum level name (``WARNING`` returns warnings, errors and critical).
    session_id : int, optional
        Only entries about this recording session.
    limit : int
        Most entries returned (≥ 1).
    since : datetime, optional
        Only entries at or after this instant (naive = UTC); reading stops at the
        first older entry.

    Returns
    -------
    list of dict
        Parsed JSON lines (lines that are not JSON objects are skipped).

    Raises
    ------
    InvalidInput
        Unknown operation type or level, or ``limit`` < 1.
    """
    check_operation_type(operation_type)
    min_level = 0
    if level:
        name = level.upper()
        if name not in LEVELS:
            raise InvalidInput(f"Invalid level {level!r}; valid levels: {', '.join(LEVELS)}")
        min_level = logging.getLevelNamesMapping()[name]
    if limit < 1:
        raise InvalidInput("limit must be at least 1")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    out: list[dict[str, Any]] = []
    for path in log_files(Path(log_dir)):
        for line in _reverse_lines(path):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict):
                continue
            if since is not None:
                when = _parse_time(entry.get("timestamp", ""))
                if when is not None and when < since:
                    return out
            lvl = logging.getLevelNamesMapping().get(str(entry.get("level", "")).upper(), 0)
            if lvl < min_level:
                continue
            if operation_type and entry.get("operation_type") != operation_type and not (
                    operation_type == "error" and lvl >= logging.ERROR):
                continue
            if session_id is not None and entry.get("session_id") != session_id:
                continue
            out.append(entry)
            if len(out) >= limit:
                return out
    return out
