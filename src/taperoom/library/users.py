"""The library's users: its sign-in store and the start-up access check."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import make_engine, make_sessionmaker
from taperoom.library import migrate
from taperoom.library.models import AUTH_TABLES
from taperoom.library.settings import LibrarySettings
from taperoom.web.auth import Access, AuthStore, open_access


def user_store(db: sessionmaker[Session]) -> AuthStore:
    """Users and sign-in sessions in the library database of `db`."""
    return AuthStore(db, AUTH_TABLES)


def open_user_store(settings: LibrarySettings | None = None
                    ) -> tuple[AuthStore, Callable[[], None]]:
    """The user store of the configured library database (migrated), and its closer.

    Used by ``taperoom library user ...`` and by the start-up check, which need the
    users but none of the library's services.
    """
    settings = settings or LibrarySettings()
    engine = make_engine(settings.url)
    migrate.upgrade(engine)
    return user_store(make_sessionmaker(engine)), engine.dispose


def check_access(settings: LibrarySettings | None = None) -> Access:
    """Decide, before the server starts, whether the library may listen on ``HOST``.

    Raises
    ------
    Misconfigured
        Listening beyond loopback without credentials (see
        :func:`taperoom.web.auth.policy.decide_access`).
    """
    settings = settings or LibrarySettings()
    store, close = open_user_store(settings)
    try:
        return open_access("library", settings, settings.host, store)
    finally:
        close()
