"""Library fixtures: the database backend of a test, and a real PostgreSQL server.

Tests of a module marked ``pytestmark = pytest.mark.backends("sqlite", "postgresql")``
run once per backend (ids ``[sqlite]`` and ``[postgresql]``): the ``lib_settings``,
``lib_ctx`` and ``lib_server`` fixtures of ``tests/conftest.py`` then point at a
fresh SQLite file or at a fresh database of the session's PostgreSQL server.
``backends()`` without names means both; unmarked tests use SQLite only.
``TAPEROOM_TEST_BACKENDS=postgresql`` (comma-separated names) runs every library
test that is not pinned to named backends on those instead, e.g. to try the whole
suite on PostgreSQL.

The PostgreSQL server is a throwaway cluster (:mod:`tests.library.pgserver`),
started once per session on 127.0.0.1 when the first test needs it. Without
PostgreSQL's server programs the PostgreSQL tests are skipped on a developer's
machine (``make postgres`` installs them) and fail under ``CI=true``: in CI
they must run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.library.pgserver import PgServer, PgServerError, find_bindir

BACKENDS = ("sqlite", "postgresql")
#: Database of the session's server that every test database is copied from.
TEMPLATE_DB = "taperoom_template"


def in_ci() -> bool:
    """True when running in CI (``CI=true``), where nothing may be skipped."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backends(*names): run the test once per database "
                            "backend ('sqlite', 'postgresql')")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lib_backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    override = [b.strip() for b in os.environ.get("TAPEROOM_TEST_BACKENDS", "").split(",")
                if b.strip()]
    if marker is not None and marker.args:
        names = list(marker.args)
    elif override:
        names = override
    elif marker is not None:
        names = list(BACKENDS)
    else:
        return
    unknown = set(names) - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(f"unknown backends {sorted(unknown)}")
    metafunc.parametrize("lib_backend", names, indirect=True)


class PgTestServer:
    """The session's PostgreSQL server and its migrated template database."""

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self._template_ready = False

    def url(self, database: str) -> str:
        """``postgresql+psycopg://`` URL of a database of the server."""
        return self.server.url(database)

    def fresh_database(self, *, migrated: bool = True) -> str:
        """Create a new database; a copy of the migrated template when `migrated`."""
        if not migrated:
            return self.server.create_database()
        if not self._template_ready:
            from taperoom.db import make_engine
            from taperoom.library import migrate

            self.server.create_database(TEMPLATE_DB)
            engine = make_engine(self.url(TEMPLATE_DB))
            try:
                migrate.upgrade(engine)
            finally:
                engine.dispose()
            self._template_ready = True
        return self.server.create_database(template=TEMPLATE_DB)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgTestServer]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 for the whole session.

    Skipped when PostgreSQL is not installed, except under ``CI=true`` where
    that is a failure; a server that is installed but does not start is always
    a failure.
    """
    bindir = find_bindir()
    if bindir is None:
        message = ("PostgreSQL server programs not found under /usr/lib/postgresql/*/bin "
                   "(run `make postgres` to install Debian's postgresql package)")
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    server = PgServer(bindir)
    try:
        server.start()
        server.wait_ready()
    except PgServerError as exc:
        server.stop()
        pytest.fail(f"the PostgreSQL test server did not start: {exc}")
    try:
        yield PgTestServer(server)
    finally:
        server.stop()


@pytest.fixture
def pg_database(pg_server: PgTestServer) -> Iterator[str]:
    """URL of a fresh database, migrated to head, dropped after the test."""
    name = pg_server.fresh_database()
    yield pg_server.url(name)
    pg_server.server.drop_database(name)


@pytest.fixture
def pg_empty_database(pg_server: PgTestServer) -> Iterator[str]:
    """URL of a fresh, empty database (no tables), dropped after the test."""
    name = pg_server.fresh_database(migrated=False)
    yield pg_server.url(name)
    pg_server.server.drop_database(name)


@pytest.fixture
def lib_backend(request: pytest.FixtureRequest) -> str:
    """Database backend of the test: ``sqlite`` unless parametrised by ``backends``."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def lib_database_url(lib_backend: str, request: pytest.FixtureRequest) -> str:
    """``DATABASE_URL`` of the test's library: empty for SQLite (``DATABASE_PATH``)."""
    if lib_backend == "postgresql":
        return str(request.getfixturevalue("pg_database"))
    return ""


def backend_of(ctx: Any) -> str:
    """Dialect name of a library context's engine (``sqlite`` or ``postgresql``)."""
    return str(ctx.engine.dialect.name)
