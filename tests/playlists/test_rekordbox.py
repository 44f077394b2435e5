"""rekordbox XML: round trips, the export read by pyrekordbox, imports of its files and of
a hand-written rekordbox file, malformed and hostile input."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pyrekordbox.rbxml import RekordboxXml

from taperoom.errors import InvalidInput
from taperoom.playlists.exchange import (
    CueKind,
    CuePoint,
    ExchangeTrack,
    FolderNode,
    PlaylistNode,
    Tempo,
)
from taperoom.playlists.rekordbox import read_rekordbox, write_rekordbox


def collection() -> tuple[list[ExchangeTrack], FolderNode]:
    """Three tracks with every field and awkward names, and a tree with a sub-folder."""
    first = ExchangeTrack(
        path="/srv/music/Björk & Co/Jóga 100% <live> \"#1\".mp3", track_id="uuid-a",
        title="Jóga <live>", artist="Björk & Co", album="Homogenic", genre="Trip-Hop",
        comment="Lead \"vocal\"", kind="MP3 File", size=7_340_032, duration=305.0,
        year=1997, bpm=125.5, date_added=date(2024, 3, 1), bit_rate=320, sample_rate=44100,
        play_count=12, rating=4, key="8A", colour="#ff007f",
        tempos=[Tempo(0.025, 125.5, "4/4", 1), Tempo(64.5, 126.0, "4/4", 3)],
        cues=[CuePoint(0.025, number=0, name="Intro", colour="#28e214"),
              CuePoint(32.1, 40.123, number=1, name="Loop", kind=CueKind.LOOP,
                       colour="#ff0000"),
              CuePoint(96.0, name="memory"),
              CuePoint(290.5, kind=CueKind.FADE_OUT)])
    second = ExchangeTrack(path="C:\\Users\\dj\\Music\\日本語 track.flac", track_id="uuid-b",
                           title="日本語", artist="", duration=61.0, bpm=174.0, key="Fm",
                           rating=1, kind="FLAC File")
    third = ExchangeTrack(path="/srv/music/plain.wav", track_id="uuid-c", kind="WAV File")
    tree = FolderNode("ROOT", [
        PlaylistNode("Warm-up", ["uuid-c", "uuid-a", "uuid-c"]),
        FolderNode("Gigs", [FolderNode("2024", [PlaylistNode("Fabric", ["uuid-b"])]),
                            PlaylistNode("Empty")]),
    ])
    return [first, second, third], tree


def test_round_trip_keeps_every_field() -> None:
    tracks, tree = collection()
    data = write_rekordbox(tracks, tree)
    assert data.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<DJ_PLAYLISTS Version="1.0.0">\n')
    back = read_rekordbox(data)
    assert back.problems == []
    assert back.product == "Taperoom 0.1.0"
    numbered = {"uuid-a": "1", "uuid-b": "2", "uuid-c": "3"}
    expected = [ExchangeTrack(**{**{name: getattr(t, name) for name in t.__slots__},
                                 "track_id": numbered[t.track_id or ""],
                                 "path": t.path.replace("\\", "/")})
                for t in tracks]
    assert back.tracks == expected
    assert back.playlists == FolderNode("ROOT", [
        PlaylistNode("Warm-up", ["3", "1", "3"]),
        FolderNode("Gigs", [FolderNode("2024", [PlaylistNode("Fabric", ["2"])]),
                            PlaylistNode("Empty")]),
    ])
    assert [path for path, _ in back.playlists.playlists()] == [(), ("Gigs", "2024"),
                                                              ("Gigs",)]


def test_export_read_by_pyrekordbox(tmp_path: Path) -> None:
    tracks, tree = collection()
    file = tmp_path / "export.xml"
    file.write_bytes(write_rekordbox(tracks, tree, product="Taperoom", version="9.9",
                                     company="Tape"))
    xml = RekordboxXml(file)
    assert (xml.product_name, xml.product_version, xml.product_company) == (
        "Taperoom", "9.9", "Tape")
    assert xml.frmt_version == "1.0.0"
    assert xml.num_tracks == 3
    one = xml.get_track(TrackID=1)
    assert {key: one[key] for key in (
        "TrackID", "Name", "Artist", "Album", "Genre", "Kind", "Size", "TotalTime", "Year",
        "AverageBpm", "DateAdded", "BitRate", "SampleRate", "Comments", "PlayCount",
        "Rating", "Tonality", "Colour")} == {
        "TrackID": 1, "Name": "Jóga <live>", "Artist": "Björk & Co", "Album": "Homogenic",
        "Genre": "Trip-Hop", "Kind": "MP3 File", "Size": 7_340_032, "TotalTime": 305,
        "Year": 1997, "AverageBpm": 125.5, "DateAdded": "2024-03-01", "BitRate": 320,
        "SampleRate": 44100.0, "Comments": "Lead \"vocal\"", "PlayCount": 12,
        "Rating": 4, "Tonality": "8A", "Colour": "0xFF007F"}
    # pyrekordbox decodes file://localhost/srv/... without the POSIX root's slash
    assert "/" + one["Location"] == tracks[0].path
    assert one._element.get("Location") == (
        "file://localhost/srv/music/Bj%C3%B6rk%20%26%20Co/"
        "J%C3%B3ga%20100%25%20%3Clive%3E%20%22%231%22.mp3")
    assert [(t.Inizio, t.Bpm, t.Metro, t.Battito) for t in one.tempos] == [
        (0.025, 125.5, "4/4", 1), (64.5, 126.0, "4/4", 3)]
    assert [(m.Name, m.Type, m.Start, m.End, m.Num) for m in one.marks] == [
        ("Intro", "cue", 0.025, None, 0), ("Loop", "loop", 32.1, 40.123, 1),
        ("memory", "cue", 96.0, None, -1), ("", "fadeout", 290.5, None, -1)]
    assert [tuple(m._element.get(c) for c in ("Red", "Green", "Blue")) for m in one.marks] == [
        ("40", "226", "20"), ("255", "0", "0"), (None, None, None), (None, None, None)]
    two = xml.get_track(TrackID=2)
    assert two["Location"] == "C:/Users/dj/Music/日本語 track.flac"
    assert (two["Name"], two["AverageBpm"], two["Rating"], two["Tonality"]) == (
        "日本語", 174.0, 1, "Fm")
    three = xml.get_track(TrackID=3)
    assert (three["Name"], three["Rating"], three["PlayCount"], three["AverageBpm"]) == (
        "", 0, 0, None)
    root = xml.get_playlist()
    assert root.name == "ROOT" and root.is_folder and root.count == 2
    warm_up = xml.get_playlist("Warm-up")
    assert warm_up.is_playlist and warm_up.key_type == "TrackID"
    assert warm_up.get_tracks() == [3, 1, 3] and warm_up.entries == 3
    gigs = xml.get_playlist("Gigs")
    assert gigs.is_folder and [n.name for n in gigs.get_playlists()] == ["2024", "Empty"]
    assert xml.get_playlist("Gigs", "2024", "Fabric").get_tracks() == [2]
    assert xml.get_playlist("Gigs", "Empty").get_tracks() == []


def test_import_of_what_pyrekordbox_writes(tmp_path: Path) -> None:
    xml = RekordboxXml(name="rekordbox", version="6.6.2", company="AlphaTheta")
    track = xml.add_track("/music/Ærø set/01 Ünder.mp3", Name="Ünder", Artist="DJ Ø",
                          Album="A", Genre="Techno", Kind="MP3 File", Size=1000,
                          TotalTime=300, Year=2020, AverageBpm="130.00",
                          DateAdded="2023-12-24", BitRate=320, SampleRate=44100,
                          Comments="ok", PlayCount=3, Tonality="Am", Colour="0x25FDE9")
    track.set("Rating", 3)
    track.add_tempo(Inizio=0.1, Bpm=130.0, Metro="4/4", Battito=1)
    track.add_mark(Name="Drop", Type="cue", Start=60.0, Num=2)
    track.add_mark(Name="Roll", Type="loop", Start=90.0, End=91.846, Num=-1)
    other = xml.add_track("C:\\Music\\b.wav")
    folder = xml.add_playlist_folder("Crates")
    playlist = folder.add_playlist("Peak")
    playlist.add_track(track.TrackID)
    playlist.add_track(other.TrackID)
    by_location = xml.add_playlist("By location", keytype="Location")
    by_location.add_track("file://localhost/C:/Music/b.wav")
    file = tmp_path / "pyrekordbox.xml"
    xml.save(file)

    back = read_rekordbox(file.read_bytes())
    assert back.problems == []
    assert back.product == "rekordbox 6.6.2"
    first, second = back.tracks
    assert first == ExchangeTrack(
        path="/music/Ærø set/01 Ünder.mp3", track_id="1", title="Ünder", artist="DJ Ø",
        album="A", genre="Techno", comment="ok", kind="MP3 File", size=1000,
        duration=300.0, year=2020, bpm=130.0, date_added=date(2023, 12, 24), bit_rate=320,
        sample_rate=44100, play_count=3, rating=3, key="Am", colour="#25fde9",
        tempos=[Tempo(0.1, 130.0, "4/4", 1)],
        cues=[CuePoint(60.0, None, 2, "Drop", CueKind.CUE),
              CuePoint(90.0, 91.846, -1, "Roll", CueKind.LOOP)])
    assert second == ExchangeTrack(path="C:/Music/b.wav", track_id="2")
    assert back.playlists == FolderNode("ROOT", [
        FolderNode("Crates", [PlaylistNode("Peak", ["1", "2"])]),
        PlaylistNode("By location", ["2"])])


HAND_WRITTEN = """<?xml version="1.0" encoding="UTF-8"?>

<DJ_PLAYLISTS Version="1.0.0">
  <PRODUCT Name="rekordbox" Version="6.8.5" Company="AlphaTheta"/>
  <COLLECTION Entries="6">
    <TRACK TrackID="253529738" Name="Demo Track 1" Artist="Loopmasters" Composer=""
           Album="" Grouping="" Genre="" Kind="Mp3-Datei " Size="6899624" TotalTime="172"
           DiscNumber="0" TrackNumber="0" Year="0" AverageBpm="128.00"
           DateAdded="2022-04-09" BitRate="320" SampleRate="44100"
           Comments="Tracks by www.loopmasters.com" PlayCount="0" Rating="204"
           Location="file://localhost/C:/Music/PioneerDJ/Demo%20Tracks/Demo%20Track%201.mp3"
           Remixer="" Tonality="Fm" Label="Loopmasters" Mix="" Colour="0xFF0000"
           MyFutureAttribute="x">
      <TEMPO Inizio="48.026" Bpm="120.00" Metro="4/4" Battito="1"/>
      <TEMPO Inizio="0.025" Bpm="128.00" Metro="4/4" Battito="1"/>
      <TEMPO Inizio="oops" Bpm="128.00"/>
      <POSITION_MARK Name="" Type="0" Start="0.025" Num="-1"/>
      <POSITION_MARK Name="A" Type="0" Start="0.025" Num="0" Red="40" Green="226" Blue="20"/>
      <POSITION_MARK Name="B loop" Type="4" Start="16.025" End="23.525" Num="1"
                     Red="255" Green="140" Blue="0"/>
      <POSITION_MARK Name="odd" Type="9" Start="30" Num="3"/>
      <POSITION_MARK Name="far" Type="0" Start="31" Num="12"/>
      <POSITION_MARK Name="no start" Type="0" Num="4"/>
      <SOME_NEW_ELEMENT Value="ignored"/>
    </TRACK>
    <TRACK TrackID="2" Location="file://localhost/Users/dj/Music/caf%C3%A9%20%E2%98%95.aiff"
           AverageBpm="fast" Rating="100" DateAdded="yesterday" Colour="red"/>
    <TRACK TrackID="3" Name="no location"/>
    <TRACK TrackID="4" Name="stream" Location="https://www.example.com/track/4"/>
    <TRACK TrackID="2" Name="same id again" Location="file://localhost/Users/dj/x.mp3"/>
    <TRACK Name="no id" Location="file:///Users/dj/Music/noid.mp3"/>
  </COLLECTION>
  <PLAYLISTS>
    <NODE Type="0" Name="ROOT" Count="3">
      <NODE Name="Favourites" Type="1" KeyType="0" Entries="3">
        <TRACK Key="2"/>
        <TRACK Key="253529738"/>
        <TRACK Key="999"/>
      </NODE>
      <NODE Name="Folder &amp; more" Type="0" Count="2">
        <NODE Name="By path" Type="1" KeyType="1" Entries="2">
          <TRACK Key="file://localhost/Users/dj/Music/noid.mp3"/>
          <TRACK Key="file://localhost/Users/dj/Music/absent.mp3"/>
        </NODE>
        <NODE Name="Weird" Type="7"/>
      </NODE>
      <UNKNOWN/>
    </NODE>
  </PLAYLISTS>
</DJ_PLAYLISTS>
"""


def test_import_of_a_hand_written_rekordbox_file() -> None:
    back = read_rekordbox(HAND_WRITTEN.encode("utf-8"))
    assert back.product == "rekordbox 6.8.5"
    demo, cafe, noid = back.tracks
    assert demo.path == "C:/Music/PioneerDJ/Demo Tracks/Demo Track 1.mp3"
    assert (demo.track_id, demo.title, demo.artist, demo.kind, demo.size, demo.duration,
            demo.year, demo.bpm, demo.date_added, demo.bit_rate, demo.sample_rate,
            demo.play_count, demo.rating, demo.key, demo.colour, demo.album) == (
        "253529738", "Demo Track 1", "Loopmasters", "Mp3-Datei", 6899624, 172.0, None,
        128.0, date(2022, 4, 9), 320, 44100, 0, 4, "Fm", "#ff0000", "")
    assert demo.tempos == [Tempo(0.025, 128.0), Tempo(48.026, 120.0)]
    assert demo.cues == [
        CuePoint(0.025),
        CuePoint(0.025, number=0, name="A", colour="#28e214"),
        CuePoint(16.025, 23.525, 1, "B loop", CueKind.LOOP, "#ff8c00"),
        CuePoint(30.0, number=3, name="odd"),
    ]
    assert [cue.is_hot for cue in demo.cues] == [False, True, True, True]
    assert cafe == ExchangeTrack(path="/Users/dj/Music/café ☕.aiff", track_id="2",
                                 rating=2)
    assert noid.path == "/Users/dj/Music/noid.mp3" and noid.track_id is None
    assert back.playlists == FolderNode("ROOT", [
        PlaylistNode("Favourites", ["2", "253529738"]),
        FolderNode("Folder & more", [PlaylistNode("By path", [])]),
    ])
    assert back.problems == [
        "track 1 (TrackID 253529738), TEMPO: Inizio 'oops' is not a number; ignored",
        "track 1 (TrackID 253529738): TEMPO without a usable Inizio and Bpm; skipped",
        "track 1 (TrackID 253529738): POSITION_MARK Type 9 is unknown; read as a cue",
        "track 1 (TrackID 253529738): POSITION_MARK Num 12 is not -1 or 0-7; skipped",
        "track 1 (TrackID 253529738): POSITION_MARK without a usable Start; skipped",
        "track 2 (TrackID 2): AverageBpm 'fast' is not a number; ignored",
        "track 2 (TrackID 2): DateAdded 'yesterday' is not yyyy-mm-dd; ignored",
        "track 2 (TrackID 2): Colour 'red' is not 0xRRGGBB; ignored",
        "track 3 (TrackID 3): no Location; skipped",
        "track 4 (TrackID 4): Location 'https://www.example.com/track/4' is not a local "
        "file; skipped",
        "track 5: TrackID 2 repeats an earlier track; skipped",
        "playlist Favourites: entry '999' is not in the collection; skipped",
        "playlist Folder & more/By path: entry "
        "'file://localhost/Users/dj/Music/noid.mp3' is not in the collection; skipped",
        "playlist Folder & more/By path: entry "
        "'file://localhost/Users/dj/Music/absent.mp3' is not in the collection; skipped",
        "playlist Folder & more/Weird: NODE Type '7' is neither folder (0) nor playlist "
        "(1); skipped",
    ]


@pytest.mark.parametrize("data, message", [
    (b"", "malformed XML"),
    (b"<DJ_PLAYLISTS><COLLECTION>", "malformed XML"),
    (b"\xff\xfe not xml", "malformed XML"),
    (b"<?xml version='1.0'?><PLAYLIST/>", "root element is <PLAYLIST>"),
    (b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<DJ_PLAYLISTS>&lol2;</DJ_PLAYLISTS>""", "DTDs and entity declarations are refused"),
    (b"""<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<DJ_PLAYLISTS><PRODUCT Name="&x;"/></DJ_PLAYLISTS>""", "refused"),
    (b"""<?xml version="1.0"?><!DOCTYPE DJ_PLAYLISTS SYSTEM "http://127.0.0.1:9/x.dtd">
<DJ_PLAYLISTS/>""", "refused"),
])
def test_malformed_or_hostile_xml_is_invalid_input(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        read_rekordbox(data)
    assert caught.value.status == 400


def test_a_file_without_collection_or_playlists_reads_empty() -> None:
    back = read_rekordbox(b"<DJ_PLAYLISTS Version='1.0.0'/>")
    assert (back.tracks, back.playlists, back.problems, back.product) == (
        [], FolderNode("ROOT"), [], "")


def test_writer_drops_what_xml_cannot_hold_and_refuses_bad_references() -> None:
    track = ExchangeTrack(path="/m/a.mp3", track_id="x", title="bell\x07 \ud800tab\there",
                          rating=9, play_count=-2, bpm=float("nan"), colour="nope",
                          cues=[CuePoint(1.0, colour="#GGGGGG")])
    back = read_rekordbox(write_rekordbox([track], [PlaylistNode("p", ["x"])]))
    assert back.problems == []
    (read,) = back.tracks
    assert (read.title, read.rating, read.play_count, read.bpm, read.colour, read.kind) == (
        "bell tab\there", 5, 0, None, None, "MP3 File")
    assert read.cues == [CuePoint(1.0)]
    with pytest.raises(ValueError, match="not in the collection"):
        write_rekordbox([track], [PlaylistNode("p", ["y"])])
    with pytest.raises(ValueError, match="twice"):
        write_rekordbox([track, track])
    with pytest.raises(ValueError, match="absolute"):
        write_rekordbox([ExchangeTrack(path="relative/a.mp3")])


@pytest.mark.parametrize("url, path", [
    ("file://localhost/Users/dj/a%20b.mp3", "/Users/dj/a b.mp3"),
    ("file:///Users/dj/a.mp3", "/Users/dj/a.mp3"),
    ("file:/Users/dj/a.mp3", "/Users/dj/a.mp3"),
    ("FILE://LOCALHOST/c:/Music/a.mp3", "C:/Music/a.mp3"),
    ("file:///C|/Music/a.mp3", "C:/Music/a.mp3"),
    ("file://nas/share/a.mp3", "//nas/share/a.mp3"),
    ("file://localhost//music/a.mp3", "/music/a.mp3"),
    ("file://localhost/music/Track%20#1?.mp3", "/music/Track #1?.mp3"),
    ("file://localhost/music/%FF%FE.mp3", "/music/\udcff\udcfe.mp3"),
])
def test_locations_decode_to_paths(url: str, path: str) -> None:
    """Location forms of rekordbox, RFC 8089, old Windows writers and pyrekordbox; the
    path written back decodes to the same path."""
    document = f'<DJ_PLAYLISTS><COLLECTION><TRACK TrackID="1" Location="{url}"/>' \
               '</COLLECTION></DJ_PLAYLISTS>'
    (track,) = read_rekordbox(document.encode()).tracks
    assert track.path == path
    (again,) = read_rekordbox(write_rekordbox([track])).tracks
    assert again.path == path
