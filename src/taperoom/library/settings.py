"""Settings of the library app (environment names from contracts/library.md §0)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr

from taperoom.db import normalise_url, sqlite_url
from taperoom.web.auth.settings import AccessSettings

DEFAULT_EXTENSIONS = ".mp3,.flac,.wav,.m4a,.aac,.ogg,.wma,.aif,.aiff,.opus,.alac"


class LibrarySettings(AccessSettings):
    """Environment of the library app.

    ``DATABASE_PATH`` (SQLite file, default ``./data/library.db``) or
    ``DATABASE_URL`` (a SQLAlchemy URL, e.g. ``postgresql://user@host/library``;
    see :func:`taperoom.db.normalise_url`; a ``SecretStr``, since it may hold a
    password), ``PORT`` (12047),
    ``HOST``, ``CORS_ORIGIN``, ``AUDIO_FILE_EXTENSIONS``, ``FILE_WATCHER_ENABLED``,
    ``FILE_WATCHER_DEBOUNCE`` (ms), ``MAX_CONCURRENT_SCANS``, ``SCAN_ON_STARTUP``,
    ``SCAN_WORKERS`` (threads reading tags and hashing), ``AVAILABILITY_POLL_SECONDS``,
    ``LIBRARY_ALLOWED_ROOTS`` (``:``-separated folders allowed as library folders
    although system folders), ``FILE_WATCHER_MAX_WATCHES`` (inotify watches the
    watcher may take in all, one per watched folder; fewer when the kernel's
    ``max_user_watches`` is lower) and ``FILE_WATCHER_POLL_SECONDS`` (how often a
    folder over that limit is polled instead); who may use it:
    ``CORS_ORIGIN``, ``ALLOWED_HOSTS``, ``API_TOKEN``, ``TRUSTED_NETWORK``,
    ``LOGIN_RATE_LIMIT``, ``SESSION_DAYS`` (see
    :class:`~taperoom.web.auth.settings.AccessSettings`).

    Analysis (contract §0 names where it has them): ``ANALYZE_ON_SCAN``,
    ``MAX_CONCURRENT_ANALYSIS`` (jobs at once in this process; 0 leaves them to
    ``taperoom worker`` processes), ``ANALYSIS_MAX_RETRIES``,
    ``ANALYSIS_RETRY_DELAY`` (s, doubled at each retry), ``ANALYSIS_TIMEOUT_MS``
    (one job on an external server), ``ANALYSIS_BPM_MIN``/``ANALYSIS_BPM_MAX``
    (the DJ tempo range the tracker prefers), ``ANALYSIS_SERVER_URL`` (an
    external analysis server speaking contract §3; the contract's
    ``PYTHON_SERVER_URL`` is read too), ``ANALYSIS_SERVER_REMOTE`` (upload files
    to it), ``ANALYSIS_SERVER_API_TOKEN`` (its bearer token, the name Taperoom's
    own server reads), ``PYTHON_REQUEST_TIMEOUT_MS`` (one request to it),
    ``CALLBACK_HOST`` / ``ANALYSIS_CALLBACK_URL`` (where it calls back),
    ``ANALYSIS_STEM_ROOTS`` (folders whose files it may deliver as stems by
    path), ``ANALYSIS_STEM_MAX_MB`` (largest stem file it may deliver),
    ``STEM_CACHE_MAX_BYTES`` (most bytes of stems kept in ``DATA_DIR/stem_cache``,
    the least recently used sets evicted first; default 10 GB),
    ``STEMS_RETRY_SECONDS`` (how often a server that was down is checked again for
    the stems asked for meanwhile),
    ``STEMS_WAIT_SECONDS`` (how long such a request waits for the server before it
    fails with ``stems:failed``; default 900),
    ``REDIS_URL`` (the job queue on Redis when ``QUEUE_URL`` is empty),
    ``ANALYSIS_JOBS_KEEP_DAYS`` (days an ended ``analysis_jobs`` row is kept; the
    newest row of each job id stays whatever its age).

    First run: ``SEED_FOLDER``, a folder added as a library folder (and scanned)
    when the server starts on a database it has just created; empty (the
    default) adds none. ``make run`` sets it to the corpus's ``scanner`` folder.

    Suggestions: ``SUGGESTION_BPM_PERCENT``, the largest tempo difference (per
    cent, also to half and double time) of the tracks suggested to mix next
    (``GET /api/tracks/:id/suggestions``; default 6, about a DJ deck's pitch range).

    Audio engine (contract section 4): ``AUDIO_SERVER_WS_URL`` (the engine's
    WebSocket server, default ``ws://localhost:8080``), ``ENGINE_LINK_ENABLED``
    (false, or an empty URL, leaves the engine alone),
    ``AUDIO_SERVER_RECONNECT_DELAY`` / ``AUDIO_SERVER_RECONNECT_MAX`` (ms: first
    and longest wait between connection attempts, doubling in between),
    ``AUDIO_SERVER_PING_INTERVAL`` (ms between two pings) and
    ``LIVE_SET_MIN_PLAY_SECONDS`` (seconds a track must play on a deck to be
    logged into the active session).

    Jobs: ``JOB_STALE_SECONDS``, how long a running job's heartbeat may be
    silent before its process is taken for dead and the job is queued again
    (the only sign of life of a worker on another machine; its process
    writes one every 0.25 s).
    """

    database_path: Path = Path("./data/library.db")
    database_url: SecretStr = SecretStr("")
    host: str = "127.0.0.1"
    port: int = 12047
    audio_file_extensions: str = DEFAULT_EXTENSIONS
    file_watcher_enabled: bool = True
    file_watcher_debounce: int = Field(1000, ge=0, le=60_000)
    max_concurrent_scans: int = Field(2, ge=1, le=16)
    scan_on_startup: bool = True
    seed_folder: str = ""
    scan_workers: int = Field(2, ge=1, le=32)
    availability_poll_seconds: float = Field(5.0, gt=0)
    library_allowed_roots: str = ""
    file_watcher_max_watches: int = Field(65536, ge=1)
    file_watcher_poll_seconds: float = Field(60.0, gt=0, le=86_400)
    data_dir: Path | None = None
    queue_url: SecretStr = SecretStr("")
    redis_url: SecretStr = SecretStr("")
    web_concurrency: int = Field(1, ge=1, le=64)
    job_stale_seconds: float = Field(30.0, ge=2, le=3600)
    analyze_on_scan: bool = True
    max_concurrent_analysis: int = Field(2, ge=0, le=64)
    analysis_max_retries: int = Field(3, ge=0, le=100)
    analysis_retry_delay: float = Field(10.0, gt=0, le=86_400)
    analysis_timeout_ms: int = Field(300_000, ge=1000)
    analysis_bpm_min: float = Field(70.0, ge=20, le=400)
    analysis_bpm_max: float = Field(180.0, ge=20, le=400)
    analysis_server_url: str = Field(
        "", validation_alias=AliasChoices("analysis_server_url", "python_server_url"))
    analysis_server_remote: bool = False
    analysis_server_api_token: SecretStr = SecretStr("")
    analysis_stem_roots: str = ""
    analysis_stem_max_mb: float = Field(2000.0, gt=0, le=1_000_000)
    stem_cache_max_bytes: int = Field(10_000_000_000, ge=0)
    stems_retry_seconds: float = Field(5.0, gt=0, le=3600)
    stems_wait_seconds: float = Field(900.0, gt=0, le=86_400)
    python_request_timeout_ms: int = Field(30_000, ge=100)
    callback_host: str = ""
    analysis_callback_url: str = ""
    analysis_jobs_keep_days: int = Field(30, ge=0, le=36_500)
    suggestion_bpm_percent: float = Field(6.0, gt=0, le=50)
    audio_server_ws_url: str = "ws://localhost:8080"
    engine_link_enabled: bool = True
    audio_server_reconnect_delay: int = Field(1000, ge=10, le=3_600_000)
    audio_server_reconnect_max: int = Field(30_000, ge=10, le=3_600_000)
    audio_server_ping_interval: int = Field(30_000, ge=10, le=3_600_000)
    live_set_min_play_seconds: float = Field(30.0, ge=0, le=86_400)

    @property
    def queue(self) -> str:
        """URL of the job queue: ``QUEUE_URL``, else ``REDIS_URL``, else empty (the
        SQLite file in ``DATA_DIR``)."""
        return (self.queue_url.get_secret_value().strip()
                or self.redis_url.get_secret_value().strip())

    @property
    def shared_queue(self) -> bool:
        """Whether the queue is on a server that processes of other machines share."""
        return self.queue.startswith(("redis://", "rediss://", "unix://"))

    @property
    def engine_link(self) -> bool:
        """Whether the library links to the audio engine (``ENGINE_LINK_ENABLED`` and a
        non-empty ``AUDIO_SERVER_WS_URL``)."""
        return self.engine_link_enabled and bool(self.audio_server_ws_url.strip())

    @property
    def bpm_range(self) -> tuple[float, float]:
        """``(ANALYSIS_BPM_MIN, ANALYSIS_BPM_MAX)``, in order."""
        low, high = sorted((self.analysis_bpm_min, self.analysis_bpm_max))
        return (low, high)

    @property
    def callback_url(self) -> str:
        """Where an external analysis server posts its callbacks (contract §0):
        ``ANALYSIS_CALLBACK_URL``, else
        ``http://<CALLBACK_HOST or HOST>:<PORT>/api/analysis/callback``, the
        wildcard addresses becoming 127.0.0.1."""
        if self.analysis_callback_url.strip():
            return self.analysis_callback_url.strip()
        host = self.callback_host.strip() or self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/api/analysis/callback"

    @property
    def stem_roots(self) -> tuple[Path, ...]:
        """``ANALYSIS_STEM_ROOTS`` (``:``-separated): folders whose files an external
        analysis server may name as stems (``stem_delivery_mode: path``)."""
        return tuple(Path(part.strip()).expanduser()
                     for part in self.analysis_stem_roots.split(":") if part.strip())

    @property
    def data_path(self) -> Path:
        """Folder of the job queue and the lock files (``DATA_DIR``, else the folder of
        ``DATABASE_PATH``, also when the database is PostgreSQL)."""
        return Path(self.data_dir) if self.data_dir is not None else self.database_path.parent

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the database (``DATABASE_URL`` wins over ``DATABASE_PATH``)."""
        given = self.database_url.get_secret_value()
        if given.strip():
            return normalise_url(given)
        return sqlite_url(self.database_path)

    @property
    def allowed_roots(self) -> tuple[Path, ...]:
        """Folders allowed as library folders although system folders (``LIBRARY_ALLOWED_ROOTS``).

        The variable is a list separated by ``:`` (as ``PATH``); blanks are ignored.
        See :mod:`taperoom.library.folderpolicy`.
        """
        return tuple(Path(part.strip()).expanduser()
                     for part in self.library_allowed_roots.split(":") if part.strip())

    @property
    def extensions(self) -> frozenset[str]:
        """Lower-case audio file extensions, with their dots."""
        return frozenset(
            e.strip().lower() if e.strip().startswith(".") else "." + e.strip().lower()
            for e in self.audio_file_extensions.split(",") if e.strip())
