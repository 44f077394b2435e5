"""ID3v2.4 tags, cover art and cue sheets of recordings, on real MP3 and image files."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import av
import numpy as np
import pytest
from mutagen.id3 import ID3, Encoding
from mutagen.mp3 import MP3
from PIL import Image

from taperoom.errors import MediaError
from taperoom.recorder.tagging import (
    cue_timestamp,
    prepare_artwork,
    recording_title,
    split_stream_title,
    tag_recording,
    track_number,
    write_cue_sheet,
)

DENVER = ZoneInfo("America/Denver")
STATION = {"station_name": "KUVO Jazz ☆", "artist": "KUVO", "album": "Jazz Overnight",
           "album_artist": "KUVO 89.3"}


def make_mp3(path: Path, *, seconds: float = 2.0, id3: bool = True, rate: int = 44100) -> Path:
    """Encode a 440 Hz stereo sine to MP3 with PyAV/libmp3lame (128 kbit/s).

    With ``id3=False`` the muxer writes no ID3v2 tag (the file starts with MPEG frames).
    """
    options = {} if id3 else {"id3v2_version": "0"}
    n = int(seconds * rate)
    t = np.arange(n) / rate
    sig = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    data = np.stack([sig, sig])
    with av.open(str(path), "w", format="mp3", options=options) as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="stereo")
        stream.bit_rate = 128_000
        for i in range(0, n, 4096):
            chunk = np.ascontiguousarray(data[:, i:i + 4096])
            frame = av.AudioFrame.from_ndarray(chunk, format="s16p", layout="stereo")
            frame.sample_rate = rate
            frame.pts = i
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def id3_end(data: bytes) -> int:
    """Offset of the first byte after the leading ID3v2 tag (0 if none), from its header."""
    if data[:3] != b"ID3":
        return 0
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    return 10 + size + (10 if data[5] & 0x10 else 0)


def image_file(path: Path, fmt: str, size: tuple[int, int], *, mode: str = "RGB",
               noise: bool = False) -> Path:
    """Write a test image (a gradient, or random noise that compresses badly)."""
    w, h = size
    if noise:
        rng = np.random.default_rng(7)
        arr = rng.integers(0, 256, (h, w, len(mode)), dtype=np.uint8)
    else:
        x = np.linspace(0, 255, w, dtype=np.uint8)
        arr = np.repeat(np.repeat(x[None, :, None], h, axis=0), len(mode), axis=2)
    img = Image.fromarray(arr if len(mode) > 1 else arr[:, :, 0], mode)
    img.save(path, fmt)
    return path


@pytest.fixture
def mp3(tmp_path: Path) -> Path:
    """A freshly encoded 2 s MP3 (with the muxer's own small ID3 tag)."""
    return make_mp3(tmp_path / "2025-10-03_KUVO Jazz.mp3")


# --------------------------------------------------------------------------- pure helpers


def test_title_uses_local_date_of_start() -> None:
    """The title carries the local date: 23:30 in Denver is already the next day in UTC."""
    start = datetime(2025, 10, 3, 23, 30, tzinfo=DENVER)
    assert start.astimezone(ZoneInfo("UTC")).date() == date(2025, 10, 4)
    assert recording_title(start, "KUVO Jazz") == "2025-10-03 KUVO Jazz"


@pytest.mark.parametrize(("day", "number"), [
    (date(2020, 1, 1), 1), (date(2020, 1, 2), 2), (date(2025, 10, 3), 2103),
    (date(2019, 6, 1), 1), (datetime(2025, 10, 3, 22, 0, tzinfo=DENVER), 2103)])
def test_track_number_counts_days_since_2020(day: date, number: int) -> None:
    """Track number = days since 2020-01-01 + 1, never below 1 (contract TRCK)."""
    assert track_number(day) == number


def test_cue_timestamp_uses_75_frames_per_second() -> None:
    """INDEX times are mm:ss:ff with 75 frames per second; minutes go past 99."""
    assert cue_timestamp(0) == "00:00:00"
    assert cue_timestamp(125.4) == "02:05:30"
    assert cue_timestamp(59.99) == "00:59:74"
    assert cue_timestamp(6000) == "100:00:00"
    assert cue_timestamp(-3) == "00:00:00"


def test_split_stream_title() -> None:
    """ICY "Artist - Title" splits at the first " - "; other titles have no performer."""
    assert split_stream_title("Miles Davis - So What") == ("Miles Davis", "So What")
    assert split_stream_title("A - B - C") == ("A", "B - C")
    assert split_stream_title("Station ID") == (None, "Station ID")
    assert split_stream_title(" - lonely") == (None, "- lonely")


# --------------------------------------------------------------------------- tags


def test_tag_round_trip_id3v24(mp3: Path) -> None:
    """Every contract frame reads back from an ID3v2.4 tag in UTF-8, with exact values."""
    tag_recording(mp3, **STATION, started_at=datetime(2025, 10, 3, 21, 0, tzinfo=DENVER),
                  comment="gaps: none")
    tags = ID3(mp3)
    assert tags.version == (2, 4, 0)
    assert str(tags["TIT2"]) == "2025-10-03 KUVO Jazz ☆"
    assert str(tags["TPE1"]) == "KUVO"
    assert str(tags["TALB"]) == "Jazz Overnight"
    assert str(tags["TPE2"]) == "KUVO 89.3"
    assert str(tags["TRCK"]) == "2103"
    assert str(tags["TDRC"]) == "2025"
    assert tags.getall("COMM")[0].text == ["gaps: none"]
    for fid in ("TIT2", "TPE1", "TALB", "TPE2", "TRCK", "TDRC"):
        assert tags[fid].encoding == Encoding.UTF8, fid
    assert not tags.getall("APIC")
    assert MP3(mp3).info.length == pytest.approx(2.0, abs=0.1)
    assert mp3.read_bytes()[3] == 4  # major version byte of the header on disk


def test_tagging_keeps_audio_bytes(tmp_path: Path) -> None:
    """The bytes after the tag are the original audio frames, before and after re-tagging."""
    bare = make_mp3(tmp_path / "bare.mp3", id3=False)
    original = bare.read_bytes()
    assert original[:3] != b"ID3"
    tag_recording(bare, **STATION, started_at=datetime(2025, 1, 1, 8, tzinfo=DENVER))
    once = bare.read_bytes()
    assert once[id3_end(once):] == original
    tag_recording(bare, **STATION, started_at=datetime(2025, 1, 2, 8, tzinfo=DENVER))
    twice = bare.read_bytes()
    assert twice[id3_end(twice):] == original
    assert str(ID3(bare)["TRCK"]) == str(track_number(date(2025, 1, 2)))
    assert len(twice) == len(once)


def test_tagging_replaces_existing_tag_keeping_other_frames(mp3: Path) -> None:
    """An existing tag is replaced in front of the same audio; its other frames stay."""
    before = mp3.read_bytes()
    audio = before[id3_end(before):]
    assert "TSSE" in ID3(mp3)  # the muxer's encoder frame
    tag_recording(mp3, **STATION, started_at=datetime(2025, 10, 3, 21, tzinfo=DENVER))
    after = mp3.read_bytes()
    assert after[id3_end(after):] == audio
    assert "TSSE" in ID3(mp3)


def test_tagging_not_an_mp3_raises_and_keeps_file(tmp_path: Path) -> None:
    """A file that is not MP3 raises MediaError and is left untouched."""
    bad = tmp_path / "notes.mp3"
    bad.write_text("not audio at all " * 50)
    before = bad.read_bytes()
    with pytest.raises(MediaError, match=r"notes\.mp3"):
        tag_recording(bad, **STATION, started_at=datetime(2025, 10, 3, tzinfo=DENVER))
    assert bad.read_bytes() == before


def test_tagging_write_failure_leaves_original(mp3: Path) -> None:
    """When the tagged copy cannot be written, MediaError is raised and the MP3 is intact."""
    import os
    import threading

    before = mp3.read_bytes()
    # Occupy the temp file's name with a folder so that writing it fails.
    blocker = mp3.with_name(f".{mp3.name}.{os.getpid()}.{threading.get_ident()}.tagging")
    blocker.mkdir()
    with pytest.raises(MediaError, match="cannot write tags"):
        tag_recording(mp3, **STATION, started_at=datetime(2025, 10, 3, tzinfo=DENVER))
    assert mp3.read_bytes() == before
    assert sorted(p.name for p in mp3.parent.iterdir()) == sorted([mp3.name, blocker.name])


# --------------------------------------------------------------------------- artwork


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_small_jpeg_png_embedded_unchanged(mp3: Path, tmp_path: Path, fmt: str,
                                           mime: str) -> None:
    """A JPEG or PNG under the limit is embedded byte for byte as APIC type 3 "Cover"."""
    art = image_file(tmp_path / f"cover.{fmt.lower()}", fmt, (300, 200))
    tag_recording(mp3, **STATION, started_at=datetime(2025, 10, 3, tzinfo=DENVER),
                  artwork=art)
    (apic,) = ID3(mp3).getall("APIC")
    assert apic.type == 3 and apic.desc == "Cover" and apic.mime == mime
    assert apic.data == art.read_bytes()


def test_oversized_artwork_resized(mp3: Path, tmp_path: Path) -> None:
    """Artwork above the byte limit is shrunk to at most 800 px, keeping its aspect ratio."""
    art = image_file(tmp_path / "big.png", "PNG", (2000, 1000), noise=True)
    limit = 3_000_000
    assert art.stat().st_size > limit
    tag_recording(mp3, **STATION, started_at=datetime(2025, 10, 3, tzinfo=DENVER),
                  artwork=art, max_artwork_bytes=limit)
    (apic,) = ID3(mp3).getall("APIC")
    assert len(apic.data) <= limit
    with Image.open(io.BytesIO(apic.data)) as im:
        assert im.format == "PNG"
        assert im.size == (800, 400)


def test_oversized_jpeg_shrinks_until_under_limit(tmp_path: Path) -> None:
    """A JPEG still too large at 800 px is shrunk further until it fits the limit."""
    art = image_file(tmp_path / "big.jpg", "JPEG", (3000, 3000), noise=True)
    data, mime = prepare_artwork(art, max_bytes=150_000)
    assert mime == "image/jpeg" and len(data) <= 150_000
    with Image.open(io.BytesIO(data)) as im:
        assert max(im.size) <= 800


@pytest.mark.parametrize(("fmt", "mode", "mime"), [
    ("GIF", "RGB", "image/jpeg"), ("BMP", "RGB", "image/jpeg"),
    ("WEBP", "RGBA", "image/png"), ("WEBP", "RGB", "image/jpeg")])
def test_other_formats_converted(tmp_path: Path, fmt: str, mode: str, mime: str) -> None:
    """GIF/BMP/WebP become JPEG, or PNG when they have transparency."""
    art = image_file(tmp_path / f"cover.{fmt.lower()}", fmt, (120, 90), mode=mode)
    data, got = prepare_artwork(art, max_bytes=10 * 2**20)
    assert got == mime
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == mime.split("/")[1].upper()
        assert im.size == (120, 90)


def test_unreadable_artwork_raises_media_error(tmp_path: Path) -> None:
    """Text, a truncated JPEG and a missing file all raise MediaError naming the file."""
    text = tmp_path / "cover.jpg"
    text.write_text("hello")
    good = image_file(tmp_path / "full.jpg", "JPEG", (400, 400), noise=True)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:2000])
    for path in (text, cut, tmp_path / "missing.png"):
        with pytest.raises(MediaError, match=re.escape(path.name)):
            prepare_artwork(path, max_bytes=10 * 2**20)


def test_unreadable_artwork_still_tags(mp3: Path, tmp_path: Path) -> None:
    """A broken cover image is left out; the recording still gets its text frames."""
    broken = tmp_path / "cover.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    tag_recording(mp3, **STATION, started_at=datetime(2025, 10, 3, tzinfo=DENVER),
                  artwork=broken)
    tags = ID3(mp3)
    assert not tags.getall("APIC")
    assert str(tags["TRCK"]) == "2103"


# --------------------------------------------------------------------------- cue sheets


@dataclass(frozen=True)
class Cue:
    """A capture cue entry (offset, ICY title, optional wall-clock time)."""

    offset_seconds: float
    title: str
    wall_time: datetime | None = None


def test_cue_sheet_content(mp3: Path) -> None:
    """ICY titles become tracks with PERFORMER/TITLE and INDEX 01 at 75 frames/s."""
    cues = [Cue(125.4, 'Bill Evans - "Peace Piece"'), Cue(0.3, "Miles Davis - So What"),
            Cue(130.0, 'Bill Evans - "Peace Piece"'), Cue(200.0, ""),
            Cue(6000.0, "Station ID", datetime(2025, 10, 4, 0, 40, tzinfo=DENVER))]
    path = write_cue_sheet(mp3, cues, performer="KUVO", title="2025-10-03 KUVO Jazz")
    assert path == mp3.with_suffix(".cue")
    raw = path.read_bytes()
    assert b"\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n")
    assert raw.decode("utf-8").split("\r\n") == [
        'PERFORMER "KUVO"',
        'TITLE "2025-10-03 KUVO Jazz"',
        'FILE "2025-10-03_KUVO Jazz.mp3" MP3',
        "  TRACK 01 AUDIO",
        '    TITLE "So What"',
        '    PERFORMER "Miles Davis"',
        "    INDEX 01 00:00:00",
        "  TRACK 02 AUDIO",
        "    TITLE \"''Peace Piece''\"",
        '    PERFORMER "Bill Evans"',
        "    INDEX 01 02:05:30",
        "  TRACK 03 AUDIO",
        '    TITLE "Station ID"',
        "    REM WALLTIME 2025-10-04T00:40:00-06:00",
        "    INDEX 01 100:00:00",
        "",
    ]


def test_cue_sheet_intro_track_when_first_title_is_late(mp3: Path) -> None:
    """A first title after 1 s gets an intro track at 00:00:00 named after the recording."""
    path = write_cue_sheet(mp3, [Cue(12.0, "A - B")], performer="KUVO", title="2025-10-03 X")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[3:] == ["  TRACK 01 AUDIO", '    TITLE "2025-10-03 X"', "    INDEX 01 00:00:00",
                         "  TRACK 02 AUDIO", '    TITLE "B"', '    PERFORMER "A"',
                         "    INDEX 01 00:12:00"]


def test_cue_sheet_same_frame_keeps_later_title(mp3: Path) -> None:
    """Two titles on the same cue frame keep the later one; indexes strictly increase."""
    path = write_cue_sheet(mp3, [Cue(0.0, "A - one"), Cue(10.0, "B - two"),
                                 Cue(10.001, "C - three")], performer="P", title="T")
    text = path.read_text(encoding="utf-8")
    assert "two" not in text and '"three"' in text
    assert text.count("TRACK") == 2
