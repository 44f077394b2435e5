"""Tempo changes: the sections of a track that hold another tempo than the whole.

A track can change tempo outright: an intro at 100 BPM and a main part at 140, a
DJ edit that joins two songs, a band that drops into a slower groove. The beat
tracker of :mod:`taperoom.analysis.beats` holds every inter-beat interval near one
period, so in the section at the other tempo its beats fall between the onsets (at
100 and 140 BPM, half of them are more than 30 ms from a beat).

Here the periodicity of the novelty is measured again in short windows (8 s, hop 2 s:
the tempogram of :class:`taperoom.analysis.tempo.Windows`), on the tempo axis within
half an octave of the track's tempo. A window holds another tempo when its salience peak
(:func:`taperoom.analysis.tempo.log_salience`) stands :data:`CHANGE_MARGIN` above the
salience at the track's tempo; a section does when :data:`CHANGE_MIN_WINDOWS` windows
in a row do. The beat period then follows the local peak through such sections (a
median over five windows smooths the edges) and stays at the track's tempo elsewhere:
rubato and swing do not move it, and the caller keeps the track's own beat where it
goes on under a figure in another metre. This is the local-tempo beat tracking of a
tempogram (Peeters 2007, "Template-based estimation of time-varying
tempo", EURASIP J. Adv. Signal Process.; librosa's ``beat_track`` with a time-varying
``bpm``), restricted to clear changes.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter

from taperoom.analysis.tempo import Windows, log_salience

__all__ = ["CHANGE_MARGIN", "CHANGE_MIN_WINDOWS", "at_other_tempo", "beat_periods"]

#: Tempogram window and hop (s): short enough to place a change within a few seconds,
#: long enough for several beats at the slowest tempo followed (50 BPM).
_WINDOW_S = 8.0
_HOP_S = 2.0
#: How far (octaves) from the track's tempo a section's tempo may lie: half an octave,
#: so that a section is never taken at the double or half of its beat.
_REACH_OCTAVES = 0.5
#: Tempi this close (relative) to the track's count as the track's tempo.
_SAME_TEMPO = 0.015
#: How much higher (log salience, :func:`taperoom.analysis.tempo.log_salience`) a
#: window's peak must stand than the salience at the track's tempo for the window to
#: hold another tempo: a factor e^3.5, about 33. The highest lift that music without a
#: tempo change holds for :data:`CHANGE_MIN_WINDOWS` windows in a row on the dev corpus
#: is 2.7 (a solo violin's rubato; the rendered scores and electronic tracks stay
#: below 2); synthetic steps from 100 to 140, 140 to 100 and 90 to 128 BPM hold 5.5 to
#: 5.7. 3.5 lies between. One electronic track of the dev corpus reaches 4.2 with a
#: strong 5:4 figure over its 128 BPM beat; its beat keeps its onsets there, so the
#: caller keeps it (:func:`taperoom.analysis.beats.beats_hold`).
CHANGE_MARGIN = 3.5
#: Windows in a row that must hold another tempo: 3 windows of 8 s at a 2 s hop span
#: 12 s of music.
CHANGE_MIN_WINDOWS = 3
#: Windows in the running median that smooths the period curve (10 s).
_SMOOTH_WINDOWS = 5


def beat_periods(o: np.ndarray, frame_rate: float, tempo: float) -> np.ndarray | None:
    """Beat period per frame that follows the sections at another tempo.

    Parameters
    ----------
    o : np.ndarray, shape=(n,)
        Novelty function (:func:`taperoom.analysis.tempo.novelty`).
    frame_rate : float
        Frames per second of `o` (Hz).
    tempo : float
        The track's tempo (BPM), at the metrical level of its beats.

    Returns
    -------
    np.ndarray, shape=(n,), or None
        Expected inter-beat interval (frames) at every frame of `o`; None when no
        section holds another tempo (or the track is shorter than a window), so that
        the caller keeps its one period.
    """
    win = round(_WINDOW_S * frame_rate)
    if o.size < win or tempo <= 0:
        return None
    axis = np.geomspace(tempo * 2 ** -_REACH_OCTAVES, tempo * 2 ** _REACH_OCTAVES, 241)
    lags = 60.0 * frame_rate / axis
    windows = Windows(win, round(_HOP_S * frame_rate), int(np.ceil(lags.max())) + 2)
    bins = axis / 60.0 * windows.n_fft / frame_rate  # the tempi's Fourier bins
    at_tempo = np.abs(np.log(axis / tempo)) <= np.log1p(_SAME_TEMPO)
    centres: list[np.ndarray] = []
    peaks: list[np.ndarray] = []
    lifts: list[np.ndarray] = []
    for starts, r, mag in windows.periodicity(o):
        score = log_salience(_at(r / windows.w_acf, lags), _at(mag, bins))
        best = np.argmax(score, axis=1)
        centres.append(starts + win / 2.0)
        peaks.append(axis[best])
        lifts.append(score[np.arange(best.size), best] - score[:, at_tempo].max(axis=1))
    if not centres:
        return None
    centre, peak, lift = np.concatenate(centres), np.concatenate(peaks), np.concatenate(lifts)
    other = _long_runs(lift > CHANGE_MARGIN, CHANGE_MIN_WINDOWS)
    if not other.any():
        return None
    local = np.log(np.where(other, peak, tempo))
    if local.size >= _SMOOTH_WINDOWS:
        local = median_filter(local, _SMOOTH_WINDOWS, mode="nearest")
    bpm = np.exp(np.interp(np.arange(o.size), centre, local))
    return np.asarray(60.0 * frame_rate / bpm)


def at_other_tempo(periods: np.ndarray, frame_rate: float, tempo: float) -> np.ndarray:
    """The frames of the sections at another tempo.

    Parameters
    ----------
    periods : np.ndarray, shape=(n,)
        From :func:`beat_periods` (frames).
    frame_rate : float
        Frames per second (Hz).
    tempo : float
        The track's tempo (BPM).

    Returns
    -------
    np.ndarray, shape=(n,), bool
        True where the period is more than 1.5 % from the track's tempo's.
    """
    return np.asarray(np.abs(periods * tempo / (60.0 * frame_rate) - 1.0) > _SAME_TEMPO)


def _at(rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Each row of `rows` linearly interpolated at fractional column `positions`
    (all inside the rows)."""
    i = np.floor(positions).astype(int)
    w = positions - i
    return np.asarray(rows[:, i] * (1.0 - w) + rows[:, i + 1] * w)


def _long_runs(mask: np.ndarray, min_run: int) -> np.ndarray:
    """`mask` with its runs of True shorter than `min_run` cleared."""
    out = np.zeros_like(mask)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if end - start >= min_run:
            out[start:end] = True
    return out
