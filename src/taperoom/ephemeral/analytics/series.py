"""Pure helpers of the analytics: time bounds, bucket sizes, and the series built from rows.

Nothing here reads the clock, files or the database: the service passes times
and rows in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from taperoom.errors import InvalidInput

#: Bucket sizes by name, in seconds (UTC buckets: a day starts at 00:00 UTC).
BUCKET_SECONDS: dict[str, int] = {"minute": 60, "hour": 3600, "day": 86400}
#: ``bucket=auto`` takes the smallest size that gives at most this many buckets.
AUTO_MAX_BUCKETS = 240
#: No answer has more buckets than this (a longer range or a finer size is a 400).
MAX_BUCKETS = 10_000
#: Latest time accepted (9999-12-31T23:59:59Z), in Unix seconds.
LATEST = 253_402_300_799.0


def parse_time(value: str, *, name: str) -> float:
    """Read a ``from``/``to`` parameter: Unix seconds or an ISO 8601 date or time.

    Parameters
    ----------
    value : str
        ``1767225600``, ``1767225600.5``, ``2026-01-01``, ``2026-01-01T12:00:00Z``,
        ``2026-01-01T13:00:00+01:00``; a time without an offset is UTC.
    name : str
        The parameter's name, for the error message.

    Returns
    -------
    float
        Unix seconds, in ``[0, LATEST]``.

    Raises
    ------
    InvalidInput
        Neither form, not finite, or outside 1970-01-01 to 9999-12-31.
    """
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"{name} must be Unix seconds or an ISO 8601 time "
                               f"(2026-01-01T12:00:00Z), not {value!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        try:
            seconds = when.timestamp()
        except (OverflowError, ValueError):
            raise InvalidInput(f"{name} is out of range: {value!r}") from None
    if not math.isfinite(seconds) or not 0 <= seconds <= LATEST:
        raise InvalidInput(f"{name} must lie between 1970-01-01 and 9999-12-31, not {value!r}")
    return seconds


def choose_bucket(start: float, end: float, bucket: str) -> str:
    """The bucket size to use for ``[start, end]``.

    Parameters
    ----------
    start, end : float
        Unix seconds, ``start <= end``.
    bucket : str
        ``minute``, ``hour``, ``day``, or ``auto``: the smallest of those three
        that gives at most :data:`AUTO_MAX_BUCKETS` buckets (``day`` when none does).

    Returns
    -------
    str
        A key of :data:`BUCKET_SECONDS`.

    Raises
    ------
    InvalidInput
        An unknown size, or more than :data:`MAX_BUCKETS` buckets.
    """
    if bucket == "auto":
        chosen = next((name for name, width in BUCKET_SECONDS.items()
                       if bucket_count(start, end, width) <= AUTO_MAX_BUCKETS), "day")
    elif bucket in BUCKET_SECONDS:
        chosen = bucket
    else:
        raise InvalidInput(f"bucket must be auto, minute, hour or day, not {bucket!r}")
    count = bucket_count(start, end, BUCKET_SECONDS[chosen])
    if count > MAX_BUCKETS:
        raise InvalidInput(f"{count} {chosen} buckets from `from` to `to`: at most "
                           f"{MAX_BUCKETS} are answered (narrow the range or take a larger "
                           "bucket)")
    return chosen


def bucket_origin(start: float, width: int) -> float:
    """Start of the bucket holding `start`: buckets are aligned on multiples of `width`
    seconds since the Unix epoch (so days start at 00:00 UTC)."""
    return math.floor(start / width) * width


def bucket_count(start: float, end: float, width: int) -> int:
    """Number of buckets of `width` seconds from the one holding `start` to the one
    holding `end` (both included)."""
    origin = bucket_origin(start, width)
    return int((end - origin) // width) + 1


def iso_utc(seconds: float) -> str:
    """``2026-01-01T12:00:00Z`` (whole seconds, UTC)."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Point:
    """One bucket of a series.

    Attributes
    ----------
    start : float
        Unix seconds at which the bucket starts.
    plays : int
        Plays in the bucket (within the asked range).
    degradation : float or None
        Percent at the end of the bucket (see :func:`build_series`); None before
        any recorded play.
    """

    start: float
    plays: int
    degradation: float | None


@dataclass(frozen=True)
class TrackTotal:
    """One track's plays in the range and its degradation at its end.

    Attributes
    ----------
    filename : str
        The track.
    plays : int
        Its plays in the range.
    degradation : float or None
        Recorded with its last play up to the end of the range (None: none recorded).
    """

    filename: str
    plays: int
    degradation: float | None


def build_series(rows: Iterable[tuple[str, int, int, float | None]], *, origin: float,
                 width: int, count: int, before: dict[str, float]
                 ) -> tuple[list[Point], list[TrackTotal]]:
    """Buckets of plays and degradation from per-track, per-bucket rows.

    The degradation of a bucket is that of the tracks at its end: each track's
    degradation is the one recorded with its last play up to then (carried
    through buckets without plays; `before` gives each track's value at the
    start of the range). With several tracks it is their mean, over the tracks
    that have a recorded play by then (tracks never played are left out, so a
    new track does not drag the mean down before its first play).

    Parameters
    ----------
    rows : iterable of (filename, bucket, plays, degradation)
        Sorted by bucket; `bucket` in ``[0, count)``; `degradation` that of the
        track's last play in the bucket (None: not recorded).
    origin : float
        Unix seconds at which bucket 0 starts.
    width : int
        Bucket length, seconds.
    count : int
        Number of buckets.
    before : dict
        Degradation of each track at the start of the range, by file name.

    Returns
    -------
    points : list of Point
        `count` buckets, in time order.
    totals : list of TrackTotal
        Each track with a row or a value in `before`, sorted by file name.
    """
    current = dict(before)
    plays_of: dict[str, int] = dict.fromkeys(before, 0)
    per_bucket: list[list[tuple[str, int, float | None]]] = [[] for _ in range(count)]
    for filename, bucket, plays, degradation in rows:
        if not 0 <= bucket < count:
            raise ValueError(f"bucket {bucket} outside [0, {count})")
        per_bucket[bucket].append((filename, plays, degradation))
    points = []
    for index, found in enumerate(per_bucket):
        total = 0
        for filename, plays, degradation in found:
            total += plays
            plays_of[filename] = plays_of.get(filename, 0) + plays
            if degradation is not None:
                current[filename] = degradation
        mean = sum(current.values()) / len(current) if current else None
        points.append(Point(origin + index * width, total, mean))
    totals = [TrackTotal(name, plays_of[name], current.get(name)) for name in sorted(plays_of)]
    return points, totals
