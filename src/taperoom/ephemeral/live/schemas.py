"""Messages of the live wear routes (``/ws/wear`` and ``/events/wear``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WearPushPublic(_Message):
    """One counted play, pushed to everyone listening to the track (SSE event ``play``)."""

    type: Literal["play"]
    seq: int = Field(description="Number of the play in the server's log, rising; SSE `id`, "
                                 "and what `?since=` / `Last-Event-ID` resume after")
    filename: str
    segment_index: int = Field(description="Segment played")
    play_count: int = Field(description="That segment's play count after this play")
    overall_degradation: float = Field(
        description="The track's min(mean(segment_play_counts) x DEGRADATION_RATE, 100), "
                    "percent, read after this play")
    total_streams: int = Field(description="The track's streams started, read after this play")
    counted_at: float = Field(description="Unix time (s, server clock) when the play was saved")


class WearHelloPublic(_Message):
    """First message of a subscription (SSE event ``hello``)."""

    type: Literal["hello"]
    seq: int = Field(description="Last play logged when the subscription started: pushes "
                                 "follow from there (or from `since`, when given)")
    filename: str | None = Field(description="The subscription's track, null for all tracks")


class WearResyncPublic(_Message):
    """The subscriber missed plays (it lagged, or resumed after plays no longer kept):
    read ``GET /stats/<f>`` (or ``GET /tracks``) again; pushes go on after it
    (SSE event ``resync``)."""

    type: Literal["resync"]
    seq: int = Field(description="Plays up to this number may be missing")
