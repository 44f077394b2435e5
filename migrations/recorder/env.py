"""Alembic environment of the recorder database.

The recorder keeps its revision in its own table (``recorder_alembic_version``),
so it can share a PostgreSQL database with the library.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from taperoom.db import make_engine
from taperoom.recorder import models
from taperoom.recorder.migrate import VERSION_TABLE

target_metadata = models.RecorderBase.metadata
config = context.config


def _include(name: str | None, type_: str, *_: object) -> bool:
    # APScheduler owns its job table; the library's tables are not ours either.
    return not (type_ == "table" and name not in target_metadata.tables)


def run_migrations_online() -> None:
    """Run migrations on the configured URL (or on a connection handed in by the app)."""
    options = {"target_metadata": target_metadata, "render_as_batch": True,
               "version_table": VERSION_TABLE, "include_name": _include}
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True,
                      version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
