"""Playlist fixtures: the library's database backends (``backends`` marker) and services."""

from __future__ import annotations

from tests.library.conftest import (  # noqa: F401  (fixtures and the backend parametrisation)
    lib_backend,
    lib_database_url,
    pytest_generate_tests,
    services,
)
