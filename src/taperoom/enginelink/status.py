"""The engine link's status, asked of whichever process runs the link."""

from __future__ import annotations

from typing import Any, Protocol

from taperoom.enginelink.client import EngineLink


class LeaderCalling(Protocol):
    """Runs registered functions in the leader
    (:class:`taperoom.library.leadercalls.LeaderCalls`)."""

    def register(self, name: str, fn: Any) -> None: ...

    def call(self, name: str, *args: Any) -> Any: ...


class EngineStatus:
    """``GET /api/engine/status`` from any worker process.

    The link runs in the leader process only; another worker asks the leader
    through `calls`.

    Parameters
    ----------
    calls : LeaderCalling
    link : EngineLink
        This process's link (running when this process leads).
    enabled : bool
        Whether the library links to an engine at all (``ENGINE_LINK_ENABLED``).
    """

    def __init__(self, calls: LeaderCalling, link: EngineLink, *, enabled: bool) -> None:
        self.calls = calls
        self.link = link
        self.enabled = enabled
        calls.register("engine.status", link.status)

    def status(self) -> dict[str, Any]:
        """``{enabled, ...}`` and :meth:`EngineLink.status` of the leader's link.

        Raises
        ------
        Busy
            No leader answered in time.
        """
        if not self.enabled:
            return {"enabled": False, "running": False, "url": self.link.url,
                    "connected": False, "connectedSince": None, "lastError": None,
                    "failedAttempts": 0, "reconnectDelay": None, "decks": {}}
        return {"enabled": True, **self.calls.call("engine.status")}
