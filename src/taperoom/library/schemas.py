"""JSON shapes of the library API (contracts/library.md), separate from the ORM.

Envelopes: ``{"success": true, "data": ...}`` for library, tracks, scan,
watcher, settings, duplicates and hot-cue routes; errors are
``{"success": false, "error": "...", "message"?: "..."}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime

from taperoom.library import models

#: Highest page number the list routes accept: offsets stay far inside the 64-bit
#: range of every database (1000 rows a page at most).
MAX_PAGE = 1_000_000_000


def no_nul(value: str | None) -> str | None:
    """Pydantic validator: reject text holding a NUL character.

    PostgreSQL cannot store NUL in text columns (SQLite would, silently cutting
    the text in some functions), so such input is refused on every backend.

    Raises
    ------
    ValueError
        ``"must not contain a NUL character"``.
    """
    if value is not None and "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


#: Track columns never sent over the API (binary blobs and scanner internals).
TRACK_HIDDEN = frozenset({"beats_data", "downbeats_data", "file_mtime_ns"})
#: Track columns sent as 0/1, as the original (SQLite) API did.
TRACK_INT_BOOLS = frozenset({"is_missing", "has_artwork"})


def iso(value: datetime | None) -> str | None:
    """ISO 8601 UTC with milliseconds and ``Z`` (``2025-10-31T12:00:00.000Z``), or None."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    return value


def track_dict(track: models.Track) -> dict[str, Any]:
    """Track object of the contract (blobs excluded, booleans as 0/1)."""
    out: dict[str, Any] = {}
    for col in models.Track.__table__.columns:
        if col.key in TRACK_HIDDEN:
            continue
        value = getattr(track, col.key)
        if col.key in TRACK_INT_BOOLS:
            value = int(bool(value))
        out[col.key] = _plain(value)
    return out


#: Columns of the track object, in table order (what list queries select).
TRACK_API_COLUMNS = tuple(c for c in models.Track.__table__.columns if c.key not in TRACK_HIDDEN)
_TRACK_DATETIMES = tuple(c.key for c in TRACK_API_COLUMNS if isinstance(c.type, DateTime))


def track_row_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    """Track object of the contract from a row of :data:`TRACK_API_COLUMNS`.

    Gives the same dict as :func:`track_dict` on the ORM object, without building
    one (list pages select plain columns: about half the time per row).
    """
    out = dict(row)
    for key in _TRACK_DATETIMES:
        out[key] = iso(out[key])
    for key in TRACK_INT_BOOLS:
        out[key] = int(bool(out[key]))
    return out


def directory_dict(directory: models.LibraryDirectory) -> dict[str, Any]:
    """Library-directory object of the contract (booleans as true/false)."""
    return {col.key: _plain(getattr(directory, col.key))
            for col in models.LibraryDirectory.__table__.columns}


def hot_cue_dict(cue: models.HotCue) -> dict[str, Any]:
    """Hot-cue row of the contract (``is_loop``/``auto_loop`` as 0/1)."""
    out = {col.key: _plain(getattr(cue, col.key)) for col in models.HotCue.__table__.columns}
    out["is_loop"] = int(bool(cue.is_loop))
    out["auto_loop"] = int(bool(cue.auto_loop))
    return out


def row_dict(obj: Any) -> dict[str, Any]:
    """Every column of an ORM object, datetimes as ISO strings."""
    return {col.key: _plain(getattr(obj, col.key)) for col in obj.__table__.columns}


def ok(data: Any = None, **extra: Any) -> dict[str, Any]:
    """Success envelope ``{"success": true, "data": data, **extra}``."""
    body: dict[str, Any] = {"success": True}
    if data is not None or not extra:
        body["data"] = data
    body.update(extra)
    return body


def pagination(page: int, limit: int, total: int) -> dict[str, int]:
    """``{"page", "limit", "total", "totalPages"}``; total is always present."""
    return {"page": page, "limit": limit, "total": total,
            "totalPages": max(1, math.ceil(total / limit)) if limit else 1}


def error_envelope(status: int, message: str, details: list[dict[str, str]] | None = None
                   ) -> dict[str, Any]:
    """Error body of the library routes: ``{"success": false, "error", "details"?}``,
    each detail ``{field, message}`` as in the contract."""
    body: dict[str, Any] = {"success": False, "error": message}
    if details:
        body["details"] = [{"field": d["field"], "message": d["message"]} for d in details]
    return body
