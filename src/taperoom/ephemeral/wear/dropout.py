"""``dropout``: frames silenced at random, more with every play (the seeds' model)."""

from __future__ import annotations

import numpy as np

from taperoom.ephemeral.wear.common import wear_strength


def dropout_rate(play_count: int, *, rate_percent: float) -> float:
    """Fraction of frames dropped on the next play of a segment.

    ``min(play_count * rate_percent / 100, 1)``, as in the seeds (``DEGRADATION_RATE``
    percent per play, so the first play drops nothing and, at 1 %, play 101 drops
    everything): :func:`~taperoom.ephemeral.wear.common.wear_strength`.

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
    return wear_strength(play_count, rate_percent=rate_percent)


#: Below this dropout rate the mask is drawn as a binomial count of frames chosen
#: uniformly: 17 against 58 us for 22,050 frames at 1 %, equal near 15 % (numpy 2.4,
#: the benchmark machine).
_SPARSE_RATE = 0.15


class Dropout:
    """Frames silenced at random, more with every play: the sound breaks up into gaps.

    Law: on a play after ``k`` earlier ones each frame is silenced with
    probability ``p_k = min(k * DEGRADATION_RATE / 100, 1)`` (:func:`dropout_rate`),
    so a frame survives ``n`` plays with probability ``prod_{k<n} (1 - p_k)``. One
    mask is drawn per frame and applied to all channels, so a stereo image stays
    stereo (the original implementation mixed to mono). Dropped frames stay
    dropped: wear accumulates.

    Source: the dropout of sndrsnk/ephemeral-audio (``DEGRADATION_RATE``, contract
    ``ephemeral.md``), kept as it was: its frames are whole or silent by design, so
    unlike the other models it has no edge fade (a dropped frame is a click at an
    edge as anywhere else).
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
              rng: np.random.Generator, sample_rate: int = 48000) -> np.ndarray:
        """See :meth:`~taperoom.ephemeral.wear.model.WearModel.apply` (`sample_rate` is
        not used)."""
        out = np.array(y, dtype=np.float64, copy=True)
        mask = self.frame_mask(out.shape[0], play_count=play_count, rate_percent=rate_percent,
                               rng=rng)
        if mask is not None:
            out[mask, :] = 0.0
        return out
