"""``GET /api/tracks/{id}/audio``: a track's file for the page's player, with ranges,
confined to its library folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.db import transaction
from taperoom.library import models

TAGGED = "scanner/real_music_tagged"
MP3 = "01 - Muldjord - Armygeddon.mp3"
FLAC = "10 - Maxstack - Advanced Simulacra (ünïcödé ☆ 日本語).flac"


@pytest.fixture
def api(lib_server: Any) -> Any:
    """An HTTP client of the running library server."""
    with httpx.Client(base_url=lib_server.url) as client:
        yield client


@pytest.fixture
def folder(tmp_path: Path, corpus: Path, lib_ctx: Any) -> dict[str, Any]:
    """A library folder holding two real corpus files, each a track."""
    root = tmp_path / "music"
    root.mkdir()
    ids = {}
    with transaction(lib_ctx.db) as s:
        directory = models.LibraryDirectory(path=str(root), name="music")
        s.add(directory)
        s.flush()
        for name in (MP3, FLAC):
            path = Path(shutil.copyfile(corpus / TAGGED / name, root / name))
            track = models.Track(file_path=str(path), relative_path=name,
                                 library_directory_id=directory.id, title=name)
            s.add(track)
            s.flush()
            ids[name] = track.id
    return {"root": root, "dir_id": directory.id, "ids": ids}


def _track(ctx: Any, path: Path, dir_id: str | None) -> str:
    with transaction(ctx.db) as s:
        track = models.Track(file_path=str(path), relative_path=path.name,
                             library_directory_id=dir_id, title=path.name)
        s.add(track)
    return track.id


def test_whole_file_with_its_media_type(api: httpx.Client, folder: dict[str, Any]) -> None:
    """Without Range: 200, the file's bytes, its type, and ranges announced."""
    body = (folder["root"] / MP3).read_bytes()
    r = api.get(f"/api/tracks/{folder['ids'][MP3]}/audio")
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["content-type"] == "audio/mpeg"
    assert r.headers["accept-ranges"] == "bytes"
    assert int(r.headers["content-length"]) == len(body)
    r = api.get(f"/api/tracks/{folder['ids'][FLAC]}/audio")
    assert r.headers["content-type"] == "audio/flac"
    head = api.head(f"/api/tracks/{folder['ids'][FLAC]}/audio")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == (folder["root"] / FLAC).stat().st_size


def test_ranges_are_206_and_416(api: httpx.Client, folder: dict[str, Any]) -> None:
    """A range is 206 with Content-Range and exactly those bytes; an open-ended and a
    suffix range too; a range past the end is 416 with the size."""
    body = (folder["root"] / MP3).read_bytes()
    url = f"/api/tracks/{folder['ids'][MP3]}/audio"
    r = api.get(url, headers={"Range": "bytes=100-1099"})
    assert r.status_code == 206
    assert r.content == body[100:1100]
    assert r.headers["content-range"] == f"bytes 100-1099/{len(body)}"
    r = api.get(url, headers={"Range": f"bytes={len(body) - 10}-"})
    assert r.status_code == 206 and r.content == body[-10:]
    r = api.get(url, headers={"Range": "bytes=-20"})
    assert r.status_code == 206 and r.content == body[-20:]
    r = api.get(url, headers={"Range": f"bytes={len(body) + 5}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(body)}"


def test_unknown_and_missing_are_404(api: httpx.Client, folder: dict[str, Any],
                                     lib_ctx: Any) -> None:
    """An unknown id is the contract's 404; a track whose file is gone is
    ``Track file missing`` (JSON, never a 500)."""
    r = api.get("/api/tracks/0b7d7c4e-8e8e-4c57-9d7f-53a8f1b7e1aa/audio")
    assert r.status_code == 404 and r.json()["error"] == "Track not found"
    assert api.get("/api/tracks/not-a-uuid/audio").status_code == 404
    (folder["root"] / MP3).unlink()
    r = api.get(f"/api/tracks/{folder['ids'][MP3]}/audio")
    assert r.status_code == 404
    assert "Track file missing" in r.text


def test_confined_to_the_library_folder(api: httpx.Client, folder: dict[str, Any],
                                        lib_ctx: Any, tmp_path: Path, corpus: Path) -> None:
    """A track row naming a file outside its library folder, a link inside the folder
    leading out of it, or a file that is not audio, is never sent."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    secret = Path(shutil.copyfile(corpus / TAGGED / MP3, outside / "secret.mp3"))
    other = _track(lib_ctx, secret, folder["dir_id"])
    assert api.get(f"/api/tracks/{other}/audio").status_code == 404
    link = folder["root"] / "link.mp3"
    os.symlink(secret, link)
    linked = _track(lib_ctx, link, folder["dir_id"])
    assert api.get(f"/api/tracks/{linked}/audio").status_code == 404
    text = folder["root"] / "notes.txt"
    text.write_text("not audio")
    plain = _track(lib_ctx, text, folder["dir_id"])
    assert api.get(f"/api/tracks/{plain}/audio").status_code == 404
    # a track with no folder plays only from inside some library folder
    inside = Path(shutil.copyfile(folder["root"] / FLAC, folder["root"] / "loose.flac"))
    loose = _track(lib_ctx, inside, None)
    assert api.get(f"/api/tracks/{loose}/audio").status_code == 200
    shutil.copyfile(secret, outside / "copy.mp3")
    orphan = _track(lib_ctx, outside / "copy.mp3", None)
    assert api.get(f"/api/tracks/{orphan}/audio").status_code == 404
