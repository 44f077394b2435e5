"""DJ sessions (replays, finalizing, read-only), and playlists kept correct when the
library deletes tracks or resolves duplicates."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.db import transaction
from taperoom.library import models
from tests.library.playlistkit import (
    add,
    api_client,  # noqa: F401 (the api fixture)
    assert_dense,
    create,
    entries,
    make_tracks,
)

pytestmark = pytest.mark.backends()


@pytest.fixture
def tracks(lib_ctx: Any, corpus: Path, tmp_path: Path) -> list[str]:
    """Four track rows on real files."""
    return make_tracks(lib_ctx, corpus, tmp_path / "music", 4)


def start(api: httpx.Client, **body: Any) -> dict[str, Any]:
    r = api.post("/api/playlists/sessions/start", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def play(api: httpx.Client, sid: str, track_id: str, **extra: Any) -> httpx.Response:
    return api.post(f"/api/playlists/sessions/{sid}/track", json={"track_id": track_id, **extra})


def test_session_logs_replays_and_finalizes(api: httpx.Client, lib_ctx: Any,
                                            tracks: list[str]) -> None:
    """A track played twice is logged twice (its own entry each time, ``occurrence`` 0
    and 1); play counts follow; finalize sets the duration and read-only."""
    date = int(datetime(2026, 7, 4, 22, 0, tzinfo=UTC).timestamp())
    session = start(api, venue="Tresor", date=date)
    assert (session["name"], session["type"], session["description"], session["icon"],
            session["session_date"], session["session_venue"]) == (
        "Session - 2026-07-04 - Tresor", "session", "DJ session history", "calendar",
        date, "Tresor")
    sid = session["id"]
    for offset, track_id in ((0, tracks[0]), (300, tracks[1]), (600, tracks[0])):
        r = play(api, sid, track_id, played_at=date + offset, duration=240, notes="x")
        assert r.json() == {"message": "Track play logged successfully"}, r.text
    assert entries(lib_ctx, sid) == [(tracks[0], 0, 0), (tracks[1], 0, 1), (tracks[0], 1, 2)]
    detail = api.get(f"/api/playlists/{sid}").json()
    assert [e["played_at"] for e in detail["tracks"]] == [date, date + 300, date + 600]
    assert detail["tracks"][2]["play_duration"] == 240
    with lib_ctx.db() as s:
        replayed = s.get(models.Track, tracks[0])
        assert replayed.play_count == 2
        assert replayed.last_played == datetime(2026, 7, 4, 22, 10)

    # one replay addressed by occurrence; the other entry of the track stays
    api.put(f"/api/playlists/{sid}/tracks/{tracks[0]}", params={"occurrence": 1},
            json={"notes": "encore"})
    assert api.get(f"/api/playlists/{sid}").json()["tracks"][2]["notes"] == "encore"
    # reorder names a replayed track as often as it was played
    r = api.put(f"/api/playlists/{sid}/tracks/reorder",
                json={"track_ids": [tracks[1], tracks[0], tracks[0]]})
    assert r.status_code == 200, r.text
    assert entries(lib_ctx, sid) == [(tracks[1], 0, 0), (tracks[0], 0, 1), (tracks[0], 1, 2)]
    api.put(f"/api/playlists/{sid}/tracks/reorder",
            json={"track_ids": [tracks[0], tracks[1], tracks[0]]})

    other = start(api)
    assert other["name"].startswith("Session - ") and other["session_venue"] is None
    active = api.get("/api/playlists/sessions/active").json()
    assert active["count"] == 2

    r = api.post(f"/api/playlists/sessions/{sid}/finalize")
    assert r.json() == {"message": "Session finalized", "session_duration": 840}
    active = api.get("/api/playlists/sessions/active").json()
    assert [s["id"] for s in active["sessions"]] == [other["id"]]  # the original listed both
    final = api.get(f"/api/playlists/{sid}").json()
    assert (final["is_readonly"], final["session_duration"]) == (1, 840)


def test_logging_a_play_breaks_no_subscriber(api: httpx.Client, tracks: list[str],
                                             caplog: pytest.LogCaptureFixture) -> None:
    """The ``track:updated`` of a logged play names its changed fields as a list; every
    subscriber takes it (the analysis queue's rehash failed on it)."""
    sid = start(api)["id"]
    with caplog.at_level(logging.ERROR):
        assert play(api, sid, tracks[0]).status_code == 200
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_finalized_session_refuses_changes_with_409(api: httpx.Client, lib_ctx: Any,
                                                    tracks: list[str]) -> None:
    """Every change of a finalized session is 409 (the original: 500); filing it
    (favourite, folder) and deleting it still work."""
    sid = start(api)["id"]
    play(api, sid, tracks[0])
    api.post(f"/api/playlists/sessions/{sid}/finalize")
    before = entries(lib_ctx, sid)
    for method, path, body in (
            ("POST", f"/api/playlists/sessions/{sid}/track", {"track_id": tracks[1]}),
            ("POST", f"/api/playlists/sessions/{sid}/finalize", None),
            ("POST", f"/api/playlists/{sid}/tracks", {"track_ids": [tracks[1]]}),
            ("DELETE", f"/api/playlists/{sid}/tracks/{tracks[0]}", None),
            ("PUT", f"/api/playlists/{sid}/tracks/reorder", {"track_ids": [tracks[0]]}),
            ("PUT", f"/api/playlists/{sid}/tracks/{tracks[0]}", {"notes": "x"}),
            ("PUT", f"/api/playlists/{sid}", {"name": "Renamed"})):
        r = api.request(method, path, json=body)
        assert r.status_code == 409, (method, path, r.text)
        assert set(r.json()) == {"error", "message"}
    assert entries(lib_ctx, sid) == before
    r = api.put(f"/api/playlists/{sid}", json={"is_favorite": True})
    assert r.status_code == 200 and r.json()["is_favorite"] == 1
    r = api.post(f"/api/playlists/{sid}/duplicate", json={"name": "Tonight again"})
    assert r.status_code == 201 and r.json()["type"] == "static"
    assert api.delete(f"/api/playlists/{sid}").status_code == 200

    static = create(api)["id"]
    r = play(api, static, tracks[0])
    assert r.status_code == 400 and r.json()["error"] == "Not a session"


def test_duplicate_of_a_session_copies_each_track_once(api: httpx.Client, lib_ctx: Any,
                                                       tracks: list[str]) -> None:
    """A static copy of a session with a replay holds the track once, at its first play."""
    sid = start(api)["id"]
    for track_id in (tracks[0], tracks[1], tracks[0]):
        play(api, sid, track_id)
    copy = api.post(f"/api/playlists/{sid}/duplicate", json={"name": "c"}).json()
    assert assert_dense(lib_ctx, copy["id"]) == [tracks[0], tracks[1]]


def test_track_deletion_keeps_every_playlist_dense(api: httpx.Client, lib_ctx: Any,
                                                   tracks: list[str]) -> None:
    """Deleting a track removes its entries (replays too) and closes the gaps in every
    playlist, with a ``playlist:updated`` per playlist."""
    seen: list[dict[str, Any]] = []
    lib_ctx.bus.on("playlist:updated", seen.append)
    static = create(api)["id"]
    add(api, static, tracks)
    sid = start(api)["id"]
    for track_id in (tracks[1], tracks[2], tracks[1], tracks[3]):
        play(api, sid, track_id)
    seen.clear()
    r = api.delete(f"/api/tracks/{tracks[1]}")
    assert r.status_code == 200, r.text
    assert assert_dense(lib_ctx, static) == [tracks[0], tracks[2], tracks[3]]
    assert assert_dense(lib_ctx, sid) == [tracks[2], tracks[3]]
    assert sorted((e["playlistId"], e["reason"]) for e in seen) == sorted(
        [(static, "track:deleted"), (sid, "track:deleted")])


def test_duplicate_resolution_repoints_and_keeps_replays(api: httpx.Client, lib_ctx: Any,
                                                         tracks: list[str]) -> None:
    """Resolving duplicates repoints entries in place: a static playlist holding both
    copies keeps one entry (dense), a session keeps every play as a play of the kept
    copy."""
    keep, dup = tracks[0], tracks[1]
    with transaction(lib_ctx.db) as s:
        group = models.DuplicateGroup(file_hash="h" * 32, canonical_track_id=keep,
                                      total_duplicates=2)
        s.add(group)
        s.flush()
        gid = group.id
        for tid in (keep, dup):
            track = s.get(models.Track, tid)
            track.file_hash, track.duplicate_group_id = "h" * 32, gid
    static = create(api)["id"]
    add(api, static, [keep, tracks[2], dup, tracks[3]])
    sid = start(api)["id"]
    for track_id in (dup, keep, tracks[2]):
        play(api, sid, track_id)
    seen: list[dict[str, Any]] = []
    lib_ctx.bus.on("playlist:updated", seen.append)
    r = api.post(f"/api/duplicates/{gid}/resolve",
                 json={"canonicalTrackId": keep, "deleteFiles": False})
    assert r.status_code == 200, r.text
    assert assert_dense(lib_ctx, static) == [keep, tracks[2], tracks[3]]
    assert entries(lib_ctx, sid) == [(keep, 1, 0), (keep, 0, 1), (tracks[2], 0, 2)]
    assert {e["playlistId"] for e in seen} == {static, sid}


def test_folder_removal_and_cleanup_keep_playlists_dense(api: httpx.Client, lib_ctx: Any,
                                                         corpus: Path, tmp_path: Path) -> None:
    """Removing a library folder with ``delete_tracks=true``, or a cleanup that does not
    keep playlist tracks, drops the entries of the deleted tracks and closes the gaps
    (the rows' cascade used to leave holes in the positions)."""
    from tests.library.test_scanner import add_directory

    root = tmp_path / "music"
    tracks = make_tracks(lib_ctx, corpus, root, 6)
    gone_dir = add_directory(lib_ctx, root / "gone")
    kept_dir = add_directory(lib_ctx, root)
    with transaction(lib_ctx.db) as s:
        for tid in (tracks[1], tracks[3]):
            s.get(models.Track, tid).library_directory_id = gone_dir
        missing = s.get(models.Track, tracks[4])
        missing.library_directory_id = kept_dir
        missing.is_missing = True
        missing.missing_since = datetime(2020, 1, 1)
    pid = create(api)["id"]
    add(api, pid, tracks)
    seen: list[dict[str, Any]] = []
    lib_ctx.bus.on("playlist:updated", seen.append)
    r = api.delete(f"/api/library/directories/{gone_dir}", params={"delete_tracks": "true"})
    assert r.status_code == 200, r.text
    assert assert_dense(lib_ctx, pid) == [tracks[0], tracks[2], tracks[4], tracks[5]]
    r = api.post(f"/api/library/directories/{kept_dir}/cleanup",
                 json={"keep_playlists_intact": False, "backup_metadata": False})
    assert r.status_code == 200 and r.json()["data"]["removed"] == 1, r.text
    assert assert_dense(lib_ctx, pid) == [tracks[0], tracks[2], tracks[5]]
    assert seen == [{"playlistId": pid, "reason": "track:deleted"}] * 2
