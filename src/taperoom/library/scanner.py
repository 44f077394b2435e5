"""The library scanner: explicit phases over batches.

A scan of one library folder runs these phases (as Navidrome's ``phase_N`` and
beets' importer stages):

1. **walk** — :func:`walk` lists the audio files below the folder with
   ``os.scandir`` and ``stat``, honouring the folder's ``recursive_scan``,
   ``max_depth``, ``scan_patterns``, ``exclude_patterns`` and ``follow_symlinks``
   (see :class:`WalkPolicy`).
2. **diff** — :func:`diff` compares ``(size, mtime_ns)`` of every file with the
   rows of the folder, loaded in one query: new, changed, unchanged, reappeared
   and gone files. An unchanged file costs one ``stat`` and nothing else.
3. **read** — tags (:func:`taperoom.audio.tags.read_tags`) and the audio-content
   hash (:func:`taperoom.audio.hashing.audio_hash`) of the files the strategy
   asks for, in ``scan_workers`` processes (one thread for small batches); a
   file that cannot be read is recorded with its ``scan_error`` and never stops
   the scan.
4. **upsert** — per batch of :data:`BATCH_SIZE` files, one ``executemany``
   insert and one bulk update, in one transaction; a new file whose content
   matches a track whose file is gone (same audio hash, or same size and quick
   hash) is a **move**: the existing row gets the new path and keeps its id,
   analysis, hot cues and playlist entries.
5. **missing** — rows whose file is gone (and was not moved) are marked
   ``is_missing`` (never deleted); files that reappear are restored.
6. **duplicates** and **stats** — duplicate groups of the touched hashes, and
   the folder's counters.

Strategies: ``fast`` only stats (new tracks get a title and artist from the file
name, no tags and no audio hash, only the quick hash of two 64 KiB reads so that
a later move is recognised; changed files are left for the next ``hybrid`` scan);
``hybrid`` reads tags and hashes new and changed files and rows still without a
hash; ``full`` reads every file.

Walk policy decisions: hidden files and folders (names starting with ``.``,
including macOS ``._*`` resource forks) are skipped, as beets and Mixxx do;
glob patterns are matched case-insensitively against both the path relative to
the folder and the bare name; a symbolic link is skipped unless the folder has
``follow_symlinks``, and then every real directory is entered once (loops are
broken by ``(st_dev, st_ino)``); ``max_depth`` counts folder levels below the
root (0: only the root's own files, -1: unlimited), and ``recursive_scan=false``
means depth 0.

The watcher runs the same phases on just the changed paths
(:func:`scan_directory` with ``paths=``).

Progress events (``library:directory:scan:progress``, at most every
:data:`PROGRESS_INTERVAL` s and at each phase change) name the phase: ``walk``,
``diff``, ``read`` (tags, hashes and upserts), ``missing``, ``duplicates``, then
``done``, ``cancelled`` or ``error``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taperoom.audio.hashing import audio_hash, quick_hash
from taperoom.audio.tags import TagInfo, read_tags, title_from_filename
from taperoom.db import transaction
from taperoom.errors import Conflict, InvalidInput, MediaError, NotFound
from taperoom.events import Event
from taperoom.library import models
from taperoom.library.keys import parse_key
from taperoom.library.repository import scan as repo
from taperoom.library.repository.scan import TrackRow
from taperoom.library.schemas import TRACK_HIDDEN, TRACK_INT_BOOLS, iso

if TYPE_CHECKING:
    from taperoom.library.context import LibraryContext

log = logging.getLogger(__name__)

#: Scan strategies, cheapest first.
STRATEGIES = ("fast", "hybrid", "full")
#: Files per upsert transaction (and between two cancellation checks).
BATCH_SIZE = 200
#: Minimum seconds between two ``scan:progress`` events.
PROGRESS_INTERVAL = 0.25


class ScanCancelled(Exception):
    """Raised inside a scan when its cancel flag is set (caught by :func:`scan_directory`)."""


# --------------------------------------------------------------------------- globs


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob into a case-insensitive regular expression.

    ``*`` matches within one path component, ``?`` one character, ``[...]`` a
    character class (``[!...]`` negated), and ``**`` any number of components:
    ``"**/Samples/**"`` matches ``Samples``, ``Samples/kick.wav`` and
    ``a/b/Samples/c/kick.wav``; ``"House/**"`` matches ``House`` and everything
    below it. A leading ``/`` anchors at the library root (it is dropped, since
    relative paths have none).

    Parameters
    ----------
    pattern : str
        Glob with ``/`` (or ``\\``) separators.

    Returns
    -------
    re.Pattern
        Matches a whole relative path or name.
    """
    pat = pattern.replace("\\", "/").lstrip("/")
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == "*":
            j = i
            while j < n and pat[j] == "*":
                j += 1
            if j - i >= 2:
                at_start = i == 0 or pat[i - 1] == "/"
                if at_start and j < n and pat[j] == "/":
                    out.append("(?:.*/)?")
                    i = j + 1
                    continue
                if at_start and j == n and i > 0:
                    out.pop()  # the "/" before "**": "x/**" also matches "x" itself
                    out.append("(?:/.*)?")
                    i = j
                    continue
                out.append(".*")
            else:
                out.append("[^/]*")
            i = j
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pat.find("]", i + 2 if i + 1 < n and pat[i + 1] in "!^" else i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pat[i + 1:end]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:].replace("\\", "\\\\")
                else:
                    body = body.replace("\\", "\\\\")
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.IGNORECASE | re.DOTALL)


def _patterns(value: Any) -> tuple[re.Pattern[str], ...]:
    if not value:
        return ()
    if isinstance(value, str):
        value = [value]
    return tuple(glob_to_regex(str(p)) for p in value if str(p).strip())


def _matches(patterns: Sequence[re.Pattern[str]], rel: str, name: str) -> bool:
    return any(p.match(rel) or p.match(name) for p in patterns)


# --------------------------------------------------------------------------- walk


@dataclass(frozen=True, slots=True)
class FileStat:
    """An audio file found by the walk.

    Attributes
    ----------
    path : str
        Absolute path (below the library root, symlinks not resolved).
    rel : str
        Path relative to the library root, ``/``-separated.
    size : int
        Bytes.
    mtime_ns : int
        Modification time, ns since the epoch.
    """

    path: str
    rel: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class WalkPolicy:
    """Which files below a library root are part of the library.

    Attributes
    ----------
    root : str
        Absolute library folder.
    extensions : frozenset of str
        Lower-case extensions with their dot (``".flac"``); matched case-insensitively.
    max_depth : int
        Folder levels below the root to enter; 0 only the root, -1 unlimited.
    include, exclude : tuple of re.Pattern
        Compiled ``scan_patterns`` / ``exclude_patterns`` (see :func:`glob_to_regex`);
        with includes, a file must match one; an excluded folder is not entered.
    follow_symlinks : bool
        Follow symbolic links to files and folders (each real folder entered once).
    skip_hidden : bool
        Skip names starting with ``.``.
    refusal : callable(Path) -> str or None, optional
        With `follow_symlinks`, says why a folder that a link leads to may not be
        entered (:meth:`FolderPolicy.refusal`: the filesystem root, system folders,
        pseudo filesystems); such a link is reported as an error and not followed.
    """

    root: str
    extensions: frozenset[str]
    max_depth: int = -1
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    follow_symlinks: bool = False
    skip_hidden: bool = True
    refusal: Callable[[Path], str | None] | None = None

    @classmethod
    def for_directory(cls, directory: models.LibraryDirectory, extensions: frozenset[str],
                      refusal: Callable[[Path], str | None] | None = None) -> WalkPolicy:
        """The policy of a library directory row (`refusal`: see the class)."""
        depth = directory.max_depth if directory.recursive_scan else 0
        if depth is None or depth < 0:
            depth = -1
        return cls(root=os.path.abspath(directory.path), extensions=extensions,
                   max_depth=depth, include=_patterns(directory.scan_patterns),
                   exclude=_patterns(directory.exclude_patterns),
                   follow_symlinks=bool(directory.follow_symlinks), refusal=refusal)

    def file_ok(self, rel: str, name: str) -> bool:
        """Whether a file at `rel` (relative path) named `name` belongs to the library."""
        if self.skip_hidden and name.startswith("."):
            return False
        if os.path.splitext(name)[1].lower() not in self.extensions:
            return False
        if _matches(self.exclude, rel, name):
            return False
        return not self.include or _matches(self.include, rel, name)

    def dir_ok(self, rel: str, name: str, depth: int) -> bool:
        """Whether to enter the folder `rel` at `depth` levels below the root."""
        if self.skip_hidden and name.startswith("."):
            return False
        if self.max_depth >= 0 and depth > self.max_depth:
            return False
        return not _matches(self.exclude, rel, name)


def _printable(path: str) -> str:
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _valid_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def walk(policy: WalkPolicy, *, start: str = "", cancelled: Callable[[], bool] | None = None,
         found: Callable[[int], None] | None = None
         ) -> tuple[list[FileStat], list[dict[str, str]]]:
    """List the library's audio files below `policy.root` (or below its sub-folder `start`).

    Parameters
    ----------
    policy : WalkPolicy
    start : str
        Sub-folder relative to the root (``/``-separated) to walk instead of the
        root; the depth limit still counts from the root.
    cancelled : callable, optional
        Polled once per folder; when it returns True, :class:`ScanCancelled` is raised.
    found : callable(int), optional
        Called with the running number of files found, once per folder.

    Returns
    -------
    files : list of FileStat
        Sorted by relative path within each folder.
    errors : list of dict
        ``{"path", "error"}`` of folders and files that could not be read
        (permission denied, names that are not UTF-8); the walk goes on.
    """
    files: list[FileStat] = []
    errors: list[dict[str, str]] = []
    follow = policy.follow_symlinks
    start_abs = os.path.join(policy.root, *start.split("/")) if start else policy.root
    start_depth = len(start.split("/")) if start else 0
    seen: set[tuple[int, int]] = set()
    if follow:
        try:
            st = os.stat(start_abs)
            seen.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    stack = [(start_abs, start, start_depth)]
    while stack:
        if cancelled is not None and cancelled():
            raise ScanCancelled
        d_abs, d_rel, depth = stack.pop()
        try:
            with os.scandir(d_abs) as it:
                entries = sorted(it, key=lambda e: e.name, reverse=True)
        except OSError as exc:
            errors.append({"path": _printable(d_abs), "error": exc.strerror or str(exc)})
            continue
        for entry in entries:
            name = entry.name
            rel = f"{d_rel}/{name}" if d_rel else name
            try:
                if not follow and entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=follow):
                    if not policy.dir_ok(rel, name, depth + 1):
                        continue
                    if follow:
                        st = entry.stat(follow_symlinks=True)
                        key = (st.st_dev, st.st_ino)
                        if key in seen:
                            continue
                        seen.add(key)
                        why = (policy.refusal(Path(os.path.realpath(entry.path)))
                               if policy.refusal is not None and entry.is_symlink() else None)
                        if why is not None:
                            errors.append({"path": _printable(entry.path),
                                           "error": f"link not followed: {why}"})
                            continue
                    stack.append((entry.path, rel, depth + 1))
                elif entry.is_file(follow_symlinks=follow):
                    if not policy.file_ok(rel, name):
                        continue
                    if not _valid_name(rel):
                        errors.append({"path": _printable(entry.path),
                                       "error": "file name is not valid UTF-8"})
                        continue
                    st = entry.stat(follow_symlinks=follow)
                    files.append(FileStat(entry.path, rel, st.st_size, st.st_mtime_ns))
            except OSError as exc:
                errors.append({"path": _printable(entry.path), "error": exc.strerror or str(exc)})
        if found is not None:
            found(len(files))
    return files, errors


@dataclass
class PathSelection:
    """The part of a library selected by a list of changed paths (watcher).

    Attributes
    ----------
    files : list of FileStat
        Audio files found at or below the paths.
    file_paths, folder_paths : list of str
        Absolute paths whose rows to compare: rows at `file_paths`, and rows below
        `folder_paths` (a vanished path is in both lists).
    errors : list of dict
        As :func:`walk`.
    whole : bool
        A path was the root itself: the caller should scan the whole folder.
    """

    files: list[FileStat] = field(default_factory=list)
    file_paths: list[str] = field(default_factory=list)
    folder_paths: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    whole: bool = False


def select_paths(policy: WalkPolicy, paths: Iterable[str]) -> PathSelection:
    """Apply the walk policy to changed paths (files or folders, present or gone).

    Parameters
    ----------
    policy : WalkPolicy
    paths : iterable of str
        Absolute paths reported by the file watcher. Paths outside the root, or
        inside a folder the policy does not enter, are ignored.

    Returns
    -------
    PathSelection
    """
    sel = PathSelection()
    seen_files: set[str] = set()
    for raw in dict.fromkeys(paths):
        p = os.path.normpath(raw)
        rel = os.path.relpath(p, policy.root)
        if rel == ".":
            sel.whole = True
            return sel
        if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
            continue
        parts = rel.split(os.sep)
        rel = "/".join(parts)
        if not _ancestors_ok(policy, parts):
            continue
        name = parts[-1]
        depth = len(parts)
        is_link = os.path.islink(p)
        if is_link and not policy.follow_symlinks:
            sel.file_paths.append(p)
            sel.folder_paths.append(p)
            continue
        if os.path.isdir(p):
            sel.folder_paths.append(p)
            if policy.dir_ok(rel, name, depth):
                files, errors = walk(policy, start=rel)
                for f in files:
                    if f.path not in seen_files:
                        seen_files.add(f.path)
                        sel.files.append(f)
                sel.errors.extend(errors)
            continue
        if os.path.isfile(p):
            sel.file_paths.append(p)
            if policy.file_ok(rel, name) and p not in seen_files and _valid_name(rel):
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                seen_files.add(p)
                sel.files.append(FileStat(p, rel, st.st_size, st.st_mtime_ns))
            continue
        sel.file_paths.append(p)
        sel.folder_paths.append(p)
    return sel


def _ancestors_ok(policy: WalkPolicy, parts: list[str]) -> bool:
    for i, part in enumerate(parts[:-1]):
        rel = "/".join(parts[:i + 1])
        if not policy.dir_ok(rel, part, i + 1):
            return False
        if not policy.follow_symlinks and os.path.islink(os.path.join(policy.root, *parts[:i + 1])):
            return False
    return True


def root_available(path: str) -> bool:
    """Whether a library root is a readable, listable directory right now."""
    return os.path.isdir(path) and os.access(path, os.R_OK | os.X_OK)


# --------------------------------------------------------------------------- read


@dataclass(slots=True)
class FileRead:
    """What the read phase learnt about one file.

    Attributes
    ----------
    tags : dict
        Track columns from the tags (title, artist, ..., bpm, musical_key, mode,
        key_tag, duration_seconds, sample_rate, bit_rate, channels, has_artwork, codec).
    file_hash : str or None
        Audio-content hash, None when the audio could not be demuxed.
    quick_hash : str or None
    error : str or None
        Why tags or hash could not be read (stored as ``scan_error``).
    tags_read : bool
        False when `tags` were guessed from the file name because the tags
        could not be read.
    """

    tags: dict[str, Any]
    file_hash: str | None
    quick_hash: str | None
    error: str | None
    tags_read: bool = True


def tag_columns(info: TagInfo) -> dict[str, Any]:
    """Track columns from a :class:`~taperoom.audio.tags.TagInfo`.

    The key tag is kept as text in ``key_tag`` and parsed into ``musical_key``
    (0-11, C=0) and ``mode`` (1 major, 0 minor) with
    :func:`taperoom.library.keys.parse_key`; the tagged tempo goes to ``bpm``.
    """
    key = parse_key(info.key)
    return {
        "title": info.title, "artist": info.artist, "album": info.album,
        "album_artist": info.album_artist, "genre": info.genre, "year": info.year,
        "track_number": info.track_number, "comment": info.comment,
        "bpm": info.bpm, "key_tag": info.key[:32] if info.key else None,
        "musical_key": key.musical_key if key else None, "mode": key.mode if key else None,
        "duration_seconds": info.duration_seconds, "sample_rate": _integer(info.sample_rate),
        "bit_rate": _integer(info.bit_rate), "channels": _integer(info.channels),
        "has_artwork": bool(info.has_artwork), "codec": info.codec[:32] if info.codec else None,
    }


def _integer(value: int | None) -> int | None:
    """`value` when an ``Integer`` column can hold it, else None (a corrupt header's
    bit rate must not fail the whole batch on PostgreSQL)."""
    return value if value is None or 0 <= value <= models.MAX_INTEGER else None


#: Tag columns, in insert order; tag-less rows hold None (has_artwork False).
TAG_COLUMNS = tuple(tag_columns(TagInfo()).keys())
#: Columns that keep their old value when a re-read finds no tag for them
#: (values from analysis must not be wiped by a file without such tags).
KEEP_WHEN_UNTAGGED = frozenset({"bpm", "musical_key", "mode", "key_tag"})


def filename_columns(path: str) -> dict[str, Any]:
    """Tag columns guessed from the file name only (``fast`` scans, unreadable files)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    artist, title, track = title_from_filename(stem)
    out: dict[str, Any] = dict.fromkeys(TAG_COLUMNS)
    out.update(title=title or stem, artist=artist, track_number=track, has_artwork=False)
    return out


def _reason(exc: Exception) -> str:
    if isinstance(exc, MediaError):
        return exc.reason
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"


#: Files to read below which a scan reads in one thread instead of starting processes.
PROCESS_POOL_MIN_FILES = 64


def _reader_pool(workers: int, n_files: int) -> Executor:
    """Executor for the read phase (tags + audio hash).

    Tag parsing (mutagen) and the container walk of the audio hash are Python
    code, so reader *threads* fight over the GIL: measured on 400 files of the
    benchmark library (``bench/library_scan.py``), 1 thread read 862 files/s,
    2 threads 719 and 2 processes 1205. Big reads therefore run in ``workers``
    processes (started by ``forkserver``, since the server has threads running);
    small ones (watcher batches, rescans of a few changed files) in one thread,
    which starts at once.
    """
    if workers > 1 and n_files >= PROCESS_POOL_MIN_FILES:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))
    return ThreadPoolExecutor(1, thread_name_prefix="scan-read")


def read_file(path: str) -> FileRead:
    """Read tags, audio hash and quick hash of one file; never raises.

    Parameters
    ----------
    path : str
        Audio file.

    Returns
    -------
    FileRead
        Tag columns from the file (from its name when the tags are unreadable);
        hashes None and `error` set when they cannot be computed.
    """
    problems: list[str] = []
    tags_read = True
    try:
        tags = tag_columns(read_tags(path))
    except Exception as exc:  # any unreadable file is recorded, never fatal
        problems.append(_reason(exc))
        tags = filename_columns(path)
        tags_read = False
    fhash: str | None = None
    qhash: str | None = None
    try:
        fhash = audio_hash(path)
    except Exception as exc:
        problems.append(_reason(exc))
    try:
        qhash = quick_hash(path)
    except Exception as exc:
        problems.append(_reason(exc))
    # the first problem says it best ("empty file"); the hash's is usually an echo
    return FileRead(tags, fhash, qhash, problems[0] if problems else None, tags_read)


# --------------------------------------------------------------------------- diff


@dataclass(slots=True)
class WorkItem:
    """A file the upsert phase writes.

    Attributes
    ----------
    file : FileStat
    row : TrackRow or None
        Existing row at this path; None for a new file.
    read : bool
        Read tags and hashes (phase 3).
    stat : bool
        Store the new size and mtime (False for ``fast`` scans of changed files,
        so that the next ``hybrid`` scan still sees them as changed).
    """

    file: FileStat
    row: TrackRow | None
    read: bool
    stat: bool = True


@dataclass
class Plan:
    """Result of the diff phase.

    Attributes
    ----------
    work : list of WorkItem
        New files, changed files, files to re-read, rows to adopt or restore with changes.
    restore : list of TrackRow
        Unchanged rows marked missing whose file is back.
    gone : list of TrackRow
        Rows whose file was not found (missing or moved).
    unchanged : int
        Files needing nothing.
    """

    work: list[WorkItem] = field(default_factory=list)
    restore: list[TrackRow] = field(default_factory=list)
    gone: list[TrackRow] = field(default_factory=list)
    unchanged: int = 0


def diff(files: Sequence[FileStat], rows: dict[str, TrackRow], *, strategy: str,
         directory_id: str) -> Plan:
    """Compare found files with the database rows (phase 2; pure, no I/O).

    Parameters
    ----------
    files : sequence of FileStat
        Files found by the walk.
    rows : dict of str to TrackRow
        Rows by ``file_path``: the folder's rows, plus rows of other owners at
        paths of found files (those are adopted into this folder).
    strategy : {"fast", "hybrid", "full"}
    directory_id : str

    Returns
    -------
    Plan
    """
    plan = Plan()
    seen: set[str] = set()
    for f in files:
        row = rows.get(f.path)
        if row is None:
            plan.work.append(WorkItem(f, None, read=strategy != "fast"))
            continue
        seen.add(f.path)
        changed = row.file_size != f.size or row.file_mtime_ns != f.mtime_ns
        adopt = row.library_directory_id != directory_id
        unread = row.file_hash is None and row.scan_error is None
        if strategy == "full" or (strategy == "hybrid" and (changed or unread)):
            plan.work.append(WorkItem(f, row, read=True))
        elif adopt or (changed and row.is_missing):
            plan.work.append(WorkItem(f, row, read=False, stat=False))
        elif row.is_missing:
            plan.restore.append(row)
        else:
            plan.unchanged += 1
    plan.gone = [r for p, r in rows.items() if p not in seen
                 and r.library_directory_id == directory_id]
    return plan


# --------------------------------------------------------------------------- state


class ScanState:
    """Counters, phase and cancel flag of one running scan (read by the scan manager).

    Parameters
    ----------
    directory_id : str
    strategy : str
    progress : callable(dict), optional
        Called with every progress payload (the CLI draws its bar from it).
    """

    def __init__(self, directory_id: str, strategy: str,
                 progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.directory_id = directory_id
        self.strategy = strategy
        self.progress = progress
        self.cancel = threading.Event()
        self.phase = "queued"
        self.files_found = 0
        self.files_processed = 0
        self.tracks_added = 0
        self.tracks_updated = 0
        self.tracks_missing = 0
        self.tracks_moved = 0
        self.tracks_restored = 0
        self.errors: list[dict[str, str]] = []
        self.percent = 0.0
        self.started = time.monotonic()
        self.start_time_ms = int(time.time() * 1000)
        self._last_emit = 0.0

    def counters(self) -> dict[str, Any]:
        """Counters in the contract's camelCase names."""
        return {"filesFound": self.files_found, "filesProcessed": self.files_processed,
                "tracksAdded": self.tracks_added, "tracksUpdated": self.tracks_updated,
                "tracksMissing": self.tracks_missing, "tracksMoved": self.tracks_moved,
                "tracksRestored": self.tracks_restored}

    def result(self, *, cancelled: bool = False) -> dict[str, Any]:
        """The scan result object ``{strategy, filesFound, ..., errors, durationMs}``."""
        return {"strategy": self.strategy, **self.counters(), "errors": list(self.errors),
                "durationMs": int((time.monotonic() - self.started) * 1000),
                "cancelled": cancelled}


# --------------------------------------------------------------------------- locks

_locks_guard = threading.Lock()
_locks: dict[str, threading.Lock] = {}


def directory_lock(directory_id: str) -> threading.Lock:
    """The lock serialising scans and watcher updates of one library folder (per process)."""
    with _locks_guard:
        lock = _locks.get(directory_id)
        if lock is None:
            lock = _locks[directory_id] = threading.Lock()
        return lock


# --------------------------------------------------------------------------- scan


def _mtime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC).replace(tzinfo=None)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in TRACK_HIDDEN or key == "id":
            continue
        if key in TRACK_INT_BOOLS or isinstance(value, bool):
            value = int(bool(value)) if value is not None else None
        elif isinstance(value, datetime):
            value = iso(value)
        out[key] = value
    return out


_TRACK_KEYS = tuple(c.key for c in models.Track.__table__.columns if c.key not in TRACK_HIDDEN)


def track_payload(values: dict[str, Any]) -> dict[str, Any]:
    """Contract track object from a freshly inserted row's values (no database read)."""
    out = {k: values.get(k) for k in _TRACK_KEYS}
    return _plain(out) | {"id": values["id"]}


class _Scan:
    """One run of the phases over a folder or over some of its paths."""

    def __init__(self, ctx: LibraryContext, directory: models.LibraryDirectory, strategy: str,
                 state: ScanState, announce: bool) -> None:
        self.ctx = ctx
        self.directory_id = directory.id
        self.policy = WalkPolicy.for_directory(directory, ctx.settings.extensions,
                                                  ctx.folders.refusal)
        self.strategy = strategy
        self.state = state
        self.announce = announce
        self.touched_hashes: set[str] = set()
        self.touched_dirs: set[str] = {directory.id}
        self.whole = True

    # ---------------------------------------------------------------- helpers

    def send(self, name: Event, data: dict[str, Any]) -> None:
        self.ctx.bus.send(name, data)

    def check_cancel(self) -> None:
        if self.state.cancel.is_set():
            raise ScanCancelled

    def progress(self, phase: str | None = None, *, force: bool = False) -> None:
        st = self.state
        if phase is not None and phase != st.phase:
            st.phase = phase
            force = True
        if st.phase == "walk":
            st.percent = 0.0
        elif st.files_found:
            base = st.files_processed / st.files_found
            st.percent = round(min(99.0, 5.0 + 90.0 * base), 1)
        if st.phase == "done":
            st.percent = 100.0
        now = time.monotonic()
        if not force and now - st._last_emit < PROGRESS_INTERVAL:
            return
        st._last_emit = now
        payload = {"directoryId": self.directory_id, "phase": st.phase, **st.counters(),
                   "percent": st.percent}
        if self.announce:
            self.send(Event.SCAN_PROGRESS, payload)
        if st.progress is not None:
            try:
                st.progress(payload)
            except Exception:  # a broken progress display must not stop the scan
                log.exception("scan progress callback failed")

    # ---------------------------------------------------------------- phases

    def run(self, paths: Iterable[str] | None) -> dict[str, Any]:
        st = self.state
        if not root_available(self.policy.root):
            raise Conflict(f"Library directory is not available: {self.policy.root}")
        # phase 1: walk
        self.progress("walk")
        if paths is None:
            files, errors = walk(self.policy, cancelled=st.cancel.is_set,
                                 found=self._found)
            with self.ctx.sessions() as session:
                rows = repo.directory_rows(session, self.directory_id)
        else:
            sel = select_paths(self.policy, paths)
            if sel.whole:
                return self.run(None)
            self.whole = False
            files, errors = sel.files, sel.errors
            with self.ctx.sessions() as session:
                rows = repo.rows_below(session, self.directory_id, sel.file_paths,
                                       sel.folder_paths)
        st.errors.extend(errors)
        st.files_found = len(files)
        # phase 2: diff (rows of other owners at found paths are adopted)
        self.progress("diff")
        unknown = [f.path for f in files if f.path not in rows]
        if unknown:
            with self.ctx.sessions() as session:
                rows.update(repo.rows_by_paths(session, unknown))
        plan = diff(files, rows, strategy=self.strategy, directory_id=self.directory_id)
        st.files_processed = plan.unchanged + len(plan.restore)
        self.restore(plan.restore)
        # phases 3 and 4: read and upsert, batch by batch (moves matched per batch)
        self.progress("read")
        gone = _GoneIndex(plan.gone)
        with _reader_pool(self.ctx.settings.scan_workers,
                          sum(1 for w in plan.work if w.read)) as pool:
            for start in range(0, len(plan.work), BATCH_SIZE):
                self.check_cancel()
                self.batch(plan.work[start:start + BATCH_SIZE], gone, pool)
                self.progress()
        self.check_cancel()
        # phase 5: missing (only if the root is still there: an unplugged drive is
        # the watcher's business, never a reason to mark a whole library missing)
        self.progress("missing")
        if not root_available(self.policy.root):
            raise Conflict(f"Library directory became unavailable: {self.policy.root}")
        self.missing(gone.remaining())
        # phase 6: duplicates and counters
        self.progress("duplicates")
        self.duplicates()
        return st.result()

    def _found(self, n: int) -> None:
        self.state.files_found = n
        self.progress()

    def restore(self, rows: list[TrackRow]) -> None:
        if not rows:
            return
        with transaction(self.ctx.sessions) as session:
            repo.restore_tracks(session, [r.id for r in rows])
        self.state.tracks_restored += len(rows)
        for r in rows:
            self.send(Event.TRACK_RESTORED, {"trackId": r.id, "path": r.file_path,
                                             "directoryId": self.directory_id})

    def batch(self, items: list[WorkItem], gone: _GoneIndex, pool: Executor) -> None:
        st = self.state
        to_read = [w for w in items if w.read]
        reads: dict[str, FileRead] = {}
        for w, fr in zip(to_read, pool.map(read_file, [w.file.path for w in to_read],
                                           chunksize=8), strict=True):
            reads[w.file.path] = fr
            if fr.error:
                st.errors.append({"path": w.file.path, "error": fr.error})
        now = models.utcnow()
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        events: list[tuple[Event, dict[str, Any]]] = []
        new_items = [w for w in items if w.row is None]
        # fast scans hash nothing, but the quick hash (two 64 KiB reads) of new files
        # lets later scans recognise them when they move
        quick = {w.file.path: _quick_hash_or_none(w.file.path) for w in new_items if not w.read}
        moves = self.match_moves(new_items, reads, quick, gone) if new_items else {}
        for w in items:
            f = w.file
            r = reads.get(f.path)
            moved = moves.get(f.path)
            if w.row is None and moved is None:
                values = self.new_values(f, r, quick.get(f.path), now)
                inserts.append(values)
                events.append((Event.TRACK_ADDED, {"trackId": values["id"],
                                                   "track": track_payload(values)}))
                if values["file_hash"]:
                    self.touched_hashes.add(values["file_hash"])
                st.tracks_added += 1
                continue
            row = moved if moved is not None else w.row
            assert row is not None
            values = self.update_values(f, row, r, stat=w.stat or moved is not None)
            updates.append(values)
            if moved is not None:
                events.append((Event.TRACK_MOVED, {"trackId": row.id, "oldPath": row.file_path,
                                                   "newPath": f.path}))
                if row.library_directory_id:
                    self.touched_dirs.add(row.library_directory_id)
                st.tracks_moved += 1
            else:
                events.append((Event.TRACK_UPDATED, {"trackId": row.id,
                                                     "changes": _plain(values)}))
                if row.library_directory_id and row.library_directory_id != self.directory_id:
                    self.touched_dirs.add(row.library_directory_id)
                if r is not None or w.stat:
                    st.tracks_updated += 1
            if row.is_missing:
                events.append((Event.TRACK_RESTORED, {"trackId": row.id, "path": f.path,
                                                      "directoryId": self.directory_id}))
                st.tracks_restored += 1
        with transaction(self.ctx.sessions) as session:
            repo.insert_tracks(session, inserts)
            repo.update_tracks(session, updates)
        st.files_processed += len(items)
        for name, data in events:
            self.send(name, data)

    def new_values(self, f: FileStat, r: FileRead | None, qh: str | None,
                   now: datetime) -> dict[str, Any]:
        tags = r.tags if r is not None else filename_columns(f.path)
        return {
            "id": models.new_id(), "file_path": f.path, "file_size": f.size,
            "file_modified": _mtime(f.mtime_ns), "file_mtime_ns": f.mtime_ns,
            "file_hash": r.file_hash if r else None, "quick_hash": r.quick_hash if r else qh,
            "library_directory_id": self.directory_id, "relative_path": f.rel,
            "is_missing": False, "missing_since": None, "duplicate_group_id": None,
            "scan_error": r.error if r else None, **tags,
            "date_added": now, "analysis_version": 1, "play_count": 0, "rating": 0,
        }

    def update_values(self, f: FileStat, row: TrackRow, r: FileRead | None, *,
                      stat: bool) -> dict[str, Any]:
        values: dict[str, Any] = {"id": row.id}
        if row.file_path != f.path:
            values["file_path"] = f.path
        if row.file_path != f.path or row.library_directory_id != self.directory_id:
            values["relative_path"] = f.rel
        if row.library_directory_id != self.directory_id:
            values["library_directory_id"] = self.directory_id
        if row.is_missing:
            values.update(is_missing=False, missing_since=None)
        if stat or r is not None:
            values.update(file_size=f.size, file_mtime_ns=f.mtime_ns,
                          file_modified=_mtime(f.mtime_ns))
        if r is not None:
            # an unreadable file keeps its known tags and hashes; only the error is new
            if r.tags_read:
                values.update({k: v for k, v in r.tags.items()
                               if v is not None or k not in KEEP_WHEN_UNTAGGED})
            if r.quick_hash is not None:
                values["quick_hash"] = r.quick_hash
            if r.file_hash is not None:
                values["file_hash"] = r.file_hash
                if r.file_hash != row.file_hash:
                    values["duplicate_group_id"] = None
                    self.touched_hashes.update(h for h in (r.file_hash, row.file_hash) if h)
            values["scan_error"] = r.error
        return values

    def match_moves(self, new_items: list[WorkItem], reads: dict[str, FileRead],
                    quick: dict[str, str | None], gone: _GoneIndex) -> dict[str, TrackRow]:
        """New files that are moved copies of gone tracks: path -> the gone row."""
        hashes = [r.file_hash for w in new_items
                  if (r := reads.get(w.file.path)) is not None and r.file_hash]
        sizes = [w.file.size for w in new_items]
        with self.ctx.sessions() as session:
            outside = repo.move_candidates(
                session, hashes=hashes, sizes=sizes,
                exclude_directory=self.directory_id if self.whole else None)
        gone.add_outside(outside)
        if not gone.any():
            return {}
        moves: dict[str, TrackRow] = {}
        for w in new_items:
            r = reads.get(w.file.path)
            row = gone.take_hash(r.file_hash) if r is not None and r.file_hash else None
            if row is None and gone.has_size(w.file.size):
                qh = r.quick_hash if r is not None else quick.get(w.file.path)
                if qh:
                    row = gone.take_quick(w.file.size, qh)
            if row is not None:
                moves[w.file.path] = row
        return moves

    def missing(self, rows: list[TrackRow]) -> None:
        present = [r for r in rows if not r.is_missing]
        if not present:
            return
        now = models.utcnow()
        with transaction(self.ctx.sessions) as session:
            ids = set(repo.still_at(session, [(r.id, r.file_path) for r in present]))
            repo.mark_missing(session, sorted(ids), now)
        for r in present:
            if r.id in ids:
                self.state.tracks_missing += 1
                self.send(Event.TRACK_MISSING, {"trackId": r.id, "path": r.file_path,
                                                "directoryId": self.directory_id})

    def duplicates(self) -> None:
        if not self.touched_hashes:
            return
        with transaction(self.ctx.sessions) as session:
            detected = repo.assign_duplicate_groups(session, self.touched_hashes)
        for group in detected:
            self.send(Event.DUPLICATE_DETECTED, group)


def _quick_hash_or_none(path: str) -> str | None:
    try:
        return quick_hash(path)
    except Exception:  # an unreadable file simply cannot be matched
        return None


class _GoneIndex:
    """Rows whose file is gone, indexed for move matching; each row matches once."""

    def __init__(self, rows: list[TrackRow]) -> None:
        self._local = rows
        self._taken: set[str] = set()
        self._by_hash: dict[str, list[TrackRow]] = {}
        self._by_size: dict[int, list[TrackRow]] = {}
        self._known: set[str] = set()
        self._present: set[str] = set()
        for r in rows:
            self._index(r)

    def _index(self, r: TrackRow) -> None:
        if r.id in self._known:
            return
        self._known.add(r.id)
        if r.file_hash:
            self._by_hash.setdefault(r.file_hash, []).append(r)
        if r.quick_hash and r.file_size is not None:
            self._by_size.setdefault(r.file_size, []).append(r)

    def add_outside(self, rows: Iterable[TrackRow]) -> None:
        """Add rows of other owners whose file is really gone from its path."""
        for r in rows:
            if r.id in self._known or r.id in self._present:
                continue
            if os.path.lexists(r.file_path):
                self._present.add(r.id)  # still there: a copy, not a move
            else:
                self._index(r)

    def any(self) -> bool:
        return bool(self._by_hash or self._by_size)

    def has_size(self, size: int) -> bool:
        return any(r.id not in self._taken for r in self._by_size.get(size, ()))

    def _take(self, rows: list[TrackRow], ok: Callable[[TrackRow], bool]) -> TrackRow | None:
        for r in rows:
            if r.id not in self._taken and ok(r):
                self._taken.add(r.id)
                return r
        return None

    def take_hash(self, h: str) -> TrackRow | None:
        return self._take(self._by_hash.get(h, []), lambda r: True)

    def take_quick(self, size: int, qh: str) -> TrackRow | None:
        return self._take(self._by_size.get(size, []), lambda r: r.quick_hash == qh)

    def remaining(self) -> list[TrackRow]:
        """Rows of the scanned folder that were not matched as moved."""
        return [r for r in self._local if r.id not in self._taken]


def validate_strategy(strategy: str) -> str:
    """Return `strategy` if it is one of :data:`STRATEGIES`, else raise InvalidInput."""
    if strategy not in STRATEGIES:
        raise InvalidInput(f"strategy must be one of {', '.join(STRATEGIES)}")
    return strategy


def scan_directory(ctx: LibraryContext, directory_id: str, strategy: str = "hybrid", *,
                   state: ScanState | None = None, paths: Iterable[str] | None = None,
                   announce: bool | None = None) -> dict[str, Any]:
    """Scan a library folder (or some changed paths in it) in the calling thread.

    Parameters
    ----------
    ctx : LibraryContext
    directory_id : str
    strategy : {"fast", "hybrid", "full"}
    state : ScanState, optional
        Counters and cancel flag shared with the caller (a new one when omitted).
    paths : iterable of str, optional
        Only these absolute paths (files or folders, present or gone), as the
        file watcher reports them; the whole folder when omitted.
    announce : bool, optional
        Send ``library:directory:scan:*`` events and set ``scan_status``
        (default: True for whole-folder scans, False for `paths`).

    Returns
    -------
    dict
        ``{strategy, filesFound, filesProcessed, tracksAdded, tracksUpdated,
        tracksMissing, tracksMoved, tracksRestored, errors: [{path, error}],
        durationMs, cancelled}``.

    Raises
    ------
    NotFound
        No such directory.
    InvalidInput
        Unknown strategy.
    Conflict
        The folder is not reachable (unplugged drive, deleted folder).
    """
    validate_strategy(strategy)
    with ctx.sessions() as session:
        directory = repo.get_directory(session, directory_id)
    if directory is None:
        raise NotFound("Library directory not found")
    if announce is None:
        announce = paths is None
    state = state or ScanState(directory_id, strategy)
    scan = _Scan(ctx, directory, strategy, state, announce)
    with directory_lock(directory_id):
        if announce:
            with transaction(ctx.sessions) as session:
                repo.set_scan_status(session, directory_id, "scanning")
            ctx.bus.send(Event.SCAN_STARTED, {"directoryId": directory_id, "strategy": strategy})
        status = "idle"
        cancelled = False
        result: dict[str, Any] = {}
        try:
            result = scan.run(paths)
        except ScanCancelled:
            cancelled = True
            scan.duplicates()
            result = state.result(cancelled=True)
        except KeyboardInterrupt:  # Ctrl-C in the CLI: saved batches stay, like a cancel
            cancelled = True
            result = state.result(cancelled=True)
            raise
        except Exception as exc:
            status = "error"
            result = state.result() | {"error": str(exc)}
            raise
        finally:
            state.phase = "cancelled" if cancelled else ("error" if status == "error" else "done")
            try:
                with transaction(ctx.sessions) as session:
                    for other in scan.touched_dirs - {directory_id}:
                        repo.finish_directory(session, other, status=None, scanned_at=None)
                    repo.finish_directory(
                        session, directory_id, status=status if announce else None,
                        scanned_at=models.utcnow() if announce and status == "idle"
                        and not cancelled else None)
            except Exception:
                log.exception("could not update the counters of directory %s", directory_id)
            if announce:
                scan.progress(force=True)
                ctx.bus.send(Event.SCAN_COMPLETE, {"directoryId": directory_id,
                                                   "result": result})
    return result


def scan_paths(ctx: LibraryContext, directory_id: str, paths: Iterable[str]) -> dict[str, Any]:
    """Apply the ``hybrid`` phases to changed paths of one folder (file watcher).

    See :func:`scan_directory`; no ``scan:*`` events are sent and ``scan_status``
    is left alone, but ``track:*`` events are.
    """
    return scan_directory(ctx, directory_id, "hybrid", paths=list(paths), announce=False)

