"""MP3 frames, synchronisation, splitting and encoding (taperoom.recorder.encode)."""

from __future__ import annotations

import io
import random
from pathlib import Path

import av
import numpy as np
import pytest

from taperoom.errors import InvalidInput, MediaError
from taperoom.recorder.encode import (
    FrameSync,
    Mp3Encoder,
    mp3_duration,
    mp3_frames,
    parse_header,
    split_mp3,
)
from tests.recorder.streamserver import StreamMedia, _id3_tag

# the stream server's fixture

ODD = Path("scanner") / "real_music_tagged" / "odd"


def _packets(data: bytes) -> list[bytes]:
    """The frames PyAV's MP3 demuxer finds in `data` (an independent parser)."""
    with av.open(io.BytesIO(data), format="mp3") as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def _decode(data: bytes) -> tuple[np.ndarray, int, list[str]]:
    """Decode MP3 bytes with PyAV: (samples x channels array, rate, FFmpeg error messages).

    A frame FFmpeg cannot decode raises (``av.error.InvalidDataError``).
    """
    chunks, rate = [], 0
    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs, av.open(io.BytesIO(data), format="mp3") as c:
            for f in c.decode(audio=0):
                rate = f.sample_rate
                chunks.append(f.to_ndarray().reshape(f.layout.nb_channels, -1).T)
    finally:
        av.logging.set_level(level)
    errors = [msg for lvl, _, msg in logs if lvl <= av.logging.ERROR]
    return np.concatenate(chunks), rate, errors


def _sine_frames(rate: int, seconds: float, freq: float, layout: str = "mono",
                 block: int = 1000) -> list[av.AudioFrame]:
    t = np.arange(int(rate * seconds)) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    channels = 1 if layout == "mono" else 2
    frames = []
    for i in range(0, len(x), block):
        chunk = np.tile(x[i:i + block], (channels, 1))
        f = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        f.sample_rate = rate
        frames.append(f)
    return frames


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def test_encoder_resamples_mono_48k_to_stereo_44k() -> None:
    """Mono 48 kHz input comes out as 44.1 kHz stereo MP3 at the bit rate, pitch intact."""
    buf = io.BytesIO()
    enc = Mp3Encoder(buf, bitrate_kbps=128)
    for f in _sine_frames(48000, 2.0, 1000.0):
        enc.encode(f)
    enc.close()
    data = buf.getvalue()
    headers = [parse_header(p) for p in _packets(data)]
    assert headers and all(h is not None and h.bitrate_kbps == 128 and h.sample_rate == 44100
                           and h.channels == 2 for h in headers)
    assert enc.bytes_written == len(data)
    pcm, rate, errors = _decode(data)
    assert errors == []
    assert rate == 44100 and pcm.shape[1] == 2
    assert abs(len(pcm) / rate - 2.0) < 0.08  # encoder delay and last-frame padding
    assert np.allclose(pcm[:, 0], pcm[:, 1], atol=1e-3)
    assert abs(_peak_hz(pcm[4410:-4410, 0], rate) - 1000.0) < 3.0


def test_encoder_follows_input_format_changes_gaplessly() -> None:
    """A change of input rate/layout mid-stream keeps every sample (no flush padding)."""
    buf = io.BytesIO()
    enc = Mp3Encoder(buf, bitrate_kbps=192)
    for f in _sine_frames(22050, 1.0, 440.0, "mono"):
        enc.encode(f)
    for f in _sine_frames(48000, 1.0, 440.0, "stereo"):
        enc.encode(f)
    enc.close()
    assert abs(enc.seconds_in - 2.0) < 0.01
    pcm, rate, errors = _decode(buf.getvalue())
    assert errors == [] and rate == 44100
    assert abs(len(pcm) / rate - 2.0) < 0.08
    middle = pcm[int(0.9 * rate):int(1.1 * rate), 0]
    assert np.min(np.abs(middle).reshape(-1, 441).max(axis=1)) > 0.3  # no silent hole


def test_encoder_rejects_bitrates_mp3_cannot_carry() -> None:
    """A bit rate outside the Layer III table is refused with InvalidInput."""
    with pytest.raises(InvalidInput):
        Mp3Encoder(io.BytesIO(), bitrate_kbps=100)
    with pytest.raises(InvalidInput):
        Mp3Encoder(io.BytesIO(), bitrate_kbps=192, sample_rate=22050)


def test_frame_sync_returns_whole_source_frames_from_any_chunking(
        stream_media: StreamMedia) -> None:
    """ID3 tag, junk and arbitrary chunk sizes: only the source frames come out, in order."""
    frames = stream_media.mp3_frames[:300]
    stream = _id3_tag("Stream start") + b"\x00junk\xff\xfb" + b"".join(frames)
    rng = random.Random(4)
    sync, out, pos = FrameSync(), [], 0
    while pos < len(stream):
        n = rng.randint(1, 3000)
        out += sync.feed(stream[pos:pos + n])
        pos += n
    out += sync.flush()
    assert [f.data for f in out] == frames


def test_frame_sync_reset_never_joins_partial_frames(stream_media: StreamMedia) -> None:
    """Bytes cut mid-frame, then a new connection starting mid-frame: only whole frames join."""
    frames = stream_media.mp3_frames
    first = b"".join(frames[:100]) + frames[100][:200]  # connection dropped mid-frame
    second = frames[400][150:] + b"".join(frames[401:500])  # next one starts mid-frame
    sync = FrameSync()
    out = sync.feed(first)
    sync.reset()
    out += sync.feed(second) + sync.flush()
    joined = b"".join(f.data for f in out)
    assert joined == b"".join(frames[:100]) + b"".join(frames[401:500])
    assert _packets(joined) == frames[:100] + frames[401:500]
    _, _, errors = _decode(joined)
    assert not [e for e in errors if "Header missing" in e or "invalid" in e.lower()]


def test_mp3_frames_match_ffmpeg_on_odd_real_files(corpus: Path) -> None:
    """Junk before frames, MPEG 2.5 8 kHz mono and tagged files: same frames as FFmpeg."""
    for name in ("junk_before_frames.mp3", "cbr_8k_mono.mp3", "untagged.mp3"):
        data = (corpus / ODD / name).read_bytes()
        ours = [data[f.offset:f.offset + f.length] for f in mp3_frames(data)]
        assert ours == _packets(data), name
    tagged = corpus / "scanner" / "real_music_tagged" / "01 - Muldjord - Armygeddon.mp3"
    data = tagged.read_bytes()
    assert [data[f.offset:f.offset + f.length] for f in mp3_frames(data)] == _packets(data)
    assert mp3_duration(tagged) == pytest.approx(1150 * 1152 / 44100)


def test_mp3_frames_drop_a_truncated_last_frame(corpus: Path) -> None:
    """A file cut mid-frame yields only its whole frames."""
    data = (corpus / ODD / "truncated_half.mp3").read_bytes()
    frames = mp3_frames(data)
    last = frames[-1]
    assert last.offset + last.length <= len(data)
    assert len(frames) == len(_packets(data)) - 1  # FFmpeg also returns the cut-off frame


def test_mp3_duration_skips_xing_frame(tmp_path: Path) -> None:
    """An MP3 written by FFmpeg's muxer (ID3 tag + Xing frame) counts audio frames only."""
    path = tmp_path / "muxed.mp3"
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=44100, layout="stereo")
        stream.bit_rate = 128000
        for f in _sine_frames(44100, 1.0, 440.0, "stereo"):
            for p in stream.encode(f):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    data = path.read_bytes()
    assert data[:3] == b"ID3"
    frames = mp3_frames(data)
    assert len(frames) == len(_packets(data))
    assert mp3_duration(path) == pytest.approx(len(frames) * 1152 / 44100)


@pytest.mark.parametrize("name", ["actually_flac.mp3", "zero_length.mp3", "not_audio.ogg"])
def test_mp3_duration_of_non_mp3_raises(corpus: Path, name: str) -> None:
    """FLAC data, an empty file or text: MediaError naming the file."""
    with pytest.raises(MediaError, match=name.split(".")[0]):
        mp3_duration(corpus / ODD / name)


def test_split_mp3_is_frame_accurate_and_lossless(stream_media: StreamMedia,
                                                  tmp_path: Path) -> None:
    """Cuts land on the nearest frame boundary and the pieces hold every frame once."""
    frames = stream_media.mp3_frames[:200]
    frame_s = stream_media.mp3_frame_seconds
    src = tmp_path / "rec.mp3"
    src.write_bytes(_id3_tag("Recording") + b"".join(frames))
    pieces = split_mp3(src, [1.0, 2.5], tmp_path / "tracks", ["a.mp3", "b.mp3", "c.mp3"])
    assert [p.name for p in pieces] == ["a.mp3", "b.mp3", "c.mp3"]
    datas = [p.read_bytes() for p in pieces]
    assert b"".join(datas) == b"".join(frames)
    bounds = np.cumsum([len(_packets(d)) for d in datas]) * frame_s
    assert abs(bounds[0] - 1.0) <= frame_s / 2 + 1e-9
    assert abs(bounds[1] - 2.5) <= frame_s / 2 + 1e-9
    assert bounds[2] == pytest.approx(200 * frame_s)
    for d in datas:
        _, _, errors = _decode(d)
        assert not [e for e in errors if "Header missing" in e]


def test_split_mp3_skips_empty_pieces_and_checks_arguments(stream_media: StreamMedia,
                                                           tmp_path: Path) -> None:
    """Cuts at 0 s or past the end write no empty file; bad names or order raise InvalidInput."""
    src = tmp_path / "rec.mp3"
    src.write_bytes(b"".join(stream_media.mp3_frames[:100]))
    pieces = split_mp3(src, [0.0, 1.0, 99.0], tmp_path / "t", ["0", "1", "2", "3"])
    assert [p.name for p in pieces] == ["1", "2"]
    with pytest.raises(InvalidInput):
        split_mp3(src, [1.0], tmp_path / "t", ["only-one"])
    with pytest.raises(InvalidInput):
        split_mp3(src, [2.0, 1.0], tmp_path / "t", ["a", "b", "c"])
    with pytest.raises(InvalidInput):
        split_mp3(src, [1.0], tmp_path / "t", ["../escape", "b"])
