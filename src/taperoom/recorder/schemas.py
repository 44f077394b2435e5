"""Request bodies and response shapes of the recorder API (contracts/recorder.md).

Request models validate what clients send (a validation error is a 400 with
``{"error": "Validation Error", "message", "details": [{field, message, type}],
"status_code": 400}``); the ``*_dict`` functions render rows in the contract's
JSON shapes, with every datetime as ISO 8601 in the configured zone, with its
offset (the original sent RFC 822 strings in GMT from some routes).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from taperoom.recorder.models import RecordingSchedule, RecordingSession, StreamConfiguration
from taperoom.recorder.naming import DEFAULT_PATTERN
from taperoom.recorder.naming import PATTERN_FIELDS as PATTERN_FIELDS  # re-exported
from taperoom.recorder.naming import check_pattern as check_pattern  # re-exported
from taperoom.recorder.urlpolicy import ALLOWED_SCHEMES

#: URL schemes the capture accepts (HLS playlists are plain http/https URLs).
STREAM_SCHEMES = ALLOWED_SCHEMES


def iso(value: datetime | None, zone: tzinfo) -> str | None:
    """ISO 8601 string of a stored naive-UTC datetime, in `zone`, with its offset."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).astimezone(zone).isoformat()


def check_stream_url(value: str) -> str:
    """Validate a stream URL: a scheme the capture supports and a host.

    Raises
    ------
    ValueError
        With a message naming what is wrong.
    """
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme.lower() not in STREAM_SCHEMES:
        raise ValueError(f"URL scheme must be one of {', '.join(sorted(STREAM_SCHEMES))}")
    if not parts.hostname:
        raise ValueError("URL has no host")
    return value


def check_destination(value: str) -> str:
    """Validate an upload destination (empty = keep recordings local only).

    Accepted: ``user@host:/path``, ``user@host:port:/path`` (the contract's forms),
    ``sftp://user@host[:port]/path`` and ``scp://...``.
    """
    from taperoom.recorder.transfer import Destination

    value = value.strip()
    if value:
        Destination.parse(value)  # InvalidInput (a ValueError) names what is wrong
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class StationCreate(_Body):
    """Body of ``POST /api/streams``."""

    name: str = Field(min_length=1, max_length=100)
    stream_url: str = Field(min_length=1, max_length=2000)
    artist: str = Field(min_length=1, max_length=100)
    album: str = Field(min_length=1, max_length=100)
    album_artist: str = Field(min_length=1, max_length=100)
    output_filename_pattern: str = Field(DEFAULT_PATTERN, min_length=1, max_length=200,
                                         validate_default=True)
    scp_destination: str = Field("", max_length=1000)
    bitrate_kbps: int | None = Field(None, ge=32, le=320)
    split_tracks: bool = False

    _url = field_validator("stream_url")(classmethod(lambda cls, v: check_stream_url(v)))
    _pattern = field_validator("output_filename_pattern")(
        classmethod(lambda cls, v: check_pattern(v)))
    _dest = field_validator("scp_destination")(classmethod(lambda cls, v: check_destination(v)))


class StationUpdate(_Body):
    """Body of ``PUT /api/streams/<id>``: every field optional."""

    name: str | None = Field(None, min_length=1, max_length=100)
    stream_url: str | None = Field(None, min_length=1, max_length=2000)
    artist: str | None = Field(None, min_length=1, max_length=100)
    album: str | None = Field(None, min_length=1, max_length=100)
    album_artist: str | None = Field(None, min_length=1, max_length=100)
    output_filename_pattern: str | None = Field(None, min_length=1, max_length=200)
    scp_destination: str | None = Field(None, max_length=1000)
    bitrate_kbps: int | None = Field(None, ge=32, le=320)
    split_tracks: bool | None = None

    @field_validator("stream_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else check_stream_url(v)

    @field_validator("output_filename_pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        return None if v is None else check_pattern(v)

    @field_validator("scp_destination")
    @classmethod
    def _dest(cls, v: str | None) -> str | None:
        return None if v is None else check_destination(v)


class UrlTest(_Body):
    """Body of ``POST /api/streams/test-url``."""

    stream_url: str = Field(min_length=1, max_length=2000)

    _url = field_validator("stream_url")(classmethod(lambda cls, v: check_stream_url(v)))


class ScheduleCreate(_Body):
    """Body of ``POST /api/schedules`` (the cron expression is checked by the scheduler)."""

    stream_config_id: int = Field(gt=0)
    cron_expression: str = Field(min_length=1, max_length=100)
    duration_minutes: int = Field(ge=1, le=1440)
    max_retries: int = Field(3, ge=0, le=10)
    is_active: bool = True


class ScheduleUpdate(_Body):
    """Body of ``PUT /api/schedules/<id>``."""

    stream_config_id: int | None = Field(None, gt=0)
    cron_expression: str | None = Field(None, min_length=1, max_length=100)
    duration_minutes: int | None = Field(None, ge=1, le=1440)
    is_active: bool | None = None
    max_retries: int | None = Field(None, ge=0, le=10)


class CronCheck(_Body):
    """Body of ``POST /api/schedules/validate-cron``."""

    cron_expression: str = Field(min_length=1, max_length=100)


class RecordNow(_Body):
    """Body of ``POST /api/streams/<id>/record``."""

    duration_seconds: float = Field(gt=0, le=24 * 3600)


class ImportBody(_Body):
    """Body of ``POST /api/streams/import`` (an export document)."""

    streams: list[dict[str, Any]] = Field(default_factory=list)
    schedules: list[dict[str, Any]] = Field(default_factory=list)
    version: str = "1.0"


class BackupCreate(_Body):
    """Body of ``POST /api/backup/create``."""

    backup_name: str | None = Field(None, max_length=100, pattern=r"^[\w.-]+$")
    include_artwork: bool = True


class BackupRef(_Body):
    """Body naming one backup file (restore, validate, delete)."""

    backup_filename: str = Field(min_length=1, max_length=200)
    overwrite_existing: bool = False


def station_dict(row: StreamConfiguration, zone: tzinfo) -> dict[str, Any]:
    """``StreamConfigurationResponse`` of the contract (plus ``bitrate_kbps``, ``split_tracks``)."""
    return {
        "id": row.id, "name": row.name, "stream_url": row.stream_url, "artist": row.artist,
        "album": row.album, "album_artist": row.album_artist,
        "artwork_path": row.artwork_path,
        "output_filename_pattern": row.output_filename_pattern,
        "scp_destination": row.scp_destination, "bitrate_kbps": row.bitrate_kbps,
        "split_tracks": bool(row.split_tracks),
        "created_at": iso(row.created_at, zone), "updated_at": iso(row.updated_at, zone),
    }


def schedule_dict(row: RecordingSchedule, zone: tzinfo) -> dict[str, Any]:
    """``RecordingScheduleResponse`` of the contract."""
    return {
        "id": row.id, "stream_config_id": row.stream_config_id,
        "cron_expression": row.cron_expression, "duration_minutes": row.duration_minutes,
        "is_active": bool(row.is_active), "next_run_time": iso(row.next_run_time, zone),
        "last_run_time": iso(row.last_run_time, zone), "retry_count": row.retry_count,
        "max_retries": row.max_retries, "created_at": iso(row.created_at, zone),
        "updated_at": iso(row.updated_at, zone),
    }


def session_dict(row: RecordingSession, zone: tzinfo) -> dict[str, Any]:
    """``RecordingSessionResponse`` of the contract, plus what the capture learnt."""
    return {
        "id": row.id, "schedule_id": row.schedule_id, "start_time": iso(row.start_time, zone),
        "end_time": iso(row.end_time, zone), "status": row.status,
        "output_file_path": row.output_file_path, "error_message": row.error_message,
        "file_size_bytes": row.file_size_bytes, "transfer_status": row.transfer_status,
        "transfer_error_message": row.transfer_error_message,
        "transfer_attempts": row.transfer_attempts, "remote_path": row.remote_path,
        "transferred_at": iso(row.transferred_at, zone),
        "stream_config_id": row.stream_config_id, "station_name": row.station_name,
        "trigger": row.trigger, "planned_duration_seconds": row.planned_duration_seconds,
        "duration_seconds": row.duration_seconds, "reconnects": row.reconnects,
        "gaps": list(row.gaps or []), "cue_sheet_path": row.cue_sheet_path,
        "stream_copy": row.stream_copy, "source_codec": row.source_codec,
        "local_deleted": bool(row.local_deleted),
    }
