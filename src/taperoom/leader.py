"""One leader among the worker processes of an app, and the duties only it runs.

``taperoom library serve --workers N`` runs N processes that all serve reads and
writes; the work that must run once per library (the file watcher, the job
consumers, the recovery of interrupted file operations) runs in exactly one of
them, the leader. Leadership is a lock that the operating system or the
database server releases when its holder dies, so another process takes over
within one :attr:`Leadership.poll` interval:

* :class:`FileLeaderLock` — an exclusive ``flock`` on a file in the data folder
  (SQLite libraries: every process runs on this machine);
* :class:`PostgresLeaderLock` — a session-level advisory lock
  (``pg_try_advisory_lock``) held by one dedicated connection, so that
  processes on several machines sharing one PostgreSQL library elect one leader
  (PostgreSQL documentation, "Advisory Locks").

:class:`Leadership` tries to take the lock once when started (so a lone process
leads before it serves its first request) and then every :attr:`poll` seconds
from a thread; when it leads it starts its duties in the order they were added,
and it stops them in reverse order when it steps down (shutdown, or a lost
database connection).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


def process_id(host: str | None = None) -> str:
    """A name of this process that no other process shares, ever:
    ``<host>:<pid>:<random>`` (a pid alone is reused after a restart).

    Parameters
    ----------
    host : str, optional
        The machine's name in it (default: :func:`socket.gethostname`); a worker
        given another node name (``taperoom library worker --name``, as Celery's
        ``--hostname``) is then judged by its heartbeat only, as a process of
        another machine (:func:`process_alive`). ``:`` is not allowed in it.

    Raises
    ------
    ValueError
        `host` is empty or holds a ``:``.
    """
    if host is not None and (not host.strip() or ":" in host):
        raise ValueError(f"a node name must be non-empty and without ':' (got {host!r})")
    name = host.strip() if host is not None else socket.gethostname()
    return f"{name}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def process_alive(owner: str) -> bool | None:
    """Whether the process named `owner` (see :func:`process_id`) still runs.

    Returns
    -------
    bool or None
        None when it runs on another machine (nobody here can tell).
    """
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return None
    try:
        pid = int(rest.partition(":")[0])
    except ValueError:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LeaderLock(Protocol):
    """A lock that at most one process holds, released when that process dies."""

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this process holds it now."""

    def held(self) -> bool:
        """Whether this process still holds the lock (a connection may have died)."""

    def release(self) -> None:
        """Give the lock up (nothing happens when it is not held)."""


class FileLeaderLock:
    """Leadership as an exclusive ``flock`` on `path` (created if missing).

    ``flock`` locks belong to the open file description, so two instances in one
    process exclude each other as two processes do, and the kernel releases
    the lock when its process dies.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        with contextlib.suppress(OSError):  # who leads, for a person looking
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return True

    def held(self) -> bool:
        """True while the lock is held (a file lock cannot be lost)."""
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close the lock file."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock


class PostgresLeaderLock:
    """Leadership as a PostgreSQL session-level advisory lock.

    The lock belongs to one connection kept open for as long as it is held;
    when the process dies, or the connection breaks, the server releases it.

    Parameters
    ----------
    engine : Engine
        Engine of the PostgreSQL database the processes share.
    name : str
        What is led (hashed to the lock's 64-bit key).
    """

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        digest = hashlib.blake2b(f"taperoom:{name}:leader".encode(), digest_size=8).digest()
        self.key = int.from_bytes(digest, "big", signed=True)
        self._conn: Any = None
        self.backend_pid: int | None = None

    def try_acquire(self) -> bool:
        """Take the advisory lock if it is free."""
        if self._conn is not None:
            return self.held()
        conn = self.engine.connect()
        try:
            got, pid = conn.execute(text("SELECT pg_try_advisory_lock(:k), pg_backend_pid()"),
                                    {"k": self.key}).one()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        self.backend_pid = int(pid)
        return True

    def held(self) -> bool:
        """True while the session holding the lock lives (the same server process
        answers: SQLAlchemy would silently reconnect a broken connection, to a new
        session without the lock)."""
        if self._conn is None:
            return False
        try:
            pid = self._conn.execute(text("SELECT pg_backend_pid()")).scalar()
            self._conn.commit()
        except Exception:
            pid = None
        if pid != self.backend_pid:
            log.warning("the database session holding the leader lock ended; stepping down")
            self._drop()
            return False
        return True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.backend_pid = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()  # never back into the pool with the lock on it
            with contextlib.suppress(Exception):
                conn.close()

    def release(self) -> None:
        """Unlock and close the connection."""
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._conn.commit()
        except Exception:
            log.debug("could not unlock the leader lock; closing its connection", exc_info=True)
        self._drop()


@dataclass(eq=False)
class _Duty:
    name: str
    start: Callable[[], object]
    stop: Callable[[], object]
    running: bool = False


class Leadership:
    """Campaigns for `lock` and runs the duties of the leader while it holds it.

    Parameters
    ----------
    lock : LeaderLock
    name : str
        What is led, for the log (``"library"``).
    poll : float
        Seconds between two attempts to take the lock (and checks that it is
        still held): the longest time without a leader after one dies.
    """

    def __init__(self, lock: LeaderLock, *, name: str, poll: float = 0.5) -> None:
        self.lock = lock
        self.name = name
        self.poll = poll
        self._duties: list[_Duty] = []
        self._mutex = threading.RLock()
        self._leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._acquired = threading.Condition(self._mutex)

    @property
    def leading(self) -> bool:
        """Whether this process leads now."""
        return self._leading

    def add_duty(self, name: str, start: Callable[[], object],
                 stop: Callable[[], object]) -> Callable[[], None]:
        """Run ``start()`` whenever this process becomes the leader, ``stop()`` when it
        steps down; started at once when it leads already. A duty that raises is
        logged and the others go on.

        Returns
        -------
        callable
            Removes the duty again (stopping it when it runs).
        """
        with self._mutex:
            duty = _Duty(name, start, stop)
            self._duties.append(duty)
            if self._leading:
                self._start_duty(duty)

        def remove() -> None:
            with self._mutex:
                if duty in self._duties:
                    self._duties.remove(duty)
                    if duty.running:
                        duty.running = False
                        try:
                            duty.stop()
                        except Exception:
                            log.exception("%s leader: could not stop %s", self.name, name)

        return remove

    def _start_duty(self, duty: _Duty) -> None:
        try:
            duty.start()
            duty.running = True
        except Exception:
            log.exception("%s leader: could not start %s", self.name, duty.name)

    def _stop_duties(self) -> None:
        for duty in reversed(self._duties):
            if duty.running:
                duty.running = False
                try:
                    duty.stop()
                except Exception:
                    log.exception("%s leader: could not stop %s", self.name, duty.name)

    def _attempt(self) -> None:
        with self._mutex:
            if self._stop.is_set():
                return
            if self._leading:
                if self.lock.held():
                    return
                self._leading = False
                self._stop_duties()
            try:
                got = self.lock.try_acquire()
            except Exception:
                log.warning("%s leader: could not try the leader lock", self.name, exc_info=True)
                return
            if not got:
                return
            self._leading = True
            log.info("%s: process %d leads (watcher, jobs, file recovery)", self.name,
                     os.getpid())
            for duty in self._duties:
                self._start_duty(duty)
            self._acquired.notify_all()

    def _campaign(self) -> None:
        while not self._stop.wait(self.poll):
            self._attempt()

    def start(self) -> None:
        """Try to lead now, then keep trying (and checking) from a thread."""
        self._attempt()
        self._thread = threading.Thread(target=self._campaign, name=f"{self.name}-leader",
                                        daemon=True)
        self._thread.start()

    def wait_leading(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until this process leads; True if it does."""
        with self._acquired:
            return self._acquired.wait_for(lambda: self._leading, timeout)

    def stop(self) -> None:
        """Stop campaigning; a leader stops its duties (reverse order) and steps down."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.poll + 5)
        with self._mutex:
            if self._leading:
                self._leading = False
                self._stop_duties()
            self.lock.release()
