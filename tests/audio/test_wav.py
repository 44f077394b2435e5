"""RIFF/WAVE parsing and frame I/O on generated files of every layout and on real WAVs."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taperoom.audio import wav
from taperoom.errors import MediaError
from tests.wavgen import BEXT, FORMATS, ID3, LIST_INFO, chunk, tone, write_wav

LAYOUTS = list(FORMATS)
RATES = [8000, 22050, 44100, 48000, 96000]
CHANNELS = [1, 2, 6]
ODD = (b"odd ", b"abc")  # 3-byte body: padded to 4 bytes on disk
ALL = list(itertools.product(LAYOUTS, [False, True], CHANNELS, RATES))
REAL_WAVS = "scanner/real_music_tagged"


def _walk(data: bytes) -> list[tuple[bytes, int, int]]:
    """Independent chunk walk: (id, declared size, body offset) of every top-level chunk."""
    out = []
    pos = 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack("<4sI", data[pos:pos + 8])
        out.append((cid, size, pos + 8))
        pos += 8 + size + (size & 1)
    return out


def _info_of(path: Path) -> wav.WavInfo:
    fd = os.open(path, os.O_RDONLY)
    try:
        return wav.parse_header(fd, path)
    finally:
        os.close(fd)


def _layout(fmt: str, channels: int, rate: int = 8000, extensible: bool = False) -> wav.WavInfo:
    """WavInfo of a generated file in this layout (read back by the parser)."""
    tag, bits = FORMATS[fmt]
    block = channels * bits // 8
    if extensible:
        body = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, bits)
        body += struct.pack("<HHIH", 22, bits, (1 << channels) - 1, tag)
        body += b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    else:
        body = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    return wav.WavInfo(tag, channels, rate, bits, block, 0, 0, body)


def _riff(*chunks: bytes, form: bytes = b"RIFF") -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return form + struct.pack("<I", len(body)) + body


def _pcm16_fmt(channels: int = 1, rate: int = 8000) -> bytes:
    return chunk(b"fmt ", struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels,
                                      2 * channels, 16))


# -- parse_header / read_info ---------------------------------------------------


@pytest.mark.parametrize(("fmt", "extensible", "channels", "rate"), ALL)
def test_parse_every_layout_with_chunks_around_data(tmp_path: Path, fmt: str, extensible: bool,
                                                    channels: int, rate: int) -> None:
    """Every layout, with LIST/bext/odd chunks before and id3/LIST after data, parses exactly."""
    y = tone(0.01, rate, channels)
    path = write_wav(tmp_path / "x.wav", y, rate=rate, fmt=fmt, extensible=extensible,
                     before=[LIST_INFO, BEXT, ODD], after=[ID3, ODD, LIST_INFO])
    tag, bits = FORMATS[fmt]
    data = path.read_bytes()
    chunks = {cid: (size, at) for cid, size, at in _walk(data)}
    info = wav.read_info(path)
    assert info.format_tag == tag
    assert info.channels == channels
    assert info.sample_rate == rate
    assert info.bits_per_sample == bits
    assert info.block_align == channels * bits // 8
    assert info.sample_width == bits // 8
    assert info.data_offset == chunks[b"data"][1]
    assert info.data_size == chunks[b"data"][0] == len(y) * info.block_align
    assert info.n_frames == len(y)
    assert info.duration == len(y) / rate
    assert info.fmt_chunk == data[chunks[b"fmt "][1]:chunks[b"fmt "][1] + chunks[b"fmt "][0]]
    assert info.frame_offset(3) == info.data_offset + 3 * info.block_align


def test_parse_header_on_fd_equals_read_info(tmp_path: Path) -> None:
    """parse_header on an open descriptor gives the same WavInfo as read_info on the path."""
    path = write_wav(tmp_path / "x.wav", tone(0.1, 22050, 2), rate=22050, fmt="pcm24",
                     before=[LIST_INFO])
    assert _info_of(path) == wav.read_info(path)


def test_odd_sized_data_chunk_is_padded_and_next_chunk_found(tmp_path: Path) -> None:
    """An odd-sized data chunk (8-bit mono, odd frame count) is read whole; padding is skipped."""
    y = np.linspace(-0.5, 0.5, 101).reshape(-1, 1)
    path = write_wav(tmp_path / "x.wav", y, rate=8000, fmt="pcm8", after=[LIST_INFO])
    info = wav.read_info(path)
    assert info.data_size == 101
    assert info.n_frames == 101
    walked = [cid for cid, _, _ in _walk(path.read_bytes())]
    assert walked == [b"fmt ", b"data", b"LIST"]


def test_truncated_data_chunk_keeps_only_whole_frames_present(tmp_path: Path) -> None:
    """A data chunk cut mid-frame reports only the whole frames actually in the file."""
    path = write_wav(tmp_path / "x.wav", tone(0.1, 8000, 2), rate=8000, fmt="pcm24")
    full = wav.read_info(path)
    data = path.read_bytes()
    cut = full.data_offset + 100 * full.block_align + 4  # 100 frames and 4 stray bytes
    path.write_bytes(data[:cut])
    info = wav.read_info(path)
    assert info.n_frames == 100
    assert info.data_size == 100 * full.block_align
    assert info.data_offset == full.data_offset


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF])
def test_streamed_data_size_means_rest_of_file(tmp_path: Path, declared: int) -> None:
    """A data size of 0 or 0xFFFFFFFF (streamed writer) covers the rest of the file."""
    y = tone(0.05, 8000, 2)
    path = write_wav(tmp_path / "x.wav", y, rate=8000, fmt="pcm16", before=[LIST_INFO])
    data = bytearray(path.read_bytes())
    _, _, at = next(c for c in _walk(bytes(data)) if c[0] == b"data")
    data[at - 4:at] = struct.pack("<I", declared)
    data[4:8] = struct.pack("<I", 0xFFFFFFFF if declared else 0)
    path.write_bytes(bytes(data))
    info = wav.read_info(path)
    assert info.data_offset == at
    assert info.n_frames == len(y)


def test_rf64_data_size_comes_from_ds64(tmp_path: Path) -> None:
    """An RF64 file takes its data size from the ds64 chunk, not the 0xFFFFFFFF placeholder."""
    frames = np.arange(-50, 50, dtype="<i2").tobytes()  # 100 mono 16-bit frames
    ds64 = chunk(b"ds64", struct.pack("<QQQI", 0, len(frames), 100, 0))
    data = struct.pack("<4sI", b"data", 0xFFFFFFFF) + frames + chunk(b"LIST", b"INFOjunk")
    path = tmp_path / "x.wav"
    path.write_bytes(_riff(ds64, _pcm16_fmt(), data, form=b"RF64"))
    info = wav.read_info(path)
    assert info.n_frames == 100
    assert info.data_size == len(frames)


@pytest.mark.parametrize(("name", "content"), [
    ("empty", b""),
    ("short", b"RIFF\x00\x00"),
    ("not-riff", b"RIFX" + b"\x00" * 40),
    ("not-wave", _riff(b"").replace(b"WAVE", b"AVI ")),
    ("mp3-bytes", b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 100),
    ("adpcm", _riff(chunk(b"fmt ", struct.pack("<HHIIHH", 2, 1, 8000, 4096, 256, 4) + b"\x00" * 4),
                    chunk(b"data", b"\x00" * 256))),
    ("mulaw", _riff(chunk(b"fmt ", struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)),
                    chunk(b"data", b"\x00" * 16))),
    ("pcm12", _riff(chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 12)),
                    chunk(b"data", b"\x00" * 16))),
    ("no-data", _riff(_pcm16_fmt(), chunk(b"LIST", b"INFO"))),
    ("no-fmt", _riff(chunk(b"LIST", b"INFO"), chunk(b"junk", b"1234"))),
    ("data-before-fmt", _riff(chunk(b"data", b"\x00" * 16), _pcm16_fmt())),
    ("fmt-too-short", _riff(chunk(b"fmt ", b"\x01\x00\x01\x00"), chunk(b"data", b"\x00" * 4))),
    ("extensible-short", _riff(chunk(b"fmt ", struct.pack("<HHIIHH", 0xFFFE, 1, 8000, 16000, 2,
                                                          16)), chunk(b"data", b"\x00" * 4))),
    ("extensible-unknown-guid", _riff(chunk(b"fmt ", struct.pack("<HHIIHH", 0xFFFE, 1, 8000,
                                                                 16000, 2, 16)
                                            + struct.pack("<HHI", 22, 16, 4) + b"\x01" * 16),
                                      chunk(b"data", b"\x00" * 4))),
    ("extensible-adpcm", _riff(chunk(b"fmt ", struct.pack("<HHIIHH", 0xFFFE, 1, 8000, 4000, 1, 4)
                                     + struct.pack("<HHIH", 22, 4, 4, 2)
                                     + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"),
                               chunk(b"data", b"\x00" * 4))),
    ("bad-block-align", _riff(chunk(b"fmt ", struct.pack("<HHIIHH", 1, 2, 8000, 32000, 3, 16)),
                              chunk(b"data", b"\x00" * 12))),
    ("zero-channels", _riff(chunk(b"fmt ", struct.pack("<HHIIHH", 1, 0, 8000, 0, 0, 16)),
                            chunk(b"data", b"\x00" * 4))),
    ("zero-rate", _riff(chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 0, 0, 2, 16)),
                        chunk(b"data", b"\x00" * 4))),
])
def test_rejected_inputs_raise_media_error(tmp_path: Path, name: str, content: bytes) -> None:
    """Non-RIFF, non-WAVE, unsupported encodings and missing chunks raise MediaError."""
    path = tmp_path / f"{name}.wav"
    path.write_bytes(content)
    with pytest.raises(MediaError) as err:
        wav.read_info(path)
    assert err.value.path == path
    assert err.value.status == 422


def test_missing_file_raises_media_error(tmp_path: Path) -> None:
    """read_info on a path that does not exist raises MediaError, not a bare OSError."""
    with pytest.raises(MediaError):
        wav.read_info(tmp_path / "nope.wav")


def test_huge_chunk_size_past_end_of_file_means_no_data(tmp_path: Path) -> None:
    """A chunk whose declared size runs past the end of the file is not followed into nowhere."""
    path = tmp_path / "x.wav"
    path.write_bytes(_riff(_pcm16_fmt(), struct.pack("<4sI", b"LIST", 0x7FFFFFF0) + b"INFO"))
    with pytest.raises(MediaError, match="no data chunk"):
        wav.read_info(path)


# -- decode / encode ------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "extensible"), list(itertools.product(LAYOUTS, [False, True])))
def test_decode_encode_round_trip_of_generated_files(tmp_path: Path, fmt: str,
                                                     extensible: bool) -> None:
    """decode then encode gives back the raw frames of a generated file bit for bit."""
    path = write_wav(tmp_path / "x.wav", tone(0.05, 48000, 6, amp=0.99), rate=48000, fmt=fmt,
                     extensible=extensible)
    info = wav.read_info(path)
    raw = path.read_bytes()[info.data_offset:info.data_offset + info.data_size]
    y = wav.decode(raw, info)
    assert y.shape == (info.n_frames, 6)
    assert y.dtype == np.float64
    assert wav.encode(y, info) == raw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(LAYOUTS), extensible=st.booleans(), channels=st.integers(1, 8),
       data=st.data())
def test_decode_encode_round_trip_is_bit_exact_for_any_frames(fmt: str, extensible: bool,
                                                              channels: int,
                                                              data: st.DataObject) -> None:
    """Any raw frames (any bit pattern, float NaNs aside) survive decode -> encode unchanged."""
    info = _layout(fmt, channels, extensible=extensible)
    n_frames = data.draw(st.integers(0, 40))
    raw = data.draw(st.binary(min_size=n_frames * info.block_align,
                              max_size=n_frames * info.block_align))
    if info.format_tag == wav.WAVE_FORMAT_IEEE_FLOAT:  # NaN payloads are not audio
        arr = np.frombuffer(raw, dtype="<f4" if info.bits_per_sample == 32 else "<f8").copy()
        arr[np.isnan(arr)] = 0.0
        raw = arr.tobytes()
    y = wav.decode(raw, info)
    assert y.shape == (n_frames, channels)
    assert wav.encode(y, info) == raw


@pytest.mark.parametrize(("fmt", "raw", "expected"), [
    ("pcm8", bytes([0, 128, 255]), [-1.0, 0.0, 127 / 128]),
    ("pcm16", struct.pack("<3h", -32768, 0, 32767), [-1.0, 0.0, 32767 / 32768]),
    ("pcm24", b"\x00\x00\x80" + b"\xff\xff\xff" + b"\xff\xff\x7f",
     [-1.0, -1 / 8388608, 8388607 / 8388608]),
    ("pcm32", struct.pack("<3i", -2**31, 1, 2**31 - 1), [-1.0, 2.0**-31, (2**31 - 1) / 2**31]),
    ("float32", struct.pack("<3f", -1.0, 0.25, 1.5), [-1.0, 0.25, 1.5]),
    ("float64", struct.pack("<3d", -0.125, 0.0, 1e-300), [-0.125, 0.0, 1e-300]),
])
def test_decode_scales_each_encoding(fmt: str, raw: bytes, expected: list[float]) -> None:
    """Integer PCM is scaled by 2**(bits-1) (8-bit unsigned around 128); float is as stored."""
    y = wav.decode(raw, _layout(fmt, 1))
    assert y[:, 0].tolist() == expected


def test_decode_interleaves_channels_into_columns() -> None:
    """Interleaved samples L0 R0 L1 R1 come back as rows (L, R)."""
    raw = struct.pack("<4h", 1, -1, 2, -2)
    y = wav.decode(raw, _layout("pcm16", 2))
    assert (y * 32768).tolist() == [[1, -1], [2, -2]]


def test_encode_clips_and_rounds_out_of_range_samples() -> None:
    """Samples beyond full scale are clipped to the integer range; others are rounded."""
    y = np.array([[2.0], [-2.0], [1.4 / 32768], [1.6 / 32768]])
    raw = wav.encode(y, _layout("pcm16", 1))
    assert struct.unpack("<4h", raw) == (32767, -32768, 1, 2)
    assert wav.encode(np.array([[5.0], [-5.0]]), _layout("pcm8", 1)) == bytes([255, 0])


def test_encode_rejects_wrong_channel_count() -> None:
    """encode refuses samples whose column count differs from the file's channels."""
    with pytest.raises(ValueError):
        wav.encode(np.zeros((4, 2)), _layout("pcm16", 1))
    with pytest.raises(ValueError):
        wav.encode(np.zeros(4), _layout("pcm16", 1))


# -- read_raw / read_frames / write_frames --------------------------------------


def test_read_frames_returns_the_requested_frames_and_clamps_at_the_end(tmp_path: Path) -> None:
    """read_frames gives frames [start, start+count), fewer at the end, none past it."""
    y = np.linspace(-0.9, 0.9, 200).reshape(100, 2)
    path = write_wav(tmp_path / "x.wav", y, rate=8000, fmt="float64", after=[ID3])
    info = wav.read_info(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        np.testing.assert_array_equal(wav.read_frames(fd, info, 10, 5), y[10:15])
        np.testing.assert_array_equal(wav.read_frames(fd, info, 95, 50), y[95:])
        assert wav.read_frames(fd, info, 100, 5).shape == (0, 2)
        assert wav.read_raw(fd, info, 500, 5) == b""
    finally:
        os.close(fd)


@pytest.mark.parametrize(("fmt", "extensible", "channels"),
                         list(itertools.product(LAYOUTS, [False, True], [1, 2, 6])))
def test_write_frames_changes_exactly_the_written_frames(tmp_path: Path, fmt: str,
                                                         extensible: bool, channels: int) -> None:
    """write_frames rewrites only the bytes of the frames written; every other byte is kept."""
    path = write_wav(tmp_path / "x.wav", tone(0.05, 8000, channels, amp=0.7), rate=8000,
                     fmt=fmt, extensible=extensible, before=[LIST_INFO, ODD],
                     after=[ID3, BEXT])
    before = path.read_bytes()
    info = wav.read_info(path)
    start, count = 37, 23
    new = np.full((count, channels), -0.25)
    new[::2] = 0.5
    fd = os.open(path, os.O_RDWR)
    try:
        wav.write_frames(fd, info, start, new)
    finally:
        os.close(fd)
    after = path.read_bytes()
    lo, hi = info.frame_offset(start), info.frame_offset(start + count)
    assert len(after) == len(before)
    assert after[:lo] == before[:lo]
    assert after[hi:] == before[hi:]
    assert after[lo:hi] == wav.encode(new, info)
    assert after[lo:hi] != before[lo:hi]


def test_write_frames_refuses_frames_outside_data(tmp_path: Path) -> None:
    """Writing before frame 0 or past the last frame raises ValueError and writes nothing."""
    path = write_wav(tmp_path / "x.wav", tone(0.01, 8000, 1), rate=8000, after=[ID3])
    before = path.read_bytes()
    info = wav.read_info(path)
    fd = os.open(path, os.O_RDWR)
    try:
        with pytest.raises(ValueError):
            wav.write_frames(fd, info, info.n_frames - 2, np.zeros((3, 1)))
        with pytest.raises(ValueError):
            wav.write_frames(fd, info, -1, np.zeros((1, 1)))
    finally:
        os.close(fd)
    assert path.read_bytes() == before


# -- header_for -----------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "channels", "rate"),
                         list(itertools.product(["pcm8", "pcm16", "pcm24", "pcm32"], CHANNELS,
                                                RATES)))
def test_header_for_pcm_is_read_by_python_wave(tmp_path: Path, fmt: str, channels: int,
                                               rate: int) -> None:
    """A PCM header from header_for, plus frames, is a WAV that Python's wave module reads."""
    src = write_wav(tmp_path / "src.wav", tone(0.02, rate, channels), rate=rate, fmt=fmt,
                    before=[LIST_INFO])
    info = wav.read_info(src)
    n = 33  # odd count: 8-bit mono needs a pad byte
    raw = src.read_bytes()[info.data_offset:info.data_offset + n * info.block_align]
    out = tmp_path / "out.wav"
    out.write_bytes(wav.header_for(info, n) + raw + (b"\x00" if len(raw) & 1 else b""))
    with wave.open(str(out), "rb") as w:
        assert w.getnchannels() == channels
        assert w.getsampwidth() == info.sample_width
        assert w.getframerate() == rate
        assert w.getnframes() == n
        assert w.readframes(n) == raw
    back = wav.read_info(out)
    assert (back.format_tag, back.channels, back.sample_rate, back.bits_per_sample) == \
        (info.format_tag, channels, rate, info.bits_per_sample)
    assert back.n_frames == n
    assert back.data_offset == len(wav.header_for(info, n))


@pytest.mark.parametrize(("fmt", "extensible"), list(itertools.product(LAYOUTS, [False, True])))
def test_header_for_every_layout_is_read_back_by_the_parser(tmp_path: Path, fmt: str,
                                                            extensible: bool) -> None:
    """header_for keeps the fmt chunk byte for byte, adds fact for float, and sizes RIFF right."""
    src = write_wav(tmp_path / "src.wav", tone(0.02, 44100, 2), rate=44100, fmt=fmt,
                    extensible=extensible)
    info = wav.read_info(src)
    n = 101
    raw = src.read_bytes()[info.data_offset:info.data_offset + n * info.block_align]
    header = wav.header_for(info, n)
    out = tmp_path / "out.wav"
    out.write_bytes(header + raw)
    back = wav.read_info(out)
    assert back.fmt_chunk == info.fmt_chunk
    assert back.n_frames == n
    assert back.data_offset == len(header)
    data = out.read_bytes()
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    ids = [cid for cid, _, _ in _walk(data)]
    if info.format_tag == wav.WAVE_FORMAT_IEEE_FLOAT:
        assert ids == [b"fmt ", b"fact", b"data"]
        fact = next(at for cid, _, at in _walk(data) if cid == b"fact")
        assert struct.unpack("<I", data[fact:fact + 4])[0] == n
    else:
        assert ids == [b"fmt ", b"data"]
    fd = os.open(out, os.O_RDONLY)
    try:
        assert wav.read_raw(fd, back, 0, n) == raw
    finally:
        os.close(fd)


# -- real files -----------------------------------------------------------------


def _real_wavs(corpus: Path) -> list[Path]:
    return sorted((corpus / REAL_WAVS).glob("*.wav"))


def test_real_corpus_wavs_match_manifest_and_python_wave(corpus: Path) -> None:
    """The corpus's tagged WAVs parse at the manifest's duration and agree with Python's wave."""
    manifest = json.loads((corpus / REAL_WAVS / "manifest.json").read_text())
    expected = {m["file"]: m for m in manifest if m["format"] == "wav"}
    paths = _real_wavs(corpus)
    assert sorted(p.name for p in paths) == sorted(expected)
    for path in paths:
        info = wav.read_info(path)
        assert info.duration == pytest.approx(expected[path.name]["duration_s"], abs=0.01)
        with wave.open(str(path), "rb") as w:
            assert info.channels == w.getnchannels()
            assert info.sample_rate == w.getframerate()
            assert info.sample_width == w.getsampwidth()
            assert info.n_frames == w.getnframes()
            first = w.readframes(1000)
        fd = os.open(path, os.O_RDONLY)
        try:
            assert wav.read_raw(fd, info, 0, 1000) == first
        finally:
            os.close(fd)


def test_real_corpus_wavs_have_list_chunk_before_data(corpus: Path) -> None:
    """Real tagged WAVs carry a LIST chunk before data; the parser skips it to the frames."""
    for path in _real_wavs(corpus):
        data = path.read_bytes()
        walked = _walk(data)
        ids = [cid for cid, _, _ in walked]
        assert ids.index(b"LIST") < ids.index(b"data")
        at = next(at for cid, _, at in walked if cid == b"data")
        assert wav.read_info(path).data_offset == at != 44


def test_real_odd_mono_22k_wav(corpus: Path) -> None:
    """odd/mono_22k.wav is 22.05 kHz mono 16-bit PCM of 10 s, as Python's wave also reads it."""
    path = corpus / REAL_WAVS / "odd" / "mono_22k.wav"
    info = wav.read_info(path)
    assert (info.format_tag, info.channels, info.sample_rate, info.bits_per_sample) == \
        (wav.WAVE_FORMAT_PCM, 1, 22050, 16)
    assert info.duration == pytest.approx(10.0)
    with wave.open(str(path), "rb") as w:
        assert w.getnframes() == info.n_frames


def test_real_odd_float32_96k_wav(corpus: Path) -> None:
    """odd/float32_96k.wav is 32-bit float at 96 kHz; its fact chunk agrees on the frame count."""
    path = corpus / REAL_WAVS / "odd" / "float32_96k.wav"
    info = wav.read_info(path)
    assert (info.format_tag, info.sample_rate, info.bits_per_sample) == \
        (wav.WAVE_FORMAT_IEEE_FLOAT, 96000, 32)
    data = path.read_bytes()
    fact = next(at for cid, _, at in _walk(data) if cid == b"fact")
    assert struct.unpack("<I", data[fact:fact + 4])[0] == info.n_frames
    assert info.duration == pytest.approx(5.0)
    fd = os.open(path, os.O_RDONLY)
    try:
        y = wav.read_frames(fd, info, 0, info.n_frames)
    finally:
        os.close(fd)
    assert np.isfinite(y).all()
    assert 0 < np.abs(y).max() <= 1.0


def test_real_corpus_wav_round_trips_bit_exactly(corpus: Path, tmp_path: Path) -> None:
    """Decoding and re-encoding a whole real recording gives back its exact bytes."""
    path = shutil.copyfile(_real_wavs(corpus)[0], tmp_path / "real.wav")
    info = wav.read_info(path)
    raw = Path(path).read_bytes()[info.data_offset:info.data_offset + info.data_size]
    assert wav.encode(wav.decode(raw, info), info) == raw


@pytest.mark.parametrize("name", ["actually_flac.mp3", "not_audio.ogg", "zero_length.mp3",
                                  "UPPER.FLAC"])
def test_real_non_wav_files_raise_media_error(corpus: Path, name: str) -> None:
    """Real non-WAV files from the corpus are rejected with MediaError."""
    with pytest.raises(MediaError):
        wav.read_info(corpus / REAL_WAVS / "odd" / name)
