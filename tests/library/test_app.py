"""The library app starts on a fresh database with its full schema."""

from __future__ import annotations

import sqlite3

import httpx


def test_fresh_database_is_complete_after_start(lib_server, lib_ctx) -> None:
    """Starting the app migrates a new SQLite file: all tables, FTS index, WAL, settings rows."""
    body = httpx.get(f"{lib_server.url}/health").json()
    assert body["status"] == "ok" and body["timestamp"].endswith("Z")
    db = sqlite3.connect(lib_ctx.settings.database_path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"tracks", "library_directories", "duplicate_groups", "file_operations", "settings",
            "hot_cues", "playlists", "playlist_tracks", "waveforms", "analysis_jobs",
            "tracks_fts"} <= tables
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT count(*) FROM settings").fetchone()[0] == 19


def test_unknown_route_is_404_envelope(lib_server) -> None:
    """An unknown path answers 404 with the library's error envelope."""
    r = httpx.get(f"{lib_server.url}/api/nope")
    assert r.status_code == 404
    assert r.json()["success"] is False


def test_migrations_match_the_models(lib_ctx) -> None:
    """The migrated schema has every table, column and index the ORM models declare."""
    import warnings

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from taperoom.library import models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # expression indexes cannot be reflected on SQLite
        with lib_ctx.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    assert [d for d in diff if "tracks_fts" not in str(d)] == []


def test_sorting_by_artist_uses_the_expression_index(lib_ctx) -> None:
    """The track list's case-insensitive artist sort is served by an index, not a full sort."""
    with lib_ctx.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM tracks "
            "ORDER BY lower(artist) ASC NULLS LAST, id ASC LIMIT 50").fetchall()
    assert any("USING INDEX ix_tracks_lower_artist" in str(row) for row in plan)
