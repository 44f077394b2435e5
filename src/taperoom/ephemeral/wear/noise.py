"""``noise``: hiss rising with every play."""

from __future__ import annotations

import numpy as np

from taperoom.ephemeral.wear.common import blend_edges, wear_strength

#: RMS of the hiss one play adds at full strength, in dBFS.
HISS_DBFS = -30.0


def noise(y: np.ndarray, *, play_count: int, rate_percent: float,
          rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Hiss rising with every play, as the noise floor of a worn tape.

    Law: a play after ``k`` earlier ones, at strength ``s = min(k * DEGRADATION_RATE
    / 100, 1)``, adds white Gaussian noise of RMS ``s * 10^(-30/20)`` (-30 dBFS at
    full strength) to every channel, drawn independently per channel at the
    same level. Independent noises add in power, so after ``n`` plays the hiss has
    RMS ``10^(-30/20) sqrt(s_0^2 + ... + s_{n-1}^2)``: at 1 % per play, -51 dBFS
    after 10 plays, -31 dBFS after 30, -15 dBFS after 100.

    Source: the particulate (medium) noise of magnetic tape, white at the head
    (C. D. Mee and E. D. Daniel, *Magnetic Recording Technology*, 2nd ed.,
    McGraw-Hill 1996, ch. 6); a tape whose oxide wears records and replays with
    less signal over the same noise, which is what a rising noise floor models.

    Parameters
    ----------
    y : np.ndarray, shape=(n_frames, n_channels), float in [-1, 1]
        The segment as it is now.
    play_count : int, keyword-only
        Plays of the segment before this one.
    rate_percent : float, keyword-only
        ``DEGRADATION_RATE``, strength added per play in percent.
    rng : np.random.Generator, keyword-only
        Source of the noise.
    sample_rate : int, keyword-only
        Frames per second, in Hz (for the 5 ms edge fades).

    Returns
    -------
    np.ndarray, shape=(n_frames, n_channels), float64
        Not clipped (the WAV encoder clips integer formats).
    """
    out = np.array(y, dtype=np.float64, copy=True)
    s = wear_strength(play_count, rate_percent=rate_percent)
    if s == 0.0 or out.shape[0] == 0:
        return out
    sigma = s * 10 ** (HISS_DBFS / 20)
    wet = out + sigma * rng.standard_normal(out.shape, dtype=np.float32)
    return blend_edges(out, wet, sample_rate=sample_rate)
