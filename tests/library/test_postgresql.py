"""PostgreSQL for real: migrations up and down, and the library server on ``DATABASE_URL``.

The migration tests run on both backends from an empty database; the end-to-end
test starts ``taperoom library serve`` as a process with a plain
``postgresql://`` ``DATABASE_URL`` and drives it over HTTP on a real folder of
corpus files: a full scan, lists, search, duplicates, a move, hot cues, settings.
"""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from alembic import command

from taperoom.db import make_engine, normalise_url, sqlite_url
from taperoom.library import migrate
from tests.conftest import PgTestServer
from tests.library.test_scanner import copy_corpus
from tests.polling import wait_for

TABLES = {"tracks", "library_directories", "duplicate_groups", "file_operations", "settings",
          "hot_cues", "playlists", "playlist_tracks", "waveforms", "analysis_jobs",
          "playlist_folders"}
AUDIO = (".mp3", ".flac", ".wav", ".m4a", ".aac", ".ogg", ".wma", ".aif", ".aiff", ".opus",
         ".alac")
COPY = "Copies/Aberrations (copy).mp3"


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(("given", "used"), [
    ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ("  postgresql://h/db\n", "postgresql+psycopg://h/db"),
    ("postgresql+psycopg://h/db", "postgresql+psycopg://h/db"),
    ("postgresql+psycopg2://h/db", "postgresql+psycopg2://h/db"),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
])
def test_database_urls_get_the_psycopg_driver(given: str, used: str) -> None:
    """Plain PostgreSQL URLs are driven by psycopg 3; URLs naming a driver are kept."""
    from taperoom.library.settings import LibrarySettings

    assert normalise_url(given) == used
    settings = LibrarySettings(_env_file=None, database_url=given)  # type: ignore[call-arg]
    assert settings.url == used


# --------------------------------------------------------------------------- migrations


@pytest.fixture
def empty_url(lib_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database of the test's backend."""
    if lib_backend == "postgresql":
        return str(request.getfixturevalue("pg_empty_database"))
    return sqlite_url(tmp_path / "empty.db")


def _alembic(url: str, action: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        cfg = migrate.alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"sqlite_sequence"}
    finally:
        engine.dispose()


@pytest.mark.backends()
def test_migrations_upgrade_downgrade_and_upgrade_again(empty_url: str, lib_backend: str
                                                        ) -> None:
    """Empty -> head -> base -> head: every table comes, goes and comes back."""
    _alembic(empty_url, "upgrade", "head")
    created = _tables(empty_url)
    assert created >= TABLES | {"alembic_version"}
    assert ("tracks_fts" in created) == (lib_backend == "sqlite")
    _alembic(empty_url, "downgrade", "base")
    left = _tables(empty_url)
    assert left == {"alembic_version"}
    _alembic(empty_url, "upgrade", "head")
    assert _tables(empty_url) == created
    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM settings")).scalar() == 19
    finally:
        engine.dispose()


@pytest.mark.backends("postgresql")
def test_0003_adds_the_canonical_key_to_an_existing_postgresql_database(
        pg_empty_database: str) -> None:
    """A database migrated before 0003 (no canonical-track key) gets it; stale ids are cleared."""
    url = pg_empty_database
    _alembic(url, "upgrade", "0002")
    engine = make_engine(url)
    try:
        assert not sa.inspect(engine).get_foreign_keys("duplicate_groups")
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO duplicate_groups (file_hash, canonical_track_id, total_duplicates, "
                "created_at, updated_at) VALUES ('h', 'gone-track', 2, now(), now())"))
        _alembic(url, "upgrade", "head")
        [fk] = sa.inspect(engine).get_foreign_keys("duplicate_groups")
        assert fk["referred_table"] == "tracks" and fk["constrained_columns"] == [
            "canonical_track_id"]
        with engine.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT canonical_track_id FROM duplicate_groups")).scalar() is None
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- end to end


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c)).lower()


def _wait_scan(client: httpx.Client, directory_id: str, timeout: float = 120) -> None:
    wait_for(lambda: not client.get(f"/api/scan/library/{directory_id}/status"
                                    ).json()["data"]["scanning"], timeout, "the scan to end")


def _all_pages(client: httpx.Client, limit: int, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get("/api/tracks", params={"page": page, "limit": limit, **params}).json()
        out.extend(body["data"])
        if page >= body["pagination"]["totalPages"]:
            return out
        page += 1


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_library_server_on_postgresql(pg_server: PgTestServer, corpus: Path, tmp_path: Path,
                                      server_process: Callable[..., Any]) -> None:
    """``taperoom library serve`` with ``DATABASE_URL=postgresql://...``: the whole library flow."""
    name = pg_server.server.create_database()
    try:
        _library_flow(pg_server, name, corpus, tmp_path, server_process)
    finally:
        pg_server.server.drop_database(name)


def _library_flow(pg_server: PgTestServer, name: str, corpus: Path, tmp_path: Path,
                  server_process: Callable[..., Any]) -> None:
    root = copy_corpus(corpus, tmp_path / "music")
    (root / COPY).parent.mkdir()
    shutil.copyfile(root / "09 - Maxstack - Aberrations.mp3", root / COPY)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO)
    url = f"postgresql://postgres@127.0.0.1:{pg_server.server.port}/{name}"
    sqlite_file = tmp_path / "data" / "library.db"
    proc = server_process(["library", "serve"], {
        "DATABASE_URL": url, "DATABASE_PATH": str(sqlite_file), "SCAN_ON_STARTUP": "false",
        "FILE_WATCHER_ENABLED": "false"})
    client = httpx.Client(base_url=proc.url, timeout=60)

    # the folder, and a full scan
    r = client.post("/api/library/directories", json={"path": str(root), "name": "Music"})
    assert r.status_code == 201, r.text
    did = r.json()["data"]["id"]
    r = client.post(f"/api/scan/library/{did}", json={"strategy": "full"})
    assert r.status_code == 202, r.text
    _wait_scan(client, did)
    directory = client.get(f"/api/library/directories/{did}").json()["data"]
    assert directory["total_files"] == len(files) and directory["scan_status"] == "idle"

    # list, paginate, sort, filter
    body = client.get("/api/tracks", params={"limit": 10}).json()
    assert body["pagination"] == {"page": 1, "limit": 10, "total": len(files),
                                  "totalPages": -(-len(files) // 10)}
    paged = _all_pages(client, 7, sort="artist", order="asc")
    assert len(paged) == len(files) == len({t["id"] for t in paged})
    artists = [t["artist"] for t in paged]
    named = [a for a in artists if a is not None]
    assert named == sorted(named, key=str.lower)  # case-insensitive ...
    assert artists == named + [None] * (len(artists) - len(named))  # ... NULLs last
    desc = _all_pages(client, 50, sort="artist", order="desc")
    named_desc = [t["artist"] for t in desc if t["artist"] is not None]
    assert named_desc == sorted(named, key=str.lower, reverse=True)
    metal = client.get("/api/tracks", params={"genre": "METAL", "sort": "title",
                                              "order": "asc"}).json()
    assert [t["title"] for t in metal["data"]] == ["Armygeddon", "Chaos God",
                                                   "Internal Degeneration", "Mutilated Mime"]
    assert metal["pagination"]["total"] == 4
    fast = client.get("/api/tracks", params={"bpm_min": 175, "bpm_max": 200}).json()
    assert fast["pagination"]["total"] == len(fast["data"]) >= 3
    assert all(175 <= t["bpm"] <= 200 for t in fast["data"])
    by_year = client.get("/api/tracks", params={"year_min": 2013, "year_max": 2013}).json()
    assert {t["album"] for t in by_year["data"]} == {"Bach: Sonatas and Partitas"}

    # full-text search: prefix, several words, diacritics, ranking
    def search(q: str, **params: Any) -> list[dict[str, Any]]:
        r = client.get("/api/tracks/search", params={"q": q, "limit": 100, **params})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert r.json()["pagination"]["total"] == len(data)
        return list(data)

    maxstack = search("maxst")
    assert len(maxstack) == 6 and {t["artist"] for t in maxstack} == {"Maxstack"}
    # diacritics and case fold on both sides (the corpus tags are ASCII: retitle one)
    retitled = next(t["id"] for t in maxstack if t["title"] == "Awakening")
    r = client.put(f"/api/tracks/{retitled}", json={"title": "Crème Brûlée (Ünïcödé Mix)"})
    assert r.status_code == 200, r.text
    for q in ("creme brul", "CRÈME", "unicode mix", "brûlée ünï"):
        assert [t["id"] for t in search(q)] == [retitled], q
    assert all("creme" in _fold(t["title"] or "") for t in search("crem"))
    assert {t["title"] for t in search("partita double")} == {
        t["title"] for t in paged if t["title"] and "Double" in t["title"]}
    assert {t["title"] for t in search("endgame by-pro")} == {"By-Product"}
    assert search("garner", sort="title", order="asc")[0]["title"].startswith("Partita")
    assert search("zzzz") == []

    # duplicates: the copy and its original form one group
    # (the corpus's odd/ folder holds same-audio pairs of its own)
    groups = client.get("/api/duplicates", params={"limit": 100}).json()
    assert groups["pagination"]["total"] == len(groups["data"]) >= 1
    for g in groups["data"]:
        assert g["track_count"] == len(g["tracks"]) >= 2
        assert {t["file_hash"] for t in g["tracks"]} == {g["file_hash"]}
    [group] = [g for g in groups["data"]
               if COPY in {t["relative_path"] for t in g["tracks"]}]
    members = {t["relative_path"] for t in group["tracks"]}
    assert members == {"09 - Maxstack - Aberrations.mp3", COPY}
    in_groups = sum(g["track_count"] for g in groups["data"])
    copy_id = next(t["id"] for t in group["tracks"] if t["relative_path"] == COPY)
    assert client.get(f"/api/duplicates/{group['id']}").json()["data"]["id"] == group["id"]

    # move a file inside the library folder
    r = client.post(f"/api/tracks/{copy_id}/move", json={"destination_path": "Moved/Here"})
    assert r.status_code == 200, r.text
    moved = r.json()["data"]
    assert moved["file_path"] == str(root / "Moved/Here/Aberrations (copy).mp3")
    assert (root / "Moved/Here/Aberrations (copy).mp3").is_file()
    assert not (root / COPY).exists()
    track = client.get(f"/api/tracks/{copy_id}").json()["data"]
    assert track["relative_path"] == "Moved/Here/Aberrations (copy).mp3"
    assert track["duplicate_group_id"] == group["id"]

    # hot cues
    r = client.post(f"/api/tracks/{copy_id}/hot-cues/2",
                    json={"position": 12.5, "name": "Drop", "isLoop": True, "loopEnd": 16.0})
    assert r.status_code == 200, r.text
    r = client.post(f"/api/tracks/{copy_id}/hot-cues/2", json={"position": 14.0})
    cue = r.json()["data"]
    assert (cue["position"], cue["is_loop"], cue["cue_index"]) == (14.0, 0, 2)
    r = client.post(f"/api/tracks/{copy_id}/hot-cues/3",
                    json={"position": 1.0, "source": "rekordbox"})
    assert r.status_code == 200, r.text
    cues = client.get(f"/api/tracks/{copy_id}").json()["data"]["hotCues"]
    assert [(c["source"], c["cue_index"]) for c in cues] == [("rekordbox", 3), ("user", 2)]
    r = client.delete(f"/api/tracks/{copy_id}/hot-cues")
    assert r.json()["count"] == 2

    # settings
    r = client.put("/api/settings/ui_theme", json={"value": "light"})
    assert r.json()["data"]["value"] == "light"
    r = client.put("/api/settings", json={"settings": [
        {"key": "buffer_size", "value": "1024"}, {"key": "crossfade", "value": 2.5}]})
    assert [s["value"] for s in r.json()["data"]] == [1024, 2.5]
    assert client.get("/api/settings/crossfade").json()["data"]["type"] == "float"
    assert client.get("/api/settings").json()["count"] == 20

    stats = client.get("/api/tracks/stats").json()["data"]
    assert stats["total"] == len(files) and stats["duplicates"] == in_groups
    client.close()
    proc.stop()

    # it really was PostgreSQL
    assert not sqlite_file.exists()
    with psycopg.connect(host="127.0.0.1", port=pg_server.server.port, user="postgres",
                         dbname=name) as conn:
        assert conn.execute("SELECT count(*) FROM tracks").fetchone() == (len(files),)
        assert conn.execute("SELECT value FROM settings WHERE key = 'ui_theme'").fetchone() \
            == ("light",)


@pytest.mark.backends("postgresql")
def test_search_without_unaccent_still_folds_case_and_prefixes(
        pg_server: PgTestServer, lib_settings: Callable[..., Any]) -> None:
    """A role that may not create ``unaccent``: migrations still pass, search is only
    case-insensitive (``café`` and ``CAFÉ`` find "Café", ``cafe`` does not)."""
    from taperoom.db import transaction
    from taperoom.library import models
    from taperoom.library.context import build_services
    from taperoom.library.repository import tracks as repo

    server = pg_server.server
    name = server.create_database()
    role = f"r_{name}"
    with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", dbname=name,
                         autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')  # no CREATE on the database
        conn.execute(f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"')
    ctx = build_services(lib_settings(
        database_url=f"postgresql://{role}@127.0.0.1:{server.port}/{name}"))
    try:
        with ctx.engine.connect() as conn:
            assert conn.exec_driver_sql(
                "SELECT count(*) FROM pg_extension WHERE extname = 'unaccent'").scalar() == 0
        with transaction(ctx.db) as s:
            s.add_all([models.Track(file_path="/m/1.flac", title="Café Tacvba", artist="Rock"),
                       models.Track(file_path="/m/2.flac", title="Cafeteria", artist="Jazz")])

        def titles(q: str) -> list[str]:
            with ctx.db() as s:
                rows, total = repo.list_tracks(s, repo.TrackFilters(search=q), sort="title",
                                               descending=False)
            assert total == len(rows)
            return [r.title for r in rows]

        assert titles("café") == titles("CAFÉ") == titles("tacvba café") == ["Café Tacvba"]
        assert titles("cafe") == ["Cafeteria"]  # prefix of "cafeteria", not "café"
        assert sorted(titles("caf")) == ["Cafeteria", "Café Tacvba"]
    finally:
        ctx.close()
        server.drop_database(name)
