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
