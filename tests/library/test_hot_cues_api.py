"""/api/tracks/:id/hot-cues: upsert, loops, sources, updates, deletes, events."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.db import transaction
from taperoom.library import models

pytestmark = pytest.mark.backends()


@pytest.fixture
def api(lib_server: Any) -> Any:
    """An HTTP client of the running library server."""
    with httpx.Client(base_url=lib_server.url, timeout=30) as client:
        yield client


@pytest.fixture
def track_id(lib_ctx: Any, tmp_path: Path, corpus: Path) -> str:
    """A track row pointing at a real corpus file copied to tmp_path."""
    path = tmp_path / "Armygeddon.mp3"
    shutil.copyfile(corpus / "scanner/real_music_tagged/01 - Muldjord - Armygeddon.mp3", path)
    with transaction(lib_ctx.db) as s:
        track = models.Track(file_path=str(path), title="Armygeddon", artist="Muldjord")
        s.add(track)
    return track.id


def cues(api: httpx.Client, tid: str, **params: Any) -> list[dict[str, Any]]:
    r = api.get(f"/api/tracks/{tid}/hot-cues", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def test_upsert_creates_then_replaces(api, lib_ctx, track_id) -> None:
    """POST creates a cue with defaults, a second POST on the slot replaces it in place."""
    events: list[tuple[str, dict[str, Any]]] = []
    lib_ctx.bus.subscribe(lambda n, d: events.append((n, d)))
    r = api.post(f"/api/tracks/{track_id}/hot-cues/3", json={"position": 12.5})
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Hot cue saved successfully"
    cue = r.json()["data"]
    uuid.UUID(cue["id"])
    assert {k: cue[k] for k in ("track_id", "cue_index", "position", "name", "color",
                                "is_loop", "loop_end", "auto_loop", "source")} == {
        "track_id": track_id, "cue_index": 3, "position": 12.5, "name": None,
        "color": "#ff4444", "is_loop": 0, "loop_end": None, "auto_loop": 0, "source": "user"}
    assert cue["created_at"].endswith("Z") and cue["updated_at"].endswith("Z")

    r = api.post(f"/api/tracks/{track_id}/hot-cues/3",
                 json={"position": 20.0, "name": "Drop", "color": "#00AAFF"})
    again = r.json()["data"]
    assert again["id"] == cue["id"] and again["position"] == 20.0 and again["name"] == "Drop"
    assert len(cues(api, track_id)) == 1
    assert [e[0] for e in events] == ["track:updated", "track:updated"]
    assert events[-1][1]["trackId"] == track_id
    assert events[-1][1]["changes"]["hotCues"][0]["position"] == 20.0
    track = api.get(f"/api/tracks/{track_id}").json()["data"]
    assert [c["id"] for c in track["hotCues"]] == [cue["id"]]


def test_loop_rules(api, track_id) -> None:
    """A loop needs loopEnd after position; a plain cue drops loopEnd; snake_case works too."""
    url = f"/api/tracks/{track_id}/hot-cues"
    for body in ({"position": 5, "isLoop": True},
                 {"position": 5, "isLoop": True, "loopEnd": 5},
                 {"position": 5, "isLoop": True, "loopEnd": 4.9}):
        r = api.post(f"{url}/0", json=body)
        assert r.status_code == 400, body
        assert r.json()["error"] == "Validation failed"
    r = api.post(f"{url}/0", json={"position": 5, "isLoop": True, "loopEnd": 9.5,
                                   "autoLoop": True})
    loop = r.json()["data"]
    assert (loop["is_loop"], loop["loop_end"], loop["auto_loop"]) == (1, 9.5, 1)
    r = api.post(f"{url}/1", json={"position": 5, "isLoop": False, "loopEnd": 2})
    assert r.status_code == 200 and r.json()["data"]["loop_end"] is None
    r = api.post(f"{url}/2", json={"position": 1, "is_loop": True, "loop_end": 3})
    assert r.json()["data"]["is_loop"] == 1 and r.json()["data"]["loop_end"] == 3


def test_post_validation(api, track_id) -> None:
    """Index 0..7, position >= 0, #RRGGBB colours and known sources only (400 otherwise)."""
    url = f"/api/tracks/{track_id}/hot-cues"
    bad = [("8", {"position": 1}), ("-1", {"position": 1}), ("x", {"position": 1}),
           ("0", {}), ("0", {"position": -0.1}), ("0", {"position": "soon"}),
           ("0", {"position": 1, "color": "red"}), ("0", {"position": 1, "color": "#12345G"}),
           ("0", {"position": 1, "source": "traktor"}), ("0", {"position": 1, "isLoop": "yes?"})]
    for index, body in bad:
        r = api.post(f"{url}/{index}", json=body)
        assert r.status_code == 400, (index, body, r.text)
        assert r.json()["success"] is False
    assert cues(api, track_id) == []
    assert api.post(f"{url}/7", json={"position": 0}).status_code == 200


def test_sources_are_separate_and_preferred(api, track_id) -> None:
    """Each source has its own slot; lists filter by source; 'preferred' ranks user first."""
    url = f"/api/tracks/{track_id}/hot-cues"
    plan = [(0, "virtual dj", 1.0), (0, "serato", 2.0), (1, "mixedInKey", 3.0),
            (1, "rekordbox", 4.0), (2, "serato", 5.0), (2, "virtual dj", 6.0),
            (0, "user", 7.0), (3, "mixedInKey", 8.0), (3, "virtual dj", 9.0)]
    for index, source, position in plan:
        r = api.post(f"{url}/{index}", json={"position": position, "source": source})
        assert r.status_code == 200, r.text
    every = cues(api, track_id)
    assert len(every) == len(plan)
    assert [(c["source"], c["cue_index"]) for c in every] == sorted(
        (c["source"], c["cue_index"]) for c in every)
    assert [c["position"] for c in cues(api, track_id, source="serato")] == [2.0, 5.0]
    assert [c["position"] for c in cues(api, track_id, source="virtual dj")] == [1.0, 6.0, 9.0]
    preferred = cues(api, track_id, source="preferred")
    assert [(c["cue_index"], c["source"]) for c in preferred] == [
        (0, "user"), (1, "rekordbox"), (2, "serato"), (3, "mixedInKey")]
    assert api.get(f"{url}/0").json()["data"]["position"] == 7.0
    assert api.get(f"{url}/0", params={"source": "serato"}).json()["data"]["position"] == 2.0
    r = api.get(f"{url}/1")
    assert r.status_code == 404 and r.json()["error"] == "Hot cue not found"
    assert api.get(f"{url}/0", params={"source": "bogus"}).status_code == 400
    assert api.get(url, params={"source": "bogus"}).status_code == 400


def test_put_updates_some_fields(api, track_id) -> None:
    """PUT needs a field, keeps the others, checks the loop rule on the result; 404 if empty."""
    url = f"/api/tracks/{track_id}/hot-cues"
    api.post(f"{url}/4", json={"position": 10, "name": "Intro", "color": "#112233"})
    r = api.put(f"{url}/4", json={"name": "Verse"})
    assert r.status_code == 200 and r.json()["message"] == "Hot cue updated successfully"
    cue = r.json()["data"]
    assert (cue["name"], cue["position"], cue["color"]) == ("Verse", 10, "#112233")
    for body in ({}, {"position": None}, {"color": "blue"}, {"position": -1}):
        r = api.put(f"{url}/4", json=body)
        assert r.status_code == 400, body
    r = api.put(f"{url}/4", json={"isLoop": True})
    assert r.status_code == 400 and "loopEnd" in r.json()["error"]
    r = api.put(f"{url}/4", json={"isLoop": True, "loopEnd": 8})
    assert r.status_code == 400
    r = api.put(f"{url}/4", json={"isLoop": True, "loopEnd": 14})
    assert (r.json()["data"]["is_loop"], r.json()["data"]["loop_end"]) == (1, 14)
    r = api.put(f"{url}/4", json={"position": 15})
    assert r.status_code == 400, "moving a loop's start past its end is refused"
    r = api.put(f"{url}/4", json={"isLoop": False})
    assert r.json()["data"]["loop_end"] is None
    assert api.put(f"{url}/5", json={"name": "x"}).status_code == 404
    r = api.put(f"{url}/4", params={"source": "serato"}, json={"name": "x"})
    assert r.status_code == 404


def test_delete_one_and_all(api, lib_ctx, track_id) -> None:
    """DELETE one cue (404 when empty), DELETE all reports how many went."""
    url = f"/api/tracks/{track_id}/hot-cues"
    for index in range(3):
        api.post(f"{url}/{index}", json={"position": index})
    api.post(f"{url}/0", json={"position": 1, "source": "rekordbox"})
    r = api.delete(f"{url}/1")
    assert r.json() == {"success": True, "message": "Hot cue deleted successfully"}
    assert api.delete(f"{url}/1").status_code == 404
    assert api.delete(f"{url}/0", params={"source": "serato"}).status_code == 404
    r = api.delete(f"{url}/0", params={"source": "rekordbox"})
    assert r.status_code == 200
    events: list[tuple[str, dict[str, Any]]] = []
    lib_ctx.bus.subscribe(lambda n, d: events.append((n, d)))
    r = api.delete(url)
    assert r.json() == {"success": True, "message": "Removed 2 hot cue(s)", "count": 2}
    assert events == [("track:updated", {"trackId": track_id, "changes": {"hotCues": []}})]
    assert api.delete(url).json()["count"] == 0
    assert cues(api, track_id) == []


def test_unknown_track_is_404_everywhere(api) -> None:
    """Every hot-cue route answers the contract's track 404 for unknown and non-UUID ids."""
    for tid in (str(uuid.uuid4()), "123"):
        url = f"/api/tracks/{tid}/hot-cues"
        for method, path, body in (("GET", url, None), ("GET", f"{url}/0", None),
                                   ("POST", f"{url}/0", {"position": 1}),
                                   ("PUT", f"{url}/0", {"name": "x"}),
                                   ("DELETE", f"{url}/0", None), ("DELETE", url, None)):
            r = api.request(method, path, json=body)
            assert r.status_code == 404, (method, path)
            assert r.json() == {"success": False, "error": "Track not found",
                                "message": f"Track with ID {tid} does not exist"}


@pytest.mark.backends("sqlite")  # routing only: one backend is enough
def test_405_allow_lists_every_method_of_the_path(api, track_id) -> None:
    """A method a hot-cue path lacks is 405 with every method it has in ``Allow``."""
    def allowed(r: httpx.Response) -> set[str]:
        assert r.status_code == 405, r.text
        return {m.strip() for m in r.headers["allow"].split(",")}

    assert allowed(api.post(f"/api/tracks/{track_id}/hot-cues")) == {"GET", "DELETE"}
    assert allowed(api.put(f"/api/tracks/{track_id}/hot-cues")) == {"GET", "DELETE"}
    assert allowed(api.patch(f"/api/tracks/{track_id}/hot-cues/3")) == {
        "GET", "POST", "PUT", "DELETE"}
