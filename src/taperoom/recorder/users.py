"""The recorder's users: its sign-in store and the start-up access check."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import make_engine, make_sessionmaker
from taperoom.recorder import migrate
from taperoom.recorder.models import AUTH_TABLES
from taperoom.recorder.settings import RecorderSettings
from taperoom.web.auth import Access, AuthStore, open_access


def user_store(db: sessionmaker[Session]) -> AuthStore:
    """Users and signed-in sessions in the recorder database of the session factory `db`."""
    return AuthStore(db, AUTH_TABLES)


def open_user_store(settings: RecorderSettings | None = None
                    ) -> tuple[AuthStore, Callable[[], None]]:
    """The user store of the configured recorder database (migrated), and its closer.

    Used by ``taperoom recorder user ...`` and by the start-up check, which need the
    users but none of the recorder's services.
    """
    settings = settings or RecorderSettings()
    engine = make_engine(settings.url)
    migrate.upgrade(engine)
    return user_store(make_sessionmaker(engine)), engine.dispose


def check_access(settings: RecorderSettings | None = None) -> Access:
    """Decide, before the server starts, whether the recorder may listen on ``WEB_HOST``.

    Raises
    ------
    Misconfigured
        Listening beyond loopback without credentials (see
        :func:`taperoom.web.auth.policy.decide_access`).
    """
    settings = settings or RecorderSettings()
    store, close = open_user_store(settings)
    try:
        return open_access("recorder", settings, settings.host, store)
    finally:
        close()
