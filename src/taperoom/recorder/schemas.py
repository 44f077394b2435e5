"""Request bodies and response shapes of the recorder API (contracts/recorder.md).

Request models validate what clients send (a validation error is a 400 with
``{"error": "Validation Error", "message", "details": [{field, message, type}],
"status_code": 400}``, :func:`error_body`). The ``*_dict`` functions render rows
in the contract's JSON shapes, field by field, with every datetime as ISO 8601 in
the configured zone, with its offset (the original sent RFC 822 strings in GMT from
some routes). The ``...Public`` models are what each route declares it answers:
the routes validate their answers against them (no key the schema does not name
reaches the wire: ``extra="forbid"``), and ``/openapi.json`` documents them. Their
fields follow the order, types and nulls of the contract's bodies exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from http import HTTPStatus
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from taperoom.recorder.models import (
    RecordingSchedule,
    RecordingSession,
    SessionStatus,
    Station,
    TransferStatus,
)
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

    station_id: int = Field(gt=0, alias="stream_config_id")
    cron_expression: str = Field(min_length=1, max_length=100)
    duration_minutes: int = Field(ge=1, le=1440)
    max_retries: int = Field(3, ge=0, le=10)
    is_active: bool = True


class ScheduleUpdate(_Body):
    """Body of ``PUT /api/schedules/<id>``."""

    station_id: int | None = Field(None, gt=0, alias="stream_config_id")
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


# -- answers -----------------------------------------------------------------------------

#: An instant as the API sends it: ISO 8601 in ``TZ`` with its offset.
IsoTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
#: Health of a part, or of the whole recorder.
HealthState = Literal["healthy", "degraded", "unhealthy"]


class _Public(BaseModel):
    """An answer body: exactly these keys, in this order."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetailPublic(_Public):
    """One field of a request that failed validation."""

    field: str
    message: str
    type: str


class ErrorPublic(_Public):
    """The contract's error body; request validation errors add ``details``."""

    error: str = Field(description="HTTP reason phrase, or \"Validation Error\"")
    message: str
    details: list[ErrorDetailPublic] | None = Field(
        None, description="Only on request validation errors")
    status_code: int


class MessagePublic(_Public):
    """``{"message"}`` (deletions)."""

    message: str


class HealthPublic(_Public):
    """``GET /health`` and ``GET /api/health``."""

    status: Literal["healthy"]
    service: str
    version: str


class StationPublic(_Public):
    """The contract's ``StreamConfigurationResponse`` (plus ``bitrate_kbps`` and
    ``split_tracks``)."""

    id: int
    name: str
    stream_url: str
    artist: str
    album: str
    album_artist: str
    artwork_path: str | None
    output_filename_pattern: str
    scp_destination: str
    bitrate_kbps: int | None
    split_tracks: bool
    created_at: IsoTime
    updated_at: IsoTime


class SchedulePublic(_Public):
    """The contract's ``RecordingScheduleResponse``."""

    id: int
    stream_config_id: int
    cron_expression: str
    duration_minutes: int
    is_active: bool
    next_run_time: IsoTime | None
    last_run_time: IsoTime | None
    retry_count: int
    max_retries: int
    created_at: IsoTime
    updated_at: IsoTime


class ExportedSchedulePublic(SchedulePublic):
    """A schedule of an export document, with the name of its station."""

    stream_name: str | None


class GapPublic(_Public):
    """A stretch of a recording without audio."""

    at_seconds: float = Field(description="Position in the recording's audio, s")
    started_at: IsoTime | None = None
    length_seconds: float = Field(description="Wall-clock length, s")
    reason: str | None = None


class ProgressPublic(_Public):
    """Live progress of a session recording now."""

    session_id: int
    elapsed_seconds: float
    audio_seconds: float
    bytes_written: int
    reconnects: int
    connected: bool
    title: str | None
    percent: float


class SessionPublic(_Public):
    """The contract's ``RecordingSessionResponse``, plus what the capture learnt."""

    id: int
    schedule_id: int | None
    start_time: IsoTime
    end_time: IsoTime | None
    status: SessionStatus
    output_file_path: str | None
    error_message: str | None
    file_size_bytes: int | None
    transfer_status: TransferStatus
    transfer_error_message: str | None
    transfer_attempts: int
    remote_path: str | None
    transferred_at: IsoTime | None
    stream_config_id: int | None
    station_name: str
    trigger: str
    planned_duration_seconds: float
    duration_seconds: float | None
    reconnects: int
    gaps: list[GapPublic]
    cue_sheet_path: str | None
    stream_copy: bool | None
    source_codec: str | None
    local_deleted: bool


class LiveSessionPublic(SessionPublic):
    """A session with its live progress (None once it no longer records here)."""

    progress: ProgressPublic | None


class ConnectionTestPublic(_Public):
    """What a stream URL answered (``probe_stream_url``)."""

    success: bool
    message: str
    content_type: str | None
    codec: str | None
    bitrate: int | None = Field(description="kbit/s")
    sample_rate: int | None = Field(description="Hz")
    channels: int | None
    icy_name: str | None
    status_code: int | None
    stream_url: str = Field(description="The URL finally read, after playlists")


class UrlTestPublic(_Public):
    """``POST /api/streams/test-url``."""

    stream_url: str
    connection_test: ConnectionTestPublic


class StationTestPublic(_Public):
    """``POST /api/streams/<id>/test``."""

    stream_id: int
    stream_url: str
    connection_test: ConnectionTestPublic


class ArtworkPublic(_Public):
    """``POST /api/streams/<id>/artwork``."""

    stream_id: int
    artwork_path: str
    filename: str
    file_size: int
    message: str


class ArtworkDeletedPublic(_Public):
    """``DELETE /api/streams/<id>/artwork``."""

    stream_id: int
    message: str


class ExportPublic(_Public):
    """``GET /api/streams/export``: the configuration document."""

    streams: list[StationPublic]
    schedules: list[ExportedSchedulePublic]
    exported_at: IsoTime
    version: str


class ImportPublic(_Public):
    """``POST /api/streams/import``."""

    imported_streams: int
    imported_schedules: int
    stream_ids: list[int]
    schedule_ids: list[int]
    errors: list[str]
    message: str


class CronCheckPublic(_Public):
    """``POST /api/schedules/validate-cron`` of a valid expression."""

    valid: Literal[True]
    cron_expression: str
    next_run_time: IsoTime | None
    next_runs: list[IsoTime]
    description: str
    timezone: str


class CronInvalidPublic(_Public):
    """``POST /api/schedules/validate-cron`` of an invalid expression (400)."""

    valid: Literal[False]
    error: Literal["Invalid cron expression format"]
    message: str


class ScheduleActivationPublic(_Public):
    """``POST /api/schedules/<id>/activate`` and ``/deactivate``."""

    schedule_id: int
    is_active: bool
    message: str
    next_run_time: IsoTime | None


class NextRunPublic(_Public):
    """``GET /api/schedules/<id>/next-run``."""

    schedule_id: int
    next_run_time: IsoTime | None
    is_active: bool
    cron_expression: str


class StatisticsPublic(_Public):
    """``GET /api/sessions/statistics``."""

    total_sessions: int
    completed_sessions: int
    failed_sessions: int
    active_sessions: int
    success_rate: float = Field(description="Percent of finished sessions")


class ActiveSessionsPublic(_Public):
    """``GET /api/sessions/active``."""

    active_sessions: list[LiveSessionPublic]
    count: int


class StopPublic(_Public):
    """``POST /api/sessions/<id>/stop``."""

    message: str
    session_id: int


class DatabaseHealthPublic(_Public):
    """Health of the database (``response_ms`` only when it answered)."""

    status: HealthState
    message: str
    response_ms: float | None = None


class SchedulerHealthPublic(_Public):
    """Health of the cron scheduler."""

    status: HealthState
    message: str
    running: bool
    jobs: int | None


class QueueHealthPublic(_Public):
    """Health of the upload queue."""

    status: HealthState
    message: str
    pending: int | None
    consumer_running: bool | None


class DiskHealthPublic(_Public):
    """Health of ``RECORDINGS_DIR``'s file system (figures only when it can be read)."""

    status: HealthState
    message: str
    path: str
    free_gb: float | None = None
    total_gb: float | None = None
    percent: float | None = None
    min_free_mb: float | None = None


class ComponentsPublic(_Public):
    """Health of every part a recording depends on."""

    database: DatabaseHealthPublic
    scheduler: SchedulerHealthPublic
    upload_queue: QueueHealthPublic
    disk: DiskHealthPublic


class SystemHealthPublic(_Public):
    """``GET /api/system/health``."""

    status: HealthState
    message: str
    timestamp: IsoTime
    components: ComponentsPublic


class SystemStatusPublic(_Public):
    """``GET /api/system/status``: health plus resource figures (disk of
    ``RECORDINGS_DIR``, memory of the machine)."""

    status: HealthState
    message: str
    timestamp: IsoTime
    uptime_seconds: float
    active_recordings: int
    total_recordings: int
    cpu_percent: float
    memory_percent: float
    memory_used_mb: float
    memory_total_mb: float
    disk_percent: float
    disk_used_gb: float
    disk_total_gb: float
    disk_free_gb: float
    components: ComponentsPublic


class SamplePublic(_Public):
    """One resource metrics sample."""

    timestamp: IsoTime
    epoch: float = Field(description="Unix time, s")
    cpu_percent: float
    memory_percent: float
    memory_used_mb: float
    memory_total_mb: float
    disk_percent: float
    disk_used_gb: float
    disk_total_gb: float
    disk_free_gb: float
    process_rss_mb: float
    process_cpu_percent: float
    threads: int
    active_recordings: int | None


class MetricsPublic(_Public):
    """``GET /api/system/metrics``: the samples of the last ``hours``."""

    metrics: list[SamplePublic]
    count: int
    hours: float


class FigurePublic(_Public):
    """Average, least, greatest and latest value of one metric."""

    avg: float
    min: float
    max: float
    latest: float


class MetricsSummaryPublic(_Public):
    """``GET /api/system/metrics?summary=true``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    hours: float
    count: int
    from_: IsoTime | None = Field(alias="from")
    to: IsoTime | None
    cpu_percent: FigurePublic | None
    memory_percent: FigurePublic | None
    disk_percent: FigurePublic | None
    process_rss_mb: FigurePublic | None
    active_recordings: FigurePublic | None


class CountersPublic(_Public):
    """Network byte counters of the machine."""

    bytes_sent: int
    bytes_recv: int


class DiskIoPublic(_Public):
    """Disk I/O byte counters of the machine."""

    read_bytes: int
    write_bytes: int


class FolderPublic(_Public):
    """Free and total space of a recorder folder's file system (or why not)."""

    path: str
    free_gb: float | None = None
    total_gb: float | None = None
    error: str | None = None


class ProcessPublic(_Public):
    """The recorder process."""

    pid: int
    rss_mb: float
    threads: int
    cpu_user_seconds: float
    cpu_system_seconds: float
    open_files: int
    started_at: IsoTime


class DetailedMetricsPublic(SamplePublic):
    """``GET /api/system/metrics/detailed``: a fresh sample and more."""

    cpu_count: int | None
    per_cpu_percent: list[float]
    load_average: list[float]
    swap_percent: float
    network: CountersPublic | None
    disk_io: DiskIoPublic | None
    folders: dict[str, FolderPublic]
    process: ProcessPublic
    uptime_seconds: float
    boot_time: IsoTime


class LogEntryPublic(BaseModel):
    """One structured log line. Beside these fields it carries the ``extra`` fields
    of its record (``station_id``, ``schedule_id``, ``changed``...) and
    ``exception`` (a traceback) when there is one: its keys are open by nature."""

    model_config = ConfigDict(extra="allow")

    timestamp: IsoTime | None = None
    level: str | None = None
    logger: str | None = None
    message: str | None = None
    operation_type: str | None = None
    session_id: int | None = None


class LogsPublic(_Public):
    """``GET /api/system/logs``."""

    logs: list[LogEntryPublic]
    count: int
    operation_type: str | None
    limit: int


class BackupPublic(_Public):
    """``POST /api/backup/create``."""

    backup_name: str
    backup_path: str
    backup_filename: str
    created_at: IsoTime
    file_size_bytes: int
    streams_count: int
    schedules_count: int
    include_artwork: bool
    artwork_count: int
    success: bool


class AutoBackupPublic(BackupPublic):
    """``POST /api/backup/auto-create``: older automatic backups removed."""

    removed_backups: list[str]


class BackupEntryPublic(_Public):
    """One backup of ``GET /api/backup/list``."""

    filename: str
    file_size_bytes: int
    created_at: IsoTime
    valid: bool
    metadata: dict[str, Any] | None = Field(
        description="The archive's metadata.json, as it is (None when unreadable)")
    errors: list[str]


class BackupCheckPublic(_Public):
    """``POST /api/backup/validate`` of a valid backup."""

    backup_filename: str
    valid: bool
    errors: list[str]
    metadata: dict[str, Any] | None
    artwork_files: list[str]
    streams_count: int
    schedules_count: int
    message: str


class BackupInvalidPublic(BackupCheckPublic):
    """``POST /api/backup/validate`` of an invalid backup (422)."""

    error: str
    status_code: int


class RestorePublic(_Public):
    """``POST /api/backup/restore``."""

    success: bool
    backup_filename: str
    restored_streams: int
    updated_streams: int
    skipped_streams: int
    skipped_stream_names: list[str]
    restored_schedules: int
    skipped_schedules: int
    restored_artwork: int
    stream_ids: list[int]
    schedule_ids: list[int]
    errors: list[str]
    message: str


class BackupDeletedPublic(_Public):
    """``DELETE /api/backup/delete``."""

    success: bool
    backup_filename: str
    message: str


def error_body(status: int, message: str, details: list[dict[str, str]] | None = None
               ) -> dict[str, Any]:
    """Error body of the contract: ``{"error": <reason>, "message", "status_code"}``;
    request validation errors add ``details: [{field, message, type}]``.

    The recorder's renderer for :func:`taperoom.web.errors.install_error_handlers`;
    a 5xx other than 502, 503 and 507 says only ``"An unexpected error occurred"``.
    """
    if details is not None:
        return {"error": "Validation Error", "message": "Invalid input data",
                "details": details, "status_code": status}
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    if status >= 500 and status not in (502, 503, 507):
        message = "An unexpected error occurred"
    return {"error": reason, "message": message, "status_code": status}


def _error(description: str, model: type[BaseModel] = ErrorPublic) -> dict[str, Any]:
    return {"model": model, "description": description}


#: Error answers of every ``/api`` route (each route adds the ones of its own).
API_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Invalid input; a request that fails validation lists the fields in "
                "`details`"),
    404: _error("Unknown resource or path"),
    "4XX": _error("Other client errors, as the route says"),
    500: _error("Unexpected error"),
}
CONFLICT: dict[int | str, dict[str, Any]] = {409: _error("Conflicts with the current state")}
TOO_LARGE: dict[int | str, dict[str, Any]] = {413: _error("Too large")}
UNPROCESSABLE: dict[int | str, dict[str, Any]] = {
    422: _error("Well-formed but cannot be processed")}
INSUFFICIENT_STORAGE: dict[int | str, dict[str, Any]] = {
    507: _error("Too little free space in RECORDINGS_DIR")}


def station_dict(row: Station, zone: tzinfo) -> dict[str, Any]:
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
        "id": row.id, "stream_config_id": row.station_id,
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
        "stream_config_id": row.station_id, "station_name": row.station_name,
        "trigger": row.trigger, "planned_duration_seconds": row.planned_duration_seconds,
        "duration_seconds": row.duration_seconds, "reconnects": row.reconnects,
        "gaps": list(row.gaps or []), "cue_sheet_path": row.cue_sheet_path,
        "stream_copy": row.stream_copy, "source_codec": row.source_codec,
        "local_deleted": bool(row.local_deleted),
    }
