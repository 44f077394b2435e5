"""EBU R128 loudness, true peak and ReplayGain 2.0 (taperoom.analysis.loudness)."""

from __future__ import annotations

from pathlib import Path

import av
import av.error
import av.filter
import numpy as np
import pytest

from taperoom.analysis.decode import AudioSource
from taperoom.analysis.loudness import (
    LoudnessAccumulator,
    LoudnessResult,
    k_weighting_sos,
    loudness,
)
from tests.analysis.signals import RATE, sine, stereo


def _measure(y: np.ndarray, names: tuple[str, ...] = ("FL", "FR"), block: int = 65536
             ) -> LoudnessResult:
    acc = LoudnessAccumulator(RATE, names)
    for i in range(0, y.shape[0], block):
        acc.feed(y[i:i + block])
    return loudness(acc.finish())


def _tones(*parts: tuple[float, float]) -> np.ndarray:
    """Stereo 1 kHz sine at each (dBFS, seconds) in turn (EBU Tech 3341/3342 signals)."""
    return stereo(np.concatenate([sine(1000.0, s, dbfs=d) for d, s in parts]))


def test_k_weighting_at_48k_is_the_bs1770_table() -> None:
    """At 48 kHz the filter equals ITU-R BS.1770-4 Tables 1 and 2."""
    sos = k_weighting_sos(48000)
    assert sos[0] == pytest.approx([1.53512485958697, -2.69169618940638, 1.19839281085285,
                                    1.0, -1.69065929318241, 0.73248077421585], abs=1e-8)
    assert sos[1] == pytest.approx([1.0, -2.0, 1.0, 1.0, -1.99004745483398,
                                    0.99007225036621], abs=1e-8)


@pytest.mark.parametrize(("parts", "expected"), [
    ([(-23.0, 20.0)], -23.0),                                    # Tech 3341 test 1
    ([(-33.0, 20.0)], -33.0),                                    # test 2
    ([(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)], -23.0),      # test 3: relative gate
    ([(-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0), (-72.0, 10.0)],
     -23.0),                                                     # test 4: absolute gate
    ([(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)], -23.0),      # test 5
])
def test_ebu_tech_3341_integrated_loudness(parts: list[tuple[float, float]],
                                           expected: float) -> None:
    """The EBU Tech 3341 stereo 1 kHz test signals read their loudness within the
    +-0.1 LU the specification allows."""
    result = _measure(_tones(*parts))
    assert result.integrated_lufs == pytest.approx(expected, abs=0.1)
    assert result.replaygain_gain_db == pytest.approx(-18.0 - expected, abs=0.1)


@pytest.mark.parametrize(("parts", "expected"), [
    ([(-20.0, 20.0), (-30.0, 20.0)], 10.0),                      # Tech 3342 test 1
    ([(-20.0, 20.0), (-15.0, 20.0)], 5.0),                       # test 2
    ([(-40.0, 20.0), (-20.0, 20.0)], 20.0),                      # test 3
])
def test_ebu_tech_3342_loudness_range(parts: list[tuple[float, float]],
                                      expected: float) -> None:
    """The EBU Tech 3342 test signals read their loudness range within +-1 LU."""
    assert _measure(_tones(*parts)).loudness_range == pytest.approx(expected, abs=1.0)


def test_mono_counts_one_channel() -> None:
    """A mono -23 dBFS sine is 3 LU quieter than the same sine in both channels
    (BS.1770 sums the channels' powers; mono is one channel)."""
    mono = _measure(sine(1000.0, 10.0, dbfs=-23.0)[:, None], ("FC",))
    assert mono.integrated_lufs == pytest.approx(-26.0, abs=0.1)


def test_lfe_is_left_out() -> None:
    """Signal only in the LFE channel of a 5.1 layout is not programme loudness."""
    y = np.zeros((RATE * 5, 6), dtype=np.float32)
    y[:, 3] = sine(60.0, 5.0, dbfs=-6.0)
    result = _measure(y, ("FL", "FR", "FC", "LFE", "BL", "BR"))
    assert result.integrated_lufs is None


def test_true_peak_finds_the_peak_between_samples() -> None:
    """A sine at a quarter of the rate with a 45 degree phase has every sample at
    0.707 of its amplitude; the 4x oversampled true peak finds the amplitude."""
    y = sine(RATE / 4, 5.0, dbfs=-6.0, phase=np.pi / 4)
    result = _measure(stereo(y))
    assert result.sample_peak_dbfs == pytest.approx(-9.01, abs=0.05)
    assert result.true_peak_dbtp == pytest.approx(-6.0, abs=0.3)
    assert result.replaygain_peak == pytest.approx(result.true_peak)


def test_silence_has_no_loudness() -> None:
    """Digital silence has no loudness, no peaks in dB and no ReplayGain gain."""
    result = _measure(np.zeros((RATE * 3, 2), dtype=np.float32))
    assert result.integrated_lufs is None and result.replaygain_gain_db is None
    assert result.true_peak_dbtp is None and result.sample_peak_dbfs is None


def test_block_size_does_not_change_the_result() -> None:
    """Odd block sizes give the same figures as one big block."""
    rng = np.random.default_rng(1)
    y = (rng.normal(size=(RATE * 7, 2)) * 0.1).astype(np.float32)
    assert _measure(y, block=977) == _measure(y, block=y.shape[0])


def _ffmpeg_ebur128(path: Path) -> dict[str, float]:
    """Integrated loudness, LRA and true peak from FFmpeg's ebur128 filter (through
    PyAV's filter graph): the reference implementation the figures are checked with."""
    last: dict[str, str] = {}
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        graph = av.filter.Graph()
        src = graph.add_abuffer(template=stream)
        meter = graph.add("ebur128", "metadata=1:peak=true")
        sink = graph.add("abuffersink")
        src.link_to(meter)
        meter.link_to(sink)
        graph.configure()

        def drain() -> None:
            while True:
                try:
                    frame = graph.pull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    return
                if frame.metadata:
                    last.update(frame.metadata)

        for frame in container.decode(stream):
            graph.push(frame)
            drain()
        graph.push(None)
        drain()
    return {"I": float(last["lavfi.r128.I"]), "LRA": float(last["lavfi.r128.LRA"]),
            "TP": 20 * np.log10(float(last["lavfi.r128.true_peak"]))}


@pytest.mark.parametrize("name", ["hydrogen_GM_kit_demo2.ogg", "lmms_Saber-FinalStep.ogg",
                                  "bachviolin_john-garner_bwv1002_mov6.mp3",
                                  "m21_corelli_op3no1_grave.ogg"])
def test_real_files_agree_with_ffmpeg_ebur128(corpus: Path, name: str) -> None:
    """On real recordings the integrated loudness agrees with FFmpeg's ebur128 filter
    within 0.05 LU, the loudness range within 0.3 LU (FFmpeg bins it by 0.1 LU) and
    the true peak within 0.2 dB (FFmpeg oversamples to 192 kHz with another filter)."""
    path = corpus / "dev" / name
    with AudioSource(path) as src:
        acc = LoudnessAccumulator(RATE, src.info.channel_names)
        for block in src.blocks():
            acc.feed(block)
    ours = loudness(acc.finish())
    ref = _ffmpeg_ebur128(path)
    assert ours.integrated_lufs == pytest.approx(ref["I"], abs=0.05)
    assert ours.loudness_range == pytest.approx(ref["LRA"], abs=0.3)
    assert ours.true_peak_dbtp == pytest.approx(ref["TP"], abs=0.2)
