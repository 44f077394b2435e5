"""Library fixtures: the database backend of a test, and a real PostgreSQL server.

Tests of a module marked ``pytestmark = pytest.mark.backends("sqlite", "postgresql")``
run once per backend (ids ``[sqlite]`` and ``[postgresql]``): the ``lib_settings``,
``lib_ctx`` and ``lib_server`` fixtures of ``tests/conftest.py`` then point at a
fresh SQLite file or at a fresh database of the session's PostgreSQL server.
``backends()`` without names means both; unmarked tests use SQLite only. The
``[postgresql]`` runs, and every test that uses the PostgreSQL server, carry the
``postgres`` marker (``pytest -m "not postgres"`` leaves them out).
``TAPEROOM_TEST_BACKENDS=postgresql`` (comma-separated names) runs every library
test that is not pinned to named backends on those instead, e.g. to try the whole
suite on PostgreSQL.

The PostgreSQL server is the session's throwaway cluster (``pg_server`` in
``tests/conftest.py``, :mod:`tests.library.pgserver`), started on 127.0.0.1 when
the first test needs it. Without PostgreSQL's server programs the PostgreSQL
tests are skipped on a developer's machine (``make postgres`` installs them) and
fail under ``CI=true``: in CI they must run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

from taperoom.library.context import LibraryServices, build_services
from tests.browser import page_errors

BACKENDS = ("sqlite", "postgresql")


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
    params = [pytest.param(name, marks=[pytest.mark.postgres] if name == "postgresql" else [])
              for name in names]
    metafunc.parametrize("lib_backend", params, indirect=True)


@pytest.fixture
def lib_backend(request: pytest.FixtureRequest) -> str:
    """Database backend of the test: ``sqlite`` unless parametrised by ``backends``."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def lib_database_url(lib_backend: str, empty_database: bool,
                     request: pytest.FixtureRequest) -> str:
    """``DATABASE_URL`` of the test's library: empty for SQLite (``DATABASE_PATH``);
    on PostgreSQL a copy of the migrated template database, or an empty database
    for tests marked ``empty_database``."""
    if lib_backend == "postgresql":
        fixture = "pg_empty_database" if empty_database else "pg_database"
        return str(request.getfixturevalue(fixture))
    return ""


def backend_of(ctx: Any) -> str:
    """Dialect name of a library context's engine (``sqlite`` or ``postgresql``)."""
    return str(ctx.engine.dialect.name)


@pytest.fixture
def services(lib_settings: Callable[..., Any]) -> Iterator[Callable[..., LibraryServices]]:
    """Build library services with setting overrides; all closed after the test."""
    built: list[LibraryServices] = []

    def build(**overrides: Any) -> LibraryServices:
        svc = build_services(lib_settings(**overrides))
        built.append(svc)
        return svc

    yield build
    for svc in reversed(built):
        svc.close()


@pytest.fixture
def page(browser_context: BrowserContext) -> Iterator[Page]:
    """A page of the library's web app whose script errors fail the test."""
    page = browser_context.new_page()
    errors = page_errors(page)
    yield page
    assert errors == []
