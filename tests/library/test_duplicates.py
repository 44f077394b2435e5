"""Duplicate groups by audio hash: detection, listing, statistics and resolution."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import mutagen
import pytest
from sqlalchemy import select

from taperoom.audio.hashing import audio_hash
from taperoom.db import transaction
from taperoom.library import duplicates, models
from tests.library.busevents import Events

TAGGED = ("scanner", "real_music_tagged")

pytestmark = pytest.mark.backends()
MP3 = "01 - Muldjord - Armygeddon.mp3"
OTHER_MP3 = "09 - Maxstack - Aberrations.mp3"
FLAC = "18 - various (librosa example data) - admiralbob77 - Choice - Drum-bass.flac"
OGG = "04 - Muldjord - Mutilated Mime.ogg"
T0 = datetime(2024, 1, 1, 12, 0, 0)


# --------------------------------------------------------------------------- helpers


def copy_in(corpus: Path, name: str, dest: Path) -> Path:
    """Copy a corpus file to `dest` (a file path), writable."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus.joinpath(*TAGGED, name), dest)
    os.chmod(dest, 0o644)
    return dest


def add_library(ctx: Any, path: Path) -> str:
    """Insert a library folder row; returns its id."""
    path.mkdir(parents=True, exist_ok=True)
    with transaction(ctx.db) as s:
        d = models.LibraryDirectory(path=str(path), name=path.name)
        s.add(d)
        s.flush()
        return d.id


def add_track(ctx: Any, path: Path, library_id: str | None = None, *,
              file_hash: str | None = None, **fields: Any) -> str:
    """Insert a track row for a real file; its hash is the file's audio hash unless given."""
    with transaction(ctx.db) as s:
        t = models.Track(file_path=str(path), file_size=path.stat().st_size,
                         file_hash=file_hash or audio_hash(path),
                         library_directory_id=library_id, relative_path=path.name, **fields)
        s.add(t)
        s.flush()
        return t.id


def track(ctx: Any, track_id: str) -> models.Track | None:
    with ctx.db() as s:
        return s.get(models.Track, track_id)


def playlist(ctx: Any, track_ids: list[str]) -> str:
    """A static playlist holding `track_ids` at positions 0, 1, ..."""
    with transaction(ctx.db) as s:
        p = models.Playlist(name=f"P{uuid.uuid4().hex[:4]}")
        s.add(p)
        s.flush()
        for pos, tid in enumerate(track_ids):
            s.add(models.PlaylistTrack(playlist_id=p.id, track_id=tid, position=pos))
        return p.id


def entries(ctx: Any, playlist_id: str) -> list[tuple[str, int]]:
    with ctx.db() as s:
        rows = s.execute(select(models.PlaylistTrack.track_id, models.PlaylistTrack.position)
                         .where(models.PlaylistTrack.playlist_id == playlist_id)
                         .order_by(models.PlaylistTrack.position)).all()
        return [(r[0], r[1]) for r in rows]




@pytest.fixture
def api(lib_server: Any) -> Iterator[httpx.Client]:
    """HTTP client of the library app on a real socket."""
    with httpx.Client(base_url=lib_server.url, timeout=30) as client:
        yield client


@pytest.fixture
def copies(tmp_path: Path, lib_ctx: Any, corpus: Path) -> dict[str, Any]:
    """Two library folders; the same MP3 in each, the second re-tagged, and one other MP3."""
    a, b = tmp_path / "laptop", tmp_path / "usb"
    a_id, b_id = add_library(lib_ctx, a), add_library(lib_ctx, b)
    first = copy_in(corpus, MP3, a / MP3)
    second = copy_in(corpus, MP3, b / "armygeddon (dj edit).mp3")
    tags = mutagen.File(second, easy=True)
    tags["title"] = ["Armygeddon (DJ copy)"]
    tags["genre"] = ["Trance"]
    tags.save()
    single = copy_in(corpus, OTHER_MP3, a / OTHER_MP3)
    return {"a": a, "b": b, "a_id": a_id, "b_id": b_id, "first": first, "second": second,
            "single": single,
            "ids": [add_track(lib_ctx, first, a_id, title="Armygeddon"),
                    add_track(lib_ctx, second, b_id, title="Armygeddon (DJ copy)")],
            "single_id": add_track(lib_ctx, single, a_id)}


# --------------------------------------------------------------------------- detection


def test_retagged_copy_is_detected_listed_and_stable(api: httpx.Client, lib_ctx: Any,
                                                     copies: dict[str, Any]) -> None:
    """A re-tagged copy has the same audio hash and forms a group listed with its tracks."""
    assert copies["first"].read_bytes() != copies["second"].read_bytes()
    assert audio_hash(copies["first"]) == audio_hash(copies["second"])
    events = Events(lib_ctx)
    r = api.post("/api/duplicates/scan")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Scan complete: 1 duplicate groups found"
    assert body["data"]["groupsCreated"] == 1 and body["data"]["tracksProcessed"] == 2
    [detected] = events.of("duplicate:detected")
    assert sorted(detected["trackIds"]) == sorted(copies["ids"])
    group_id = detected["groupId"]
    assert isinstance(group_id, int)

    listing = api.get("/api/duplicates").json()
    assert listing["pagination"] == {"page": 1, "limit": 50, "total": 1, "totalPages": 1}
    [group] = listing["data"]
    assert group["id"] == group_id and group["total_duplicates"] == 2
    assert group["canonical_track_id"] in copies["ids"]
    assert {t["id"] for t in group["tracks"]} == set(copies["ids"])
    assert [t["is_canonical"] for t in group["tracks"]] == [1, 0]
    assert {t["library_path"] for t in group["tracks"]} == {str(copies["a"]), str(copies["b"])}
    assert group["canonical_track_id"] == copies["ids"][0]  # tie on quality: the older one
    assert group["wasted_bytes"] == copies["second"].stat().st_size

    one = api.get(f"/api/duplicates/{group_id}")
    assert one.status_code == 200 and one.json()["data"]["tracks"] == group["tracks"]
    assert track(lib_ctx, copies["single_id"]).duplicate_group_id is None

    again = api.post("/api/duplicates/scan").json()["data"]
    assert again["groupsCreated"] == 0 and again["totalGroups"] == 1
    assert api.get("/api/duplicates").json()["data"][0]["id"] == group_id
    assert api.get("/api/duplicates/9999").status_code == 404
    assert api.get("/api/duplicates/abc").status_code == 404  # not a group path at all


@pytest.mark.backends("sqlite")  # routing only: one backend is enough
def test_wrong_method_on_scan_and_stats_is_405_not_a_group_id(api: httpx.Client) -> None:
    """``GET /scan`` is 405 (Allow: POST), not a 400 for a group id "scan"; a method a
    path lacks is 405 with every method the path has."""
    r = api.get("/api/duplicates/scan")
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == "POST"
    assert r.json()["success"] is False
    r = api.post("/api/duplicates/stats")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    r = api.delete("/api/duplicates/7")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    r = api.get("/api/duplicates/7/resolve")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_rebuild_groups_follows_hash_changes(lib_ctx: Any, tmp_path: Path,
                                             corpus: Path) -> None:
    """rebuild_groups creates, recounts and dissolves groups and keeps a chosen canonical."""
    src = copy_in(corpus, MP3, tmp_path / "src.mp3")
    paths = []
    for i in range(7):
        p = tmp_path / f"copy{i}.mp3"
        os.link(src, p)
        paths.append(p)
    hashes = ["h1", "h1", "h1", "h2", "h2", None, "99aa06d3014798d86001c324468d497f"]
    ids = []
    for p, h in zip(paths, hashes, strict=True):
        with transaction(lib_ctx.db) as s:
            t = models.Track(file_path=str(p), file_hash=h, date_added=T0)
            s.add(t)
            s.flush()
            ids.append(t.id)
    with transaction(lib_ctx.db) as s:
        first = duplicates.rebuild_groups(s)
    assert (first["groupsCreated"], first["tracksProcessed"], first["totalGroups"]) == (2, 5, 2)
    with lib_ctx.db() as s:
        groups = {g.file_hash: g for g in s.scalars(select(models.DuplicateGroup))}
        assert set(groups) == {"h1", "h2"}
        assert groups["h1"].total_duplicates == 3
        h1_group = groups["h1"].id
    chosen = ids[2]
    with transaction(lib_ctx.db) as s:
        s.get(models.DuplicateGroup, h1_group).canonical_track_id = chosen
        s.get(models.Track, ids[4]).file_hash = "h3"
    with transaction(lib_ctx.db) as s:
        second = duplicates.rebuild_groups(s)
    assert (second["groupsCreated"], second["groupsRemoved"], second["totalGroups"]) == (0, 1, 1)
    with lib_ctx.db() as s:
        assert s.get(models.DuplicateGroup, h1_group).canonical_track_id == chosen
        assert [s.get(models.Track, i).duplicate_group_id for i in ids] == \
            [h1_group] * 3 + [None] * 4


def test_group_listing_pagination_and_bad_queries(api: httpx.Client, lib_ctx: Any,
                                                  tmp_path: Path, corpus: Path) -> None:
    """The group list pages with a total; page and limit out of range are 400."""
    for name in (MP3, OTHER_MP3, OGG):
        for n in range(2):
            add_track(lib_ctx, copy_in(corpus, name, tmp_path / f"{n}-{name}"))
    api.post("/api/duplicates/scan")
    first = api.get("/api/duplicates", params={"limit": 2}).json()
    assert first["pagination"] == {"page": 1, "limit": 2, "total": 3, "totalPages": 2}
    assert len(first["data"]) == 2
    second = api.get("/api/duplicates/", params={"limit": 2, "page": 2}).json()
    assert len(second["data"]) == 1 and second["pagination"]["total"] == 3
    assert {g["id"] for g in first["data"] + second["data"]} == \
        {g["id"] for g in api.get("/api/duplicates").json()["data"]}
    for params in ({"page": 0}, {"limit": 0}, {"limit": 5000}, {"page": "x"}):
        assert api.get("/api/duplicates", params=params).status_code == 400


def test_stats_count_wasted_bytes_by_format(api: httpx.Client, lib_ctx: Any, tmp_path: Path,
                                            corpus: Path) -> None:
    """Stats sum the sizes of the non-canonical copies, overall and per format."""
    mp3s = [copy_in(corpus, MP3, tmp_path / f"m{n}.mp3") for n in range(3)]
    oggs = [copy_in(corpus, OGG, tmp_path / f"o{n}.ogg") for n in range(2)]
    for p in mp3s + oggs:
        add_track(lib_ctx, p)
    empty = api.get("/api/duplicates/stats").json()["data"]
    assert empty["total_groups"] == 0 and empty["wasted_bytes"] == 0
    api.post("/api/duplicates/scan")
    data = api.get("/api/duplicates/stats").json()["data"]
    mp3_size, ogg_size = mp3s[0].stat().st_size, oggs[0].stat().st_size
    assert data["total_groups"] == 2 and data["total_duplicate_tracks"] == 5
    assert data["redundant_tracks"] == 3 and data["max_duplicates_in_group"] == 3
    assert data["wasted_bytes"] == 2 * mp3_size + ogg_size == data["wasted_space_bytes"]
    assert data["by_format"] == {
        "mp3": {"groups": 1, "tracks": 3, "wasted_bytes": 2 * mp3_size},
        "ogg": {"groups": 1, "tracks": 2, "wasted_bytes": ogg_size}}


# --------------------------------------------------------------------------- resolution


def test_each_policy_step_decides_when_earlier_steps_tie(api: httpx.Client, lib_ctx: Any,
                                                         tmp_path: Path, corpus: Path) -> None:
    """Lossless, bit rate, tags, folder, age and id decide in that order; policies reorder."""
    lib_a, lib_b = tmp_path / "a", tmp_path / "b"
    a_id, b_id = add_library(lib_ctx, lib_a), add_library(lib_ctx, lib_b)
    mp3 = copy_in(corpus, MP3, tmp_path / "src.mp3")
    flac = copy_in(corpus, FLAC, tmp_path / "src.flac")
    full = {"artist": "Muldjord", "album": "Songs", "genre": "Metal", "year": 2007}
    base = {"codec": "mp3", "bit_rate": 320000, "date_added": T0}
    counter = iter(range(1000))

    def group(*specs: dict[str, Any]) -> tuple[int, list[str]]:
        key = f"policy-{next(counter)}"
        ids = []
        for spec in specs:
            spec = {**base, **spec}
            lib_id = spec.pop("lib", a_id)
            root = lib_a if lib_id == a_id else lib_b
            src = flac if spec.get("codec") == "flac" else mp3
            path = root / f"{key}-{len(ids)}{src.suffix}"
            os.link(src, path)
            ids.append(add_track(lib_ctx, path, lib_id, file_hash=key, **spec))
        api.post("/api/duplicates/scan")
        with lib_ctx.db() as s:
            gid = s.scalar(select(models.DuplicateGroup.id)
                           .where(models.DuplicateGroup.file_hash == key))
        return gid, ids

    def kept(gid: int, **body: Any) -> str:
        r = api.post(f"/api/duplicates/{gid}/resolve", json={"keepMetadata": False, **body})
        assert r.status_code == 200, r.text
        return str(r.json()["data"]["canonicalTrackId"])

    gid, ids = group({"bit_rate": 900000, **full}, {"codec": "flac", "bit_rate": 200000})
    assert kept(gid) == ids[1]  # lossless beats a higher bit rate and more tags
    gid, ids = group({"bit_rate": 192000, **full}, {})
    assert kept(gid) == ids[1]  # higher bit rate beats more tags
    gid, ids = group({"date_added": T0 - timedelta(days=9)}, {"title": "Armygeddon", **full})
    assert kept(gid) == ids[1]  # more tags beat an older copy
    gid, ids = group({"date_added": T0 - timedelta(days=9)}, {"lib": b_id})
    assert kept(gid, preferredDirectoryId=b_id) == ids[1]  # preferred folder beats age
    gid, ids = group({}, {"date_added": T0 - timedelta(days=1)})
    assert kept(gid) == ids[1]  # the oldest copy
    gid, ids = group({}, {})
    assert kept(gid) == min(ids)  # full tie: the smallest id
    gid, ids = group({"codec": "flac"}, {"lib": b_id})
    assert kept(gid, policy="location", preferredDirectoryId=b_id) == ids[1]
    gid, ids = group({"date_added": T0 - timedelta(days=1)}, {})
    assert kept(gid, policy="newest") == ids[1]
    gid, ids = group({"codec": "flac"}, {"play_count": 12})
    assert kept(gid, policy="most_played") == ids[1]
    gid, ids = group({"codec": "flac"}, {})
    r = api.post(f"/api/duplicates/{gid}/resolve", json={"canonicalTrackId": ids[1]})
    assert r.json()["data"]["canonicalTrackId"] == ids[1]
    assert r.json()["data"]["chosenBy"] == "canonicalTrackId"
    assert [x["trackId"] for x in r.json()["data"]["ranking"]] == ids  # ranking still shown


def test_resolve_merges_tags_counts_analysis_and_cues(api: httpx.Client, lib_ctx: Any,
                                                      copies: dict[str, Any]) -> None:
    """The kept track takes missing tags and analysis, max counts, latest play and new cues."""
    keep, other = copies["ids"]
    with transaction(lib_ctx.db) as s:
        k, o = s.get(models.Track, keep), s.get(models.Track, other)
        k.title, k.genre, k.play_count, k.rating, k.last_played = None, "  ", 3, 2, T0
        o.genre, o.bpm, o.musical_key, o.beats_data = "Metal", 170.0, 9, b"[0.5, 0.85]"
        o.play_count, o.rating, o.last_played = 7, 4, T0 + timedelta(days=3)
        s.add(models.HotCue(track_id=keep, cue_index=0, position=1.0, source="user"))
        s.add(models.HotCue(track_id=other, cue_index=0, position=5.0, source="user"))
        s.add(models.HotCue(track_id=other, cue_index=1, position=9.0, source="user",
                            name="drop"))
        s.add(models.HotCue(track_id=other, cue_index=0, position=2.0, source="rekordbox"))
    api.post("/api/duplicates/scan")
    gid = track(lib_ctx, keep).duplicate_group_id
    events = Events(lib_ctx)
    r = api.post(f"/api/duplicates/{gid}/resolve", json={"canonicalTrackId": keep})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert r.json()["message"] == f"Resolved duplicate group, kept track {keep}"
    assert data["merged"]["fields"] == {"title": other, "genre": other, "bpm": other,
                                        "musical_key": other, "beats_data": other}
    assert data["merged"]["playCount"] == 7 and data["merged"]["rating"] == 4
    assert len(data["merged"]["hotCuesCopied"]) == 2
    assert data["removedTrackIds"] == [other] and data["groupDissolved"] is True
    kept_row = track(lib_ctx, keep)
    assert kept_row.title == "Armygeddon (DJ copy)" and kept_row.genre == "Metal"
    assert (kept_row.bpm, kept_row.musical_key, kept_row.beats_data) == (170.0, 9,
                                                                         b"[0.5, 0.85]")
    assert (kept_row.play_count, kept_row.rating) == (7, 4)
    assert kept_row.last_played == T0 + timedelta(days=3)
    assert kept_row.duplicate_group_id is None and data["kept"]["duplicate_group_id"] is None
    with lib_ctx.db() as s:
        cues = {(c.cue_index, c.source): (c.position, c.name)
                for c in s.scalars(select(models.HotCue).where(models.HotCue.track_id == keep))}
        assert s.scalar(select(models.HotCue.id).where(models.HotCue.track_id == other)) is None
    assert cues == {(0, "user"): (1.0, None), (1, "user"): (9.0, "drop"),
                    (0, "rekordbox"): (2.0, None)}
    assert track(lib_ctx, other) is None and copies["second"].is_file()  # file kept
    assert events.of("duplicate:resolved")[0]["removedTrackIds"] == [other]
    assert events.of("track:updated")[0]["trackId"] == keep
    assert api.get(f"/api/duplicates/{gid}").status_code == 404


def test_resolve_repoints_playlists_and_closes_gaps(api: httpx.Client, lib_ctx: Any,
                                                    copies: dict[str, Any],
                                                    corpus: Path) -> None:
    """Entries of copies point at the kept track; where it is already listed they are dropped."""
    keep, d1 = copies["ids"]
    d2 = add_track(lib_ctx, copy_in(corpus, MP3, copies["b"] / "third copy.mp3"), copies["b_id"])
    x = copies["single_id"]
    y = add_track(lib_ctx, copy_in(corpus, OGG, copies["a"] / OGG), copies["a_id"])
    z = add_track(lib_ctx, copy_in(corpus, FLAC, copies["a"] / "z.flac"), copies["a_id"])
    p1 = playlist(lib_ctx, [x, d1, y])
    p2 = playlist(lib_ctx, [keep, x, d1, y])
    p3 = playlist(lib_ctx, [d1, z, d2])
    api.post("/api/duplicates/scan")
    gid = track(lib_ctx, keep).duplicate_group_id
    r = api.post(f"/api/duplicates/{gid}/resolve", json={"canonicalTrackId": keep})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["playlists"] == {"repointed": 2, "removed": 2,
                                             "playlistIds": sorted([p1, p2, p3])}
    assert entries(lib_ctx, p1) == [(x, 0), (keep, 1), (y, 2)]
    assert entries(lib_ctx, p2) == [(keep, 0), (x, 1), (y, 2)]
    assert entries(lib_ctx, p3) == [(keep, 0), (z, 1)]
    assert sorted(r.json()["data"]["removedTrackIds"]) == sorted([d1, d2])


def test_resolve_without_playlist_update_removes_entries(api: httpx.Client, lib_ctx: Any,
                                                         copies: dict[str, Any]) -> None:
    """With updatePlaylists=false the copies' entries go with them and positions close up."""
    keep, dup = copies["ids"]
    x = copies["single_id"]
    p = playlist(lib_ctx, [dup, x])
    api.post("/api/duplicates/scan")
    gid = track(lib_ctx, keep).duplicate_group_id
    r = api.post(f"/api/duplicates/{gid}/resolve",
                 json={"canonicalTrackId": keep, "updatePlaylists": False})
    assert r.status_code == 200, r.text
    assert entries(lib_ctx, p) == [(x, 0)]


def test_resolve_with_delete_files_uses_logged_file_operations(api: httpx.Client, lib_ctx: Any,
                                                               copies: dict[str, Any],
                                                               corpus: Path) -> None:
    """deleteFiles removes the other copies' files through the logged delete operation."""
    third = copy_in(corpus, MP3, copies["b"] / "third.mp3")
    add_track(lib_ctx, third, copies["b_id"])
    api.post("/api/duplicates/scan")
    gid = track(lib_ctx, copies["ids"][0]).duplicate_group_id
    events = Events(lib_ctx)
    r = api.post(f"/api/duplicates/{gid}/resolve",
                 json={"deleteFiles": True, "preferredDirectoryId": copies["a_id"],
                       "policy": "location"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["canonicalTrackId"] == copies["ids"][0] and data["filesDeleted"] == 2
    assert sorted(data["deletedFiles"]) == sorted([str(copies["second"]), str(third)])
    assert copies["first"].is_file() and not copies["second"].exists() and not third.exists()
    with lib_ctx.db() as s:
        ops = list(s.scalars(select(models.FileOperation)))
    assert [(op.operation_type, op.status) for op in ops] == [("delete", "completed")] * 2
    assert len(events.of("file_operation:complete")) == 2
    assert events.of("duplicate:resolved")[0]["filesDeleted"] == 2
    assert data["groupDissolved"] is True
    assert api.get("/api/duplicates/stats").json()["data"]["total_groups"] == 0


def test_resolve_rejects_bad_requests_without_changes(api: httpx.Client, lib_ctx: Any,
                                                      copies: dict[str, Any]) -> None:
    """Unknown group 404, foreign or malformed canonicalTrackId 400, bad policy 400."""
    api.post("/api/duplicates/scan")
    gid = track(lib_ctx, copies["ids"][0]).duplicate_group_id
    url = f"/api/duplicates/{gid}/resolve"
    assert api.post("/api/duplicates/9999/resolve", json={}).status_code == 404
    assert api.post("/api/duplicates/x/resolve", json={}).status_code == 404
    r = api.post(url, json={"canonicalTrackId": copies["single_id"]})
    assert r.status_code == 400 and "is not in duplicate group" in r.json()["error"]
    assert api.post(url, json={"canonicalTrackId": 5}).status_code == 400
    assert api.post(url, json={"policy": "bogus"}).status_code == 400
    assert api.post(url, json={"policy": "location"}).status_code == 400
    r = api.post(url, json={"preferredDirectoryId": str(uuid.uuid4())})
    assert r.status_code == 404
    assert api.post(url, json={"deleteFiles": "yes"}).status_code == 400
    group = api.get(f"/api/duplicates/{gid}").json()["data"]
    assert group["track_count"] == 2
    assert all(track(lib_ctx, t) is not None for t in copies["ids"])


def test_deleting_a_copy_dissolves_its_group(api: httpx.Client, lib_ctx: Any,
                                             copies: dict[str, Any]) -> None:
    """When a file operation deletes one of two copies, the group disappears."""
    api.post("/api/duplicates/scan")
    keep, dup = copies["ids"]
    gid = track(lib_ctx, keep).duplicate_group_id
    lib_ctx.fileops.delete(dup, confirm=True)
    assert api.get(f"/api/duplicates/{gid}").status_code == 404
    assert track(lib_ctx, keep).duplicate_group_id is None
