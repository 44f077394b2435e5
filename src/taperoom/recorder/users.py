"""The recorder's users: its sign-in store and the start-up access check."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from taperoom.recorder import migrate
from taperoom.recorder.models import AUTH_TABLES
from taperoom.recorder.settings import RecorderSettings
from taperoom.web.auth import Access, AuthStore, check_access_at_start, open_store


def user_store(db: sessionmaker[Session]) -> AuthStore:
    """Users and sign-in sessions in the recorder database of the session factory `db`."""
    return AuthStore(db, AUTH_TABLES)


def open_user_store(settings: RecorderSettings | None = None
                    ) -> tuple[AuthStore, Callable[[], None]]:
    """The user store of the configured recorder database (migrated), and its closer."""
    return open_store((settings or RecorderSettings()).url, migrate.upgrade, AUTH_TABLES)


def check_access(settings: RecorderSettings | None = None) -> Access:
    """Decide, before the server starts, whether the recorder may listen on ``WEB_HOST``
    (raises :class:`~taperoom.errors.Misconfigured` when it may not)."""
    settings = settings or RecorderSettings()
    return check_access_at_start("recorder", settings, settings.host, settings.url,
                                 migrate.upgrade, AUTH_TABLES)
