"""Wear models: how a segment loses samples each time it is played (pure DSP).

A wear model turns the samples of one segment and its play count so far into
the worn samples. Models are registered by name in :data:`WEAR_MODELS` and
chosen with the ``WEAR_MODEL`` setting; :class:`Dropout` is the original model
of the ephemeral-audio seeds.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


def dropout_rate(play_count: int, *, rate_percent: float) -> float:
    """Fraction of frames dropped on the next play of a segment.

    ``min(play_count * rate_percent / 100, 1)``, as in the seeds (``DEGRADATION_RATE``
    percent per play, so the first play drops nothing and, at 1 %, play 101 drops
    everything).

    Parameters
    ----------
    play_count : int >= 0
        Plays of the segment before this one.
    rate_percent : float >= 0, keyword-only
        Dropout added per play, in percent.

    Returns
    -------
    float in [0, 1]
    """
    if play_count < 0:
        raise ValueError("play_count must be >= 0")
    return min(play_count * rate_percent / 100.0, 1.0)


#: Below this dropout rate the mask is drawn as a binomial count of frames chosen
#: uniformly: 17 against 58 us for 22,050 frames at 1 %, equal near 15 % (numpy 2.4,
#: the benchmark machine).
_SPARSE_RATE = 0.15


class WearModel(Protocol):
    """Interface of a wear model."""

    name: str

    def apply(self, y: np.ndarray, *, play_count: int, rate_percent: float,
              rng: np.random.Generator) -> np.ndarray:
        """Return the worn copy of segment `y`.

        Parameters
        ----------
        y : np.ndarray, shape=(n_frames, n_channels), float64 in [-1, 1]
            The segment as it is now.
        play_count : int, keyword-only
            Plays of this segment before this one.
        rate_percent : float, keyword-only
            ``DEGRADATION_RATE`` setting, percent per play.
        rng : np.random.Generator, keyword-only
            Source of randomness.

        Returns
        -------
        np.ndarray, same shape as `y`
        """
        ...


class Dropout:
    """Zero a random subset of frames: every channel of a dropped frame together.

    The fraction dropped is :func:`dropout_rate`. One mask is drawn per frame and
    applied to all channels, so a stereo image stays stereo (the original
    implementation mixed to mono). Dropped frames stay dropped: wear accumulates.
    """

    name = "dropout"

    def frame_mask(self, n_frames: int, *, play_count: int, rate_percent: float,
                   rng: np.random.Generator) -> np.ndarray | None:
        """Frames to silence on this play.

        Lets the store zero frames in the raw bytes without decoding the segment
        (:meth:`apply` gives the same result on decoded samples for the same `rng`
        state).

        Returns
        -------
        np.ndarray, shape=(n_frames,), bool, or None
            True for dropped frames; None when nothing is dropped.
        """
        rate = dropout_rate(play_count, rate_percent=rate_percent)
        if rate <= 0.0 or n_frames == 0:
            return None
        if rate < _SPARSE_RATE:
            # the same law as one draw per frame: how many frames drop is binomial,
            # and which ones a uniform choice of that many (cheaper at low rates)
            mask = np.zeros(n_frames, dtype=bool)
            mask[rng.choice(n_frames, int(rng.binomial(n_frames, rate)), replace=False)] = True
            return mask
        # float32 draws: 24 random bits per frame are plenty for a rate, at less cost
        return rng.random(n_frames, dtype=np.float32) < rate

    def apply(self, y: np.ndarray, *, play_count: int, rate_percent: float,
              rng: np.random.Generator) -> np.ndarray:
        """See :meth:`WearModel.apply`."""
        out = np.array(y, dtype=np.float64, copy=True)
        mask = self.frame_mask(out.shape[0], play_count=play_count, rate_percent=rate_percent,
                               rng=rng)
        if mask is not None:
            out[mask, :] = 0.0
        return out


WEAR_MODELS: dict[str, WearModel] = {m.name: m for m in (Dropout(),)}
