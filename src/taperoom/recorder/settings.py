"""Settings of the recorder app (environment names from contracts/recorder.md "Config")."""

from __future__ import annotations

import ipaddress
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from taperoom.db import sqlite_url
from taperoom.web.auth.settings import AccessSettings

if TYPE_CHECKING:
    from taperoom.recorder.urlpolicy import UrlPolicy


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class RecorderSettings(AccessSettings):
    """Environment of the recorder app.

    Paths (``DATA_DIR`` for the database, queue and backups, ``RECORDINGS_DIR``,
    ``ARTWORK_DIR``, ``SSH_CONFIG_DIR`` holding the private key and
    ``known_hosts``, ``LOG_DIR``) are relative to the working directory unless
    absolute. ``TZ`` is an IANA zone name (``America/Denver``); empty means the
    machine's local zone. ``RECORDER_DATABASE_URL`` (or the contract's
    ``DATABASE_URL``) may name a PostgreSQL database; the recorder keeps its own
    Alembic version table, so it can share a database with the library. The
    database and queue URLs are secrets (they may hold passwords): they are
    ``SecretStr`` and shown only with their passwords hidden.

    Other variables: ``PORT``/``WEB_PORT`` (8666), ``HOST``/``WEB_HOST``,
    ``MAX_CONCURRENT_RECORDINGS`` (3), ``CLEANUP_AFTER_TRANSFER`` (true),
    ``MAX_ARTWORK_SIZE_MB`` (10), ``DEFAULT_MAX_RETRIES`` (3),
    ``RETRY_DELAY_SECONDS`` (60, first upload retry; doubles each attempt up to
    ``TRANSFER_BACKOFF_MAX_SECONDS``), ``TRANSFER_MAX_ATTEMPTS`` (6),
    ``TRANSFER_PROTOCOL`` (``sftp`` or ``scp``), ``MP3_BITRATE_KBPS`` (192, when a
    stream must be re-encoded), ``STALL_TIMEOUT_SECONDS`` (10),
    ``RECONNECT_BACKOFF_MAX_SECONDS`` (30), ``NO_AUDIO_TIMEOUT_SECONDS`` (300: a
    recording that received no audio for this long ends, and fails if it has none;
    0 = keep trying until its end time), ``MIN_FREE_DISK_MB`` (500: no
    recording starts below it), ``RETENTION_DAYS`` / ``RETENTION_MAX_GB`` (0 = keep
    every local recording), ``SPLIT_TRACKS`` (false), ``QUEUE_URL`` (empty: a
    SQLite queue file in ``DATA_DIR``; ``redis://...`` for Redis), ``REDIS_URL``
    (the queue on Redis when ``QUEUE_URL`` is empty, as for the library),
    ``EMBEDDED_WORKER`` (true: the upload queue runs inside the server),
    ``UPLOAD_STALE_SECONDS`` (60: an upload whose worker has not said it is alive
    for this long is taken from it and queued again),
    ``MISFIRE_GRACE_SECONDS`` (300), ``LOG_LEVEL``,
    ``STREAM_ALLOWED_NETWORKS`` (empty: streams may only be read from public
    addresses; addresses or CIDR blocks separated by commas or spaces, such as
    ``192.168.1.0/24``, allow those non-public networks too; see
    :mod:`taperoom.recorder.urlpolicy`); who may use it:
    ``CORS_ORIGIN``, ``ALLOWED_HOSTS``, ``API_TOKEN``, ``TRUSTED_NETWORK``,
    ``LOGIN_RATE_LIMIT``, ``SESSION_DAYS`` (see
    :class:`~taperoom.web.auth.settings.AccessSettings`). Podcast feeds
    (:mod:`taperoom.recorder.feeds`): ``PUBLIC_FEEDS`` (false: a feed, its audio
    and chapters are read only with the feed's secret token in the URL; true:
    without it too), ``PUBLIC_BASE_URL`` (empty: absolute links in feeds start
    with the URL the request came to; ``https://radio.example.org/rec`` behind a
    proxy).
    """

    data_dir: Path = Path("./data")
    recordings_dir: Path = Path("./recordings")
    artwork_dir: Path = Path("./artwork")
    ssh_config_dir: Path = Path("./config")
    log_dir: Path = Path("./logs")
    log_level: str = "INFO"
    database_url: SecretStr = Field(SecretStr(""), validation_alias=_env(
        "RECORDER_DATABASE_URL", "DATABASE_URL"))
    host: str = Field("127.0.0.1", validation_alias=_env("WEB_HOST", "HOST"))
    port: int = Field(8666, validation_alias=_env("WEB_PORT", "RECORDER_PORT", "PORT"))
    tz: str = ""
    max_concurrent_recordings: int = Field(3, ge=1, le=64)
    cleanup_after_transfer: bool = True
    max_artwork_size_mb: float = Field(10.0, gt=0, le=100)
    default_max_retries: int = Field(3, ge=0, le=10)
    retry_delay_seconds: float = Field(60.0, ge=0)
    transfer_max_attempts: int = Field(6, ge=1, le=50)
    transfer_backoff_max_seconds: float = Field(3600.0, gt=0)
    transfer_protocol: str = Field("sftp", pattern="^(sftp|scp)$")
    mp3_bitrate_kbps: int = Field(192, ge=32, le=320)
    stall_timeout_seconds: float = Field(10.0, gt=0, le=600)
    reconnect_backoff_max_seconds: float = Field(30.0, gt=0, le=3600)
    no_audio_timeout_seconds: float = Field(300.0, ge=0)
    min_free_disk_mb: float = Field(500.0, ge=0)
    retention_days: float = Field(0.0, ge=0)
    retention_max_gb: float = Field(0.0, ge=0)
    split_tracks: bool = False
    queue_url: SecretStr = SecretStr("")
    redis_url: SecretStr = SecretStr("")
    embedded_worker: bool = True
    upload_stale_seconds: float = Field(60.0, ge=2, le=3600)
    misfire_grace_seconds: int = Field(300, ge=1)
    metrics_interval_seconds: float = Field(10.0, gt=0)
    public_feeds: bool = False
    public_base_url: str = Field("", max_length=500, pattern=r"^(https?://[^\s?#]+)?$")
    stream_allowed_networks: Annotated[
        tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode] = ()

    @field_validator("stream_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        from taperoom.recorder.urlpolicy import parse_networks

        return parse_networks(value)

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the recorder database (``DATA_DIR/recorder.db`` by default)."""
        return self.database_url.get_secret_value() or sqlite_url(self.data_dir / "recorder.db")

    @property
    def queue(self) -> str:
        """URL of the upload queue: ``QUEUE_URL``, else ``REDIS_URL``, else empty (the
        SQLite file in ``DATA_DIR``)."""
        return (self.queue_url.get_secret_value().strip()
                or self.redis_url.get_secret_value().strip())

    @property
    def zone(self) -> tzinfo:
        """The configured time zone (``TZ``), else the machine's local zone."""
        if self.tz:
            return ZoneInfo(self.tz)
        from tzlocal import get_localzone

        return get_localzone()

    @property
    def zone_name(self) -> str:
        """IANA name of :attr:`zone`."""
        return self.tz or str(self.zone)

    @property
    def stream_policy(self) -> UrlPolicy:
        """The URL policy of every stream the recorder opens (``STREAM_ALLOWED_NETWORKS``)."""
        from taperoom.recorder.urlpolicy import UrlPolicy

        return UrlPolicy(self.stream_allowed_networks)

    @property
    def max_artwork_bytes(self) -> int:
        """``MAX_ARTWORK_SIZE_MB`` in bytes."""
        return int(self.max_artwork_size_mb * 1024 * 1024)

    @property
    def backups_dir(self) -> Path:
        """Folder of configuration backups (``DATA_DIR/backups``)."""
        return self.data_dir / "backups"

    def ensure_dirs(self) -> None:
        """Create every folder the recorder writes to."""
        for d in (self.data_dir, self.recordings_dir, self.artwork_dir, self.ssh_config_dir,
                  self.log_dir, self.backups_dir):
            d.mkdir(parents=True, exist_ok=True)
