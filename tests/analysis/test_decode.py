"""The analyzer's block decoder: any file to float32 blocks at 44.1 kHz, bounded memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taperoom.analysis.decode import SAMPLE_RATE, AudioSource, downmix
from taperoom.errors import MediaError
from tests.analysis.signals import sine, write_audio

ODD = ("scanner", "real_music_tagged", "odd")


def _decode(path: Path, block_frames: int = 65536) -> tuple[AudioSource, list[np.ndarray]]:
    with AudioSource(path) as src:
        return src, list(src.blocks(block_frames))


def test_blocks_have_the_asked_length_and_keep_every_frame(corpus: Path) -> None:
    """Every block but the last has block_frames frames; together they hold the whole
    track (the Vorbis file's declared duration, to the frame) in float32 stereo."""
    path = corpus / "dev" / "hydrogen_TR808kit-demo.ogg"
    src, blocks = _decode(path, 10_000)
    assert src.info.channels == 2 and src.info.channel_names == ("FL", "FR")
    assert src.info.codec == "vorbis" and src.info.sample_rate == 44100
    assert all(b.shape == (10_000, 2) for b in blocks[:-1])
    assert 0 < blocks[-1].shape[0] <= 10_000
    assert all(b.dtype == np.float32 and b.flags.c_contiguous for b in blocks)
    total = sum(b.shape[0] for b in blocks)
    assert src.info.duration is not None
    assert total == round(src.info.duration * SAMPLE_RATE)
    assert src.frames_out == total


def test_block_size_does_not_change_the_samples(corpus: Path) -> None:
    """Decoding with two block sizes gives the same sample stream."""
    path = corpus / "dev" / "bachviolin_john-garner_bwv1002_mov6.mp3"
    a = np.concatenate(_decode(path, 65536)[1])
    b = np.concatenate(_decode(path, 7919)[1])
    assert a.shape == b.shape
    assert np.array_equal(a, b)


def test_other_rates_are_resampled_to_44100(tmp_path: Path) -> None:
    """A 22,050 Hz mono file comes out at 44,100 Hz with its length and pitch kept."""
    y = sine(1000.0, 3.0, rate=22050)
    path = write_audio(tmp_path / "low.flac", y, rate=22050)
    src, blocks = _decode(path)
    assert src.info.sample_rate == 22050 and src.info.channels == 1
    x = np.concatenate(blocks)[:, 0]
    assert abs(x.shape[0] - 3 * SAMPLE_RATE) <= 64
    spectrum = np.abs(np.fft.rfft(x[:SAMPLE_RATE]))
    assert abs(np.argmax(spectrum) - 1000) <= 1  # 1 Hz bins over one second


@pytest.mark.parametrize("name", ["mono_22k.wav", "float32_96k.wav", "cbr_8k_mono.mp3",
                                  "UPPER.FLAC", "actually_flac.mp3"])
def test_odd_but_readable_files_decode(corpus: Path, name: str) -> None:
    """The scanner's odd-but-valid files decode to 44.1 kHz blocks of their length."""
    src, blocks = _decode(corpus.joinpath(*ODD, name))
    seconds = sum(b.shape[0] for b in blocks) / SAMPLE_RATE
    assert src.info.duration is not None
    assert seconds == pytest.approx(src.info.duration, abs=0.1)


@pytest.mark.parametrize("name", ["truncated_half.mp3", "junk_before_frames.mp3"])
def test_damaged_mp3_gives_what_it_holds(corpus: Path, name: str) -> None:
    """A file cut in the middle of a frame, or with junk before its frames, decodes
    its frames without an error (the junk's length is no audio: FFmpeg's size-based
    duration estimate counts it, so only a lower bound is checked)."""
    _, blocks = _decode(corpus.joinpath(*ODD, name))
    assert sum(b.shape[0] for b in blocks) > 4 * SAMPLE_RATE


@pytest.mark.parametrize("name", ["zero_length.mp3", "not_audio.ogg"])
def test_unreadable_files_raise_media_error(corpus: Path, name: str) -> None:
    """Files that hold no decodable audio raise MediaError naming the file."""
    with pytest.raises(MediaError) as err:
        _decode(corpus.joinpath(*ODD, name))
    assert name in str(err.value)


def test_missing_file_raises_media_error(tmp_path: Path) -> None:
    """A path that does not exist raises MediaError (not a bare OSError)."""
    with pytest.raises(MediaError):
        AudioSource(tmp_path / "nope.flac")


def test_downmix_is_the_channel_mean() -> None:
    """Stereo blocks mix to the mean of their channels; mono blocks pass through."""
    block = np.array([[0.5, -0.5], [1.0, 0.0]], dtype=np.float32)
    assert downmix(block).tolist() == [0.0, 0.5]
    mono = block[:, :1]
    assert downmix(mono).tolist() == [0.5, 1.0]
