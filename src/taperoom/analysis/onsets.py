"""Onset features for rhythm analysis: multi-band log-magnitude spectral flux, block by block.

One short-time Fourier transform (Hann window of 1024 samples, hop 256 at 44.1 kHz,
i.e. 172.3 frames per second, frames centred on ``i * hop``) gives per frame:

* the half-wave rectified difference of the log-compressed magnitude spectrum
  ``log(1 + 100 |X|)`` between consecutive frames, summed in six frequency bands
  (spectral flux with logarithmic compression: Klapuri 1999, Böck & Widmer 2013
  "Maximum filter vibrato suppression for onset detection", §2);
* the energy of each band (for beat-synchronous downbeat features);
* the high-frequency content ``sum_k f_k |X_k|^2`` (Masri 1996), which marks the
  soft, noisy attacks of bowed and blown instruments that flux misses;
* a 12-bin pitch-class profile (chroma: the power of every bin from 100 Hz to 5 kHz
  added to the pitch class of its nearest equal-tempered semitone, A4 = 440 Hz;
  Fujishima 1999, "Realtime chord recognition of musical sound"), whose changes mark
  chord changes at bar lines for the downbeat tracker (Goto 2001; Papadopoulos &
  Peeters 2011). The rhythm accumulator keeps it at a quarter of the frame rate.

The spectra also feed a :class:`~taperoom.analysis.percussion.PercussionMeter` (the
track's percussive share, two running sums).

Only these numbers per frame are kept (about 70 MB for a two-hour mix), never the
spectrum.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from taperoom.analysis.percussion import PercussionMeter

__all__ = ["BAND_EDGES_HZ", "CHROMA_RANGE_HZ", "N_BANDS", "OnsetFramer"]

#: Edges (Hz) of the six analysis bands: kick/bass, low-mid, mid, presence, brilliance, air.
BAND_EDGES_HZ = (0.0, 120.0, 350.0, 1000.0, 3000.0, 8000.0, np.inf)
N_BANDS = len(BAND_EDGES_HZ) - 1

#: Frequency range (Hz) of the bins added to the pitch-class profile: below 100 Hz the
#: 43 Hz bin spacing of the 1024-point transform cannot tell semitones apart; above
#: 5 kHz there are mostly noise and upper partials.
CHROMA_RANGE_HZ = (100.0, 5000.0)

#: Log compression constant gamma of ``log(1 + gamma |X|)`` (|X| = 1 for a full-scale
#: sine); 100 keeps quiet partials while damping noise (Böck & Widmer 2013 use 1..20
#: on a differently scaled spectrum; chosen here by onset/beat contrast on real music).
LOG_GAMMA = 100.0

#: Reference durations at 44.1 kHz: 1024-sample window, 256-sample hop.
_WINDOW_S = 1024 / 44100
_HOP_S = 256 / 44100


class OnsetFramer:
    """Stateful STFT framer turning a PCM stream into per-frame onset features.

    Frames are centred: frame ``i`` covers samples ``[i*hop - n/2, i*hop + n/2)`` of the
    stream (zeros before its start and after its end), so its time is ``i * hop / sr``.

    Parameters
    ----------
    sample_rate : int
        Sample rate of the stream (Hz); the window and hop are scaled to keep their
        durations (23.2 ms and 5.8 ms).

    Raises
    ------
    ValueError
        If `sample_rate` is below 8000 Hz.
    """

    def __init__(self, sample_rate: int) -> None:
        if sample_rate < 8000:
            raise ValueError(f"sample rate {sample_rate} Hz is too low for onset analysis")
        self.sample_rate = int(sample_rate)
        self.hop = max(1, round(_HOP_S * sample_rate))
        self.n_fft = 1 << int(np.ceil(np.log2(_WINDOW_S * sample_rate)))
        self.window = np.hanning(self.n_fft).astype(np.float32)
        # magnitude scale: a full-scale sine reads |X| = 1
        self._scale = np.float32(2.0 / self.window.sum())
        freqs = np.fft.rfftfreq(self.n_fft, 1.0 / sample_rate)
        self._band_of_bin = np.searchsorted(np.asarray(BAND_EDGES_HZ[1:-1]), freqs, side="right")
        self._band_matrix = np.zeros((freqs.size, N_BANDS), dtype=np.float32)
        self._band_matrix[np.arange(freqs.size), self._band_of_bin] = 1.0
        self._hfc_weight = (freqs / 1000.0).astype(np.float32)
        self._chroma_matrix = np.zeros((freqs.size, 12), dtype=np.float32)
        lo, hi = CHROMA_RANGE_HZ
        sel = np.flatnonzero((freqs >= lo) & (freqs <= hi))
        pc = np.round(69.0 + 12.0 * np.log2(freqs[sel] / 440.0)).astype(int) % 12
        self._chroma_matrix[sel, pc] = 1.0
        self._buffer = np.zeros(self.n_fft // 2, dtype=np.float32)  # centring pad
        self._prev_log: np.ndarray | None = None
        self._finished = False
        self._percussion = PercussionMeter(sample_rate, self.n_fft)

    @property
    def frame_rate(self) -> float:
        """Frames per second (Hz)."""
        return self.sample_rate / self.hop

    @property
    def percussive_share(self) -> float | None:
        """Share of the energy framed so far in percussive components, 0..1, or None
        before any sound (see :mod:`taperoom.analysis.percussion`)."""
        return self._percussion.share

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, ...]:
        """Add samples; return the features of every frame that became complete.

        Parameters
        ----------
        samples : np.ndarray, shape=(n,), float
            Mono PCM in [-1, 1].

        Returns
        -------
        flux : np.ndarray, shape=(m, 6), float32
            Rectified log-magnitude flux per band.
        energy : np.ndarray, shape=(m, 6), float32
            Energy per band (sum of squared normalised magnitudes).
        hfc : np.ndarray, shape=(m,), float32
            High-frequency content (kHz-weighted energy).
        chroma : np.ndarray, shape=(m, 12), float32
            Power per pitch class (C first).
        """
        if self._finished:
            raise RuntimeError("push after flush")
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._buffer = np.concatenate([self._buffer, x])
        return self._frames()

    def flush(self) -> tuple[np.ndarray, ...]:
        """End of stream: pad with zeros and return the last frames (see :meth:`push`)."""
        if self._finished:
            return self._empty()
        self._finished = True
        self._buffer = np.concatenate(
            [self._buffer, np.zeros(self.n_fft // 2, dtype=np.float32)])
        # frames whose centre lies inside the stream only
        out = self._frames(final=True)
        self._percussion.flush()
        return out

    def _empty(self) -> tuple[np.ndarray, ...]:
        z = np.zeros((0, N_BANDS), dtype=np.float32)
        return z, z.copy(), np.zeros(0, dtype=np.float32), np.zeros((0, 12), dtype=np.float32)

    def _frames(self, final: bool = False) -> tuple[np.ndarray, ...]:
        n, hop = self.n_fft, self.hop
        avail = self._buffer.size
        if avail < n:
            if final and avail > n // 2:
                self._buffer = np.pad(self._buffer, (0, n - avail))
                avail = n
            else:
                return self._empty()
        count = (avail - n) // hop + 1
        frames = np.lib.stride_tricks.sliding_window_view(self._buffer, n)[::hop][:count]
        spec = scipy.fft.rfft(frames * self.window, axis=1, workers=1)
        mag = np.abs(spec).astype(np.float32)
        mag *= self._scale
        self._percussion.push(mag)
        logmag = np.log1p(mag * np.float32(LOG_GAMMA))
        prev = logmag[:1] if self._prev_log is None else self._prev_log
        diff = np.diff(np.concatenate([prev, logmag]), axis=0)
        np.maximum(diff, 0.0, out=diff)
        flux = diff @ self._band_matrix
        power = mag * mag
        energy = power @ self._band_matrix
        hfc = power @ self._hfc_weight
        chroma = power @ self._chroma_matrix
        self._prev_log = logmag[-1:].copy()
        self._buffer = self._buffer[count * hop:].copy()
        return (flux.astype(np.float32), energy.astype(np.float32), hfc.astype(np.float32),
                chroma.astype(np.float32))
