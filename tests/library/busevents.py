"""Collect the events sent on a library context's bus, for tests."""

from __future__ import annotations

import threading
from typing import Any


class Events:
    """Collects the events sent on a context's bus."""

    def __init__(self, ctx: Any) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        ctx.bus.subscribe(self._add)

    def _add(self, name: str, data: dict[str, Any]) -> None:
        with self._lock:
            self.items.append((name, data))

    def names(self) -> list[str]:
        """Names of the events received, in order."""
        with self._lock:
            return [n for n, _ in self.items]

    def of(self, name: str) -> list[dict[str, Any]]:
        """Payloads of the events called `name`, in order."""
        with self._lock:
            return [d for n, d in self.items if n == name]
