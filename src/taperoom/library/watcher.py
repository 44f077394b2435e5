"""File watching of library folders and availability polling of their drives.

Changes (watchdog, inotify on Linux) are collected per folder and applied after
a quiet period of ``file_watcher_debounce`` ms (at most 5 debounce periods, and
at least 5 s, after the first change of a burst): the changed paths go through
the scanner's own phases (:func:`taperoom.library.scanner.scan_paths`), so a
new file is added with its tags and hash, a changed file re-read, a deleted one
marked missing and a moved or renamed one keeps its track id (its old path is
gone and a file with the same content appears). Changes inside a folder that a
scan is working on wait until that scan ends.

Every ``availability_poll_seconds`` the root of every active library folder is
probed (a readable directory; an empty removable mount point that should hold
tracks counts as unplugged). When a root disappears (a removable drive was
unplugged, a network share dropped) the folder is marked ``is_available=false``,
all its tracks missing in one UPDATE (no per-track events), its watch dropped
and ``library:media:disconnected`` sent; when it comes back, ``is_available=true``,
``library:media:connected`` is sent, the watch resumes and a ``hybrid`` rescan
(high priority) brings the folder up to date, which only costs a ``stat`` per
unchanged file. The transition itself is the one of the directory service
(:func:`taperoom.library.directories.check_availability`), shared with the
``check-availability`` route.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from taperoom.errors import Conflict, InvalidInput, NotFound
from taperoom.library import directories, models, scanner
from taperoom.library.repository import scan as repo
from taperoom.library.schemas import iso

if TYPE_CHECKING:
    from taperoom.library.context import LibraryContext

log = logging.getLogger(__name__)

#: watchdog event types that can change the library (directory "modified",
#: "opened" and "attrib" events are noise: the file events say what changed).
_FILE_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed"})
_DIR_EVENTS = frozenset({"created", "deleted", "moved"})


@dataclass
class _Watch:
    directory_id: str
    name: str | None
    path: str
    recursive: bool
    follow_symlinks: bool
    started: float = field(default_factory=time.time)
    handle: ObservedWatch | None = None


@dataclass
class _Pending:
    paths: set[str] = field(default_factory=set)
    first: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)


class _Handler(FileSystemEventHandler):
    """Forwards relevant watchdog events of one folder to the watcher."""

    def __init__(self, watcher: LibraryWatcher, directory_id: str) -> None:
        self.watcher = watcher
        self.directory_id = directory_id

    def on_any_event(self, event: FileSystemEvent) -> None:
        kinds = _DIR_EVENTS if event.is_directory else _FILE_EVENTS
        if event.event_type not in kinds:
            return
        paths = [os.fsdecode(event.src_path)]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(os.fsdecode(dest))
        if not event.is_directory:
            exts = self.watcher.ctx.settings.extensions
            if not any(os.path.splitext(p)[1].lower() in exts for p in paths):
                return
        self.watcher.touch(self.directory_id, paths)


class LibraryWatcher:
    """Watches library folders for changes and removable drives for (dis)appearance.

    Parameters
    ----------
    ctx : LibraryContext
        Uses ``settings.file_watcher_debounce`` (ms), ``settings.extensions`` and
        ``settings.availability_poll_seconds``.
    """

    def __init__(self, ctx: LibraryContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._watches: dict[str, _Watch] = {}
        self._pending: dict[str, _Pending] = {}
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._polling = False
        self._next_poll = 0.0

    # ---------------------------------------------------------------- lifecycle

    def _ensure_running(self) -> BaseObserver:
        """Start the observer and the background thread (caller holds the lock)."""
        self._stopping = False
        if self._observer is None:
            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="library-watcher",
                                            daemon=True)
            self._thread.start()
        return self._observer

    def start_all(self) -> int:
        """Watch every active, available library folder and start availability polling.

        Returns
        -------
        int
            Number of folders watched afterwards.
        """
        with self._lock:
            self._polling = True
            self._ensure_running()
        with self.ctx.sessions() as session:
            dirs = repo.active_directories(session, available=True)
        for d in dirs:
            try:
                self._schedule(d)
            except Conflict as exc:
                log.warning("cannot watch %s: %s", d.path, exc)
        with self._lock:
            return sum(1 for w in self._watches.values() if w.handle is not None)

    def watch(self, directory_id: str) -> None:
        """Start watching one library folder (and polling availability).

        Raises
        ------
        NotFound
            No such folder, or it is inactive or unavailable.
        InvalidInput
            The folder is already watched.
        Conflict
            The operating system refused the watch (e.g. inotify limit reached).
        """
        with self.ctx.sessions() as session:
            d = repo.get_directory(session, directory_id)
        if d is None:
            raise NotFound("Library directory not found")
        if not d.is_active or not d.is_available or not scanner.root_available(d.path):
            raise NotFound(f"Library directory is not active or available: {directory_id}")
        with self._lock:
            if directory_id in self._watches:
                raise InvalidInput(f"Directory {directory_id} is already being watched")
            self._polling = True
            self._ensure_running()
        self._schedule(d)

    def _schedule(self, d: models.LibraryDirectory) -> None:
        with self._lock:
            w = self._watches.get(d.id)
            if w is not None and w.handle is not None:
                return
            if w is None:
                w = _Watch(d.id, d.name, os.path.abspath(d.path), bool(d.recursive_scan),
                           bool(d.follow_symlinks))
            observer = self._ensure_running()
            try:
                w.handle = observer.schedule(_Handler(self, d.id), w.path,
                                             recursive=w.recursive,
                                             follow_symlink=w.follow_symlinks)
            except OSError as exc:
                raise Conflict(f"Cannot watch {w.path}: {exc.strerror or exc}") from exc
            self._watches[d.id] = w

    def _unschedule(self, w: _Watch) -> None:
        """Drop the OS watch of `w` (caller holds the lock)."""
        if w.handle is not None and self._observer is not None:
            try:
                self._observer.unschedule(w.handle)
            except Exception:  # the emitter may already be gone with its folder
                log.debug("unschedule of %s failed", w.path, exc_info=True)
        w.handle = None

    def unwatch(self, directory_id: str) -> None:
        """Stop watching one folder (pending changes of it are dropped).

        Raises
        ------
        NotFound
            The folder is not watched.
        """
        with self._lock:
            w = self._watches.pop(directory_id, None)
            if w is None:
                raise NotFound(f"Directory {directory_id} is not being watched")
            self._unschedule(w)
            self._pending.pop(directory_id, None)

    def refresh(self, directory_id: str) -> None:
        """Re-read a watched folder's row after it changed (path, recursion, activity).

        A watched folder gets a new OS watch on its current path and settings, or
        stops being watched when it was deactivated or deleted. Unwatched folders
        are left alone.
        """
        with self._lock:
            w = self._watches.get(directory_id)
            if w is None:
                return
            self._unschedule(w)
            del self._watches[directory_id]
            self._pending.pop(directory_id, None)
        with self.ctx.sessions() as session:
            d = repo.get_directory(session, directory_id)
        if d is None or not d.is_active:
            return
        if d.is_available and scanner.root_available(d.path):
            self._schedule(d)
        else:
            with self._lock:  # keep it wanted: the poller re-watches it when it is back
                self._watches[directory_id] = _Watch(
                    d.id, d.name, os.path.abspath(d.path), bool(d.recursive_scan),
                    bool(d.follow_symlinks))

    def stop_all(self) -> int:
        """Stop every watch and the availability polling; returns how many were stopped."""
        with self._lock:
            count = len(self._watches)
            for w in self._watches.values():
                self._unschedule(w)
            self._watches.clear()
            self._pending.clear()
            self._polling = False
        return count

    def stop(self) -> None:
        """Stop watching, polling and the background threads (the context is closing)."""
        self.stop_all()
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
            thread, observer = self._thread, self._observer
            self._thread = self._observer = None
        if observer is not None:
            observer.stop()
            observer.join(5)
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def status(self) -> dict[str, Any]:
        """Watcher status for ``GET /api/watcher/status``.

        Returns
        -------
        dict
            ``{"activeCount", "watchers": [{"directoryId", "directoryName",
            "directoryPath", "uptime" (ms), "startTime" (ISO), "available"}],
            "availabilityPolling", "pollSeconds", "debounceMs", "pendingChanges"}``.
        """
        now = time.time()
        with self._lock:
            watchers = [{
                "directoryId": w.directory_id, "directoryName": w.name,
                "directoryPath": w.path, "uptime": int((now - w.started) * 1000),
                "startTime": iso(datetime.fromtimestamp(w.started, UTC)),
                "available": w.handle is not None,
            } for w in self._watches.values()]
            pending = sum(len(p.paths) for p in self._pending.values())
            polling = self._polling
        return {"activeCount": len(watchers), "watchers": watchers,
                "availabilityPolling": polling,
                "pollSeconds": self.ctx.settings.availability_poll_seconds,
                "debounceMs": self.ctx.settings.file_watcher_debounce,
                "pendingChanges": pending}

    def is_watching(self, directory_id: str) -> bool:
        """Whether the folder is watched (possibly waiting for its drive)."""
        with self._lock:
            return directory_id in self._watches

    # ---------------------------------------------------------------- changes

    def touch(self, directory_id: str, paths: list[str]) -> None:
        """Record changed paths of a folder; they are applied after the debounce delay."""
        now = time.monotonic()
        with self._lock:
            if directory_id not in self._watches:
                return
            p = self._pending.get(directory_id)
            if p is None:
                p = self._pending[directory_id] = _Pending()
            p.paths.update(paths)
            p.last = now
            self._wake.notify_all()

    def _due(self, now: float) -> tuple[list[tuple[str, set[str]]], float]:
        """Pop the folders whose changes are due; returns them and the next deadline."""
        debounce = self.ctx.settings.file_watcher_debounce / 1000.0
        longest = max(5.0, 5 * debounce)
        due: list[tuple[str, set[str]]] = []
        next_at = now + 1.0
        for directory_id, p in list(self._pending.items()):
            at = min(p.last + debounce, p.first + longest)
            if at <= now:
                due.append((directory_id, p.paths))
                del self._pending[directory_id]
            else:
                next_at = min(next_at, at)
        return due, next_at

    def _apply(self, directory_id: str, paths: set[str]) -> None:
        if (self.ctx.scans.is_scanning(directory_id)
                or scanner.directory_lock(directory_id).locked()):
            with self._lock:  # a scan is busy with this folder: try again after it
                p = self._pending.setdefault(directory_id, _Pending())
                p.paths.update(paths)
                p.first = p.last = time.monotonic()
            return
        try:
            scanner.scan_paths(self.ctx, directory_id, sorted(paths))
        except (Conflict, NotFound) as exc:
            log.info("watcher: changes in %s not applied: %s", directory_id, exc)
        except Exception:  # a failing update is logged; the watcher keeps running
            log.exception("watcher: applying changes in %s failed", directory_id)

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                now = time.monotonic()
                due, next_at = self._due(now)
                poll = self._polling and now >= self._next_poll
                if poll:
                    self._next_poll = now + self.ctx.settings.availability_poll_seconds
                if not due and not poll:
                    wake_at = min(next_at, self._next_poll) if self._polling else next_at
                    self._wake.wait(max(0.01, min(1.0, wake_at - now)))
                    continue
            for directory_id, paths in due:
                self._apply(directory_id, paths)
            if poll:
                try:
                    self.check_availability()
                except Exception:  # polling must survive database hiccups
                    log.exception("watcher: availability check failed")

    # ---------------------------------------------------------------- drives

    def check_availability(self, directory_id: str | None = None) -> list[dict[str, Any]]:
        """Find active folders whose reachability differs from ``is_available`` and sync them.

        The probe is :func:`taperoom.library.directories.folder_available` (a
        readable directory; an empty removable mount point that should hold
        tracks counts as unplugged), and the transition is the one
        ``POST /api/library/directories/:id/check-availability`` performs
        (:func:`taperoom.library.directories.check_availability`), so the poller
        and the route behave and announce alike: on disconnection the folder is
        marked unavailable, its tracks missing in one UPDATE, its scan cancelled,
        its watch dropped and ``library:media:disconnected`` sent; on
        reconnection it is marked available, its files found again are restored,
        ``library:media:connected`` is sent, the watch resumes and a ``hybrid``
        rescan (high priority) is queued.

        Parameters
        ----------
        directory_id : str, optional
            Check only this folder (active or not); every active folder when omitted.

        Returns
        -------
        list of dict
            ``{"directoryId", "available", "tracksMissing"}`` per folder whose
            availability changed (``tracksMissing`` after the change).
        """
        with self.ctx.sessions() as session:
            if directory_id is None:
                dirs = repo.active_directories(session)
            else:
                one = repo.get_directory(session, directory_id)
                dirs = [one] if one is not None else []
        changes: list[dict[str, Any]] = []
        for d in dirs:
            if directories.folder_available(d) == bool(d.is_available):
                continue
            try:
                after = directories.check_availability(self.ctx, d.id)
            except NotFound:
                continue  # deleted meanwhile
            if bool(after.is_available) != bool(d.is_available):
                changes.append({"directoryId": d.id, "available": bool(after.is_available),
                                "tracksMissing": int(after.total_missing or 0)})
        return changes
