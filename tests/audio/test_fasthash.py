"""Container walkers against the demuxer: the same audio hash, on real and generated files."""

from __future__ import annotations

import base64
import shutil
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import av
import mutagen
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, COMM, ID3, TIT2
from mutagen.mp4 import MP4, MP4Cover
from mutagen.wave import WAVE

from taperoom.audio.containers import METHODS, FileView, Unsupported, audio_ranges
from taperoom.audio.containers.flac import frame_header_ok
from taperoom.audio.containers.mpeg import frame_size
from taperoom.audio.containers.ogg import vorbis_setup_ok
from taperoom.audio.hashing import DEMUX, audio_hash, audio_hash_demuxed, audio_hash_method
from taperoom.errors import MediaError
from tests.conftest import CORPUS
from tests.wavgen import BEXT, LIST_INFO, tone, write_wav
from tests.wavgen import ID3 as ID3_CHUNK

TAGGED = CORPUS / "scanner" / "real_music_tagged"
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
BIG_ART = PNG_1X1 + bytes(range(256)) * 1200  # 300 kB
LONG_COMMENT = "A long liner note. " * 6000
ID3V1 = b"TAG" + b"v1 title".ljust(30, b"\x00") + b"\x00" * 94 + b"\x11"
#: Walker expected for each suffix of the shared corpus.
BY_SUFFIX = {".mp3": "mp3", ".flac": "flac", ".ogg": "ogg", ".opus": "ogg", ".m4a": "mp4",
             ".wav": "wav", ".aiff": "aiff", ".aif": "aiff"}
#: Corpus files of those suffixes that are not what their name says, or that FFmpeg
#: itself only guesses at.
NOT_WALKED = {"junk_before_frames.mp3", "not_audio.ogg", "zero_length.mp3", "actually_flac.mp3"}
NON_AUDIO = {".json", ".beats", ".bpm", ".key", ".csv", ".md", ".tempo", ".txt"}


def outcome(fn: Callable[[Path], object], path: Path) -> object:
    """`fn(path)`, or the string "MediaError" if it raises one."""
    try:
        return fn(path)
    except MediaError:
        return "MediaError"


def check(path: Path, method: str | None = None) -> str:
    """Assert that walking and demuxing agree on `path`; return the method used.

    Agreement means the same digest, or MediaError from both. With `method`, also
    assert which one produced the digest.
    """
    ref = outcome(audio_hash_demuxed, path)
    got = outcome(audio_hash_method, path)
    if ref == "MediaError":
        assert got == "MediaError", f"{path.name}: walked to {got} where demuxing fails"
        used = DEMUX
    else:
        assert isinstance(got, tuple)
        assert got[0] == ref, f"{path.name}: {got[1]} digest differs from the demuxed one"
        used = got[1]
    if method is not None:
        assert used == method, f"{path.name}: hashed by {used}, expected {method}"
    return used


def encode(path: Path, fmt: str, codec: str, *, rate: int = 44100, layout: str = "stereo",
           seconds: float = 1.0, options: dict[str, str] | None = None,
           stream_options: dict[str, str] | None = None, bit_rate: int | None = None,
           sample_format: str | None = None, noise_level: float = 0.05, seed: int = 1) -> Path:
    """Encode a noisy tone with PyAV (FFmpeg's muxers write the container)."""
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate, options=stream_options or {})
        stream.layout = layout
        if bit_rate:
            stream.bit_rate = bit_rate
        if sample_format:
            stream.format = sample_format
        n = int(rate * seconds)
        channels = av.AudioLayout(layout).nb_channels
        t = np.arange(n) / rate
        noise = np.random.default_rng(seed).standard_normal((channels, n))
        amount = noise_level
        y = (0.3 * np.sin(2 * np.pi * 440 * t)[None, :] + amount * noise).astype(np.float32)
        for i in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[:, i:i + 1024]),
                                               format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def packet_spans(path: Path) -> list[tuple[int, int]]:
    """``(pos, size)`` of the demuxed audio packets (an independent view of the layout)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [(int(p.pos), p.size) for p in container.demux(stream)
                if p.size and p.pos is not None and p.pos >= 0]


# --------------------------------------------------------------------------- corpus


def _corpus_files() -> list[object]:
    if not CORPUS.is_dir():
        return [pytest.param(None, id="corpus-missing")]
    return [pytest.param(p, id=str(p.relative_to(CORPUS))) for p in sorted(CORPUS.rglob("*"))
            if p.is_file() and p.suffix.lower() not in NON_AUDIO]


@pytest.mark.parametrize("path", _corpus_files())
def test_corpus_file_hash_matches_demuxer(corpus: Path, path: Path) -> None:
    """Every corpus file gets the demuxed digest (or the same MediaError), walked where expected."""
    used = check(path)
    expected = BY_SUFFIX.get(path.suffix.lower())
    in_library = "tagtests" not in path.parts
    if expected and in_library and path.name not in NOT_WALKED:
        assert used == expected


def test_public_entry_point_is_the_fast_one(corpus: Path) -> None:
    """audio_hash returns the digest of audio_hash_method, which walks a plain MP3."""
    path = TAGGED / "01 - Muldjord - Armygeddon.mp3"
    digest, method = audio_hash_method(path)
    assert method == "mp3" and method in METHODS
    assert audio_hash(path) == digest == audio_hash_demuxed(str(path))


# --------------------------------------------------------------------------- WAV


def _wav_with(tmp: Path, name: str, **kwargs: object) -> Path:
    y = tone(0.5, 22050, 2)
    return write_wav(tmp / name, y, rate=22050, **kwargs)  # type: ignore[arg-type]


WAV_CASES: dict[str, dict[str, object]] = {
    "pcm16": {},
    "pcm8": {"fmt": "pcm8"},
    "pcm24": {"fmt": "pcm24"},
    "pcm32": {"fmt": "pcm32"},
    "float32": {"fmt": "float32"},
    "float64": {"fmt": "float64"},
    "extensible-pcm24": {"fmt": "pcm24", "extensible": True},
    "extensible-float": {"fmt": "float32", "extensible": True},
    "list-before": {"before": [LIST_INFO]},
    "list-after": {"after": [LIST_INFO]},
    "bext-before-id3-after": {"before": [BEXT], "after": [ID3_CHUNK]},
    "odd-chunk-before": {"before": [(b"odd ", b"abc")]},
    "odd-chunk-after": {"after": [(b"odd ", b"abc"), LIST_INFO]},
    "junk-chunk": {"before": [(b"JUNK", bytes(28))]},
}


@pytest.mark.parametrize("case", list(WAV_CASES))
def test_wav_layouts(tmp_path: Path, case: str) -> None:
    """Sample formats and chunks before/after data: the data chunk's bytes, walked."""
    check(_wav_with(tmp_path, f"{case}.wav", **WAV_CASES[case]), "wav")


def _riff(body: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def _fmt16(channels: int = 1, rate: int = 8000, bits: int = 8) -> bytes:
    block = channels * bits // 8
    return b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)


def test_wav_odd_data_chunk_with_pad_byte(tmp_path: Path) -> None:
    """An odd-sized data chunk, its pad byte and a chunk after it: the pad byte is not audio."""
    pcm = bytes(range(1, 256)) * 41  # 10455 bytes of 8-bit mono
    body = _fmt16() + b"data" + struct.pack("<I", len(pcm)) + pcm + b"\0"
    body += b"LIST" + struct.pack("<I", 16) + b"INFOINAM\x04\0\0\0abc\0"
    path = tmp_path / "odd.wav"
    path.write_bytes(_riff(body))
    check(path, "wav")


def test_wav_fmt_after_data(tmp_path: Path) -> None:
    """FFmpeg reads a seekable file's chunks in any order: fmt may follow data."""
    pcm = bytes(range(256)) * 40
    path = tmp_path / "late-fmt.wav"
    path.write_bytes(_riff(b"data" + struct.pack("<I", len(pcm)) + pcm + _fmt16()))
    check(path, "wav")


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF, 10**7])
def test_wav_streaming_or_wrong_data_size(tmp_path: Path, size: int) -> None:
    """Data sizes 0 and 0xFFFFFFFF (unknown) and too large: the data runs to the end of file."""
    pcm = bytes(range(256)) * 40
    path = tmp_path / "stream.wav"
    path.write_bytes(_riff(_fmt16() + b"data" + struct.pack("<I", size) + pcm + ID3V1))
    check(path, "wav")


def test_wav_rf64(tmp_path: Path) -> None:
    """RF64: the data size comes from ds64, the 32-bit size field is 0xFFFFFFFF."""
    pcm = tone(0.3, 8000, 1)
    raw = (np.rint(pcm[:, 0] * 32767).astype("<i2")).tobytes()
    ds64 = b"ds64" + struct.pack("<IqqqI", 28, 0, len(raw), len(raw) // 2, 0)
    body = ds64 + _fmt16(bits=16) + b"data" + struct.pack("<I", 0xFFFFFFFF) + raw
    body += b"LIST" + struct.pack("<I", 16) + b"INFOINAM\x04\0\0\0abc\0"
    path = tmp_path / "rf64.wav"
    path.write_bytes(b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + body)
    check(path, "wav")


def test_wav_retagged_with_mutagen(corpus: Path, tmp_path: Path) -> None:
    """A WAV whose id3 chunk mutagen rewrites with big cover art keeps the walked digest."""
    path = tmp_path / "tagged.wav"
    shutil.copyfile(TAGGED / "odd" / "mono_22k.wav", path)
    check(path, "wav")
    before = audio_hash(path)
    audio = WAVE(path)
    audio.add_tags()
    audio.tags.add(TIT2(encoding=3, text="title"))
    audio.tags.add(APIC(encoding=3, mime="image/png", type=3, desc="", data=BIG_ART))
    audio.save()
    check(path, "wav")
    assert audio_hash(path) == before


def test_wav_truncated(corpus: Path, tmp_path: Path) -> None:
    """A data chunk cut short by the end of the file is hashed up to the end, as FFmpeg does."""
    data = (TAGGED / "odd" / "mono_22k.wav").read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(data[:len(data) * 2 // 3 + 1])
    check(path, "wav")


def test_wav_two_data_chunks(tmp_path: Path) -> None:
    """FFmpeg's chunk walk keeps the last data chunk; the walker hashes that one too."""
    first, second = bytes(range(256)) * 8, bytes(range(255, -1, -1)) * 9
    path = tmp_path / "two.wav"
    path.write_bytes(_riff(_fmt16() + b"data" + struct.pack("<I", len(first)) + first
                           + b"data" + struct.pack("<I", len(second)) + second))
    check(path, "wav")


def test_wav_spdif_payload_is_demuxed(tmp_path: Path) -> None:
    """PCM carrying IEC 61937 burst preambles is demuxed by FFmpeg's S/PDIF path."""
    burst = b"\x72\xf8\x1f\x4e\x01\x00\x00\x10" + bytes(6136)
    path = tmp_path / "spdif.wav"
    path.write_bytes(_riff(_fmt16(2, 48000, 16) + b"data" + struct.pack("<I", 6144 * 8)
                           + burst * 8))
    check(path, DEMUX)


def test_wav_compressed_formats_are_demuxed(tmp_path: Path) -> None:
    """Non-PCM WAV (here MP2 in WAV, which FFmpeg re-parses) goes to the demuxer."""
    path = encode(tmp_path / "mp2.wav", "wav", "mp2", rate=48000)
    check(path, DEMUX)


# --------------------------------------------------------------------------- AIFF


def _ext80(rate: int) -> bytes:
    exp = rate.bit_length() - 1
    return struct.pack(">HQ", 16383 + exp, rate << (63 - exp))


def _aiff(pcm: bytes, *, channels: int = 2, bits: int = 16, rate: int = 22050,
          compression: bytes | None = None, before: bytes = b"", after: bytes = b"",
          offset: int = 0, comm_last: bool = False) -> bytes:
    frames = len(pcm) // (channels * ((bits + 7) // 8))
    comm = struct.pack(">HIH", channels, frames, bits) + _ext80(rate)
    if compression is not None:
        comm += compression + b"\x0enot compressed\x00"
    comm_chunk = b"COMM" + struct.pack(">I", len(comm)) + comm
    ssnd = struct.pack(">II", offset, 0) + bytes(offset) + pcm
    ssnd_chunk = b"SSND" + struct.pack(">I", len(ssnd)) + ssnd + (b"\0" if len(ssnd) & 1 else b"")
    fver = b"FVER" + struct.pack(">II", 4, 0xA2805140) if compression is not None else b""
    body = fver + before + (ssnd_chunk + comm_chunk if comm_last else comm_chunk + ssnd_chunk)
    body += after
    kind = b"AIFC" if compression is not None else b"AIFF"
    return b"FORM" + struct.pack(">I", 4 + len(body)) + kind + body


def _pcm(bits: int = 16, channels: int = 2, seconds: float = 0.5) -> bytes:
    y = tone(seconds, 22050, channels).reshape(-1)
    if bits == 8:
        return np.rint(y * 127).astype(np.int8).tobytes()
    if bits == 24:
        return (np.rint(y * 8388607).astype(">i4").view(np.uint8).reshape(-1, 4)[:, 1:]
                .tobytes())
    return np.rint(y * 32767).astype(">i2").tobytes()


ANNO = b"ANNO" + struct.pack(">I", 5) + b"notes\0"  # odd size, pad byte
AIFF_CASES: dict[str, tuple[dict[str, object], str]] = {
    "aiff-16": ({}, "aiff"),
    "aiff-8-mono": ({"bits": 8, "channels": 1}, "aiff"),
    "aiff-24": ({"bits": 24}, "aiff"),
    "aifc-none": ({"compression": b"NONE"}, "aiff"),
    "aifc-sowt": ({"compression": b"sowt"}, "aiff"),
    "aifc-ulaw": ({"compression": b"ulaw", "bits": 8, "channels": 1}, DEMUX),
    "ssnd-offset": ({"offset": 16}, "aiff"),
    "odd-chunk-before": ({"before": ANNO}, "aiff"),
    "chunk-after": ({"after": ANNO}, "aiff"),
    "comm-after-ssnd": ({"comm_last": True}, DEMUX),
}


@pytest.mark.parametrize("case", list(AIFF_CASES))
def test_aiff_layouts(tmp_path: Path, case: str) -> None:
    """AIFF and AIFF-C layouts: the SSND sound data, walked where the codec is PCM."""
    kwargs, method = AIFF_CASES[case]
    pcm = _pcm(int(kwargs.get("bits", 16)), int(kwargs.get("channels", 2)))  # type: ignore[call-overload]
    path = tmp_path / f"{case}.aiff"
    path.write_bytes(_aiff(pcm, **kwargs))  # type: ignore[arg-type]
    check(path, method)


def test_aiff_retagged_and_truncated(corpus: Path, tmp_path: Path) -> None:
    """mutagen's ID3 chunk (with cover art) and a cut-short SSND keep walker and demuxer equal
    (cut short with the ID3 chunk still counted by FORM, the file goes to the demuxer)."""
    src = TAGGED / "07 - John Garner - Partita No. 1 in B minor: Double (BWV1002).aiff"
    path = tmp_path / "t.aiff"
    shutil.copyfile(src, path)
    audio = mutagen.File(path)
    audio.tags.add(APIC(encoding=3, mime="image/png", type=3, desc="", data=BIG_ART))
    audio.tags.add(COMM(encoding=3, lang="eng", desc="", text=LONG_COMMENT))
    audio.save()
    check(path, "aiff")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2 + 1])
    check(path, DEMUX)


# --------------------------------------------------------------------------- FLAC


def test_flac_huge_padding_pictures_and_appended_tags(corpus: Path, tmp_path: Path) -> None:
    """1 MiB of padding, two pictures, then ID3v1 appended: only the frames count."""
    path = tmp_path / "padded.flac"
    shutil.copyfile(TAGGED / "odd" / "UPPER.FLAC", path)
    before = audio_hash(path)
    audio = FLAC(path)
    for data in (BIG_ART, PNG_1X1):
        pic = Picture()
        pic.type, pic.mime, pic.data = 3, "image/png", data
        audio.add_picture(pic)
    audio["comment"] = [LONG_COMMENT]
    audio.save(padding=lambda info: 1 << 20)
    check(path, "flac")
    with open(path, "ab") as f:
        f.write(ID3V1)
    check(path, "flac")
    assert audio_hash(path) == before


FLAC_CASES: dict[str, tuple[dict[str, object], str]] = {
    "one-frame": ({"seconds": 0.05}, "flac"),
    "mono-8k": ({"rate": 8000, "layout": "mono"}, "flac"),
    "frames-of-100kb": ({"rate": 48000, "sample_format": "s32", "noise_level": 0.5,
                         "stream_options": {"frame_size": "16384"}, "seconds": 2.0}, "flac"),
    # FFmpeg's parser hands out nothing for 295 kB frames: both report an error
    "frames-of-300kb": ({"rate": 192000, "layout": "5.1", "sample_format": "s32",
                         "noise_level": 0.5, "stream_options": {"frame_size": "16384"}},
                        DEMUX),
}


@pytest.mark.parametrize("case", list(FLAC_CASES))
def test_flac_generated(tmp_path: Path, case: str) -> None:
    """FLAC from FFmpeg's encoder: one frame, 8 kHz mono, large frames, too large frames."""
    kwargs, method = FLAC_CASES[case]
    check(encode(tmp_path / "a.flac", "flac", "flac", **kwargs), method)  # type: ignore[arg-type]


@pytest.mark.parametrize("tail", ["junk", "truncated"])
def test_flac_tail_is_demuxed(tmp_path: Path, tail: str) -> None:
    """Junk after the last frame or a frame cut short fail the CRC-16: left to the demuxer."""
    path = encode(tmp_path / "a.flac", "flac", "flac")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) * 3 // 4] if tail == "truncated"
                     else data + bytes(3000) + b"garbage")
    check(path, DEMUX)


def _crc16(data: bytes) -> int:
    """FLAC frame CRC-16 (polynomial 0x8005, MSB first, initial value 0; RFC 9639, 9.3)."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@pytest.mark.parametrize("damage", [False, True])
def test_flac_false_header_and_damaged_frame(tmp_path: Path, damage: bool) -> None:
    """A valid-looking frame header inside intact audio is walked; a damaged frame is not."""
    path = encode(tmp_path / "a.flac", "flac", "flac", seconds=3.0)
    data = bytearray(path.read_bytes())
    spans = packet_spans(path)
    (start, size), (other, _) = spans[len(spans) // 2], spans[-3]
    at = start + size // 2
    data[at:at + 8] = data[other:other + 8]  # another frame's header, CRC-8 and all
    if not damage:
        data[start + size - 2:start + size] = _crc16(bytes(data[start:start + size - 2])
                                                     ).to_bytes(2, "big")
    path.write_bytes(bytes(data))
    check(path, DEMUX if damage else "flac")


def test_flac_behind_id3v2_is_demuxed(corpus: Path, tmp_path: Path) -> None:
    """An ID3v2 tag before "fLaC" (FFmpeg skips it) is left to the demuxer."""
    path = tmp_path / "id3.flac"
    tag = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10)
    path.write_bytes(tag + (TAGGED / "odd" / "UPPER.FLAC").read_bytes())
    check(path, DEMUX)


def test_flac_frame_header_check() -> None:
    """The frame header check accepts real headers and rejects a bad CRC-8 or reserved codes."""
    data = (TAGGED / "odd" / "UPPER.FLAC").read_bytes()
    start = packet_spans(TAGGED / "odd" / "UPPER.FLAC")[0][0]
    head = data[start:start + 16]
    assert frame_header_ok(head)
    assert not frame_header_ok(head[:4] + bytes([head[4] ^ 1]) + head[5:])
    assert not frame_header_ok(b"\xff\xf8\x0f" + head[3:])  # sample rate code 15


# --------------------------------------------------------------------------- MP3


MP3 = TAGGED / "01 - Muldjord - Armygeddon.mp3"  # ID3v2.4 with cover, Xing frame
MP3_CBR = TAGGED / ("16 - various (librosa example data) - Kevin MacLeod - P I Tchaikovsky "
                    "Dance of the Sugar Plum Fairy.mp3")  # Info frame


def _mp3_layout(path: Path) -> tuple[int, int, bytes]:
    """(tag end, first audio frame, bytes) of an ID3-tagged MP3 with a Xing/Info frame."""
    data = path.read_bytes()
    tag_end = 10 + ((data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7
                    | data[9] & 0x7F)
    return tag_end, packet_spans(path)[0][0], data


def _junk_at(path: Path, index: int, junk: bytes) -> bytes:
    """The file's bytes with `junk` inserted before the `index`-th audio packet."""
    data = path.read_bytes()
    pos = packet_spans(path)[index][0]
    return data[:pos] + junk + data[pos:]


MP3_EDITS: dict[str, Callable[[Path], bytes]] = {
    "junk-between-frames": lambda p: _junk_at(p, 300, b"JUNK" * 50),
    "sync-like-junk": lambda p: _junk_at(p, 300, b"\xff\xe0" + bytes(20)),
    "junk-with-false-header": lambda p: _junk_at(p, 300, b"xx\xff\xfb\x90\x64" + bytes(30)),
    "junk-early-then-cut": lambda p: _junk_at(p, 10, b"\xff\xff\xff")[:-5000],
    "junk-after-frames": lambda p: p.read_bytes() + b"\xff\xfb" + bytes(700) + b"tail",
    "no-xing-frame": lambda p: (lambda t, a, d: d[:t] + d[a:])(*_mp3_layout(p)),
    "zeros-after-id3": lambda p: (lambda t, a, d: d[:t] + bytes(1000) + d[t:])(*_mp3_layout(p)),
    "xing-without-counts": lambda p: (lambda d, i: d[:i + 4] + bytes(4) + d[i + 8:])(
        p.read_bytes(), p.read_bytes().find(b"Xing")),
    "id3v24-footer": lambda p: (lambda t, a, d: d[:5] + bytes([d[5] | 0x10]) + d[6:t]
                                + b"3DI" + d[3:5] + bytes([d[5] | 0x10]) + d[6:10] + d[t:])(
        *_mp3_layout(p)),
    "truncated-mid-frame": lambda p: p.read_bytes()[:300_001],
    "stacked-id3v2": lambda p: b"ID3\x03\x00\x00\x00\x00\x00\x0a" + bytes(10) + p.read_bytes(),
}


@pytest.mark.parametrize("edit", list(MP3_EDITS))
def test_mp3_edits(corpus: Path, tmp_path: Path, edit: str) -> None:
    """Junk between/after frames, missing or count-less Xing frame, ID3 variants, truncation."""
    path = tmp_path / "edited.mp3"
    path.write_bytes(MP3_EDITS[edit](MP3))
    check(path, DEMUX if edit == "stacked-id3v2" else "mp3")


@pytest.mark.parametrize("case", ["cbr-info-frame", "mpeg2-lsf-mono", "mpeg25-8k", "layer2",
                                  "cbr-320-id3v1"])
def test_mpeg_audio_variants(corpus: Path, tmp_path: Path, case: str) -> None:
    """Info frame CBR, MPEG-2 and 2.5 sample rates, Layer II, ID3v1 appended."""
    if case == "cbr-info-frame":
        path = tmp_path / "cbr.mp3"
        shutil.copyfile(MP3_CBR, path)
    elif case == "mpeg2-lsf-mono":
        path = encode(tmp_path / "a.mp3", "mp3", "libmp3lame", rate=22050, layout="mono",
                      bit_rate=32000)
    elif case == "mpeg25-8k":
        path = encode(tmp_path / "a.mp3", "mp3", "libmp3lame", rate=8000, layout="mono",
                      bit_rate=16000)
    elif case == "layer2":
        path = encode(tmp_path / "a.mp2", "mp2", "mp2", rate=48000)
    else:
        path = encode(tmp_path / "a.mp3", "mp3", "libmp3lame", bit_rate=320000)
        with open(path, "ab") as f:
            f.write(ID3V1)
    check(path, "mp3")


def test_mp3_retagged_with_big_art(corpus: Path, tmp_path: Path) -> None:
    """ID3v2.3 rewrite with 300 kB of art and a long comment: still walked, same digest."""
    path = tmp_path / "tagged.mp3"
    shutil.copyfile(MP3, path)
    before = audio_hash(path)
    tags = ID3(path)
    tags.add(APIC(encoding=3, mime="image/png", type=3, desc="front", data=BIG_ART))
    tags.add(COMM(encoding=3, lang="eng", desc="", text=LONG_COMMENT))
    tags.save(v2_version=3)
    check(path, "mp3")
    assert audio_hash(path) == before


def test_mpeg_frame_sizes() -> None:
    """Frame lengths follow ISO/IEC 11172-3: 417/418 bytes at 128 kbit/s, 44.1 kHz, Layer III."""
    assert frame_size(0xFFFB9064) == 417
    assert frame_size(0xFFFB9264) == 418  # padding bit
    assert frame_size(0xFFFB0064) == 0  # free format
    assert frame_size(0xFFFBF064) == -1  # bit rate index 15
    assert frame_size(0x12345678) == -1


# --------------------------------------------------------------------------- Ogg


OGG = TAGGED / "04 - Muldjord - Mutilated Mime.ogg"
OPUS = TAGGED / "21 - LMMS demo - CapDan-ReggaetonTry.opus"


def _retag_vorbis(path: Path) -> None:
    audio = mutagen.File(path)
    pic = Picture()
    pic.type, pic.mime, pic.data = 3, "image/png", BIG_ART
    audio["metadata_block_picture"] = [base64.b64encode(pic.write()).decode()]
    audio["comment"] = [LONG_COMMENT]
    audio.save()


@pytest.mark.parametrize("source", ["ogg", "opus"])
@pytest.mark.parametrize("edit", ["big-comment", "truncated", "appended-garbage",
                                  "appended-id3v1"])
def test_ogg_edits(corpus: Path, tmp_path: Path, source: str, edit: str) -> None:
    """Comment packets over many pages, a cut-off last page, bytes after the last page."""
    path = tmp_path / f"a.{source}"
    shutil.copyfile(OGG if source == "ogg" else OPUS, path)
    before = audio_hash(path)
    if edit == "big-comment":
        _retag_vorbis(path)
    else:
        data = path.read_bytes()
        tail = {"truncated": b"", "appended-garbage": b"\x00garbage" * 100,
                "appended-id3v1": ID3V1}[edit]
        path.write_bytes((data[:len(data) * 4 // 5] if edit == "truncated" else data) + tail)
    check(path, "ogg")
    if edit != "truncated":
        assert audio_hash(path) == before


@pytest.mark.parametrize("case", ["vorbis", "opus", "opus-mono-long"])
def test_ogg_generated(tmp_path: Path, case: str) -> None:
    """Ogg streams written by FFmpeg's muxer (Vorbis and Opus encoders)."""
    if case == "vorbis":
        path = encode(tmp_path / "a.ogg", "ogg", "vorbis", stream_options={"strict": "-2"})
    else:
        path = encode(tmp_path / "a.opus", "ogg", "libopus", rate=48000,
                      layout="mono" if case == "opus-mono-long" else "stereo",
                      seconds=5.0 if case == "opus-mono-long" else 1.0)
    check(path, "ogg")


def test_ogg_bad_crc_and_chained_are_demuxed(corpus: Path, tmp_path: Path) -> None:
    """A page with a wrong CRC (FFmpeg skips it) and chained streams go to the demuxer."""
    data = OGG.read_bytes()
    at = data.find(b"OggS", len(data) // 2)
    path = tmp_path / "crc.ogg"
    path.write_bytes(data[:at + 40] + bytes([data[at + 40] ^ 0xFF]) + data[at + 41:])
    check(path, DEMUX)
    path.write_bytes(data + data)
    assert check(path) == DEMUX


def _ogg_packets(data: bytes, count: int) -> list[bytes]:
    """The first `count` packets of a single-stream Ogg file (RFC 3533 lacing)."""
    packets: list[bytes] = []
    current = b""
    pos = 0
    while len(packets) < count:
        nsegs = data[pos + 26]
        lacing = data[pos + 27:pos + 27 + nsegs]
        at = pos + 27 + nsegs
        for value in lacing:
            current += data[at:at + value]
            at += value
            if value < 255:
                packets.append(current)
                current = b""
        pos = at
    return packets[:count]


def test_vorbis_setup_check(corpus: Path) -> None:
    """The setup-header scan accepts a real setup header and rejects mangled ones."""
    setup = _ogg_packets(OGG.read_bytes(), 3)[2]
    assert setup[:7] == b"\x05vorbis"
    assert vorbis_setup_ok(setup)
    assert not vorbis_setup_ok(setup[:-1] + b"\x00")  # no framing bit
    assert not vorbis_setup_ok(b"\x05vorbis" + bytes(20))


# --------------------------------------------------------------------------- MP4


M4A = TAGGED / "03 - Muldjord - Internal Degeneration.m4a"


@pytest.mark.parametrize("case", ["aac-moov-last", "aac-moov-first", "alac", "alac-moov-first"])
def test_mp4_generated(tmp_path: Path, case: str) -> None:
    """AAC and ALAC written by FFmpeg's MP4 muxer, moov after and before mdat (edit lists)."""
    options = {"movflags": "faststart"} if "first" in case else None
    codec = "alac" if case.startswith("alac") else "aac"
    check(encode(tmp_path / "a.m4a", "ipod", codec, options=options), "mp4")


def test_mp4_retagged_and_appended(corpus: Path, tmp_path: Path) -> None:
    """mutagen moving moov/mdat for big cover art, then ID3v1 appended: same walked digest."""
    path = tmp_path / "a.m4a"
    shutil.copyfile(M4A, path)
    before = audio_hash(path)
    audio = MP4(path)
    audio["covr"] = [MP4Cover(BIG_ART, imageformat=MP4Cover.FORMAT_PNG)]
    audio["©cmt"] = [LONG_COMMENT]
    audio.save()
    check(path, "mp4")
    with open(path, "ab") as f:
        f.write(ID3V1)
    check(path, "mp4")
    assert audio_hash(path) == before


def test_mp4_unusual_files_are_demuxed(corpus: Path, tmp_path: Path) -> None:
    """Fragmented MP4, two audio tracks and a cut-off mdat are left to the demuxer."""
    frag = encode(tmp_path / "frag.m4a", "mp4", "aac",
                  options={"movflags": "frag_keyframe+empty_moov"})
    check(frag, DEMUX)
    two = tmp_path / "two.m4a"
    with av.open(str(M4A)) as src, av.open(str(two), "w", format="ipod") as out:
        streams = [out.add_stream_from_template(src.streams.audio[0]) for _ in range(2)]
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is None:
                continue
            for stream in streams:
                packet.stream = stream
                out.mux(packet)
    check(two, DEMUX)
    cut = tmp_path / "cut.m4a"
    data = encode(tmp_path / "moov-first.m4a", "ipod", "aac",
                  options={"movflags": "faststart"}).read_bytes()
    cut.write_bytes(data[:len(data) * 2 // 3])
    check(cut, DEMUX)


# --------------------------------------------------------------------------- walker API


def test_walker_refuses_unknown_and_reports_ranges(corpus: Path, tmp_path: Path) -> None:
    """audio_ranges names its walker and returns in-file ranges; unknown content is refused."""
    path = TAGGED / "odd" / "mono_22k.wav"
    with open(path, "rb") as f:
        size = path.stat().st_size
        walk = audio_ranges(FileView(f.fileno(), size), size, f.fileno())
    assert walk.method == "wav" and walk.data is None
    assert all(0 <= a < b <= size for a, b in walk.ranges)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00junk" * 100)
    with open(junk, "rb") as f, pytest.raises(Unsupported):
        audio_ranges(FileView(f.fileno(), 500), 500, f.fileno())


def test_file_view_reads_like_bytes(tmp_path: Path) -> None:
    """FileView slices, indexes and finds like bytes, across its read window."""
    data = bytes(range(256)) * 1000 + b"needle" + bytes(70000)
    path = tmp_path / "v.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        view = FileView(f.fileno(), len(data))
        assert view[100:200] == data[100:200]
        assert view[len(data) - 5:len(data) + 5] == data[-5:]
        assert view[300] == data[300] and view[-1] == data[-1]
        assert view.find(b"needle", 1000) == data.find(b"needle", 1000)
        assert view.find(b"needle", 0, 256000) == -1
        with pytest.raises(IndexError):
            view[len(data)]


def test_errors_match_the_demuxer(corpus: Path, tmp_path: Path) -> None:
    """Missing, empty, directory and non-audio inputs raise MediaError as before."""
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    text = tmp_path / "notes.ogg"
    text.write_text("OggS is not enough\n" * 10)
    for path in (tmp_path / "missing.flac", empty, tmp_path, text):
        with pytest.raises(MediaError):
            audio_hash(path)


# --------------------------------------------------------------------------- fuzzing


def _fuzz_sources() -> dict[str, bytes]:
    """Small files of every walked format, written once per test session."""
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        out["wav"] = write_wav(folder / "a.wav", tone(0.2, 8000, 2), rate=8000,
                               before=[LIST_INFO], after=[ID3_CHUNK]).read_bytes()
        out["aiff"] = _aiff(_pcm(seconds=0.1), before=ANNO)
        for name, fmt, codec, extra in [
            ("flac", "flac", "flac", {}),
            ("mp3", "mp3", "libmp3lame", {}),
            ("ogg", "ogg", "vorbis", {"stream_options": {"strict": "-2"}}),
            ("opus", "ogg", "libopus", {"rate": 48000}),
            ("m4a", "ipod", "aac", {}),
            ("alac", "ipod", "alac", {"seconds": 0.2}),
        ]:
            kwargs: dict[str, object] = {"seconds": 0.5, **extra}
            out[name] = encode(folder / f"a.{name}", fmt, codec, **kwargs).read_bytes()  # type: ignore[arg-type]
    return out


FUZZ: dict[str, bytes] = {}


@pytest.mark.parametrize("kind", ["wav", "aiff", "flac", "mp3", "ogg", "opus", "m4a", "alac"])
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_files_hash_like_the_demuxer(kind: str, data: st.DataObject) -> None:
    """Random truncations and byte corruptions: the walk equals the demuxer or steps aside."""
    if not FUZZ:
        FUZZ.update(_fuzz_sources())
    blob = bytearray(FUZZ[kind])
    if data.draw(st.booleans(), label="truncate"):
        blob = blob[:data.draw(st.integers(0, len(blob)), label="length")]
    else:
        head = data.draw(st.booleans(), label="in the first KiB")
        for _ in range(data.draw(st.integers(1, 4), label="corruptions")):
            at = data.draw(st.integers(0, min(len(blob), 1024 if head else len(blob)) - 1))
            blob[at] ^= data.draw(st.integers(1, 255))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz.{'m4a' if kind == 'alac' else kind}"
        path.write_bytes(bytes(blob))
        check(path)
