"""Files of other formats dropped into AUDIO_DIR: converted once to tagged WAV tracks."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import av
import httpx
import mutagen
import numpy as np
import pytest
from mutagen.flac import Picture
from mutagen.id3 import APIC, TALB, TCON, TDRC, TIT2, TPE1
from mutagen.mp4 import MP4Cover
from mutagen.wave import WAVE

from taperoom.audio import wav
from taperoom.audio.tags import read_artwork, read_tags
from taperoom.ephemeral.app import create_app
from taperoom.ephemeral.intake import Intake
from taperoom.ephemeral.names import track_key
from taperoom.ephemeral.settings import EphemeralSettings

SOURCE = "scanner/real_music_tagged/22 - LMMS demo - CapDan-TwilightArea-OriginalByAlf42red.wav"
COVER_FROM = "scanner/real_music_tagged/01 - Muldjord - Armygeddon.mp3"
TAGS = {"title": "Twilight Area ☆", "artist": "CapDan", "album": "LMMS demos", "genre": "Reggae",
        "year": "2009"}
#: extension -> (container, codec, encoder options)
FORMATS: dict[str, tuple[str, str, dict[str, str]]] = {
    "mp3": ("mp3", "libmp3lame", {}),
    "flac": ("flac", "flac", {}),
    "ogg": ("ogg", "vorbis", {"strict": "experimental"}),
    "opus": ("ogg", "libopus", {}),
    "aiff": ("aiff", "pcm_s16be", {}),
    "m4a": ("ipod", "aac", {}),
}
LOSSLESS = {"flac", "aiff"}


@pytest.fixture(scope="module")
def music(corpus: Path) -> tuple[np.ndarray, int]:
    """Four seconds of a real recording as int16 stereo, and its sample rate."""
    with av.open(str(corpus / SOURCE)) as c:
        rate = c.streams.audio[0].codec_context.sample_rate
        rs = av.AudioResampler(format="s16", layout="stereo", rate=rate)
        parts = []
        for frame in c.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1, 2) for f in rs.resample(frame)]
            if sum(map(len, parts)) > 14 * rate:
                break
    return np.concatenate(parts)[10 * rate:14 * rate].copy(), rate


@pytest.fixture(scope="module")
def cover(corpus: Path) -> tuple[bytes, str]:
    art = read_artwork(corpus / COVER_FROM)
    assert art is not None
    return art


def make_source(path: Path, music: tuple[np.ndarray, int], cover: tuple[bytes, str]) -> Path:
    """Encode `music` with PyAV in the format of `path`'s extension, then tag it (title,
    artist, album, genre, year, front cover) with mutagen in that format's own tags."""
    y, rate = music
    container, codec, options = FORMATS[path.suffix[1:]]
    out_rate = 48_000 if codec == "libopus" else rate
    with av.open(str(path), "w", format=container) as c:
        s = c.add_stream(codec, rate=out_rate, layout="stereo")
        s.codec_context.options = options
        fmt = s.codec_context.format.name if s.codec_context.format else "fltp"
        rs = av.AudioResampler(format=fmt, layout="stereo", rate=out_rate,
                               frame_size=s.codec_context.frame_size or 1024)
        frame = av.AudioFrame.from_ndarray(y.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = rate
        for f in [*rs.resample(frame), *rs.resample(None)]:
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    data, mime = cover
    audio: Any = mutagen.File(path)
    ext = path.suffix[1:]
    if ext in ("mp3", "aiff"):
        if audio.tags is None:
            audio.add_tags()
        for frame_type, key in ((TIT2, "title"), (TPE1, "artist"), (TALB, "album"),
                                (TCON, "genre"), (TDRC, "year")):
            audio.tags.add(frame_type(encoding=3, text=[TAGS[key]]))
        audio.tags.add(APIC(encoding=3, mime=mime, type=3, desc="", data=data))
    elif ext == "m4a":
        for key, atom in (("title", "\xa9nam"), ("artist", "\xa9ART"), ("album", "\xa9alb"),
                          ("genre", "\xa9gen"), ("year", "\xa9day")):
            audio[atom] = [TAGS[key]]
        audio["covr"] = [MP4Cover(data, imageformat=MP4Cover.FORMAT_JPEG
                                  if mime == "image/jpeg" else MP4Cover.FORMAT_PNG)]
    else:
        for key in ("title", "artist", "album", "genre"):
            audio[key] = TAGS[key]
        audio["date"] = TAGS["year"]
        pic = Picture()
        pic.type, pic.mime, pic.data = 3, mime, data
        if ext == "flac":
            audio.add_picture(pic)
        else:
            audio["metadata_block_picture"] = [base64.b64encode(pic.write()).decode()]
    audio.save()
    return path


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack("<4sI", data[pos:pos + 8])
        out.append((cid, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def _info(list_body: bytes) -> dict[bytes, str]:
    assert list_body[:4] == b"INFO"
    return {cid: body.rstrip(b"\x00").decode() for cid, body in _chunks(b"x" * 8 + list_body)}


@pytest.fixture
def settings(eph_settings: Callable[..., EphemeralSettings]) -> EphemeralSettings:
    s = eph_settings(degrade_rate_limit="off")
    s.audio_dir.mkdir(parents=True)
    return s


@pytest.mark.parametrize("ext", list(FORMATS))
def test_each_format_becomes_a_tagged_wav_track(ext: str, settings: EphemeralSettings,
                                                live_server: Callable[[Any], Any],
                                                music: tuple[np.ndarray, int],
                                                cover: tuple[bytes, str]) -> None:
    """A dropped file appears in GET /tracks as <stem>.wav: PCM audio of the same length
    (sample for sample for lossless sources), its tags in LIST/INFO and in an id3 chunk
    (read back with mutagen, cover art included), the original kept aside byte for byte
    and gone from AUDIO_DIR; the track then wears like any WAV."""
    name = f"Twilight Area.{ext}"
    src = make_source(settings.audio_dir / name, music, cover)
    original = src.read_bytes()
    source_frames = sum(f.samples for f in av.open(str(src)).decode(audio=0))
    client = httpx.Client(base_url=live_server(create_app(settings)).url, timeout=30)
    tracks = client.get("/tracks").json()
    assert [t["filename"] for t in tracks] == ["Twilight Area.wav"]
    assert sorted(os.listdir(settings.audio_dir)) == ["Twilight Area.wav"]
    out = settings.audio_dir / "Twilight Area.wav"
    info = wav.read_info(out)
    assert info.format_tag == wav.WAVE_FORMAT_PCM and info.bits_per_sample == 16
    assert info.channels == 2 and info.n_frames == source_frames
    data = out.read_bytes()
    chunks = dict(_chunks(data))
    assert list(dict(_chunks(data))) == [b"fmt ", b"LIST", b"data", b"id3 "]
    assert _info(chunks[b"LIST"]) == {b"INAM": TAGS["title"], b"IART": TAGS["artist"],
                                      b"IPRD": TAGS["album"], b"IGNR": TAGS["genre"],
                                      b"ICRD": TAGS["year"]}
    id3 = WAVE(out).tags
    assert id3 is not None
    assert str(id3["TIT2"]) == TAGS["title"] and str(id3["TPE1"]) == TAGS["artist"]
    assert str(id3["TALB"]) == TAGS["album"] and str(id3["TCON"]) == TAGS["genre"]
    assert id3.getall("APIC")[0].data == cover[0] and id3.getall("APIC")[0].type == 3
    assert read_tags(out).title == TAGS["title"] and read_artwork(out) == cover
    if ext in LOSSLESS:
        y, _ = music
        np.testing.assert_array_equal(wav.decode(data[info.data_offset:
                                                      info.data_offset + info.data_size],
                                                 info) * 32768, y)
    kept = settings.metadata_dir / "sources" / track_key(name)
    assert kept.read_bytes() == original
    record = json.loads((settings.metadata_dir / "sources" / f"{track_key(name)}.json")
                        .read_bytes())
    assert record["source"] == name and record["wav"] == "Twilight Area.wav"
    for _ in range(3):
        r = client.post(f"/degrade/{quote('Twilight Area.wav')}", json={"segment_index": 1})
        assert r.status_code == 200
    assert out.read_bytes() != data
    assert client.get("/tracks").json()[0]["filename"] == "Twilight Area.wav"  # once
    assert sorted(os.listdir(settings.audio_dir)) == ["Twilight Area.wav"]
    client.close()


def test_24_bit_flac_stays_24_bit(settings: EphemeralSettings, corpus: Path) -> None:
    """A 24-bit FLAC becomes a 24-bit WAV with the same samples."""
    src = corpus / "scanner/real_music_tagged/02 - Muldjord - Chaos God.flac"
    (settings.audio_dir / "chaos.flac").write_bytes(src.read_bytes())
    intake = Intake(settings.audio_dir, settings.metadata_dir, fsync=False)
    [done] = intake.convert_pending()
    info = wav.read_info(settings.audio_dir / done.wav)
    assert info.bits_per_sample == 24
    fd = os.open(settings.audio_dir / done.wav, os.O_RDONLY)
    try:
        got = wav.read_frames(fd, info, 0, 44100)
    finally:
        os.close(fd)
    with av.open(str(src)) as c:
        assert c.streams.audio[0].codec_context.format.name == "s32"  # packed
        first = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in c.decode(audio=0)][:20])
    want = first[:44100].astype(np.float64) / 2**31
    np.testing.assert_array_equal(got, want)


def test_undecodable_file_is_reported_once_and_skipped(settings: EphemeralSettings,
                                                       caplog: pytest.LogCaptureFixture,
                                                       music: tuple[np.ndarray, int],
                                                       cover: tuple[bytes, str]) -> None:
    """A file that cannot be decoded is logged once however often the folder is scanned,
    left where it is, and leaves nothing behind; once replaced by a good file it is
    converted."""
    bad = settings.audio_dir / "broken.mp3"
    bad.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + os.urandom(3000))
    intake = Intake(settings.audio_dir, settings.metadata_dir, fsync=False)
    with caplog.at_level(logging.WARNING, logger="taperoom.ephemeral.intake"):
        for _ in range(4):
            assert intake.convert_pending() == []
    warnings = [r for r in caplog.records if "broken.mp3" in r.getMessage()]
    assert len(warnings) == 1
    assert sorted(os.listdir(settings.audio_dir)) == ["broken.mp3"]
    time.sleep(0.01)
    make_source(settings.audio_dir / "broken.mp3", music, cover)
    [done] = intake.convert_pending()
    assert done.wav == "broken.wav"


def test_a_killed_conversion_leaves_no_track_and_is_redone(
        settings: EphemeralSettings, music: tuple[np.ndarray, int],
        cover: tuple[bytes, str], tmp_path: Path) -> None:
    """A conversion killed (SIGKILL) while it writes leaves no .wav in AUDIO_DIR, only a
    hidden temp file and the untouched source; the next scan converts it in full."""
    y, rate = music
    long = (np.tile(y, (40, 1)), rate)  # 160 s: seconds of work to be killed in
    src = make_source(settings.audio_dir / "long.flac", long, cover)
    original = src.read_bytes()
    code = ("import sys; from pathlib import Path; from taperoom.ephemeral.intake import Intake;"
            "Intake(Path(sys.argv[1]), Path(sys.argv[2]), fsync=False).convert_pending()")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", code, str(settings.audio_dir),
                             str(settings.metadata_dir)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not any(n.endswith(".convert.tmp") and (settings.audio_dir / n).stat().st_size
                      > 1 << 20 for n in os.listdir(settings.audio_dir)):
            assert proc.poll() is None, "the conversion ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    names = os.listdir(settings.audio_dir)
    assert not [n for n in names if n.endswith(".wav")], names
    assert src.read_bytes() == original
    [done] = Intake(settings.audio_dir, settings.metadata_dir, fsync=False).convert_pending()
    info = wav.read_info(settings.audio_dir / done.wav)
    assert info.n_frames == len(long[0])


def test_interrupted_after_the_link_is_finished_without_a_duplicate(
        settings: EphemeralSettings, music: tuple[np.ndarray, int],
        cover: tuple[bytes, str]) -> None:
    """A crash between the track's link and the removal of the source (simulated by
    putting the source back) is finished by the next scan: the source goes, no second
    track appears."""
    src = make_source(settings.audio_dir / "song.mp3", music, cover)
    original = src.read_bytes()
    intake = Intake(settings.audio_dir, settings.metadata_dir, fsync=False)
    [done] = intake.convert_pending()
    src.write_bytes(original)
    assert Intake(settings.audio_dir, settings.metadata_dir, fsync=False).convert_pending() == []
    assert sorted(os.listdir(settings.audio_dir)) == [done.wav]


def test_a_name_taken_by_a_wav_gets_another(settings: EphemeralSettings,
                                            music: tuple[np.ndarray, int],
                                            cover: tuple[bytes, str]) -> None:
    """song.mp3 beside an unrelated song.wav becomes "song (mp3).wav"; song.wav is untouched."""
    make_source(settings.audio_dir / "song.flac", music, cover)
    (settings.audio_dir / "song.wav").write_bytes(b"RIFF-not-ours")
    make_source(settings.audio_dir / "song.mp3", music, cover)
    done = Intake(settings.audio_dir, settings.metadata_dir, fsync=False).convert_pending()
    assert sorted(d.wav for d in done) == ["song (flac).wav", "song (mp3).wav"]
    assert (settings.audio_dir / "song.wav").read_bytes() == b"RIFF-not-ours"
