"""Input that fits no database column is refused (400) or not found (404), never a 500.

PostgreSQL is stricter than SQLite: text may not hold NUL characters and an
``integer`` has 4 bytes. The same requests get the same answers on both backends.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.db import transaction
from taperoom.library import models

pytestmark = pytest.mark.backends()

HUGE = 10**30
BEYOND_INTEGER = 2**31


@pytest.fixture
def lib(lib_ctx: Any, tmp_path: Path, corpus: Path) -> dict[str, Any]:
    """A library folder with one real file and its track row."""
    root = tmp_path / "music"
    root.mkdir()
    path = root / "a.mp3"
    shutil.copyfile(corpus / "scanner/real_music_tagged/01 - Muldjord - Armygeddon.mp3", path)
    with transaction(lib_ctx.db) as s:
        directory = models.LibraryDirectory(path=str(root), name="music")
        s.add(directory)
        s.flush()
        track = models.Track(file_path=str(path), title="A", library_directory_id=directory.id,
                             relative_path="a.mp3")
        s.add(track)
    (root / "b.mp3").write_bytes(path.read_bytes())
    return {"root": root, "track": track.id, "dir": directory.id, "other": root / "b.mp3"}


def call(server: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request on a fresh connection (a failed request must not poison the next)."""
    return httpx.request(method, server.url + path, timeout=30, **kw)


def test_nul_characters_in_text_are_refused(lib_server, lib, tmp_path) -> None:
    """Tags, cue names, setting values/keys/categories and folder names with NUL are 400."""
    tid = lib["track"]
    (tmp_path / "other").mkdir()
    requests = [
        ("PUT", f"/api/tracks/{tid}", {"json": {"title": "x\x00y"}}, "title"),
        ("PUT", f"/api/tracks/{tid}", {"json": {"comment": "\x00"}}, "comment"),
        ("POST", "/api/tracks", {"json": {"file_path": str(lib["other"]), "artist": "a\x00"}},
         "artist"),
        ("POST", f"/api/tracks/{tid}/hot-cues/1", {"json": {"position": 1, "name": "n\x00"}},
         "name"),
        ("PUT", "/api/settings/ui_theme", {"json": {"value": "dark\x00"}}, "value"),
        ("PUT", "/api/settings/a%00b", {"json": {"value": "x"}}, "key"),
        ("PUT", "/api/settings/theme2", {"json": {"value": "x", "category": "c\x00"}},
         "category"),
        ("PUT", "/api/settings", {"json": {"settings": [{"key": "k\x00", "value": 1}]}},
         "settings.0.key"),
        ("POST", "/api/library/directories",
         {"json": {"path": str(tmp_path / "other"), "name": "n\x00"}}, "name"),
        ("GET", "/api/tracks", {"params": {"artist": "\x00"}}, "artist"),
        ("GET", "/api/tracks", {"params": {"genre": "a\x00b"}}, "genre"),
    ]
    for method, path, kw, field in requests:
        r = call(lib_server, method, path, **kw)
        assert r.status_code == 400, (method, path, kw, r.text)
        body = r.json()
        assert body["success"] is False
        if body["error"] == "Validation failed":
            assert field in [d["field"] for d in body["details"]], body
        else:
            assert "NUL" in body["error"], body
    # nothing was stored
    track = call(lib_server, "GET", f"/api/tracks/{tid}").json()["data"]
    assert track["title"] == "A" and track["comment"] is None
    assert call(lib_server, "GET", "/api/settings/ui_theme").json()["data"]["value"] == "dark"
    # JSON settings keep NUL escaped inside their text: allowed
    r = call(lib_server, "PUT", "/api/settings/blob", json={"value": {"a": "\x00"}})
    assert r.status_code == 200 and r.json()["data"]["value"] == {"a": "\x00"}


def test_search_treats_nul_as_a_blank(lib_server, lib) -> None:
    """A NUL in a search is a word separator: 'A\\x00' finds 'A', a lone NUL finds all."""
    for params in ({"q": "\x00"}, {"q": "a\x00"}):
        r = call(lib_server, "GET", "/api/tracks/search", params=params)
        assert r.status_code == 200, r.text
        assert [t["id"] for t in r.json()["data"]] == [lib["track"]]
    r = call(lib_server, "GET", "/api/tracks", params={"search": "\x00zz"})
    assert r.status_code == 200 and r.json()["pagination"]["total"] == 0


def test_numbers_beyond_the_columns_are_refused(lib_server, lib) -> None:
    """Pages, group ids and audio properties past what the columns hold: 400 or 404."""
    bad_queries = [
        ("/api/tracks", {"page": 10**18, "limit": 1000}),
        ("/api/tracks", {"page": HUGE}),
        ("/api/tracks", {"duplicate_group_id": BEYOND_INTEGER}),
        ("/api/tracks", {"duplicate_group_id": HUGE}),
        ("/api/tracks/search", {"q": "a", "page": 10**18}),
        ("/api/duplicates", {"page": 10**18}),
        (f"/api/library/directories/{lib['dir']}/missing", {"page": 10**18}),
    ]
    for path, params in bad_queries:
        r = call(lib_server, "GET", path, params=params)
        assert r.status_code == 400, (path, params, r.text)
        assert r.json()["error"] == "Validation failed"
    for gid in (BEYOND_INTEGER, HUGE, 0, -1):
        r = call(lib_server, "GET", f"/api/duplicates/{gid}")
        assert r.status_code == 404, (gid, r.text)
        r = call(lib_server, "POST", f"/api/duplicates/{gid}/resolve", json={})
        assert r.status_code == 404, (gid, r.text)
    for field in ("sample_rate", "bit_rate"):
        r = call(lib_server, "POST", "/api/tracks",
                 json={"file_path": str(lib["other"]), field: BEYOND_INTEGER})
        assert r.status_code == 400, (field, r.text)
        assert r.json()["details"][0]["field"] == field
    # the largest values that fit are fine
    r = call(lib_server, "GET", "/api/tracks", params={"page": 1_000_000_000, "limit": 1000})
    assert r.status_code == 200 and r.json()["data"] == []
    r = call(lib_server, "POST", "/api/tracks",
             json={"file_path": str(lib["other"]), "bit_rate": BEYOND_INTEGER - 1})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["bit_rate"] == BEYOND_INTEGER - 1
