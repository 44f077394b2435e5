"""Exchange with other DJ software: playlist exports (m3u, m3u8, rekordbox), the
rekordbox collection export read back by pyrekordbox, and ``POST /api/import`` of
M3U8 and rekordbox XML (written by pyrekordbox, by hand, and by the export itself)
into libraries of real scanned files."""

from __future__ import annotations

import json
import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyrekordbox.rbxml import RekordboxXml
from sqlalchemy import func, select

from taperoom.db import transaction
from taperoom.library import models
from taperoom.library.app import create_app
from tests.library.analysislib import scanned_library

#: Every test on SQLite and on PostgreSQL (the exports read in bulk, the imports write).
pytestmark = pytest.mark.backends()

SOURCE = "scanner/real_music_tagged"
FILES = {
    "army": "01 - Muldjord - Armygeddon.mp3",
    "bach": "05 - John Garner - Partita No. 1 in B minor: Double (BWV1002) (ünïcödé ☆ 日本語).opus",
    "journey": "08 - Maxstack - A New Journey.mp3",
    "aberrations": "09 - Maxstack - Aberrations.mp3",
}
BPM = 128.0
FIRST_BEAT = 0.5


def music_folder(corpus: Path, folder: Path) -> Path:
    """Copies of the corpus files in `folder` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES.values():
        shutil.copyfile(corpus / SOURCE / name, folder / name)
    return folder


def scan(ctx: Any, folder: Path) -> dict[str, str]:
    """Scan `folder` into `ctx`; track id by key of :data:`FILES`."""
    scanned_library(ctx, folder)
    with ctx.db() as s:
        by_path = dict(s.execute(select(models.Track.file_path, models.Track.id)).all())
    return {key: by_path[str(folder / name)] for key, name in FILES.items()}


def track_count(ctx: Any) -> int:
    with ctx.db() as s:
        return int(s.scalar(select(func.count()).select_from(models.Track)) or 0)


def cues_of(ctx: Any, track_id: str) -> list[tuple[str, int, float, str | None, bool,
                                                   float | None, str | None]]:
    """``(source, index, position, name, is_loop, loop_end, color)`` of a track's cues."""
    h = models.HotCue
    with ctx.db() as s:
        rows = s.execute(select(h.source, h.cue_index, h.position, h.name, h.is_loop,
                                h.loop_end, h.color).where(h.track_id == track_id)
                         .order_by(h.source, h.cue_index)).all()
    return [(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6]) for r in rows]


def analysed(ctx: Any, track_id: str, **values: Any) -> None:
    """Set track columns as an analysis (or the user) would."""
    with transaction(ctx.db) as s:
        track = s.get(models.Track, track_id)
        assert track is not None
        for name, value in values.items():
            setattr(track, name, value)


def grid(duration: float) -> tuple[bytes, bytes]:
    """Beats and downbeats (JSON bytes) of a steady 128 BPM grid from 0.5 s."""
    beats = []
    t = FIRST_BEAT
    while t < duration:
        beats.append(round(t, 4))
        t += 60.0 / BPM
    return json.dumps(beats).encode(), json.dumps(beats[::4]).encode()


def upload(api: httpx.Client, name: str, data: bytes, **form: str) -> httpx.Response:
    return api.post("/api/import", files={"file": (name, data, "application/octet-stream")},
                    data=form)


def bare_error(r: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = dict(r.json())
    assert body["error"] == error and body["message"], body
    assert "success" not in body
    return body


@pytest.fixture
def other_library(services: Any, lib_database_url: str, request: pytest.FixtureRequest,
                  tmp_path: Path) -> Any:
    """Make a second, empty library on the backend of the test (its own SQLite file, or
    its own PostgreSQL database): ``other_library(name)``."""

    def make(name: str) -> Any:
        pg = request.getfixturevalue("pg_server") if lib_database_url else None
        url = pg.url(pg.fresh_database()) if pg is not None else ""
        return services(database_path=tmp_path / name / "library.db", database_url=url)

    return make


@pytest.fixture
def api(lib_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lib_server.url, timeout=60) as client:
        yield client


@pytest.fixture
def library(lib_ctx: Any, corpus: Path, tmp_path: Path) -> dict[str, str]:
    """The four corpus files scanned into `lib_ctx`, the first analysed (grid, key),
    rated, coloured and played."""
    ids = scan(lib_ctx, music_folder(corpus, tmp_path / "Music ☆"))
    with lib_ctx.db() as s:
        duration = s.get(models.Track, ids["army"]).duration_seconds
    beats, downbeats = grid(duration)
    analysed(lib_ctx, ids["army"], bpm=BPM, musical_key=9, mode=0, beats_data=beats,
             downbeats_data=downbeats, first_beat_offset=FIRST_BEAT, time_signature=4,
             rating=4, color_tag="#FF007F", play_count=7)
    analysed(lib_ctx, ids["journey"], key_tag="F#m", rating=1, color_tag="aqua")
    return ids


def playlist(api: httpx.Client, name: str, track_ids: list[str],
             folder_id: str | None = None) -> str:
    r = api.post("/api/playlists", json={"name": name, "folder_id": folder_id})
    assert r.status_code == 201, r.text
    pid = str(r.json()["id"])
    if track_ids:
        r = api.post(f"/api/playlists/{pid}/tracks", json={"track_ids": track_ids})
        assert r.status_code == 200, r.text
    return pid


def folder(api: httpx.Client, name: str, parent_id: str | None = None) -> str:
    r = api.post("/api/playlists/folders", json={"name": name, "parent_id": parent_id})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def crates(api: httpx.Client, ids: dict[str, str]) -> None:
    """Gigs/2024/Peak (army, bach), Gigs/Warm-up (journey), loose Chill (aberrations,
    army), and user hot cues on army: A at 1.0 (red), B a loop 8-12 (green)."""
    gigs = folder(api, "Gigs")
    year = folder(api, "2024", gigs)
    playlist(api, "Peak", [ids["army"], ids["bach"]], year)
    playlist(api, "Warm-up", [ids["journey"]], gigs)
    playlist(api, "Chill", [ids["aberrations"], ids["army"]])
    r = api.post(f"/api/tracks/{ids['army']}/hot-cues/0",
                 json={"position": 1.0, "name": "Intro", "color": "#ff0000"})
    assert r.status_code == 200, r.text
    r = api.post(f"/api/tracks/{ids['army']}/hot-cues/1",
                 json={"position": 8.0, "isLoop": True, "loopEnd": 12.0, "color": "#00ff00"})
    assert r.status_code == 200, r.text


def test_collection_export_read_by_pyrekordbox(api: httpx.Client, lib_ctx: Any,
                                               library: dict[str, str],
                                               tmp_path: Path) -> None:
    """Every track with its BPM, Tonality, grid, hot cues (with colours), rating,
    colour and play count; every playlist in its folder tree; missing tracks left
    out."""
    crates(api, library)
    r = api.get("/api/export/rekordbox")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml")
    assert r.headers["content-disposition"] == 'attachment; filename="taperoom.xml"'
    file = tmp_path / "export.xml"
    file.write_bytes(r.content)
    xml = RekordboxXml(file)
    assert xml.product_name == "Taperoom" and xml.num_tracks == 4
    locations = {"/" + t["Location"]: t for t in xml.get_tracks()}
    with lib_ctx.db() as s:
        rows = {t.id: t for t in s.scalars(select(models.Track))}
    army = locations[rows[library["army"]].file_path]
    assert (army["Name"], army["Artist"], army["AverageBpm"], army["Tonality"],
            army["Rating"], army["PlayCount"], army["Colour"]) == (
        rows[library["army"]].title, rows[library["army"]].artist, BPM, "Am", 4, 7,
        "0xFF007F")
    assert army["TotalTime"] == round(rows[library["army"]].duration_seconds)
    assert army["Size"] == rows[library["army"]].file_size
    assert army["Kind"] == "MP3 File"
    assert [(t.Inizio, t.Bpm, t.Metro, t.Battito) for t in army.tempos] == [
        (FIRST_BEAT, BPM, "4/4", 1)]
    assert [(m.Name, m.Type, m.Start, m.End, m.Num) for m in army.marks] == [
        ("Intro", "cue", 1.0, None, 0), ("", "loop", 8.0, 12.0, 1)]
    assert [tuple(m._element.get(c) for c in ("Red", "Green", "Blue")) for m in army.marks] \
        == [("255", "0", "0"), ("0", "255", "0")]
    journey = locations[rows[library["journey"]].file_path]
    assert (journey["Tonality"], journey["Rating"], journey["Colour"]) == (
        "F#m", 1, "0x25FDE9")
    assert journey.tempos == [] and journey.marks == []
    bach = locations[rows[library["bach"]].file_path]
    assert "ünïcödé ☆ 日本語" in bach["Location"]
    # the playlist tree, entries by TrackID
    number = {path: t["TrackID"] for path, t in locations.items()}
    root = xml.get_playlist()
    assert [n.name for n in root.get_playlists()] == ["Gigs", "Chill"]
    peak = xml.get_playlist("Gigs", "2024", "Peak")
    assert peak.get_tracks() == [number[rows[library[k]].file_path] for k in ("army", "bach")]
    assert xml.get_playlist("Gigs", "Warm-up").get_tracks() == [
        number[rows[library["journey"]].file_path]]
    assert xml.get_playlist("Chill").get_tracks() == [
        number[rows[library[k]].file_path] for k in ("aberrations", "army")]
    # a missing track leaves the collection and its playlists
    analysed(lib_ctx, library["aberrations"], is_missing=True)
    file.write_bytes(api.get("/api/export/rekordbox").content)
    xml = RekordboxXml(file)
    assert xml.num_tracks == 3
    assert len(xml.get_playlist("Chill").get_tracks()) == 1


def test_playlist_exports(api: httpx.Client, lib_ctx: Any, library: dict[str, str],
                          tmp_path: Path) -> None:
    """m3u8: UTF-8, absolute paths, the content type and file name; rekordbox: the
    playlist and its tracks only; m3u stays the contract's; 400 and 404."""
    pid = playlist(api, "Nuit ☆", [library["bach"], library["army"], library["journey"]])
    analysed(lib_ctx, library["journey"], is_missing=True)
    with lib_ctx.db() as s:
        rows = {t.id: t for t in s.scalars(select(models.Track))}
    r = api.get(f"/api/playlists/{pid}/export", params={"format": "m3u8"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"Nuit _.m3u8\"; filename*=UTF-8''Nuit%20%E2%98%86.m3u8")
    lines = r.content.decode("utf-8").split("\n")
    bach, army = rows[library["bach"]], rows[library["army"]]
    assert lines == [
        "#EXTM3U", "#PLAYLIST:Nuit ☆",
        f"#EXTINF:{round(bach.duration_seconds)},{bach.artist} - {bach.title}", bach.file_path,
        f"#EXTINF:{round(army.duration_seconds)},{army.artist} - {army.title}", army.file_path,
        ""]
    r = api.get(f"/api/playlists/{pid}/export", params={"format": "rekordbox"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert r.headers["content-disposition"].startswith('attachment; filename="Nuit _.xml"')
    file = tmp_path / "one.xml"
    file.write_bytes(r.content)
    xml = RekordboxXml(file)
    assert xml.num_tracks == 2
    assert ["/" + t["Location"] for t in xml.get_tracks()] == [bach.file_path, army.file_path]
    assert xml.get_playlist("Nuit ☆").get_tracks() == [1, 2]
    r = api.get(f"/api/playlists/{pid}/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-mpegurl"
    assert r.text.startswith("#EXTM3U\n# Playlist: Nuit ☆\n")
    bare_error(api.get(f"/api/playlists/{pid}/export", params={"format": "json"}), 400,
               "Invalid format")
    ghost = "00000000-0000-4000-8000-000000000000"
    for fmt in ("m3u", "m3u8", "rekordbox"):
        bare_error(api.get(f"/api/playlists/{ghost}/export", params={"format": fmt}), 404,
                   "Playlist not found")
    bare_error(api.get("/api/playlists/nope/export", params={"format": "m3u8"}), 400,
               "Validation failed")


def test_round_trip_into_a_fresh_library(api: httpx.Client, lib_ctx: Any,
                                         library: dict[str, str], other_library: Any,
                                         live_server: Any, tmp_path: Path) -> None:
    """The collection export imported into another library of the same files
    recreates the folders, playlists, cues and grids without adding a track; a second
    import reuses the folders and suffixes the playlist names."""
    crates(api, library)
    exported = api.get("/api/export/rekordbox").content
    other = other_library("other")
    other_ids = scan(other, tmp_path / "Music ☆")
    before = track_count(other)
    with httpx.Client(base_url=live_server(create_app(services=other)).url,
                      timeout=60) as fresh:
        r = upload(fresh, "taperoom.xml", exported)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["imported"] == {"playlists": 3, "folders": 2, "entries": 5, "cues": 2,
                                    "grids": 1}
        assert body["unmatched"] == [] and body["unmatched_count"] == 0
        assert body["problems"] == []
        tree = fresh.get("/api/playlists/folders").json()
        gigs = tree["folders"][0]
        assert gigs["name"] == "Gigs" and [f["name"] for f in gigs["folders"]] == ["2024"]
        assert [p["name"] for p in gigs["playlists"]] == ["Warm-up"]
        peak = gigs["folders"][0]["playlists"][0]
        assert peak["name"] == "Peak" and peak["track_count"] == 2
        assert [p["name"] for p in tree["playlists"]] == ["Chill"]
        got = fresh.get(f"/api/playlists/{peak['id']}").json()
        assert [e["track_id"] for e in got["tracks"]] == [other_ids["army"], other_ids["bach"]]
        assert cues_of(other, other_ids["army"]) == [
            ("rekordbox", 0, 1.0, "Intro", False, None, "#ff0000"),
            ("rekordbox", 1, 8.0, None, True, 12.0, "#00ff00")]
        with other.db() as s:
            army = s.get(models.Track, other_ids["army"])
            assert (army.bpm, army.first_beat_offset, army.time_signature) == (
                BPM, FIRST_BEAT, 4)
            with lib_ctx.db() as s0:
                source = s0.get(models.Track, library["army"])
                want = json.loads(source.beats_data)
            beats = json.loads(army.beats_data)
            assert len(beats) == len(want)
            assert max(abs(a - b) for a, b in zip(beats, want, strict=True)) < 0.002
            assert json.loads(army.downbeats_data)[:2] == [FIRST_BEAT, round(
                FIRST_BEAT + 4 * 60 / BPM, 3)]
            assert army.user_fields is None
        assert track_count(other) == before
        # again: the same folders, the playlists suffixed, the cues replaced not added
        body = upload(fresh, "taperoom.xml", exported).json()
        assert body["imported"]["folders"] == 0 and body["imported"]["playlists"] == 3
        assert sorted(p["name"] for p in body["created"]) == [
            "Chill (2)", "Peak (2)", "Warm-up (2)"]
        assert len(cues_of(other, other_ids["army"])) == 2
        assert fresh.get("/api/playlists/folders").json()["count"] == 2
        assert track_count(other) == before


def test_import_matches_moved_files_by_audio_and_by_name(
        api: httpx.Client, lib_ctx: Any, library: dict[str, str], other_library: Any,
        live_server: Any, tmp_path: Path, corpus: Path) -> None:
    """A library whose files are elsewhere: the entries match by audio hash (the
    exported files are still here) or, for files gone, by file name and size."""
    playlist(api, "Moved", [library["army"], library["journey"]])
    exported = api.get("/api/export/rekordbox").content
    other = other_library("moved")
    moved = scan(other, music_folder(corpus, tmp_path / "elsewhere"))
    (tmp_path / "Music ☆" / FILES["journey"]).unlink()  # gone: matched by name and size
    with httpx.Client(base_url=live_server(create_app(services=other)).url,
                      timeout=60) as fresh:
        body = upload(fresh, "export.xml", exported).json()
    assert body["imported"]["playlists"] == 1 and body["imported"]["entries"] == 2
    assert body["unmatched"] == []
    pid = body["created"][0]["id"]
    with other.db() as s:
        held = list(s.scalars(select(models.PlaylistTrack.track_id)
                              .where(models.PlaylistTrack.playlist_id == pid)
                              .order_by(models.PlaylistTrack.position)))
    assert held == [moved["army"], moved["journey"]]


def test_import_of_pyrekordbox_xml(api: httpx.Client, lib_ctx: Any, library: dict[str, str],
                                   tmp_path: Path) -> None:
    """Hot cues at their index and memory cues in the free ones, without touching the
    user's cues; a grid where the user set none, refused where he did; unmatched
    tracks reported; a taken playlist name suffixed."""
    with lib_ctx.db() as s:
        paths = {k: s.get(models.Track, t).file_path for k, t in library.items()}
    r = api.post(f"/api/tracks/{library['journey']}/hot-cues/0",
                 json={"position": 3.0, "name": "mine"})
    assert r.status_code == 200
    r = api.put(f"/api/tracks/{library['bach']}", json={"bpm": 100})
    assert r.status_code == 200, r.text
    playlist(api, "Peak", [])
    xml = RekordboxXml(name="rekordbox", version="6.8.5", company="AlphaTheta")
    journey = xml.add_track(paths["journey"], Name="A New Journey", TotalTime=120)
    journey.add_tempo(Inizio=0.2, Bpm=125.0, Metro="4/4", Battito=1)
    journey.add_tempo(Inizio=19.4, Bpm=126.0, Metro="4/4", Battito=1)
    journey.add_mark(Name="Drop", Type="cue", Start=30.0, Num=0)
    journey.add_mark(Name="Out", Type="cue", Start=50.0, Num=2)
    journey.add_mark(Name="", Type="cue", Start=30.0, Num=-1)  # the same place as A
    journey.add_mark(Name="Roll", Type="loop", Start=40.0, End=41.92, Num=-1)
    journey.add_mark(Name="Early", Type="cue", Start=10.0, Num=-1)
    bach = xml.add_track(paths["bach"], Name="Bach")
    bach.add_tempo(Inizio=0.1, Bpm=90.0, Metro="3/4", Battito=1)
    ghost = xml.add_track("/nowhere/Ghost Track.mp3", Name="Ghost", Artist="Nobody",
                          Size=1234)
    peak = xml.add_playlist("Peak")
    for track in (journey, ghost, bach):
        peak.add_track(track.TrackID)
    file = tmp_path / "pyrekordbox.xml"
    xml.save(file)

    r = upload(api, "collection.xml", file.read_bytes())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == {"playlists": 1, "folders": 0, "entries": 2, "cues": 4,
                                "grids": 1}
    assert body["created"][0]["name"] == "Peak (2)"
    assert body["unmatched"] == [{
        "name": "Nobody - Ghost", "path": "/nowhere/Ghost Track.mp3",
        "reason": "no library track matches by path, audio hash, file name and size"}]
    assert any("set by the user" in p for p in body["problems"])
    assert cues_of(lib_ctx, library["journey"]) == [
        ("rekordbox", 0, 30.0, "Drop", False, None, None),
        ("rekordbox", 1, 10.0, "Early", False, None, None),
        ("rekordbox", 2, 50.0, "Out", False, None, None),
        ("rekordbox", 3, 40.0, "Roll", True, 41.92, None),
        ("user", 0, 3.0, "mine", False, None, "#ff4444")]
    track = fresh_track(lib_ctx, library["journey"])
    assert (track.bpm, track.first_beat_offset) == (125.0, 0.2)
    beats = json.loads(track.beats_data)
    assert beats[:2] == [0.2, 0.68] and beats[39:42] == [18.92, 19.4, round(19.4 + 60 / 126, 3)]
    assert beats[-1] < track.duration_seconds <= beats[-1] + 60 / 126
    assert json.loads(track.downbeats_data)[:2] == [0.2, 2.12]
    bach_row = fresh_track(lib_ctx, library["bach"])
    assert bach_row.bpm == 100 and bach_row.first_beat_offset is None
    assert track_count(lib_ctx) == 4


def fresh_track(ctx: Any, track_id: str) -> models.Track:
    with ctx.db() as s:
        track = s.get(models.Track, track_id)
        assert track is not None
        s.expunge(track)
        return track


HAND_WRITTEN = """<?xml version="1.0" encoding="UTF-8"?>
<DJ_PLAYLISTS Version="1.0.0">
  <PRODUCT Name="rekordbox" Version="6.8.5" Company="AlphaTheta"/>
  <COLLECTION Entries="3">
    <TRACK TrackID="101" Name="Armygeddon" Artist="Muldjord" Kind="MP3 File"
           Size="{size}" TotalTime="0" AverageBpm="0.00" Rating="255"
           Location="file://localhost/D:/DJ/Music/{army}" Tonality="Am"/>
    <TRACK TrackID="102" Name="Partita" Artist="John Garner" Kind="OPUS File"
           TotalTime="{bach_time}" Location="{bach_url}">
      <POSITION_MARK Name="" Type="0" Start="1.500" Num="-1"/>
    </TRACK>
    <TRACK TrackID="103" Name="Elsewhere" Artist="" Kind="WAV File"
           Location="file://localhost/C:/Users/dj/Music/b.wav"/>
  </COLLECTION>
  <PLAYLISTS>
    <NODE Type="0" Name="ROOT" Count="1">
      <NODE Type="0" Name="Crates" Count="2">
        <NODE Type="1" Name="By id" KeyType="0" Entries="3">
          <TRACK Key="101"/><TRACK Key="103"/><TRACK Key="102"/><TRACK Key="101"/>
        </NODE>
        <NODE Type="1" Name="By location" KeyType="1" Entries="1">
          <TRACK Key="{bach_url}"/>
        </NODE>
      </NODE>
    </NODE>
  </PLAYLISTS>
</DJ_PLAYLISTS>
"""


def test_import_of_hand_written_rekordbox_file(api: httpx.Client, lib_ctx: Any,
                                               library: dict[str, str]) -> None:
    """A Windows path matched by file name and size, a path written in another case
    and Unicode form (NFD, as macOS writes it), a KeyType 1 playlist, a repeated
    entry, a memory cue, an unmatched Windows file."""
    from urllib.parse import quote

    army = fresh_track(lib_ctx, library["army"])
    bach = fresh_track(lib_ctx, library["bach"])
    odd_path = unicodedata.normalize("NFD", bach.file_path).upper()
    text = HAND_WRITTEN.format(
        size=army.file_size, army=quote(FILES["army"]),
        bach_time=round(bach.duration_seconds), bach_url="file://localhost" + quote(odd_path))
    r = upload(api, "rekordbox.XML", text.encode())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == {"playlists": 2, "folders": 1, "entries": 3, "cues": 1,
                                "grids": 0}
    assert [u["path"] for u in body["unmatched"]] == ["C:/Users/dj/Music/b.wav"]
    assert any("added once" in p for p in body["problems"])
    by_name = {p["name"]: p for p in body["created"]}
    got = api.get(f"/api/playlists/{by_name['By id']['id']}").json()
    assert [e["track_id"] for e in got["tracks"]] == [library["army"], library["bach"]]
    got = api.get(f"/api/playlists/{by_name['By location']['id']}").json()
    assert [e["track_id"] for e in got["tracks"]] == [library["bach"]]
    assert cues_of(lib_ctx, library["bach"]) == [
        ("rekordbox", 0, 1.5, None, False, None, None)]
    tree = api.get("/api/playlists/folders").json()
    assert tree["folders"][0]["name"] == "Crates"
    assert sorted(p["name"] for p in tree["folders"][0]["playlists"]) == [
        "By id", "By location"]


def test_import_m3u8_relative_and_non_ascii(api: httpx.Client, lib_ctx: Any,
                                            library: dict[str, str], tmp_path: Path) -> None:
    """Relative paths resolve against ``base`` or match by their end; non-ASCII names
    survive; URLs and unknown files are reported; the name comes from #PLAYLIST or
    the file name."""
    army = fresh_track(lib_ctx, library["army"])
    folder_name = Path(army.file_path).parent.name
    lines = ["#EXTM3U", "#PLAYLIST:Späti ☆",
             "#EXTINF:120,Muldjord - Armygeddon", f"../{folder_name}/{FILES['army']}",
             f"{FILES['bach']}",
             "http://radio.example/stream.mp3",
             "#EXTINF:10,Nobody - Nothing", "nothing/here.mp3"]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    r = upload(api, "späti.m3u8", data, base=str(Path(army.file_path).parent))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == {"playlists": 1, "folders": 0, "entries": 2, "cues": 0,
                                "grids": 0}
    assert body["created"][0]["name"] == "Späti ☆"
    assert [u["name"] for u in body["unmatched"]] == ["Nobody - Nothing"]
    assert body["unmatched"][0]["path"] == str(Path(army.file_path).parent / "nothing/here.mp3")
    assert body["unmatched"][0]["reason"].startswith("line 8: no library track matches")
    assert body["problems"] == ["line 6: not a local file (http: URL)"]
    got = api.get(f"/api/playlists/{body['created'][0]['id']}").json()
    assert [e["track_id"] for e in got["tracks"]] == [library["army"], library["bach"]]
    # no base: the relative paths match by their end; no #PLAYLIST: the file's name
    plain = "\r\n".join([f"../../{folder_name}/{FILES['bach']}", FILES["journey"],
                         f"../whatever/{FILES['army']}"]).encode("utf-8")
    body = upload(api, "Späti ☆.m3u", plain).json()
    assert body["created"][0]["name"] == "Späti ☆ (2)"
    assert [u["path"] for u in body["unmatched"]] == [f"../whatever/{FILES['army']}"]
    got = api.get(f"/api/playlists/{body['created'][0]['id']}").json()
    assert [e["track_id"] for e in got["tracks"]] == [library["bach"], library["journey"]]
    # the m3u8 export imports back into a copy
    pid = body["created"][0]["id"]
    exported = api.get(f"/api/playlists/{pid}/export", params={"format": "m3u8"}).content
    body = upload(api, "again.m3u8", exported).json()
    assert body["created"][0]["name"] == "Späti ☆ (3)"
    assert body["imported"]["entries"] == 2 and body["unmatched"] == []
    assert track_count(lib_ctx) == 4


def test_import_errors(api: httpx.Client, lib_ctx: Any) -> None:
    """400 no file, malformed XML, a DTD, not rekordbox XML, a base that is not
    absolute; 415 another kind of file; 413 too large. Nothing is created."""
    bare_error(api.post("/api/import", data={"x": "1"}), 400, "Validation failed")
    bare_error(api.post("/api/import", json={"file": "a.m3u"}), 400, "Validation failed")
    bare_error(upload(api, "a.xml", b"<DJ_PLAYLISTS><COLLECTION>"), 400, "Invalid file")
    bare_error(upload(api, "a.xml", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>'
                                    b"<DJ_PLAYLISTS/>"), 400, "Invalid file")
    bare_error(upload(api, "a.xml", b"<playlist/>"), 400, "Invalid file")
    bare_error(upload(api, "a.m3u", b"\x00\x01\x02binary"), 400, "Invalid file")
    bare_error(upload(api, "a.m3u", b"a.mp3\n", base="relative/dir"), 400,
               "Validation failed")
    bare_error(upload(api, "a.pls", b"[playlist]\n"), 415, "Unsupported file type")
    bare_error(upload(api, "noextension", b"#EXTM3U\n"), 415, "Unsupported file type")
    lib_ctx.importer.max_bytes = 1000
    bare_error(upload(api, "big.m3u", b"#" * 1001), 413, "File too large")
    bare_error(api.post("/api/import", content=b"x" * 200_000,
                        headers={"content-type": "multipart/form-data; boundary=b"}),
               413, "File too large")
    assert upload(api, "small.m3u", b"#EXTM3U\n").status_code == 200
    assert api.get("/api/playlists").json()["count"] == 1
