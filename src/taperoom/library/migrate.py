"""Bring a library database to the newest Alembic revision.

The migration scripts live in ``migrations/library`` at the repository root
(DESIGN.md layout); the project is installed in editable mode by ``make``, so
they are found beside the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from taperoom.db import alembic_config as _config
from taperoom.db import schema_at_head, upgrade_schema

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations" / "library"


def alembic_config(url: str) -> Any:
    """Alembic configuration of the library migrations for the database at `url`."""
    return _config(url, MIGRATIONS)


def upgrade(engine: Engine) -> None:
    """Apply every pending migration to the library database of `engine` (idempotent)."""
    upgrade_schema(engine, MIGRATIONS)


def at_head(engine: Engine) -> bool:
    """True when the library database of `engine` needs no migration (nothing is written)."""
    return schema_at_head(engine, MIGRATIONS)


def is_empty(engine: Engine) -> bool:
    """True when the library database of `engine` has no tables yet (a new database)."""
    return not sa.inspect(engine).get_table_names()


#: Left in the data folder when the library database is created (see :func:`upgrade_new`).
NEW_MARKER = "library-new"


def upgrade_new(engine: Engine, marker: Path) -> None:
    """:func:`upgrade`, leaving `marker` when the database had no tables yet.

    The first run's folder (``SEED_FOLDER``) is added by the server that takes the
    marker; the database may be created before it, by the start-up checks.
    """
    if is_empty(engine):
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    upgrade(engine)


def take_new_marker(marker: Path) -> bool:
    """Remove `marker`; True for the one process that removed it (a new library)."""
    try:
        marker.unlink()
    except FileNotFoundError:
        return False
    return True
