"""Tonal features: spectral peaks per frame, the tuning frequency, pitch-class profiles.

:class:`TonalAccumulator` cuts the mono signal into 186 ms frames (8,192 samples,
Hann window, hop 4,096 = 10.8 frames per second), and keeps the strongest
spectral peaks of each frame with their frequency refined by parabolic
interpolation on the log magnitude (Smith & Serra 1987, "PARSHL"). Keeping peaks
rather than a chroma lets the tuning frequency be measured over the whole track
*first* (:func:`tuning_frequency`), and the pitch classes be folded afterwards
around that tuning (:func:`chromagram`), as Gómez (2006) prescribes for the HPCP;
recordings tuned anywhere between 430 and 450 Hz then fold onto the right
semitones.

Sources
-------
- E. Gómez, "Tonal description of polyphonic audio for music content processing",
  INFORMS Journal on Computing 18(3), 2006 (HPCP: peaks, squared magnitudes,
  cosine weighting within a semitone, harmonic weights, tuning first).
- J. O. Smith and X. Serra, "PARSHL: an analysis/synthesis program for
  non-harmonic sounds based on a sinusoidal representation", ICMC 1987
  (quadratic interpolation of spectral peaks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "PITCH_STEPS",
    "TonalAccumulator",
    "TonalFeatures",
    "chromagram",
    "tuning_frequency",
]

#: Analysis frame (samples at 44.1 kHz) and hop: 186 ms frames, 10.8 per second.
FRAME = 8192
HOP = 4096
#: Peaks kept per frame, and the frequency range they are taken from (Hz).
PEAKS = 40
MIN_FREQ = 50.0
MAX_FREQ = 5000.0
#: Peaks weaker than this below the frame's strongest are dropped (dB).
PEAK_RANGE_DB = 60.0
#: Frames processed at once when folding peaks (bounds the temporaries: 2 MB).
_CHUNK = 4096
#: Frames quieter than this (peak magnitude, relative to full scale) hold no peaks.
_SILENT = 1e-5


#: Resolution of the stored peak pitches: 1/512 semitone (0.2 cent); MIDI 111
#: (5 kHz) codes as 56,832, within uint16. Code 0 is "no peak".
PITCH_STEPS = 512


@dataclass(frozen=True)
class TonalFeatures:
    """Spectral peaks of every frame, stored compactly (160 bytes a frame).

    Attributes
    ----------
    pitch : np.ndarray, shape=(n_frames, PEAKS), uint16
        Peak pitches as ``round(PITCH_STEPS * m)``, ``m = 69 + 12 log2(f / 440 Hz)``
        the MIDI pitch of the peak frequency ``f`` (so 1/512 semitone steps); 0
        where a frame has fewer peaks.
    mags : np.ndarray, shape=(n_frames, PEAKS), float16
        Peak magnitudes (linear, a full-scale sine gives about 1); 0 for no peak.
    frame_rate : float
        Frames per second (sample_rate / hop).
    """

    pitch: np.ndarray
    mags: np.ndarray
    frame_rate: float


class TonalAccumulator:
    """Keeps the spectral peaks of each 8,192-sample frame of a mono signal.

    Parameters
    ----------
    sample_rate : int
        Hz (44,100 in the analyzer).

    Notes
    -----
    Memory: 160 bytes per frame (40 peaks, pitch in uint16 and magnitude in
    float16), 12 MB for a two-hour mix.
    """

    def __init__(self, sample_rate: int = 44100) -> None:
        self.sample_rate = sample_rate
        self._window = np.hanning(FRAME).astype(np.float32)
        # a full-scale sine peaks at sum(window) / 2 in the magnitude spectrum
        self._scale = np.float32(2.0 / self._window.sum())
        self._lo = max(2, math.floor(MIN_FREQ * FRAME / sample_rate))
        self._hi = min(FRAME // 2 - 1, math.ceil(MAX_FREQ * FRAME / sample_rate))
        self._carry = np.zeros(FRAME - HOP, dtype=np.float32)  # frames start before 0
        self._pitch: list[np.ndarray] = []
        self._mags: list[np.ndarray] = []

    def feed(self, block: np.ndarray) -> None:
        """Add a block of the mono signal.

        Parameters
        ----------
        block : np.ndarray, shape=(n,), float32
            Samples in [-1, 1].
        """
        x = np.concatenate([self._carry, np.asarray(block, dtype=np.float32)])
        n_frames = (x.shape[0] - FRAME) // HOP + 1 if x.shape[0] >= FRAME else 0
        if n_frames > 0:
            frames = sliding_window_view(x, FRAME)[::HOP][:n_frames]
            self._peaks(frames)
        self._carry = x[n_frames * HOP:].copy()

    def _peaks(self, frames: np.ndarray) -> None:
        spec = np.abs(scipy.fft.rfft(frames * self._window, axis=1)) * self._scale
        lo, hi = self._lo, self._hi
        band = spec[:, lo - 1:hi + 2]
        mid = band[:, 1:-1]
        top = mid.max(axis=1, keepdims=True)
        floor = np.maximum(top * 10 ** (-PEAK_RANGE_DB / 20), _SILENT)
        is_peak = (mid > band[:, :-2]) & (mid >= band[:, 2:]) & (mid > floor)
        cand = np.where(is_peak, mid, 0.0)
        k = min(PEAKS, cand.shape[1])
        idx = np.argpartition(-cand, k - 1, axis=1)[:, :k]
        rows = np.arange(cand.shape[0])[:, None]
        keep = cand[rows, idx] > 0.0
        # quadratic interpolation on the log magnitude (Smith & Serra 1987)
        bins = idx + 1  # column in `band`
        with np.errstate(divide="ignore"):
            a = np.log(band[rows, bins - 1] + 1e-12)
            b = np.log(band[rows, bins] + 1e-12)
            c = np.log(band[rows, bins + 1] + 1e-12)
        den = a - 2.0 * b + c
        delta = np.where(den < 0.0, 0.5 * (a - c) / np.where(den < 0.0, den, -1.0), 0.0)
        delta = np.clip(delta, -0.5, 0.5)
        freq = (lo + idx + delta) * (self.sample_rate / FRAME)
        mag = np.exp(b - 0.25 * (a - c) * delta)
        code = np.rint(PITCH_STEPS * (69.0 + 12.0 * np.log2(np.maximum(freq, 1.0) / 440.0)))
        self._pitch.append(np.where(keep, code, 0).astype(np.uint16))
        self._mags.append(np.where(keep, mag, 0.0).astype(np.float16))

    def finish(self) -> TonalFeatures:
        """The peaks of every frame (the signal's tail is zero-padded into one last
        frame when it holds at least a hop of samples). The accumulator lets go of
        its per-block arrays: call it once."""
        if self._carry.shape[0] > FRAME - HOP:
            self.feed(np.zeros(FRAME - self._carry.shape[0], dtype=np.float32))
        pitch = (np.concatenate(self._pitch) if self._pitch
                 else np.zeros((0, PEAKS), dtype=np.uint16))
        self._pitch = []
        mags = (np.concatenate(self._mags) if self._mags
                else np.zeros((0, PEAKS), dtype=np.float16))
        self._mags = []
        if pitch.shape[1] < PEAKS:  # only when the band holds fewer bins than PEAKS
            pad_w = ((0, 0), (0, PEAKS - pitch.shape[1]))
            pitch, mags = np.pad(pitch, pad_w), np.pad(mags, pad_w)
        return TonalFeatures(pitch=pitch, mags=mags, frame_rate=self.sample_rate / HOP)


def tuning_frequency(features: TonalFeatures, *, min_freq: float = 100.0,
                     max_freq: float = 4000.0) -> float:
    """Concert pitch of the recording: the frequency of A4 (Hz) its notes sit on.

    Every spectral peak between `min_freq` and `max_freq` votes, with its energy
    (squared magnitude), for its deviation from the equal-tempered semitones of
    A4 = 440 Hz, as a phase on the 100-cent circle; the circular mean of the votes
    is the deviation of the whole recording (as the HPCP's tuning step, Gómez
    2006, §3.2, with a circular mean in place of the histogram maximum so that
    vibrato and slightly out-of-tune peaks still centre on the tuning).

    Parameters
    ----------
    features : TonalFeatures
        From :meth:`TonalAccumulator.finish`.
    min_freq, max_freq : float, keyword-only
        Band of the voting peaks (Hz); low peaks are too coarse in frequency.

    Returns
    -------
    float
        The A4 frequency (Hz), between 427.5 and 452.9 (+-50 cents of 440 Hz);
        440.0 when the recording holds no peaks in the band.
    """
    phasor = 0j
    lo, hi = _codes(min_freq, max_freq)
    for start in range(0, features.pitch.shape[0], _CHUNK):  # bounded temporaries
        code = features.pitch[start:start + _CHUNK]
        m = features.mags[start:start + _CHUNK]
        sel = (code >= lo) & (code <= hi) & (m > 0)
        cents = (code[sel].astype(np.float64) / PITCH_STEPS - 69.0) * 100.0
        w = np.square(m[sel].astype(np.float64))
        phasor += complex(np.sum(w * np.exp(2j * np.pi * cents / 100.0)))
    if abs(phasor) == 0.0:
        return 440.0
    deviation = float(np.angle(phasor)) / (2 * np.pi) * 100.0
    return 440.0 * 2.0 ** (deviation / 1200.0)


def _codes(min_freq: float, max_freq: float) -> tuple[int, int]:
    """The pitch codes (see :class:`TonalFeatures`) of a frequency band (Hz)."""
    def code(f: float) -> int:
        return round(PITCH_STEPS * (69.0 + 12.0 * math.log2(f / 440.0)))
    return max(1, code(min_freq)), code(max_freq)


#: HPCP harmonic weights (Gómez 2006): a peak also counts, with weight 0.6**(h-1),
#: towards the pitch class of the fundamental it would be harmonic h of.
_HARMONICS = 4
_HARMONIC_DECAY = 0.6


def chromagram(features: TonalFeatures, *, tuning: float = 440.0,
               harmonics: int = _HARMONICS, min_freq: float = MIN_FREQ,
               max_freq: float = MAX_FREQ) -> np.ndarray:
    """Harmonic pitch-class profile of every frame, folded around `tuning`.

    Parameters
    ----------
    features : TonalFeatures
        From :meth:`TonalAccumulator.finish`.
    tuning : float, keyword-only
        A4 frequency (Hz) of the recording, from :func:`tuning_frequency`.
    harmonics : int, keyword-only
        Harmonics each peak is credited to (1 = the peak's own pitch class only).
    min_freq, max_freq : float, keyword-only
        Band of the peaks used (Hz).

    Returns
    -------
    np.ndarray, shape=(n_frames, 12), float64
        Energy per pitch class, column 0 = C. A peak adds its squared magnitude
        times ``cos^2(pi/2 * d)`` (``d`` its distance in semitones from the
        nearest tempered pitch, so a peak halfway between two semitones counts
        for neither) times ``0.6^(2(h-1))`` for the pitch class it is harmonic
        h of (HPCP, Gómez 2006, §3.3-3.4).
    """
    n = features.pitch.shape[0]
    out = np.zeros((n, 12))
    lo, hi = _codes(min_freq, max_freq)
    shift = 12.0 * math.log2(tuning / 440.0)
    for start in range(0, n, _CHUNK):  # bounded temporaries for long mixes
        code = features.pitch[start:start + _CHUNK]
        m = features.mags[start:start + _CHUNK].astype(np.float64)
        sel = (code >= lo) & (code <= hi) & (m > 0)
        rows = np.broadcast_to(np.arange(start, start + code.shape[0])[:, None],
                               code.shape)[sel]
        midi = code[sel].astype(np.float64) / PITCH_STEPS - shift
        energy = np.square(m[sel])
        for h in range(1, harmonics + 1):
            pitch = midi - 12.0 * math.log2(h)
            nearest = np.rint(pitch)
            d = np.abs(pitch - nearest)
            w = energy * np.square(np.cos(np.pi * d)) * (_HARMONIC_DECAY ** (2 * (h - 1)))
            np.add.at(out, (rows, nearest.astype(np.int64) % 12), w)
    return out
