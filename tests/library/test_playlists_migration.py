"""Revision 0007 (playlist folders, session replays) up and down on existing data."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from taperoom.db import make_engine, sqlite_url
from taperoom.library import migrate

pytestmark = pytest.mark.backends()


@pytest.fixture
def empty_url(lib_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database of the test's backend."""
    if lib_backend == "postgresql":
        return str(request.getfixturevalue("pg_empty_database"))
    return sqlite_url(tmp_path / "empty.db")


def _alembic(engine: sa.Engine, url: str, action: str, revision: str) -> None:
    cfg = migrate.alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)


def test_entries_survive_the_upgrade_and_replays_go_densely_on_downgrade(empty_url: str
                                                                         ) -> None:
    """Entries made at 0006 get occurrence 0; after replays are logged, a downgrade to
    0006 drops them and closes the gaps; folders come and go."""
    engine = make_engine(empty_url)
    try:
        _alembic(engine, empty_url, "upgrade", "0006")
        now = "2026-01-01 00:00:00"
        with engine.begin() as c:
            for tid in ("t1", "t2"):
                c.execute(sa.text(
                    "INSERT INTO tracks (id, file_path, file_hash, is_missing, has_artwork, "
                    "date_added, analysis_version, play_count, rating) VALUES "
                    "(:id, :p, NULL, false, false, :now, 1, 0, 0)"),
                    {"id": tid, "p": f"/m/{tid}.mp3", "now": now})
            c.execute(sa.text(
                "INSERT INTO playlists (id, name, date_created, date_modified, is_smart, type, "
                "is_temporary, is_readonly, is_favorite, created_at, updated_at) VALUES "
                "('p1', 'S', :now, :now, false, 'session', false, false, false, :now, :now)"),
                {"now": now})
            for pos, tid in enumerate(("t1", "t2")):
                c.execute(sa.text("INSERT INTO playlist_tracks (playlist_id, track_id, position,"
                                  " date_added) VALUES ('p1', :t, :pos, :now)"),
                          {"t": tid, "pos": pos, "now": now})
        _alembic(engine, empty_url, "upgrade", "head")
        with engine.begin() as c:
            rows = c.execute(sa.text("SELECT track_id, occurrence, position FROM playlist_tracks"
                                     " ORDER BY position")).all()
            assert [tuple(r) for r in rows] == [("t1", 0, 0), ("t2", 0, 1)]
            c.execute(sa.text("UPDATE playlist_tracks SET position = position + 1 "
                              "WHERE track_id = 't2'"))
            c.execute(sa.text("INSERT INTO playlist_tracks (playlist_id, track_id, occurrence,"
                              " position, date_added) VALUES ('p1', 't1', 1, 1, :now)"),
                      {"now": now})
            c.execute(sa.text("INSERT INTO playlist_folders (id, name, created_at, updated_at)"
                              " VALUES ('f1', 'Crate', :now, :now)"), {"now": now})
        _alembic(engine, empty_url, "downgrade", "0006")
        with engine.begin() as c:
            rows = c.execute(sa.text("SELECT track_id, position FROM playlist_tracks"
                                     " ORDER BY position")).all()
            assert [tuple(r) for r in rows] == [("t1", 0), ("t2", 1)]
        assert "playlist_folders" not in sa.inspect(engine).get_table_names()
        _alembic(engine, empty_url, "upgrade", "head")
    finally:
        engine.dispose()
