"""Use cases of the analytics: plays and degradation over time, as JSON bodies or CSV."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable

from taperoom.ephemeral.analytics.repository import PlayEventRepository
from taperoom.ephemeral.analytics.schemas import (
    CSV_COLUMNS,
    AnalyticsBucketPublic,
    AnalyticsPublic,
    AnalyticsTrackPublic,
)
from taperoom.ephemeral.analytics.series import (
    BUCKET_SECONDS,
    bucket_count,
    bucket_origin,
    build_series,
    choose_bucket,
    iso_utc,
    parse_time,
)
from taperoom.ephemeral.schemas import TrackStatsPublic
from taperoom.errors import InvalidInput, NotFound

#: Shortest range shown when `from` is not given (seconds before `to`).
DEFAULT_SPAN = 3600.0


class AnalyticsService:
    """Plays per time bucket and the growth of degradation, per track or for all tracks.

    Parameters
    ----------
    repository : PlayEventRepository
        The recorded play events.
    stats : callable
        ``stats(filename)`` (:meth:`~taperoom.ephemeral.service.EphemeralService.stats`):
        tells which tracks exist (it raises :class:`~taperoom.errors.NotFound`) and
        their names as stored.
    clock : callable
        Unix time now (``time.time``); the default end of a range.
    """

    def __init__(self, repository: PlayEventRepository,
                 stats: Callable[[str], TrackStatsPublic],
                 clock: Callable[[], float] = time.time) -> None:
        self.repository = repository
        self.stats = stats
        self.clock = clock

    def track_name(self, filename: str) -> str:
        """The stored name of track `filename`: a track in ``AUDIO_DIR`` or one with
        recorded plays (a track removed since keeps its history).

        Raises
        ------
        NotFound
            Neither ("Track not found").
        """
        try:
            return self.stats(filename).filename
        except NotFound:
            if self.repository.has_plays(filename):
                return filename
            raise NotFound("Track not found") from None

    def report(self, filename: str | None = None, *, start: str | None = None,
               end: str | None = None, bucket: str = "auto") -> AnalyticsPublic:
        """Body of ``GET /api/analytics``.

        Parameters
        ----------
        filename : str, optional
            One track; None or empty for all tracks.
        start, end : str, optional
            ``from`` and ``to``: Unix seconds or ISO 8601 (UTC when no offset is
            given; see :func:`~.series.parse_time`). `end` defaults to now, `start`
            to the first recorded play (of the track), or :data:`DEFAULT_SPAN`
            before `end` when that is earlier (or none is recorded).
        bucket : str
            ``auto``, ``minute``, ``hour`` or ``day`` (:func:`~.series.choose_bucket`).

        Raises
        ------
        NotFound
            An unknown track ("Track not found").
        InvalidInput
            A bad `start`, `end` or `bucket`, `start` after `end`, or too many buckets.
        """
        name = self.track_name(filename) if filename else None
        to = parse_time(end, name="to") if end else self.clock()
        if start:
            from_ = parse_time(start, name="from")
        else:
            span = self.repository.span(name)
            from_ = to - DEFAULT_SPAN if span is None else min(span[0], to - DEFAULT_SPAN)
        if from_ > to:
            raise InvalidInput("`from` must not be after `to`")
        size = choose_bucket(from_, to, bucket)
        width = BUCKET_SECONDS[size]
        origin = bucket_origin(from_, width)
        count = bucket_count(from_, to, width)
        rows = self.repository.buckets(name, start=from_, end=to, origin=origin, width=width)
        before = self.repository.degradation_before(name, from_)
        points, totals = build_series(
            ((r.filename, r.bucket, r.plays, r.degradation) for r in rows),
            origin=origin, width=width, count=count, before=before)
        return AnalyticsPublic(
            filename=name, bucket=size, bucket_seconds=width, from_=from_, to=to,
            total_plays=sum(p.plays for p in points),
            buckets=[AnalyticsBucketPublic(start=iso_utc(p.start), start_unix=int(p.start),
                                           plays=p.plays, degradation=p.degradation)
                     for p in points],
            tracks=[AnalyticsTrackPublic(filename=t.filename, plays=t.plays,
                                         degradation=t.degradation) for t in totals])

    @staticmethod
    def to_csv(report: AnalyticsPublic) -> str:
        """The buckets of `report` as CSV (RFC 4180: CRLF line ends): a header row of
        :data:`~.schemas.CSV_COLUMNS`, then one row per bucket; an unknown degradation
        is an empty field."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for b in report.buckets:
            writer.writerow([b.start, b.start_unix, b.plays,
                             "" if b.degradation is None else repr(b.degradation)])
        return out.getvalue()
