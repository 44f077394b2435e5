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
* :class:`KeyLocks` — exclusive locks on string keys (a file path, a folder
  id), one byte each of one lock file, for what worker processes share: the
  file operations on a track's file, the scan of a library folder.

Both poll with a non-blocking request until a timeout, then raise
:class:`~taperoom.errors.Busy`. Threads of one process first queue on an
in-process lock for the same key, so only one thread per process polls the
kernel lock: waiting threads are woken at once instead of sleeping through
back-off, and the kernel lock still excludes the other worker processes.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import struct
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from taperoom.errors import Busy

_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)
_OFD_SETLKW: int | None = getattr(fcntl, "F_OFD_SETLKW", None)
_OFD_GETLK: int | None = getattr(fcntl, "F_OFD_GETLK", None)
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


class KeyLocks:
    """Exclusive locks on string keys that hold across threads and processes.

    Each key is one byte of one lock file, at an offset given by its hash
    (BLAKE2b, 62 bits: two keys share a byte with odds of about 2**-62), locked
    with an open-file-description lock (see :func:`range_lock`). The kernel
    drops every lock of a process that dies, so a crashed worker never leaves a
    key locked, and the lock file never grows (it stays empty: locks may lie
    beyond the end of a file). Threads of one process first queue on an
    in-process lock per key, so a blocked thread waits in the kernel only for
    other processes.

    Parameters
    ----------
    path : Path
        The lock file (created, with its folder, if missing). Every process that
        must exclude the others opens the same file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._guard = threading.Lock()
        self._local: dict[int, list[Any]] = {}  # offset -> [threading.Lock, users]

    @staticmethod
    def offset(key: str) -> int:
        """Byte of the lock file that stands for `key`."""
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        return int.from_bytes(digest, "big") >> 2

    def close(self) -> None:
        """Close the lock file (locks still held are released with it)."""
        with self._guard:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _kernel(self, offset: int, deadline: float | None, key: str) -> None:
        if _OFD_SETLKW is None:  # pragma: no cover - non-Linux: classic record locks
            fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, offset, os.SEEK_SET)
            return
        if deadline is None:  # wait in the kernel, without polling
            fcntl.fcntl(self._fd, _OFD_SETLKW,
                        struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0))
            return
        delay = 0.0005
        while not _try_range(self._fd, fcntl.F_WRLCK, offset, 1):
            if time.monotonic() >= deadline:
                raise Busy(f"Could not acquire the lock of {key} in time")
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    @contextmanager
    def hold(self, *keys: str, timeout: float | None = None) -> Iterator[None]:
        """Hold the locks of `keys` (duplicates allowed) for the ``with`` block.

        Keys are taken in the order of their offsets, so two holders asking for
        overlapping sets cannot deadlock, in one process or across processes.

        Parameters
        ----------
        *keys : str
        timeout : float, optional, keyword-only
            Seconds to wait in all; None waits as long as it takes.

        Raises
        ------
        Busy
            A lock was not granted within `timeout`.
        """
        wanted = sorted({self.offset(k): k for k in keys}.items())
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._guard:
            entries = []
            for off, _ in wanted:
                entry = self._local.setdefault(off, [threading.Lock(), 0])
                entry[1] += 1
                entries.append(entry)
        taken: list[tuple[int, threading.Lock, bool]] = []
        try:
            for (off, key), entry in zip(wanted, entries, strict=True):
                lock: threading.Lock = entry[0]
                wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
                if not lock.acquire(timeout=wait):
                    raise Busy(f"Could not acquire the lock of {key} in time")
                taken.append((off, lock, False))
                self._kernel(off, deadline, key)
                taken[-1] = (off, lock, True)
            yield
        finally:
            for off, lock, in_kernel in reversed(taken):
                if in_kernel:
                    _try_range(self._fd, fcntl.F_UNLCK, off, 1)
                lock.release()
            with self._guard:
                for (off, _), entry in zip(wanted, entries, strict=True):
                    entry[1] -= 1
                    if entry[1] == 0 and self._local.get(off) is entry:
                        del self._local[off]

    def busy(self, key: str) -> bool:
        """True while `key` is held or waited for, by this process or another one."""
        off = self.offset(key)
        with self._guard:
            if off in self._local:
                return True
        if _OFD_GETLK is None:  # pragma: no cover - non-Linux
            return False
        # F_OFD_GETLK reports a lock of another open file description (another
        # process, or a stranger) that would conflict; our own are counted above.
        answer = fcntl.fcntl(self._fd, _OFD_GETLK,
                             struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, off, 1, 0))
        return bool(struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK)

    def __len__(self) -> int:
        """Number of keys this process holds or waits for."""
        with self._guard:
            return len(self._local)


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
