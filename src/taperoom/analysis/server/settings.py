"""Settings of the analysis server (``taperoom analysis serve``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from taperoom.web.auth.settings import AccessSettings

#: Port of the contract's ``PYTHON_SERVER_URL`` (``http://127.0.0.1:8000``, contract §0).
DEFAULT_PORT = 8000


class AnalysisServerSettings(AccessSettings):
    """Environment of the analysis server; every name starts with ``ANALYSIS_SERVER_``
    (so one ``.env`` serves it and the library, whose ``PORT``, ``API_TOKEN`` and
    ``ANALYSIS_*`` settings are others).

    Attributes
    ----------
    host : str
        ``ANALYSIS_SERVER_HOST``: address to listen on (default ``127.0.0.1``:
        this machine only).
    port : int
        ``ANALYSIS_SERVER_PORT`` (default 8000, the contract's ``PYTHON_SERVER_URL``).
    allowed_roots : str
        ``ANALYSIS_SERVER_ALLOWED_ROOTS``: folders whose files local-mode jobs
        (``file_path``) may name, separated by ``:`` (``os.pathsep``); a path
        outside them (after resolving links) is refused with 403. Empty (the
        default): local mode is refused, only uploads are analysed.
    concurrency : int
        ``ANALYSIS_SERVER_CONCURRENCY``: jobs analysed at once (worker threads).
    queue_size : int
        ``ANALYSIS_SERVER_QUEUE_SIZE``: jobs that may wait; a job beyond it is
        refused with 503.
    max_upload_mb : float
        ``ANALYSIS_SERVER_MAX_UPLOAD_MB``: largest remote-mode upload (MB of
        10**6 bytes; default 500, the Node.js backend's own body limit); larger
        is refused with 413.
    upload_dir : Path or None
        ``ANALYSIS_SERVER_UPLOAD_DIR``: where uploads wait for their job (one
        folder per job, removed when the job ends); default the system's
        temporary folder. While a request is read, the multipart parser
        (Starlette's) spools the file in the system's temporary folder
        (``TMPDIR``) first.
    callback_timeout : float
        ``ANALYSIS_SERVER_CALLBACK_TIMEOUT``: seconds one callback may take.
    callback_retries : int
        ``ANALYSIS_SERVER_CALLBACK_RETRIES``: new attempts after a callback that
        failed (connection error, 408, 429 or 5xx answer).
    callback_backoff : float
        ``ANALYSIS_SERVER_CALLBACK_BACKOFF``: seconds before the first new
        attempt, doubled at each one (capped at 60 s).
    jobs_kept : int
        ``ANALYSIS_SERVER_JOBS_KEPT``: finished jobs remembered for ``GET
        /jobs/{id}`` (the oldest are forgotten first).
    bpm_min, bpm_max : float
        ``ANALYSIS_SERVER_BPM_MIN`` / ``_MAX``: the DJ tempo range the tempo
        estimator prefers (a prior, not a fold).
    api_token, trusted_network, allowed_hosts, cors_origin, login_rate_limit
        ``ANALYSIS_SERVER_API_TOKEN`` (clients then send ``Authorization:
        Bearer``; needed to listen beyond loopback unless
        ``ANALYSIS_SERVER_TRUSTED_NETWORK``), ``..._ALLOWED_HOSTS``,
        ``..._CORS_ORIGIN``, ``..._LOGIN_RATE_LIMIT`` (wrong tokens allowed per
        client address), as :class:`~taperoom.web.auth.settings.AccessSettings`.
    """

    model_config = SettingsConfigDict(env_prefix="ANALYSIS_SERVER_", env_file=".env",
                                      env_file_encoding="utf-8", extra="ignore",
                                      case_sensitive=False)

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)
    allowed_roots: str = ""
    concurrency: int = Field(2, ge=1, le=64)
    queue_size: int = Field(1000, ge=1, le=1_000_000)
    max_upload_mb: float = Field(500.0, gt=0, le=1_000_000)
    upload_dir: Path | None = None
    callback_timeout: float = Field(30.0, gt=0, le=3600)
    callback_retries: int = Field(5, ge=0, le=100)
    callback_backoff: float = Field(1.0, ge=0, le=3600)
    jobs_kept: int = Field(1000, ge=1, le=1_000_000)
    bpm_min: float = Field(70.0, ge=20, le=400)
    bpm_max: float = Field(180.0, ge=20, le=400)

    @model_validator(mode="after")
    def _tempo_range(self) -> AnalysisServerSettings:
        if self.bpm_min >= self.bpm_max:
            raise ValueError("ANALYSIS_SERVER_BPM_MIN must be below ANALYSIS_SERVER_BPM_MAX")
        return self

    @property
    def roots(self) -> list[Path]:
        """``ALLOWED_ROOTS`` as absolute folders with their links resolved."""
        return [Path(os.path.realpath(os.path.expanduser(p.strip())))
                for p in self.allowed_roots.split(os.pathsep) if p.strip()]

    @property
    def max_upload_bytes(self) -> int:
        """``MAX_UPLOAD_MB`` in bytes."""
        return int(self.max_upload_mb * 1_000_000)

    @property
    def bpm_range(self) -> tuple[float, float]:
        """``(BPM_MIN, BPM_MAX)``."""
        return (self.bpm_min, self.bpm_max)
