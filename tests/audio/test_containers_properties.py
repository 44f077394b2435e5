"""Property-based tests: the container walkers and the WAV reader on random and mutated files.

The contract under test:

- ``taperoom.audio.containers.audio_ranges`` either raises :class:`Unsupported`
  (the walker steps aside and the file is demuxed) or returns byte ranges inside
  the file whose bytes hash exactly like PyAV's demuxer
  (:func:`taperoom.audio.hashing.audio_hash_demuxed`); a file the demuxer cannot
  read is never walked. Nothing else may come out: no ``IndexError``,
  ``struct.error``, ``MemoryError``, and no endless loop.
- :func:`taperoom.audio.hashing.audio_hash_method` raises ``MediaError`` exactly
  when the demuxer does, and otherwise gives the demuxer's digest.
- :func:`taperoom.audio.wav.read_info` raises ``MediaError`` or describes whole
  frames inside the file that read back; where PyAV demuxes the file as PCM, they
  are the bytes FFmpeg hands out, in the same layout.

The files are random chunk lists, random bytes behind real magic numbers, and
real files (the shared corpus and files written by FFmpeg's muxers) mutated:
cut short, bytes flipped, size and count fields set to zero, huge or
negative-looking values, chunks, boxes, blocks and pages duplicated, dropped or
swapped, junk inserted. ``make test`` runs a fixed, bounded set of examples
(profile ``taperoom-ci``, derandomized); ``make fuzz`` sets ``TAPEROOM_FUZZ=1``
for a larger random run (profile ``taperoom-fuzz``).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import signal
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import av
import pytest
import xxhash
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from mutagen.ogg import OggPage

from taperoom.audio import wav
from taperoom.audio.containers import FileView, Unsupported, audio_ranges
from taperoom.audio.containers.mpeg import frame_size
from taperoom.audio.hashing import DEMUX, audio_hash_demuxed, audio_hash_method
from taperoom.errors import MediaError
from tests.audio.test_fasthash import encode
from tests.conftest import CORPUS
from tests.wavgen import BEXT, ID3, LIST_INFO, tone, write_wav

_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile("taperoom-ci", max_examples=100, deadline=None, derandomize=True,
                          database=None, suppress_health_check=_CHECKS, print_blob=True)
settings.register_profile("taperoom-fuzz", max_examples=2500, deadline=None, database=None,
                          suppress_health_check=_CHECKS, print_blob=True)
#: The settings of every property here: bounded in ``make test``, large in ``make fuzz``.
PROFILE = settings(settings.get_profile("taperoom-fuzz" if os.environ.get("TAPEROOM_FUZZ")
                                        else "taperoom-ci"))
#: Seconds one example may take before it counts as an endless loop (a real one
#: takes well under a second; the margin is for a loaded machine).
HANG = 60

TAGGED = CORPUS / "scanner" / "real_music_tagged"
SUFFIX = {"wav": ".wav", "aiff": ".aiff", "flac": ".flac", "mp3": ".mp3", "ogg": ".ogg",
          "mp4": ".m4a"}


# --------------------------------------------------------------------------- the checks


@contextlib.contextmanager
def watchdog(seconds: int = HANG) -> Iterator[None]:
    """Fail the example (instead of hanging the run) when it loops for `seconds`."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError(f"no answer within {seconds} s: an endless loop?")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def outcome(fn: Callable[[Path], object], path: Path) -> object:
    """`fn(path)`, or "MediaError" when it raises one (any other exception propagates)."""
    try:
        return fn(path)
    except MediaError:
        return "MediaError"


def walk(path: Path) -> tuple[str, list[tuple[int, int]]] | None:
    """The walker's method and ranges for `path`, or None when it steps aside."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size < 12:
            return None  # audio_hash demuxes such files without asking the walkers
        try:
            found = audio_ranges(FileView(fd, size), size, fd)
        except Unsupported:
            return None
        return found.method, found.ranges
    finally:
        os.close(fd)


def assert_hashes_agree(blob: bytes, path: Path) -> None:
    """Walker, public entry point and demuxer agree on `blob` (see the module docstring)."""
    path.write_bytes(blob)
    with watchdog():
        reference = outcome(audio_hash_demuxed, path)
        walked = walk(path)
        got = outcome(audio_hash_method, path)
    if walked is not None:
        method, ranges = walked
        assert ranges, f"{method} walker returned no ranges"
        assert all(0 <= a < b <= len(blob) for a, b in ranges), (method, ranges[:4])
        assert all(b <= c for (_, b), (c, _) in itertools.pairwise(ranges)), method
        h = xxhash.xxh3_128()
        for a, b in ranges:
            h.update(blob[a:b])
        assert reference != "MediaError", f"{method} walker took a file the demuxer refuses"
        assert h.hexdigest() == reference, f"{method} walker disagrees with the demuxer"
        assert got == (reference, method)
    elif reference == "MediaError":
        assert got == "MediaError"
    else:
        assert got == (reference, DEMUX)


def pcm_packets(path: Path) -> tuple[bytes, int, int, str] | None:
    """FFmpeg's view of a PCM file: packet bytes, channels, rate, codec; None if not PCM."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            codec = stream.codec_context
            if codec is None or not codec.name.startswith("pcm_"):
                return None
            data = b"".join(bytes(p) for p in container.demux(stream) if p.size)
            return data, codec.channels, codec.sample_rate, codec.name
    except (av.error.FFmpegError, OSError, ValueError):
        return None


#: FFmpeg's PCM decoder for each WAV layout the reader accepts.
PCM_CODECS = {(1, 8): "pcm_u8", (1, 16): "pcm_s16le", (1, 24): "pcm_s24le",
              (1, 32): "pcm_s32le", (3, 32): "pcm_f32le", (3, 64): "pcm_f64le"}


def assert_wav_reader_sound(blob: bytes, path: Path) -> None:
    """``read_info`` raises MediaError or describes frames that FFmpeg agrees with."""
    path.write_bytes(blob)
    with watchdog():
        try:
            info = wav.read_info(path)
        except MediaError:
            return
    assert info.block_align == info.channels * info.bits_per_sample // 8 > 0
    assert info.sample_rate > 0
    assert 12 <= info.data_offset <= len(blob)
    assert 0 <= info.data_size <= len(blob) - info.data_offset
    assert info.data_size % info.block_align == 0
    fd = os.open(path, os.O_RDONLY)
    try:
        frames = wav.read_frames(fd, info, 0, info.n_frames)
    finally:
        os.close(fd)
    assert frames.shape == (info.n_frames, info.channels)
    ffmpeg = pcm_packets(path)
    if ffmpeg is None:
        return  # FFmpeg does not demux it as PCM: the reader may still be more lenient
    data, channels, rate, codec = ffmpeg
    assert (channels, rate, codec) == (info.channels, info.sample_rate,
                                       PCM_CODECS[(info.format_tag, info.bits_per_sample)])
    raw = blob[info.data_offset:info.data_offset + info.data_size]
    assert data[:len(raw)] == raw, "the reader's frames are not the ones FFmpeg hands out"
    assert len(data) - len(raw) < info.block_align, "FFmpeg hands out frames the reader misses"


# --------------------------------------------------------------------------- source files


def _aiff_generated(folder: Path) -> bytes:
    return encode(folder / "a.aiff", "aiff", "pcm_s16be", seconds=0.2, rate=8000).read_bytes()


def _generated(kind: str, folder: Path) -> list[tuple[str, bytes]]:
    """Small files written by the project's WAV writer and FFmpeg's muxers."""
    if kind == "wav":
        y = tone(0.1, 8000, 2)
        return [
            ("gen-chunks.wav", write_wav(folder / "a.wav", y, rate=8000, before=[LIST_INFO, BEXT],
                                         after=[ID3]).read_bytes()),
            ("gen-ext24.wav", write_wav(folder / "b.wav", y, rate=8000, fmt="pcm24",
                                        extensible=True).read_bytes()),
            ("gen-float.wav", write_wav(folder / "c.wav", y, rate=8000,
                                        fmt="float32").read_bytes()),
        ]
    if kind == "aiff":
        return [("gen.aiff", _aiff_generated(folder))]
    made = {
        "flac": [("gen.flac", "flac", "flac", {})],
        "mp3": [("gen.mp3", "mp3", "libmp3lame", {})],
        "ogg": [("gen.ogg", "ogg", "vorbis", {"stream_options": {"strict": "-2"}}),
                ("gen.opus", "ogg", "libopus", {"rate": 48000})],
        "mp4": [("gen.m4a", "ipod", "aac", {}),
                ("gen-faststart.m4a", "ipod", "aac", {"options": {"movflags": "faststart"}}),
                ("gen-alac.m4a", "ipod", "alac", {"seconds": 0.2})],
    }[kind]
    out = []
    for name, fmt, codec, extra in made:
        kwargs: dict[str, object] = {"seconds": 0.4, **extra}
        out.append((name, encode(folder / name, fmt, codec, **kwargs).read_bytes()))  # type: ignore[arg-type]
    return out


#: Corpus files per container: real encoders, real tags and cover art.
REAL = {
    "wav": ["odd/mono_22k.wav", "odd/float32_96k.wav"],
    "aiff": ["07 - John Garner - Partita No. 1 in B minor: Double (BWV1002).aiff"],
    "flac": ["odd/UPPER.FLAC"],
    "mp3": ["01 - Muldjord - Armygeddon.mp3", "odd/cbr_8k_mono.mp3",
            "odd/junk_before_frames.mp3"],
    "ogg": ["04 - Muldjord - Mutilated Mime.ogg", "21 - LMMS demo - CapDan-ReggaetonTry.opus"],
    "mp4": ["03 - Muldjord - Internal Degeneration.m4a"],
}
_SOURCES: dict[str, list[tuple[str, bytes]]] = {}


def sources(kind: str) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of the real and generated files of one container, read once."""
    if kind not in _SOURCES:
        if not (CORPUS / "README.md").is_file():
            pytest.fail(f"test corpus not found at {CORPUS}")
        with tempfile.TemporaryDirectory() as tmp:
            found = [(name, (TAGGED / name).read_bytes()) for name in REAL[kind]]
            _SOURCES[kind] = found + _generated(kind, Path(tmp))
    return _SOURCES[kind]


# --------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class Field:
    """A number stored in the file: offset, width in bytes, and how it is stored."""

    at: int
    width: int
    order: str = "big"  # "big", "little" or "syncsafe" (ID3v2: 7 bits a byte)


@dataclass(frozen=True)
class Span:
    """One chunk, box, metadata block, page or frame: its bytes and its number fields."""

    start: int
    stop: int
    fields: tuple[Field, ...]


def _u(b: bytes, at: int, width: int, order: str = "big") -> int:
    return int.from_bytes(b[at:at + width], order)  # type: ignore[arg-type]


def _riff_spans(b: bytes) -> list[Span]:
    out = [Span(0, min(len(b), 12), (Field(4, 4, "little"),))]
    pos = 12
    while pos + 8 <= len(b) and len(out) < 64:
        size = _u(b, pos + 4, 4, "little")
        stop = min(len(b), pos + 8 + size + (size & 1))
        fields = [Field(pos + 4, 4, "little")]
        cid = b[pos:pos + 4]
        if cid == b"fmt ":  # channels, rate, byte rate, block align, bits, cbSize, valid bits
            fields += [Field(pos + 10, 2, "little"), Field(pos + 12, 4, "little"),
                       Field(pos + 16, 4, "little"), Field(pos + 20, 2, "little"),
                       Field(pos + 22, 2, "little"), Field(pos + 24, 2, "little"),
                       Field(pos + 32, 2, "little")]
        elif cid == b"ds64":  # RIFF size, data size, sample count
            fields += [Field(pos + 8, 8, "little"), Field(pos + 16, 8, "little"),
                       Field(pos + 24, 8, "little")]
        elif cid == b"cue ":
            fields.append(Field(pos + 8, 4, "little"))
        out.append(Span(pos, stop, tuple(f for f in fields if f.at + f.width <= len(b))))
        pos = stop
    return out


def _aiff_spans(b: bytes) -> list[Span]:
    out = [Span(0, min(len(b), 12), (Field(4, 4),))]
    pos = 12
    while pos + 8 <= len(b) and len(out) < 64:
        size = _u(b, pos + 4, 4)
        stop = min(len(b), pos + 8 + size + (size & 1))
        fields = [Field(pos + 4, 4)]
        cid = b[pos:pos + 4]
        if cid == b"COMM":  # channels, frames, bits, rate exponent
            fields += [Field(pos + 8, 2), Field(pos + 10, 4), Field(pos + 14, 2),
                       Field(pos + 16, 2)]
        elif cid == b"SSND":  # offset, block size
            fields += [Field(pos + 8, 4), Field(pos + 12, 4)]
        out.append(Span(pos, stop, tuple(f for f in fields if f.at + f.width <= len(b))))
        pos = stop
    return out


_MP4_CONTAINERS = {b"moov": 0, b"trak": 0, b"mdia": 0, b"minf": 0, b"stbl": 0, b"edts": 0,
                   b"dinf": 0, b"udta": 0, b"ilst": 0, b"wave": 0, b"meta": 4, b"stsd": 8,
                   b"dref": 8, b"mp4a": 28, b"alac": 28}
#: Full boxes whose entry count (and first entries) are worth mutating.
_MP4_TABLES = {b"stco", b"co64", b"stsz", b"stts", b"stsc", b"elst", b"stsd", b"dref"}


def _mp4_spans(b: bytes, start: int = 0, stop: int | None = None, depth: int = 0,
               out: list[Span] | None = None) -> list[Span]:
    out = [] if out is None else out
    stop = len(b) if stop is None else stop
    pos = start
    while pos + 8 <= stop and len(out) < 300:
        size, kind, header = _u(b, pos, 4), b[pos + 4:pos + 8], 8
        fields = [Field(pos, 4)]
        if size == 1 and pos + 16 <= stop:
            size, header = _u(b, pos + 8, 8), 16
            fields.append(Field(pos + 8, 8))
        elif size == 0:
            size = stop - pos
        if size < header or pos + size > stop:
            break
        body = pos + header
        if kind in _MP4_TABLES:  # version/flags, entry count, first entries
            fields += [Field(body, 1), Field(body + 4, 4), Field(body + 8, 4),
                       Field(body + 12, 4)]
        elif kind in (b"mdhd", b"mvhd"):  # version, time scale, duration
            fields += [Field(body, 1), Field(body + 12, 4), Field(body + 16, 4)]
        elif kind == b"esds":
            fields += [Field(body + 5, 1), Field(body + 10, 1), Field(body + 14, 1)]
        out.append(Span(pos, pos + size, tuple(f for f in fields if f.at + f.width <= stop)))
        if kind in _MP4_CONTAINERS and depth < 8:
            _mp4_spans(b, body + _MP4_CONTAINERS[kind], pos + size, depth + 1, out)
        pos += size
    return out


def _flac_spans(b: bytes) -> list[Span]:
    out = [Span(0, min(4, len(b)), ())]
    pos = 4
    while pos + 4 <= len(b) and len(out) < 64:
        length = _u(b, pos + 1, 3)
        fields = [Field(pos, 1), Field(pos + 1, 3)]
        if b[pos] & 0x7F == 0:  # STREAMINFO: block sizes, frame sizes, rate/channels, samples
            fields += [Field(pos + 4, 2), Field(pos + 6, 2), Field(pos + 8, 3),
                       Field(pos + 11, 3), Field(pos + 14, 3), Field(pos + 17, 4)]
        stop = min(len(b), pos + 4 + length)
        out.append(Span(pos, stop, tuple(f for f in fields if f.at + f.width <= len(b))))
        if b[pos] & 0x80:
            pos = stop
            break
        pos = stop
    # Frames: from one sync code to the next (the first few and the last few).
    syncs = []
    at = b.find(b"\xff\xf8", pos)
    while at >= 0 and len(syncs) < 40:
        syncs.append(at)
        at = b.find(b"\xff\xf8", at + 2)
    tail = b.rfind(b"\xff\xf8")
    if tail > (syncs[-1] if syncs else len(b)):
        syncs.append(tail)
    for a, c in zip(syncs, [*syncs[1:], len(b)], strict=False):
        out.append(Span(a, c, tuple(Field(a + i, 1) for i in (1, 2, 3, 4) if a + i < len(b))))
    return out


def _ogg_spans(b: bytes) -> list[Span]:
    out = []
    pos = 0
    while pos + 27 <= len(b) and b[pos:pos + 4] == b"OggS" and len(out) < 200:
        nsegs = b[pos + 26]
        stop = pos + 27 + nsegs + sum(b[pos + 27:pos + 27 + nsegs])
        fields = (Field(pos + 4, 1), Field(pos + 5, 1), Field(pos + 6, 8, "little"),
                  Field(pos + 14, 4, "little"), Field(pos + 18, 4, "little"),
                  Field(pos + 26, 1), Field(pos + 27, 1), Field(pos + 26 + nsegs, 1))
        out.append(Span(pos, min(stop, len(b)),
                        tuple(f for f in fields if f.at + f.width <= len(b))))
        pos = stop
    return out


def _mp3_spans(b: bytes) -> list[Span]:
    out = []
    pos = 0
    if b[:3] == b"ID3" and len(b) >= 10:
        pos = 10 + load(b, Field(6, 4, "syncsafe"))
        out.append(Span(0, min(pos, len(b)), (Field(3, 1), Field(5, 1), Field(6, 4, "syncsafe"))))
    pos = b.find(b"\xff", pos)
    frames = 0
    while pos >= 0 and pos + 4 <= len(b) and frames < 120:
        size = frame_size(_u(b, pos, 4))
        if size < 4:
            pos = b.find(b"\xff", pos + 1)
            continue
        fields = [Field(pos + 1, 1), Field(pos + 2, 1), Field(pos + 3, 1)]
        for tag in (b"Xing", b"Info"):
            at = b.find(tag, pos, min(pos + 64, len(b)))
            if at >= 0:  # flags, frame count, byte count
                fields += [Field(at + 4, 4), Field(at + 8, 4), Field(at + 12, 4)]
        out.append(Span(pos, min(pos + size, len(b)),
                        tuple(f for f in fields if f.at + f.width <= len(b))))
        pos += size
        frames += 1
    return out


SPANS: dict[str, Callable[[bytes], list[Span]]] = {
    "wav": _riff_spans, "aiff": _aiff_spans, "mp4": _mp4_spans, "flac": _flac_spans,
    "ogg": _ogg_spans, "mp3": _mp3_spans}


# --------------------------------------------------------------------------- mutations


_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def ogg_crc(page: bytes) -> bytes:
    """The CRC field of an Ogg page (RFC 3533 section 6: CRC-32, polynomial 0x04C11DB7,
    MSB first, initial value 0, no final XOR), computed with zlib on bit-reversed bytes."""
    zeroed = page[:22] + bytes(4) + page[26:]
    crc = zlib.crc32(zeroed.translate(_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return crc.to_bytes(4, "big").translate(_REVERSED)


def recrc(b: bytes) -> bytes:
    """Every whole Ogg page of `b` with its CRC recomputed (mutations then reach the walker)."""
    out = bytearray(b)
    for span in _ogg_spans(b):
        if span.stop - span.start >= 27 and span.stop <= len(b):
            out[span.start + 22:span.start + 26] = ogg_crc(bytes(out[span.start:span.stop]))
    return bytes(out)


def field_value(field: Field, original: int, choice: int, size: int) -> int:
    """The value a mutation writes into `field`: extremes, neighbours, or file-relative."""
    bits = 28 if field.order == "syncsafe" else 8 * field.width
    top = (1 << bits) - 1
    values = [0, 1, 2, 3, 4, 7, 8, 0x7F, 0x80, 0xFF, top >> 1, (top >> 1) + 1, top, top - 1,
              original + 1, original - 1, original * 2, original // 2, size, size - field.at,
              size - field.at - 8, original + 0x10000]
    return values[choice % len(values)] & top


def store(b: bytearray, field: Field, value: int) -> None:
    if field.order == "syncsafe":
        raw = bytes([(value >> 21) & 0x7F, (value >> 14) & 0x7F, (value >> 7) & 0x7F,
                     value & 0x7F])
    else:
        raw = value.to_bytes(field.width, field.order)  # type: ignore[arg-type]
    b[field.at:field.at + field.width] = raw


def load(b: bytes, field: Field) -> int:
    if field.order == "syncsafe":
        r = b[field.at:field.at + 4]
        return (r[0] & 0x7F) << 21 | (r[1] & 0x7F) << 14 | (r[2] & 0x7F) << 7 | r[3] & 0x7F
    return _u(b, field.at, field.width, field.order)


Mutation = tuple[object, ...]


def mutate(kind: str, blob: bytes, plan: list[Mutation]) -> bytes:
    """Apply the mutations of `plan` in order (indices are taken modulo what exists)."""
    b = blob
    for op, *args in plan:
        spans = SPANS[kind](b)
        n = len(b)
        ints = [int(a) for a in args if isinstance(a, int)]  # type: ignore[call-overload]
        span = spans[ints[0] % len(spans)] if spans and ints else None
        if op == "cut" and n:
            b = b[:ints[0] * n // 65536]
        elif op == "cut-span" and span is not None:
            b = b[:min(n, span.start + ints[1] % max(1, span.stop - span.start + 16))]
        elif op == "flip" and n:
            at = ints[0] * n // 65536
            b = b[:at] + bytes([b[at] ^ (ints[1] or 1)]) + b[at + 1:]
        elif op == "flip-span" and span is not None and span.stop > span.start:
            at = span.start + ints[1] % min(32, span.stop - span.start)
            b = b[:at] + bytes([b[at] ^ (ints[2] or 1)]) + b[at + 1:]
        elif op == "field" and span is not None and span.fields:
            field = span.fields[ints[1] % len(span.fields)]
            out = bytearray(b)
            store(out, field, field_value(field, load(b, field), ints[2], n))
            b = bytes(out)
        elif op == "dup" and span is not None:
            b = b[:span.stop] + b[span.start:span.stop] + b[span.stop:]
        elif op == "drop" and span is not None:
            b = b[:span.start] + b[span.stop:]
        elif op == "swap" and span is not None:
            i = spans.index(span)
            if i + 1 < len(spans) and spans[i + 1].start == span.stop:
                nxt = spans[i + 1]
                b = b[:span.start] + b[nxt.start:nxt.stop] + b[span.start:span.stop] + \
                    b[nxt.stop:]
        elif op == "insert" and span is not None:
            junk = args[-1]
            assert isinstance(junk, bytes)
            b = b[:span.start] + junk + b[span.start:]
        elif op == "append":
            junk = args[-1]
            assert isinstance(junk, bytes)
            b = b + junk
        elif op == "recrc" and kind == "ogg":
            b = recrc(b)
    return b


_index = st.integers(0, 65535)
_JUNK = st.one_of(st.binary(min_size=1, max_size=64),
                  st.sampled_from([b"\xff\xfb\x90\x00", b"OggS\x00", b"fLaC", b"RIFF", b"data",
                                   b"ID3\x04\x00\x00\x00\x00\x00\x00", b"TAG" + bytes(125),
                                   bytes(8), b"\xff" * 16, b"\x00\x00\x00\x08free"]))
MUTATION = st.one_of(
    st.tuples(st.just("cut"), _index),
    st.tuples(st.just("cut-span"), _index, _index),
    st.tuples(st.just("flip"), _index, st.integers(1, 255)),
    st.tuples(st.just("flip-span"), _index, _index, st.integers(1, 255)),
    st.tuples(st.just("field"), _index, _index, _index),
    st.tuples(st.just("field"), _index, _index, _index),
    st.tuples(st.just("dup"), _index),
    st.tuples(st.just("drop"), _index),
    st.tuples(st.just("swap"), _index),
    st.tuples(st.just("insert"), _index, _JUNK),
    st.tuples(st.just("append"), _JUNK),
)


def plans(kind: str) -> st.SearchStrategy[tuple[int, list[Mutation]]]:
    """A source file (index into :func:`sources`) and one to four mutations of it."""
    steps = st.lists(MUTATION, min_size=1, max_size=4)
    if kind == "ogg":  # without new CRCs FFmpeg skips every mutated page
        steps = steps.flatmap(lambda p: st.sampled_from([p, [*p, ("recrc",)]]))
    return st.tuples(st.integers(0, 7), steps)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the files of every example of this module."""
    return tmp_path_factory.mktemp("properties")


def source_named(kind: str, name: str) -> bytes:
    """The bytes of the source file `name` of container `kind`."""
    return dict(sources(kind))[name]


def run_plan(kind: str, workdir: Path, plan: tuple[int, list[Mutation]]) -> None:
    source_index, steps = plan
    found = sources(kind)
    name, blob = found[source_index % len(found)]
    note(f"{kind} source {name!r}, mutations {steps!r}")
    assert_hashes_agree(mutate(kind, blob, steps), workdir / f"mutated{SUFFIX[kind]}")


# --------------------------------------------------------------------------- mutated files


@pytest.mark.slow
@PROFILE
@given(plan=plans("wav"))
def test_mutated_wav_hashes_like_the_demuxer(workdir: Path,
                                             plan: tuple[int, list[Mutation]]) -> None:
    """WAV and RF64 files with mutated chunks: walked like the demuxer, or demuxed."""
    run_plan("wav", workdir, plan)


@pytest.mark.slow
@PROFILE
@given(plan=plans("aiff"))
def test_mutated_aiff_hashes_like_the_demuxer(workdir: Path,
                                              plan: tuple[int, list[Mutation]]) -> None:
    """AIFF files with mutated chunks: walked like the demuxer, or demuxed."""
    run_plan("aiff", workdir, plan)


@pytest.mark.slow
@PROFILE
@given(plan=plans("flac"))
def test_mutated_flac_hashes_like_the_demuxer(workdir: Path,
                                              plan: tuple[int, list[Mutation]]) -> None:
    """FLAC files with mutated metadata blocks and frames: walked like the demuxer, or demuxed."""
    run_plan("flac", workdir, plan)


@pytest.mark.slow
@PROFILE
@given(plan=plans("mp3"))
def test_mutated_mp3_hashes_like_the_demuxer(workdir: Path,
                                             plan: tuple[int, list[Mutation]]) -> None:
    """MPEG audio with mutated ID3v2 tags, frame headers and Xing frames."""
    run_plan("mp3", workdir, plan)


@pytest.mark.slow
@PROFILE
@given(plan=plans("ogg"))
def test_mutated_ogg_hashes_like_the_demuxer(workdir: Path,
                                             plan: tuple[int, list[Mutation]]) -> None:
    """Ogg Vorbis and Opus with mutated pages (CRCs recomputed or not)."""
    run_plan("ogg", workdir, plan)


@pytest.mark.slow
@PROFILE
@given(plan=plans("mp4"))
def test_mutated_mp4_hashes_like_the_demuxer(workdir: Path,
                                             plan: tuple[int, list[Mutation]]) -> None:
    """MP4 with mutated box sizes, sample tables, edit lists and sample entries."""
    run_plan("mp4", workdir, plan)


# --------------------------------------------------------------------------- random files


MAGIC = [b"RIFF\x24\x00\x00\x00WAVE", b"RF64\xff\xff\xff\xffWAVEds64", b"FORM\x00\x00\x10\x00AIFF",
         b"FORM\x7f\xff\xff\xffAIFC", b"fLaC\x00\x00\x00\x22", b"OggS\x00\x02",
         b"ID3\x04\x00\x00\x00\x00\x00\x00", b"\xff\xfb\x90\x64", b"\xff\xf3\x28\xc4",
         b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", b""]


@pytest.mark.slow
@PROFILE
@given(head=st.sampled_from(MAGIC), body=st.binary(max_size=2048))
def test_random_bytes_hash_like_the_demuxer(workdir: Path, head: bytes, body: bytes) -> None:
    """Random bytes behind every walker's magic number: MediaError or the demuxer's digest."""
    assert_hashes_agree(head + body, workdir / "random.bin")


#: Valid ``fmt `` bodies: PCM 8/16/24 bit, float, extensible, and an IMA ADPCM one.
FMT_BODIES = [
    struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8),
    struct.pack("<HHIIHH", 1, 2, 8000, 32000, 4, 16),
    struct.pack("<HHIIHH", 1, 2, 44100, 264600, 6, 24),
    struct.pack("<HHIIHHH", 3, 1, 8000, 32000, 4, 32, 0),
    struct.pack("<HHIIHHHHI", 0xFFFE, 2, 8000, 48000, 6, 24, 22, 24, 3) + b"\x01\x00"
    + bytes.fromhex("000000001000800000aa00389b71"),
    struct.pack("<HHIIHHHH", 0x11, 1, 8000, 4055, 256, 4, 2, 505),
]
CHUNK_IDS = [b"fmt ", b"data", b"LIST", b"list", b"bext", b"cue ", b"ds64", b"JUNK", b"id3 ",
             b"ID3 ", b"fact", b"SMV0", b"XMA2", b"\x00\x00\x00\x00"]
SIZES = st.one_of(st.none(), st.sampled_from([0, 1, 3, 4, 8, 16, 0x7FFFFFFF, 0x80000000,
                                               0xFFFFFFFE, 0xFFFFFFFF]),
                  st.integers(0, 0xFFFFFFFF))


@st.composite
def riff_files(draw: st.DrawFn) -> bytes:
    """A RIFF/RF64 WAVE file of random chunks: real ids, valid or random bodies and sizes."""
    rf64 = draw(st.booleans())
    chunks = b""
    if rf64:
        ds = struct.pack("<qqqI", draw(st.integers(-1, 1 << 40)), draw(st.integers(-1, 1 << 40)),
                         draw(st.integers(0, 1 << 40)), 0)
        chunks += b"ds64" + struct.pack("<I", draw(st.sampled_from([28, 24, 0, 4096]))) + ds
    for _ in range(draw(st.integers(1, 6))):
        cid = draw(st.sampled_from(CHUNK_IDS) | st.binary(min_size=4, max_size=4))
        if cid == b"fmt ":
            body = draw(st.sampled_from(FMT_BODIES) | st.binary(max_size=48))
        elif cid == b"data":
            body = draw(st.binary(max_size=2048))
        elif cid == b"bext":
            body = draw(st.sampled_from([bytes(602), bytes(10)]))
        elif cid == b"cue ":
            body = struct.pack("<I", draw(st.integers(0, 1 << 31))) + bytes(24)
        else:
            body = draw(st.binary(max_size=64))
        size = draw(SIZES)
        chunks += cid + struct.pack("<I", len(body) if size is None else size) + body
        if len(body) & 1 and draw(st.booleans()):
            chunks += b"\x00"
    riff = draw(st.sampled_from([len(chunks) + 4, 0, 0xFFFFFFFF]))
    return (b"RF64" if rf64 else b"RIFF") + struct.pack("<I", riff) + b"WAVE" + chunks


@pytest.mark.slow
@PROFILE
@given(blob=riff_files())
def test_random_riff_chunks_hash_like_the_demuxer(workdir: Path, blob: bytes) -> None:
    """WAV files of random chunk lists: MediaError or the demuxer's digest."""
    assert_hashes_agree(blob, workdir / "chunks.wav")


@st.composite
def aiff_files(draw: st.DrawFn) -> bytes:
    """An AIFF/AIFF-C file of random chunks with valid or random COMM and SSND bodies."""
    aifc = draw(st.booleans())
    chunks = b""
    for _ in range(draw(st.integers(1, 5))):
        cid = draw(st.sampled_from([b"COMM", b"SSND", b"FVER", b"ID3 ", b"ANNO", b"APCM",
                                    b"CHAN", b"\x00\x00\x00\x00"]))
        if cid == b"COMM":
            exponent = draw(st.sampled_from([16383 + 13, 16383 + 15, 0, 0x7FFF, 16383 + 80]))
            body = struct.pack(">hIhHQ", draw(st.integers(-2, 8)),
                               draw(st.integers(0, (1 << 32) - 1)),
                               draw(st.sampled_from([8, 16, 24, 32, 0, 65, 12])), exponent,
                               draw(st.sampled_from([0xFA00000000000000, 0, 1 << 63])))
            if aifc:
                body += draw(st.sampled_from([b"NONE", b"sowt", b"fl64", b"ima4", b"in24"]))
        elif cid == b"SSND":
            body = struct.pack(">II", draw(st.integers(0, 64) | st.integers(0, 0xFFFFFFFF)), 0)
            body += draw(st.binary(max_size=1024))
        elif cid == b"FVER":
            body = struct.pack(">I", draw(st.sampled_from([0xA2805140, 0])))
        else:
            body = draw(st.binary(max_size=32))
        size = draw(SIZES)
        chunks += cid + struct.pack(">I", len(body) if size is None else size) + body
    form = draw(st.sampled_from([len(chunks) + 4, 0, 0x7FFFFFFF, 0xFFFFFFFF]))
    return b"FORM" + struct.pack(">I", form) + (b"AIFC" if aifc else b"AIFF") + chunks


@pytest.mark.slow
@PROFILE
@given(blob=aiff_files())
def test_random_aiff_chunks_hash_like_the_demuxer(workdir: Path, blob: bytes) -> None:
    """AIFF files of random chunk lists: MediaError or the demuxer's digest."""
    assert_hashes_agree(blob, workdir / "chunks.aiff")


# --------------------------------------------------------------------------- the WAV reader


@pytest.mark.slow
@PROFILE
@given(blob=riff_files())
def test_wav_reader_on_random_chunks(workdir: Path, blob: bytes) -> None:
    """read_info on random chunk lists: MediaError, or frames FFmpeg agrees with."""
    assert_wav_reader_sound(blob, workdir / "reader.wav")


@pytest.mark.slow
@PROFILE
@given(plan=plans("wav"))
def test_wav_reader_on_mutated_files(workdir: Path, plan: tuple[int, list[Mutation]]) -> None:
    """read_info on mutated real and generated WAVs: MediaError, or frames FFmpeg agrees with."""
    source_index, steps = plan
    found = sources("wav")
    blob = mutate("wav", found[source_index % len(found)][1], steps)
    assert_wav_reader_sound(blob, workdir / "reader-mutated.wav")


# --------------------------------------------------------------------------- the helpers


def test_mutation_helpers_are_sound() -> None:
    """The Ogg CRC helper reproduces real pages, and every span lies in its file."""
    for kind in SPANS:
        for name, blob in sources(kind):
            spans = SPANS[kind](blob)
            assert spans, name
            assert all(0 <= s.start <= s.stop <= len(blob) for s in spans), name
            assert all(f.at + f.width <= len(blob) for s in spans for f in s.fields), name
    for _name, blob in sources("ogg"):
        assert recrc(blob) == blob


# --------------------------------------------------------------------------- found by fuzzing
# Each of these failed before its fix; they keep the failing examples of the
# properties above as explicit cases.


def _riff(chunks: list[tuple[bytes, bytes]], magic: bytes = b"RIFF") -> bytes:
    body = b"WAVE" + b"".join(cid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)
                              for cid, data in chunks)
    return magic + struct.pack("<I", len(body)) + body


PCM8 = struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8)
PCM16 = struct.pack("<HHIIHH", 1, 2, 8000, 32000, 4, 16)


def _ds64(data_size: int, size: int = 28) -> tuple[bytes, bytes]:
    return b"ds64", struct.pack("<qqqI", 0, data_size, data_size, 0)[:size]


def test_aiff_cut_inside_the_ssnd_header(workdir: Path) -> None:
    """An AIFF file cut inside the SSND offset field: the walker steps aside (was struct.error)."""
    blob = source_named("aiff", "gen.aiff")
    at = blob.find(b"SSND")
    assert_hashes_agree(blob[:at + 10], workdir / "cut.aiff")


def _ogg_packets(blob: bytes) -> tuple[list[bytes], list[tuple[int, int]]]:
    """Packets of a one-stream Ogg file, and (granule, serial) of its pages."""
    src = io.BytesIO(blob)
    pages = []
    while src.tell() < len(blob):
        pages.append(OggPage(src))
    return OggPage.to_packets(pages), [(p.position, p.serial) for p in pages]


def _repage(packets: list[bytes], serial: int, granule: int, first: int, size: int) -> bytes:
    """Ogg pages of `packets`: the first `first` ones as they were, the rest in pages of
    `size` payload bytes (packets split across pages), every page with a new CRC."""
    pages = [page for i, packet in enumerate(packets[:first])
             for page in OggPage.from_packets([packet], sequence=i)]
    pages += OggPage.from_packets(packets[first:], sequence=first, default_size=size,
                                  wiggle_room=0)
    out = b""
    for i, page in enumerate(pages):
        page.serial, page.first, page.last = serial, i == 0, i == len(pages) - 1
        page.position = 0 if i < first else granule
        out += page.write()
    return out


@pytest.mark.parametrize("where", ["dup-comment-page", "head-mid-stream", "tags-across-pages"])
def test_opus_header_packets_among_the_audio(workdir: Path, where: str) -> None:
    """Packets starting with ``OpusHead``/``OpusTags`` after the headers: FFmpeg drops a valid
    comment packet and fails on others; the walker steps aside (it hashed them as audio)."""
    blob = source_named("ogg", "gen.opus")
    if where == "dup-comment-page":
        blob = mutate("ogg", blob, [("dup", 1)])
    else:
        packets, pages = _ogg_packets(blob)
        k = len(packets) // 2
        magic = b"OpusHead" if where == "head-mid-stream" else b"OpusTags"
        packets[k] = magic + packets[k][8:]
        # across pages: the packet starts 3 bytes before the end of a page
        size = sum(len(p) for p in packets[2:k]) + 3 if where == "tags-across-pages" else 4000
        blob = _repage(packets, pages[0][1], pages[-1][0], 2, size)
    assert_hashes_agree(blob, workdir / "header.opus")


def test_mp4_track_before_the_movie_header(workdir: Path) -> None:
    """``trak`` before ``mvhd``: FFmpeg reads the edit list with a movie time scale of 0 and
    hands out nothing; the walker steps aside (it hashed the samples)."""
    blob = source_named("mp4", "gen-alac.m4a")
    spans = _mp4_spans(blob)
    mvhd = next(i for i, s in enumerate(spans) if blob[s.start + 4:s.start + 8] == b"mvhd")
    assert blob[spans[mvhd + 1].start + 4:spans[mvhd + 1].start + 8] == b"trak"
    assert_hashes_agree(mutate("mp4", blob, [("swap", mvhd)]), workdir / "order.m4a")


@pytest.mark.parametrize("case", ["size-field-disagrees", "ds64-says-empty", "riff-with-ds64",
                                  "two-fmt-chunks"])
def test_wav_reader_agrees_with_ffmpeg(workdir: Path, case: str) -> None:
    """RF64 sizes come from ds64 (EBU Tech 3306), only in RF64 files, and the first fmt
    chunk counts, as in FFmpeg's wav demuxer (the reader disagreed on each)."""
    pcm = bytes(range(64))
    blob = {
        "size-field-disagrees": _riff([_ds64(40), (b"fmt ", PCM8), (b"data", pcm)], b"RF64"),
        "ds64-says-empty": _riff([_ds64(0), (b"fmt ", PCM8), (b"data", b""), (b"fmt ", PCM8)],
                                 b"RF64"),
        "riff-with-ds64": _riff([_ds64(8), (b"fmt ", PCM8), (b"data", pcm)])[:-64]
        .replace(b"data\x40\x00\x00\x00", b"data\xff\xff\xff\xff") + pcm,
        "two-fmt-chunks": _riff([(b"fmt ", PCM16), (b"fmt ", PCM8), (b"data", pcm)]),
    }[case]
    path = workdir / "agree.wav"
    assert_wav_reader_sound(blob, path)
    assert pcm_packets(path) is not None  # FFmpeg reads each of them: the check compared


@pytest.mark.parametrize("case", ["two-data-chunks", "rf64-without-ds64", "short-ds64",
                                  "negative-ds64-size"])
def test_wav_reader_refuses_ambiguous_files(workdir: Path, case: str) -> None:
    """Two data chunks (FFmpeg plays the last, other readers the first) and broken RF64
    headers (FFmpeg refuses them) are a MediaError."""
    pcm = bytes(range(64))
    blob = {
        "two-data-chunks": _riff([(b"fmt ", PCM8), (b"data", pcm), (b"data", pcm[::-1])]),
        "rf64-without-ds64": _riff([(b"fmt ", PCM8), (b"data", pcm)], b"RF64"),
        "short-ds64": _riff([_ds64(64, 16), (b"fmt ", PCM8), (b"data", pcm)], b"RF64"),
        "negative-ds64-size": _riff([_ds64(-64), (b"fmt ", PCM8), (b"data", pcm)], b"RF64"),
    }[case]
    path = workdir / "ambiguous.wav"
    path.write_bytes(blob)
    with pytest.raises(MediaError):
        wav.read_info(path)


@pytest.mark.parametrize("case", ["id3-chunk-size-odd", "last-chunk-without-pad-byte",
                                  "chunk-longer-than-the-file"])
def test_aiff_chunk_running_past_the_end(workdir: Path, case: str) -> None:
    """A chunk other than SSND whose end (with its pad byte) lies past the end of the file:
    FFmpeg's header walk then fails on some of them; the walker steps aside (it hashed)."""
    blob = source_named("aiff", REAL["aiff"][0])
    id3 = blob.rfind(b"ID3 ")
    assert id3 > 0 and blob[id3 + 8:id3 + 11] == b"ID3"
    if case == "id3-chunk-size-odd":  # the tag itself runs to the end of the file
        blob = blob[:id3 + 4] + struct.pack(">I", 127) + blob[id3 + 8:]
    elif case == "last-chunk-without-pad-byte":
        blob = blob[:id3] + b"ANNO" + struct.pack(">I", 5) + b"notes"
    else:
        blob = blob[:id3] + b"ANNO" + struct.pack(">I", 106) + b"notes!"
    assert_hashes_agree(blob, workdir / "past-the-end.aiff")


def test_aiff_frame_count_ffmpeg_reads_as_negative(workdir: Path) -> None:
    """A COMM frame count of 2**31 or more: FFmpeg reads it into an int and fails; the walker
    steps aside (it hashed the file)."""
    blob = source_named("aiff", "gen.aiff")
    comm = blob.find(b"COMM")
    frames = comm + 8 + 2  # after the channel count
    blob = blob[:frames] + struct.pack(">I", 0x80000000) + blob[frames + 4:]
    assert_hashes_agree(blob, workdir / "frames.aiff")


def _ogg_packet_starts(blob: bytes) -> list[int]:
    """File offsets of the first byte of every non-empty packet of a one-stream Ogg file."""
    starts, open_packet = [], False
    for span in _ogg_spans(blob):
        nsegs = blob[span.start + 26]
        pos = span.start + 27 + nsegs
        for value in blob[span.start + 27:span.start + 27 + nsegs]:
            if not open_packet and value:
                starts.append(pos)
            pos += value
            open_packet = value == 255
    return starts


@pytest.mark.parametrize("first", [1, 3, 5])
@pytest.mark.parametrize("where", ["middle", "near-the-end"])
def test_vorbis_audio_packet_starting_like_a_header(workdir: Path, first: int, where: str
                                                     ) -> None:
    """An audio packet whose first byte is a Vorbis header type (1, 3, 5): FFmpeg fails on it
    or drops it (with other packets, for 5); the walker steps aside."""
    blob = source_named("ogg", REAL["ogg"][0])
    starts = _ogg_packet_starts(blob)
    at = starts[len(starts) // 2] if where == "middle" else starts[-3]
    blob = recrc(blob[:at] + bytes([first]) + blob[at + 1:])
    assert_hashes_agree(blob, workdir / "header-like.ogg")


def test_mp4_data_reference_entry_of_size_zero(workdir: Path) -> None:
    """A ``url `` entry of ``dref`` with size 0 (to the end of its parent): FFmpeg wants at
    least 12 and fails; the walker steps aside (it read the box to the end of dref)."""
    blob = source_named("mp4", REAL["mp4"][0])
    dref = blob.find(b"dref")
    entry = dref + 4 + 8  # after the full-box header and the entry count
    assert blob[entry + 4:entry + 8] == b"url "
    assert_hashes_agree(blob[:entry] + bytes(4) + blob[entry + 4:], workdir / "dref.m4a")


@pytest.mark.parametrize("form_size", [0x193C, 0x7FFFFFFF])
def test_aiff_cut_short_with_more_chunks_counted(workdir: Path, form_size: int) -> None:
    """SSND cut short while the FORM size counts more chunks after it: FFmpeg's walk goes on
    past the end of the file and fails on small files; the walker steps aside (it hashed)."""
    blob = source_named("aiff", "gen.aiff")
    blob = blob[:4] + struct.pack(">I", form_size) + blob[8:3000]
    assert_hashes_agree(blob, workdir / "cut-counted.aiff")


def test_mp4_sample_entry_of_size_zero(workdir: Path) -> None:
    """An ``mp4a`` sample entry with size 0: FFmpeg's stsd reader wants at least 8 and fails;
    the walker steps aside (it read the entry to the end of stsd)."""
    blob = source_named("mp4", REAL["mp4"][0])
    entry = blob.find(b"mp4a") - 4
    assert_hashes_agree(blob[:entry] + bytes(4) + blob[entry + 4:], workdir / "entry.m4a")


def test_aiff_cut_short_ssnd_that_ends_the_form_is_walked(workdir: Path) -> None:
    """The common cut-short file (FORM ends with SSND) is still walked, like the demuxer."""
    blob = source_named("aiff", "gen.aiff")[:3000]  # FORM's size still counts the whole SSND
    path = workdir / "cut.aiff"
    assert_hashes_agree(blob, path)
    walked = walk(path)
    assert walked is not None and walked[0] == "aiff"


def test_aiff_two_comm_chunks(workdir: Path) -> None:
    """Two COMM chunks that disagree: FFmpeg keeps the first one's block alignment and fails
    with the second one's channels; the walker steps aside (it used the last COMM)."""
    blob = source_named("aiff", "gen.aiff")
    comm = blob.find(b"COMM")
    first = blob[comm:comm + 26]
    odd = first[:8] + struct.pack(">H", 258) + first[10:]  # 258 channels
    assert_hashes_agree(blob[:comm] + odd + blob[comm:], workdir / "two-comm.aiff")


@pytest.mark.parametrize("box", [bytes(4) + b"dref", bytes(4) + b"stsd", bytes(4) + b"tkhd",
                                 b"\0\0\0\x18sidx" + bytes(16), bytes(4) + b"uuid"])
def test_mp4_unexpected_box_at_the_top_level(workdir: Path, box: bytes) -> None:
    """A box FFmpeg parses wherever it meets it, after moov (a sample-table box changes or
    breaks the last track, sidx and a short uuid fail): the walker steps aside (it ignored
    every top-level box but moov and mdat)."""
    blob = source_named("mp4", REAL["mp4"][0])
    assert_hashes_agree(blob + box, workdir / "top-level.m4a")


@pytest.mark.parametrize("case", ["mdia-in-moov", "stsd-in-moov", "moov-to-the-end"])
def test_mp4_unexpected_box_inside_the_movie(workdir: Path, case: str) -> None:
    """A sample-table box where it does not belong (FFmpeg parses it anyway and breaks the
    track), also when a moov of size 0 swallows a duplicated mdia: the walker steps aside."""
    blob = source_named("mp4", "gen-faststart.m4a")
    if case == "moov-to-the-end":  # the shape the mutated-MP4 property found
        blob = mutate("mp4", blob, [("dup", 7), ("field", 1, 0, 0)])
    else:
        moov = blob.find(b"moov") - 4
        size = struct.unpack(">I", blob[moov:moov + 4])[0]
        at = blob.find(case[:4].encode()) - 4
        extra = blob[at:at + struct.unpack(">I", blob[at:at + 4])[0]]
        blob = (blob[:moov] + struct.pack(">I", size + len(extra)) + blob[moov + 4:moov + size]
                + extra + blob[moov + size:])
    assert_hashes_agree(blob, workdir / "inside.m4a")
