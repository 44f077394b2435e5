"""Waveform overviews (min/max peaks per display column)."""

from __future__ import annotations

import numpy as np


def minmax_peaks(y: np.ndarray, *, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum of the mono mix over `n_points` equal blocks.

    Parameters
    ----------
    y : np.ndarray, shape=(n_frames,) or (n_frames, n_channels)
        Samples, any float scale. Channels are averaged to mono first.
    n_points : int > 0, keyword-only
        Number of blocks. The block length is ``n_frames // n_points`` frames (at
        least 1), as the original ``/waveform`` route computed it; trailing frames
        that do not fill a block are dropped, so fewer points come back for very
        short signals.

    Returns
    -------
    mins, maxs : np.ndarray, shape=(n,), float64
        Block minima and maxima, with ``n = min(n_points, n_frames)``.

    Raises
    ------
    ValueError
        If `n_points` < 1.
    """
    if n_points < 1:
        raise ValueError("n_points must be >= 1")
    mono = y.mean(axis=1) if y.ndim == 2 else y
    mono = np.asarray(mono, dtype=np.float64)
    if mono.size == 0:
        return np.zeros(0), np.zeros(0)
    block = max(1, mono.size // n_points)
    n = min(n_points, mono.size // block)
    blocks = mono[: n * block].reshape(n, block)
    return blocks.min(axis=1), blocks.max(axis=1)


def normalise_peaks(mins: np.ndarray, maxs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale peaks by their largest magnitude so that they span at most [-1, 1].

    Silence (all zeros) is returned unchanged.
    """
    peak = float(max(np.abs(mins).max(initial=0.0), np.abs(maxs).max(initial=0.0)))
    if peak <= 0.0:
        return mins, maxs
    return mins / peak, maxs / peak
