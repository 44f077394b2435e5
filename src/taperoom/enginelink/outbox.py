"""Messages the library sends the engine unasked, queued from any thread."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Messages kept while the engine is away (the oldest are dropped beyond).
LIMIT = 1000


class Outbox:
    """A bounded, thread-safe queue of outbound messages (JSON objects).

    The link drains it while connected and leaves it filling while the engine
    is away: what is queued then (an analysis finished, stems ready, a first
    beat moved) is sent after the next ``appServerIdentify``.

    Parameters
    ----------
    limit : int
        Messages kept at most; the oldest are dropped (and logged) beyond.
    """

    def __init__(self, limit: int = LIMIT) -> None:
        self._items: deque[dict[str, Any]] = deque()
        self._limit = limit
        self._lock = threading.Lock()
        self._wake: Callable[[], None] | None = None

    def put(self, message: dict[str, Any]) -> None:
        """Queue `message` (from any thread) and wake the link."""
        with self._lock:
            if len(self._items) >= self._limit:
                dropped = self._items.popleft()
                log.warning("engine outbox full; dropped %s", dropped)
            self._items.append(message)
            wake = self._wake
        if wake is not None:
            wake()

    def take(self) -> list[dict[str, Any]]:
        """Every queued message, oldest first (the queue is then empty)."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
            return items

    def give_back(self, messages: list[dict[str, Any]]) -> None:
        """Put messages that could not be sent back at the front, in order."""
        with self._lock:
            self._items.extendleft(reversed(messages))
            while len(self._items) > self._limit:
                self._items.pop()

    def waker(self, wake: Callable[[], None] | None) -> None:
        """Call `wake` (thread-safe) whenever a message is queued; None stops it."""
        with self._lock:
            self._wake = wake
