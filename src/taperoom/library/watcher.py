"""File watching of library folders and availability polling of their drives.

Changes (watchdog, inotify on Linux) are collected per folder and applied after
a quiet period of ``file_watcher_debounce`` ms (at most 5 debounce periods, and
at least 5 s, after the first change of a burst): the changed paths go through
the scanner's own phases (:meth:`taperoom.library.scanner.runner.Scanner.scan_paths`), so a
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
(:meth:`taperoom.library.directories.DirectoryService.check_availability`), shared
with the ``check-availability`` route; the watcher reacts to the events it sends.

Reactions to other services (through the event bus, see :class:`LibraryWatcher`):
a folder added is watched, a folder whose path, activity, recursion or link
setting changed is watched anew, a folder removed or disconnected is no longer
watched, and a folder whose drive came back is watched again and rescanned. A
reaction that fails is logged; it never undoes the change that caused it.

Setting watches up, and their limit
-----------------------------------
inotify needs one watch per folder, and setting them up walks the whole tree,
so a big folder takes seconds (``/`` took 74,000 watches and a core). Each
watched library folder therefore gets its own watchdog observer, set up in a
background thread; no route, no lock the routes need and no shutdown ever waits
for a setup (routes that start a watch wait at most :data:`READY_WAIT` seconds
for it, then answer with the watch still ``starting``):

1. the folder's sub-folders are counted as watchdog will walk them (hidden ones
   included, links followed only with ``follow_symlinks``), and counting stops
   as soon as there are more than the inotify watches left;
2. within that budget the folder is watched with inotify; past it, or when the
   kernel refuses a watch (``ENOSPC``), it is **polled** every
   ``file_watcher_poll_seconds`` by watchdog's polling observer (a snapshot of
   the tree compared with the previous one; symbolic links are not followed),
   and its status says so (``mode: "polling"`` with a ``message``);
3. with ``follow_symlinks``, a link to a folder that is reached another way (a
   link loop, two links to one folder) would make watchdog's link-following walk
   endless, so such a folder is watched without following links (the scanner
   still follows them, each real folder once).

The budget is ``file_watcher_max_watches`` in all, and never more than the
kernel's ``fs.inotify.max_user_watches`` minus a quarter of it (at least 1024),
which stays for the other programs of the same user (see inotify(7)). Stopping
a watch (``unwatch``, ``stop-all``, a removed or unplugged folder) takes effect
at once: its events are ignored from then on and its observer is stopped in the
background.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserverVFS

from taperoom.errors import Conflict, InvalidInput, NotFound, TaperoomError
from taperoom.events import (
    DirectoryAddedPayload,
    DirectoryRemovedPayload,
    DirectoryUpdatedPayload,
    Event,
    EventBus,
    MediaPayload,
)
from taperoom.library import models
from taperoom.library.media import folder_available
from taperoom.library.repository import scan as repo
from taperoom.library.scanner.walk import root_available
from taperoom.library.schemas import iso
from taperoom.library.settings import LibrarySettings

log = logging.getLogger(__name__)

#: watchdog event types that can change the library (directory "modified",
#: "opened" and "attrib" events are noise: the file events say what changed).
_FILE_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed"})
_DIR_EVENTS = frozenset({"created", "deleted", "moved"})

#: Seconds :meth:`LibraryWatcher.watch` and ``start_all`` wait for new watches by default.
READY_WAIT = 3.0
#: Seconds :meth:`LibraryWatcher.stop` waits, in all, for background threads to end.
STOP_WAIT = 3.0
#: Where Linux publishes the per-user inotify watch limit (inotify(7)).
MAX_USER_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")

#: Modes of a watch in the status: being set up, watched by inotify, polled,
#: waiting for its drive, or failed (its ``message`` says why).
STARTING, INOTIFY, POLLING, WAITING, FAILED = "starting", "inotify", "polling", "waiting", "failed"


def kernel_watch_limit(source: Path = MAX_USER_WATCHES) -> int | None:
    """The kernel's ``fs.inotify.max_user_watches``, or None where it cannot be read."""
    try:
        return int(source.read_text().strip())
    except (OSError, ValueError):
        return None


def watch_budget(setting: int, kernel: int | None) -> int:
    """inotify watches the watcher may take in all.

    Parameters
    ----------
    setting : int
        ``file_watcher_max_watches``.
    kernel : int or None
        ``fs.inotify.max_user_watches`` (None: unknown, the setting alone counts).

    Returns
    -------
    int
        ``min(setting, kernel - max(1024, kernel // 4))``, at least 0: a quarter of
        the kernel's limit stays for the user's other programs (editors, desktop
        indexers, sync clients).
    """
    if kernel is None:
        return setting
    return max(0, min(setting, kernel - max(1024, kernel // 4)))


#: Folder settings whose change needs a new watch.
REWATCH_ON = frozenset({"path", "is_active", "recursive_scan", "follow_symlinks"})


class PathScanner(Protocol):
    """What the watcher uses of the scan runner."""

    def busy(self, directory_id: str) -> bool: ...

    def scan_paths(self, directory_id: str, paths: Iterable[str]) -> dict[str, Any]: ...


class ScanRequests(Protocol):
    """What the watcher uses of the scan manager."""

    def is_scanning(self, directory_id: str) -> bool: ...

    def start(self, directory_id: str, strategy: str = "hybrid",
              priority: str = "normal") -> dict[str, Any]: ...


class AvailabilityChecks(Protocol):
    """What the watcher uses of the directory service."""

    def check_availability(self, directory_id: str) -> models.LibraryDirectory: ...


class _Cancelled(Exception):
    """The watch was dropped while its folders were being counted."""


@dataclass(frozen=True)
class FolderCount:
    """What :func:`count_folders` found.

    Attributes
    ----------
    folders : int
        Folders counted, the root included (``limit + 1`` when counting stopped early).
    over : bool
        More than `limit` folders.
    alias : str or None
        With links followed, the first link leading to a folder already reached
        another way (a loop or a second link), else None.
    """

    folders: int
    over: bool
    alias: str | None = None


def count_folders(path: str, *, recursive: bool, follow_symlinks: bool, limit: int,
                  cancelled: Callable[[], bool] = lambda: False) -> FolderCount:
    """Count the folders an inotify watch of `path` needs, as watchdog walks them.

    Hidden folders count (watchdog watches them); links to folders are entered only
    with `follow_symlinks`, and then each real folder (``st_dev``, ``st_ino``) once.

    Parameters
    ----------
    path : str
        The library folder.
    recursive : bool
        False counts the folder alone.
    follow_symlinks : bool
    limit : int
        Stop counting at ``limit + 1`` folders.
    cancelled : callable() -> bool
        Polled once per folder.

    Raises
    ------
    OSError
        `path` itself cannot be read.
    """
    st = os.stat(path)
    seen = {(st.st_dev, st.st_ino)}
    count = 1
    alias: str | None = None
    if count > limit:
        return FolderCount(count, True)
    if not recursive:
        return FolderCount(count, False)
    with os.scandir(path):  # the root must be listable; sub-folders may fail quietly
        pass
    stack = [path]
    while stack:
        if cancelled():
            raise _Cancelled
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if not entry.is_dir(follow_symlinks=follow_symlinks):
                    continue
                if follow_symlinks:
                    est = entry.stat(follow_symlinks=True)
                    key = (est.st_dev, est.st_ino)
                    if key in seen:
                        alias = alias or entry.path
                        continue
                    seen.add(key)
            except OSError:
                continue
            count += 1
            if count > limit:
                return FolderCount(count, True, alias)
            stack.append(entry.path)
    return FolderCount(count, False, alias)


@dataclass(eq=False)
class _Watch:
    directory_id: str
    name: str | None
    path: str
    recursive: bool
    follow_symlinks: bool
    started: float = field(default_factory=time.time)
    mode: str = STARTING
    message: str | None = None
    folders: int | None = None
    watches: int = 0                  # inotify watches reserved from the budget
    observer: BaseObserver | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def of(cls, d: models.LibraryDirectory, mode: str = STARTING) -> _Watch:
        w = cls(d.id, d.name, os.path.abspath(d.path), bool(d.recursive_scan),
                bool(d.follow_symlinks), mode=mode)
        if mode != STARTING:
            w.ready.set()
        return w


@dataclass
class _Pending:
    paths: set[str] = field(default_factory=set)
    first: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)


class _Handler(FileSystemEventHandler):
    """Forwards relevant watchdog events of one watch to the watcher."""

    def __init__(self, watcher: LibraryWatcher, watch: _Watch) -> None:
        self.watcher = watcher
        self.watch = watch

    def on_any_event(self, event: FileSystemEvent) -> None:
        kinds = _DIR_EVENTS if event.is_directory else _FILE_EVENTS
        if event.event_type not in kinds:
            return
        paths = [os.fsdecode(event.src_path)]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(os.fsdecode(dest))
        if not event.is_directory:
            exts = self.watcher.settings.extensions
            if not any(os.path.splitext(p)[1].lower() in exts for p in paths):
                return
        self.watcher.touch(self.watch.directory_id, paths, source=self.watch)


class LibraryWatcher:
    """Watches library folders for changes and removable drives for (dis)appearance.

    Once :meth:`follow_events` is called (by the leader process, the only one
    that watches), it listens on the bus for the directory service's events,
    whichever worker process sent them: with ``FILE_WATCHER_ENABLED``, a folder
    added (``library:directory:added``) is watched, a watched folder whose
    path, activity, recursion or link setting changed
    (``library:directory:updated``) is watched anew, and a folder whose
    drive came back (``library:media:connected``) is watched again and rescanned
    (``hybrid``, high priority); a folder removed or disconnected is no longer
    watched, whatever the setting.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        The watcher reacts to ``library:directory:*`` and ``library:media:*``.
    settings : LibrarySettings
        Uses ``file_watcher_enabled``, ``file_watcher_debounce`` (ms),
        ``extensions``, ``availability_poll_seconds``, ``file_watcher_max_watches``
        and ``file_watcher_poll_seconds``.
    refusal : callable(Path) -> str or None
        The folder policy: folders it refuses are never watched.
    scanner : PathScanner
        Applies changed paths (and says when a scan holds a folder).
    scans : ScanRequests
        The scan manager (changes wait for a running scan; reconnected folders are
        rescanned).
    directories : AvailabilityChecks
        The directory service, whose availability check the poller runs.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, settings: LibrarySettings,
                 *, refusal: Callable[[Path], str | None], scanner: PathScanner,
                 scans: ScanRequests, directories: AvailabilityChecks) -> None:
        self.db = db
        self.settings = settings
        self.refusal = refusal
        self.scanner = scanner
        self.scans = scans
        self.directories = directories
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._watches: dict[str, _Watch] = {}
        self._refused: dict[str, tuple[str, str]] = {}
        self._pending: dict[str, _Pending] = {}
        self._thread: threading.Thread | None = None
        self._helpers: list[threading.Thread] = []
        self._stopping = False
        self._polling = False
        self._next_poll = 0.0
        self.bus = bus
        self._unsubscribe: list[Callable[[], None]] = []

    def follow_events(self) -> None:
        """React to folders added, changed, removed, unplugged and plugged in (bus
        events): the leader process calls it when it takes the watcher over, so
        that exactly one process watches. :meth:`stop` stops it."""
        with self._lock:
            if self._unsubscribe:
                return
            self._unsubscribe = [
                self.bus.on(Event.DIRECTORY_ADDED, self._on_added),
                self.bus.on(Event.DIRECTORY_UPDATED, self._on_updated),
                self.bus.on(Event.DIRECTORY_REMOVED, self._on_gone),
                self.bus.on(Event.MEDIA_DISCONNECTED, self._on_gone),
                self.bus.on(Event.MEDIA_CONNECTED, self._on_connected),
            ]

    # ---------------------------------------------------------------- reactions

    def _react(self, what: str, directory_id: str, action: Callable[[], object]) -> None:
        """Run a reaction; a refusal (not watched, unavailable, ...) is logged, not raised."""
        try:
            action()
        except TaperoomError as exc:
            log.info("watcher: %s %s: %s", what, directory_id, exc)

    def _rewatch(self, directory_id: str, active: bool) -> None:
        """Drop the folder's watch and, when watching is enabled and it is active,
        watch it anew."""
        if self.is_watching(directory_id):
            self._react("unwatch", directory_id, lambda: self.unwatch(directory_id))
        if self.settings.file_watcher_enabled and active:
            self._react("watch", directory_id, lambda: self.watch(directory_id))

    def _on_added(self, data: DirectoryAddedPayload) -> None:
        if self.settings.file_watcher_enabled and data["directory"]["is_active"]:
            self._react("watch", data["directoryId"], lambda: self.watch(data["directoryId"]))

    def _on_updated(self, data: DirectoryUpdatedPayload) -> None:
        if data["changes"].keys() & REWATCH_ON:
            self._rewatch(data["directoryId"], bool(data["directory"]["is_active"]))

    def _on_gone(self, data: DirectoryRemovedPayload | MediaPayload) -> None:
        directory_id = data["directoryId"]
        with self._lock:  # a removed folder is no longer listed as refused either
            self._refused.pop(directory_id, None)
        if self.is_watching(directory_id):
            self._react("unwatch", directory_id, lambda: self.unwatch(directory_id))

    def _on_connected(self, data: MediaPayload) -> None:
        directory_id = data["directoryId"]
        if self.settings.file_watcher_enabled and data["directory"]["is_active"]:
            self._rewatch(directory_id, True)
            self._react("rescan", directory_id,
                        lambda: self.scans.start(directory_id, "hybrid", "high"))

    # ---------------------------------------------------------------- lifecycle

    def _ensure_running(self) -> None:
        """Start the background thread (caller holds the lock)."""
        self._stopping = False
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="library-watcher",
                                            daemon=True)
            self._thread.start()

    def _spawn(self, target: Callable[[], None], name: str, *, join: bool) -> None:
        """Run `target` in a daemon thread; :meth:`stop` waits (briefly) for it if `join`."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        if join:
            with self._lock:
                self._helpers = [t for t in self._helpers if t.is_alive()]
                self._helpers.append(thread)
        thread.start()

    def limit(self) -> int:
        """inotify watches this watcher may take in all (see :func:`watch_budget`)."""
        return watch_budget(self.settings.file_watcher_max_watches, kernel_watch_limit())

    def _refusal(self, d: models.LibraryDirectory) -> str | None:
        """The folder policy's refusal of `d` (recorded for the status), or None."""
        reason = self.refusal(Path(d.path))
        with self._lock:
            if reason is None:
                self._refused.pop(d.id, None)
            else:
                self._refused[d.id] = (d.path, reason)
        if reason is not None:
            log.warning("library folder %s is not watched: %s", d.path, reason)
        return reason

    @staticmethod
    def _wait(watches: Iterable[_Watch], wait: float) -> None:
        deadline = time.monotonic() + wait
        for w in watches:
            if not w.ready.wait(max(0.0, deadline - time.monotonic())):
                return

    def start_all(self, wait: float = READY_WAIT) -> int:
        """Watch every active, available library folder and start availability polling.

        Folders refused by the folder policy are skipped (and listed under
        ``refused`` in :meth:`status`).

        Parameters
        ----------
        wait : float
            Seconds to wait, in all, for the new watches to be set up (0: return
            at once; the watches are set up in the background either way).

        Returns
        -------
        int
            Number of folders watched (or being set up) afterwards.
        """
        with self._lock:
            self._polling = True
            self._refused.clear()
            self._ensure_running()
        with self.db() as session:
            dirs = repo.active_directories(session, available=True)
        started: list[_Watch] = []
        for d in dirs:
            if self._refusal(d) is None and (w := self._begin(d)) is not None:
                started.append(w)
        self._wait(started, wait)
        with self._lock:
            return sum(1 for w in self._watches.values() if w.mode != FAILED)

    def watch(self, directory_id: str, wait: float = READY_WAIT) -> None:
        """Start watching one library folder (and polling availability).

        Parameters
        ----------
        directory_id : str
        wait : float
            Seconds to wait for the watch to be set up; it goes on in the
            background afterwards (``mode: "starting"`` in :meth:`status`).

        Raises
        ------
        NotFound
            No such folder, or it is inactive or unavailable.
        InvalidInput
            The folder is already watched.
        Conflict
            The folder is refused by the folder policy, or the operating system
            refused the watch within `wait` (the status keeps the reason).
        """
        with self.db() as session:
            d = repo.get_directory(session, directory_id)
        if d is None:
            raise NotFound("Library directory not found")
        if not d.is_active or not d.is_available or not root_available(d.path):
            raise NotFound(f"Library directory is not active or available: {directory_id}")
        reason = self._refusal(d)
        if reason is not None:
            raise Conflict(reason)
        with self._lock:
            self._polling = True
            self._ensure_running()
        w = self._begin(d)
        if w is None:
            raise InvalidInput(f"Directory {directory_id} is already being watched")
        self._wait([w], wait)
        if w.mode == FAILED:
            raise Conflict(w.message or f"Cannot watch {w.path}")

    def _begin(self, d: models.LibraryDirectory) -> _Watch | None:
        """Register a watch of `d` and set it up in the background; None if already watched."""
        with self._lock:
            old = self._watches.get(d.id)
            if old is not None and old.mode not in (FAILED, WAITING):
                return None
            w = self._watches[d.id] = _Watch.of(d)
        if old is not None:
            self._drop(old)
        self._spawn(lambda: self._set_up(w), "library-watch-setup", join=False)
        return w

    def _set_up(self, w: _Watch) -> None:
        """Count, choose inotify or polling, start the observer (background thread)."""
        observer: BaseObserver | None = None
        try:
            observer = self._start_observer(w)
        except _Cancelled:
            pass
        except Exception as exc:  # any failure is reported in the status, never raised
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            log.warning("cannot watch %s: %s", w.path, reason)
            with self._lock:
                w.mode, w.message, w.watches = FAILED, f"Cannot watch {w.path}: {reason}", 0
        finally:
            with self._lock:
                keep = (observer is not None and not w.cancelled.is_set()
                        and self._watches.get(w.directory_id) is w)
                if keep:
                    w.observer = observer
            w.ready.set()
        if observer is not None and not keep:
            self._retire(observer)

    def _start_observer(self, w: _Watch) -> BaseObserver:
        """Set up the OS watch of `w` in this thread; sets its mode, counts and message."""
        settings = self.settings
        limit = self.limit()
        with self._lock:
            left = limit - sum(x.watches for x in self._watches.values() if x is not w)
        counted = count_folders(w.path, recursive=w.recursive,
                                follow_symlinks=w.follow_symlinks, limit=max(0, left),
                                cancelled=w.cancelled.is_set)
        with self._lock:
            if w.cancelled.is_set():
                raise _Cancelled
            left = limit - sum(x.watches for x in self._watches.values() if x is not w)
            w.folders = counted.folders
            inotify = not counted.over and counted.folders <= left
            w.watches = counted.folders if inotify else 0
        notes: list[str] = []
        follow = w.follow_symlinks and counted.alias is None
        if w.follow_symlinks and counted.alias is not None:
            notes.append(f"symbolic links to folders are not followed: {counted.alias} "
                         "leads to a folder reached another way (a loop or a second link)")
        handler = _Handler(self, w)
        if inotify:
            observer: BaseObserver = Observer()
            try:
                observer.schedule(handler, w.path, recursive=w.recursive, follow_symlink=follow)
                observer.start()  # adds one watch per folder, here
            except OSError as exc:
                self._retire(observer)
                if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                    raise
                with self._lock:
                    w.watches = 0
                notes.insert(0, f"the kernel refused more inotify watches ({exc.strerror}; "
                                "see fs.inotify.max_user_watches)")
            else:
                with self._lock:
                    w.mode, w.message = INOTIFY, ("Watched, but " + "; ".join(notes)
                                                  if notes else None)
                return observer
        else:
            notes.insert(0, f"it has more folders than the {max(0, left)} inotify watches "
                            f"left (one per folder; {limit} in all, from "
                            "FILE_WATCHER_MAX_WATCHES and the kernel's "
                            "fs.inotify.max_user_watches)")
        poll = settings.file_watcher_poll_seconds
        observer = PollingObserverVFS(os.lstat, os.scandir, polling_interval=poll)
        observer.schedule(handler, w.path, recursive=w.recursive)
        with self._lock:
            if w.cancelled.is_set():
                raise _Cancelled
        observer.start()  # takes the first snapshot, here
        with self._lock:
            w.mode = POLLING
            w.message = (f"Polled every {poll:g} s instead of watched: " + "; ".join(notes)
                         + ("; symbolic links are not followed while polling"
                            if w.follow_symlinks else ""))
        log.warning("library folder %s: %s", w.path, w.message)
        return observer

    def _retire(self, observer: BaseObserver) -> None:
        """Stop `observer` in the background (its walk or snapshot may still be running)."""

        def stop() -> None:
            try:
                observer.stop()
                if observer.is_alive():
                    observer.join(30)
            except Exception:  # an emitter may already be gone with its folder
                log.debug("stopping a watch observer failed", exc_info=True)

        self._spawn(stop, "library-watch-stop", join=True)

    def _drop(self, w: _Watch) -> None:
        """Cancel `w`'s setup and stop its observer (the watch is no longer registered)."""
        w.cancelled.set()
        w.ready.set()  # nothing to wait for any more
        with self._lock:
            observer, w.observer = w.observer, None
        if observer is not None:
            self._retire(observer)

    def unwatch(self, directory_id: str) -> None:
        """Stop watching one folder (pending changes of it are dropped); returns at once.

        Raises
        ------
        NotFound
            The folder is not watched.
        """
        with self._lock:
            self._refused.pop(directory_id, None)
            w = self._watches.pop(directory_id, None)
            self._pending.pop(directory_id, None)
        if w is None:
            raise NotFound(f"Directory {directory_id} is not being watched")
        self._drop(w)

    def refresh(self, directory_id: str, wait: float = READY_WAIT) -> None:
        """Re-read a watched folder's row after it changed (path, recursion, activity).

        A watched folder gets a new OS watch on its current path and settings, or
        stops being watched when it was deactivated, deleted or is now refused by
        the folder policy. Unwatched folders are left alone.
        """
        with self._lock:
            w = self._watches.pop(directory_id, None)
            self._pending.pop(directory_id, None)
        if w is None:
            return
        self._drop(w)
        with self.db() as session:
            d = repo.get_directory(session, directory_id)
        if d is None or not d.is_active or self._refusal(d) is not None:
            return
        if d.is_available and root_available(d.path):
            new = self._begin(d)
            if new is not None:
                self._wait([new], wait)
        else:
            with self._lock:  # keep it wanted: the poller re-watches it when it is back
                self._watches.setdefault(directory_id, _Watch.of(d, WAITING))

    def stop_all(self) -> int:
        """Stop every watch and the availability polling; returns how many were stopped."""
        with self._lock:
            dropped = list(self._watches.values())
            self._watches.clear()
            self._pending.clear()
            self._refused.clear()
            self._polling = False
        for w in dropped:
            self._drop(w)
        return len(dropped)

    def stop(self) -> None:
        """Stop watching, polling and the background threads (the context is closing).

        Waits at most :data:`STOP_WAIT` seconds, in all, for the observers to stop
        and the background thread to end. Setups are not waited for: one still
        walking a huge tree finishes in its daemon thread, sees that its watch was
        dropped and stops its own observer.
        """
        with self._lock:
            unsubscribes, self._unsubscribe = self._unsubscribe, []
        for unsubscribe in unsubscribes:
            unsubscribe()
        self.stop_all()
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
            thread, self._thread = self._thread, None
            helpers = list(self._helpers)
        deadline = time.monotonic() + STOP_WAIT
        for t in [*helpers, thread]:
            if t is not None and t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))

    def status(self) -> dict[str, Any]:
        """Watcher status for ``GET /api/watcher/status``.

        Returns
        -------
        dict
            ``{"activeCount", "watchers": [{"directoryId", "directoryName",
            "directoryPath", "uptime" (ms), "startTime" (ISO), "available" (watched
            or polled now), "mode" ("starting" | "inotify" | "polling" | "waiting" |
            "failed"), "folders" (counted, or None), "watches" (inotify watches
            taken), "message" (why it is polled, failed or not following links;
            else None)}], "refused": [{"directoryId", "directoryPath", "message"}]
            (active folders the folder policy refuses), "availabilityPolling",
            "pollSeconds", "debounceMs", "pendingChanges", "watchLimit" (inotify
            watches allowed in all), "watchesUsed", "fallbackPollSeconds"}``.
        """
        now = time.time()
        limit = self.limit()
        with self._lock:
            watchers = [{
                "directoryId": w.directory_id, "directoryName": w.name,
                "directoryPath": w.path, "uptime": int((now - w.started) * 1000),
                "startTime": iso(datetime.fromtimestamp(w.started, UTC)),
                "available": w.mode in (INOTIFY, POLLING), "mode": w.mode,
                "folders": w.folders, "watches": w.watches, "message": w.message,
            } for w in self._watches.values()]
            refused = [{"directoryId": did, "directoryPath": path, "message": message}
                       for did, (path, message) in self._refused.items()]
            pending = sum(len(p.paths) for p in self._pending.values())
            used = sum(w.watches for w in self._watches.values())
            polling = self._polling
        return {"activeCount": len(watchers), "watchers": watchers, "refused": refused,
                "availabilityPolling": polling,
                "pollSeconds": self.settings.availability_poll_seconds,
                "debounceMs": self.settings.file_watcher_debounce,
                "pendingChanges": pending, "watchLimit": limit, "watchesUsed": used,
                "fallbackPollSeconds": self.settings.file_watcher_poll_seconds}

    def is_watching(self, directory_id: str) -> bool:
        """Whether the folder is watched (possibly being set up or waiting for its drive)."""
        with self._lock:
            return directory_id in self._watches

    # ---------------------------------------------------------------- changes

    def touch(self, directory_id: str, paths: list[str], source: _Watch | None = None) -> None:
        """Record changed paths of a folder; they are applied after the debounce delay.

        Parameters
        ----------
        source : _Watch, optional
            The watch that saw the change; ignored unless it is still the folder's
            current watch (a dropped observer may report until it is stopped).
        """
        now = time.monotonic()
        with self._lock:
            current = self._watches.get(directory_id)
            if current is None or (source is not None and current is not source):
                return
            p = self._pending.get(directory_id)
            if p is None:
                p = self._pending[directory_id] = _Pending()
            p.paths.update(paths)
            p.last = now
            self._wake.notify_all()

    def _due(self, now: float) -> tuple[list[tuple[str, set[str]]], float]:
        """Pop the folders whose changes are due; returns them and the next deadline."""
        debounce = self.settings.file_watcher_debounce / 1000.0
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
        if self.scans.is_scanning(directory_id) or self.scanner.busy(directory_id):
            with self._lock:  # a scan is busy with this folder: try again after it
                p = self._pending.setdefault(directory_id, _Pending())
                p.paths.update(paths)
                p.first = p.last = time.monotonic()
            return
        try:
            self.scanner.scan_paths(directory_id, sorted(paths))
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
                    self._next_poll = now + self.settings.availability_poll_seconds
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

        The probe is :func:`taperoom.library.media.folder_available` (a
        readable directory; an empty removable mount point that should hold
        tracks counts as unplugged), and the transition is the one
        ``POST /api/library/directories/:id/check-availability`` performs
        (:meth:`taperoom.library.directories.DirectoryService.check_availability`),
        so the poller
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
        with self.db() as session:
            if directory_id is None:
                dirs = repo.active_directories(session)
            else:
                one = repo.get_directory(session, directory_id)
                dirs = [one] if one is not None else []
        changes: list[dict[str, Any]] = []
        for d in dirs:
            if folder_available(d) == bool(d.is_available):
                continue
            try:
                after = self.directories.check_availability(d.id)
            except NotFound:
                continue  # deleted meanwhile
            if bool(after.is_available) != bool(d.is_available):
                changes.append({"directoryId": d.id, "available": bool(after.is_available),
                                "tracksMissing": int(after.total_missing or 0)})
        return changes
