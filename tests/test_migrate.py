"""Opening a database migrates it only when it is behind: a database at head costs one query.

Real SQLite files and the apps' real Alembic scripts; "Alembic's environment did not
run" is shown with a copy of the scripts whose ``env.py`` refuses to run.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from alembic import command

from taperoom.db import make_engine, schema_at_head, script_heads, sqlite_url, upgrade_schema
from taperoom.library import migrate as library_migrate
from taperoom.recorder import migrate as recorder_migrate

APPS = {"library": library_migrate, "recorder": recorder_migrate}
REFUSING_ENV = 'raise RuntimeError("the Alembic environment ran")\n'


def _engine(path: Path) -> sa.Engine:
    return make_engine(sqlite_url(path))


def _refusing_scripts(tmp_path: Path, migrate: ModuleType) -> Path:
    """A copy of an app's migration scripts whose env.py raises when Alembic runs it."""
    copy = tmp_path / "scripts"
    shutil.copytree(migrate.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "env.py").write_text(REFUSING_ENV)
    return copy


@pytest.mark.parametrize("app", sorted(APPS))
def test_at_head_only_after_the_upgrade(tmp_path: Path, app: str) -> None:
    """A new database is not at head; once upgraded it is, in the app's own version table."""
    migrate = APPS[app]
    engine = _engine(tmp_path / "app.db")
    try:
        assert migrate.at_head(engine) is False
        migrate.upgrade(engine)
        assert migrate.at_head(engine) is True
        # the other app's version table says nothing about this database
        other = "alembic_version" if app == "recorder" else recorder_migrate.VERSION_TABLE
        assert schema_at_head(engine, migrate.MIGRATIONS, other) is False
    finally:
        engine.dispose()


@pytest.mark.parametrize("app", sorted(APPS))
def test_upgrade_of_a_database_at_head_does_not_run_alembic(tmp_path: Path, app: str) -> None:
    """At head, upgrading reads the revision and stops: Alembic's environment (which loads
    every migration script) does not run. A database behind still gets it."""
    migrate = APPS[app]
    version_table = getattr(migrate, "VERSION_TABLE", "alembic_version")
    scripts = _refusing_scripts(tmp_path, migrate)
    assert script_heads(scripts) == script_heads(migrate.MIGRATIONS)
    engine = _engine(tmp_path / "app.db")
    try:
        migrate.upgrade(engine)
        upgrade_schema(engine, scripts, version_table)  # nothing to do: env.py never runs
        fresh = _engine(tmp_path / "new.db")
        try:
            with pytest.raises(RuntimeError, match="the Alembic environment ran"):
                upgrade_schema(fresh, scripts, version_table)
        finally:
            fresh.dispose()
    finally:
        engine.dispose()


def test_library_database_behind_head_is_upgraded(tmp_path: Path) -> None:
    """A library database stamped at an older revision is still brought to head."""
    path = tmp_path / "library.db"
    command.upgrade(library_migrate.alembic_config(sqlite_url(path)), "0004")
    engine = _engine(path)
    try:
        assert "library_jobs" not in sa.inspect(engine).get_table_names()
        assert library_migrate.at_head(engine) is False
        library_migrate.upgrade(engine)
        assert library_migrate.at_head(engine) is True
        assert "library_jobs" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
