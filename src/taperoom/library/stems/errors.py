"""The error of stems that cannot be had now: the engine link's
:class:`~taperoom.enginelink.stems.StemsUnavailable` (a
:class:`~taperoom.errors.Busy`, HTTP 503), which the stems service raises when no
external analysis server is configured or it cannot be reached."""

from __future__ import annotations

from taperoom.enginelink.stems import StemsUnavailable

__all__ = ["StemsUnavailable"]
