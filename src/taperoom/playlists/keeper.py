"""Keep smart playlists current as the library's tracks change.

:class:`SmartPlaylistKeeper` listens to the bus for what changes tracks
(``track:added``, ``track:updated``, ``track:deleted``, ``track:moved``,
``track:missing``, ``track:restored``, ``analysis:complete``, a folder removed,
a drive gone or back, duplicates resolved) and, after a short quiet time,
refreshes the smart playlists the changes may affect
(:meth:`taperoom.playlists.smartlists.SmartPlaylists.refresh_affected`), which
send ``playlist:updated`` when their tracks changed.

Changes are coalesced: every event only adds to a pending set of changed track
columns (or "everything", for tracks added, deleted, missing or restored), and
one background thread applies the set once the events pause for
:attr:`~SmartPlaylistKeeper.quiet` seconds, or at the latest
:attr:`~SmartPlaylistKeeper.longest` seconds after the first pending change. A
scan that adds 10,000 tracks thus refreshes each smart playlist a few times
(every ``longest`` seconds while it runs, and once when it completes: the end
of a scan flushes at once), not 10,000 times. Events of other worker processes
reach this process's bus through the event relay; only the leader process runs
a keeper (a duty of :class:`taperoom.leader.Leadership`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from taperoom.events import Event, EventBus

log = logging.getLogger(__name__)

#: Events after which any smart playlist may change (tracks came or went).
EVERYTHING = frozenset({
    Event.TRACK_ADDED, Event.TRACK_DELETED, Event.TRACK_MISSING, Event.TRACK_RESTORED,
    Event.DIRECTORY_REMOVED, Event.MEDIA_CONNECTED, Event.MEDIA_DISCONNECTED,
    Event.DUPLICATE_RESOLVED})
#: Track columns a move changes.
MOVED = frozenset({"file_path", "relative_path", "library_directory_id"})

Refresher = Callable[[frozenset[str] | None], object]


def changed_fields(name: str, data: dict[str, Any]) -> frozenset[str] | None:
    """The track columns an event says changed.

    Parameters
    ----------
    name : str
        Event name.
    data : dict
        Its payload.

    Returns
    -------
    frozenset of str or None
        None: tracks came or went (every smart playlist may change); an empty set:
        nothing a smart playlist reads (other events, hot cues...).
    """
    if name in EVERYTHING:
        return None
    if name == Event.TRACK_MOVED:
        return MOVED
    if name == Event.TRACK_UPDATED:
        return _names(data.get("changes"))
    if name == Event.ANALYSIS_COMPLETE:
        return _names(data.get("results")) | {"date_analyzed"}
    return frozenset()


def _names(changes: Any) -> frozenset[str]:
    """Keys of a ``changes`` object, or the names of a ``changes`` list."""
    if isinstance(changes, dict | list | tuple | set | frozenset):
        return frozenset(str(k) for k in changes)
    return frozenset()


class SmartPlaylistKeeper:
    """Refresh affected smart playlists after track changes, coalesced (see the module).

    Parameters
    ----------
    bus : EventBus
        Where track changes are heard.
    refresh : callable
        ``refresh(changed)`` with the coalesced changed columns (None: everything),
        :meth:`~taperoom.playlists.smartlists.SmartPlaylists.refresh_affected`.
    quiet : float
        Seconds without events before the pending changes are applied.
    longest : float
        Most seconds a pending change waits while events keep coming (a scan).
    """

    def __init__(self, bus: EventBus, refresh: Refresher, *, quiet: float = 0.3,
                 longest: float = 3.0) -> None:
        self.bus = bus
        self.refresh = refresh
        self.quiet = quiet
        self.longest = longest
        self._cond = threading.Condition()
        self._pending = False
        self._everything = False
        self._fields: set[str] = set()
        self._first = self._last = 0.0
        self._now = False
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Listen to the bus and start the refreshing thread (the leader's duty)."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="smart-playlists",
                                            daemon=True)
            self._thread.start()
        self._unsubscribe = self.bus.subscribe(self._on_event)

    def stop(self) -> None:
        """Stop listening and stop the thread (pending changes are dropped: the next
        leader's playlists are refreshed by the next change or read)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._cond:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout=30)

    def idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is pending nor being refreshed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # ------------------------------------------------------------------ events

    def _on_event(self, name: str, data: dict[str, Any]) -> None:
        if name == Event.SCAN_COMPLETE:
            with self._cond:
                if self._pending:
                    self._now = True
                    self._cond.notify_all()
            return
        changed = changed_fields(name, data)
        if changed is not None and not changed:
            return
        self.note(changed)

    def note(self, changed: Iterable[str] | None) -> None:
        """Add a change (columns, or None: everything) to the pending set."""
        now = time.monotonic()
        with self._cond:
            if not self._pending:
                self._first = now
            self._pending = True
            self._last = now
            if changed is None:
                self._everything = True
            else:
                self._fields.update(changed)
            self._cond.notify_all()

    # ------------------------------------------------------------------ the thread

    def _take(self) -> tuple[bool, frozenset[str] | None]:
        """Wait for pending changes that are due: ``(True, changed)``, or
        ``(False, None)`` when stopping."""
        with self._cond:
            while True:
                if self._stopping:
                    return False, None
                if not self._pending:
                    self._cond.wait()
                    continue
                due = min(self._last + self.quiet, self._first + self.longest)
                left = due - time.monotonic()
                if left > 0 and not self._now:
                    self._cond.wait(left)
                    continue
                changed = None if self._everything else frozenset(self._fields)
                self._pending = self._everything = self._now = False
                self._fields = set()
                self._busy = True
                return True, changed

    def _run(self) -> None:
        while True:
            going, changed = self._take()
            if not going:
                return
            try:
                self.refresh(changed)
            except Exception:
                log.exception("could not refresh smart playlists")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
