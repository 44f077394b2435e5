"""The live set: a scripted two-deck set through the stand-in engine logs into the
active session exactly the tracks that played for LIVE_SET_MIN_PLAY_SECONDS (1 s
here), with played_at and duration, raises their play_count and last_played, and
sends ``session:track_played`` to the library's WebSocket clients; tracks loaded and
taken off unplayed, or played for less, are not logged.

Play time is real time: a test lets a deck play by waiting until the link reports it
playing and then letting :data:`PLAY` seconds pass."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from websockets.sync.client import ClientConnection, connect

from taperoom.library import models
from tests.enginelink.conftest import Linked, library_tracks, wait_connected
from tests.enginelink.peer import EnginePeer
from tests.library.playlistkit import entries
from tests.polling import wait_for

#: Seconds a deck plays for a play that counts (LIVE_SET_MIN_PLAY_SECONDS is 1).
PLAY = 1.3


def _engine(linked: Linked) -> EnginePeer:
    assert linked.engine is not None
    return linked.engine


def _deck(linked: Linked, deck: str, **state: Any) -> dict[str, Any]:
    """Wait until the link's live set shows `deck` with `state`; the deck."""
    def seen() -> dict[str, Any] | None:
        got = linked.status()["decks"].get(deck)
        if got is not None and all(got[k] == v for k, v in state.items()):
            return dict(got)
        return None
    return wait_for(seen, 30, f"deck {deck} to be {state}")


def _play(linked: Linked, deck: str, track_id: str, **frame: Any) -> None:
    """The engine reports `deck` playing (the frame's shape given by `frame`)."""
    _engine(linked).send({"event": "deckStateUpdate", "deck": deck, **frame})
    _deck(linked, deck, trackId=track_id, playing=True)


def _load(linked: Linked, deck: str, track_id: str) -> None:
    engine = _engine(linked)
    engine.send({"event": "trackLoadRequested", "deck": deck, "trackId": track_id})
    engine.send({"event": "trackLoaded", "deck": deck, "trackId": track_id, "success": True})
    _deck(linked, deck, trackId=track_id, playing=False)


@contextmanager
def _listener(linked: Linked) -> Iterator[ClientConnection]:
    """A client of the library's /ws subscribed to ``session:*``."""
    with connect(linked.url.replace("http://", "ws://") + "/ws") as ws:
        assert json.loads(ws.recv(30))["event"] == "connected"
        ws.send(json.dumps({"type": "subscribe", "events": ["session:*"]}))
        assert json.loads(ws.recv(30))["event"] == "subscribed"
        yield ws


def _plays(linked: Linked, playlist_id: str) -> list[tuple[str, int, int | None, int | None]]:
    """``(track_id, occurrence, played_at, play_duration)`` of a session, by position."""
    pt = models.PlaylistTrack
    with linked.ctx.db() as s:
        rows = s.execute(select(pt.track_id, pt.occurrence, pt.played_at, pt.play_duration)
                         .where(pt.playlist_id == playlist_id).order_by(pt.position)).all()
    return [(r[0], int(r[1]), r[2], r[3]) for r in rows]


def _counts(linked: Linked, track_ids: list[str]) -> list[tuple[int, bool]]:
    """``(play_count, last_played is set)`` of tracks."""
    with linked.ctx.db() as s:
        out = []
        for tid in track_ids:
            t = s.get(models.Track, tid)
            assert t is not None
            out.append((int(t.play_count or 0), t.last_played is not None))
        return out


def test_a_two_deck_set_makes_the_session_playlist(linked: Linked, corpus: Path,
                                                   tmp_path: Path) -> None:
    """Deck A plays t0, deck B loads t1 and replaces it unplayed with t2, which plays a
    moment and pauses; t0 plays on; B plays t2 while A pauses and loads t3 (t0 is
    logged); A plays t3 while B is emptied (t2 logged), B plays t0 again (a replay)
    and both decks are emptied: the session holds t0, t2, t3, t0 with their start
    times and durations, and each play went out on the WebSocket."""
    engine = _engine(linked)
    t0, t1, t2, t3 = library_tracks(linked.ctx, corpus, tmp_path / "music", 4)
    r = httpx.post(linked.url + "/api/playlists/sessions/start", json={"venue": "Club"},
                   timeout=30)
    assert r.status_code == 201, r.text
    session = r.json()["id"]
    began = int(time.time())
    with _listener(linked) as ws:
        _load(linked, "A", t0)
        _play(linked, "A", t0, isPlaying=True, position=0.0)
        _load(linked, "B", t1)
        _load(linked, "B", t2)  # t1 leaves unplayed
        _play(linked, "B", t2, state={"isPlaying": True, "trackId": t2})
        engine.send({"event": "deckStateUpdate", "deck": "B", "playing": False})
        _deck(linked, "B", trackId=t2, playing=False)
        time.sleep(PLAY)  # t0 plays on deck A
        _play(linked, "B", t2, data={"status": "playing"})
        engine.send({"event": "deckStateUpdate", "deck": "A", "state": "paused"})
        _load(linked, "A", t3)  # t0 leaves, played >= PLAY s
        _play(linked, "A", t3, state="playing")
        time.sleep(PLAY)  # t2 and t3 play
        engine.send({"event": "deckStateUpdate", "deck": "B", "trackId": None})  # emptied
        _deck_gone = wait_for(lambda: "B" not in linked.status()["decks"], 30, "B empty")
        assert _deck_gone
        engine.send({"event": "deckStateUpdate", "deck": "B", "trackId": t0,
                     "isPlaying": True})
        _deck(linked, "B", trackId=t0, playing=True)
        time.sleep(PLAY)
        engine.send({"event": "deckStateUpdate", "deck": "A", "state": "ejected"})
        wait_for(lambda: "A" not in linked.status()["decks"], 30, "A empty")
        engine.send({"event": "trackLoaded", "deck": "B", "trackId": t0, "success": False})
        wait_for(lambda: "B" not in linked.status()["decks"], 30, "B empty")
        events = [json.loads(ws.recv(30)) for _ in range(4)]
    plays = _plays(linked, session)
    assert [(p[0], p[1]) for p in plays] == [(t0, 0), (t2, 0), (t3, 0), (t0, 1)]
    assert [e[0] for e in entries(linked.ctx, session)] == [t0, t2, t3, t0]
    now = int(time.time())
    for track_id, _, played_at, duration in plays:
        assert played_at is not None and began <= played_at <= now, (track_id, played_at)
        assert duration is not None and duration >= 1
    starts = [p[2] or 0 for p in plays]
    assert starts == sorted(starts)
    assert _counts(linked, [t0, t1, t2, t3]) == [(2, True), (0, False), (1, True), (1, True)]
    assert [e["event"] for e in events] == ["session:track_played"] * 4
    assert [(e["data"]["trackId"], e["data"]["deck"], e["data"]["occurrence"])
            for e in events] == [(t0, "A", 0), (t2, "B", 0), (t3, "A", 0), (t0, "B", 1)]
    assert all(e["data"]["playlistId"] == session for e in events)
    assert [e["data"]["playedAt"] for e in events] == [p[2] for p in plays]
    assert [e["data"]["duration"] for e in events] == [p[3] for p in plays]


def test_nothing_is_logged_without_an_active_session(linked: Linked, corpus: Path,
                                                     tmp_path: Path) -> None:
    """A track that played while no session is active (the only one is finalized) is
    not logged anywhere, and its play count stays."""
    (t0,) = library_tracks(linked.ctx, corpus, tmp_path / "music")
    r = httpx.post(linked.url + "/api/playlists/sessions/start", json={}, timeout=30)
    session = r.json()["id"]
    assert httpx.post(f"{linked.url}/api/playlists/sessions/{session}/finalize",
                      timeout=30).status_code == 200
    _load(linked, "A", t0)
    _play(linked, "A", t0, isPlaying=True)
    time.sleep(PLAY)
    _engine(linked).send({"event": "deckStateUpdate", "deck": "A", "trackId": None})
    wait_for(lambda: "A" not in linked.status()["decks"], 30, "A empty")
    assert _plays(linked, session) == []
    assert _counts(linked, [t0]) == [(0, False)]


def test_a_play_is_logged_when_the_engine_goes_away(linked: Linked, corpus: Path,
                                                    tmp_path: Path) -> None:
    """The engine closes the connection while a deck plays: the track's play ends
    there and is logged; a deck that only loaded its track is not."""
    t0, t1 = library_tracks(linked.ctx, corpus, tmp_path / "music", 2)
    session = httpx.post(linked.url + "/api/playlists/sessions/start", json={},
                         timeout=30).json()["id"]
    _load(linked, "A", t0)
    _load(linked, "B", t1)
    _play(linked, "A", t0, isPlaying=True)
    time.sleep(PLAY)
    _engine(linked).close_connection()
    wait_for(lambda: _plays(linked, session), 30, "the play to be logged")
    assert [p[0] for p in _plays(linked, session)] == [t0]
    wait_connected(linked)
    assert linked.status()["decks"] == {}
