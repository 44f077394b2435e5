"""Three-band waveforms: bands, zoom levels, long mixes, binary storage, contract shape."""

from __future__ import annotations

import numpy as np
import pytest

from taperoom.analysis.waveform import (
    ZOOM_PIXELS,
    WaveformAccumulator,
    WaveformFeatures,
    decode_waveforms,
    encode_waveforms,
    waveforms,
)
from tests.analysis.signals import RATE, sine

FIELDS = ["low_freq_amplitude", "low_freq_intensity", "mid_freq_amplitude",
          "mid_freq_intensity", "high_freq_amplitude", "high_freq_intensity"]


def _features(y: np.ndarray, block: int = 65536) -> WaveformFeatures:
    acc = WaveformAccumulator()
    for i in range(0, y.shape[0], block):
        acc.feed(y[i:i + block])
    return acc.finish()


@pytest.mark.parametrize(("freq", "band"), [(60.0, 0), (1000.0, 1), (8000.0, 2)])
def test_a_sine_lands_in_its_band(freq: float, band: int) -> None:
    """A 60 Hz sine is low, 1 kHz mid, 8 kHz high: its band reaches the top of the
    scale (the loudest pixel) and the other bands stay below a tenth of it (pixels of 60 ms hold
    several periods)."""
    level = waveforms(_features(sine(freq, 60.0)))[0]
    amp = level.data[0::2, 100:900].astype(float)  # away from the filters' start
    assert amp[band].min() >= 200  # the filters ring up to ~10 % over at the start
    for other in {0, 1, 2} - {band}:
        assert amp[other].max() <= 25, (other, amp[other].max())


def test_zoom_levels_have_the_contract_pixel_counts() -> None:
    """Three levels of 1,000, 4,000 and 16,000 pixels, samples per pixel n / pixels."""
    y = sine(440.0, 30.0)
    levels = waveforms(_features(y))
    assert [lv.zoom_level for lv in levels] == [0, 1, 2]
    assert [lv.num_pixels for lv in levels] == list(ZOOM_PIXELS)
    assert [lv.samples_per_pixel for lv in levels] == [round(y.size / p) for p in ZOOM_PIXELS]


def test_a_click_shows_at_its_time_on_every_level() -> None:
    """A click at 70 % of a silent minute lights the pixel at 70 % on every level."""
    y = np.zeros(RATE * 60, dtype=np.float32)
    at = int(y.size * 0.7)
    y[at:at + 4] = 0.9
    for level in waveforms(_features(y)):
        lit = np.flatnonzero(level.data[4])  # high band amplitude
        expected = at * level.num_pixels // y.size
        assert lit.size >= 1 and abs(int(lit[0]) - expected) <= 1


def test_intensity_is_the_rms_and_amplitude_the_peak() -> None:
    """For a steady mid-band sine, intensity / amplitude is 1/sqrt(2) (RMS of a sine)."""
    level = waveforms(_features(sine(1000.0, 5.0)))[0]
    ratio = level.data[3, 100:900].astype(float) / level.data[2, 100:900]
    assert ratio.mean() == pytest.approx(2 ** -0.5, abs=0.01)


def test_long_mix_keeps_bounded_bins_and_positions() -> None:
    """Past 2**19 bins (12.7 minutes at 64 samples a bin) pairs merge: the bin count
    stays at most 2**19, and a click near the end still shows where it is."""
    n = (2**19 + 2**16) * 64 + 12345  # 2**19 + 2**16 bins and a partial one
    y = np.zeros(n, dtype=np.float32)
    at = n - RATE * 5
    y[at:at + 4] = 0.9
    features = _features(y, 1 << 20)
    assert features.peak.shape[0] <= 2**19 + 1
    assert features.bin_samples == 128
    level = waveforms(features)[2]
    lit = np.flatnonzero(level.data[4])
    assert abs(int(lit[0]) - at * level.num_pixels // n) <= 1


def test_block_size_does_not_change_the_waveform() -> None:
    """Odd block sizes give the same waveforms as one block."""
    rng = np.random.default_rng(2)
    y = (rng.normal(size=RATE * 4) * 0.2).astype(np.float32)
    a, b = waveforms(_features(y, 999)), waveforms(_features(y, y.size))
    assert all(np.array_equal(x.data, z.data) for x, z in zip(a, b, strict=True))


def test_binary_form_round_trips_and_is_compact() -> None:
    """encode/decode gives back the same levels, in well under 6 bytes per pixel."""
    rng = np.random.default_rng(4)
    levels = waveforms(_features((rng.normal(size=RATE * 20) * 0.2).astype(np.float32)))
    blob = encode_waveforms(levels)
    assert len(blob) < 6 * sum(ZOOM_PIXELS)
    back = decode_waveforms(blob)
    assert [(lv.zoom_level, lv.samples_per_pixel, lv.sample_rate) for lv in back] == [
        (lv.zoom_level, lv.samples_per_pixel, lv.sample_rate) for lv in levels]
    assert all(np.array_equal(x.data, z.data) for x, z in zip(back, levels, strict=True))


@pytest.mark.parametrize("blob", [b"", b"XXXX\x01\x00", b"TRWF\x09\x00",
                                  b"TRWF\x01\x01\x00", b"TRWF\x01\x00garbage"])
def test_damaged_blobs_raise_value_error(blob: bytes) -> None:
    """Foreign, truncated, future-version and corrupt blobs raise ValueError."""
    with pytest.raises(ValueError):
        decode_waveforms(blob)


def test_contract_shape() -> None:
    """Each level serves as the contract's object: header fields and six lists of
    num_pixels floats in 0-1, the loudest pixel at 1."""
    level = waveforms(_features(sine(100.0, 10.0)))[1]
    out = level.to_contract()
    assert list(out) == ["zoom_level", "samples_per_pixel", "num_pixels", *FIELDS]
    assert out["zoom_level"] == 1 and out["num_pixels"] == 4000
    for field in FIELDS:
        values = out[field]
        assert len(values) == 4000 and all(0.0 <= v <= 1.0 for v in values)
    assert max(out["low_freq_amplitude"]) == 1.0


def test_silence_gives_flat_levels() -> None:
    """Silence (and an empty signal) gives all-zero levels of the right sizes."""
    for y in (np.zeros(RATE, dtype=np.float32), np.zeros(0, dtype=np.float32)):
        levels = waveforms(_features(y))
        assert [lv.num_pixels for lv in levels] == list(ZOOM_PIXELS)
        assert all(not lv.data.any() for lv in levels)
