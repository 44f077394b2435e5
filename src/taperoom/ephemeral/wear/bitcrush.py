"""``bitcrush``: resolution lost with every play."""

from __future__ import annotations

import numpy as np

from taperoom.ephemeral.wear.common import blend_edges, wear_strength

#: Bits kept by a play at strength 0 and at full strength.
BITS_FRESH = 16.0
BITS_WORN = 4.0


def bitcrush(y: np.ndarray, *, play_count: int, rate_percent: float,
             rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Resolution lost with every play: the samples fall onto a coarser grid.

    Law: a play after ``k`` earlier ones, at strength ``s = min(k * DEGRADATION_RATE
    / 100, 1)``, requantises every sample to ``b = 16 - 12 s`` bits (a step of
    ``Delta = 2^(1 - b)`` over the full scale [-1, 1]; ``b`` need not be whole),
    from 16 bits at first down to 4 at full strength, with TPDF dither of
    ``+-1`` step peak. Later plays quantise the already quantised signal again on
    a coarser grid, adding their dither: resolution only ever goes down.

    Source: triangular-PDF dither, the sum of two independent uniform variables
    of one step each, makes the first two moments of the quantisation error
    independent of the signal (no distortion, no noise modulation, only a
    steady noise floor): R. A. Wannamaker, S. P. Lipshitz, J. Vanderkooy and
    J. N. Wright, "A theory of nonsubtractive dither", *IEEE Trans. Signal
    Processing* 48(2) (2000), 499-516; S. P. Lipshitz, R. A. Wannamaker and
    J. Vanderkooy, "Quantization and dither: a theoretical survey", *J. Audio
    Eng. Soc.* 40(5) (1992).

    Parameters
    ----------
    y : np.ndarray, shape=(n_frames, n_channels), float in [-1, 1]
        The segment as it is now.
    play_count : int, keyword-only
        Plays of the segment before this one.
    rate_percent : float, keyword-only
        ``DEGRADATION_RATE``, strength added per play in percent.
    rng : np.random.Generator, keyword-only
        Source of the dither (independent per channel, same law on all).
    sample_rate : int, keyword-only
        Frames per second, in Hz (for the 5 ms edge fades).

    Returns
    -------
    np.ndarray, shape=(n_frames, n_channels), float64
    """
    out = np.array(y, dtype=np.float64, copy=True)
    s = wear_strength(play_count, rate_percent=rate_percent)
    if s == 0.0 or out.shape[0] == 0:
        return out
    step = 2.0 ** (1.0 - (BITS_FRESH - (BITS_FRESH - BITS_WORN) * s))
    dither = rng.random(out.shape, dtype=np.float32) - rng.random(out.shape, dtype=np.float32)
    wet = np.rint(out / step + dither) * step
    return blend_edges(out, wet, sample_rate=sample_rate)
