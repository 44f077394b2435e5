"""The list answers built from wire-ready rows equal the objects built from the ORM.

``GET /api/playlists/:id`` and ``GET /api/tracks`` select times as ISO text and
flags as 0/1 in SQL (:mod:`taperoom.library.repository.wirevalues`) and serialise
with orjson; here their JSON is compared, key order and number types included,
with the construction from ORM objects (:func:`~taperoom.library.schemas.track_dict`,
:func:`~taperoom.playlists.views.playlist_dict`, :func:`~taperoom.library.schemas.iso`),
on tracks with every field set (times with microseconds, booleans true, unicode,
floats of 17 digits, big integers) and tracks with every field it may leave null.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from taperoom.db import transaction
from taperoom.library import models
from taperoom.library.schemas import TRACK_DERIVED, TRACK_FIELDS, iso, track_dict
from taperoom.playlists.views import playlist_dict
from tests.library.conftest import backend_of
from tests.library.playlistkit import add, api_client, create  # noqa: F401 (api fixture)

pytestmark = pytest.mark.backends()

TEXT = 'Café – 東京 🎧 "quoted" \\ back\tslash\u00a0nbsp \u2028 ﬁ'
#: Times whose microseconds tell truncation (…987) from rounding (…988).
WHEN = datetime(2025, 10, 31, 23, 59, 59, 987654)


def full_track(i: int, directory_id: str, group_id: int) -> models.Track:
    """A track with every column of the track object set (none null)."""
    values: dict[str, Any] = {}
    table = models.Track.__table__
    for n, name in enumerate(TRACK_FIELDS):
        if name in TRACK_DERIVED or name == "id":
            continue
        column = table.c[name]
        python = column.type.python_type if name != "user_fields" else list
        if python is datetime:
            values[name] = WHEN - timedelta(days=n, microseconds=i)
        elif python is bool:
            values[name] = True
        elif python is float:
            values[name] = (n + 1) / 3 * (-1) ** n + i
        elif python is int:
            values[name] = n + i
        elif python is list:
            values[name] = ["bpm", "mode"]
        else:
            length = getattr(column.type, "length", None)
            values[name] = f"{i} {name} {TEXT}"[:length]
    values.update(file_path=f"/music/{TEXT}/{i}.flac", file_size=2**40 + i,
                  library_directory_id=directory_id, duplicate_group_id=group_id,
                  musical_key=i % 12, mode=i % 2, rating=5, energy_level=10, year=1999,
                  bpm=128.0, loudness=1e300, color_tag="#ff00ff")
    return models.Track(**values)


@pytest.fixture
def rows(lib_ctx: Any) -> dict[str, Any]:
    """Three full tracks and two sparse ones, all in one playlist whose entries have
    every column set."""
    with transaction(lib_ctx.db) as s:
        directory = models.LibraryDirectory(path=f"/music/{TEXT}", name=TEXT)
        group = models.DuplicateGroup(file_hash="ab" * 32)
        s.add_all([directory, group])
        s.flush()
        tracks = [full_track(i, directory.id, group.id) for i in range(3)]
        tracks += [models.Track(file_path=f"/music/sparse {i}.mp3") for i in range(2)]
        s.add_all(tracks)
        s.flush()
        ids = [t.id for t in tracks]
    return {"ids": ids}


def canonical(value: Any) -> str:
    """JSON text of a parsed value: equal texts mean equal values, number types
    (1 vs 1.0) and key order."""
    return json.dumps(value, ensure_ascii=False)


def expected_playlist(ctx: Any, playlist_id: str) -> dict[str, Any]:
    """The playlist object with its entries, built from ORM objects."""
    with ctx.db() as s:
        playlist = s.get(models.Playlist, playlist_id)
        entries = s.scalars(select(models.PlaylistTrack)
                            .where(models.PlaylistTrack.playlist_id == playlist_id)
                            .order_by(models.PlaylistTrack.position)).all()
        out = playlist_dict(playlist)
        out["tracks"] = [
            {"playlist_id": e.playlist_id, "track_id": e.track_id, "position": e.position,
             "date_added": iso(e.date_added), "played_at": e.played_at,
             "play_duration": e.play_duration, "notes": e.notes, "cue_in": e.cue_in,
             "cue_out": e.cue_out, "rating_in_context": e.rating_in_context,
             "track": track_dict(s.get(models.Track, e.track_id))}
            for e in entries]
    return out


def test_playlist_detail_equals_orm_objects(api: httpx.Client, lib_ctx: Any,
                                            rows: dict[str, Any]) -> None:
    made = create(api, description=TEXT)
    assert add(api, made["id"], rows["ids"], notes=TEXT).status_code == 200
    pt = models.PlaylistTrack
    with transaction(lib_ctx.db) as s:
        s.execute(sa.update(pt).where(pt.playlist_id == made["id"]).values(
            played_at=1_761_955_199_123, play_duration=321, cue_in=1, cue_out=2,
            rating_in_context=4, date_added=WHEN))

    r = api.get(f"/api/playlists/{made['id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert canonical(body) == canonical(expected_playlist(lib_ctx, made["id"]))
    first = body["tracks"][0]
    assert first["date_added"] == "2025-10-31T23:59:59.987Z"  # truncated, not rounded
    assert first["track"]["is_missing"] == 1 and first["track"]["has_artwork"] == 1
    assert first["track"]["camelot"] is not None and first["track"]["user_fields"]
    assert all(first["track"][name] is not None for name in TRACK_FIELDS)
    sparse = body["tracks"][-1]["track"]
    assert (sparse["is_missing"], sparse["has_artwork"], sparse["date_analyzed"]) == (0, 0, None)


def test_track_page_equals_orm_objects(api: httpx.Client, lib_ctx: Any,
                                       rows: dict[str, Any]) -> None:
    r = api.get("/api/tracks", params={"limit": 1000, "sort": "title", "order": "asc"})
    assert r.status_code == 200
    data = r.json()["data"]
    with lib_ctx.db() as s:
        expected = {t.id: track_dict(t) for t in s.scalars(select(models.Track))}
    assert sorted(t["id"] for t in data) == sorted(rows["ids"])
    for track in data:
        assert canonical(track) == canonical(expected[track["id"]])


@pytest.mark.backends("sqlite")
def test_times_stored_in_other_forms(api: httpx.Client, lib_ctx: Any,
                                     rows: dict[str, Any]) -> None:
    """SQLite text that SQLAlchemy did not write (no fraction, a ``T`` and an offset)
    still answers the ISO form of the time it reads as."""
    assert backend_of(lib_ctx) == "sqlite"
    stored = {"2025-01-02 03:04:05": "2025-01-02T03:04:05.000Z",
              "2025-01-02T03:04:05.250+02:00": "2025-01-02T01:04:05.250Z",
              "2025-01-02T03:04:05.123Z": "2025-01-02T03:04:05.123Z"}
    ids = rows["ids"][:len(stored)]
    with lib_ctx.engine.begin() as conn:
        for track_id, text in zip(ids, stored, strict=True):
            conn.execute(sa.text("UPDATE tracks SET last_played = :t WHERE id = :id"),
                         {"t": text, "id": track_id})
    data = api.get("/api/tracks", params={"limit": 1000}).json()["data"]
    answered = {t["id"]: t["last_played"] for t in data}
    with lib_ctx.db() as s:
        for track_id, (_, wire) in zip(ids, stored.items(), strict=True):
            assert answered[track_id] == wire
            assert iso(s.get(models.Track, track_id).last_played) == wire
