"""Programme loudness (EBU R128 / ITU-R BS.1770-4), true peak and ReplayGain 2.0.

One pass, block by block: :class:`LoudnessAccumulator` K-weights every channel,
keeps one weighted mean square per 100 ms step (a two-hour mix keeps 72,000
numbers) and the running sample and true peaks; :func:`loudness` turns those
into the figures.

Sources
-------
- ITU-R BS.1770-4 (2015), "Algorithms to measure audio programme loudness and
  true-peak audio level": K-weighting (§2.1, Tables 1-2), channel weights
  (Table 3), 400 ms gating blocks with 75 % overlap, absolute gate -70 LKFS and
  relative gate -10 LU (§2.8), the true-peak interpolation filter (Annex 2, 4x
  oversampling, 48 taps in 4 phases).
- The K-weighting at sample rates other than 48 kHz is the analogue prototype
  of the BS.1770 filters (shelf f0 = 1681.97 Hz, G = +4.0 dB, Q = 0.7072;
  high-pass f0 = 38.135 Hz, Q = 0.5003) through the bilinear transform, as in
  libebur128 (``ebur128_init_filter``); at 48 kHz it gives the BS.1770 table.
- EBU Tech 3341 (2016) "Loudness Metering": momentary 400 ms, short-term 3 s.
- EBU Tech 3342 (2016) "Loudness Range": short-term loudness, absolute gate
  -70 LUFS, relative gate -20 LU, LRA = 95th - 10th percentile.
- ReplayGain 2.0 specification (hydrogenaud.io wiki, 2016): track gain =
  -18 LUFS - integrated loudness (BS.1770 loudness, reference -18 LUFS).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal as sps

__all__ = [
    "REPLAYGAIN_REFERENCE_LUFS",
    "LoudnessAccumulator",
    "LoudnessFeatures",
    "LoudnessResult",
    "k_weighting_sos",
    "loudness",
]

#: ReplayGain 2.0 reference level (LUFS).
REPLAYGAIN_REFERENCE_LUFS = -18.0

#: BS.1770-4 §2.8: absolute gate (LKFS) and relative gate (LU below the gated mean).
_ABSOLUTE_GATE = -70.0
_RELATIVE_GATE = -10.0
#: EBU Tech 3342: relative gate of the loudness range (LU).
_LRA_RELATIVE_GATE = -20.0

#: BS.1770-4 Annex 2 true-peak interpolation filter, 4 phases x 12 taps; phase p
#: gives the sample p/4 of a period later (phases 2 and 3 are phases 1 and 0 reversed).
_TP_PHASE0 = (0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000,
              -0.0594482421875, 0.1373291015625, 0.9721679687500, -0.1022949218750,
              0.0476074218750, -0.0266113281250, 0.0148925781250, -0.0083007812500)
_TP_PHASE1 = (-0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250,
              -0.1665039062500, 0.4650878906250, 0.7797851562500, -0.2003173828125,
              0.1015625000000, -0.0582275390625, 0.0330810546875, -0.0189208984375)
_TP_PHASES = np.array([_TP_PHASE0, _TP_PHASE1, _TP_PHASE1[::-1], _TP_PHASE0[::-1]],
                      dtype=np.float32)
_TP_TAPS = _TP_PHASES.shape[1]
#: The phases as one (12, 4) matrix for correlating with a sliding window (BLAS).
_TP_MATRIX = np.ascontiguousarray(_TP_PHASES[:, ::-1].T)
#: Largest gain of a phase for any input: sum of its absolute taps (2.03).
_TP_GAIN = float(np.abs(_TP_PHASES).sum(axis=1).max())


def k_weighting_sos(sample_rate: float) -> np.ndarray:
    """BS.1770-4 K-weighting filter (pre-filter shelf, then RLB high-pass) as SOS.

    Parameters
    ----------
    sample_rate : float
        Hz.

    Returns
    -------
    np.ndarray, shape=(2, 6), float64
        Second-order sections for :func:`scipy.signal.sosfilt`. At 48 kHz they
        equal the coefficients of BS.1770-4 Tables 1 and 2 (to 1e-8).

    Notes
    -----
    Analogue prototype parameters from libebur128 (module docstring).
    """
    k = math.tan(math.pi * 1681.974450955533 / sample_rate)
    q = 0.7071752369554196
    vh = 10.0 ** (3.999843853973347 / 20.0)
    vb = vh ** 0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0,
             (vh - vb * k / q + k * k) / a0, 1.0, 2.0 * (k * k - 1.0) / a0,
             (1.0 - k / q + k * k) / a0]
    k = math.tan(math.pi * 38.13547087602444 / sample_rate)
    q = 0.5003270373238773
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def channel_weight(name: str) -> float:
    """BS.1770-4 Table 3 weight of a channel, by FFmpeg channel name.

    1.0 for left, right and centre (and any channel the table does not name),
    1.41 (+1.5 dB) for the surround channels, 0 for the LFE channel.
    """
    if name in ("LFE", "LFE2", "LOW_FREQUENCY", "LOW_FREQUENCY_2"):
        return 0.0
    if name in ("BL", "BR", "SL", "SR", "SIDE_LEFT", "SIDE_RIGHT", "BACK_LEFT",
                "BACK_RIGHT"):
        return 1.41
    return 1.0


@dataclass(frozen=True)
class LoudnessFeatures:
    """What :class:`LoudnessAccumulator` keeps of a signal.

    Attributes
    ----------
    step_power : np.ndarray, shape=(n_steps,), float64
        Channel-weighted mean square of the K-weighted signal over each complete
        100 ms step (BS.1770-4 ``sum_i G_i z_i`` over 100 ms).
    step_seconds : float
        Length of a step (0.1 s).
    sample_peak : float
        Largest absolute sample value (linear, full scale = 1).
    true_peak : float
        Largest absolute value of the 4x-oversampled signal (BS.1770-4 Annex 2),
        at least `sample_peak` (linear).
    duration : float
        Seconds fed.
    """

    step_power: np.ndarray
    step_seconds: float
    sample_peak: float
    true_peak: float
    duration: float


@dataclass(frozen=True)
class LoudnessResult:
    """Loudness figures of a programme.

    Attributes
    ----------
    integrated_lufs : float or None
        Gated integrated loudness (LUFS, BS.1770-4 §2.8); None when no 400 ms
        block is above the absolute gate (silence, or shorter than 400 ms).
    loudness_range : float or None
        EBU Tech 3342 loudness range (LU); None without short-term blocks above
        the gates.
    true_peak_dbtp : float or None
        True peak (dBTP); None for digital silence.
    sample_peak_dbfs : float or None
        Sample peak (dBFS); None for digital silence.
    true_peak : float
        True peak, linear.
    replaygain_gain_db : float or None
        ReplayGain 2.0 track gain (dB): -18 LUFS minus the integrated loudness.
    replaygain_peak : float
        ReplayGain track peak: the true peak, linear (ReplayGain 2.0 allows a
        true peak; it keeps clipping prevention safe).
    """

    integrated_lufs: float | None
    loudness_range: float | None
    true_peak_dbtp: float | None
    sample_peak_dbfs: float | None
    true_peak: float
    replaygain_gain_db: float | None
    replaygain_peak: float


class LoudnessAccumulator:
    """Feeds blocks of multichannel audio; keeps 100 ms loudness steps and the peaks.

    Parameters
    ----------
    sample_rate : int
        Hz (44,100 in the analyzer).
    channel_names : sequence of str
        FFmpeg channel names of the block columns (weights from
        :func:`channel_weight`); a mono file is one channel, weight 1.

    Notes
    -----
    Memory: one float per 100 ms step plus filter states; CPU: two biquads and
    four 12-tap FIR phases per sample and channel.
    """

    def __init__(self, sample_rate: int, channel_names: tuple[str, ...] | list[str]) -> None:
        if sample_rate <= 0:
            raise ValueError("sample_rate must be > 0")
        if not channel_names:
            raise ValueError("at least one channel")
        self.sample_rate = sample_rate
        self._weights = np.array([channel_weight(n) for n in channel_names], dtype=np.float64)
        self._sos = k_weighting_sos(sample_rate)
        self._zi = np.zeros((self._sos.shape[0], 2, len(channel_names)))
        self._step = round(sample_rate * 0.1)
        self._carry_sq = 0.0  # weighted sum of squares of the unfinished step
        self._carry_n = 0
        self._steps: list[np.ndarray] = []
        self._tp_tail = np.zeros((_TP_TAPS - 1, len(channel_names)), dtype=np.float32)
        self._sample_peak = 0.0
        self._true_peak = 0.0
        self._frames = 0

    def feed(self, block: np.ndarray) -> None:
        """Add a block.

        Parameters
        ----------
        block : np.ndarray, shape=(n_frames, n_channels), float32
            Samples in [-1, 1], channels as given to the constructor.

        Raises
        ------
        ValueError
            The block has another number of channels.
        """
        if block.ndim != 2 or block.shape[1] != self._weights.size:
            raise ValueError(f"expected shape (n, {self._weights.size}), got {block.shape}")
        n = block.shape[0]
        if n == 0:
            return
        self._frames += n
        self._peaks(block)
        # K-weighting per channel (BS.1770-4 §2.1), states carried across blocks
        # (every channel in one call: zi has shape (sections, 2, channels))
        z, self._zi = sps.sosfilt(self._sos, block, axis=0, zi=self._zi)
        sq = np.square(z, out=z) @ self._weights
        # 100 ms steps
        first = min(n, self._step - self._carry_n)
        self._carry_sq += float(sq[:first].sum())
        self._carry_n += first
        if self._carry_n < self._step:
            return
        done = [self._carry_sq / self._step]
        rest = sq[first:]
        whole = rest.shape[0] // self._step
        if whole:
            done.extend(rest[: whole * self._step].reshape(whole, self._step).mean(axis=1))
        tail = rest[whole * self._step:]
        self._carry_sq = float(tail.sum())
        self._carry_n = tail.shape[0]
        self._steps.append(np.asarray(done, dtype=np.float64))

    def _peaks(self, block: np.ndarray) -> None:
        peak = float(np.abs(block).max())
        self._sample_peak = max(self._sample_peak, peak)
        ext = np.concatenate([self._tp_tail, block.astype(np.float32, copy=False)])
        self._tp_tail = ext[-(_TP_TAPS - 1):].copy()
        # An interpolated value is bounded by sum|h| * max|x| over its 12 inputs
        # (at most 2.03 x); skip the work when that cannot beat the peak so far.
        bound = _TP_GAIN * max(peak, float(np.abs(self._tp_tail).max(initial=0.0)))
        if bound <= self._true_peak:
            return
        for c in range(ext.shape[1]):
            if self._weights[c] == 0.0 and ext.shape[1] > 1:
                continue  # BS.1770 leaves the LFE channel out of the programme
            x = np.ascontiguousarray(ext[:, c])
            windows = sliding_window_view(x, _TP_TAPS)
            if self._true_peak > 0.0:
                # by the same bound, only windows holding a sample above
                # true_peak / gain can beat the peak so far: interpolate those
                hot = np.concatenate([[0], np.cumsum(np.abs(x) * _TP_GAIN > self._true_peak)])
                starts = np.flatnonzero(hot[_TP_TAPS:] > hot[:-_TP_TAPS])
                if starts.size == 0:
                    continue
                if starts.size < windows.shape[0] // 2:
                    windows = windows[starts]
            # every output sample of the 4 phases at once: windows of 12 inputs x (12, 4)
            y = windows @ _TP_MATRIX
            self._true_peak = max(self._true_peak, float(y.max()), float(-y.min()))

    def finish(self) -> LoudnessFeatures:
        """The features fed so far (the accumulator may not be fed afterwards).

        The interpolation filter is run over 11 frames of trailing silence, so the
        true peak also covers the last samples' ringing.
        """
        self._peaks(np.zeros((_TP_TAPS - 1, self._weights.size), dtype=np.float32))
        steps = np.concatenate(self._steps) if self._steps else np.zeros(0)
        return LoudnessFeatures(step_power=steps, step_seconds=self._step / self.sample_rate,
                                sample_peak=self._sample_peak,
                                true_peak=max(self._true_peak, self._sample_peak),
                                duration=self._frames / self.sample_rate)


def _lufs(power: np.ndarray | float) -> np.ndarray:
    """BS.1770-4 eq. 2: ``-0.691 + 10 log10(power)`` (-inf for zero power)."""
    with np.errstate(divide="ignore"):
        return -0.691 + 10.0 * np.log10(power)


def _gated_mean(blocks: np.ndarray, relative_gate: float) -> tuple[np.ndarray, float | None]:
    """Blocks above the absolute and relative gates, and their mean power."""
    above = blocks[_lufs(blocks) > _ABSOLUTE_GATE]
    if above.size == 0:
        return above, None
    threshold = float(_lufs(above.mean())) + relative_gate
    gated = above[_lufs(above) > threshold]
    if gated.size == 0:
        return gated, None
    return gated, float(gated.mean())


def _windows(step_power: np.ndarray, n: int) -> np.ndarray:
    """Mean power of every window of `n` consecutive steps (one per step)."""
    if step_power.size < n:
        return np.zeros(0)
    c = np.concatenate([[0.0], np.cumsum(step_power)])
    return (c[n:] - c[:-n]) / n


def loudness(features: LoudnessFeatures) -> LoudnessResult:
    """Integrated loudness, loudness range, peaks and ReplayGain from the features.

    Parameters
    ----------
    features : LoudnessFeatures
        From :meth:`LoudnessAccumulator.finish`.

    Returns
    -------
    LoudnessResult
        Figures rounded to 0.01 (dB / LU / LUFS).

    Notes
    -----
    Gating blocks are 400 ms long every 100 ms (four steps, 75 % overlap), as
    BS.1770-4 §2.8; short-term blocks for the loudness range are 3 s long every
    100 ms (EBU Tech 3342 asks for at least 10 per second).
    """
    per_block = round(0.4 / features.step_seconds)
    _, mean_power = _gated_mean(_windows(features.step_power, per_block), _RELATIVE_GATE)
    integrated = None if mean_power is None else round(float(_lufs(mean_power)), 2)

    short = _windows(features.step_power, round(3.0 / features.step_seconds))
    gated, _ = _gated_mean(short, _LRA_RELATIVE_GATE)
    lra: float | None = None
    if gated.size:
        lo, hi = np.percentile(_lufs(gated), [10.0, 95.0])
        lra = round(float(hi - lo), 2)

    def db(x: float) -> float | None:
        return None if x <= 0.0 else round(20.0 * math.log10(x), 2)

    return LoudnessResult(
        integrated_lufs=integrated,
        loudness_range=lra,
        true_peak_dbtp=db(features.true_peak),
        sample_peak_dbfs=db(features.sample_peak),
        true_peak=features.true_peak,
        replaygain_gain_db=(None if integrated is None
                            else round(REPLAYGAIN_REFERENCE_LUFS - integrated, 2)),
        replaygain_peak=features.true_peak,
    )
