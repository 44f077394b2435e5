"""Each counted play into the shared log, then a ring of every worker process's doorbell."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from taperoom.ephemeral.live.doorbell import Doorbells
from taperoom.ephemeral.live.schemas import WearPushPublic
from taperoom.ephemeral.live.wearlog import LoggedPlay, WearLog
from taperoom.ephemeral.schemas import TrackStatsPublic


class WearPublisher:
    """Reaction to :attr:`~taperoom.events.Event.WEAR_PLAYED`: log the push, wake everyone.

    Parameters
    ----------
    log : WearLog
        The log shared by the worker processes.
    bells : Doorbells
        The registry of the processes that serve live wear.
    stats : callable
        ``stats(filename)``, the body of ``GET /stats/<f>``
        (:meth:`~taperoom.ephemeral.service.EphemeralService.stats`): the push shows
        the track's wear and stream count as ``/stats`` computes them.
    """

    def __init__(self, log: WearLog, bells: Doorbells,
                 stats: Callable[[str], TrackStatsPublic]) -> None:
        self.log = log
        self.bells = bells
        self.stats = stats

    def on_play(self, data: dict[str, Any]) -> None:
        """The bus reaction: :meth:`publish`."""
        self.publish(data)

    def publish(self, data: dict[str, Any]) -> LoggedPlay:
        """Log the push of one play and ring every doorbell.

        Runs in the thread that counted the play, after the count was saved and
        before the play is answered: a play that was answered is in the log. The
        track's totals are read while the log is write-locked, so pushes in log
        order never show the wear going back.

        Parameters
        ----------
        data : dict
            A :class:`~taperoom.events.WearPlayed` payload.

        Returns
        -------
        LoggedPlay
            The row written.
        """
        filename = str(data["filename"])

        def render(seq: int) -> str:
            stats = self.stats(filename)
            return WearPushPublic(
                type="play", seq=seq, filename=filename,
                segment_index=int(data["segment_index"]), play_count=int(data["play_count"]),
                overall_degradation=stats.overall_degradation,
                total_streams=stats.total_streams, counted_at=float(data["counted_at"]),
            ).model_dump_json()

        row = self.log.append(filename, render)
        self.bells.ring()
        return row
