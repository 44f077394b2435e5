"""Request and response bodies of the ephemeral API, and the OpenAPI tables that declare them.

The bodies are the contract's (contracts/ephemeral.md): each ``...Public``
model names every key its route sends, in the contract's order, with its type,
and refuses any other key (``extra="forbid"``), so that nothing reaches the wire
that the schema does not name and ``/openapi.json`` documents every answer. The
service builds them from explicit fields. The response tables declare what the
models cannot: the ``/degrade`` body, which the plain-ASGI hot path parses ahead
of FastAPI, the audio routes' ``audio/wav`` bodies with their 206 and 416
answers (RFC 9110 §14, §15.3.7, §15.5.17), and the ``{"error": ...}`` body of
every error (validation errors included, which this app answers with 400, not
FastAPI's 422).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Public(BaseModel):
    """Base of the response bodies: exactly the declared keys, in declaration order."""

    model_config = ConfigDict(extra="forbid")


class DegradeRequest(BaseModel):
    """Body of POST /degrade/<f>; other keys are ignored."""

    segment_index: int = Field(
        ge=0, description="Segment played, 0 <= segment_index < total_segments (a JSON "
                          "integer; booleans and floats are refused)")


class StatusPublic(_Public):
    """Answer of ``GET /``: the contract's service status."""

    status: str = Field(description='Always "running"')
    service: str = Field(description='Always "Ephemeral Audio Decay System"')
    audio_dir: str = Field(description="AUDIO_DIR as configured")
    metadata_dir: str = Field(description="METADATA_DIR as configured")
    degradation_rate: float = Field(description="DEGRADATION_RATE, percent dropout per play")


class TrackPublic(_Public):
    """One track of ``GET /tracks``."""

    filename: str
    title: str = Field(description="The file name without its extension")
    duration: float = Field(description="Seconds (frames / sample rate)")
    overall_degradation: float = Field(
        description="min(mean(segment_play_counts) x DEGRADATION_RATE, 100), percent")
    total_streams: int = Field(description="Streams started (GET /stream from byte 0)")
    total_chunks: int = Field(description="ceil(duration / 5): chunks of /stream/<f>/chunk/<i>")


class TrackStatsPublic(_Public):
    """Answer of ``GET /stats/<f>`` and ``POST /reset/<f>``."""

    filename: str
    title: str = Field(description="The file name without its extension")
    duration: float = Field(description="Seconds (frames / sample rate)")
    total_segments: int = Field(description="ceil(duration / segment_duration)")
    segment_duration: float = Field(description="Seconds per segment (SEGMENT_DURATION)")
    segment_play_counts: list[int] = Field(description="Plays of each segment, in order")
    overall_degradation: float = Field(
        description="min(mean(segment_play_counts) x DEGRADATION_RATE, 100), percent")
    total_streams: int = Field(description="Streams started (GET /stream from byte 0)")
    created_at: str | None = Field(
        description="When the metadata was made, ISO 8601 UTC (2025-11-09T12:00:00.123456Z)")


class DegradePublic(_Public):
    """Answer of POST /degrade/<f>."""

    success: bool
    segment_index: int
    play_count: int = Field(description="The segment's play count after this play")


class WearModelPublic(_Public):
    """One wear model of ``GET /wear-models``."""

    name: str = Field(description="What a track's wear_model and WEAR_MODEL take")
    description: str = Field(description="What the model does to a segment on each play")
    default: bool = Field(description="True for WEAR_MODEL, the model of tracks not given one")


class TrackWearModelPublic(_Public):
    """The wear model of one track."""

    filename: str
    wear_model: str = Field(description="Name of the model its plays use")
    own: bool = Field(description="True when the curator set it; false when it is WEAR_MODEL's")


class TrackWearModelUpdate(BaseModel):
    """Body setting a track's wear model; null gives it back ``WEAR_MODEL``'s."""

    wear_model: str | None = Field(description="A name from GET /wear-models, or null")


class ErrorPublic(_Public):
    """Body of every error answer (the contract's {"error": "..."})."""

    error: str


class WaveformPointPublic(_Public):
    """One peak of GET /waveform/<f>: the mono mix normalised to [-1, 1]."""

    min: float
    max: float


#: Body of ``POST /degrade/<f>`` for the ``requestBody`` of its OpenAPI operation.
DEGRADE_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": DegradeRequest.model_json_schema()}},
    }
}

_ERROR_DESCRIPTIONS: dict[int | str, str] = {
    400: "Bad parameter or body",
    401: "Missing or wrong admin token",
    403: "Admin routes are disabled (no ADMIN_TOKEN)",
    404: "No such track, or a name that leaves AUDIO_DIR",
    409: "A play count would not fit in ten digits",
    413: "Request body larger than 64 KiB",
    422: "Not a WAV file this app can read",
    429: "Over DEGRADE_RATE_LIMIT",
    503: "A lock was not granted within LOCK_TIMEOUT",
    "4XX": "Any other client error (405, for instance)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries of the given error statuses, plus ``4XX``.

    Each answers :class:`ErrorPublic` as ``application/json``. The ``4XX`` entry
    also keeps FastAPI from declaring its own 422 validation error, which this
    app never sends (validation errors are 400 here).
    """
    keys: list[int | str] = [*statuses, "4XX"]
    return {key: {"model": ErrorPublic, "description": _ERROR_DESCRIPTIONS[key]} for key in keys}


_WAV = {"schema": {"type": "string", "format": "binary"}}
_HEADER = {"schema": {"type": "string"}}

#: ``responses`` of ``GET|HEAD /stream/<f>`` (Starlette's file response, or a worn stream).
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The WAV file as it is now; with degrade=1, a WAV from `start` "
                       "paced at real time, each segment worn once sent",
        "content": {"audio/wav": _WAV},
        "headers": {"Accept-Ranges": {**_HEADER, "description": "bytes"},
                    "Cache-Control": {**_HEADER, "description": "no-cache"}},
    },
    206: {
        "description": "The requested byte ranges (RFC 9110 §15.3.7): one range as "
                       "audio/wav, several as multipart/byteranges",
        "content": {"audio/wav": _WAV, "multipart/byteranges": _WAV},
        "headers": {"Content-Range": {**_HEADER,
                                      "description": "bytes <first>-<last>/<size>"}},
    },
    416: {
        "model": ErrorPublic,
        "description": "No requested range overlaps the file (an invalid Range header is "
                       "ignored instead: 200 with the whole file)",
        "headers": {"Content-Range": {**_HEADER, "description": "bytes */<size>"}},
    },
    **error_responses(400, 404, 503),
}

#: ``responses`` of ``GET /stream/<f>/chunk/<i>``.
CHUNK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Five seconds of the track from chunk i, as a complete WAV file",
          "content": {"audio/wav": _WAV}},
    **error_responses(400, 404, 422),
}
