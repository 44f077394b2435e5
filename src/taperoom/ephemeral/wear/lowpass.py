"""``lowpass``: the high frequencies fade with every play, as on worn tape."""

from __future__ import annotations

import math

import numpy as np

from taperoom.ephemeral.wear.common import blend_edges, fast_length, wear_strength

#: Loss added at 10 kHz by one play at full strength, in dB.
LOSS_AT_10K_DB = 6.0
#: Reflected frames added at each end before filtering, in seconds: the filter then
#: sees a continuous signal instead of the FFT's wrap from the last frame to the first.
PAD_SECONDS = 0.01


def lowpass(y: np.ndarray, *, play_count: int, rate_percent: float,
            rng: np.random.Generator | None = None, sample_rate: int) -> np.ndarray:
    """High frequencies fade with every play, as on worn tape (Wallace spacing loss).

    Law: a play after ``k`` earlier ones, at strength ``s = min(k * DEGRADATION_RATE
    / 100, 1)``, filters the segment with the zero-phase response
    ``|H(f)| = exp(-s f / f0)``, ``f0 = 10 kHz / ln(10^(6/20))``: a loss of
    ``6 s`` dB at 10 kHz, ``12 s`` dB at 20 kHz, ``0.6 s`` dB at 1 kHz, linear in
    frequency. Losses of successive plays add up in dB, so after ``n`` plays the
    segment has lost ``6 (s_0 + ... + s_{n-1})`` dB at 10 kHz.

    Source: R. L. Wallace, "The reproduction of magnetically recorded signals",
    *Bell System Technical Journal* 30 (1951), 1145-1173: a head-to-tape spacing
    ``d`` costs ``54.6 d / lambda`` dB at wavelength ``lambda = v / f``, i.e.
    ``exp(-2 pi d f / v)``, linear in frequency. Each play here adds the spacing of
    a little more shed oxide and dirt: at cassette speed (4.76 cm/s), ``s = 1``
    is 0.53 um more spacing.

    Parameters
    ----------
    y : np.ndarray, shape=(n_frames, n_channels), float in [-1, 1]
        The segment as it is now.
    play_count : int, keyword-only
        Plays of the segment before this one.
    rate_percent : float, keyword-only
        ``DEGRADATION_RATE``, strength added per play in percent.
    rng : np.random.Generator, optional, keyword-only
        Not used (the filter is deterministic); part of the model interface.
    sample_rate : int, keyword-only
        Frames per second, in Hz.

    Returns
    -------
    np.ndarray, shape=(n_frames, n_channels), float64
        The same filter on every channel; the first and last 5 ms fade from the
        filtered signal to the input (:func:`~taperoom.ephemeral.wear.common.blend_edges`).
    """
    out = np.array(y, dtype=np.float64, copy=True)
    s = wear_strength(play_count, rate_percent=rate_percent)
    n = out.shape[0]
    if s == 0.0 or n < 2:
        return out
    pad = min(n - 1, round(PAD_SECONDS * sample_rate))
    padded = np.pad(out, ((pad, pad), (0, 0)), mode="reflect")
    size = fast_length(padded.shape[0])
    spectrum = np.fft.rfft(padded, n=size, axis=0)
    f0 = 10_000.0 / math.log(10 ** (LOSS_AT_10K_DB / 20))
    spectrum *= np.exp(-s / f0 * np.fft.rfftfreq(size, 1.0 / sample_rate))[:, None]
    wet = np.fft.irfft(spectrum, n=size, axis=0)[pad:pad + n]
    return blend_edges(out, wet, sample_rate=sample_rate)
