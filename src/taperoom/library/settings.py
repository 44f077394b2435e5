"""Settings of the library app (environment names from contracts/library.md §0)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

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
    scan_workers: int = Field(2, ge=1, le=32)
    availability_poll_seconds: float = Field(5.0, gt=0)
    library_allowed_roots: str = ""
    file_watcher_max_watches: int = Field(65536, ge=1)
    file_watcher_poll_seconds: float = Field(60.0, gt=0, le=86_400)
    data_dir: Path | None = None
    queue_url: SecretStr = SecretStr("")
    web_concurrency: int = Field(1, ge=1, le=64)

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
