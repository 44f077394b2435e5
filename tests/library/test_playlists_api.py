"""/api/playlists: shapes and statuses of every route, the contract's bugs fixed."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.library.schemas import PlaylistPublic, TrackPublic
from tests.library.playlistkit import (
    add,
    api_client,  # noqa: F401 (the api fixture)
    assert_dense,
    create,
    entries,
    make_tracks,
)

pytestmark = pytest.mark.backends()

PLAYLIST_KEYS = {"id", "name", "description", "date_created", "date_modified", "is_smart",
                 "smart_criteria", "color", "icon", "type", "session_date", "session_venue",
                 "session_duration", "is_temporary", "is_readonly", "is_favorite",
                 "created_at", "updated_at", "last_accessed", "folder_id"}
ENTRY_KEYS = {"playlist_id", "track_id", "position", "date_added", "played_at",
              "play_duration", "notes", "cue_in", "cue_out", "rating_in_context", "track"}


@pytest.fixture
def tracks(lib_ctx: Any, corpus: Path, tmp_path: Path) -> list[str]:
    """Five track rows on real files."""
    return make_tracks(lib_ctx, corpus, tmp_path / "music", 5)


def bare_error(r: httpx.Response, status: int, error: str | None = None) -> dict[str, Any]:
    """The answer is `status` with the contract's bare ``{error, message}``."""
    assert r.status_code == status, r.text
    body = dict(r.json())
    assert "success" not in body and isinstance(body["message"], str)
    if error is not None:
        assert body["error"] == error, body
    return body


def test_create_get_list_update_delete(api: httpx.Client) -> None:
    """The playlist object's keys, 0/1 booleans, 201 on create, list order and filters."""
    made = create(api, description="Warm-up", color="#112233", icon="music")
    assert set(made) == PLAYLIST_KEYS and "tracks" not in made
    assert (made["type"], made["is_smart"], made["is_favorite"], made["is_readonly"]) == (
        "static", 0, 0, 0)
    assert made["created_at"].endswith("Z") and isinstance(made["last_accessed"], int)
    fav = create(api, name="Peak", is_favorite=True)
    later = create(api, name="Closing")

    body = api.get("/api/playlists").json()
    assert body["count"] == 3 and [p["id"] for p in body["playlists"]] == [
        fav["id"], later["id"], made["id"]]
    assert all(set(p) == PLAYLIST_KEYS | {"track_count"} for p in body["playlists"])
    assert [p["name"] for p in api.get("/api/playlists",
                                       params={"is_favorite": "true"}).json()["playlists"]] \
        == ["Peak"]
    assert api.get("/api/playlists", params={"search": "warm"}).json()["count"] == 1
    found = api.get("/api/playlists/search", params={"q": "clos"}).json()
    assert found["count"] == 1 and found["playlists"][0]["id"] == later["id"]

    detail = api.get(f"/api/playlists/{made['id']}").json()
    assert detail["tracks"] == [] and set(detail) == PLAYLIST_KEYS | {"tracks"}
    bare = api.get(f"/api/playlists/{made['id']}", params={"include_tracks": "false"}).json()
    assert "tracks" not in bare

    r = api.put(f"/api/playlists/{made['id']}", json={"name": "Warm", "is_favorite": True})
    assert r.status_code == 200 and (r.json()["name"], r.json()["is_favorite"]) == ("Warm", 1)
    r = api.delete(f"/api/playlists/{made['id']}")
    assert r.json() == {"message": "Playlist deleted successfully", "id": made["id"]}
    bare_error(api.get(f"/api/playlists/{made['id']}"), 404, "Playlist not found")


def test_unknown_ids_are_404_and_malformed_input_400(api: httpx.Client,
                                                     tracks: list[str]) -> None:
    """Unknown playlist or track: 404 everywhere (the original: 500); malformed bodies,
    ids and queries: 400 ``{error, message, details}``."""
    ghost = str(uuid.uuid4())
    for method, path, body in (
            ("PUT", f"/api/playlists/{ghost}", {"name": "x"}),
            ("DELETE", f"/api/playlists/{ghost}", None),
            ("GET", f"/api/playlists/{ghost}/stats", None),
            ("POST", f"/api/playlists/{ghost}/tracks", {"track_ids": [tracks[0]]}),
            ("PUT", f"/api/playlists/{ghost}/tracks/reorder", {"track_ids": []}),
            ("DELETE", f"/api/playlists/{ghost}/tracks/{tracks[0]}", None),
            ("PUT", f"/api/playlists/{ghost}/tracks/{tracks[0]}", {"notes": "x"}),
            ("POST", f"/api/playlists/{ghost}/duplicate", {"name": "x"}),
            ("GET", f"/api/playlists/{ghost}/export", None),
            ("POST", f"/api/playlists/sessions/{ghost}/track", {"track_id": tracks[0]}),
            ("POST", f"/api/playlists/sessions/{ghost}/finalize", None)):
        bare_error(api.request(method, path, json=body), 404, "Playlist not found")
    pid = create(api)["id"]
    bare_error(add(api, pid, [tracks[0], ghost]), 404, "Track not found")
    assert entries_count(api, pid) == 0  # nothing half-added
    bare_error(api.delete(f"/api/playlists/{pid}/tracks/{tracks[0]}"), 404,
               "Track not found in playlist")

    for body in ({}, {"name": ""}, {"name": "x" * 201}, {"name": "x", "color": "red"},
                 {"name": "x", "type": "smart"}, {"name": "x", "criteria": {"bpm_min": 1}},
                 {"name": "x", "type": "weird"}, {"name": "x", "is_favorite": "maybe"}, []):
        error = bare_error(api.post("/api/playlists", json=body), 400, "Validation failed")
        assert error.get("details") or "criteria" in error["message"]
    bare_error(api.post("/api/playlists", content=b"{not json",
                        headers={"content-type": "application/json"}), 400)
    bare_error(add(api, pid, []), 400)
    bare_error(add(api, pid, ["not-a-uuid"]), 400)
    bare_error(add(api, pid, [tracks[0]], position=-1), 400)
    bare_error(api.put(f"/api/playlists/{pid}/tracks/{tracks[0]}",
                       json={"rating_in_context": 6}), 400)
    bare_error(api.get("/api/playlists/not-a-uuid"), 400)
    bare_error(api.get("/api/playlists/search"), 400)
    bare_error(api.put(f"/api/playlists/{pid}", json={"name": None}), 400)


def entries_count(api: httpx.Client, pid: str) -> int:
    return len(api.get(f"/api/playlists/{pid}").json()["tracks"])


def test_smart_playlist_keeps_its_criteria_as_given(api: httpx.Client) -> None:
    """``criteria`` is required for type smart, stored as given, sent back parsed."""
    criteria = {"bpm_min": 120, "genres": ["House"]}
    made = create(api, name="Smart", type="smart", criteria=criteria)
    assert made["is_smart"] == 1 and made["criteria"] == criteria
    assert made["smart_criteria"] is not None and "bpm_min" in made["smart_criteria"]
    listed = api.get("/api/playlists", params={"type": "smart"}).json()["playlists"]
    assert listed[0]["criteria"] == criteria


def test_tracks_add_position_duplicate_remove_reorder_metadata(
        api: httpx.Client, lib_ctx: Any, tracks: list[str]) -> None:
    """Entries: insertion at a position, 409 for a track already there, dense positions
    after removal, reorder, per-entry metadata; the detail's shape."""
    pid = create(api)["id"]
    r = add(api, pid, tracks[:3], notes="opener")
    assert r.json() == {"message": "Tracks added successfully", "added_count": 3}
    r = add(api, pid, [tracks[3]], position=1)
    assert r.status_code == 200
    assert assert_dense(lib_ctx, pid) == [tracks[0], tracks[3], tracks[1], tracks[2]]
    add(api, pid, [tracks[4]], position=99)  # past the end: appended
    assert assert_dense(lib_ctx, pid)[-1] == tracks[4]

    bare_error(add(api, pid, [tracks[1]]), 409, "Track already in playlist")
    bare_error(add(api, pid, [str(uuid.uuid4())]), 404)
    fresh = create(api, name="Other")["id"]
    bare_error(add(api, fresh, [tracks[0], tracks[0]]), 409)

    r = api.delete(f"/api/playlists/{pid}/tracks/{tracks[3]}")
    assert r.json() == {"message": "Track removed successfully"}
    order = assert_dense(lib_ctx, pid)
    assert order == [tracks[0], tracks[1], tracks[2], tracks[4]]

    new_order = list(reversed(order))
    r = api.put(f"/api/playlists/{pid}/tracks/reorder", json={"track_ids": new_order})
    assert r.json() == {"message": "Tracks reordered successfully"}
    assert assert_dense(lib_ctx, pid) == new_order
    bare_error(api.put(f"/api/playlists/{pid}/tracks/reorder",
                       json={"track_ids": new_order[:2]}), 409)
    assert assert_dense(lib_ctx, pid) == new_order

    r = api.put(f"/api/playlists/{pid}/tracks/{tracks[1]}",
                json={"notes": "drop here", "cue_in": 1500, "cue_out": 200000,
                      "rating_in_context": 5})
    assert r.json() == {"message": "Track metadata updated successfully"}
    bare_error(api.put(f"/api/playlists/{pid}/tracks/{tracks[3]}", json={"notes": "x"}),
               404, "Track not found in playlist")

    detail = api.get(f"/api/playlists/{pid}").json()
    PlaylistPublic.model_validate(detail)
    assert [e["position"] for e in detail["tracks"]] == [0, 1, 2, 3]
    assert all(set(e) == ENTRY_KEYS for e in detail["tracks"])
    assert all(set(e["track"]) == set(TrackPublic.model_fields) for e in detail["tracks"])
    entry = next(e for e in detail["tracks"] if e["track_id"] == tracks[1])
    assert (entry["notes"], entry["cue_in"], entry["cue_out"], entry["rating_in_context"]) == (
        "drop here", 1500, 200000, 5)
    assert entry["track"]["title"] == "Title 1" and entry["date_added"].endswith("Z")
    listed = api.get("/api/playlists").json()["playlists"]
    assert {p["id"]: p["track_count"] for p in listed}[pid] == 4


def test_stats_duplicate_and_export(api: httpx.Client, lib_ctx: Any,
                                    tracks: list[str]) -> None:
    """Stats figures; a copy with its entries (201); the contract's M3U body and headers."""
    made = create(api, name='Night "One"', description="Deep\nand dark")
    pid = made["id"]
    add(api, pid, tracks[:3])
    stats = api.get(f"/api/playlists/{pid}/stats").json()
    assert stats["track_count"] == 3 and stats["total_duration"] == pytest.approx(304.5)
    assert (stats["min_bpm"], stats["max_bpm"], stats["avg_bpm"]) == (120.0, 122.0, 121.0)
    assert stats["avg_energy"] == pytest.approx(0.5)
    assert {g["genre"]: g["count"] for g in stats["genre_distribution"]} == {
        "Techno": 2, "House": 1}
    assert sorted(k["musical_key"] for k in stats["key_distribution"]) == [0, 1, 2]
    empty = api.get(f"/api/playlists/{create(api, name='E')['id']}/stats").json()
    assert empty["track_count"] == 0 and empty["avg_bpm"] is None

    api.put(f"/api/playlists/{pid}/tracks/{tracks[0]}", json={"notes": "first"})
    r = api.post(f"/api/playlists/{pid}/duplicate", json={"name": "Copy"})
    assert r.status_code == 201 and r.json()["name"] == "Copy"
    copy = api.get(f"/api/playlists/{r.json()['id']}").json()
    assert [e["track_id"] for e in copy["tracks"]] == tracks[:3]
    assert copy["tracks"][0]["notes"] == "first"
    r = api.post(f"/api/playlists/{pid}/duplicate")
    assert r.status_code == 201 and r.json()["name"] == 'Night "One" (copy)'

    with lib_ctx.db() as s:  # a missing track is left out of the export
        from taperoom.library import models
        s.get(models.Track, tracks[1]).is_missing = True
        s.commit()
    r = api.get(f"/api/playlists/{pid}/export", params={"format": "m3u"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-mpegurl"
    assert r.headers["content-disposition"] == 'attachment; filename="Night _One_.m3u"'
    lines = r.text.split("\n")
    assert lines[:3] == ["#EXTM3U", '# Playlist: Night "One"', "# Description: Deep and dark"]
    assert re.fullmatch(r"# Exported: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", lines[3])
    assert lines[4:] == ["# Generated by Mismo DJ", "",
                         "#EXTINF:101,Artist 0 - Title 0", entries_path(lib_ctx, tracks[0]),
                         "#EXTINF:103,Artist 2 - Title 2", entries_path(lib_ctx, tracks[2]),
                         ""]
    bare_error(api.get(f"/api/playlists/{pid}/export", params={"format": "json"}), 400,
               "Invalid format")


def entries_path(ctx: Any, track_id: str) -> str:
    from taperoom.library import models

    with ctx.db() as s:
        return str(s.get(models.Track, track_id).file_path)


def test_thinking_playlist_and_promotion(api: httpx.Client, lib_ctx: Any,
                                         tracks: list[str]) -> None:
    """GET /thinking creates it once; promote copies its tracks and empties it."""
    first = api.get("/api/playlists/thinking").json()
    assert (first["name"], first["type"], first["is_temporary"], first["icon"]) == (
        "Thinking Playlist", "temp", 1, "lightbulb")
    assert first["tracks"] == []
    assert api.get("/api/playlists/thinking").json()["id"] == first["id"]
    add(api, first["id"], tracks[:2])
    r = api.post("/api/playlists/thinking/promote", json={"name": "Keepers"})
    assert r.status_code == 200, r.text
    body = r.json()
    promoted, thinking = body["promoted_playlist"], body["new_thinking_playlist"]
    assert (promoted["name"], promoted["type"], promoted["track_count"]) == (
        "Keepers", "static", 2)
    assert thinking["id"] == first["id"] and thinking["track_count"] == 0
    assert assert_dense(lib_ctx, promoted["id"]) == tracks[:2]
    assert entries(lib_ctx, first["id"]) == []
    bare_error(api.post("/api/playlists/thinking/promote", json={}), 400)


def test_playlist_updated_events(api: httpx.Client, lib_ctx: Any, tracks: list[str]) -> None:
    """Each change of a playlist's tracks sends ``playlist:updated`` with its id."""
    seen: list[dict[str, Any]] = []
    lib_ctx.bus.on("playlist:updated", seen.append)
    pid = create(api)["id"]
    add(api, pid, tracks[:2])
    api.put(f"/api/playlists/{pid}/tracks/reorder", json={"track_ids": tracks[1::-1]})
    api.put(f"/api/playlists/{pid}/tracks/{tracks[0]}", json={"notes": "n"})
    api.delete(f"/api/playlists/{pid}/tracks/{tracks[0]}")
    assert [e["reason"] for e in seen] == ["created", "tracks:added", "tracks:reordered",
                                           "track:updated", "tracks:removed"]
    assert {e["playlistId"] for e in seen} == {pid}
    add(api, pid, [tracks[1]])  # refused (409): no event
    assert len(seen) == 5
