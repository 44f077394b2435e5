"""Helpers of the playlist tests: track rows on real files, an HTTP client, checks."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from taperoom.db import transaction
from taperoom.library import models

SOURCE = "scanner/real_music_tagged/01 - Muldjord - Armygeddon.mp3"


@pytest.fixture(name="api")
def api_client(lib_server: Any) -> Iterator[httpx.Client]:
    """The ``api`` fixture: an HTTP client of the running library server (import it
    into a test module to use it)."""
    with httpx.Client(base_url=lib_server.url, timeout=30) as client:
        yield client


def make_tracks(ctx: Any, corpus: Path, folder: Path, count: int) -> list[str]:
    """`count` track rows, each on its own copy of a corpus file, with distinct tags
    (``bpm`` 120 + i, ``genre`` alternating, ``duration_seconds`` 100.5 + i)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    with transaction(ctx.db) as s:
        for i in range(count):
            path = folder / f"track{i:03d}.mp3"
            shutil.copyfile(corpus / SOURCE, path)
            track = models.Track(file_path=str(path), title=f"Title {i}", artist=f"Artist {i}",
                                 bpm=120.0 + i, genre="House" if i % 2 else "Techno",
                                 musical_key=i % 12, mode=i % 2, energy=0.5,
                                 duration_seconds=100.5 + i)
            s.add(track)
            s.flush()
            ids.append(track.id)
    return ids


def entries(ctx: Any, playlist_id: str) -> list[tuple[str, int, int]]:
    """``(track_id, occurrence, position)`` of a playlist's rows, by position."""
    pt = models.PlaylistTrack
    with ctx.db() as s:
        rows = s.execute(select(pt.track_id, pt.occurrence, pt.position)
                         .where(pt.playlist_id == playlist_id).order_by(pt.position)).all()
    return [(r[0], int(r[1]), int(r[2])) for r in rows]


def assert_dense(ctx: Any, playlist_id: str) -> list[str]:
    """Positions are exactly 0..n-1; returns the track ids in order."""
    rows = entries(ctx, playlist_id)
    assert [r[2] for r in rows] == list(range(len(rows))), rows
    return [r[0] for r in rows]


def create(api: httpx.Client, **body: Any) -> dict[str, Any]:
    """POST /api/playlists; the 201 body."""
    r = api.post("/api/playlists", json={"name": "Set", **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


def add(api: httpx.Client, playlist_id: str, track_ids: list[str], **extra: Any
        ) -> httpx.Response:
    """POST /api/playlists/:id/tracks."""
    return api.post(f"/api/playlists/{playlist_id}/tracks",
                    json={"track_ids": track_ids, **extra})
