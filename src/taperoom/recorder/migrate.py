"""Bring a recorder database to the newest Alembic revision.

The scripts live in ``migrations/recorder`` at the repository root (DESIGN.md
layout), found beside the editable install as for the library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from taperoom.db import alembic_config as _config
from taperoom.db import schema_at_head, upgrade_schema

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations" / "recorder"
#: The recorder's own revision table, so that it can share a PostgreSQL database
#: with the library (whose revision is in Alembic's default ``alembic_version``).
VERSION_TABLE = "recorder_alembic_version"


def alembic_config(url: str) -> Any:
    """Alembic configuration of the recorder migrations for the database at `url`."""
    return _config(url, MIGRATIONS)


def upgrade(engine: Engine) -> None:
    """Apply every pending migration to the recorder database of `engine` (idempotent)."""
    upgrade_schema(engine, MIGRATIONS, VERSION_TABLE)


def at_head(engine: Engine) -> bool:
    """True when the recorder database of `engine` needs no migration (nothing is written)."""
    return schema_at_head(engine, MIGRATIONS, VERSION_TABLE)
