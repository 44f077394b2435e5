"""The dropout wear model: rate formula, shared mask across channels, statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taperoom.ephemeral.degrade import WEAR_MODELS, Dropout, dropout_rate


@pytest.mark.parametrize(("plays", "rate", "expected"), [
    (0, 1.0, 0.0),
    (1, 1.0, 0.01),
    (50, 1.0, 0.5),
    (100, 1.0, 1.0),
    (101, 1.0, 1.0),
    (10_000, 1.0, 1.0),
    (10, 2.5, 0.25),
    (3, 0.0, 0.0),
    (1, 100.0, 1.0),
    (7, 10.0, 0.7),
])
def test_dropout_rate_is_plays_times_percent_capped_at_one(plays: int, rate: float,
                                                           expected: float) -> None:
    """dropout_rate = min(play_count * rate_percent / 100, 1)."""
    assert dropout_rate(plays, rate_percent=rate) == pytest.approx(expected)
    assert 0.0 <= dropout_rate(plays, rate_percent=rate) <= 1.0


def test_dropout_rate_refuses_negative_play_count() -> None:
    """A negative play count raises ValueError."""
    with pytest.raises(ValueError):
        dropout_rate(-1, rate_percent=1.0)


def test_dropout_is_the_registered_default_model() -> None:
    """WEAR_MODELS maps 'dropout' to a Dropout instance."""
    assert isinstance(WEAR_MODELS["dropout"], Dropout)
    assert WEAR_MODELS["dropout"].name == "dropout"


def _stereo(n: int, seed: int = 0) -> np.ndarray:
    """Stereo noise with distinct, nonzero left and right samples in every frame."""
    rng = np.random.default_rng(seed)
    left = rng.uniform(0.1, 0.9, n)
    right = -rng.uniform(0.1, 0.9, n)
    return np.stack([left, right], axis=1)


def test_first_play_changes_nothing() -> None:
    """With play_count 0 the output equals the input, whatever the rate."""
    y = _stereo(10_000)
    out = Dropout().apply(y, play_count=0, rate_percent=100.0, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out, y)


def test_same_mask_on_every_channel_keeps_stereo() -> None:
    """Each frame is either zero on all channels or untouched on all: L and R stay distinct."""
    y = _stereo(20_000)
    out = Dropout().apply(y, play_count=30, rate_percent=1.0, rng=np.random.default_rng(1))
    zero = (out == 0.0)
    assert (zero.all(axis=1) | ~zero.any(axis=1)).all()
    kept = ~zero.all(axis=1)
    np.testing.assert_array_equal(out[kept], y[kept])
    assert (out[kept, 0] != out[kept, 1]).all()
    assert out.shape == y.shape


def test_six_channels_share_one_mask() -> None:
    """With 6 channels a dropped frame is silent on all six; kept frames are unchanged."""
    y = np.random.default_rng(3).uniform(0.1, 1.0, size=(5000, 6))
    out = Dropout().apply(y, play_count=40, rate_percent=1.0, rng=np.random.default_rng(4))
    dropped = (out == 0.0).all(axis=1)
    assert ((out == 0.0).any(axis=1) == dropped).all()
    np.testing.assert_array_equal(out[~dropped], y[~dropped])


@pytest.mark.parametrize(("plays", "rate"), [(1, 1.0), (10, 1.0), (30, 1.0), (3, 25.0),
                                             (90, 1.0)])
def test_fraction_dropped_is_within_binomial_bounds(plays: int, rate: float) -> None:
    """About rate*n frames are dropped: within 5 standard deviations of the binomial mean."""
    n = 100_000
    p = dropout_rate(plays, rate_percent=rate)
    out = Dropout().apply(_stereo(n), play_count=plays, rate_percent=rate,
                          rng=np.random.default_rng(plays))
    dropped = int((out == 0.0).all(axis=1).sum())
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(dropped - n * p) <= 5 * sigma + 1


def test_rate_capped_at_one_drops_every_frame() -> None:
    """Once play_count * rate reaches 100 % every frame is zeroed."""
    y = _stereo(5000)
    for plays in (100, 250):
        out = Dropout().apply(y, play_count=plays, rate_percent=1.0,
                              rng=np.random.default_rng(plays))
        assert not out.any()


def test_input_is_not_modified() -> None:
    """apply returns a new array and leaves its input untouched."""
    y = _stereo(1000)
    copy = y.copy()
    out = Dropout().apply(y, play_count=50, rate_percent=1.0, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(y, copy)
    assert out is not y


def test_same_seed_gives_same_mask() -> None:
    """The mask depends only on the generator: equal seeds give equal results."""
    y = _stereo(3000)
    a = Dropout().apply(y, play_count=20, rate_percent=1.0, rng=np.random.default_rng(7))
    b = Dropout().apply(y, play_count=20, rate_percent=1.0, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_wear_accumulates_over_plays() -> None:
    """Frames dropped earlier stay silent and more frames drop on later plays."""
    y = _stereo(20_000)
    rng = np.random.default_rng(5)
    out = y
    silent_before = 0
    for plays in range(1, 6):
        prev = out
        out = Dropout().apply(out, play_count=plays * 10, rate_percent=1.0, rng=rng)
        assert not out[(prev == 0.0).all(axis=1)].any()
        silent = int((out == 0.0).all(axis=1).sum())
        assert silent > silent_before
        silent_before = silent


def test_empty_segment_stays_empty() -> None:
    """A segment with no frames comes back empty with its channel count."""
    out = Dropout().apply(np.zeros((0, 2)), play_count=10, rate_percent=1.0,
                          rng=np.random.default_rng(0))
    assert out.shape == (0, 2)
