"""Request and response shapes of the ephemeral API, as its OpenAPI document declares them.

The bodies themselves are the contract's (contracts/ephemeral.md) and are built
and parsed by the service; these models and response tables only describe them,
so that ``/openapi.json`` tells clients (and schema-driven test tools) what each
route really takes and answers: the ``/degrade`` body, which the plain-ASGI hot
path parses ahead of FastAPI, the audio routes' ``audio/wav`` bodies with their
206 and 416 answers (RFC 9110 §14, §15.3.7, §15.5.17), and the ``{"error": ...}``
body of every error (validation errors included, which this app answers with 400,
not FastAPI's 422).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class DegradeRequest(BaseModel):
    """Body of POST /degrade/<f>; other keys are ignored."""

    segment_index: int = Field(
        ge=0, description="Segment played, 0 <= segment_index < total_segments (a JSON "
                          "integer; booleans and floats are refused)")


class DegradeResult(BaseModel):
    """Answer of POST /degrade/<f>."""

    success: bool
    segment_index: int
    play_count: int = Field(description="The segment's play count after this play")


class ErrorBody(BaseModel):
    """Body of every error answer (the contract's {"error": "..."})."""

    error: str


class WaveformPoint(BaseModel):
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

    Each answers :class:`ErrorBody` as ``application/json``. The ``4XX`` entry
    also keeps FastAPI from declaring its own 422 validation error, which this
    app never sends (validation errors are 400 here).
    """
    keys: list[int | str] = [*statuses, "4XX"]
    return {key: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS[key]} for key in keys}


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
