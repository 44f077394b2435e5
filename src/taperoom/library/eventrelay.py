"""Events of every worker process on every worker's bus, through the library database.

With ``--workers N`` a WebSocket client is connected to one process, while the
events it waits for come from others: scan progress and watcher events from the
leader, file operations from whichever process ran them. Reactions cross
processes too: a folder added through one worker must be watched by the
leader's watcher. :class:`EventRelay` carries them, as a table polled by
every process (the "outbox" pattern; it works the same on SQLite and
PostgreSQL, needs no other server, and the rows are there to read when a
process looks):

* every event sent on this process's bus is written to ``library_events``
  (batched: one transaction per :attr:`EventRelay.interval` at most);
* every :attr:`EventRelay.interval` seconds the events other processes wrote
  since the last look are sent on this process's bus, where the WebSocket hub
  forwards them to its clients and services react as to their own (the relay
  does not write them back);
* events older than :data:`KEEP_SECONDS` are deleted.

The relay runs only when several processes serve the library
(``WEB_CONCURRENCY`` > 1, which ``--workers`` sets); a lone process keeps every
event in memory as before.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.events import EventBus
from taperoom.library.models import utcnow
from taperoom.library.repository import events as repo

log = logging.getLogger(__name__)

#: Seconds an event is kept for processes that look late.
KEEP_SECONDS = 300
#: Events kept in memory while the database cannot be written (oldest dropped).
BACKLOG = 10_000


class EventRelay:
    """Carries bus events between the worker processes of one library.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        This process's bus.
    origin : str
        This process's name (:func:`taperoom.leader.process_id`).
    interval : float
        Seconds between two writes of this process's events, and between two
        reads of the others': the delay an event takes to reach another process.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, *, origin: str,
                 interval: float = 0.1) -> None:
        self.db = db
        self.bus = bus
        self.origin = origin
        self.interval = interval
        self._outbox: deque[tuple[str, str]] = deque(maxlen=BACKLOG)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        with db() as s:
            self._seen = repo.last_event_id(s)
        self._next_prune = 0.0
        self._unsubscribe = bus.subscribe(self._on_event)
        self._thread = threading.Thread(target=self._loop, name="library-event-relay",
                                        daemon=True)
        self._thread.start()

    def _on_event(self, name: str, data: dict[str, Any]) -> None:
        if getattr(self._local, "relaying", False):
            return  # an event of another process, being delivered here
        payload = json.dumps(data, default=str)
        with self._lock:
            self._outbox.append((name, payload))

    def _flush(self) -> None:
        with self._lock:
            batch = list(self._outbox)
            self._outbox.clear()
        if not batch:
            return
        try:
            with transaction(self.db) as s:
                repo.add_events(s, self.origin, batch)
        except Exception:
            log.warning("could not relay %d events to the other workers", len(batch),
                        exc_info=True)
            with self._lock:  # try again next time, before the newer ones
                self._outbox.extendleft(reversed(batch))

    def _receive(self) -> None:
        try:
            with self.db() as s:
                rows = repo.events_after(s, self._seen)
        except Exception:
            log.warning("could not read the events of the other workers", exc_info=True)
            return
        self._local.relaying = True
        try:
            for event_id, origin, name, data in rows:
                self._seen = event_id
                if origin == self.origin:
                    continue
                try:
                    self.bus.send(name, json.loads(data))
                except ValueError:
                    log.warning("relayed event %s is not JSON; skipped", event_id)
        finally:
            self._local.relaying = False

    def _prune(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 60
        try:
            with transaction(self.db) as s:
                repo.prune_events(s, utcnow() - timedelta(seconds=KEEP_SECONDS))
        except Exception:
            log.debug("could not prune relayed events", exc_info=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._flush()
            self._receive()
            self._prune()

    def close(self) -> None:
        """Stop relaying (events still in the outbox are written first)."""
        self._unsubscribe()
        self._stop.set()
        self._thread.join(5)
        self._flush()
