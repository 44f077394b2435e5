"""Tempo, beatgrid and downbeats (taperoom.analysis.rhythm) on signals with exact beats."""

from __future__ import annotations

import numpy as np
import pytest

from taperoom.analysis.rhythm import (
    RhythmAccumulator,
    RhythmFeatures,
    RhythmResult,
    estimate_rhythm,
)
from taperoom.errors import InvalidInput
from tests.analysis.rhythm_signals import (
    RATE,
    clicks,
    drifting,
    drums,
    four_on_the_floor,
    in_three,
    swing,
    tempo_step,
)


def features_of(y: np.ndarray, block: int = 65536) -> RhythmFeatures:
    acc = RhythmAccumulator(RATE)
    for i in range(0, y.size, block):
        acc.feed(y[i:i + block])
    return acc.finish()


def analyse(y: np.ndarray, **kw: object) -> RhythmResult:
    return estimate_rhythm(features_of(y), **kw)  # type: ignore[arg-type]


def nearest_error(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """For each reference time, the distance to the nearest estimate (s)."""
    idx = np.clip(np.searchsorted(est, ref), 1, est.size - 1)
    return np.minimum(np.abs(est[idx] - ref), np.abs(est[idx - 1] - ref))


def test_features_do_not_depend_on_block_size() -> None:
    """Feeding the same signal in blocks of 1000 or 65536 samples gives the same features."""
    y, _ = clicks(120.0, 12.0)
    a, b = features_of(y, 1000), features_of(y, 65536)
    assert a.flux.shape == b.flux.shape
    np.testing.assert_allclose(a.flux, b.flux, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.hfc, b.hfc, rtol=1e-5, atol=1e-9)
    assert a.duration == pytest.approx(12.0, abs=1e-6)
    # one frame per hop, centred frames from t=0 to the end
    assert a.flux.shape[0] == int(12.0 * RATE) // 256 + 1


@pytest.mark.parametrize("bpm", [96.0, 123.45, 128.0, 174.0])
def test_click_track_gives_its_exact_tempo_and_grid(bpm: float) -> None:
    """A metronome gets its tempo to 0.01 BPM, a constant grid and beats on the clicks;
    the grid runs over the whole track, so the first beat is the grid's phase."""
    y, truth = clicks(bpm, 40.0, offset=0.37)
    r = analyse(y)
    assert r.bpm == pytest.approx(bpm, abs=0.011)
    assert r.constant_tempo
    assert np.all(nearest_error(r.beats, truth) < 0.012)
    assert r.first_beat_offset == pytest.approx(0.37 % (60.0 / bpm), abs=0.012)
    assert r.beats[0] == r.first_beat_offset
    assert r.beat_consistency == pytest.approx(1.0)


def test_drum_pattern_downbeats_in_four() -> None:
    """Kick on 1 and 3, snare on 2 and 4: four beats per bar, downbeats on the bar's kick."""
    y, _beats, downs = drums(120.0, 30.0, pickup=1)
    r = analyse(y)
    assert r.bpm == pytest.approx(120.0, abs=0.01)
    assert r.beats_per_bar == 4
    assert np.all(nearest_error(r.downbeats, downs) < 0.02)
    assert abs(r.beats[r.first_phrase_beat_no] - downs[0]) < 0.02


def test_drum_pattern_downbeats_in_three() -> None:
    """A waltz pattern (kick, snare, snare) is three beats per bar."""
    y, _beats, downs = drums(150.0, 30.0, beats_per_bar=3)
    r = analyse(y)
    assert r.bpm == pytest.approx(150.0, abs=0.01)
    assert r.beats_per_bar == 3
    assert np.all(nearest_error(r.downbeats, downs) < 0.02)


def test_silence_has_no_tempo() -> None:
    r = analyse(np.zeros(RATE * 10, dtype=np.float32))
    assert r.bpm is None
    assert r.beats.size == 0 and r.downbeats.size == 0
    assert r.first_beat_offset is None and r.beats_per_bar is None


def test_too_short_has_no_tempo() -> None:
    y, _ = clicks(120.0, 2.0)
    assert analyse(y).bpm is None


@pytest.mark.parametrize("bad", [(180.0, 70.0), (0.0, 100.0), (float("nan"), 120.0)])
def test_bad_bpm_range_is_refused(bad: tuple[float, float]) -> None:
    y, _ = clicks(120.0, 10.0)
    with pytest.raises(InvalidInput):
        estimate_rhythm(features_of(y), bpm_range=bad)


def test_feed_refuses_stereo_blocks() -> None:
    acc = RhythmAccumulator(RATE)
    with pytest.raises(ValueError, match="mono"):
        acc.feed(np.zeros((100, 2), dtype=np.float32))


@pytest.mark.parametrize(("pickup", "clap"), [(0, False), (1, False), (2, False), (0, True),
                                             (1, True)])
def test_downbeats_follow_chord_changes_when_every_beat_has_a_kick(pickup: int,
                                                                   clap: bool) -> None:
    """Four-on-the-floor: only the harmony marks the bar (a louder backbeat clap on 2
    and 4 must not pull the downbeat onto itself), so the downbeats are where the
    chords change, whatever the number of pickup beats before the first bar."""
    y, _beats, downs = four_on_the_floor(124.0, 40.0, pickup=pickup, clap=clap)
    r = analyse(y)
    assert r.beats_per_bar == 4
    assert np.all(nearest_error(r.downbeats, downs) < 0.02)


def test_grid_starting_at_zero_keeps_its_first_beat() -> None:
    """A track whose first beat is its first sample keeps that beat at 0 s."""
    y, truth = clicks(128.0, 30.0)
    r = analyse(y)
    assert r.first_beat_offset == pytest.approx(0.0, abs=0.012)
    assert r.beats.size == truth.size


@pytest.mark.parametrize(("bpm", "eighths"), [(190.0, True), (200.0, False), (75.0, False)])
def test_tempo_outside_or_at_the_edge_of_the_dj_range_is_kept(bpm: float,
                                                              eighths: bool) -> None:
    """The DJ range (70-180) is a prior, not a fold: a 190 BPM drum pattern (kick on 1
    and 3, snare on 2 and 4, hats on eighths) is 190, not 95; a 200 BPM one with hats
    on the beats is 200; a 75 BPM one stays at 75."""
    y, beats, _downs = drums(bpm, 40.0, eighths=eighths)
    r = analyse(y)
    assert r.bpm == pytest.approx(bpm, rel=0.005)
    assert np.all(nearest_error(r.beats, beats[beats > 1.0]) < 0.02)


@pytest.mark.parametrize("bpm", [75.0, 190.0])
def test_click_tracks_at_the_edges_of_the_dj_range(bpm: float) -> None:
    y, truth = clicks(bpm, 40.0, offset=0.2)
    r = analyse(y)
    assert r.bpm == pytest.approx(bpm, abs=0.011)
    assert np.all(nearest_error(r.beats, truth) < 0.012)


def test_swing_keeps_the_beat_not_the_swung_eighths() -> None:
    """Triplet swing: the tempo is that of the kick/snare beat and the beats fall on it,
    never on the swung off-beat hats."""
    y, beats = swing(100.0, 40.0)
    r = analyse(y)
    assert r.bpm == pytest.approx(100.0, rel=0.005)
    assert np.all(nearest_error(r.beats, beats[beats > 1.0]) < 0.02)


def test_tempo_change_is_not_forced_onto_one_grid() -> None:
    """A step from 120 to 132 BPM half-way: no constant grid, and the detected beats
    follow both halves (a single grid would drift up to half a beat away)."""
    y, beats = tempo_step(120.0, 132.0, 60.0)
    r = analyse(y)
    assert not r.constant_tempo
    assert r.bpm is not None and 118.0 <= r.bpm <= 134.0
    inner = beats[(beats > 1.0) & (beats < 59.0)]
    err = nearest_error(r.beats, inner)
    assert np.mean(err < 0.03) >= 0.95


@pytest.mark.parametrize(("bpm1", "bpm2"), [(100.0, 140.0), (140.0, 100.0), (90.0, 128.0),
                                         (120.0, 150.0), (150.0, 120.0)])
def test_a_track_that_changes_tempo_gets_beats_at_both_tempi(bpm1: float, bpm2: float) -> None:
    """A step of 25 or 40 % half-way (an intro at one tempo, the main part at another):
    no constant grid, and each half has its beats at its own tempo. With one period for
    the whole track, about half the beats of one half were more than 30 ms off at 40 %;
    at 25 % the beats stayed on a grid at the first tempo (every fourth of its beats
    falls on every fifth of the second), taken as the track's, with four fifths of the
    second half's beats off."""
    y, beats = tempo_step(bpm1, bpm2, 60.0)
    r = analyse(y)
    assert not r.constant_tempo
    assert r.bpm is not None and min(bpm1, bpm2) * 0.99 <= r.bpm <= max(bpm1, bpm2) * 1.01
    for start, end in ((1.0, 29.0), (31.0, 59.0)):
        ref = beats[(beats > start) & (beats < end)]
        assert np.mean(nearest_error(r.beats, ref) < 0.03) >= 0.9, (start, end)
    assert abs(r.beats.size - beats.size) <= 2


def test_drifting_band_gets_its_mean_tempo_to_a_third_of_a_percent() -> None:
    """A band gliding from 170 to 176 BPM: no constant grid, beats on the hits, and a
    BPM within 0.3 % of the mean tempo of its beats (not a tempo rounded to the 5.8 ms
    analysis frames, which would be 1.7 % off at this tempo)."""
    y, beats = drifting(170.0, 176.0, 60.0)
    r = analyse(y)
    mean_bpm = 60.0 * (beats.size - 1) / (beats[-1] - beats[0])
    assert not r.constant_tempo
    assert r.bpm == pytest.approx(mean_bpm, rel=0.003)
    assert np.mean(nearest_error(r.beats, beats[beats > 1.0]) < 0.03) >= 0.95


def test_grid_support_is_near_one_on_the_beat_and_low_between_beats() -> None:
    """The grid's share of the detected beats' onset strength: a grid on the clicks of a
    click track keeps all of it, the same grid moved by half a beat almost none."""
    from taperoom.analysis.beats import Grid, grid_support
    from taperoom.analysis.tempo import novelty

    y, beats = clicks(120.0, 20.0, offset=0.25)
    f = features_of(y)
    o = novelty(f.flux, f.hfc, f.frame_rate)
    frames = beats * f.frame_rate
    period = 0.5 * f.frame_rate
    k = np.arange(frames.size)
    on = Grid(period=period, phase=float(frames[0]), index=k, residual=np.zeros(k.size))
    off = Grid(period=period, phase=float(frames[0]) + period / 2, index=k,
               residual=np.zeros(k.size))
    assert grid_support(on, frames, o) == pytest.approx(1.0, abs=0.05)
    assert grid_support(off, frames, o) < 0.2


def test_a_grid_a_tenth_of_a_percent_off_moves_to_the_whole_bpm_on_the_clicks() -> None:
    """A grid fitted at 128.15 BPM to a 128 BPM click track of three minutes drifts a
    third of a beat by its ends; the whole-BPM grid lands on every click again and puts
    more onset strength on the grid."""
    from taperoom.analysis.beats import Grid, grid_support, whole_bpm_grid
    from taperoom.analysis.tempo import novelty

    y, beats = clicks(128.0, 180.0, offset=0.3)
    f = features_of(y)
    fr = f.frame_rate
    o = novelty(f.flux, f.hfc, fr)
    frames = beats * fr
    k = np.arange(frames.size)
    period = 60.0 * fr / 128.15
    centre = float(frames[k.size // 2])
    phase = centre - period * (k.size // 2)
    off = Grid(period=period, phase=phase, index=k, residual=frames - (phase + period * k))
    whole = whole_bpm_grid(off, o, fr)
    assert whole is not None
    assert 60.0 * fr / whole.period == pytest.approx(128.0, abs=1e-9)
    grid_s = (whole.phase + whole.period * k) / fr
    assert np.max(np.abs(grid_s - beats)) < 0.012
    assert grid_support(whole, frames, o) > grid_support(off, frames, o) + 0.2


@pytest.mark.parametrize("bpm", [123.45, 128.0])
def test_a_grid_far_from_or_at_a_whole_bpm_is_left_alone(bpm: float) -> None:
    """123.45 BPM is 0.36 % from 123, beyond reach; 128.00 is already whole."""
    from taperoom.analysis.beats import Grid, whole_bpm_grid

    fr = 44100 / 256
    k = np.arange(64)
    grid = Grid(period=60.0 * fr / bpm, phase=10.0, index=k, residual=np.zeros(k.size))
    assert whole_bpm_grid(grid, np.ones(8000), fr) is None


def test_grids_apart_is_the_distance_at_the_track_ends() -> None:
    """Two grids through the same beat 0 at 120.00 and 120.12 BPM over 1000 frames:
    they part by the period difference times the last beat's index."""
    from taperoom.analysis.beats import Grid, grids_apart

    fr = 44100 / 256
    k = np.arange(10)
    a = Grid(period=60.0 * fr / 120.0, phase=0.0, index=k, residual=np.zeros(k.size))
    b = Grid(period=60.0 * fr / 120.12, phase=0.0, index=k, residual=np.zeros(k.size))
    last = np.floor(999 / a.period)
    assert grids_apart(a, b, 1000) == pytest.approx(last * (a.period - b.period))
    assert grids_apart(a, a, 1000) == 0.0


@pytest.mark.parametrize("bpm", [160.0, 172.0])
def test_a_fast_piece_in_three_without_drums_keeps_its_quarter_note_beat(bpm: float) -> None:
    """A drumless 3/4 whose softer eighths leave the quarter note the most regular pulse:
    that pulse goes in threes (bars), so it is not halved to a tempo no bar of three
    holds; the beats fall on the quarter notes and the bars are counted in three."""
    y, beats, downbeats = in_three(bpm, 40.0)
    features = features_of(y)
    assert features.percussive_share is not None and features.percussive_share < 0.13
    r = estimate_rhythm(features)
    assert r.bpm == pytest.approx(bpm, rel=0.01)
    assert r.beats_per_bar == 3
    assert np.median(nearest_error(r.beats, beats[2:-2])) < 0.02
    assert np.median(nearest_error(r.downbeats, downbeats[1:-1])) < 0.02


def test_a_beat_list_spans_the_music_not_the_silence_around_it() -> None:
    """A track without one tempo (120 then 132 BPM) between 3 s of leading and 8 s of
    trailing room noise (white noise at -60 dBFS): no beat before the first kick or
    after the last one (a constant grid would span the file)."""
    body, beats = tempo_step(120.0, 132.0, 40.0)
    lead, tail = 3.0, 8.0
    noise = np.random.default_rng(5).normal(0.0, 1e-3, int((lead + 40.0 + tail) * RATE))
    y = (noise + np.concatenate([np.zeros(int(lead * RATE)), body,
                                 np.zeros(int(tail * RATE))])).astype(np.float32)
    r = analyse(y)
    assert not r.constant_tempo
    played = beats + lead
    assert r.beats[0] >= played[0] - 0.05
    assert r.beats[-1] <= played[-1] + 0.05
    err = nearest_error(r.beats, played[(played > lead + 1.0) & (played < lead + 39.0)])
    assert np.mean(err < 0.03) >= 0.95
