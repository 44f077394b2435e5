"""GET /api/tracks/:id/suggestions through the real app: harmonic next-track suggestions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from taperoom.db import transaction
from taperoom.library import models
from taperoom.library.schemas import Envelope, SuggestionPublic

pytestmark = pytest.mark.backends()

#: title -> columns. "now" plays 8A (A minor) at 126 BPM with energy level 6. Tracks
#: without ``date_analyzed`` hold the BPM and key of their tags, as a scan stores them.
TRACKS: dict[str, dict[str, Any]] = {
    "now": dict(bpm=126.0, musical_key=9, mode=0, energy_level=6,
                date_analyzed=models.utcnow()),
    "up-one": dict(bpm=128.0, musical_key=4, mode=0, energy_level=7,  # 9A, +1.6 %
                   date_analyzed=models.utcnow()),
    "same-key": dict(bpm=126.0, musical_key=9, mode=0, energy_level=6,
                     date_analyzed=models.utcnow()),
    "relative": dict(bpm=123.0, musical_key=0, mode=1, energy_level=5,  # 8B, -2.4 %
                     date_analyzed=models.utcnow()),
    "boost": dict(bpm=127.0, musical_key=11, mode=0, energy_level=8,  # 10A (+2)
                  date_analyzed=models.utcnow()),
    "half-time": dict(bpm=63.5, musical_key=2, mode=0, energy=7.2,  # 7A, no level: energy 7
                      date_analyzed=models.utcnow()),
    "tagged-only": dict(bpm=125.0, musical_key=9, mode=0, key_tag="8A"),  # not analysed
    "clash": dict(bpm=126.0, musical_key=6, mode=1, energy_level=7),  # 2B: no move
    "too-fast": dict(bpm=140.0, musical_key=4, mode=0, energy_level=7),
    "no-tempo": dict(musical_key=4, mode=0, energy_level=7),
    "missing": dict(bpm=126.0, musical_key=9, mode=0, is_missing=True),
    "played": dict(bpm=126.0, musical_key=4, mode=0, energy_level=7),
    "played-long-ago": dict(bpm=126.0, musical_key=4, mode=0, energy_level=7),
}


@pytest.fixture
def ids(lib_ctx: Any) -> dict[str, str]:
    """Track ids by title; "played" is in a running session, "played-long-ago" in a
    finalized one."""
    out = {}
    with transaction(lib_ctx.db) as s:
        for title, values in TRACKS.items():
            track = models.Track(file_path=f"/music/{title}.mp3", title=title, **values)
            s.add(track)
            s.flush()
            out[title] = track.id
        running = models.Playlist(name="Session - now", type="session")
        done = models.Playlist(name="Session - before", type="session", is_readonly=True)
        crate = models.Playlist(name="Crate", type="static")
        s.add_all([running, done, crate])
        s.flush()
        s.add_all([models.PlaylistTrack(playlist_id=running.id, track_id=out["played"],
                                        position=0),
                   models.PlaylistTrack(playlist_id=done.id,
                                        track_id=out["played-long-ago"], position=0),
                   models.PlaylistTrack(playlist_id=crate.id, track_id=out["boost"],
                                        position=0),
                   models.PlaylistTrack(playlist_id=crate.id, track_id=out["clash"],
                                        position=1)])
        out["crate"] = crate.id
    return out


def get(server: Any, track_id: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{server.url}/api/tracks/{track_id}/suggestions", params=params,
                     timeout=30)


def titles(body: dict[str, Any]) -> list[str]:
    return [s["track"]["title"] for s in body["data"]]


def test_suggestions_are_harmonic_in_tempo_and_ranked(lib_server: Any, ids: dict[str, str]
                                                      ) -> None:
    """Compatible keys within 6 % (half/double time too), best first; clashing keys, far
    tempos, unknown tempos, missing tracks and the track itself are left out."""
    r = get(lib_server, ids["now"])
    assert r.status_code == 200
    body = r.json()
    Envelope[list[SuggestionPublic]].model_validate(body)
    assert body["count"] == len(body["data"])
    assert titles(body) == ["same-key", "tagged-only", "played-long-ago", "half-time",
                            "up-one", "relative", "boost"]
    scores = [s["score"] for s in body["data"]]
    assert scores == sorted(scores)


def test_each_suggestion_says_why(lib_server: Any, ids: dict[str, str]) -> None:
    """Reasons name the Camelot move, the tempo step and the energy step."""
    by_title = {s["track"]["title"]: s for s in get(lib_server, ids["now"]).json()["data"]}
    assert by_title["up-one"]["reasons"] == ["8A → 9A: +1 on the Camelot wheel",
                                             "126 → 128 BPM (+1.6 %)", "energy 6 → 7"]
    assert by_title["up-one"]["key_move"] == "+1"
    assert by_title["relative"]["reasons"][0] == "8A → 8B: relative major"
    assert by_title["boost"]["reasons"][0] == "8A → 10A: +2 energy boost (a whole tone up)"
    assert by_title["half-time"]["reasons"][1] == "126 → 63.5 BPM (half time, +0.8 %)"
    assert by_title["half-time"]["reasons"][2] == "energy 6 → 7"
    assert by_title["tagged-only"]["reasons"] == ["8A → 8A: same key",
                                                  "126 → 125 BPM (-0.8 %)"]


@pytest.mark.parametrize(("energy", "expected"), [
    ("up", ["played-long-ago", "half-time", "up-one", "tagged-only", "boost"]),
    ("same", ["same-key", "tagged-only"]),
    ("down", ["relative", "tagged-only"]),
])
def test_energy_direction_filters_and_ranks(lib_server: Any, ids: dict[str, str],
                                            energy: str, expected: list[str]) -> None:
    """``energy`` keeps higher, equal or lower energy levels (each level beyond the next
    one costs rank); a track of unknown energy stays, ranked lower than it would be."""
    assert titles(get(lib_server, ids["now"], energy=energy).json()) == expected


def test_limit_and_playlist_restrict_the_candidates(lib_server: Any, ids: dict[str, str]
                                                    ) -> None:
    """``limit`` cuts the ranked list; ``playlist_id`` keeps that playlist's tracks."""
    assert titles(get(lib_server, ids["now"], limit=2).json()) == ["same-key", "tagged-only"]
    assert titles(get(lib_server, ids["now"], playlist_id=ids["crate"]).json()) == ["boost"]


def test_a_track_without_key_or_tempo_gets_suggestions_by_what_is_known(
        lib_server: Any, ids: dict[str, str]) -> None:
    """Without a tempo only the key rule applies (and the other way round)."""
    body = get(lib_server, ids["no-tempo"]).json()  # 9A, tempo unknown
    assert "too-fast" in titles(body) and "clash" not in titles(body)
    assert all(len(s["reasons"]) >= 1 for s in body["data"])


@pytest.mark.parametrize(("path", "params", "status"), [
    ("/api/tracks/{unknown}/suggestions", {}, 404),
    ("/api/tracks/not-a-uuid/suggestions", {}, 404),
    ("/api/tracks/{now}/suggestions", {"energy": "sideways"}, 400),
    ("/api/tracks/{now}/suggestions", {"limit": 0}, 400),
    ("/api/tracks/{now}/suggestions", {"limit": "many"}, 400),
    ("/api/tracks/{now}/suggestions", {"playlist_id": "nope"}, 400),
    ("/api/tracks/{now}/suggestions", {"playlist_id": "{unknown}"}, 404),
])
def test_bad_requests_are_refused(lib_server: Any, ids: dict[str, str], path: str,
                                  params: dict[str, Any], status: int) -> None:
    """Unknown track or playlist: 404; malformed parameters: 400, with the error envelope."""
    names = {**ids, "unknown": "0b7d6a4c-8c2b-4e63-9f1f-2a2f3c4d5e6f"}
    r = httpx.get(lib_server.url + path.format(**names),
                  params={k: str(v).format(**names) for k, v in params.items()}, timeout=30)
    assert r.status_code == status
    assert r.json()["success"] is False


def test_the_route_does_not_shadow_the_track_routes(lib_server: Any, ids: dict[str, str]
                                                    ) -> None:
    """``/api/tracks/:id`` and ``/api/tracks/stats`` still answer as before."""
    assert httpx.get(f"{lib_server.url}/api/tracks/{ids['now']}",
                     timeout=30).json()["data"]["title"] == "now"
    assert httpx.get(f"{lib_server.url}/api/tracks/stats", timeout=30).status_code == 200


def test_the_bpm_range_is_a_library_setting(services: Any, live_server: Any) -> None:
    """``SUGGESTION_BPM_PERCENT`` widens or narrows the tempo range."""
    from taperoom.library.app import create_app

    ctx = services(suggestion_bpm_percent=1.0)
    with transaction(ctx.db) as s:
        a = models.Track(file_path="/m/a.mp3", title="a", bpm=126.0, musical_key=9, mode=0)
        b = models.Track(file_path="/m/b.mp3", title="b", bpm=128.0, musical_key=9, mode=0)
        c = models.Track(file_path="/m/c.mp3", title="c", bpm=126.5, musical_key=9, mode=0)
        s.add_all([a, b, c])
        s.flush()
        aid = a.id
    server = live_server(create_app(services=ctx))
    assert titles(get(server, aid).json()) == ["c"]
