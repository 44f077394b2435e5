"""``wow``: the pitch wobbles, as a stretched tape."""

from __future__ import annotations

import math

import numpy as np

from taperoom.ephemeral.wear.common import wear_strength

#: Peak speed (and so pitch) deviation of one play at full strength: 1 % is 17 cents.
DEPTH = 0.01
#: Range of wow rates, in Hz.
RATE_RANGE_HZ = (0.5, 6.0)


def wow(y: np.ndarray, *, play_count: int, rate_percent: float,
        rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """The pitch wobbles, more with every play, as a stretched tape.

    Law: a play after ``k`` earlier ones, at strength ``s = min(k * DEGRADATION_RATE
    / 100, 1)``, reads the segment through a slowly varying delay

        ``d(t) = A (1 - cos(2 pi m t / T)) / 2``,  ``A = s * 0.01 * T / (pi m)``

    where ``T`` is the segment's length and ``m >= 1`` a whole number of cycles, the
    nearest to ``T`` times a wow rate drawn uniformly in 0.5-6 Hz (2, 4 or 6 Hz
    in a 0.5 s segment). The playback speed is ``1 - d'(t)``, so the pitch swings
    by up to ``s`` percent (17 cents at full strength). ``d`` is 0 with zero slope
    at both ends: the first and last frames are the input's and the speed joins
    the neighbours' without a jump. Every channel gets the same delay, as every
    track of a tape moves together. Samples between frames are interpolated
    linearly. Successive plays stack their wobbles.

    Source: wow is the slow (below about 6 Hz, "flutter" above) periodic speed
    variation of a transport, measured as peak frequency deviation of a 3.15 kHz
    tone with its weighting peaking at 4 Hz: IEC 60386:1972 / AES6-2008,
    *Method for measurement of weighted peak flutter of sound recording and
    reproducing equipment*. It is modelled, as usual, as a sinusoidally modulated
    delay line (J. Dattorro, "Effect design, part 2: delay-line modulation and
    chorus", *J. Audio Eng. Soc.* 45(10), 1997).

    Parameters
    ----------
    y : np.ndarray, shape=(n_frames, n_channels), float in [-1, 1]
        The segment as it is now.
    play_count : int, keyword-only
        Plays of the segment before this one.
    rate_percent : float, keyword-only
        ``DEGRADATION_RATE``, strength added per play in percent.
    rng : np.random.Generator, keyword-only
        Draws the wow rate.
    sample_rate : int, keyword-only
        Frames per second, in Hz.

    Returns
    -------
    np.ndarray, shape=(n_frames, n_channels), float64
    """
    out = np.array(y, dtype=np.float64, copy=True)
    s = wear_strength(play_count, rate_percent=rate_percent)
    n = out.shape[0]
    if s == 0.0 or n < 3:
        return out
    span = n - 1  # frames from the first to the last
    rate_hz = rng.uniform(*RATE_RANGE_HZ)
    cycles = max(1, round(rate_hz * span / sample_rate))
    phase = np.linspace(0.0, 2.0 * math.pi * cycles, n)
    depth = s * DEPTH * span / (math.pi * cycles)  # frames
    pos = np.arange(n, dtype=np.float64) - depth * 0.5 * (1.0 - np.cos(phase))
    np.clip(pos, 0.0, span, out=pos)
    i0 = np.minimum(pos.astype(np.intp), span - 1)
    frac = (pos - i0)[:, None]
    out = out[i0] * (1.0 - frac) + out[i0 + 1] * frac
    out[0] = y[0]
    out[-1] = y[-1]
    return out
