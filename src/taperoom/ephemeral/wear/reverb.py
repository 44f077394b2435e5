"""``reverb``: the sound smears into a room that grows with every play."""

from __future__ import annotations

import math

import numpy as np

from taperoom.ephemeral.wear.common import blend_edges, wear_strength

#: Reverberation time of the room at strength 0 and at full strength, in seconds.
RT60_FRESH = 0.3
RT60_WORN = 3.0
#: Share of the output's energy that is reverberation at full strength.
WET_MAX = 0.5
#: Delay-line lengths at 48 kHz (frames): mutually prime, 21 to 42 ms, scaled to the
#: track's rate. The shortest is the processing block, so ``n / 1009`` steps.
DELAYS_48K = (1009, 1201, 1399, 1601, 1733, 1867, 1931, 2003)


def _householder(k: int) -> np.ndarray:
    """``I - (2/k) 1 1^T``: orthogonal, so the network loses energy only through its gains."""
    return np.eye(k) - 2.0 / k


def reverb(y: np.ndarray, *, play_count: int, rate_percent: float,
           rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """The sound smears into a room that grows with every play (feedback delay network).

    Law: a play after ``k`` earlier ones, at strength ``s = min(k * DEGRADATION_RATE
    / 100, 1)``, sends the segment through a room of reverberation time
    ``RT60 = 0.3 + 2.7 s`` seconds and mixes it in with energy share ``g = 0.5 s``:
    ``out = sqrt(1 - g) y + sqrt(g) r``, the reverberation ``r`` scaled to the
    segment's RMS, so loudness is kept. The room starts empty at the segment's
    first frame and its tail is cut at the last: nothing leaks into the
    neighbouring segments (and the first 5 ms and the last fade back to the input).
    Successive plays reverberate the reverberation again, in ever larger rooms.

    Source: an 8-line feedback delay network with a Householder feedback matrix,
    J.-M. Jot and A. Chaigne, "Digital delay networks for designing artificial
    reverberators", AES 90th Convention (1991), preprint 3030; each line ``i`` of
    ``M_i`` frames has the gain ``10^(-3 M_i / (RT60 f_s))``, so that every path
    loses 60 dB in RT60 seconds (W. C. Sabine's reverberation time; J. A. Moorer,
    "About this reverberation business", *Computer Music Journal* 3(2), 1979).
    Sabine's ``RT60 = 0.161 V / A`` grows as the room's linear size: a "growing
    room". Input and output signs per line are drawn from `rng`.

    Parameters
    ----------
    y : np.ndarray, shape=(n_frames, n_channels), float in [-1, 1]
        The segment as it is now.
    play_count : int, keyword-only
        Plays of the segment before this one.
    rate_percent : float, keyword-only
        ``DEGRADATION_RATE``, strength added per play in percent.
    rng : np.random.Generator, keyword-only
        Draws the network's input and output signs.
    sample_rate : int, keyword-only
        Frames per second, in Hz.

    Returns
    -------
    np.ndarray, shape=(n_frames, n_channels), float64
        The same room on every channel.
    """
    out = np.array(y, dtype=np.float64, copy=True)
    s = wear_strength(play_count, rate_percent=rate_percent)
    n, channels = out.shape
    if s == 0.0 or n == 0:
        return out
    rt60 = RT60_FRESH + (RT60_WORN - RT60_FRESH) * s
    g = WET_MAX * s
    delays = np.array([max(1, round(m * sample_rate / 48_000)) for m in DELAYS_48K])
    k = len(delays)
    gains = 10.0 ** (-3.0 * delays / (rt60 * sample_rate))
    feedback = _householder(k) * gains[None, :]  # column j scaled by line j's gain
    b = rng.choice([-1.0, 1.0], size=k)
    c = rng.choice([-1.0, 1.0], size=k) / math.sqrt(k)
    block = int(delays.min())
    x = out.T  # (channels, n)
    # line state s_i[t] = b_i x[t] + sum_j A_ij g_j s_j[t - M_j], kept with M_max frames
    # of zeros before the segment (the room is empty when the segment starts)
    lead = int(delays.max())
    state = np.zeros((channels, k, lead + n))
    wet = np.empty((channels, n))
    delayed = np.empty((channels, k, block))
    taps = c * gains
    for t0 in range(0, n, block):
        t1 = min(n, t0 + block)
        d = delayed[:, :, :t1 - t0]
        for i, m in enumerate(delays.tolist()):  # every read lies before lead + t0
            d[:, i] = state[:, i, lead + t0 - m:lead + t1 - m]
        wet[:, t0:t1] = taps @ d
        np.matmul(feedback, d, out=state[:, :, lead + t0:lead + t1])
        state[:, :, lead + t0:lead + t1] += b[None, :, None] * x[:, None, t0:t1]
    r = wet.T
    energy = float(np.mean(r * r))
    if energy > 0.0:
        r *= math.sqrt(float(np.mean(out * out)) / energy)
    mixed = math.sqrt(1.0 - g) * out + math.sqrt(g) * r
    return blend_edges(out, mixed, sample_rate=sample_rate)
