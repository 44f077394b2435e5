"""Sections at another tempo (taperoom.analysis.tempochange) and the beat tracker's
per-frame period (taperoom.analysis.beats.track_beats)."""

from __future__ import annotations

import numpy as np
import pytest

from taperoom.analysis.beats import beats_hold, fit_grid, grid_beats, track_beats
from taperoom.analysis.tempo import novelty
from taperoom.analysis.tempochange import beat_periods
from tests.analysis.rhythm_signals import clicks, drifting, swing, tempo_step
from tests.analysis.test_rhythm import features_of


def _novelty(y: np.ndarray) -> tuple[np.ndarray, float]:
    f = features_of(y)
    return novelty(f.flux, f.hfc, f.frame_rate), f.frame_rate


@pytest.mark.parametrize("make", [
    lambda: clicks(120.0, 40.0),
    lambda: drifting(170.0, 176.0, 40.0),
    lambda: swing(100.0, 40.0),
    lambda: tempo_step(120.0, 132.0, 40.0),
], ids=["clicks", "drifting band", "swing", "10 % step"])
def test_music_that_keeps_its_tempo_has_no_other_section(make: object) -> None:
    """One tempo, a band gliding by 3.5 %, swung eighths and a step of 10 % (which the
    single-period tracker already follows) have no section at another tempo."""
    y, beats = make()  # type: ignore[operator]
    o, fr = _novelty(y)
    tempo = 60.0 / float(np.median(np.diff(beats)))
    assert beat_periods(o, fr, tempo) is None


def test_a_step_from_100_to_140_bpm_gives_each_half_its_period() -> None:
    """The period curve holds 100 BPM in the first half and 140 in the second (within
    1 %), and changes within 10 s of the step."""
    y, _ = tempo_step(100.0, 140.0, 60.0)
    o, fr = _novelty(y)
    periods = beat_periods(o, fr, 140.0)
    assert periods is not None and periods.shape == o.shape
    bpm = 60.0 * fr / periods
    t = np.arange(o.size) / fr
    assert np.all(np.abs(bpm[(t > 5) & (t < 25)] / 100.0 - 1) < 0.01)
    assert np.all(np.abs(bpm[(t > 35) & (t < 55)] / 140.0 - 1) < 0.01)


def test_a_track_shorter_than_a_window_has_no_sections() -> None:
    y, _ = clicks(120.0, 5.0)
    o, fr = _novelty(y)
    assert beat_periods(o, fr, 120.0) is None


def test_beats_follow_a_period_per_frame() -> None:
    """Given the period of each half, the tracker puts a beat within 20 ms of every
    click of both halves; given one period, it misses many in the other half."""
    y, beats = tempo_step(100.0, 140.0, 40.0)
    o, fr = _novelty(y)
    t = np.arange(o.size) / fr
    periods = np.where(t < beats[beats < 20.0][-1], 60.0 * fr / 100.0, 60.0 * fr / 140.0)
    inner = beats[(beats > 1.0) & (beats < 39.0)]

    def hits(found: np.ndarray) -> float:
        est = found / fr
        return float(np.mean(np.min(np.abs(est[None, :] - inner[:, None]), axis=1) < 0.02))

    assert hits(track_beats(o, periods)) >= 0.95
    assert hits(track_beats(o, 60.0 * fr / 140.0)) < 0.8


def test_a_period_array_of_the_wrong_length_is_refused() -> None:
    o = np.zeros(100)
    with pytest.raises(ValueError, match="100 frames"):
        track_beats(o, np.full(99, 20.0))


def test_a_grid_that_loses_its_onsets_in_a_section_does_not_hold() -> None:
    """A 120 BPM grid through a step to 150: in the second half it keeps a quarter of
    the onset strength it has in the first, so its beats do not hold; a click track's
    grid holds through any marked section."""
    y, _ = tempo_step(120.0, 150.0, 40.0)
    o, fr = _novelty(y)
    period = 60.0 * fr / 120.0
    first = np.arange(0.0, 20.0 * fr - 1, period)
    grid = fit_grid(first, o, period)
    assert grid is not None
    second_half = np.arange(o.size) >= 20.0 * fr
    assert not beats_hold(grid_beats(grid, o.size), o, second_half)
    y, _ = clicks(120.0, 40.0)
    o, fr = _novelty(y)
    grid = fit_grid(np.arange(0.0, o.size - 1, period), o, period)
    assert grid is not None
    assert beats_hold(grid_beats(grid, o.size), o, np.arange(o.size) >= 20.0 * fr)
    assert beats_hold(grid_beats(grid, o.size), o, np.zeros(o.size, dtype=bool))
