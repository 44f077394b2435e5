"""File locks that hold across threads *and* processes.

Two kinds are used by the apps:

* :func:`range_lock` — a byte-range write lock on an open file, taken with Linux
  open-file-description locks (``F_OFD_SETLK``, Linux >= 3.15). Unlike classic
  POSIX ``lockf`` record locks, OFD locks belong to the open file description: two
  threads of one process with their own descriptors exclude each other, and closing
  some other descriptor of the same file does not silently drop the lock. Where
  OFD locks are missing, classic ``lockf`` is used.
* :func:`file_lock` — an exclusive ``flock`` on a small lock file, for
  read-modify-write of a file that is replaced by rename.

Both poll with a non-blocking request until a timeout, then raise
:class:`~taperoom.errors.Busy`. Threads of one process first queue on an
in-process lock for the same key, so only one thread per process polls the
kernel lock: waiting threads are woken at once instead of sleeping through
back-off, and the kernel lock still excludes the other worker processes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path

from taperoom.errors import Busy

_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)
# struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len,
# pid_t l_pid (must be 0 for OFD locks), padded to 8 bytes.
_FLOCK = "@hhqqi4x"


def _try_range(fd: int, kind: int, start: int, length: int) -> bool:
    try:
        if _OFD_SETLK is not None:
            fcntl.fcntl(fd, _OFD_SETLK, struct.pack(_FLOCK, kind, os.SEEK_SET, start, length, 0))
        else:  # pragma: no cover - non-Linux fallback
            op = {fcntl.F_WRLCK: fcntl.LOCK_EX, fcntl.F_RDLCK: fcntl.LOCK_SH,
                  fcntl.F_UNLCK: fcntl.LOCK_UN}[kind]
            fcntl.lockf(fd, op | (fcntl.LOCK_NB if kind != fcntl.F_UNLCK else 0),
                        length, start, os.SEEK_SET)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


class _LocalLock:
    """A threading lock that can live in a WeakValueDictionary."""

    __slots__ = ("__weakref__", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()


_local_locks: weakref.WeakValueDictionary[Hashable, _LocalLock] = weakref.WeakValueDictionary()
_registry = threading.Lock()


def _local(key: Hashable) -> _LocalLock:
    with _registry:
        lk = _local_locks.get(key)
        if lk is None:
            lk = _LocalLock()
            _local_locks[key] = lk
        return lk


@contextmanager
def _held(key: Hashable, attempt: Callable[[], bool], release: Callable[[], object],
          timeout: float, what: str) -> Iterator[None]:
    """Take the in-process lock of `key`, then poll `attempt` for the kernel lock."""
    deadline = time.monotonic() + timeout
    local = _local(key)
    if not local.lock.acquire(timeout=timeout):
        raise Busy(f"Could not acquire lock on {what} within {timeout:g} s")
    try:
        delay = 0.0001
        while not attempt():
            if time.monotonic() >= deadline:
                raise Busy(f"Could not acquire lock on {what} within {timeout:g} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.001)
        try:
            yield
        finally:
            release()
    finally:
        local.lock.release()


@contextmanager
def range_lock(fd: int, start: int, length: int, *, timeout: float = 5.0,
               shared: bool = False) -> Iterator[None]:
    """Hold a write (or read) lock on bytes ``[start, start + length)`` of `fd`.

    Parameters
    ----------
    fd : int
        Open file descriptor (opened for writing when `shared` is False).
    start, length : int
        Byte range; ``length == 0`` means "to the end of the file, however long".
    timeout : float, keyword-only
        Seconds to keep trying before giving up.
    shared : bool, keyword-only
        Take a read lock instead of a write lock.

    Raises
    ------
    Busy
        The lock was not granted within `timeout` seconds.
    """
    kind = fcntl.F_RDLCK if shared else fcntl.F_WRLCK
    st = os.fstat(fd)
    with _held(("range", st.st_dev, st.st_ino, start, length, shared),
               lambda: _try_range(fd, kind, start, length),
               lambda: _try_range(fd, fcntl.F_UNLCK, start, length),
               timeout, f"bytes {start}+{length}"):
        yield


@contextmanager
def file_lock(path: str | Path, *, timeout: float = 5.0) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the lock file `path` (created if missing).

    Raises
    ------
    Busy
        The lock was not granted within `timeout` seconds.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        def attempt() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        with _held(("flock", os.path.abspath(path)), attempt,
                   lambda: fcntl.flock(fd, fcntl.LOCK_UN), timeout, Path(path).name):
            yield
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Replace `path` by `data` atomically: temp file in the same folder, fsync, rename.

    A crash at any instant leaves either the old or the new content, never a mix.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries to disk, so that a rename or unlink in it survives a crash.

    Best effort: a folder that cannot be opened or synced (some network and FUSE
    filesystems refuse) is passed over silently. Source: fsync(2), "Calling
    fsync() does not necessarily ensure that the entry in the directory
    containing the file has also reached disk. For that an explicit fsync() on a
    file descriptor for the directory is also needed."

    Parameters
    ----------
    folder : str or Path
        The folder whose entries changed.
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
