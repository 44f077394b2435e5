"""The shared log of counted plays: one SQLite table that every worker process appends to.

All SQL of the live wear routes is here. The table ``plays`` holds one row per
counted play: ``seq`` (``INTEGER PRIMARY KEY AUTOINCREMENT``, so a number is
never given twice, even after old rows are pruned), ``filename`` and ``body``,
the push as JSON text. SQLite's write lock orders the appends of every process
(and of every thread, each with its own connection), so ``seq`` is the order in
which plays were logged, across processes.

The log is transient: it is written with ``synchronous=OFF`` (a power cut may
lose the last pushes, never a play count, which the store keeps itself), and
only the last :data:`KEEP_ROWS` rows are kept, for subscribers that resume
after a reconnection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from taperoom.ephemeral.sqlitefile import SQLiteFile

#: Rows kept for subscribers that resume (about 200 bytes each).
KEEP_ROWS = 50_000
#: Appends (per process) between two prunes of old rows.
PRUNE_EVERY = 1_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plays (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    filename TEXT NOT NULL,
    body TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class LoggedPlay:
    """One row of the log.

    Attributes
    ----------
    seq : int
        Its number, rising in the order of the appends (never reused).
    filename : str
        Track played.
    body : str
        The push, a JSON object (it includes ``seq``).
    """

    seq: int
    filename: str
    body: str


class WearLog(SQLiteFile):
    """Append-only log of plays in ``path`` (a SQLite file), shared by processes.

    Parameters
    ----------
    path : Path
        The database file; its folder is created.
    busy_timeout : float
        Seconds a write waits for another process's write (``LOCK_TIMEOUT``).

    Notes
    -----
    One connection per thread (:class:`~taperoom.ephemeral.sqlitefile.SQLiteFile`).
    """

    synchronous = "OFF"  # transient: see the module

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        super().__init__(path, busy_timeout=busy_timeout)
        self._appends = 0
        con = self._con()
        con.execute(_SCHEMA)

    def append(self, filename: str, render: Callable[[int], str]) -> LoggedPlay:
        """Log one play; `render(seq)` makes its body while the log is write-locked.

        The body is rendered under the lock, so that what it reads (the track's
        counts) is read in the order of the numbers: a later row never shows
        fewer plays than an earlier one.

        Parameters
        ----------
        filename : str
            Track played.
        render : callable
            Called with the row's number; returns the JSON body.

        Returns
        -------
        LoggedPlay
            The row written.

        Raises
        ------
        sqlite3.OperationalError
            The log stayed locked for ``busy_timeout`` seconds, or cannot be written.
        """
        with self._write() as con:
            row = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'plays'").fetchone()
            seq = (row[0] if row else 0) + 1
            body = render(seq)
            con.execute("INSERT INTO plays (seq, filename, body) VALUES (?, ?, ?)",
                        (seq, filename, body))
        self._appends += 1
        if self._appends % PRUNE_EVERY == 0:
            self.prune()
        return LoggedPlay(seq, filename, body)

    def prune(self, keep: int = KEEP_ROWS) -> None:
        """Delete all but the last `keep` rows."""
        with self._write() as con:
            con.execute("DELETE FROM plays WHERE seq <= (SELECT max(seq) FROM plays) - ?",
                        (keep,))

    def last_seq(self) -> int:
        """Number of the last row ever written (0 for none)."""
        row = self._con().execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'plays'").fetchone()
        return int(row[0]) if row else 0

    def first_seq(self) -> int:
        """Number of the oldest row kept (``last_seq() + 1`` when none is kept)."""
        con = self._con()
        row = con.execute("SELECT min(seq) FROM plays").fetchone()
        return int(row[0]) if row and row[0] is not None else self.last_seq() + 1

    def after(self, seq: int, *, until: int | None = None, limit: int = 1000
              ) -> list[LoggedPlay]:
        """Rows numbered above `seq` (and up to `until`), oldest first, at most `limit`."""
        con = self._con()
        if until is None:
            rows = con.execute("SELECT seq, filename, body FROM plays WHERE seq > ? "
                               "ORDER BY seq LIMIT ?", (seq, limit)).fetchall()
        else:
            rows = con.execute("SELECT seq, filename, body FROM plays WHERE seq > ? AND "
                               "seq <= ? ORDER BY seq LIMIT ?", (seq, until, limit)).fetchall()
        return [LoggedPlay(int(s), str(f), str(b)) for s, f, b in rows]
