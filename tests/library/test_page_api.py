"""API the library's page needs beside the contract: the ``is_analyzed`` filter and
the energy sorts of ``GET /api/tracks``, and ``GET /api/library/directories/server-folders``
(the folder picker)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.db import transaction
from taperoom.library import models


@pytest.fixture
def api(lib_server: Any) -> Any:
    """An HTTP client of the running library server."""
    with httpx.Client(base_url=lib_server.url) as client:
        yield client


def _tracks(ctx: Any, tmp_path: Path) -> list[str]:
    rows = [
        {"title": "a", "energy": 0.2, "energy_level": 3, "date_analyzed": datetime(2024, 1, 1)},
        {"title": "b", "energy": 0.9, "energy_level": 8, "date_analyzed": datetime(2024, 1, 2)},
        {"title": "c"},
    ]
    with transaction(ctx.db) as s:
        objs = [models.Track(file_path=str(tmp_path / f"{r['title']}.mp3"), **r) for r in rows]
        s.add_all(objs)
    return [o.id for o in objs]


def test_is_analyzed_filter_and_energy_sorts(api: httpx.Client, lib_ctx: Any,
                                             tmp_path: Path) -> None:
    """``is_analyzed=true|false`` splits the tracks by ``date_analyzed``; ``sort=energy``,
    ``energy_level`` and ``date_analyzed`` order them, NULLs last."""
    a, b, c = _tracks(lib_ctx, tmp_path)

    def ids(**params: Any) -> list[str]:
        r = api.get("/api/tracks", params=params)
        assert r.status_code == 200, r.text
        return [t["id"] for t in r.json()["data"]]

    assert sorted(ids(is_analyzed="true")) == sorted([a, b])
    assert ids(is_analyzed="false") == [c]
    assert ids(sort="energy", order="desc") == [b, a, c]
    assert ids(sort="energy_level", order="asc") == [a, b, c]
    assert ids(sort="date_analyzed", order="desc") == [b, a, c]
    assert api.get("/api/tracks", params={"is_analyzed": "maybe"}).status_code == 400


def test_server_folders_lists_one_level(api: httpx.Client, tmp_path: Path) -> None:
    """Sub-folders sorted without case, dot-folders and files left out, the parent
    named, and the folder policy's verdict on each."""
    root = tmp_path / "picker"
    for name in ("b", "A", ".hidden", "c/d"):
        (root / name).mkdir(parents=True)
    (root / "file.mp3").write_bytes(b"x")
    r = api.get("/api/library/directories/server-folders", params={"path": str(root)})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["path"] == str(root.resolve())
    assert data["parent"] == str(root.resolve().parent)
    assert [f["name"] for f in data["folders"]] == ["A", "b", "c"]
    assert data["folders"][0] == {"name": "A", "path": str(root.resolve() / "A"),
                                  "refused": None}
    assert data["truncated"] is False
    etc = api.get("/api/library/directories/server-folders", params={"path": "/"}).json()
    assert etc["data"]["parent"] is None
    assert etc["data"]["refused"]  # the filesystem root is no library folder
    assert next(f for f in etc["data"]["folders"] if f["name"] == "etc")["refused"]


def test_server_folders_errors(api: httpx.Client, tmp_path: Path) -> None:
    """A relative path is 400, a folder that does not exist (or a file) 404; no path
    lists the home folder."""
    url = "/api/library/directories/server-folders"
    assert api.get(url, params={"path": "relative/x"}).status_code == 400
    assert api.get(url, params={"path": str(tmp_path / "nope")}).status_code == 404
    (tmp_path / "f").write_text("x")
    assert api.get(url, params={"path": str(tmp_path / "f")}).status_code == 404
    home = api.get(url)
    assert home.status_code == 200
    assert home.json()["data"]["path"] == str(Path.home().resolve())


def test_smart_preview_counts_and_lists_matches(api: httpx.Client, lib_ctx: Any,
                                                tmp_path: Path) -> None:
    """``POST /api/playlists/smart/preview``: the tracks nested criteria match now
    (count, explanation, the first `limit` tracks) without creating a playlist; bad
    criteria are 400."""
    rows = [{"title": f"t{i}", "bpm": 118.0 + i, "genre": "house" if i % 2 else "techno"}
            for i in range(6)]
    with transaction(lib_ctx.db) as s:
        s.add_all(models.Track(file_path=str(tmp_path / f"{r['title']}.mp3"), **r)
                  for r in rows)
    body = {"criteria": {"all": [{"bpm_min": 120},
                                 {"any": [{"genres": ["house"]}, {"title_contains": "t2"}]}],
                         "sort_by": "bpm", "sort_order": "asc"}, "limit": 2}
    r = api.post("/api/playlists/smart/preview", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["count"] == 3  # t2 (title), t3 and t5 (house)
    assert [t["title"] for t in data["tracks"]] == ["t2", "t3"]
    assert "120" in data["explanation"]
    assert api.get("/api/playlists").json()["count"] == 0
    bad = api.post("/api/playlists/smart/preview", json={"criteria": {"bpm_min": "fast"}})
    assert bad.status_code == 400
    assert api.post("/api/playlists/smart/preview", json={"criteria": {}, "limit": 0}
                    ).status_code in (400, 422)


def test_page_and_its_files_are_served_by_the_app(api: httpx.Client) -> None:
    """``GET /`` is the page; every script it loads (its import map's libraries and
    its modules) comes from the app itself, none from another host."""
    import re

    page = api.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    urls = re.findall(r'"(/static/[^"?]+)', page.text) + re.findall(r"src=\"(/static/[^\"?]+)",
                                                                     page.text)
    assert "/static/vendor/preact.module.js" in urls and "/static/library.js" in urls
    assert "http://" not in page.text and "https://" not in page.text
    for url in set(urls):
        r = api.get(url)
        assert r.status_code == 200, url
    for name in ("api", "keys", "html", "tracktable", "trackview", "playlists", "panels"):
        js = api.get(f"/static/{name}.js")
        assert js.status_code == 200
        assert "https://" not in js.text and "http://" not in js.text
