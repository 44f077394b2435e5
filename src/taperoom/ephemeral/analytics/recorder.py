"""Each counted play into the durable record of play events."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from taperoom.ephemeral.analytics.repository import PlayEventRepository
from taperoom.ephemeral.schemas import TrackStatsPublic
from taperoom.errors import TaperoomError

log = logging.getLogger(__name__)


class PlayRecorder:
    """Reaction to :attr:`~taperoom.events.Event.WEAR_PLAYED`: record the play as an event.

    Parameters
    ----------
    repository : PlayEventRepository
        The record shared by the worker processes.
    stats : callable
        ``stats(filename)``, the body of ``GET /stats/<f>``
        (:meth:`~taperoom.ephemeral.service.EphemeralService.stats`): each event keeps
        the track's ``overall_degradation`` as ``/stats`` computes it after the play.
    """

    def __init__(self, repository: PlayEventRepository,
                 stats: Callable[[str], TrackStatsPublic]) -> None:
        self.repository = repository
        self.stats = stats

    def on_play(self, data: dict[str, Any]) -> None:
        """The bus reaction: :meth:`record`."""
        self.record(data)

    def record(self, data: dict[str, Any]) -> int:
        """Record one play.

        Runs in the thread that counted the play, before the play is answered, so an
        answered play is recorded (unless the record stayed locked for
        ``LOCK_TIMEOUT``: the bus then logs the error and the play is answered
        all the same).

        Parameters
        ----------
        data : dict
            A :class:`~taperoom.events.WearPlayed` payload.

        Returns
        -------
        int
            The event's id.
        """
        filename = str(data["filename"])

        def degradation() -> float | None:
            try:
                return self.stats(filename).overall_degradation
            except TaperoomError as exc:  # the track went away since its play
                log.warning("no degradation recorded for a play of %s: %s", filename, exc)
                return None

        return self.repository.append(
            played_at=float(data["counted_at"]), filename=filename,
            segment_index=int(data["segment_index"]), play_count=int(data["play_count"]),
            degradation=degradation)
