"""A SQLite file that several processes share, with one connection per thread.

The ephemeral app's play log (:mod:`taperoom.ephemeral.live.wearlog`) and its
analytics record (:mod:`taperoom.ephemeral.analytics.repository`) are such files:
WAL journal, autocommit connections, writes in ``BEGIN IMMEDIATE`` transactions
that wait up to ``busy_timeout`` for another process's write.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["SQLiteFile"]


class SQLiteFile:
    """Per-thread connections to one SQLite file.

    Parameters
    ----------
    path : Path
        The database file; its folder is created.
    busy_timeout : float
        Seconds a write waits for another process's write (``LOCK_TIMEOUT``).

    Notes
    -----
    Each thread gets its own connection (SQLite connections are not shared
    between threads); :meth:`close` closes them all. Subclasses choose
    :attr:`synchronous`.
    """

    #: ``PRAGMA synchronous`` of every connection.
    synchronous = "NORMAL"

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                  check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(f"PRAGMA synchronous={self.synchronous}")
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    def close(self) -> None:
        """Close every connection of every thread."""
        with self._lock:
            cons, self._all = self._all, []
        for con in cons:
            con.close()
        self._local = threading.local()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
