"""Smart playlists on the real app: criteria checked, refresh/convert/explain, and
playlists that keep themselves current as scans, edits and missing files change tracks."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import update

from taperoom.db import transaction
from taperoom.events import Event
from taperoom.library import models
from taperoom.library.context import build_services
from taperoom.playlists.keeper import SmartPlaylistKeeper, changed_fields
from taperoom.playlists.service import NewPlaylist
from tests.library.playlistkit import (
    add,
    api_client,  # noqa: F401 (the api fixture)
    assert_dense,
    create,
    make_tracks,
)
from tests.library.test_scanner import add_directory
from tests.polling import wait_for

TAGGED = "scanner/real_music_tagged"
ARMY = "01 - Muldjord - Armygeddon.mp3"  # Metal
CHAOS = "02 - Muldjord - Chaos God.flac"  # Metal, left out by the negation
JOURNEY = "08 - Maxstack - A New Journey.mp3"  # Electronic, not LMMS
MAUI = "19 - LMMS demo - Alf42red-Mauiwowi.m4a"  # Electronic, LMMS demo
#: Nested groups and a negation: Metal but not "Chaos", or Electronic by LMMS, or rated 4+.
NESTED = {"any": [{"genres": ["Metal"], "not": {"title_contains": "chaos"}},
                  {"all": [{"genre_contains": "electr"}, {"artist_contains": "LMMS"}]},
                  {"rating_min": 4}],
          "sort_by": "title", "sort_order": "asc"}


def set_track(ctx: Any, track_id: str, **values: Any) -> None:
    """Change a track row directly (no event: only a refresh or a read notices)."""
    with transaction(ctx.db) as s:
        s.execute(update(models.Track).where(models.Track.id == track_id).values(**values))


def error_of(r: httpx.Response, status: int) -> dict[str, Any]:
    """The bare ``{error, message}`` of a refused request."""
    assert r.status_code == status, r.text
    body = dict(r.json())
    assert "success" not in body and isinstance(body["message"], str), body
    return body


# --------------------------------------------------------------------------- the WebSocket


async def _scan(api: httpx.AsyncClient, directory_id: str) -> None:
    r = await api.post(f"/api/scan/library/{directory_id}", json={"strategy": "hybrid"})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = (await api.get(f"/api/scan/library/{directory_id}/status")).json()["data"]
        if not status["scanning"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the scan did not end")


async def _updated(ws: Any, playlist_id: str, timeout: float = 30) -> dict[str, Any]:
    """The next ``playlist:updated`` of this playlist on the WebSocket."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no playlist:updated of {playlist_id}"
        message = json.loads(await asyncio.wait_for(ws.recv(), left))
        if message["event"] == "playlist:updated" and \
                message["data"]["playlistId"] == playlist_id:
            return dict(message["data"])


async def _titles(api: httpx.AsyncClient, playlist_id: str, expected: list[str]) -> None:
    """The playlist's track titles become `expected` (in order, positions dense)."""
    deadline = time.monotonic() + 30
    while True:
        body = (await api.get(f"/api/playlists/{playlist_id}")).json()
        titles = [e["track"]["title"] for e in body["tracks"]]
        positions = [e["position"] for e in body["tracks"]]
        if titles == expected:
            assert positions == list(range(len(titles)))
            return
        assert time.monotonic() < deadline, f"{titles} != {expected}"
        await asyncio.sleep(0.05)


@pytest.mark.backends()
async def test_nested_smart_playlist_follows_scans_edits_and_missing_files(
        lib_server: Any, lib_ctx: Any, corpus: Path, tmp_path: Path) -> None:
    """A scan that adds a matching file, a tag edit, a rating and a file gone each move
    tracks in or out, each announced by ``playlist:updated`` on the WebSocket."""
    music = tmp_path / "music"
    music.mkdir()
    for name in (ARMY, CHAOS, JOURNEY):
        shutil.copyfile(corpus / TAGGED / name, music / name)
    directory_id = add_directory(lib_ctx, music)
    ws_url = lib_server.url.replace("http://", "ws://") + "/ws"
    async with httpx.AsyncClient(base_url=lib_server.url, timeout=30) as api:
        await _scan(api, directory_id)
        r = await api.post("/api/playlists", json={"name": "Nested", "type": "smart",
                                                   "criteria": NESTED})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["criteria"] == NESTED and json.loads(made["smart_criteria"]) == NESTED
        pid = made["id"]
        await _titles(api, pid, ["Armygeddon"])
        async with websockets.connect(ws_url) as ws:
            assert json.loads(await ws.recv())["event"] == "connected"
            await ws.send(json.dumps({"type": "subscribe", "events": ["playlist:updated"]}))
            assert json.loads(await ws.recv())["event"] == "subscribed"

            # a scan adds a matching file
            shutil.copyfile(corpus / TAGGED / MAUI, music / MAUI)
            await _scan(api, directory_id)
            assert await _updated(ws, pid) == {"playlistId": pid, "reason": "refreshed"}
            await _titles(api, pid, ["Alf42red-Mauiwowi", "Armygeddon"])

            with lib_ctx.db() as s:
                ids = {t.title: t.id for t in s.query(models.Track)}
            # a tag edit moves one out
            r = await api.put(f"/api/tracks/{ids['Armygeddon']}", json={"genre": "Jazz"})
            assert r.status_code == 200, r.text
            await _updated(ws, pid)
            await _titles(api, pid, ["Alf42red-Mauiwowi"])

            # a rating moves one in
            r = await api.put(f"/api/tracks/{ids['A New Journey']}", json={"rating": 5})
            assert r.status_code == 200, r.text
            await _updated(ws, pid)
            await _titles(api, pid, ["A New Journey", "Alf42red-Mauiwowi"])

            # a file gone: its track is missing and leaves
            (music / MAUI).unlink()
            await _scan(api, directory_id)
            await _updated(ws, pid)
            await _titles(api, pid, ["A New Journey"])


# --------------------------------------------------------------------------- the routes


@pytest.mark.backends()
def test_refresh_convert_explain_shapes_and_statuses(api: httpx.Client, lib_ctx: Any,
                                                      corpus: Path, tmp_path: Path) -> None:
    """refresh answers what entered and left; explain describes the parsed criteria and
    sends the raw string; convert keeps the tracks; not smart is 400, unknown 404."""
    t = make_tracks(lib_ctx, corpus, tmp_path / "music", 5)  # odd: House, even: Techno
    criteria = {"all": [{"bpm_min": 121}], "not": {"genres": ["Techno"]},
                "sort_by": "bpm", "sort_order": "asc"}
    smart = create(api, name="House 121+", type="smart", criteria=criteria)
    assert smart["criteria"] == criteria and smart["is_smart"] == 1
    pid = smart["id"]
    assert assert_dense(lib_ctx, pid) == [t[1], t[3]]

    explained = api.get(f"/api/playlists/{pid}/explain").json()
    assert explained == {"explanation": "BPM at least 121, Not (Genres: Techno), "
                                        "Sorted by bpm (ascending)",
                         "criteria": smart["smart_criteria"]}

    set_track(lib_ctx, t[4], genre="House")
    set_track(lib_ctx, t[1], genre="Techno")
    r = api.post(f"/api/playlists/{pid}/refresh")
    assert r.status_code == 200 and r.json() == {
        "added": [t[4]], "removed": [t[1]], "total": 2, "addedCount": 1, "removedCount": 1}
    assert assert_dense(lib_ctx, pid) == [t[3], t[4]]
    assert api.post(f"/api/playlists/{pid}/refresh").json() == {
        "added": [], "removed": [], "total": 2, "addedCount": 0, "removedCount": 0}
    error_of(add(api, pid, [t[0]]), 409)

    static = create(api, name="Static")
    for path in ("refresh", "convert"):
        assert error_of(api.post(f"/api/playlists/{static['id']}/{path}"), 400)["error"] \
            == "Not a smart playlist"
        assert error_of(api.post(f"/api/playlists/{uuid.uuid4()}/{path}"), 404)["error"] \
            == "Playlist not found"
        error_of(api.post(f"/api/playlists/not-an-id/{path}"), 400)
    error_of(api.get(f"/api/playlists/{static['id']}/explain"), 400)
    error_of(api.get(f"/api/playlists/{uuid.uuid4()}/explain"), 404)

    # new criteria through PUT are evaluated at once
    r = api.put(f"/api/playlists/{pid}", json={"criteria": {"bpm_max": 121,
                                                            "sort_by": "bpm"}})
    assert r.status_code == 200 and r.json()["criteria"] == {"bpm_max": 121, "sort_by": "bpm"}
    assert assert_dense(lib_ctx, pid) == [t[1], t[0]]

    r = api.post(f"/api/playlists/{pid}/convert")
    assert r.status_code == 200 and r.json() == {
        "message": "Smart playlist converted to static", "track_count": 2}
    after = api.get(f"/api/playlists/{pid}").json()
    assert (after["type"], after["is_smart"], after["smart_criteria"]) == ("static", 0, None)
    assert "criteria" not in after and [e["track_id"] for e in after["tracks"]] == [t[1], t[0]]
    assert add(api, pid, [t[2]]).status_code == 200
    error_of(api.post(f"/api/playlists/{pid}/convert"), 400)


def test_invalid_criteria_are_400(api: httpx.Client) -> None:
    """Criteria that do not parse are refused on create and on update, naming the key."""
    for criteria in ({"bpm_min": "fast"}, {"nope": 1}, {"bpm_min": 130, "bpm_max": 120},
                     {"any": [{"all": "x"}]}, {"not": {"limit": 3}}):
        body = error_of(api.post("/api/playlists", json={
            "name": "Bad", "type": "smart", "criteria": criteria}), 400)
        assert body["error"] == "Validation failed" and "criteria" in body["message"], body
    smart = create(api, name="Good", type="smart", criteria={"bpm_min": 100})
    body = error_of(api.put(f"/api/playlists/{smart['id']}",
                            json={"criteria": {"bpm_min": "fast"}}), 400)
    assert "bpm_min" in body["message"]
    error_of(api.put(f"/api/playlists/{smart['id']}", json={"criteria": None}), 400)
    static = create(api, name="Static")
    error_of(api.put(f"/api/playlists/{static['id']}", json={"criteria": {"bpm_min": 1}}),
             400)
    assert api.get(f"/api/playlists/{smart['id']}").json()["criteria"] == {"bpm_min": 100}


def test_criteria_relative_to_now_are_evaluated_on_read(api: httpx.Client, lib_ctx: Any,
                                                        corpus: Path, tmp_path: Path) -> None:
    """``played_in_last_days``: a track whose last play grows old leaves at the next read,
    without any event."""
    t = make_tracks(lib_ctx, corpus, tmp_path / "music", 2)
    now = models.utcnow()
    set_track(lib_ctx, t[0], last_played=now - timedelta(days=2))
    set_track(lib_ctx, t[1], last_played=now - timedelta(days=20))
    smart = create(api, name="Recent", type="smart", criteria={"played_in_last_days": 7})
    assert [e["track_id"] for e in api.get(f"/api/playlists/{smart['id']}").json()["tracks"]] \
        == [t[0]]
    set_track(lib_ctx, t[0], last_played=now - timedelta(days=30))
    set_track(lib_ctx, t[1], last_played=now - timedelta(hours=1))
    assert [e["track_id"] for e in api.get(f"/api/playlists/{smart['id']}").json()["tracks"]] \
        == [t[1]]


# --------------------------------------------------------------------------- the keeper


def test_changed_fields_of_events() -> None:
    """Tracks added, deleted, missing or restored may change any smart playlist; an edit
    changes the columns it names; analysis results their fields; other events nothing."""
    for name in (Event.TRACK_ADDED, Event.TRACK_DELETED, Event.TRACK_MISSING,
                 Event.TRACK_RESTORED, Event.MEDIA_DISCONNECTED, Event.DIRECTORY_REMOVED):
        assert changed_fields(name, {}) is None
    assert changed_fields(Event.TRACK_UPDATED, {"changes": {"rating": 5}}) == {"rating"}
    assert changed_fields(Event.TRACK_UPDATED, {"changes": ["play_count", "last_played"]}) \
        == {"play_count", "last_played"}
    assert changed_fields(Event.ANALYSIS_COMPLETE, {"results": {"bpm": 120.0}}) \
        == {"bpm", "date_analyzed"}
    assert changed_fields(Event.TRACK_MOVED, {}) >= {"file_path", "relative_path"}
    assert changed_fields(Event.SCAN_PROGRESS, {"percent": 5}) == frozenset()


def test_a_change_skips_playlists_it_cannot_affect(api: httpx.Client, lib_ctx: Any,
                                                   corpus: Path, tmp_path: Path) -> None:
    """refresh_affected only evaluates playlists whose criteria read a changed column."""
    t = make_tracks(lib_ctx, corpus, tmp_path / "music", 2)
    smart = create(api, name="House", type="smart", criteria={"genres": ["House"]})
    assert assert_dense(lib_ctx, smart["id"]) == [t[1]]
    set_track(lib_ctx, t[0], genre="House")
    assert lib_ctx.smart.refresh_affected(frozenset({"comment", "rating"})) == []
    assert assert_dense(lib_ctx, smart["id"]) == [t[1]]
    assert lib_ctx.smart.refresh_affected(frozenset({"genre"})) == [smart["id"]]
    assert set(assert_dense(lib_ctx, smart["id"])) == {t[0], t[1]}


def test_ten_thousand_events_are_coalesced(lib_ctx: Any, corpus: Path, tmp_path: Path) -> None:
    """A burst of 10,000 ``track:added`` (a large scan) refreshes a few times, not 10,000,
    and the last refresh sees the final state."""
    t = make_tracks(lib_ctx, corpus, tmp_path / "music", 2)
    pid = lib_ctx.playlists.create(NewPlaylist(name="Techno", type="smart",
                                   criteria={"genres": ["Techno"]}))["id"]
    calls: list[frozenset[str] | None] = []

    def counted(changed: frozenset[str] | None) -> object:
        calls.append(changed)
        return lib_ctx.smart.refresh_affected(changed)

    keeper = SmartPlaylistKeeper(lib_ctx.bus, counted, quiet=0.2, longest=1.0)
    keeper.start()
    try:
        def burst() -> None:
            for i in range(10_000):
                lib_ctx.bus.send(Event.TRACK_ADDED, {"trackId": str(i), "track": {}})
                if i == 9_000:
                    set_track(lib_ctx, t[1], genre="Techno")

        sender = threading.Thread(target=burst)
        sender.start()
        sender.join(timeout=120)
        wait_for(lambda: calls, 30, "a refresh")
        assert keeper.idle(30)
    finally:
        keeper.stop()
    assert 1 <= len(calls) <= 20 and all(c is None for c in calls), len(calls)
    assert set(assert_dense(lib_ctx, pid)) == {t[0], t[1]}


def test_only_the_leader_refreshes(lib_ctx: Any, lib_settings: Callable[..., Any],
                                   corpus: Path, tmp_path: Path) -> None:
    """A process that does not lead hears the change but leaves the refresh to the leader."""
    t = make_tracks(lib_ctx, corpus, tmp_path / "music", 2)
    pid = lib_ctx.playlists.create(NewPlaylist(name="House", type="smart",
                                               criteria={"genres": ["House"]}))["id"]
    other = build_services(lib_settings(), lead=False)
    try:
        assert not other.leadership.leading
        set_track(lib_ctx, t[0], genre="House")
        other.bus.send(Event.TRACK_UPDATED, {"trackId": t[0], "changes": {"genre": "House"}})
        time.sleep(1.0)
        assert assert_dense(lib_ctx, pid) == [t[1]]
        lib_ctx.bus.send(Event.TRACK_UPDATED, {"trackId": t[0], "changes": {"genre": "House"}})
        wait_for(lambda: len(assert_dense(lib_ctx, pid)) == 2, 30, "the leader's refresh")
    finally:
        other.close()
