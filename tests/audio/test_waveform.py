"""Waveform overviews: min/max peaks per block and their normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from taperoom.audio.waveform import minmax_peaks, normalise_peaks


def test_peaks_have_n_points_for_long_signals() -> None:
    """A signal longer than n_points gives exactly n_points minima and maxima."""
    mins, maxs = minmax_peaks(np.random.default_rng(0).normal(size=10_007), n_points=1000)
    assert mins.shape == maxs.shape == (1000,)
    assert mins.dtype == maxs.dtype == np.float64


def test_block_is_n_frames_floor_divided_and_tail_dropped() -> None:
    """Blocks are n_frames // n_points long; frames that do not fill a block are dropped."""
    y = np.zeros(1050)
    y[1049] = 9.0  # in the dropped tail (block = 1, 1000 blocks)
    y[999] = 5.0
    _, maxs = minmax_peaks(y, n_points=1000)
    assert len(maxs) == 1000
    assert maxs[999] == 5.0
    assert maxs.max() == 5.0


def test_ramp_gives_block_ends() -> None:
    """On a rising ramp each block's min is its first sample and its max its last."""
    y = np.arange(100, dtype=np.float64)
    mins, maxs = minmax_peaks(y, n_points=10)
    assert mins.tolist() == list(range(0, 100, 10))
    assert maxs.tolist() == list(range(9, 100, 10))


def test_sine_peaks_reach_its_amplitude() -> None:
    """Blocks spanning whole periods of a 0.8-amplitude sine peak at about +-0.8."""
    t = np.arange(48_000) / 48_000
    y = 0.8 * np.sin(2 * np.pi * 100 * t)
    mins, maxs = minmax_peaks(y, n_points=50)  # 960 samples = 2 periods per block
    np.testing.assert_allclose(maxs, 0.8, atol=1e-3)
    np.testing.assert_allclose(mins, -0.8, atol=1e-3)


def test_channels_are_mixed_to_mono_first() -> None:
    """Stereo input is averaged to mono: opposite channels cancel, equal channels stay."""
    left = np.sin(np.linspace(0, 20, 400))
    mins, maxs = minmax_peaks(np.stack([left, -left], axis=1), n_points=20)
    np.testing.assert_array_equal(mins, 0.0)
    np.testing.assert_array_equal(maxs, 0.0)
    y = np.stack([np.full(40, 0.5), np.full(40, -0.1)], axis=1)
    mins, maxs = minmax_peaks(y, n_points=4)
    np.testing.assert_allclose(mins, 0.2)
    np.testing.assert_allclose(maxs, 0.2)


def test_six_channel_input_gives_one_row_of_peaks() -> None:
    """A 6-channel signal gives one peak pair per block, from the mean of the channels."""
    y = np.tile(np.arange(6, dtype=np.float64), (60, 1))  # mean 2.5 everywhere
    mins, maxs = minmax_peaks(y, n_points=6)
    assert mins.tolist() == [2.5] * 6
    assert maxs.tolist() == [2.5] * 6


def test_short_signal_gives_one_point_per_frame() -> None:
    """With fewer frames than points, each frame is its own block."""
    y = np.array([0.1, -0.2, 0.3])
    mins, maxs = minmax_peaks(y, n_points=1000)
    assert mins.tolist() == [0.1, -0.2, 0.3]
    assert maxs.tolist() == [0.1, -0.2, 0.3]


def test_empty_signal_gives_no_points() -> None:
    """No frames give empty arrays, mono or multichannel."""
    for y in (np.zeros(0), np.zeros((0, 2))):
        mins, maxs = minmax_peaks(y, n_points=10)
        assert mins.shape == maxs.shape == (0,)


def test_single_point_covers_the_whole_signal() -> None:
    """n_points=1 gives the global minimum and maximum."""
    y = np.array([0.0, -0.7, 0.2, 0.9, -0.1])
    mins, maxs = minmax_peaks(y, n_points=1)
    assert mins.tolist() == [-0.7]
    assert maxs.tolist() == [0.9]


@pytest.mark.parametrize("n_points", [0, -5])
def test_n_points_below_one_is_refused(n_points: int) -> None:
    """n_points < 1 raises ValueError."""
    with pytest.raises(ValueError):
        minmax_peaks(np.zeros(10), n_points=n_points)


def test_min_never_exceeds_max() -> None:
    """For any signal each block's minimum is at most its maximum."""
    y = np.random.default_rng(1).uniform(-1, 1, size=(5000, 2))
    mins, maxs = minmax_peaks(y, n_points=333)
    assert (mins <= maxs).all()


def test_normalise_scales_by_largest_magnitude() -> None:
    """Peaks are divided by the largest |value| so the extreme one becomes exactly +-1."""
    mins, maxs = normalise_peaks(np.array([-0.1, -0.25]), np.array([0.5, 0.2]))
    assert mins.tolist() == [-0.2, -0.5]
    assert maxs.tolist() == [1.0, 0.4]


def test_normalise_with_negative_dominant_peak() -> None:
    """When the deepest minimum is the largest magnitude it becomes -1."""
    mins, maxs = normalise_peaks(np.array([-0.4, -0.1]), np.array([0.2, 0.1]))
    assert mins.tolist() == [-1.0, -0.25]
    assert maxs.tolist() == [0.5, 0.25]


def test_normalise_keeps_silence_unchanged() -> None:
    """All-zero peaks come back as zeros (no division by zero)."""
    mins, maxs = normalise_peaks(np.zeros(5), np.zeros(5))
    assert mins.tolist() == [0.0] * 5
    assert maxs.tolist() == [0.0] * 5


def test_normalise_empty_peaks() -> None:
    """Empty peak arrays stay empty."""
    mins, maxs = normalise_peaks(np.zeros(0), np.zeros(0))
    assert mins.size == maxs.size == 0


def test_normalised_peaks_lie_in_unit_range() -> None:
    """After normalisation every value lies in [-1, 1] and one reaches magnitude 1."""
    y = np.random.default_rng(2).normal(scale=3.0, size=20_000)
    mins, maxs = normalise_peaks(*minmax_peaks(y, n_points=1000))
    both = np.concatenate([mins, maxs])
    assert both.min() >= -1.0
    assert both.max() <= 1.0
    assert np.abs(both).max() == 1.0
