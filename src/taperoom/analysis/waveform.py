"""Three-band waveforms of a track (low / mid / high; amplitude and intensity) at the
contract's three zoom levels, their compact binary storage and their JSON shape.

:class:`WaveformAccumulator` splits the mono signal into three bands at Mixxx's
default EQ crossovers (246 Hz and 2,484 Hz; 4th-order Butterworth low-pass,
band-pass and high-pass) and keeps, per bin of a few samples,
each band's peak and energy. When the bins of a long mix pass 2**19, pairs of
them merge (a bin doubles), so memory stays under 13 MB at any length while a
16,000-pixel waveform still gets 32 bins or more per pixel. Bins start at 64
samples (1.45 ms), so tracks shorter than 23 s repeat bins at 16,000 pixels.

A pixel's *amplitude* is the band's peak absolute value over the pixel, its
*intensity* the band's RMS over the pixel; both are scaled by the track's
largest band peak, so the loudest pixel reaches 1, and quantised to 8 bits
(as Mixxx stores its waveforms, one byte per band and point).

The contract (``shared/contracts/library.md`` §3, ``basic_features.waveforms``):
zoom levels 0, 1, 2 with 1,000, 4,000 and 16,000 pixels, each
``{zoom_level, samples_per_pixel, num_pixels, low_freq_amplitude,
low_freq_intensity, mid_freq_amplitude, mid_freq_intensity, high_freq_amplitude,
high_freq_intensity}``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal as sps

__all__ = [
    "BANDS",
    "ZOOM_PIXELS",
    "WaveformAccumulator",
    "WaveformFeatures",
    "WaveformLevel",
    "decode_waveforms",
    "encode_waveforms",
    "waveforms",
]

#: Pixels per zoom level (contract §3: zoom levels 0, 1, 2).
ZOOM_PIXELS = (1000, 4000, 16000)
#: Band names, low to high.
BANDS = ("low", "mid", "high")
#: Crossover frequencies (Hz): Mixxx's default EQ (``kStartupLoFreq`` 246 Hz,
#: ``kStartupHiFreq`` 2,484 Hz).
CROSSOVERS = (246.0, 2484.0)
#: Samples per bin at the start, and the most bins kept before pairs merge.
_FIRST_BIN = 64
_MAX_BINS = 1 << 19
#: Binary format: magic, version.
_MAGIC = b"TRWF"
_VERSION = 1
_FIELDS = tuple(f"{band}_freq_{kind}" for band in BANDS for kind in ("amplitude", "intensity"))


@dataclass(frozen=True)
class WaveformFeatures:
    """Per-bin band peaks and energies of a signal.

    Attributes
    ----------
    peak : np.ndarray, shape=(n_bins, 3), float32
        Largest absolute value of each band in each bin.
    energy : np.ndarray, shape=(n_bins, 3), float32
        Sum of squares of each band in each bin.
    bin_samples : int
        Samples per bin (the last bin may hold fewer).
    n_samples : int
        Samples fed.
    sample_rate : int
        Hz.
    """

    peak: np.ndarray
    energy: np.ndarray
    bin_samples: int
    n_samples: int
    sample_rate: int


class WaveformAccumulator:
    """Band peaks and energies of a mono signal per bin, fed block by block.

    Parameters
    ----------
    sample_rate : int
        Hz (44,100 in the analyzer).
    """

    def __init__(self, sample_rate: int = 44100) -> None:
        self.sample_rate = sample_rate
        # float32 sections keep sosfilt in single precision (twice as fast)
        self._sos = [sps.butter(4, CROSSOVERS[0], "lowpass", fs=sample_rate,
                                output="sos").astype(np.float32),
                     sps.butter(2, CROSSOVERS, "bandpass", fs=sample_rate,
                                output="sos").astype(np.float32),
                     sps.butter(4, CROSSOVERS[1], "highpass", fs=sample_rate,
                                output="sos").astype(np.float32)]
        self._zi = [np.zeros((sos.shape[0], 2), dtype=np.float32) for sos in self._sos]
        self._bin = _FIRST_BIN
        self._peaks: list[np.ndarray] = []
        self._energies: list[np.ndarray] = []
        self._n_bins = 0
        # the unfinished last bin: band peaks, band energies, samples in it
        self._part_peak = np.zeros(3, dtype=np.float32)
        self._part_energy = np.zeros(3, dtype=np.float32)
        self._part_n = 0
        self._n = 0

    def feed(self, block: np.ndarray) -> None:
        """Add a block of the mono signal.

        Parameters
        ----------
        block : np.ndarray, shape=(n,), float32
            Samples in [-1, 1].
        """
        x = np.asarray(block, dtype=np.float32)
        if x.size == 0:
            return
        self._n += x.size
        bands = np.empty((3, x.size), dtype=np.float32)
        for i, sos in enumerate(self._sos):
            bands[i], self._zi[i] = sps.sosfilt(sos, x, zi=self._zi[i])
        bands = bands.T  # (n, 3) view; bins are cut from the contiguous rows below
        if self._part_n:  # complete the unfinished bin first
            head = bands[: self._bin - self._part_n]
            bands = bands[head.shape[0]:]
            self._part_peak = np.maximum(self._part_peak, np.abs(head).max(axis=0))
            self._part_energy = self._part_energy + np.square(head).sum(axis=0)
            self._part_n += head.shape[0]
            if self._part_n < self._bin:
                return
            self._append(self._part_peak[None], self._part_energy[None])
            self._part_n = 0
        n = bands.shape[0] // self._bin
        if n:
            rows = bands[: n * self._bin].T  # (3, n * bin), contiguous rows
            cut = rows.reshape(3, n, self._bin)
            peak = np.maximum(cut.max(axis=2), -cut.min(axis=2))
            energy = np.einsum("bij,bij->bi", cut, cut)
            self._append(peak.T, energy.T)
        rest = bands[n * self._bin:]
        if rest.shape[0]:
            self._part_peak = np.abs(rest).max(axis=0)
            self._part_energy = np.square(rest).sum(axis=0)
            self._part_n = rest.shape[0]
        while self._n_bins > _MAX_BINS:
            self._merge()

    def _append(self, peak: np.ndarray, energy: np.ndarray) -> None:
        self._peaks.append(peak)
        self._energies.append(energy)
        self._n_bins += peak.shape[0]

    def _merge(self) -> None:
        """Halve the resolution: pairs of bins become one bin of twice the samples.
        An odd last bin joins the unfinished bin (which then holds fewer samples
        than the new bin size)."""
        peak = np.concatenate(self._peaks)
        energy = np.concatenate(self._energies)
        pairs = peak.shape[0] // 2
        if peak.shape[0] % 2:
            self._part_peak = np.maximum(self._part_peak, peak[-1])
            self._part_energy = self._part_energy + energy[-1]
            self._part_n += self._bin
        self._peaks = [peak[: 2 * pairs].reshape(pairs, 2, 3).max(axis=1)]
        self._energies = [energy[: 2 * pairs].reshape(pairs, 2, 3).sum(axis=1)]
        self._n_bins = pairs
        self._bin *= 2

    def finish(self) -> WaveformFeatures:
        """The bins of the whole signal; the unfinished last bin is kept as a shorter one."""
        peaks, energies = list(self._peaks), list(self._energies)
        if self._part_n:
            peaks.append(self._part_peak[None])
            energies.append(self._part_energy[None])
        return WaveformFeatures(
            peak=np.concatenate(peaks) if peaks else np.zeros((0, 3), np.float32),
            energy=np.concatenate(energies) if energies else np.zeros((0, 3), np.float32),
            bin_samples=self._bin, n_samples=self._n, sample_rate=self.sample_rate)


@dataclass(frozen=True)
class WaveformLevel:
    """One zoom level of a 3-band waveform.

    Attributes
    ----------
    zoom_level : int
        0, 1, 2 (1,000 / 4,000 / 16,000 pixels).
    samples_per_pixel : int
        Track samples (at `sample_rate`) per pixel, rounded.
    sample_rate : int
        Hz.
    data : np.ndarray, shape=(6, num_pixels), uint8
        Rows low amplitude, low intensity, mid amplitude, mid intensity, high
        amplitude, high intensity; 255 = the track's largest band peak.
    """

    zoom_level: int
    samples_per_pixel: int
    sample_rate: int
    data: np.ndarray

    @property
    def num_pixels(self) -> int:
        """Pixels of this level."""
        return int(self.data.shape[1])

    def to_contract(self) -> dict[str, Any]:
        """The contract's JSON shape: header fields and six lists of floats in 0-1
        (3 decimals)."""
        out: dict[str, Any] = {"zoom_level": self.zoom_level,
                               "samples_per_pixel": self.samples_per_pixel,
                               "num_pixels": self.num_pixels}
        for name, row in zip(_FIELDS, self.data, strict=True):
            out[name] = np.round(row / 255.0, 3).tolist()
        return out


def waveforms(features: WaveformFeatures, *, pixels: tuple[int, ...] = ZOOM_PIXELS
              ) -> list[WaveformLevel]:
    """The waveform of each zoom level.

    Parameters
    ----------
    features : WaveformFeatures
        From :meth:`WaveformAccumulator.finish`.
    pixels : tuple of int, keyword-only
        Pixels per zoom level, level 0 first.

    Returns
    -------
    list of WaveformLevel
        Pixel ``i`` of ``P`` covers the bins from ``floor(i * B / P)`` up to
        ``floor((i + 1) * B / P)`` (``B`` bins; a pixel narrower than a bin
        repeats that bin). An empty signal gives all-zero levels.
    """
    peak = features.peak.astype(np.float64)
    energy = features.energy.astype(np.float64)
    n_bins = peak.shape[0]
    counts = np.full(n_bins, float(features.bin_samples))
    if n_bins:
        counts[-1] = features.n_samples - features.bin_samples * (n_bins - 1)
    scale = float(peak.max()) if peak.size else 0.0
    levels = []
    for zoom, p in enumerate(pixels):
        spp = round(features.n_samples / p) if p else 0
        if n_bins == 0 or scale <= 0.0:
            levels.append(WaveformLevel(zoom, spp, features.sample_rate,
                                        np.zeros((6, p), dtype=np.uint8)))
            continue
        start = np.floor(np.arange(p) * n_bins / p).astype(np.int64)
        stop = np.maximum(np.floor(np.arange(1, p + 1) * n_bins / p).astype(np.int64),
                          start + 1)
        amp = np.maximum.reduceat(peak, start, axis=0)
        # reduceat sums from start[i] to start[i+1]; rebuild exact [start, stop) sums
        csum_e = np.concatenate([np.zeros((1, 3)), np.cumsum(energy, axis=0)])
        csum_n = np.concatenate([[0.0], np.cumsum(counts)])
        e = csum_e[stop] - csum_e[start]
        n = (csum_n[stop] - csum_n[start])[:, None]
        rms = np.sqrt(np.maximum(e, 0.0) / np.maximum(n, 1.0))
        data = np.empty((6, p), dtype=np.uint8)
        data[0::2] = np.clip(np.rint(amp.T / scale * 255.0), 0, 255)
        data[1::2] = np.clip(np.rint(rms.T / scale * 255.0), 0, 255)
        levels.append(WaveformLevel(zoom, spp, features.sample_rate, data))
    return levels


def encode_waveforms(levels: list[WaveformLevel]) -> bytes:
    """Compact binary form of a track's waveforms, to store once per audio hash.

    Format (little-endian): ``b"TRWF"``, version (u8), level count (u8), then per
    level zoom level (u8), sample rate (u32), samples per pixel (u32), pixels
    (u32); then the zlib-compressed (RFC 1950) concatenation of every level's
    6 x pixels uint8 rows. About 40-130 KB for the three contract levels.
    """
    head = [_MAGIC, struct.pack("<BB", _VERSION, len(levels))]
    for lv in levels:
        head.append(struct.pack("<BIII", lv.zoom_level, lv.sample_rate,
                                lv.samples_per_pixel, lv.num_pixels))
    body = zlib.compress(b"".join(np.ascontiguousarray(lv.data, np.uint8).tobytes()
                                  for lv in levels), 6)
    return b"".join(head) + body


def decode_waveforms(blob: bytes) -> list[WaveformLevel]:
    """Read back :func:`encode_waveforms`.

    Raises
    ------
    ValueError
        The bytes are not a waveform blob of a known version, or are damaged.
    """
    try:
        if blob[:4] != _MAGIC:
            raise ValueError("not a waveform blob")
        version, count = struct.unpack_from("<BB", blob, 4)
        if version != _VERSION:
            raise ValueError(f"waveform blob version {version} is not supported")
        offset = 6
        heads = []
        for _ in range(count):
            heads.append(struct.unpack_from("<BIII", blob, offset))
            offset += struct.calcsize("<BIII")
        body = zlib.decompress(blob[offset:])
    except (struct.error, zlib.error, IndexError) as exc:
        raise ValueError(f"damaged waveform blob: {exc}") from exc
    if len(body) != sum(6 * h[3] for h in heads):
        raise ValueError("damaged waveform blob: wrong data length")
    levels = []
    pos = 0
    for zoom, rate, spp, n in heads:
        data = np.frombuffer(body, dtype=np.uint8, count=6 * n, offset=pos).reshape(6, n)
        pos += 6 * n
        levels.append(WaveformLevel(zoom, spp, rate, data.copy()))
    return levels
