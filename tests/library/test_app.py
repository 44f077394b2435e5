"""The library app starts on a fresh database with its full schema (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from taperoom.library.repository import tracks as repo

pytestmark = pytest.mark.backends()

TABLES = {"tracks", "library_directories", "duplicate_groups", "file_operations", "settings",
          "hot_cues", "playlists", "playlist_tracks", "waveforms", "analysis_jobs",
          "library_jobs", "library_events", "playlist_folders"}
#: Schema objects that only migrations create, per backend (search and sort
#: indexes the ORM models cannot declare for one backend only).
BACKEND_ONLY = {
    "sqlite": {"tracks_fts"},
    "postgresql": {"ix_tracks_search", "ix_tracks_lower_artist_desc",
                   "ix_tracks_lower_title_desc", "ix_tracks_lower_album_desc",
                   "ix_tracks_lower_genre_desc"},
}


@pytest.mark.empty_database
def test_fresh_database_is_complete_after_start(lib_server, lib_ctx, lib_backend) -> None:
    """Starting the app migrates a new database: all tables, the search index, settings rows."""
    body = httpx.get(f"{lib_server.url}/health").json()
    assert body["status"] == "ok" and body["timestamp"].endswith("Z")
    inspector = sa.inspect(lib_ctx.engine)
    assert set(inspector.get_table_names()) >= TABLES
    with lib_ctx.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM settings")).scalar() == 19
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() \
            == "0007"
    if lib_backend == "sqlite":
        db = sqlite3.connect(lib_ctx.settings.database_path)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "tracks_fts" in tables
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
        with lib_ctx.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    else:
        indexes = {ix["name"] for ix in inspector.get_indexes("tracks")}
        assert BACKEND_ONLY["postgresql"] <= indexes
        with lib_ctx.engine.connect() as conn:
            assert conn.exec_driver_sql(
                "SELECT extname FROM pg_extension WHERE extname = 'unaccent'").scalar() \
                == "unaccent"
    fks = {fk["name"]: fk for fk in inspector.get_foreign_keys("duplicate_groups")}
    canonical = fks["fk_duplicate_groups_canonical_track_id_tracks"]
    assert canonical["referred_table"] == "tracks"
    assert canonical["options"].get("ondelete") == "SET NULL"


def test_unknown_route_is_404_envelope(lib_server) -> None:
    """An unknown path answers 404 with the library's error envelope."""
    r = httpx.get(f"{lib_server.url}/api/nope")
    assert r.status_code == 404
    assert r.json()["success"] is False


def test_migrations_match_the_models(lib_ctx, lib_backend) -> None:
    """The migrated schema has every table, column, index and key the ORM models declare.

    The only differences are the backend's own search and sort objects, which
    the migrations create and the models do not declare.
    """
    import warnings

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from taperoom.library import models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # expression indexes cannot be reflected on SQLite
        with lib_ctx.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    extra = BACKEND_ONLY[lib_backend]
    unexpected = [d for d in diff if not any(name in str(d) for name in extra)]
    assert unexpected == []
    if lib_backend == "postgresql":
        assert sorted(d[1].name for d in diff) == sorted(extra)
        assert all(d[0] == "remove_index" for d in diff)


def _plan(ctx: Any, sort: str | None, descending: bool, search: str | None = None) -> str:
    """The database's query plan of the track list query the repository builds."""
    statements: list[tuple[Any, str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "ORDER BY" in statement:
            statements.append((conn, statement, parameters))

    sa.event.listen(ctx.engine, "before_cursor_execute", capture)
    try:
        with ctx.db() as session:
            own = session.connection()
            repo.list_tracks(session, repo.TrackFilters(search=search), sort=sort,
                             descending=descending)
    finally:
        sa.event.remove(ctx.engine, "before_cursor_execute", capture)
    # the app's background duties share the engine: keep this session's statement only
    [(statement, parameters)] = [(st, p) for conn, st, p in statements if conn is own]
    with ctx.engine.begin() as conn:
        if ctx.engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        else:
            # an empty table is cheaper to sort than to walk: ask for the plan
            # the planner takes when walking an index is possible at all
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            if search is None:  # GIN indexes are only read by bitmap scans
                conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters)
        return "\n".join(str(r) for r in rows.fetchall())


def test_sorting_by_artist_uses_the_expression_index(lib_ctx, lib_backend) -> None:
    """The track list's case-insensitive artist sort is served by an index, not a full sort."""
    plan = _plan(lib_ctx, "artist", False)
    if lib_backend == "sqlite":
        assert "USING INDEX ix_tracks_lower_artist" in plan
    else:
        assert "Index Scan using ix_tracks_lower_artist " in plan
        assert "Sort" not in plan
        plan = _plan(lib_ctx, "title", True)
        assert "Index Scan using ix_tracks_lower_title_desc " in plan
        assert "Sort" not in plan
        # the default order (newest first) walks the date_added index backwards
        plan = _plan(lib_ctx, "date_added", True)
        assert "Index Scan Backward using ix_tracks_date_added" in plan


def test_search_uses_the_full_text_index(lib_ctx, lib_backend) -> None:
    """Search reads the backend's full-text index (FTS5 table, GIN index), not every row."""
    plan = _plan(lib_ctx, None, True, search="daft pu")
    if lib_backend == "sqlite":
        assert "VIRTUAL TABLE INDEX" in plan and "tracks_fts" in plan
    else:
        assert "Bitmap Index Scan on ix_tracks_search" in plan
