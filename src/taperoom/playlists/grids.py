"""Beatgrids between the library's beat lists and rekordbox's ``TEMPO`` anchors.

The library stores a grid as the analysis makes it: the time of every beat
(``beats_data``, seconds), of every downbeat (``downbeats_data``), the first beat
(``first_beat_offset``) and the average tempo (``bpm``). rekordbox stores anchors
(``TEMPO Inizio Bpm Metro Battito``): from each anchor on, beats fall every
``60 / Bpm`` seconds until the next anchor; ``Battito`` numbers the anchor beat in
its bar (1 = downbeat). A constant grid is one anchor; a grid that drifts gets a
new anchor where the beats leave the straight line (as rekordbox's dynamic grids
do). Source of the anchor semantics: Pioneer DJ, *rekordbox XML format list*
(https://cdn.rekordbox.com/files/20200410160904/xml_format_list.pdf), ``TEMPO``.

Pure functions: no database, no I/O.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np

from taperoom.playlists.exchange import Tempo

#: Largest distance, seconds, of a beat from the straight line of its anchor's
#: tempo before a new anchor starts (10 ms: half the jitter a DJ hears in a mix).
BEAT_TOLERANCE = 0.010
#: Beats per bar when the library does not know the time signature.
DEFAULT_BEATS_PER_BAR = 4


def meter_of(beats_per_bar: int | None) -> str:
    """``"<n>/4"`` for `beats_per_bar` (``"4/4"`` when unknown or out of 1-16)."""
    n = beats_per_bar if beats_per_bar is not None and 1 <= beats_per_bar <= 16 else (
        DEFAULT_BEATS_PER_BAR)
    return f"{n}/4"


def beats_per_bar(meter: str) -> int:
    """Numerator of a meter (``"3/4"`` → 3); 4 when it cannot be read or is out of 1-16."""
    head = meter.partition("/")[0].strip()
    return int(head) if head.isdigit() and 1 <= int(head) <= 16 else DEFAULT_BEATS_PER_BAR


def tempos_from_beats(beats: Sequence[float] | np.ndarray, *, downbeats: Sequence[float] = (),
                      bpm: float | None = None, first_beat: float | None = None,
                      bar: int | None = None, tolerance: float = BEAT_TOLERANCE
                      ) -> list[Tempo]:
    """rekordbox ``TEMPO`` anchors of a library grid.

    With two or more beats, the beats are cut into runs of a steady tempo: a run
    grows while each new beat lies within `tolerance` of where the run so far
    predicts it (its first beat plus a whole number of the run's mean beat
    period); each run is one anchor at its first beat, with the run's mean tempo,
    and shares its last beat with the next run's anchor. This takes one pass over
    the beats. When every beat lies within `tolerance` of the least-squares line
    through them all (a constant grid, the usual case), that line is the one
    anchor. Without beats, a known `bpm` and `first_beat` give one anchor.

    Parameters
    ----------
    beats : sequence of float or ndarray
        Beat times, seconds, increasing (beats not after the one before are ignored,
        as are negative and non-finite times).
    downbeats : sequence of float
        Downbeat times, seconds: they set each anchor's ``Battito`` (beats since the
        newest downbeat at or before it, plus one; counted back from the first
        downbeat for an anchor before it); 1 without downbeats.
    bpm : float or None
        Average tempo, beats per minute (used without beats).
    first_beat : float or None
        Time of the first beat, seconds (used without beats).
    bar : int or None
        Beats per bar (``time_signature``), 4 when unknown.
    tolerance : float
        Seconds a beat may stray from its run's line.

    Returns
    -------
    list of Tempo
        Anchors in time order (empty when nothing is known). Tempos are rounded to
        hundredths of a BPM, times to milliseconds, as rekordbox writes them.
    """
    per_bar = beats_per_bar(meter_of(bar))
    meter = meter_of(bar)
    times = np.asarray(beats, dtype=np.float64).reshape(-1)
    times = times[np.isfinite(times) & (times >= 0)]
    if times.size > 1 and not bool(np.all(np.diff(times) > 1e-6)):
        kept = [float(times[0])]
        for t in times[1:]:
            if t > kept[-1] + 1e-6:
                kept.append(float(t))
        times = np.asarray(kept, dtype=np.float64)
    clean: list[float] = times.tolist()
    if len(clean) < 2:
        if bpm is None or not math.isfinite(bpm) or bpm <= 0:
            return []
        anchor = first_beat if first_beat is not None and first_beat >= 0 else (
            clean[0] if clean else None)
        if anchor is None or not math.isfinite(anchor):
            return []
        return [Tempo(start=round(anchor, 3), bpm=round(bpm, 2), meter=meter, beat=1)]
    downs = sorted(t for t in downbeats if math.isfinite(t) and t >= 0)
    steady = _steady(times, tolerance)
    if steady is not None:
        first, period = steady
        return [Tempo(start=round(first, 3), bpm=round(60.0 / period, 2), meter=meter,
                      beat=_beat_in_bar(clean, 0, downs, per_bar))]
    anchors: list[tuple[int, int]] = []  # (first beat index, last beat index) per run
    start, end = 0, 1
    for j in range(2, len(clean)):
        period = (clean[end] - clean[start]) / (end - start)
        if abs(clean[j] - (clean[start] + (j - start) * period)) <= tolerance:
            end = j
            continue
        anchors.append((start, end))
        start, end = end, j
    anchors.append((start, end))
    out = []
    for first, last in anchors:
        period = (clean[last] - clean[first]) / (last - first)
        out.append(Tempo(start=round(clean[first], 3), bpm=round(60.0 / period, 2),
                         meter=meter, beat=_beat_in_bar(clean, first, downs, per_bar)))
    return out


def _steady(times: np.ndarray, tolerance: float) -> tuple[float, float] | None:
    """``(first beat, period)`` of the least-squares line through all the beats when
    every beat lies within `tolerance` of it (a constant grid: one anchor), else None."""
    index = np.arange(times.size, dtype=np.float64)
    mean_i, mean_t = float(index.mean()), float(times.mean())
    spread = index - mean_i
    period = float(spread @ (times - mean_t)) / float(spread @ spread)
    first = mean_t - period * mean_i
    if period <= 0 or float(np.max(np.abs(times - (first + period * index)))) > tolerance:
        return None
    return max(0.0, float(first)), float(period)


def _beat_in_bar(beats: list[float], index: int, downbeats: list[float], per_bar: int) -> int:
    """1-based number of beat `index` in its bar, from the newest downbeat before it."""
    time = beats[index]
    if not downbeats:
        return 1
    newest = bisect.bisect_right(downbeats, time + 0.02) - 1
    if newest < 0:  # before the first downbeat: count back from it
        ahead = bisect.bisect_left(beats, downbeats[0] - 0.02) - index
        return (-ahead) % per_bar + 1
    since = index - bisect.bisect_left(beats, downbeats[newest] - 0.02)
    return max(0, since) % per_bar + 1


def beats_from_tempos(tempos: Sequence[Tempo], duration: float | None
                      ) -> tuple[list[float], list[float]]:
    """The beat and downbeat times of a rekordbox grid.

    Each anchor's beats run from its ``start`` every ``60 / bpm`` seconds up to the
    next anchor (or `duration`); its bar position starts at ``beat`` (``Battito``),
    so a beat is a downbeat when its position in the bar comes round to 1.

    Parameters
    ----------
    tempos : sequence of Tempo
        Anchors (sorted here by start; positive tempos only).
    duration : float or None
        Length of the track, seconds. Without it the last anchor gives its anchor
        beat only.

    Returns
    -------
    beats, downbeats : list of float
        Times in seconds, rounded to the millisecond.
    """
    anchors = sorted((t for t in tempos if t.bpm > 0 and math.isfinite(t.bpm)
                      and t.start >= 0), key=lambda t: t.start)
    beats: list[float] = []
    downbeats: list[float] = []
    for i, tempo in enumerate(anchors):
        stop = anchors[i + 1].start if i + 1 < len(anchors) else duration
        period = 60.0 / tempo.bpm
        per_bar = beats_per_bar(tempo.meter)
        position = (tempo.beat - 1) % per_bar
        t, k = tempo.start, 0
        while t < (stop if stop is not None else tempo.start + period / 2) - 1e-6:
            beats.append(round(t, 3))
            if position == 0:
                downbeats.append(round(t, 3))
            position = (position + 1) % per_bar
            k += 1
            t = tempo.start + k * period
    return beats, downbeats
