"""Bodies of ``GET /api/analytics`` (JSON; the CSV form has the columns of :data:`CSV_COLUMNS`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Header row of the CSV form, one row per bucket after it.
CSV_COLUMNS = ("bucket_start", "bucket_start_unix", "plays", "degradation")

BucketName = Literal["minute", "hour", "day"]


class _Public(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnalyticsBucketPublic(_Public):
    """One time bucket."""

    start: str = Field(description="Start of the bucket, ISO 8601 UTC (2026-01-01T12:00:00Z)")
    start_unix: int = Field(description="Start of the bucket, Unix seconds")
    plays: int = Field(description="Plays counted in the bucket (within from..to)")
    degradation: float | None = Field(
        description="Overall degradation (percent, as in /stats) at the end of the bucket: "
                    "the track's, as recorded with its last play by then; for all tracks, "
                    "the mean over the tracks played by then. Null before any recorded play")


class AnalyticsTrackPublic(_Public):
    """One track's totals over the range."""

    filename: str
    plays: int = Field(description="Its plays from `from` to `to`")
    degradation: float | None = Field(
        description="Its overall degradation (percent) recorded with its last play up to "
                    "`to`; null when none is recorded")


class AnalyticsPublic(_Public):
    """Answer of ``GET /api/analytics``: plays and degradation over time."""

    filename: str | None = Field(description="The track, or null for all tracks")
    bucket: BucketName = Field(description="Size of the buckets (UTC: days start at 00:00Z)")
    bucket_seconds: int = Field(description="Length of a bucket, seconds")
    from_: float = Field(alias="from", serialization_alias="from",
                         description="Start of the range, Unix seconds (default: the first "
                                     "recorded play, or an hour before `to` when that "
                                     "is earlier)")
    to: float = Field(description="End of the range, Unix seconds (default: now)")
    total_plays: int = Field(description="Plays from `from` to `to` (the sum of the buckets)")
    buckets: list[AnalyticsBucketPublic] = Field(
        description="Every bucket from the one holding `from` to the one holding `to`")
    tracks: list[AnalyticsTrackPublic] = Field(
        description="Each track with a recorded play up to `to`, by file name")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
