"""Tempo, beatgrid, downbeats and metre of a track, from one pass over its PCM.

:class:`RhythmAccumulator` is fed the decoded mono signal block by block and keeps only
compact per-frame onset features (:mod:`taperoom.analysis.onsets`, 172 frames/s,
13 floats each, plus a 12-bin chroma at 43 rows/s: about 70 MB for a two-hour mix);
:func:`estimate_rhythm` turns them into a :class:`RhythmResult`:

1. tempo: the novelty's periodicity (autocorrelation x Fourier) with a prior flat over
   the DJ tempo range and falling off outside it; in music without drums whose most
   regular pulse is its running notes, half of it (:mod:`taperoom.analysis.tempo`,
   :func:`~taperoom.analysis.tempo.tactus_level`); a fast pulse without drums in half
   time (:func:`~taperoom.analysis.tempo.counts_in_half_time`), the beats being the
   pulses on the side of the downbeats found at the pulse;
   where no constant grid fits that level but one fits its double, the double (a
   steady track whose half beat slips between on- and off-beats);
2. beats: dynamic programming at that tempo (:mod:`taperoom.analysis.beats`);
3. grid: when the detected beats follow one tempo (electronic music, drum machines,
   rendered scores), or stray from it only where the grid still lands on the onsets
   as well as they do (:func:`taperoom.analysis.beats.grid_support`), one period and
   phase are fitted to the whole track, at the nearest whole BPM where that grid lands
   on more onsets (:func:`taperoom.analysis.beats.whole_bpm_grid`), and the beats are
   that grid; otherwise (a band that drifts, a solo performer) the detected beats are
   kept and the BPM is the dominant tempo of step 1, the one the track holds for most
   of its length (as the median inter-beat interval of annotated performances
   defines it);
   a section that holds another tempo (an intro at 100 BPM before a main part at 140;
   :mod:`taperoom.analysis.tempochange`) where the track's own beats lose their onsets
   (:func:`taperoom.analysis.beats.beats_hold`) means no grid, and the beats are
   tracked again with each section's period;
4. downbeats, beats per bar and the first phrase (:mod:`taperoom.analysis.downbeats`);
   when the bar lines recur every six beats, the beats were half beats of a bar of
   three and every other one is kept (the tempo halves).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from taperoom.analysis import beats as _beats
from taperoom.analysis.beats import (
    Grid,
    beat_consistency,
    beats_hold,
    fit_grid,
    grid_beats,
    grid_fits,
    grid_support,
    grids_apart,
    track_beats,
    trim_beats,
    whole_bpm_grid,
)
from taperoom.analysis.downbeats import Bars, find_downbeats
from taperoom.analysis.onsets import N_BANDS, OnsetFramer
from taperoom.analysis.tempo import (
    HALF_REACH_OCTAVES,
    band_novelty,
    choose_tempo,
    counts_in_half_time,
    novelty,
    tactus_level,
    tempo_salience,
)
from taperoom.analysis.tempochange import at_other_tempo, beat_periods
from taperoom.errors import InvalidInput

__all__ = ["RhythmAccumulator", "RhythmFeatures", "RhythmResult", "estimate_rhythm"]

#: Below this much audio there is no tempo to speak of (s).
_MIN_DURATION_S = 3.0
#: How early (s) a constant grid's beat may fall before the start and still count.
_EARLY_BEAT_S = 0.05
#: Two grids whose beats stay within this distance (s) over the whole track are the
#: same grid to the ear (half the 20 ms a detected beat may stray from a grid in
#: :func:`taperoom.analysis.beats.grid_fits`).
_SAME_GRID_S = 0.010
#: Onset frames per kept chroma row (172.3 / 4 = 43 rows per second).
CHROMA_DECIMATION = 4


@dataclass(frozen=True)
class RhythmFeatures:
    """Compact frame-level features of a whole track for rhythm analysis.

    Attributes
    ----------
    frame_rate : float
        Frames per second (Hz); frame ``i`` is centred at ``i / frame_rate`` seconds.
    duration : float
        Length of the audio fed (s).
    flux : np.ndarray, shape=(n, 6), float32
        Rectified log-magnitude spectral flux per band (see :mod:`taperoom.analysis.onsets`).
    energy : np.ndarray, shape=(n, 6), float32
        Energy per band.
    hfc : np.ndarray, shape=(n,), float32
        High-frequency content.
    chroma : np.ndarray, shape=(n // 4, 12), float32
        Power per pitch class (C first), summed over groups of :data:`CHROMA_DECIMATION`
        frames: row ``j`` covers frames ``4j .. 4j+3``.
    percussive_share : float or None
        Share of the energy in percussive components (see
        :mod:`taperoom.analysis.percussion`); None when unknown or silent.
    """

    frame_rate: float
    duration: float
    flux: np.ndarray = field(repr=False)
    energy: np.ndarray = field(repr=False)
    hfc: np.ndarray = field(repr=False)
    chroma: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 12), np.float32))
    percussive_share: float | None = None


class RhythmAccumulator:
    """Collects rhythm features block by block.

    Parameters
    ----------
    sample_rate : int
        Sample rate of the blocks (Hz), 44,100 from the analyzer's decoder.

    Examples
    --------
    >>> acc = RhythmAccumulator()
    >>> for block in blocks:          # doctest: +SKIP
    ...     acc.feed(block)
    >>> result = estimate_rhythm(acc.finish())  # doctest: +SKIP
    """

    def __init__(self, sample_rate: int = 44100) -> None:
        self._framer = OnsetFramer(sample_rate)
        self._samples = 0
        self._flux: list[np.ndarray] = []
        self._energy: list[np.ndarray] = []
        self._hfc: list[np.ndarray] = []
        self._chroma: list[np.ndarray] = []
        self._chroma_rest = np.zeros((0, 12), dtype=np.float32)
        self._done: RhythmFeatures | None = None

    def _keep(self, parts: tuple[np.ndarray, ...]) -> None:
        flux, energy, hfc, chroma = parts
        if hfc.size:
            self._flux.append(flux)
            self._energy.append(energy)
            self._hfc.append(hfc)
            c = np.concatenate([self._chroma_rest, chroma])
            whole = c.shape[0] // CHROMA_DECIMATION * CHROMA_DECIMATION
            if whole:
                self._chroma.append(
                    c[:whole].reshape(-1, CHROMA_DECIMATION, 12).sum(axis=1))
            self._chroma_rest = c[whole:]

    def feed(self, block: np.ndarray) -> None:
        """Add one block of samples.

        Parameters
        ----------
        block : np.ndarray, shape=(n,), float32
            Mono PCM in [-1, 1] at the accumulator's sample rate.

        Raises
        ------
        ValueError
            If the block is not one-dimensional, or after :meth:`finish`.
        """
        if self._done is not None:
            raise ValueError("feed after finish")
        x = np.asarray(block)
        if x.ndim != 1:
            raise ValueError(f"expected a mono block of shape (n,), got {x.shape}")
        self._samples += x.size
        self._keep(self._framer.push(x))

    def finish(self) -> RhythmFeatures:
        """The features of everything fed (idempotent).

        Returns
        -------
        RhythmFeatures
        """
        if self._done is None:
            self._keep(self._framer.flush())
            empty = np.zeros((0, N_BANDS), dtype=np.float32)
            self._done = RhythmFeatures(
                frame_rate=self._framer.frame_rate,
                duration=self._samples / self._framer.sample_rate,
                flux=np.concatenate(self._flux) if self._flux else empty,
                energy=np.concatenate(self._energy) if self._energy else empty.copy(),
                hfc=(np.concatenate(self._hfc) if self._hfc
                     else np.zeros(0, dtype=np.float32)),
                chroma=(np.concatenate(self._chroma) if self._chroma
                        else np.zeros((0, 12), dtype=np.float32)),
                percussive_share=self._framer.percussive_share,
            )
            self._flux, self._energy, self._hfc, self._chroma = [], [], [], []
        return self._done


@dataclass(frozen=True)
class RhythmResult:
    """Tempo, beats and bars of a track.

    Attributes
    ----------
    bpm : float or None
        Tempo (BPM, 2 decimals) in the beat unit of `beats`: the grid's when
        `constant_tempo`, else the dominant tempo (see the module docstring); None
        without a pulse.
    beats : np.ndarray, shape=(m,), float64
        Beat times (s), increasing.
    first_beat_offset : float or None
        Time of the first beat (s).
    beat_consistency : float or None
        Steadiness of the detected beats, 0..1 (see
        :func:`taperoom.analysis.beats.beat_consistency`).
    constant_tempo : bool
        True when `beats` is a constant-tempo grid fitted to the whole track.
    downbeats : np.ndarray, shape=(d,), float64
        Times (s) of the first beat of each bar.
    first_phrase_beat_no : int or None
        Index into `beats` of the first beat of the first phrase.
    beats_per_bar : int or None
        Metre: 3 or 4 beats per bar.
    """

    bpm: float | None
    beats: np.ndarray
    first_beat_offset: float | None
    beat_consistency: float | None
    constant_tempo: bool
    downbeats: np.ndarray
    first_phrase_beat_no: int | None
    beats_per_bar: int | None


def _track(o: np.ndarray, fr: float, tempo: float) -> tuple[np.ndarray, Grid | None, bool]:
    """Beats tracked at `tempo` (frame indices), the grid fitted to them, and whether
    the music has that one tempo: the beats stay on the grid, or the grid lands on the
    onsets as well as they do (:data:`taperoom.analysis.beats.GRID_SUPPORT`)."""
    period = 60.0 * fr / tempo
    frames = track_beats(o, period)
    grid = fit_grid(frames, o, period)
    if grid is None:
        return frames, None, False
    support = grid_support(grid, frames, o)
    # the whole BPM where the track cannot tell the two grids apart, or where it lands
    # on more onsets
    whole = whole_bpm_grid(grid, o, fr)
    if whole is not None:
        whole_support = grid_support(whole, frames, o)
        if grids_apart(grid, whole, o.size) <= _SAME_GRID_S * fr or whole_support > support:
            grid, support = whole, whole_support
    constant = grid_fits(grid, fr) or support >= _beats.GRID_SUPPORT
    return frames, grid, constant


def _none_result() -> RhythmResult:
    return RhythmResult(bpm=None, beats=np.zeros(0), first_beat_offset=None,
                        beat_consistency=None, constant_tempo=False, downbeats=np.zeros(0),
                        first_phrase_beat_no=None, beats_per_bar=None)


def estimate_rhythm(features: RhythmFeatures, *, bpm_range: tuple[float, float] = (70.0, 180.0),
                    quick: bool = False) -> RhythmResult:
    """Tempo, beatgrid, downbeats and metre from accumulated features.

    Parameters
    ----------
    features : RhythmFeatures
        From :meth:`RhythmAccumulator.finish`.
    bpm_range : (float, float)
        DJ tempo range (BPM): the centre of the prior on the metrical level, not a
        limit — a track whose pulse is clearly outside keeps its tempo.
    quick : bool
        Leave out the downbeats, metre and first phrase (tempo and beatgrid only, the
        same as the full analysis's).

    Returns
    -------
    RhythmResult
        With ``bpm=None`` and no beats for silence, noise without a pulse, or less
        than 3 s of audio.

    Raises
    ------
    InvalidInput
        If `bpm_range` is not two positive tempi with low < high.
    """
    lo, hi = (float(v) for v in bpm_range)
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        raise InvalidInput(f"bpm_range must be two tempi with 0 < low < high, got {bpm_range}")
    fr = features.frame_rate
    if features.duration < _MIN_DURATION_S or features.hfc.size == 0:
        return _none_result()
    o = novelty(features.flux, features.hfc, fr)
    if not o.any():
        return _none_result()
    sal = tempo_salience(o, fr)
    tempo = choose_tempo(sal, (lo, hi))
    if tempo is None:
        return _none_result()
    chosen = tempo
    bass = band_novelty(features.flux[:, 0].astype(np.float64), fr)
    tempo = tactus_level(sal, tempo, percussive_share=features.percussive_share, bass=bass,
                         frame_rate=fr, bpm_range=(lo, hi))
    # a fast pulse without drums is counted in half time: which half, the bars say
    half_time = tempo == chosen and counts_in_half_time(
        sal, tempo, percussive_share=features.percussive_share, bass=bass, frame_rate=fr,
        bpm_range=(lo, hi))
    frames, grid, constant = _track(o, fr, tempo)
    if (not constant and tempo == chosen and not half_time
            and np.log2(2.0 * tempo / hi) <= HALF_REACH_OCTAVES):
        # no one tempo at this level, but maybe at the double: a steady track tracked
        # at its half beat slips between on- and off-beats where it syncopates, while
        # its real beat keeps one grid (see _track)
        frames2, grid2, constant2 = _track(o, fr, 2.0 * tempo)
        if constant2:
            tempo, frames, grid, constant = 2.0 * tempo, frames2, grid2, True
    # sections at another tempo (an intro at 100 BPM before a main part at 140) get
    # beats at their own tempo, unless the track's own beats keep their onsets there (a
    # figure in another metre over a continuing beat)
    periods = beat_periods(o, fr, tempo)
    if periods is not None:
        own = grid_beats(grid, o.size) if constant and grid is not None else frames
        if beats_hold(own, o, at_other_tempo(periods, fr, tempo)):
            periods = None
        else:
            constant = False
    if not constant:
        if periods is not None:
            frames = track_beats(o, periods)
        # a beat list spans the music; a grid the file, as Mixxx's does
        frames = trim_beats(frames, o)
    detected = frames / fr
    consistency = beat_consistency(detected)
    if constant and grid is not None:
        # a grid beat up to 50 ms before the first frame is the track's first beat
        # (an onset at t=0 whose fitted phase came out a few ms early), put at 0
        early = _EARLY_BEAT_S * fr
        k0 = int(np.ceil((-grid.phase - early) / grid.period))
        k1 = int(np.floor((o.size - 1 - grid.phase) / grid.period))
        beat_frames = np.maximum(grid.phase + grid.period * np.arange(k0, k1 + 1), 0.0)
        bpm = 60.0 * fr / grid.period
    else:
        beat_frames = frames.astype(np.float64)
        # the dominant tempo, the one the track holds for most of its length (the
        # salience peak over 12 s windows, interpolated), not the beats' mean tempo:
        # that is pulled up by beats carried on through a final ritardando and a held
        # last chord (a solo violin of the dev corpus: beats 78.9, annotated beats 77.6,
        # salience 77.6), nor their median interval, which moves in whole 5.8 ms frames
        # (1.7 % steps at 180 BPM)
        bpm = tempo
    low = bass + band_novelty(features.flux[:, 1].astype(np.float64), fr)
    downbeats: np.ndarray = np.zeros(0)
    phrase: int | None = None
    per_bar: int | None = None
    # the bar analysis runs in quick mode too: it can move the metrical level, and a
    # quick analysis must give the tempo and grid of the full one
    bars = find_downbeats(np.round(beat_frames).astype(int), low, features.energy,
                          features.chroma, CHROMA_DECIMATION)
    if half_time and bars is not None:
        # the beats are the pulses on the downbeat's side; the bars are counted again
        # at the beat
        keep = bars.first_downbeat % 2
        beat_frames = beat_frames[keep::2]
        consistency = beat_consistency(detected[keep::2])
        bpm /= 2.0
        bars = find_downbeats(np.round(beat_frames).astype(int), low, features.energy,
                              features.chroma, CHROMA_DECIMATION)
        if bars is not None and bars.beat_step > 1:
            bars = Bars(beats_per_bar=bars.beats_per_bar // bars.beat_step,
                        first_downbeat=bars.first_downbeat % (bars.beats_per_bar // 2),
                        first_phrase_beat=bars.first_downbeat % (bars.beats_per_bar // 2))
    first = 0
    if bars is not None:
        first, per_bar, phrase = (bars.first_downbeat, bars.beats_per_bar,
                                  bars.first_phrase_beat)
        if bars.beat_step > 1:
            step = bars.beat_step
            if np.log2(lo * step / bpm) <= HALF_REACH_OCTAVES:
                # the beats were half beats of a bar of three: keep every other one
                beat_frames = beat_frames[first % step::step]
                consistency = beat_consistency(detected[first % step::step])
                bpm /= step
                first, per_bar, phrase = first // step, per_bar // step, first // step
            else:
                # already at the slowest plausible beat: the cues recur every two bars
                # of three
                per_bar = per_bar // step
                first = phrase = first % per_bar
    beats = beat_frames / fr
    if quick:
        per_bar = phrase = None
    elif per_bar is not None:
        downbeats = beats[first::per_bar]
    return RhythmResult(
        bpm=round(float(bpm), 2),
        beats=beats,
        first_beat_offset=float(beats[0]) if beats.size else None,
        beat_consistency=None if consistency is None else round(consistency, 3),
        constant_tempo=bool(constant),
        downbeats=downbeats,
        first_phrase_beat_no=phrase,
        beats_per_bar=per_bar,
    )
