"""Database engines and sessions (SQLAlchemy 2).

SQLite is the embedded default: WAL journal, foreign keys on, a 5 s busy timeout
and ``synchronous=NORMAL`` (safe with WAL). PostgreSQL works through a
``postgresql://`` URL (driven by psycopg 3, see :func:`normalise_url`); the same
Alembic migrations run on both.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

#: Constraint names, so that migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every app's ORM models (one metadata per app is fine)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def sqlite_url(path: str | Path) -> str:
    """``sqlite:///`` URL of a database file."""
    return f"sqlite:///{Path(path).expanduser().resolve()}"


#: URL schemes that mean PostgreSQL without naming a driver, and the one we use.
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
POSTGRES_DRIVER = "postgresql+psycopg"


def normalise_url(url: str) -> str:
    """The SQLAlchemy URL to connect with: PostgreSQL URLs get the psycopg 3 driver.

    ``postgresql://`` and ``postgres://`` (Heroku style) become
    ``postgresql+psycopg://`` (psycopg 3 is the driver the library extra
    installs; SQLAlchemy would pick psycopg2); every other URL, including one
    naming its driver, is returned unchanged.

    Parameters
    ----------
    url : str
        A database URL, e.g. ``postgresql://user:pw@host:5432/library``.

    Returns
    -------
    str
        The URL with an explicit driver where one was implied.
    """
    stripped = url.strip()
    for scheme in _POSTGRES_SCHEMES:
        if stripped.lower().startswith(scheme):
            return POSTGRES_DRIVER + "://" + stripped[len(scheme):]
    return stripped


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA cache_size=-32000")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite files get their folder created and the pragmas above.

    Parameters
    ----------
    url : str
        SQLAlchemy URL (``sqlite:///path`` or ``postgresql://...``, see
        :func:`normalise_url`).
    **kwargs
        Passed to :func:`sqlalchemy.create_engine`.
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        db_path = url.split(":///", 1)[1] if ":///" in url else ""
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Session factory bound to `engine` (objects stay usable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def autocommit(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose every statement commits by itself: no transaction, so no row lock,
    spans two statements.

    For the writes of a process that may be paused between two of them (a stopped
    or frozen machine): a lock held by an open transaction would stay until the
    process runs again, and block every other process that writes the row (e.g.
    one taking over the paused process's job).
    """
    with factory() as session:
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


def alembic_config(url: str, script_location: Path) -> Any:
    """Alembic configuration of one app's migrations for the database at `url`.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the database (a password in it is kept).
    script_location : Path
        The app's Alembic environment (``migrations/<app>`` at the repository root).

    Returns
    -------
    alembic.config.Config
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def script_heads(script_location: Path) -> frozenset[str]:
    """Head revisions of one app's Alembic scripts (read once per process).

    Parameters
    ----------
    script_location : Path
        The app's Alembic environment (``migrations/<app>``).

    Returns
    -------
    frozenset of str
        The revision ids no other script revises (one, unless the history branches).
    """
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://", script_location))
    return frozenset(scripts.get_heads())


def schema_at_head(engine: Engine, script_location: Path,
                   version_table: str = "alembic_version") -> bool:
    """True when the database of `engine` is at the newest revision of the scripts.

    Reads the revision Alembic stamped in `version_table` (no table, or an
    empty one, means a database never migrated) and compares it with
    :func:`script_heads`; nothing is written.

    Parameters
    ----------
    engine : Engine
        Engine of the app's database.
    script_location : Path
        The app's Alembic environment (``migrations/<app>``).
    version_table : str
        The table holding the app's revision (the ``version_table`` its
        ``env.py`` configures).
    """
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        current = MigrationContext.configure(
            conn, opts={"version_table": version_table}).get_current_heads()
    return frozenset(current) == script_heads(script_location)


def upgrade_schema(engine: Engine, script_location: Path,
                   version_table: str = "alembic_version") -> None:
    """Apply every pending Alembic migration of one app to the database of `engine`.

    Idempotent and cheap when there is nothing to do: a database already at the
    newest revision (:func:`schema_at_head`, one query) is left as it is without
    running Alembic's environment, which loads every migration script.

    Parameters
    ----------
    engine : Engine
        Engine of the app's database.
    script_location : Path
        The app's Alembic environment (``migrations/<app>`` at the repository root).
    version_table : str
        The table holding the app's revision (as configured in its ``env.py``).
    """
    if schema_at_head(engine, script_location, version_table):
        return
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False), script_location)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
