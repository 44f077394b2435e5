"""The durable record of play events: one SQLite table that every worker process appends to.

All SQL of the analytics is here. The table ``play_events`` holds one row per
counted play: ``id`` (rising in the order of the appends, across processes:
SQLite's write lock orders them), ``played_at`` (Unix seconds, the server's
clock when the play was saved), ``filename``, ``segment_index``,
``play_count`` (that segment's count after the play), ``degradation`` (the
track's ``overall_degradation`` read after the play, percent; NULL when it
could not be read) and ``worker_pid`` (the process that counted the play).

Unlike the live wear log (:mod:`taperoom.ephemeral.live.wearlog`), nothing is
ever pruned. The file is written in WAL mode with ``synchronous=NORMAL``: a
crash of any process at any instant loses no committed row and corrupts
nothing; an operating-system crash or power cut may lose the last few rows
(the play counts themselves are kept by the store, which fsyncs them).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from taperoom.ephemeral.sqlitefile import SQLiteFile

#: ``PRAGMA user_version`` of the schema below.
SCHEMA_VERSION = 1

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS play_events (
        id INTEGER PRIMARY KEY,
        played_at REAL NOT NULL,
        filename TEXT NOT NULL,
        segment_index INTEGER NOT NULL,
        play_count INTEGER NOT NULL,
        degradation REAL,
        worker_pid INTEGER NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS ix_play_events_played_at ON play_events (played_at)",
    "CREATE INDEX IF NOT EXISTS ix_play_events_filename_played_at "
    "ON play_events (filename, played_at)",
)


@dataclass(frozen=True)
class PlayEvent:
    """One row of ``play_events``.

    Attributes
    ----------
    id : int
        Rising in the order of the appends (across processes).
    played_at : float
        Unix time (s) when the play was saved.
    filename : str
        Track played.
    segment_index : int
        Segment played.
    play_count : int
        That segment's play count after the play.
    degradation : float or None
        The track's overall degradation (percent) after the play; None when it
        could not be read.
    worker_pid : int
        Process that counted the play.
    """

    id: int
    played_at: float
    filename: str
    segment_index: int
    play_count: int
    degradation: float | None
    worker_pid: int


@dataclass(frozen=True)
class BucketRow:
    """The plays of one track in one time bucket.

    Attributes
    ----------
    filename : str
        Track.
    bucket : int
        Index of the bucket: ``floor((played_at - origin) / width)``.
    plays : int
        Plays of the track in the bucket.
    degradation : float or None
        The track's degradation recorded with its last play in the bucket (the
        one appended last).
    """

    filename: str
    bucket: int
    plays: int
    degradation: float | None


class PlayEventRepository(SQLiteFile):
    """Append-only table of play events in ``path`` (a SQLite file), shared by processes.

    Parameters
    ----------
    path : Path
        The database file; its folder is created.
    busy_timeout : float
        Seconds a write waits for another process's write (``LOCK_TIMEOUT``).

    Raises
    ------
    sqlite3.DatabaseError
        `path` exists and is not a SQLite database, or was made by a newer schema.

    Notes
    -----
    One connection per thread (:class:`~taperoom.ephemeral.sqlitefile.SQLiteFile`).
    """

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        super().__init__(path, busy_timeout=busy_timeout)
        with self._write() as con:
            version = int(con.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"{path}: schema version {version} is newer than this program's "
                    f"({SCHEMA_VERSION})")
            for statement in _SCHEMA:
                con.execute(statement)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def append(self, *, played_at: float, filename: str, segment_index: int, play_count: int,
               degradation: Callable[[], float | None]) -> int:
        """Record one play; `degradation()` is read while the table is write-locked.

        Reading the track's degradation under the lock makes it rise with ``id``
        across processes: a later row never shows less wear than an earlier one
        (unless the track was reset between them).

        Parameters
        ----------
        played_at : float
            Unix time (s) when the play was saved.
        filename, segment_index, play_count
            The play (`play_count` is the segment's count after it).
        degradation : callable
            Returns the track's overall degradation now (percent), or None.

        Returns
        -------
        int
            The row's ``id``.

        Raises
        ------
        sqlite3.OperationalError
            The table stayed locked for ``busy_timeout`` seconds, or cannot be written.
        """
        with self._write() as con:
            cur = con.execute(
                "INSERT INTO play_events (played_at, filename, segment_index, play_count, "
                "degradation, worker_pid) VALUES (?, ?, ?, ?, ?, ?)",
                (played_at, filename, segment_index, play_count, degradation(), os.getpid()))
            row_id = cur.lastrowid
        assert row_id is not None
        return row_id

    def span(self, filename: str | None) -> tuple[float, float] | None:
        """Times (Unix s) of the first and last play of `filename` (None: of any track),
        or None when none is recorded."""
        if filename is None:
            row = self._con().execute(
                "SELECT min(played_at), max(played_at) FROM play_events").fetchone()
        else:
            row = self._con().execute(
                "SELECT min(played_at), max(played_at) FROM play_events WHERE filename = ?",
                (filename,)).fetchone()
        if row is None or row[0] is None:
            return None
        return float(row[0]), float(row[1])

    def buckets(self, filename: str | None, *, start: float, end: float, origin: float,
                width: float) -> list[BucketRow]:
        """Plays per track and time bucket, for plays with ``start <= played_at <= end``.

        Parameters
        ----------
        filename : str or None
            One track, or every track.
        start, end : float
            Unix seconds, both included.
        origin : float
            Start of bucket 0 (Unix s).
        width : float
            Bucket length (s), > 0.

        Returns
        -------
        list of BucketRow
            Sorted by bucket, then file name; a bucket without plays of a track has
            no row for it.

        Notes
        -----
        The degradation of each row is that of the group's row with the largest
        ``id``: SQLite takes the bare columns of a group from the row that a single
        ``max()`` aggregate picks (https://sqlite.org/lang_select.html#bareagg).
        """
        where = "played_at >= ? AND played_at <= ?"
        args: list[float | str] = [start, end]
        if filename is not None:
            where += " AND filename = ?"
            args.append(filename)
        rows = self._con().execute(
            "SELECT filename, CAST((played_at - ?) / ? AS INTEGER) AS bucket, count(*), "
            f"max(id), degradation FROM play_events WHERE {where} "
            "GROUP BY filename, bucket ORDER BY bucket, filename",
            (origin, width, *args)).fetchall()
        return [BucketRow(str(f), int(b), int(n), None if d is None else float(d))
                for f, b, n, _, d in rows]

    def degradation_before(self, filename: str | None, before: float) -> dict[str, float]:
        """Each track's degradation recorded with its last play before `before` (Unix s),
        by file name (tracks without such a play, or whose last one recorded none,
        are left out)."""
        where = "played_at < ?"
        args: list[float | str] = [before]
        if filename is not None:
            where += " AND filename = ?"
            args.append(filename)
        rows = self._con().execute(
            f"SELECT filename, max(id), degradation FROM play_events WHERE {where} "
            "GROUP BY filename", args).fetchall()
        return {str(f): float(d) for f, _, d in rows if d is not None}

    def has_plays(self, filename: str) -> bool:
        """Whether any play of `filename` is recorded."""
        row = self._con().execute("SELECT 1 FROM play_events WHERE filename = ? LIMIT 1",
                                  (filename,)).fetchone()
        return row is not None

    def events(self, filename: str | None = None, *, limit: int = 1000) -> list[PlayEvent]:
        """The first `limit` events (of `filename`, or of every track), oldest first."""
        columns = "id, played_at, filename, segment_index, play_count, degradation, worker_pid"
        if filename is None:
            rows = self._con().execute(
                f"SELECT {columns} FROM play_events ORDER BY id LIMIT ?", (limit,)).fetchall()
        else:
            rows = self._con().execute(
                f"SELECT {columns} FROM play_events WHERE filename = ? ORDER BY id LIMIT ?",
                (filename, limit)).fetchall()
        return [PlayEvent(int(i), float(t), str(f), int(s), int(c),
                          None if d is None else float(d), int(p))
                for i, t, f, s, c, d, p in rows]
