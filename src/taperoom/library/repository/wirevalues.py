"""Column values as the wire has them, computed by the database.

List queries that answer with many rows (a page of 1,000 tracks, a 1,000-track
playlist) select times and flags already in their wire form, so that no Python
work per value is left (parsing a time into a ``datetime`` and formatting it
back cost about a fifth of such a request):

* :func:`wire_time`: the ISO 8601 text of :func:`taperoom.library.schemas.iso`
  (``2025-10-31T12:00:00.123Z``: UTC, milliseconds, truncated), or NULL;
* :func:`wire_flag`: a boolean as 0/1 (NULL as 0, as ``int(bool(value))``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

#: The text SQLAlchemy stores a SQLite ``DATETIME`` as
#: (``YYYY-MM-DD HH:MM:SS.ffffff``, naive UTC), as a GLOB pattern.
SQLITE_STORED_TIME = ("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] "
                      "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]")


class WireTime(FunctionElement[str]):
    """``wire_time(column)``: see :func:`wire_time`."""

    type = sa.String()
    name = "wire_time"
    inherit_cache = True


def wire_time(column: Any, label: str | None = None) -> ColumnElement[str]:
    """The ISO 8601 text of a naive-UTC time column (``YYYY-MM-DDTHH:MM:SS.mmmZ``,
    the microseconds truncated to milliseconds as ``datetime.isoformat`` does), or
    NULL; labelled `label` (default: the column's name).

    On SQLite, a value stored by SQLAlchemy (:data:`SQLITE_STORED_TIME`) is cut and
    joined as text (exact); any other text SQLite reads as a time (no fraction, a
    ``T``, a ``Z`` or an offset, which is applied) goes through ``strftime``, which
    rounds digits past the milliseconds instead of truncating them. On PostgreSQL
    it is ``to_char`` (``MS`` truncates). Other databases get the column unchanged.
    """
    name = label if label is not None else column.key
    return WireTime(column).label(name)


@compiles(WireTime)
def _wire_time_default(element: WireTime, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(_argument(element), **kw)


@compiles(WireTime, "sqlite")
def _wire_time_sqlite(element: WireTime, compiler: SQLCompiler, **kw: Any) -> str:
    x = compiler.process(_argument(element), **kw)
    return (f"CASE WHEN {x} GLOB '{SQLITE_STORED_TIME}' "
            f"THEN substr({x}, 1, 10) || 'T' || substr({x}, 12, 12) || 'Z' "
            f"ELSE strftime('%Y-%m-%dT%H:%M:%fZ', {x}) END")


@compiles(WireTime, "postgresql")
def _wire_time_postgresql(element: WireTime, compiler: SQLCompiler, **kw: Any) -> str:
    x = compiler.process(_argument(element), **kw)
    return f"to_char({x}, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


def _argument(element: WireTime) -> Any:
    (argument,) = element.clauses.clauses
    return argument


def wire_flag(column: Any, label: str | None = None) -> ColumnElement[int]:
    """A boolean column as 0/1 (NULL as 0), labelled `label` (default: its name)."""
    name = label if label is not None else column.key
    return sa.case((column, 1), else_=0).label(name)
