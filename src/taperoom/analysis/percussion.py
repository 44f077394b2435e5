"""How percussive a track is: the share of its spectral energy in percussive components.

Harmonic-percussive separation by median filtering (Fitzgerald 2010, "Harmonic/
percussive separation using median filtering", DAFx-10): in a magnitude spectrogram,
sustained (harmonic) sounds are horizontal ridges and percussive sounds vertical ones,
so a bin belongs to the percussive part when the median of its frequency neighbours
exceeds the median of its time neighbours (the binary mask of Fitzgerald's §3). The
percussive share is the energy of the percussive bins over all the energy.

Drum kits, drum machines and band recordings have a share of 0.2 to 0.7 (dev corpus:
rock 0.38-0.48, drum machines 0.55-0.66, electronic music 0.20-0.65 but one
synthesizer piece at 0.03); bowed strings, organs, rendered piano and ensemble scores
stay under 0.09. The tempo estimator uses it to tell music whose fastest regular pulse
is rarely its beat (:func:`taperoom.analysis.tempo.tactus_level`).

The meter is fed the short-time magnitude spectra of the onset framer
(:class:`taperoom.analysis.onsets.OnsetFramer`) and keeps two sums: every other frame
(86 frames/s at 44.1 kHz), bins below 11 kHz added in pairs, in chunks of 256 such
frames (3 s), one chunk in three analysed — a third of the music, spread over the
whole track, at under 1 ms of CPU per second of audio.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PercussionMeter"]

#: Highest frequency analysed (Hz): above it there is little but noise and cymbal decay.
_MAX_HZ = 11025.0
#: Median filter lengths: 9 frames (105 ms at 86 frames/s) along time for the harmonic
#: part, 9 pooled bins (775 Hz) along frequency for the percussive part.
_TIME_MEDIAN = 9
_FREQ_MEDIAN = 9
#: Frames per analysed chunk (after decimation).
_CHUNK = 256
#: One chunk in this many is analysed.
_CHUNK_STRIDE = 3


def _median(x: np.ndarray, width: int, axis: int) -> np.ndarray:
    """Running median of odd `width` along `axis`, edges extended (scipy.ndimage's
    ``median_filter`` with ``mode="nearest"``, by partial sort: three times faster)."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (width // 2, width // 2)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad, mode="edge"), width,
                                                       axis=axis)
    return np.asarray(np.partition(windows, width // 2, axis=-1)[..., width // 2])


class PercussionMeter:
    """Running harmonic-percussive energy balance of a spectrogram stream.

    Parameters
    ----------
    sample_rate : int
        Sample rate of the analysed signal (Hz).
    n_fft : int
        Transform length of the spectra that will be pushed (bins ``n_fft // 2 + 1``).
    """

    def __init__(self, sample_rate: int, n_fft: int) -> None:
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
        kept = int(np.count_nonzero(freqs < _MAX_HZ)) // 2 * 2
        self._bins = max(kept, 2)
        self._frame = 0  # index of the next frame pushed
        self._chunk: list[np.ndarray] = []
        self._rows = 0
        self._percussive = 0.0
        self._total = 0.0

    def push(self, mag: np.ndarray) -> None:
        """Add magnitude spectra.

        Parameters
        ----------
        mag : np.ndarray, shape=(frames, n_fft // 2 + 1), float
            Magnitude spectra of consecutive frames.
        """
        n = mag.shape[0]
        if n == 0:
            return
        frame = np.arange(self._frame, self._frame + n)
        self._frame += n
        # every other frame, and of those only the chunks that will be analysed
        keep = (frame % 2 == 0) & ((frame // 2 // _CHUNK) % _CHUNK_STRIDE == 0)
        if not keep.any():
            return
        rows = mag[keep, :self._bins]
        pooled = rows.reshape(rows.shape[0], -1, 2).sum(axis=2, dtype=np.float32)
        self._chunk.append(pooled)
        self._rows += pooled.shape[0]
        if self._rows >= _CHUNK:
            block = np.concatenate(self._chunk)
            self._analyse(block[:_CHUNK])
            rest = block[_CHUNK:]
            self._chunk = [rest] if rest.shape[0] else []
            self._rows = rest.shape[0]

    def flush(self) -> None:
        """Analyse what is left (end of stream), if it is long enough to filter."""
        if self._rows >= 4 * _TIME_MEDIAN:
            self._analyse(np.concatenate(self._chunk))
        self._chunk, self._rows = [], 0

    def _analyse(self, spec: np.ndarray) -> None:
        harmonic = _median(spec, _TIME_MEDIAN, axis=0)
        percussive = _median(spec, _FREQ_MEDIAN, axis=1)
        power = spec.astype(np.float64) ** 2
        self._percussive += float(power[percussive > harmonic].sum())
        self._total += float(power.sum())

    @property
    def share(self) -> float | None:
        """Percussive share of the energy analysed, 0..1; None before any sound."""
        if self._total <= 1e-12:
            return None
        return self._percussive / self._total
