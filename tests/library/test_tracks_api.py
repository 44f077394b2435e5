"""/api/tracks: listing, filters, sorting, full-text search, CRUD, verify, analysis reads."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.audio.hashing import audio_hash
from taperoom.db import transaction
from taperoom.library import models

TAGGED = "scanner/real_music_tagged"

pytestmark = pytest.mark.backends()


def _manifest(corpus: Path) -> list[dict[str, Any]]:
    return json.loads((corpus / TAGGED / "manifest.json").read_text())


@pytest.fixture
def music(tmp_path: Path, corpus: Path, lib_ctx: Any) -> dict[str, Any]:
    """A library folder in tmp_path with a few real corpus files, registered in the database."""
    root = tmp_path / "music"
    root.mkdir()
    files = {}
    for name in ("01 - Muldjord - Armygeddon.mp3", "09 - Maxstack - Aberrations.mp3",
                 "12 - Maxstack - By-Product.ogg",
                 "10 - Maxstack - Advanced Simulacra (ünïcödé ☆ 日本語).flac"):
        files[name] = Path(shutil.copyfile(corpus / TAGGED / name, root / name))
    with transaction(lib_ctx.db) as s:
        directory = models.LibraryDirectory(path=str(root), name="music")
        s.add(directory)
    return {"root": root, "dir_id": directory.id, "files": files}


def add_tracks(ctx: Any, rows: list[dict[str, Any]]) -> list[str]:
    """Insert track rows through the ORM; returns their ids in order."""
    with transaction(ctx.db) as s:
        objs = [models.Track(**row) for row in rows]
        s.add_all(objs)
    return [o.id for o in objs]


def corpus_rows(corpus: Path, root: Path, dir_id: str | None = None) -> list[dict[str, Any]]:
    """One row per tagged corpus file, metadata from the manifest, files linked into `root`."""
    src = root / "_src.mp3"
    if not src.exists():
        shutil.copyfile(corpus / TAGGED / "01 - Muldjord - Armygeddon.mp3", src)
    rows = []
    base = datetime(2024, 1, 1)
    for i, entry in enumerate(_manifest(corpus)):
        path = root / f"c{i:02d}.mp3"
        if not path.exists():
            os.link(src, path)
        rows.append({
            "file_path": str(path), "relative_path": path.name, "library_directory_id": dir_id,
            "title": Path(entry["file"]).stem.split(" - ", 2)[-1], "artist": entry["artist"],
            "album": entry["album"], "genre": entry["genre"], "year": entry["year"],
            "bpm": entry["bpm_tag"], "duration_seconds": entry["duration_s"],
            "date_added": base + timedelta(days=i), "file_size": 1000 + i,
        })
    return rows


@pytest.fixture
def api(lib_server: Any) -> Any:
    """An HTTP client of the running library server (one connection pool per test)."""
    # what is asserted is the answer, not its speed: a loaded machine may take seconds
    with httpx.Client(base_url=lib_server.url, timeout=30) as client:
        yield client


def get(client: httpx.Client, path: str, **params: Any) -> httpx.Response:
    return client.get(path, params=params)


def ids(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [t["id"] for t in resp.json()["data"]]


def events_of(ctx: Any) -> list[tuple[str, dict[str, Any]]]:
    got: list[tuple[str, dict[str, Any]]] = []
    ctx.bus.subscribe(lambda name, data: got.append((name, data)))
    return got


# --- listing -----------------------------------------------------------------------------


def test_pagination_total_for_zero_one_and_120_tracks(api, lib_ctx, tmp_path) -> None:
    """pagination.total is present and right for 0, 1 and 120 tracks; pages never overlap."""
    r = get(api, "/api/tracks")
    assert r.status_code == 200
    assert r.json() == {"success": True, "data": [],
                        "pagination": {"page": 1, "limit": 50, "total": 0, "totalPages": 1}}
    r = get(api, "/api/tracks/search", q="anything")
    assert r.json()["pagination"]["total"] == 0

    same_time = datetime(2024, 5, 1)
    first = add_tracks(lib_ctx, [{"file_path": str(tmp_path / "t000.mp3"),
                                  "date_added": same_time}])
    body = get(api, "/api/tracks").json()
    assert body["pagination"] == {"page": 1, "limit": 50, "total": 1, "totalPages": 1}
    assert body["data"][0]["id"] == first[0]

    rest = add_tracks(lib_ctx, [{"file_path": str(tmp_path / f"t{i:03d}.mp3"),
                                 "date_added": same_time} for i in range(1, 120)])
    all_ids = set(first + rest)
    seen: list[str] = []
    for page in (1, 2, 3):
        r = get(api, "/api/tracks", page=page, limit=50)
        assert r.json()["pagination"] == {"page": page, "limit": 50, "total": 120,
                                          "totalPages": 3}
        seen += ids(r)
    assert len(seen) == 120 and set(seen) == all_ids
    r = get(api, "/api/tracks", page=4, limit=50)
    assert ids(r) == [] and r.json()["pagination"]["total"] == 120
    assert get(api, "/api/tracks", limit=1000).json()["pagination"]["totalPages"] == 1


def test_each_filter(api, lib_ctx, corpus, music) -> None:
    """artist/genre/album substrings, float BPM range, key, mode, UUID library_id and the rest."""
    rows = corpus_rows(corpus, music["root"], music["dir_id"])
    rows[0].update(musical_key=9, mode=0, rating=4, file_hash="a" * 32)
    rows[1].update(musical_key=9, mode=1, rating=2, is_missing=True)
    rows[21].update(bpm=120.5, library_directory_id=None)
    tids = add_tracks(lib_ctx, rows)
    with transaction(lib_ctx.db) as s:
        group = models.DuplicateGroup(file_hash="a" * 32, canonical_track_id=tids[0])
        s.add(group)
        s.flush()
        for tid in tids[:2]:
            s.get(models.Track, tid).duplicate_group_id = group.id
    n = len(rows)

    def count(**params: Any) -> int:
        r = get(api, "/api/tracks", limit=1000, **params)
        assert r.status_code == 200, r.text
        assert r.json()["pagination"]["total"] == len(r.json()["data"])
        return int(r.json()["pagination"]["total"])

    assert count() == n
    assert count(artist="muLDjord") == 4
    assert count(artist="various") == 6
    assert count(genre="electro") == 9
    assert count(album="frets on fire") == 4
    assert count(album="100%") == 0
    bpms = [r["bpm"] for r in rows if r["bpm"] is not None]
    assert count(bpm_min=170) == sum(b >= 170 for b in bpms) == 6
    assert count(bpm_min=120.4, bpm_max=120.6) == 1
    assert count(bpm_min="170.0", bpm_max="180") == sum(170 <= b <= 180 for b in bpms) == 5
    assert count(key=9) == 2 and count(key=9, mode=1) == 1 and count(mode=0) == 1
    assert count(library_id=music["dir_id"]) == n - 1
    assert count(library_id=str(uuid.uuid4())) == 0
    assert count(is_missing="true") == 1 and count(is_missing="false") == n - 1
    assert count(duplicate_group_id=group.id) == 2
    assert count(year_min=2012, year_max=2013) == 8
    assert count(rating_min=3) == 1 and count(rating_min=0) == n
    assert count(has_file_hash="true") == 1 and count(has_file_hash="false") == n - 1
    assert count(artist="maxstack", genre="electronic", bpm_max=500) == 0
    assert count(artist="", genre="") == n


def test_each_sort_and_order(api, lib_ctx, corpus, music) -> None:
    """Every sort field orders rows (NULLs last, text case-insensitive), either direction."""
    rows = corpus_rows(corpus, music["root"], music["dir_id"])
    for i, row in enumerate(rows):
        row.update(musical_key=i % 12, play_count=i % 5, rating=i % 6,
                   last_played=datetime(2024, 6, 1) + timedelta(hours=i) if i % 3 else None)
    rows[3]["artist"] = "aardvark"
    add_tracks(lib_ctx, rows)
    fields = ["date_added", "artist", "title", "album", "bpm", "musical_key", "play_count",
              "duration_seconds", "year", "genre", "rating", "last_played"]
    for field in fields:
        for order in ("asc", "DESC"):
            r = get(api, "/api/tracks", sort=field, order=order, limit=1000)
            values = [t[field] for t in r.json()["data"]]
            present = [v for v in values if v is not None]
            assert values[:len(present)] == present, f"{field}: NULLs must come last"
            keyed = [v.lower() if isinstance(v, str) else v for v in present]
            assert keyed == sorted(keyed, reverse=order == "DESC"), field
    r = get(api, "/api/tracks", sort="artist", order="asc")
    assert r.json()["data"][0]["artist"] == "aardvark"
    default = ids(get(api, "/api/tracks", limit=1000))
    assert default == ids(get(api, "/api/tracks", sort="date_added", order="desc",
                              limit=1000))


BAD_LIST_QUERIES: list[dict[str, Any]] = [
    {"page": 0}, {"page": "x"}, {"limit": 0}, {"limit": 1001}, {"limit": "ten"},
    {"sort": "file_path"}, {"order": "up"}, {"key": 12}, {"key": -1}, {"mode": 2},
    {"library_id": 1}, {"library_id": "not-a-uuid"}, {"bpm_min": "fast"},
    {"bpm_min": 130, "bpm_max": 120}, {"is_missing": "maybe"}, {"duplicate_group_id": "a"},
    {"year_min": 2020, "year_max": 2000}, {"rating_min": 6}, {"search": "x" * 201},
]


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_invalid_list_query_is_400_with_details(api) -> None:
    """Bad query values answer 400 'Validation failed' with field details, never 500."""
    for params in BAD_LIST_QUERIES:
        r = get(api, "/api/tracks", **params)
        assert r.status_code == 400, (params, r.text)
        body = r.json()
        assert body["success"] is False and body["error"] == "Validation failed"
        assert body["details"] and all({"field", "message"} <= set(d) for d in body["details"])


# --- full-text search --------------------------------------------------------------------


@pytest.fixture
def searchable(lib_ctx, tmp_path) -> dict[str, str]:
    """Tracks with names from the corpus, including unicode and punctuation."""
    rows = [
        {"title": "Advanced Simulacra (ünïcödé ☆ 日本語)", "artist": "Maxstack",
         "album": "Endgame: Singularity OST", "genre": "Electronic"},
        {"title": "Around the World", "artist": "Daft Punk", "album": "Homework",
         "genre": "House"},
        {"title": "Partita No. 1 in B minor: Double (BWV1002)", "artist": "John Garner",
         "album": "Bach: Sonatas and Partitas", "genre": "Classical"},
        {"title": "By-Product", "artist": "Maxstack", "album": "Endgame: Singularity OST",
         "genre": "Electronic", "comment": "daft remix of a classical piece"},
        {"title": "Café \"Quoted\" 100% *star*", "artist": "Mötley Crüe", "genre": "Rock"},
    ]
    keys = ["simulacra", "daft", "partita", "byproduct", "cafe"]
    for i, row in enumerate(rows):
        row["file_path"] = str(tmp_path / f"s{i}.flac")
    return dict(zip(keys, add_tracks(lib_ctx, rows), strict=True))


def search(client: httpx.Client, q: str, **params: Any) -> list[str]:
    return ids(get(client, "/api/tracks/search", q=q, **params))


def test_search_prefix_multiword_and_diacritics(api, searchable) -> None:
    """'daft pu' finds Daft Punk; 'unicode' finds 'ünïcödé'; 'motley crue' finds 'Mötley Crüe'."""
    assert search(api, "daft pu") == [searchable["daft"]]
    assert search(api, "DAFT") == [searchable["daft"], searchable["byproduct"]]
    assert search(api, "unicode") == [searchable["simulacra"]]
    assert search(api, "ünï") == [searchable["simulacra"]]
    assert search(api, "日本語") == [searchable["simulacra"]]
    assert search(api, "motley crue") == [searchable["cafe"]]
    assert search(api, "cafe") == [searchable["cafe"]]
    assert search(api, "bach partita") == [searchable["partita"]]
    found = search(api, "maxstack endgame")
    assert sorted(found) == sorted([searchable["simulacra"], searchable["byproduct"]])
    assert search(api, "by-product") == [searchable["byproduct"]]
    assert search(api, "daft zzz") == []


def test_search_ranks_title_hits_above_comment_hits(api, searchable) -> None:
    """bm25 ranking: 'classical' in a genre/title outranks the same word in a comment."""
    found = search(api, "daft")
    assert found[0] == searchable["daft"]
    assert found.index(searchable["byproduct"]) > 0


NASTY_QUERIES = [
    '"', '""', "'", "*", "-", ":", "(", ")", "()", "NOT", "AND OR", "a OR b", "title:x",
    "^x", '"unbalanced', "*star*", "100%", "50_", "NEAR(a b)", "a -b", "{title}: x",
    "☆", "\\", "%", ";DROP TABLE tracks;--", "\u0000x",
]


def test_search_special_characters_never_fail(api, searchable) -> None:
    """FTS syntax characters in the query are data, never a 500."""
    for q in NASTY_QUERIES:
        r = get(api, "/api/tracks/search", q=q)
        assert r.status_code == 200, (q, r.text)
        assert r.json()["pagination"]["total"] == len(r.json()["data"])
        r = get(api, "/api/tracks", search=q)
        assert r.status_code == 200, (q, r.text)


def test_search_punctuation_only_falls_back_to_substring(api, searchable) -> None:
    """A query without words ('☆', '%', '*') matches the literal text, not everything."""
    assert search(api, "☆") == [searchable["simulacra"]]
    assert search(api, "%") == [searchable["cafe"]]
    assert search(api, '"quoted" *star*') == [searchable["cafe"]]
    assert search(api, "---") == []


def test_search_param_on_list_and_filters_combine(api, searchable) -> None:
    """search= on the list uses the same matcher and combines with filters and sorts."""
    assert ids(get(api, "/api/tracks", search="maxst")) == search(api, "maxst")
    assert ids(get(api, "/api/tracks", search="maxstack", genre="rock")) == []
    r = get(api, "/api/tracks", search="maxstack", sort="title", order="asc")
    assert ids(r) == [searchable["simulacra"], searchable["byproduct"]]
    r = get(api, "/api/tracks/search", q="maxstack", limit=1, page=2)
    assert r.json()["pagination"] == {"page": 2, "limit": 1, "total": 2, "totalPages": 2}
    assert len(r.json()["data"]) == 1


def test_search_pages_of_equal_matches_never_overlap(api, lib_ctx, tmp_path) -> None:
    """30 tracks that rank alike (the same title), paged 7 at a time, with and without a
    filter (two query plans on SQLite): every page but the last is full, no track comes
    twice, all 30 come, and the total is 30 on every page."""
    rows = [{"title": "Tie Song", "artist": "Same", "genre": "House",
             "file_path": str(tmp_path / f"tie{i}.flac")} for i in range(30)]
    added = set(add_tracks(lib_ctx, rows))
    add_tracks(lib_ctx, [{"title": "Other", "artist": "Else", "genre": "House",
                          "file_path": str(tmp_path / "other.flac")}])
    for extra in ({}, {"genre": "house"}):
        seen: list[str] = []
        path = "/api/tracks/search" if not extra else "/api/tracks"
        word = {"q": "tie so"} if not extra else {"search": "tie so"}
        for page in range(1, 6):
            r = get(api, path, **word, **extra, limit=7, page=page)
            assert r.status_code == 200, r.text
            assert r.json()["pagination"]["total"] == 30
            got = ids(r)
            assert len(got) == (7 if page < 5 else 2), (extra, page)
            seen += got
        assert len(seen) == len(set(seen)) == 30 and set(seen) == added, extra


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_search_q_is_required_and_bounded(api) -> None:
    """/search needs q of 1..200 non-blank characters (400 otherwise)."""
    for params in ({}, {"q": ""}, {"q": "   "}, {"q": "x" * 201}):
        r = get(api, "/api/tracks/search", **params)
        assert r.status_code == 400, params
        assert r.json()["error"] == "Validation failed"
    assert get(api, "/api/tracks/search", q="x" * 200).status_code == 200


def test_search_index_follows_updates_and_deletes(api, searchable) -> None:
    """The FTS triggers keep the index in sync with PUT and DELETE."""
    tid = searchable["daft"]
    r = api.put(f"/api/tracks/{tid}", json={"title": "Harder Better"})
    assert r.status_code == 200
    assert search(api, "harder") == [tid]
    assert search(api, "around world") == []
    assert api.delete(f"/api/tracks/{tid}").status_code == 200
    assert search(api, "harder") == []


# --- one track ---------------------------------------------------------------------------


def test_get_track_and_not_found_shapes(api, lib_ctx, tmp_path) -> None:
    """GET /:id returns the track with hotCues; unknown or non-UUID ids are the contract's 404."""
    (tid,) = add_tracks(lib_ctx, [{"file_path": str(tmp_path / "a.mp3"), "title": "A"}])
    with transaction(lib_ctx.db) as s:
        s.add(models.HotCue(track_id=tid, cue_index=2, position=12.5, source="user"))
    body = get(api, f"/api/tracks/{tid}").json()
    assert body["success"] is True
    track = body["data"]
    assert track["id"] == tid and track["title"] == "A" and track["is_missing"] == 0
    assert "beats_data" not in track and track["date_added"].endswith("Z")
    assert [(c["cue_index"], c["position"]) for c in track["hotCues"]] == [(2, 12.5)]
    assert get(api, f"/api/tracks/{tid.upper()}").json()["data"]["id"] == tid
    for bad in (str(uuid.uuid4()), "42", "not-a-uuid"):
        r = get(api, f"/api/tracks/{bad}")
        assert r.status_code == 404
        assert r.json() == {"success": False, "error": "Track not found",
                            "message": f"Track with ID {bad} does not exist"}


def test_create_track_from_library_file(api, lib_ctx, music, corpus) -> None:
    """POST reads tags and hashes the file, links it to its library folder, 201 + track:added."""
    events = events_of(lib_ctx)
    path = music["files"]["01 - Muldjord - Armygeddon.mp3"]
    r = api.post("/api/tracks", json={"file_path": str(path), "genre": "Thrash"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["message"] == "Track created successfully"
    track = body["data"]
    uuid.UUID(track["id"])
    assert track["title"] == "Armygeddon" and track["artist"] == "Muldjord"
    assert track["genre"] == "Thrash" and track["year"] == 2007 and track["bpm"] == 170.0
    assert track["library_directory_id"] == music["dir_id"]
    assert track["relative_path"] == path.name
    assert track["file_path"] == str(path) and track["file_size"] == path.stat().st_size
    assert track["file_hash"] == audio_hash(path)
    assert events[-1][0] == "track:added" and events[-1][1]["trackId"] == track["id"]
    with lib_ctx.db() as s:
        assert s.get(models.LibraryDirectory, music["dir_id"]).total_tracks == 1

    r = api.post("/api/tracks", json={"file_path": str(path)})
    assert r.status_code == 409
    flac = music["files"]["10 - Maxstack - Advanced Simulacra (ünïcödé ☆ 日本語).flac"]
    r = api.post("/api/tracks",
                 json={"file_path": str(flac), "library_directory_id": music["dir_id"]})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["relative_path"] == flac.name


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_create_track_errors(api, lib_ctx, music, tmp_path, corpus) -> None:
    """Bad paths are 400, an unknown folder 404, a non-audio file 422; nothing is inserted."""
    outside = Path(shutil.copyfile(corpus / TAGGED / "09 - Maxstack - Aberrations.mp3",
                                   tmp_path / "outside.mp3"))
    junk = Path(shutil.copyfile(corpus / TAGGED / "odd" / "not_audio.ogg",
                                music["root"] / "not_audio.ogg"))
    (music["root"] / "notes.txt").write_text("hello")
    inside = music["files"]["09 - Maxstack - Aberrations.mp3"]
    cases = [
        ({"file_path": str(music["root"] / "nope.mp3")}, 400, "Invalid file path"),
        ({"file_path": "relative/a.mp3"}, 400, "Invalid file path"),
        ({"file_path": str(music["root"])}, 400, "Invalid file path"),
        ({"file_path": str(outside)}, 400, None),
        ({"file_path": str(music["root"] / "notes.txt")}, 400, None),
        ({"file_path": str(inside), "library_directory_id": str(uuid.uuid4())}, 404,
         "Library directory not found"),
        ({"file_path": str(inside), "library_directory_id": 5}, 400, "Validation failed"),
        ({"file_path": str(inside), "channels": 9}, 400, "Validation failed"),
        ({}, 400, "Validation failed"),
        ({"file_path": str(junk)}, 422, None),
    ]
    for body, status, error in cases:
        r = api.post("/api/tracks", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["success"] is False
        if error:
            assert r.json()["error"] == error
    assert get(api, "/api/tracks").json()["pagination"]["total"] == 0


def test_update_track_is_database_only(api, lib_ctx, music) -> None:
    """PUT changes validated fields in the database only and sends track:updated {changes}."""
    path = music["files"]["12 - Maxstack - By-Product.ogg"]
    before = path.read_bytes()
    tid = api.post("/api/tracks", json={"file_path": str(path)},
                     ).json()["data"]["id"]
    events = events_of(lib_ctx)
    change = {"title": "By-Product (Edit)", "rating": 5, "color_tag": "#00FF88",
              "energy_level": 7, "bpm": 127.5, "musical_key": 7, "mode": 1, "year": 2012,
              "comment": None}
    r = api.put(f"/api/tracks/{tid}", json=change)
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Track updated successfully"
    track = r.json()["data"]
    assert {k: track[k] for k in change} == change
    assert path.read_bytes() == before
    named = change | {"camelot": "9B", "open_key": "2d"}  # G major, as the track says
    assert events == [("track:updated", {"trackId": tid, "changes": named})]
    r = api.put(f"/api/tracks/{tid}", json={"mode": 0})  # the key stays: G minor
    assert events[-1][1]["changes"] == {"mode": 0, "camelot": "6A", "open_key": "11m"}
    r = api.put(f"/api/tracks/{tid}", json={"color_tag": "red"})
    assert r.json()["data"]["color_tag"] == "red"


BAD_UPDATES: list[dict[str, Any]] = [
    {}, {"unknown": 1}, {"year": 1899}, {"year": 2101}, {"rating": 6}, {"rating": -1},
    {"rating": None}, {"color_tag": "#12345"}, {"color_tag": "blue!"}, {"energy_level": 11},
    {"bpm": 0}, {"bpm": -5}, {"musical_key": 12}, {"mode": 2}, {"track_number": -1},
    {"title": "x" * 1001},
]


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_update_track_validation(api, lib_ctx, tmp_path) -> None:
    """Invalid PUT bodies are 400 with details and change nothing."""
    (tid,) = add_tracks(lib_ctx, [{"file_path": str(tmp_path / "a.mp3"), "title": "A"}])
    for body in BAD_UPDATES:
        r = api.put(f"/api/tracks/{tid}", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"] == "Validation failed"
    assert get(api, f"/api/tracks/{tid}").json()["data"]["title"] == "A"
    assert get(api, f"/api/tracks/{tid}").json()["data"]["rating"] == 0


def test_delete_track_keeps_the_file(api, lib_ctx, music) -> None:
    """DELETE removes the row, its hot cues and counts, sends track:deleted; the file stays."""
    path = music["files"]["09 - Maxstack - Aberrations.mp3"]
    tid = api.post("/api/tracks", json={"file_path": str(path)},
                     ).json()["data"]["id"]
    assert api.post(f"/api/tracks/{tid}/hot-cues/0", json={"position": 1.0}).status_code == 200
    events = events_of(lib_ctx)
    r = api.delete(f"/api/tracks/{tid}")
    assert r.json() == {"success": True, "message": "Track deleted from database"}
    assert path.is_file()
    assert events[-1][0] == "track:deleted" and events[-1][1]["trackId"] == tid
    assert get(api, f"/api/tracks/{tid}").status_code == 404
    assert api.delete(f"/api/tracks/{tid}").status_code == 404
    with lib_ctx.db() as s:
        assert s.query(models.HotCue).count() == 0
        assert s.get(models.LibraryDirectory, music["dir_id"]).total_tracks == 0


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_verify_detects_missing_and_changed_files(api, music, corpus) -> None:
    """verify re-hashes the audio: intact file passes, replaced audio and missing file do not."""
    path = music["files"]["01 - Muldjord - Armygeddon.mp3"]
    tid = api.post("/api/tracks", json={"file_path": str(path)},
                     ).json()["data"]["id"]
    v = get(api, f"/api/tracks/{tid}/verify").json()["data"]
    assert v["exists"] and v["size_matches"] and v["hash_matches"] and v["valid"]
    assert v["mtime_matches"] is True and v["file_path"] == str(path)

    shutil.copyfile(corpus / TAGGED / "09 - Maxstack - Aberrations.mp3", path)
    v = get(api, f"/api/tracks/{tid}/verify").json()["data"]
    assert v["exists"] and v["size_matches"] is False and v["hash_matches"] is False
    assert v["valid"] is False and v["actual_hash"] != v["expected_hash"]

    path.unlink()
    v = get(api, f"/api/tracks/{tid}/verify").json()["data"]
    assert v["exists"] is False and v["valid"] is False
    assert get(api, f"/api/tracks/{uuid.uuid4()}/verify").status_code == 404


def test_mark_missing_and_found(api, lib_ctx, music) -> None:
    """mark-missing/mark-found flip the flag and timestamp, update counts and send events."""
    (tid,) = add_tracks(lib_ctx, [{"file_path": str(music["root"] / "x.mp3"),
                                   "library_directory_id": music["dir_id"]}])
    events = events_of(lib_ctx)
    r = api.post(f"/api/tracks/{tid}/mark-missing")
    assert r.status_code == 200 and r.json()["message"] == "Track marked as missing"
    assert r.json()["data"]["is_missing"] == 1 and r.json()["data"]["missing_since"]
    with lib_ctx.db() as s:
        assert s.get(models.LibraryDirectory, music["dir_id"]).total_missing == 1
    r = api.post(f"/api/tracks/{tid}/mark-found")
    assert r.json()["message"] == "Track marked as found"
    assert r.json()["data"]["is_missing"] == 0 and r.json()["data"]["missing_since"] is None
    assert [e[0] for e in events] == ["track:missing", "track:restored"]
    for action in ("mark-missing", "mark-found"):
        r = api.post(f"/api/tracks/{uuid.uuid4()}/{action}")
        assert r.status_code == 404 and r.json()["error"] == "Track not found"


def test_stats(api, lib_ctx, tmp_path) -> None:
    """GET /stats counts totals, missing, analyzed, duplicates, bytes and mean duration."""
    assert get(api, "/api/tracks/stats").json()["data"] == {
        "total": 0, "missing": 0, "analyzed": 0, "duplicates": 0, "total_size": 0,
        "avg_duration": 0.0}
    add_tracks(lib_ctx, [
        {"file_path": str(tmp_path / "a"), "file_size": 100, "duration_seconds": 10.0,
         "date_analyzed": datetime(2024, 1, 1)},
        {"file_path": str(tmp_path / "b"), "file_size": 300, "duration_seconds": 20.0,
         "is_missing": True},
        {"file_path": str(tmp_path / "c")},
    ])
    assert get(api, "/api/tracks/stats").json()["data"] == {
        "total": 3, "missing": 1, "analyzed": 1, "duplicates": 0, "total_size": 400,
        "avg_duration": 15.0}


# --- analysis reads ----------------------------------------------------------------------


def test_waveforms_by_file_hash(api, lib_ctx, tmp_path) -> None:
    """Waveforms are read by the track's hash; 404 'Waveform not found' until analysis runs."""
    (tid,) = add_tracks(lib_ctx, [{"file_path": str(tmp_path / "a"), "file_hash": "h1"}])
    r = get(api, f"/api/tracks/{tid}/waveform")
    assert r.status_code == 404 and r.json()["error"] == "Waveform not found"
    bands = {"low_freq_amplitude": [1, 2], "low_freq_intensity": [3, 4],
             "mid_freq_amplitude": [5], "mid_freq_intensity": [6],
             "high_freq_amplitude": [7], "high_freq_intensity": [8]}
    with transaction(lib_ctx.db) as s:
        for zoom in (0, 1):
            s.add(models.Waveform(file_hash="h1", zoom_level=zoom, sample_rate=44100,
                                  samples_per_point=100 * (zoom + 1), num_points=2,
                                  data=json.dumps(bands).encode()))
        s.add(models.Waveform(file_hash="h1", zoom_level=0, is_stems=True, num_points=1,
                              data=json.dumps({"vocals_amplitude": [9]}).encode()))
    one = get(api, f"/api/tracks/{tid}/waveform", zoom=1).json()["data"]
    assert one == {"file_hash": "h1", "zoom_level": 1, "sample_rate": 44100,
                   "samples_per_pixel": 200, "num_pixels": 2, **bands}
    every = get(api, f"/api/tracks/{tid}/waveform").json()["data"]
    assert every["file_hash"] == "h1"
    assert [w["zoom_level"] for w in every["waveforms"]] == [0, 1]
    assert get(api, f"/api/tracks/{tid}/waveform", zoom=2).status_code == 404
    assert get(api, f"/api/tracks/{tid}/waveform", zoom=3).status_code == 400
    stems = get(api, f"/api/tracks/{tid}/stems/waveform").json()["data"]
    assert [w["vocals_amplitude"] for w in stems["waveforms"]] == [[9]]
    assert get(api, f"/api/tracks/{tid}/stems/waveform", zoom=1).status_code == 404
    assert get(api, f"/api/tracks/{uuid.uuid4()}/waveform").status_code == 404


def test_beats_and_downbeats(api, lib_ctx, tmp_path) -> None:
    """beats/downbeats come from the analysis blobs; 404 until they exist."""
    beats = [0.04, 0.52, 1.0]
    tid, bare = add_tracks(lib_ctx, [
        {"file_path": str(tmp_path / "a"), "beats_data": json.dumps(beats).encode(),
         "downbeats_data": json.dumps([0.04]).encode()},
        {"file_path": str(tmp_path / "b")}])
    assert get(api, f"/api/tracks/{tid}/beats").json()["data"] == {
        "track_id": tid, "beats": beats, "count": 3}
    assert get(api, f"/api/tracks/{tid}/downbeats").json()["data"] == {
        "track_id": tid, "downbeats": [0.04], "count": 1}
    r = get(api, f"/api/tracks/{bare}/beats")
    assert r.status_code == 404 and r.json()["error"] == "Beats data not found"
    assert get(api, f"/api/tracks/{bare}/downbeats").status_code == 404
    assert get(api, f"/api/tracks/{uuid.uuid4()}/beats").json()["error"] == (
        "Track not found")


def test_first_beat_offset(api, lib_ctx, tmp_path) -> None:
    """first-beat-offset stores the value, notifies frontends and the engine hook; validates."""
    (tid,) = add_tracks(lib_ctx, [{"file_path": str(tmp_path / "a")}])
    events = events_of(lib_ctx)
    r = api.post(f"/api/tracks/{tid}/first-beat-offset", json={"first_beat_offset": 0.12})
    assert r.status_code == 200 and r.json()["message"] == "First beat offset updated"
    assert r.json()["data"]["first_beat_offset"] == 0.12
    assert events == [
        ("track:updated", {"trackId": tid, "changes": {"first_beat_offset": 0.12}}),
        ("engine:first_beat_offset", {"trackId": tid, "firstBeatOffset": 0.12})]
    for body in ({"first_beat_offset": -0.1}, {}, {"first_beat_offset": "soon"}):
        r = api.post(f"/api/tracks/{tid}/first-beat-offset", json=body)
        assert r.status_code == 400
    r = api.post(f"/api/tracks/{uuid.uuid4()}/first-beat-offset",
                   json={"first_beat_offset": 1})
    assert r.status_code == 404


def test_delete_closes_playlist_gaps_and_dissolves_duplicate_group(api, lib_ctx) -> None:
    """DELETE /api/tracks/:id keeps playlist positions contiguous and dissolves a 2-copy group."""
    a, b, c = add_tracks(lib_ctx, [{"file_path": f"/x/{n}.mp3", "file_hash": h, "title": n}
                                   for n, h in (("a", "h1"), ("b", "h1"), ("c", "h2"))])
    with transaction(lib_ctx.db) as s:
        group = models.DuplicateGroup(file_hash="h1", canonical_track_id=a, total_duplicates=2)
        s.add(group)
        s.flush()
        for tid in (a, b):
            s.get(models.Track, tid).duplicate_group_id = group.id
        pl = models.Playlist(name="set")
        s.add(pl)
        s.flush()
        for pos, tid in enumerate((a, b, c)):
            s.add(models.PlaylistTrack(playlist_id=pl.id, track_id=tid, position=pos))
        pl_id, group_id = pl.id, group.id
    r = api.delete(f"/api/tracks/{b}")
    assert r.status_code == 200 and r.json()["success"] is True
    with lib_ctx.db() as s:
        rows = s.query(models.PlaylistTrack).filter_by(playlist_id=pl_id).order_by(
            models.PlaylistTrack.position).all()
        assert [(p.track_id, p.position) for p in rows] == [(a, 0), (c, 1)]
        assert s.get(models.DuplicateGroup, group_id) is None
        assert s.get(models.Track, a).duplicate_group_id is None


def test_list_rows_equal_the_single_track_object(api, lib_ctx) -> None:
    """A track in GET /api/tracks is the same object as GET /api/tracks/:id (minus hotCues)."""
    (tid,) = add_tracks(lib_ctx, [{
        "file_path": "/x/full.flac", "file_hash": "h", "title": "T", "artist": "A",
        "is_missing": True, "has_artwork": True, "bpm": 128.5, "musical_key": 9, "mode": 0,
        "missing_since": models.utcnow(), "last_played": models.utcnow(),
        "beats_data": b"[0.5, 1.0]", "rating": 4}])
    listed = [t for t in api.get("/api/tracks", params={"limit": 1000}).json()["data"]
              if t["id"] == tid]
    single = api.get(f"/api/tracks/{tid}").json()["data"]
    single.pop("hotCues")
    assert listed == [single]
    assert single["is_missing"] == 1 and single["has_artwork"] == 1
    assert single["missing_since"].endswith("Z") and "beats_data" not in single
