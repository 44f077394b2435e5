"""Bring a library database to the newest Alembic revision.

The migration scripts live in ``migrations/library`` at the repository root
(DESIGN.md layout); the project is installed in editable mode by ``make``, so
they are found beside the package.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations" / "library"


def alembic_config(url: str) -> Config:
    """Alembic configuration for the library database at `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every pending migration to the database of `engine` (idempotent)."""
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
