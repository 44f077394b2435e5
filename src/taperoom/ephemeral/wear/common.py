"""What every wear model shares: how strength grows with plays, edge fades, seeds.

A wear model is a pure function of one segment's frames and its play count
(:class:`taperoom.ephemeral.wear.WearModel`). The store applies it to the frames
on disk and writes the result back in place, so its effect accumulates: play
``k`` wears what plays ``0..k-1`` left behind, and nothing is ever undone.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

#: Seconds over which a model's effect fades in after a segment's first frame and
#: out before its last, so that a worn segment meets its neighbours without a click.
EDGE_SECONDS = 0.005


def wear_strength(play_count: int, *, rate_percent: float) -> float:
    """Strength of the wear applied on the next play of a segment, in [0, 1].

    ``min(play_count * rate_percent / 100, 1)``: the dropout rate of the seeds
    (``DEGRADATION_RATE`` percent per play), used by every model, so that the
    first play changes nothing and, at 1 %, play 101 and later wear at full
    strength.

    Parameters
    ----------
    play_count : int >= 0
        Plays of the segment before this one.
    rate_percent : float >= 0, keyword-only
        Strength added per play, in percent.

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    ValueError
        `play_count` is negative.
    """
    if play_count < 0:
        raise ValueError("play_count must be >= 0")
    return min(play_count * rate_percent / 100.0, 1.0)


def rng_for(track: str, segment: int, play_count: int) -> np.random.Generator:
    """The random generator of one play: the same for the same track, segment and count.

    Seeded with the 128-bit BLAKE2b digest of the three (not Python's ``hash``,
    which changes from one process to the next), so every worker process wears a
    given play in the same way.

    Parameters
    ----------
    track : str
        The track's file name.
    segment : int
        Segment index.
    play_count : int
        Plays of the segment before this one.
    """
    raw = f"{segment}:{play_count}:".encode() + track.encode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(raw, digest_size=16).digest()
    return np.random.Generator(np.random.Philox(key=int.from_bytes(digest, "little")))


def fade_frames(n_frames: int, sample_rate: int) -> int:
    """Frames of the edge fade: :data:`EDGE_SECONDS`, at most half the segment."""
    return max(0, min(round(EDGE_SECONDS * sample_rate), n_frames // 2))


def blend_edges(dry: np.ndarray, wet: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """`wet`, cross-faded to `dry` over :data:`EDGE_SECONDS` at both ends.

    The gain of `wet` rises as a raised cosine, ``(1 - cos(pi i / F)) / 2`` for
    frame ``i < F``, from 0 at the first frame to 1 after ``F`` frames, and falls
    the same way before the last frame, so the first and last frames are `dry`'s
    exactly and the difference between the two grows smoothly (no step, no corner).

    Parameters
    ----------
    dry : np.ndarray, shape=(n_frames, n_channels)
        The segment before the play.
    wet : np.ndarray, same shape
        The segment worn; modified in place and returned.
    sample_rate : int, keyword-only
        Frames per second.

    Returns
    -------
    np.ndarray, same shape
    """
    n = dry.shape[0]
    f = fade_frames(n, sample_rate)
    if f == 0:
        if n:
            wet[0] = dry[0]
            wet[-1] = dry[-1]
        return wet
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(f) / f))[:, None]
    wet[:f] = dry[:f] + ramp * (wet[:f] - dry[:f])
    back = ramp[::-1]
    wet[n - f:] = dry[n - f:] + back * (wet[n - f:] - dry[n - f:])
    return wet


@functools.lru_cache(maxsize=256)
def fast_length(n: int) -> int:
    """Smallest ``2^a 3^b 5^c`` at least `n`: an FFT length pocketfft (numpy) computes
    quickly."""
    m = max(n, 1)
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1
