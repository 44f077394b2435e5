"""M3U / M3U8 reader and writer on real files: encodings, line endings, path forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from taperoom.errors import Unprocessable
from taperoom.playlists.exchange import ExchangeTrack, path_to_url
from taperoom.playlists.m3u import M3UEntry, read_m3u, read_m3u_file, write_m3u

NAMES = ["Björk - Jóga.mp3", "日本語のトラック.flac", "Ça va 100% #1.wav", "plain.mp3"]


def make_music(root: Path) -> list[Path]:
    """Real (tiny) files with awkward names in two folders under `root`."""
    files = []
    for index, name in enumerate(NAMES):
        folder = root / "music" / ("Ünïcode Äl bum" if index % 2 else "flat")
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / name
        file.write_bytes(b"\0" * 16)
        files.append(file)
    return files


def tracks_of(files: list[Path]) -> list[ExchangeTrack]:
    return [ExchangeTrack(path=str(file), artist=f"Artist {i}" if i != 2 else "",
                          title=f"Title {i}" if i != 3 else "", duration=60.4 + i)
            for i, file in enumerate(files)]


def test_writes_extended_m3u_with_absolute_paths() -> None:
    tracks = [ExchangeTrack(path="/music/a b.mp3", artist="Åsa", title="Lång\nlåt",
                            duration=201.6),
              ExchangeTrack(path="/music/x.flac", title="No artist", duration=None),
              ExchangeTrack(path="/music/only-file.wav", artist="", title="")]
    data = write_m3u(tracks, title="Friday set")
    assert data.decode("utf-8") == (
        "#EXTM3U\n#PLAYLIST:Friday set\n"
        "#EXTINF:202,Åsa - Lång låt\n/music/a b.mp3\n"
        "#EXTINF:-1,No artist\n/music/x.flac\n"
        "#EXTINF:-1,only-file.wav\n/music/only-file.wav\n")
    plain = write_m3u(tracks, extended=False, newline="\r\n")
    assert plain == b"/music/a b.mp3\r\n/music/x.flac\r\n/music/only-file.wav\r\n"


def test_relative_paths_use_dot_dot_and_keep_other_roots_absolute() -> None:
    tracks = [ExchangeTrack(path="/srv/music/a/x.mp3"),
              ExchangeTrack(path="/srv/lists/sub/y.mp3"),
              ExchangeTrack(path="/srv/lists/#hash.mp3"),
              ExchangeTrack(path="C:\\Music\\z.mp3")]
    lines = write_m3u(tracks, relative_to="/srv/lists", extended=False).decode().split("\n")
    assert lines[:4] == ["../music/a/x.mp3", "sub/y.mp3", "./#hash.mp3", "C:/Music/z.mp3"]
    back = read_m3u("\n".join(lines).encode(), base="/srv/lists")
    assert [entry.path for entry in back.entries] == [
        "/srv/music/a/x.mp3", "/srv/lists/sub/y.mp3", "/srv/lists/#hash.mp3",
        "C:/Music/z.mp3"]


@pytest.mark.parametrize("relative", [False, True])
def test_m3u8_round_trip_of_non_ascii_names_on_disk(tmp_path: Path, relative: bool) -> None:
    files = make_music(tmp_path)
    playlist = tmp_path / "lists" / "Sommer ☀ 2024.m3u8"
    playlist.parent.mkdir()
    playlist.write_bytes(write_m3u(tracks_of(files),
                                   relative_to=playlist.parent if relative else None))
    text = playlist.read_text("utf-8")
    assert ("../music/" in text) is relative
    back = read_m3u_file(playlist)
    assert back.problems == []
    assert back.encoding == "utf-8" and back.extended
    assert [Path(entry.path) for entry in back.entries] == files
    assert all(Path(entry.path).is_file() for entry in back.entries)
    assert [(e.artist, e.title, e.duration) for e in back.entries] == [
        ("Artist 0", "Title 0", 60.0), ("Artist 1", "Title 1", 61.0),
        (None, "Title 2", 62.0), ("Artist 3", "plain.mp3", 63.0)]


def test_latin1_m3u_written_and_read_back(tmp_path: Path) -> None:
    folder = tmp_path / "Musique été"
    folder.mkdir()
    file = folder / "Café Größe.mp3"
    file.write_bytes(b"x")
    playlist = tmp_path / "vieux.m3u"
    playlist.write_bytes(write_m3u([ExchangeTrack(path=str(file), artist="Zoë",
                                                  title="Déjà vu ☀", duration=3)],
                                   relative_to=tmp_path, encoding="latin-1"))
    raw = playlist.read_bytes()
    assert "Musique été/Café Größe.mp3".encode("latin-1") in raw
    assert b"Zo\xeb - D\xe9j\xe0 vu ?" in raw  # what Latin-1 cannot hold becomes "?"
    back = read_m3u_file(playlist)
    assert back.encoding == "cp1252"
    assert back.problems == []
    assert back.entries[0].path == str(file) and Path(back.entries[0].path).is_file()
    assert back.entries[0].artist == "Zoë"


def test_a_path_the_codec_cannot_hold_or_with_a_line_break_is_refused() -> None:
    with pytest.raises(Unprocessable, match="latin-1"):
        write_m3u([ExchangeTrack(path="/music/日本.mp3")], encoding="latin-1")
    with pytest.raises(Unprocessable, match="line break"):
        write_m3u([ExchangeTrack(path="/music/two\nlines.mp3")])
    with pytest.raises(Unprocessable):
        write_m3u([ExchangeTrack(path="")])


def test_reads_crlf_bom_comments_urls_and_windows_paths(tmp_path: Path) -> None:
    (tmp_path / "sub dir").mkdir()
    nested = tmp_path / "sub dir" / "Ünïcode.mp3"
    nested.write_bytes(b"x")
    up = tmp_path.parent / f"{tmp_path.name}-up.mp3"
    lines = [
        "#EXTM3U",
        "# a comment, then a blank line",
        "",
        "#EXTINF:123.5,Ärtist - Tïtle - Extended Mix",
        "sub dir\\Ünïcode.mp3",
        "#EXTINF:-1,Only A Title",
        path_to_url(str(nested)),
        f"file://localhost{str(nested).replace(' ', '%20')}",
        "  C:\\Users\\dj\\Music\\track.mp3  ",
        "\\\\nas\\share\\set.mp3",
        f"../{up.name}",
        "#EXTART:Hint Artist",
        "./sub dir/../sub dir/Ünïcode.mp3",
    ]
    playlist = tmp_path / "mixed.m3u8"
    playlist.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n")
    back = read_m3u_file(playlist)
    assert back.problems == []
    assert back.extended
    folder = str(tmp_path)
    assert [(e.line, e.path) for e in back.entries] == [
        (5, f"{folder}/sub dir/Ünïcode.mp3"),
        (7, f"{folder}/sub dir/Ünïcode.mp3"),
        (8, f"{folder}/sub dir/Ünïcode.mp3"),
        (9, "C:/Users/dj/Music/track.mp3"),
        (10, "//nas/share/set.mp3"),
        (11, str(up)),
        (13, f"{folder}/sub dir/Ünïcode.mp3"),
    ]
    first, second = back.entries[:2]
    assert (first.duration, first.artist, first.title) == (123.5, "Ärtist",
                                                           "Tïtle - Extended Mix")
    assert (second.duration, second.artist, second.title) == (None, None, "Only A Title")
    assert back.entries[1].location == lines[6]
    assert back.entries[6].artist == "Hint Artist"
    assert Path(back.entries[0].path).is_file()


def test_relative_locations_stay_relative_without_a_folder() -> None:
    back = read_m3u(b"a\\b.mp3\n../c.mp3\n")
    assert [entry.path for entry in back.entries] == ["a/b.mp3", "../c.mp3"]
    assert not back.extended


def test_lone_cr_line_endings_and_utf16_bom() -> None:
    text = "#EXTM3U\r#EXTINF:5,A - B\r/m/é.mp3\r"
    for data in (text.encode("utf-8"), text.encode("utf-16")):
        back = read_m3u(data, name="x.m3u")
        assert back.entries == [M3UEntry(path="/m/é.mp3", location="/m/é.mp3", line=3,
                                         duration=5.0, artist="A", title="B")]
    assert read_m3u(text.encode("utf-16")).encoding == "utf-16"


def test_problems_name_their_lines() -> None:
    data = "\n".join([
        "#EXTM3U",
        "#EXTINF:abc,Bad - Duration",
        "/m/1.mp3",
        "#EXTINF:10,Stray",
        "#EXTINF:20 no comma",
        "/m/2.mp3",
        "http://radio.example/stream.mp3",
        "/m/bad\x01name.mp3",
        "file://",
        '#EXTINF:-1 tvg-name="x, y" group-title="a",Station - Name',
        "/m/3.mp3",
        "#EXTINF:30,Dangling",
    ]).encode()
    back = read_m3u(data, name="p.m3u8")
    assert [(e.line, e.path, e.title, e.duration) for e in back.entries] == [
        (3, "/m/1.mp3", "Duration", None),
        (6, "/m/2.mp3", None, 20.0),
        (11, "/m/3.mp3", "Name", None),
    ]
    assert [(p.line, p.reason) for p in back.problems] == [
        (2, "#EXTINF duration is not a number"),
        (4, "#EXTINF not followed by a location"),
        (5, "#EXTINF has no comma before the title"),
        (7, "not a local file (http: URL)"),
        (8, "control character in line"),
        (9, "file URL names no absolute path: 'file://'"),
        (12, "#EXTINF not followed by a location"),
    ]
    assert back.problems[3].text == "http://radio.example/stream.mp3"


def test_m3u8_that_is_not_utf8_is_read_and_reported() -> None:
    back = read_m3u("/m/Café.mp3\n".encode("cp1252"), name="wrong.m3u8")
    assert back.entries[0].path == "/m/Café.mp3"
    assert back.encoding == "cp1252"
    assert [p.reason for p in back.problems] == [
        "not valid UTF-8 at byte 6: read as Windows-1252"]
    # in a .m3u the legacy code page is expected, not a problem
    assert read_m3u("/m/Café.mp3\n".encode("cp1252"), name="ok.m3u").problems == []


def test_round_trip_keeps_entries() -> None:
    entries = [M3UEntry(path="/m/a.mp3", location="", line=0, duration=61.0, artist="A",
                        title="B - C"),
               M3UEntry(path="/m/b c.mp3", location="", line=0, duration=None, artist=None,
                        title="Solo")]
    back = read_m3u(write_m3u(entries))
    assert [(e.path, e.duration, e.artist, e.title) for e in back.entries] == [
        ("/m/a.mp3", 61.0, "A", "B - C"), ("/m/b c.mp3", None, None, "Solo")]
