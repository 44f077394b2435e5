"""The stem cache: one folder of WAV files per recording, limited in size, the least
recently used sets evicted first.

Layout: ``DATA_DIR/stem_cache/<audio hash>/<stem>.wav``, so two copies of a
recording (one audio hash) share their stems. Beside the folders, ``index.json``
records each set's size in bytes and when it was last used (written or asked
for) — a small index of its own rather than the files' ``atime``, which
``noatime`` and ``relatime`` mounts do not keep. The index is read and replaced
(temporary file, rename) under an exclusive ``flock`` of ``index.lock``, so
the worker processes of one library share it.

A set is written in a hidden temporary folder of the cache (:meth:`StemCache.begin`)
and renamed into place only when complete (:meth:`StemCache.install`), so a
half-written stem is never served; that folder is not in the index, so it is
never evicted while being written, and the hashes this process is writing are
skipped by eviction too. After an install, the least recently used other sets
are removed until the cache holds at most ``STEM_CACHE_MAX_BYTES``; the set
just installed stays even when it alone is larger.

Folders found without an index entry (a cache of an older version) are adopted,
their last use taken from their modification time; entries whose folder is gone
are dropped. Temporary folders a crash left are removed after a day.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taperoom.enginelink.stems import STEM_NAMES
from taperoom.fslock import atomic_write, file_lock

__all__ = ["StemCache"]

log = logging.getLogger(__name__)

#: What an audio hash (a cache folder's name) may look like.
HASH = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: Seconds after which a temporary folder (of a crashed write) is removed.
STALE_WORK = 86_400.0
#: Seconds to wait for the index lock.
LOCK_TIMEOUT = 30.0


@dataclass
class _Entry:
    size: int
    used: float


class StemCache:
    """The stem cache (see the module docstring).

    Parameters
    ----------
    root : Path
        ``DATA_DIR/stem_cache`` (made absolute; created when missing).
    max_bytes : int
        ``STEM_CACHE_MAX_BYTES``: most bytes of all sets together.
    clock : callable, optional
        Seconds since the epoch (default :func:`time.time`).
    """

    def __init__(self, root: Path, *, max_bytes: int,
                 clock: Any = time.time) -> None:
        self.root = Path(root).absolute()
        self.max_bytes = max_bytes
        self.clock = clock
        self._writing: dict[str, int] = {}
        self._guard = threading.Lock()

    # -- reading ------------------------------------------------------------------------

    def folder(self, file_hash: str) -> Path:
        """The folder of `file_hash`'s set (absolute; it may not exist).

        Raises
        ------
        ValueError
            `file_hash` cannot be an audio hash.
        """
        if not HASH.fullmatch(file_hash or ""):
            raise ValueError("bad audio hash")
        return self.root / file_hash

    def lookup(self, file_hash: str, names: Iterable[str] = STEM_NAMES
               ) -> dict[str, Path] | None:
        """The WAV files of `file_hash`'s set when it has every one of `names`, and mark
        the set used now; else None.

        Returns
        -------
        dict or None
            Absolute path of each WAV of the set by stem name (extra stems of a
            six-stem model included).
        """
        try:
            folder = self.folder(file_hash)
        except ValueError:
            return None
        if not folder.is_dir():
            return None
        with self._index() as index:  # under the lock: an install replaces sets under it
            found = self._wavs(folder)
            if not found or any(n not in found for n in names):
                return None
            entry = index.get(file_hash)
            if entry is None:
                entry = index[file_hash] = _Entry(_size(folder), self.clock())
            entry.used = self.clock()
        return found

    def present(self, file_hash: str) -> list[str]:
        """Names of the stems `file_hash`'s set holds (empty without a set); its last use
        is left alone."""
        try:
            return sorted(self._wavs(self.folder(file_hash)))
        except ValueError:
            return []

    def usage(self) -> dict[str, int]:
        """Bytes of each set in the index, by audio hash."""
        with self._index() as index:
            return {h: e.size for h, e in index.items()}

    # -- writing ------------------------------------------------------------------------

    def begin(self, file_hash: str) -> Path:
        """A new hidden temporary folder in the cache where `file_hash`'s set is written;
        end it with :meth:`install` or :meth:`discard`.

        Raises
        ------
        ValueError
            `file_hash` cannot be an audio hash.
        """
        self.folder(file_hash)
        self.root.mkdir(parents=True, exist_ok=True)
        with self._guard:
            self._writing[file_hash] = self._writing.get(file_hash, 0) + 1
        return Path(tempfile.mkdtemp(prefix=f".{file_hash}.", dir=self.root))

    @contextmanager
    def writing(self, file_hash: str) -> Iterator[Path]:
        """:meth:`begin`, then :meth:`discard` the folder when the block raises (the
        block calls :meth:`install` itself when the set is complete; an install
        that fails is discarded too)."""
        work = self.begin(file_hash)
        try:
            yield work
        except BaseException:
            self.discard(file_hash, work)
            raise

    def discard(self, file_hash: str, work: Path) -> None:
        """Remove a temporary folder of :meth:`begin` (nothing is installed)."""
        shutil.rmtree(work, ignore_errors=True)
        self._done(file_hash)

    def install(self, file_hash: str, work: Path) -> list[str]:
        """Rename the complete set written in `work` to ``<root>/<file_hash>`` (replacing an
        older set), record it as used now, then evict the least recently used other
        sets until the cache fits ``max_bytes``.

        Returns
        -------
        list of str
            The audio hashes whose sets were evicted.

        Raises
        ------
        OSError
            The rename failed (`work` is left for :meth:`discard`).
        Busy
            The index lock was not had within :data:`LOCK_TIMEOUT`.
        """
        final = self.folder(file_hash)
        with file_lock(self.root / "index.lock", timeout=LOCK_TIMEOUT):
            old: Path | None = None
            if final.exists():
                old = final.rename(self.root / f".{file_hash}.old-{uuid.uuid4().hex}")
            os.rename(work, final)
            index = self._load()
            index[file_hash] = _Entry(_size(final), self.clock())
            evicted = self._evict(index, keep=file_hash)
            self._save(index)
        self._done(file_hash)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        for gone in evicted:
            log.info("stem cache: evicted the stems of %s (least recently used)", gone)
        return evicted

    def tidy(self) -> None:
        """Adopt folders missing from the index, drop entries whose folder is gone, and
        remove temporary folders older than :data:`STALE_WORK` (at start-up)."""
        if not self.root.is_dir():
            return
        now = self.clock()
        for child in self.root.iterdir():
            if child.name.startswith(".") and child.is_dir():
                try:
                    stale = now - child.stat().st_mtime > STALE_WORK
                except OSError:
                    continue
                if stale:
                    shutil.rmtree(child, ignore_errors=True)
        with self._index():
            pass

    # -- inside -------------------------------------------------------------------------

    def _done(self, file_hash: str) -> None:
        with self._guard:
            left = self._writing.get(file_hash, 0) - 1
            if left > 0:
                self._writing[file_hash] = left
            else:
                self._writing.pop(file_hash, None)

    @staticmethod
    def _wavs(folder: Path) -> dict[str, Path]:
        try:
            return {p.stem: p for p in folder.iterdir()
                    if p.suffix == ".wav" and not p.name.startswith(".") and p.is_file()}
        except OSError:
            return {}

    @contextmanager
    def _index(self) -> Iterator[dict[str, _Entry]]:
        """The index, reconciled with the folders, under its lock; saved after."""
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / "index.lock", timeout=LOCK_TIMEOUT):
            index = self._load()
            yield index
            self._save(index)

    def _load(self) -> dict[str, _Entry]:
        try:
            raw = json.loads((self.root / "index.json").read_bytes())
            sets: Mapping[str, Any] = raw.get("sets", {}) if isinstance(raw, dict) else {}
        except (OSError, ValueError):
            sets = {}
        index: dict[str, _Entry] = {}
        for file_hash, entry in sets.items():
            try:
                index[file_hash] = _Entry(int(entry["size"]), float(entry["used"]))
            except (TypeError, KeyError, ValueError):
                continue
        on_disk = {c.name for c in self.root.iterdir()
                   if c.is_dir() and not c.name.startswith(".") and HASH.fullmatch(c.name)}
        for gone in set(index) - on_disk:
            del index[gone]
        for found in on_disk - set(index):
            folder = self.root / found
            index[found] = _Entry(_size(folder), folder.stat().st_mtime)
        return index

    def _save(self, index: dict[str, _Entry]) -> None:
        data = {"version": 1, "sets": {h: {"size": e.size, "used": e.used}
                                       for h, e in sorted(index.items())}}
        atomic_write(self.root / "index.json", json.dumps(data).encode(), fsync=False)

    def _evict(self, index: dict[str, _Entry], *, keep: str) -> list[str]:
        """Remove the least recently used sets (not `keep`, not one being written) until
        the index's total fits; returns their hashes."""
        with self._guard:
            busy = set(self._writing)
        total = sum(e.size for e in index.values())
        evicted: list[str] = []
        for file_hash, entry in sorted(index.items(), key=lambda item: item[1].used):
            if total <= self.max_bytes:
                break
            if file_hash == keep or file_hash in busy:
                continue
            doomed = self.root / f".{file_hash}.evicted-{uuid.uuid4().hex}"
            try:
                (self.root / file_hash).rename(doomed)
            except OSError:
                continue
            shutil.rmtree(doomed, ignore_errors=True)
            del index[file_hash]
            total -= entry.size
            evicted.append(file_hash)
        return evicted


def _size(folder: Path) -> int:
    """Bytes of the files of `folder` (not recursive)."""
    total = 0
    try:
        for child in folder.iterdir():
            try:
                if child.is_file():
                    total += child.stat().st_size
            except OSError:
                continue
    except OSError:
        return 0
    return total
