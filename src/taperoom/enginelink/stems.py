"""The stems a ``getTrackInfo {stems: true}`` asks for: the provider's interface.

The engine link codes against :class:`StemsProvider`; the library's stems service
implements it. A provider that starts a job answers later on the event bus:
``stems:ready`` ``{"trackId": str, "stems": {name: absolute WAV path}}`` or
``stems:failed`` ``{"trackId": str, "error": str}``. So does a provider that
cannot make the stems now but keeps the request (:attr:`StemsUnavailable.kept`):
it owns the retrying, and the link only waits for one of those events.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from taperoom.errors import Busy
from taperoom.events import Event

#: Bus event: a stems job ended with WAV files (payload ``{trackId, stems}``).
STEMS_READY = Event.STEMS_READY
#: Bus event: a stems job failed (payload ``{trackId, error}``).
STEMS_FAILED = Event.STEMS_FAILED
#: The stems of the contract (section 3), in the order the engine receives them; a
#: set in the library's stem cache is complete with all four.
STEM_NAMES = ("bass", "drums", "other", "vocals")


class StemsUnavailable(Busy):
    """Stems cannot be made now: no analysis server separates them, or it is down
    (HTTP 503 where it reaches an API).

    Parameters
    ----------
    message : str
        Why, for the engine and the log.
    kept : bool
        True when the provider keeps the request and makes the stems once it can
        (the analysis server is back), announcing them with ``stems:ready`` or
        ``stems:failed`` for the track as for a job it started; False when nothing
        follows.
    """

    def __init__(self, message: str, *, kept: bool = False) -> None:
        super().__init__(message)
        self.kept = kept


class StemsProvider(Protocol):
    """Gives the stems of a track, from a cache or by starting a stems job."""

    async def request_stems(self, track_id: str) -> Mapping[str, Path] | None:
        """Absolute WAV paths by stem name (bass, drums, other, vocals) when cached;
        None when a stems job was started (the answer comes later as a
        ``stems:ready`` or ``stems:failed`` bus event).

        Raises
        ------
        StemsUnavailable
            No stems can be made now. With ``kept`` the provider makes them when
            it can, and ``stems:ready`` or ``stems:failed`` comes then; the caller
            never asks again.
        """
