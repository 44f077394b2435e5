"""The stems a ``getTrackInfo {stems: true}`` asks for: the provider's interface.

The engine link codes against :class:`StemsProvider`; the library's stem cache
implements it. A provider that starts a job answers later on the event bus:
``stems:ready`` ``{"trackId": str, "stems": {name: absolute WAV path}}`` or
``stems:failed`` ``{"trackId": str, "error": str}``.
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
    """Stems cannot be made now: the analysis server that separates them is down
    (HTTP 503 where it reaches an API)."""


class StemsProvider(Protocol):
    """Gives the stems of a track, from a cache or by starting a stems job."""

    async def request_stems(self, track_id: str) -> Mapping[str, Path] | None:
        """Absolute WAV paths by stem name (bass, drums, other, vocals) when cached;
        None when a stems job was started (the answer comes later as a
        ``stems:ready`` or ``stems:failed`` bus event).

        Raises
        ------
        StemsUnavailable
            The analysis server is down.
        """
