"""The scan runner: the phases of a scan of one library folder, in order.

A scan (:meth:`Scanner.scan`) runs, as Navidrome's ``phase_N`` and beets'
importer stages do:

1. **walk** (:mod:`.walk`): the audio files below the folder, with ``stat``;
2. **plan** (:mod:`.plan`): compare ``(size, mtime_ns)`` with the folder's rows:
   new, changed, unchanged, reappeared and gone files;
3. **read** (:mod:`.read`): tags and audio hash of the files the strategy asks
   for, then per batch of :data:`BATCH_SIZE` files one insert and one bulk
   update in one transaction;
4. **moves** (:mod:`.moves`): within each batch, new files that are moved copies
   of gone tracks take over their rows;
5. **missing**: rows whose file is gone (and was not moved) are marked
   ``is_missing`` (never deleted); files that reappear are restored;
6. **duplicates** (:mod:`.duplicates`): duplicate groups of the touched hashes,
   and the folder's counters.

Strategies: ``fast`` only stats (new tracks get a title and artist from the file
name, no tags and no audio hash, only the quick hash of two 64 KiB reads so that
a later move is recognised; changed files are left for the next ``hybrid`` scan);
``hybrid`` reads tags and hashes new and changed files and rows still without a
hash; ``full`` reads every file.

The watcher runs the same phases on just the changed paths
(:meth:`Scanner.scan_paths`).

Progress events (``library:directory:scan:progress``, at most every
:data:`PROGRESS_INTERVAL` s and at each phase change) name the phase: ``walk``,
``diff``, ``read`` (tags, hashes and upserts), ``missing``, ``duplicates``, then
``done``, ``cancelled`` or ``error``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import Conflict, NotFound
from taperoom.events import Event, EventBus
from taperoom.library import models
from taperoom.library.repository import scan as repo
from taperoom.library.repository.scan import TrackRow
from taperoom.library.scanner.duplicates import assign_duplicates
from taperoom.library.scanner.moves import GoneIndex, match_moves
from taperoom.library.scanner.plan import WorkItem, diff
from taperoom.library.scanner.read import (
    TAG_FILLED,
    FileRead,
    filename_columns,
    quick_hash_or_none,
    read_file,
    reader_pool,
)
from taperoom.library.scanner.state import (
    FolderLocks,
    ScanCancelled,
    ScanState,
    validate_strategy,
)
from taperoom.library.scanner.walk import FileStat, WalkPolicy, root_available, select_paths, walk
from taperoom.library.schemas import (
    TRACK_FIELDS,
    TRACK_INT_BOOLS,
    iso,
    track_object,
    with_key_names,
)

log = logging.getLogger(__name__)

#: Files per upsert transaction (and between two cancellation checks).
BATCH_SIZE = 200
#: Minimum seconds between two ``scan:progress`` events.
PROGRESS_INTERVAL = 0.25


def _mtime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC).replace(tzinfo=None)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in TRACK_FIELDS or key == "id":
            continue
        if key in TRACK_INT_BOOLS or isinstance(value, bool):
            value = int(bool(value)) if value is not None else None
        elif isinstance(value, datetime):
            value = iso(value)
        out[key] = value
    return out


def track_payload(values: dict[str, Any]) -> dict[str, Any]:
    """Contract track object from a freshly inserted row's values (no database read)."""
    return {"id": values["id"]} | _plain(track_object(values))


class _Scan:
    """One run of the phases over a folder or over some of its paths."""

    def __init__(self, runner: Scanner, directory: models.LibraryDirectory, strategy: str,
                 state: ScanState, announce: bool) -> None:
        self.db = runner.db
        self.bus = runner.bus
        self.workers = runner.workers
        self.directory_id = directory.id
        self.policy = WalkPolicy.for_directory(directory, runner.extensions, runner.refusal)
        self.strategy = strategy
        self.state = state
        self.announce = announce
        self.touched_hashes: set[str] = set()
        self.touched_dirs: set[str] = {directory.id}
        self.whole = True

    # ---------------------------------------------------------------- helpers

    def send(self, name: Event, data: dict[str, Any]) -> None:
        self.bus.send(name, data)

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
            with self.db() as session:
                rows = repo.directory_rows(session, self.directory_id)
        else:
            sel = select_paths(self.policy, paths)
            if sel.whole:
                return self.run(None)
            self.whole = False
            files, errors = sel.files, sel.errors
            with self.db() as session:
                rows = repo.rows_below(session, self.directory_id, sel.file_paths,
                                       sel.folder_paths)
        st.errors.extend(errors)
        st.files_found = len(files)
        # phase 2: diff (rows of other owners at found paths are adopted)
        self.progress("diff")
        unknown = [f.path for f in files if f.path not in rows]
        if unknown:
            with self.db() as session:
                rows.update(repo.rows_by_paths(session, unknown))
        plan = diff(files, rows, strategy=self.strategy, directory_id=self.directory_id)
        st.files_processed = plan.unchanged + len(plan.restore)
        self.restore(plan.restore)
        # phases 3 and 4: read and upsert, batch by batch (moves matched per batch)
        self.progress("read")
        gone = GoneIndex(plan.gone)
        with reader_pool(self.workers,
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
        with transaction(self.db) as session:
            repo.restore_tracks(session, [r.id for r in rows])
        self.state.tracks_restored += len(rows)
        for r in rows:
            self.send(Event.TRACK_RESTORED, {"trackId": r.id, "path": r.file_path,
                                             "directoryId": self.directory_id})

    def batch(self, items: list[WorkItem], gone: GoneIndex, pool: Executor) -> None:
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
        # tempo and key from the tags of re-read files (filled where empty), and the
        # tracks whose audio changed (their analysis cleared): written with the batch
        fills: list[dict[str, Any]] = []
        resets: dict[str, dict[str, Any]] = {}
        changes_of: dict[str, dict[str, Any]] = {}
        new_items = [w for w in items if w.row is None]
        # fast scans hash nothing, but the quick hash (two 64 KiB reads) of new files
        # lets later scans recognise them when they move
        quick = {w.file.path: quick_hash_or_none(w.file.path) for w in new_items if not w.read}
        moves = (match_moves(self.db, [(w.file, reads.get(w.file.path)) for w in new_items],
                             quick, gone,
                             exclude_directory=self.directory_id if self.whole else None)
                 if new_items else {})
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
            values = self.update_values(f, row, r, stat=w.stat or moved is not None,
                                        fills=fills, resets=resets)
            updates.append(values)
            if moved is not None:
                events.append((Event.TRACK_MOVED, {"trackId": row.id, "oldPath": row.file_path,
                                                   "newPath": f.path}))
                if row.library_directory_id:
                    self.touched_dirs.add(row.library_directory_id)
                st.tracks_moved += 1
            else:
                changes_of[row.id] = _plain(values)
                events.append((Event.TRACK_UPDATED, {"trackId": row.id,
                                                     "changes": changes_of[row.id]}))
                if row.library_directory_id and row.library_directory_id != self.directory_id:
                    self.touched_dirs.add(row.library_directory_id)
                if r is not None or w.stat:
                    st.tracks_updated += 1
            if row.is_missing:
                events.append((Event.TRACK_RESTORED, {"trackId": row.id, "path": f.path,
                                                      "directoryId": self.directory_id}))
                st.tracks_restored += 1
        with transaction(self.db) as session:
            repo.insert_tracks(session, inserts)
            repo.update_tracks(session, updates)
            filled = repo.fill_from_tags(session, fills)
            cleared = repo.reset_analysis(session, resets)
            keys = repo.keys_of(session, [i for i, w in (filled | cleared).items()
                                          if {"musical_key", "mode"} & set(w)])
        for track_id, written in (filled | cleared).items():
            written = with_key_names(dict(written), *keys.get(track_id, (None, None)))
            if track_id in changes_of:
                changes_of[track_id].update(_plain(written))
            else:  # a moved file whose audio changed too
                events.append((Event.TRACK_UPDATED, {"trackId": track_id,
                                                     "changes": _plain(written)}))
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
                      stat: bool, fills: list[dict[str, Any]],
                      resets: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Columns to update of a known track's row, its file `f` read as `r` (None: only
        stat). The tags' tempo and key go to `fills` (they only fill empty fields), or
        to `resets` when the audio changed (a new audio hash: the old analysis is
        cleared, see :func:`~taperoom.library.repository.scan.reset_analysis`)."""
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
            tagged: dict[str, Any] = {}
            if r.tags_read:
                values.update({k: v for k, v in r.tags.items() if k not in TAG_FILLED})
                tagged = {k: r.tags.get(k) for k in TAG_FILLED}
            if r.file_hash is not None and row.file_hash is not None \
                    and r.file_hash != row.file_hash:
                resets[row.id] = tagged
            elif any(v is not None for v in tagged.values()):
                fills.append({"id": row.id, **tagged})
            if r.quick_hash is not None:
                values["quick_hash"] = r.quick_hash
            if r.file_hash is not None:
                values["file_hash"] = r.file_hash
                if r.file_hash != row.file_hash:
                    values["duplicate_group_id"] = None
                    self.touched_hashes.update(h for h in (r.file_hash, row.file_hash) if h)
            values["scan_error"] = r.error
        return values

    def missing(self, rows: list[TrackRow]) -> None:
        present = [r for r in rows if not r.is_missing]
        if not present:
            return
        now = models.utcnow()
        with transaction(self.db) as session:
            ids = set(repo.still_at(session, [(r.id, r.file_path) for r in present]))
            repo.mark_missing(session, sorted(ids), now)
        for r in present:
            if r.id in ids:
                self.state.tracks_missing += 1
                self.send(Event.TRACK_MISSING, {"trackId": r.id, "path": r.file_path,
                                                "directoryId": self.directory_id})

    def duplicates(self) -> None:
        assign_duplicates(self.db, self.bus, self.touched_hashes)


class Scanner:
    """Runs the phases of a scan (see the module docstring) on one folder at a time.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Where ``track:*``, ``duplicate:detected`` and ``library:directory:scan:*``
        events go.
    extensions : frozenset of str
        Audio file extensions (lower case, with their dot).
    refusal : callable(Path) -> str or None
        Why a folder that a followed link leads to may not be entered
        (:meth:`taperoom.library.folderpolicy.FolderPolicy.refusal`).
    workers : int
        Processes of the read phase (``SCAN_WORKERS``).
    locks : FolderLocks
        The per-folder locks (they hold across processes), taken for each scan.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, *,
                 extensions: frozenset[str], refusal: Callable[[Path], str | None],
                 workers: int, locks: FolderLocks) -> None:
        self.db = db
        self.bus = bus
        self.extensions = extensions
        self.refusal = refusal
        self.workers = workers
        self.locks = locks

    def busy(self, directory_id: str) -> bool:
        """Whether a scan or a watcher update of the folder is running now."""
        return self.locks.busy(directory_id)

    def scan(self, directory_id: str, strategy: str = "hybrid", *,
             state: ScanState | None = None, paths: Iterable[str] | None = None,
             announce: bool | None = None) -> dict[str, Any]:
        """Scan a library folder (or some changed paths in it) in the calling thread.

        Parameters
        ----------
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
        with self.db() as session:
            directory = repo.get_directory(session, directory_id)
        if directory is None:
            raise NotFound("Library directory not found")
        if announce is None:
            announce = paths is None
        state = state or ScanState(directory_id, strategy)
        scan = _Scan(self, directory, strategy, state, announce)
        with self.locks.lock(directory_id):
            if announce:
                with transaction(self.db) as session:
                    repo.set_scan_status(session, directory_id, "scanning")
                self.bus.send(Event.SCAN_STARTED, {"directoryId": directory_id,
                                                   "strategy": strategy})
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
                state.phase = ("cancelled" if cancelled
                               else "error" if status == "error" else "done")
                try:
                    with transaction(self.db) as session:
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
                    self.bus.send(Event.SCAN_COMPLETE, {"directoryId": directory_id,
                                                       "result": result})
        return result


    def scan_paths(self, directory_id: str, paths: Iterable[str]) -> dict[str, Any]:
        """Apply the ``hybrid`` phases to changed paths of one folder (file watcher).

        See :meth:`scan`; no ``scan:*`` events are sent and ``scan_status``
        is left alone, but ``track:*`` events are.
        """
        return self.scan(directory_id, "hybrid", paths=list(paths), announce=False)
