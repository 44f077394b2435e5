"""The ``taperoom library worker`` processes, as the server hears of them.

A worker process (possibly on another machine, sharing a Redis queue and a
PostgreSQL database) runs analysis jobs and says so every few seconds with an
``analysis:worker`` event (:meth:`WorkerRoster.announce`), which the event relay
brings to the server; with ``MAX_CONCURRENT_ANALYSIS=0`` the workers heard from
within ``JOB_STALE_SECONDS`` are what ``status``, ``queue`` and ``health`` report.
The jobs themselves, their heartbeats and the hand-over of a silent worker's job
are the job layer's (:mod:`taperoom.library.jobqueue`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from taperoom.events import Event, EventBus

__all__ = ["WorkerRoster"]


class WorkerRoster:
    """Who runs the analysis: the worker processes heard from lately.

    Parameters
    ----------
    bus : EventBus
        Carries the ``analysis:worker`` events.
    timeout : float
        Seconds after its last ``analysis:worker`` event that a worker process is
        taken for gone (``JOB_STALE_SECONDS``).
    max_concurrent : int
        ``MAX_CONCURRENT_ANALYSIS`` of the leader (0: the workers run the analysis).
    """

    def __init__(self, bus: EventBus, *, timeout: float, max_concurrent: int) -> None:
        self.bus = bus
        self.timeout = timeout
        self.max_concurrent = max_concurrent
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def subscribe(self) -> Callable[[], None]:
        """Listen for ``analysis:worker``; returns the function that stops it."""
        return self.bus.on(Event.ANALYSIS_WORKER, self._heard)

    def announce(self, node: str, slots: int) -> None:
        """Say on the bus (and through the event relay, to the server) that this
        ``taperoom library worker`` process runs up to `slots` analyses at once; the
        worker calls it every few seconds."""
        self.bus.send(Event.ANALYSIS_WORKER, {"node": node, "slots": slots,
                                              "pid": os.getpid()})

    def _heard(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._seen[f"{data.get('node')}:{data.get('pid')}"] = (
                time.monotonic(), int(data.get("slots") or 0))

    def workers(self) -> list[dict[str, Any]]:
        """The worker processes heard from within :attr:`timeout` seconds:
        ``[{node, pid, slots}]``, by node name."""
        now = time.monotonic()
        with self._lock:
            seen = {k: v for k, v in self._seen.items() if now - v[0] <= self.timeout}
            self._seen = seen
        return sorted(({"node": k.rpartition(":")[0], "pid": int(k.rpartition(":")[2] or 0),
                        "slots": slots} for k, (_, slots) in seen.items()),
                      key=lambda w: (w["node"], w["pid"]))

    def slots(self) -> int:
        """Analyses that can run at once: the leader's ``MAX_CONCURRENT_ANALYSIS``, or
        the slots of the live workers when it is 0."""
        if self.max_concurrent == 0:
            return sum(w["slots"] for w in self.workers())
        return self.max_concurrent

    def with_workers(self, state: dict[str, Any]) -> dict[str, Any]:
        """The leader's state (``consuming``, ``healthy``...), processing and healthy
        when it leaves the analysis to worker processes (``MAX_CONCURRENT_ANALYSIS=0``)
        and one is alive."""
        if self.max_concurrent == 0 and not state.get("consuming") and self.workers():
            return state | {"consuming": True, "healthy": True}
        return state
