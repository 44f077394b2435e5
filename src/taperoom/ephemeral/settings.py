"""Settings of the ephemeral app (environment names from contracts/ephemeral.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from taperoom.config import AppSettings


class EphemeralSettings(AppSettings):
    """Environment of the ephemeral app.

    Contract variables: ``AUDIO_DIR``, ``METADATA_DIR``, ``SEGMENT_DURATION``,
    ``DEGRADATION_RATE`` (percent dropout per play), ``CORS_ORIGIN``, ``PORT``.
    Additions: ``HOST``, ``WEAR_MODEL``, ``KEEP_ORIGINALS``, ``ADMIN_TOKEN`` (a secret:
    never shown in logs, pages or answers),
    ``ADMIN_UPLOAD_MAX_BYTES`` (largest upload of the curator's page),
    ``ADMIN_RESTORE_MAX_BYTES`` (largest backup archive restored), ``ADMIN_SESSION_MINUTES``
    (lifetime of a curator's sign-in), ``ADMIN_LOGIN_RATE_LIMIT`` (sign-in attempts per
    client address),
    ``DEGRADE_RATE_LIMIT`` (``limits`` notation, empty to disable), ``LOCK_TIMEOUT``,
    ``FSYNC`` (``fdatasync`` each play count before answering; fsync metadata
    replacements and restored audio), ``STREAM_PREBUFFER`` (seconds a
    ``?degrade=1`` stream may run ahead of real time), ``THREADS`` (worker threads
    per process for file I/O and wear; each real-time listener uses one now and
    then).
    """

    audio_dir: Path = Path("./audio")
    metadata_dir: Path = Path("./metadata")
    segment_duration: float = Field(0.5, gt=0, le=60)
    degradation_rate: float = Field(1.0, ge=0, le=100)
    cors_origin: str = "*"
    host: str = "127.0.0.1"
    port: int = 5000
    wear_model: str = "dropout"
    keep_originals: bool = False
    admin_token: SecretStr = SecretStr("")
    admin_upload_max_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    admin_restore_max_bytes: int = Field(8 * 1024 * 1024 * 1024, ge=1024)
    admin_session_minutes: float = Field(480.0, gt=0)
    admin_login_rate_limit: str = "5/minute;30/hour"
    degrade_rate_limit: str = "20/second;600/minute"
    lock_timeout: float = Field(5.0, gt=0)
    fsync: bool = True
    stream_prebuffer: float = Field(2.0, ge=0)
    waveform_points: int = Field(1000, ge=10, le=100_000)
    threads: int = Field(128, ge=4, le=1024)

    @field_validator("wear_model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        from taperoom.ephemeral.degrade import WEAR_MODELS

        if value not in WEAR_MODELS:
            raise ValueError(f"unknown wear model {value!r}; known: {sorted(WEAR_MODELS)}")
        return value

    @property
    def originals_dir(self) -> Path:
        """Folder of pristine copies kept when ``KEEP_ORIGINALS`` is on."""
        return self.metadata_dir / "pristine"
