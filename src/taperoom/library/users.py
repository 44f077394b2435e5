"""The library's users: its sign-in store and the start-up access check."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from taperoom.library import migrate
from taperoom.library.models import AUTH_TABLES
from taperoom.library.settings import LibrarySettings
from taperoom.web.auth import Access, AuthStore, check_access_at_start, open_store


def user_store(db: sessionmaker[Session]) -> AuthStore:
    """Users and sign-in sessions in the library database of the session factory `db`."""
    return AuthStore(db, AUTH_TABLES)


def open_user_store(settings: LibrarySettings | None = None
                    ) -> tuple[AuthStore, Callable[[], None]]:
    """The user store of the configured library database (migrated), and its closer."""
    return open_store((settings or LibrarySettings()).url, migrate.upgrade, AUTH_TABLES)


def check_access(settings: LibrarySettings | None = None) -> Access:
    """Decide, before the server starts, whether the library may listen on ``HOST``
    (raises :class:`~taperoom.errors.Misconfigured` when it may not)."""
    settings = settings or LibrarySettings()
    marker = settings.data_path / migrate.NEW_MARKER
    return check_access_at_start("library", settings, settings.host, settings.url,
                                 lambda engine: migrate.upgrade_new(engine, marker),
                                 AUTH_TABLES)
