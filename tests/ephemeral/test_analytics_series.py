"""The pure helpers of the analytics: times, bucket sizes, series from rows."""

from __future__ import annotations

import pytest

from taperoom.ephemeral.analytics.series import (
    Point,
    TrackTotal,
    bucket_count,
    build_series,
    choose_bucket,
    parse_time,
)
from taperoom.errors import InvalidInput


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0.0),
    ("1767225600.5", 1767225600.5),
    ("2026-01-01", 1767225600.0),
    ("2026-01-01T12:00:00Z", 1767268800.0),
    ("2026-01-01T13:00:00+01:00", 1767268800.0),
    (" 2026-01-01T12:00:00 ", 1767268800.0),
])
def test_times_are_unix_seconds_or_iso(text: str, seconds: float) -> None:
    assert parse_time(text, name="from") == seconds


@pytest.mark.parametrize("text", ["", "soon", "nan", "inf", "-1", "1e20", "0001-01-01",
                                  "2026-13-01", "10000-01-01"])
def test_bad_times_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^to "):
        parse_time(text, name="to")


def test_auto_bucket_is_the_smallest_with_at_most_240() -> None:
    assert choose_bucket(0, 239 * 60, "auto") == "minute"
    assert bucket_count(0, 240 * 60, 60) == 241
    assert choose_bucket(0, 240 * 60, "auto") == "hour"
    assert choose_bucket(0, 239 * 3600, "auto") == "hour"
    assert choose_bucket(0, 240 * 3600, "auto") == "day"
    assert choose_bucket(0, 9999 * 86400, "auto") == "day"
    with pytest.raises(InvalidInput, match="at most 10000"):
        choose_bucket(0, 10_000 * 86400, "auto")
    with pytest.raises(InvalidInput, match="bucket must be"):
        choose_bucket(0, 1, "week")


def test_series_carries_each_tracks_degradation_and_means_them() -> None:
    """Degradation at the end of each bucket: each track's last recorded value (from
    `before` until its first row), the mean over the tracks known by then."""
    rows = [("a", 1, 2, 1.0), ("a", 3, 1, 2.0), ("b", 3, 4, 4.0), ("c", 4, 1, None)]
    points, totals = build_series(rows, origin=600.0, width=60, count=6, before={})
    assert points == [Point(600.0, 0, None), Point(660.0, 2, 1.0), Point(720.0, 0, 1.0),
                      Point(780.0, 5, 3.0), Point(840.0, 1, 3.0), Point(900.0, 0, 3.0)]
    assert totals == [TrackTotal("a", 3, 2.0), TrackTotal("b", 4, 4.0), TrackTotal("c", 1, None)]
    points, totals = build_series([("a", 1, 1, 5.0)], origin=0.0, width=60, count=2,
                                  before={"a": 3.0, "z": 1.0})
    assert [p.degradation for p in points] == [2.0, 3.0]
    assert totals == [TrackTotal("a", 1, 5.0), TrackTotal("z", 0, 1.0)]
