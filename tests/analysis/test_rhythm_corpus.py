"""Rhythm analysis on real music of the dev corpus, checked against its annotations.

Tolerances come from the annotations and the corpus README, never from this
analyzer's output: tempo within 4 % of the annotated beat-unit tempo (the Acc1 measure
of the MIREX tempo task), beats and downbeats within the ±70 ms window of the
F-measure (mir_eval's default), the first 5 s left out as mir_eval does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from taperoom.analysis.decode import AudioSource, downmix
from taperoom.analysis.rhythm import RhythmAccumulator, RhythmResult, estimate_rhythm

#: Beat-matching window (s) of the beat F-measure (Dixon 2007; mir_eval default).
WINDOW = 0.07
#: mir_eval.beat.trim_beats leaves out the first 5 s.
SKIP = 5.0


def analyse_file(path: Path) -> RhythmResult:
    acc = RhythmAccumulator()
    with AudioSource(path) as src:
        for block in src.blocks():
            acc.feed(downmix(block))
    return estimate_rhythm(acc.finish())


def annotation(corpus: Path, track: str) -> tuple[float, np.ndarray, np.ndarray]:
    """(annotated tempo BPM, beat times s, downbeat times s) from `<track>.json/.beats`."""
    meta = json.loads((corpus / "dev" / f"{track}.json").read_text())
    table = np.loadtxt(corpus / "dev" / f"{track}.beats", ndmin=2)
    return float(meta["bpm"]), table[:, 0], table[np.floor(table[:, 1]) == 1, 0]


def hit_rate(est: np.ndarray, ref: np.ndarray) -> float:
    """Share of reference times (after 5 s) with an estimate within the window."""
    ref = ref[ref >= SKIP]
    if est.size == 0:
        return 0.0
    idx = np.clip(np.searchsorted(est, ref), 1, max(1, est.size - 1))
    near = np.minimum(np.abs(est[idx] - ref), np.abs(est[np.maximum(idx - 1, 0)] - ref))
    return float(np.mean(near <= WINDOW))


def false_rate(est: np.ndarray, ref: np.ndarray) -> float:
    """Share of estimates (after 5 s, before the last reference) with no reference near."""
    est = est[(est >= SKIP) & (est <= ref[-1] + WINDOW)]
    if est.size == 0:
        return 0.0
    return 1.0 - hit_rate(ref, est) if est.size else 0.0


@pytest.mark.parametrize(("track", "bars"), [("lmms_Saber-FinalStep", True),
                                            ("hydrogen_TR808kit-demo", True),
                                            ("lmms_Jousboxx-BuzzerBeater", False),
                                            ("lmms_Skiessi-C64", False),
                                            ("lmms_Greshz-CoolSnip", False)])
def test_electronic_track_gets_its_project_tempo_grid_and_bars(corpus: Path, track: str,
                                                                bars: bool) -> None:
    """Rendered at one whole-BPM project tempo (README: tempo and beats exact): a
    constant grid at that tempo to a hundredth, on the annotated beats, with the
    annotated downbeats where `bars`. BuzzerBeater's and C64's tracked beats slip to
    the off-beat in places (a line through them is 0.12 % off), CoolSnip is a loop
    too short to tell 139.94 from 140 BPM."""
    bpm, beats, downs = annotation(corpus, track)
    r = analyse_file(corpus / "dev" / f"{track}.ogg")
    assert r.constant_tempo
    assert r.bpm == pytest.approx(bpm, abs=0.005)
    assert hit_rate(r.beats, beats) >= 0.95
    assert false_rate(r.beats, beats) <= 0.05
    if bars:
        assert r.beats_per_bar == 4
        assert hit_rate(r.downbeats, downs) >= 0.9


def test_fast_band_rock_is_not_halved(corpus: Path) -> None:
    """A 190 BPM metal song (README: tempo exact from the chart, beats ±20 ms) comes
    out at 190, above the default DJ range, with beats on the annotated beats."""
    track = "fof_muldjord_internal_degeneration"
    bpm, beats, _downs = annotation(corpus, track)
    r = analyse_file(corpus / "dev" / f"{track}.ogg")
    assert r.bpm == pytest.approx(bpm, rel=0.04)
    assert hit_rate(r.beats, beats) >= 0.8
    assert false_rate(r.beats, beats) <= 0.2


def test_fast_band_rock_is_counted_in_four(corpus: Path) -> None:
    """The 190 BPM metal song in 4/4 (README: downbeats derived from the chart, ±20 ms)
    gets bars of four beats whose downbeats fall on the annotated ones, not bars of three
    (whose downbeats would meet the annotated ones only every third bar)."""
    track = "fof_muldjord_internal_degeneration"
    _bpm, _beats, downs = annotation(corpus, track)
    r = analyse_file(corpus / "dev" / f"{track}.ogg")
    assert r.beats_per_bar == 4
    assert hit_rate(r.downbeats, downs) >= 0.9
    assert false_rate(r.downbeats, downs) <= 0.1


@pytest.mark.parametrize("track", ["m21_mozart_k155_m1", "fof_muldjord_armygeddon"])
def test_one_tempo_music_gets_a_grid_where_the_tracked_beats_stray(corpus: Path,
                                                                   track: str) -> None:
    """A score rendered at one tempo (README: tempo and beats exact) and a band song
    charted at one tempo (tempo exact, beats ±20 ms): the tracked beats slip off the
    beat in places (sparse or syncopated onsets), the grid does not. Both get a
    constant grid at the annotated tempo that lands on the annotated beats."""
    bpm, beats, _downs = annotation(corpus, track)
    r = analyse_file(corpus / "dev" / f"{track}.ogg")
    assert r.constant_tempo
    assert r.bpm == pytest.approx(bpm, rel=0.04)
    assert hit_rate(r.beats, beats) >= 0.95
    assert false_rate(r.beats, beats) <= 0.05


def test_solo_violin_keeps_its_detected_beats(corpus: Path) -> None:
    """A violinist playing without a click (README: tempo is an average, the beats
    vary from 72 to 88 BPM between the 10th and 90th percentile): no constant grid."""
    r = analyse_file(corpus / "dev" / "bachviolin_john-garner_bwv1002_mov7.mp3")
    assert r.bpm is not None
    assert not r.constant_tempo


def test_solo_violin_gets_the_tempo_its_beats_hold_not_the_final_ritardandos(
        corpus: Path) -> None:
    """The Tempo di Borea slows down in its last bars and ends on a held chord: the
    BPM is the tempo the annotated beats hold over the piece (their mean, 77.6 BPM,
    within 1.5 %) and within the 4 % of the annotated 75 BPM, not pulled up by beats
    carried on at the running tempo through the ending."""
    track = "bachviolin_john-garner_bwv1002_mov7"
    bpm, beats, _ = annotation(corpus, track)
    mean_bpm = 60.0 * (beats.size - 1) / (beats[-1] - beats[0])
    r = analyse_file(corpus / "dev" / f"{track}.mp3")
    assert r.bpm is not None and not r.constant_tempo
    assert r.bpm == pytest.approx(mean_bpm, rel=0.015)
    assert r.bpm == pytest.approx(bpm, rel=0.04)


@pytest.mark.parametrize("track", ["m21_corelli_op3no1_grave", "m21_schubert_lindenbaum"])
def test_string_and_piano_scores_get_every_notated_beat(corpus: Path, track: str) -> None:
    """Scores rendered at one tempo (README: beats exact) whose strings and piano
    sustain between notes: a constant grid with a beat on every notated beat. (The
    metrical level is checked by the tests of the tempo below; here the tempo may be
    at 1x or 2x the notated one, and extra beats between the notated ones are not
    counted.)"""
    bpm, beats, _downs = annotation(corpus, track)
    r = analyse_file(corpus / "dev" / f"{track}.ogg")
    assert r.bpm is not None
    assert min(abs(r.bpm / (bpm * f) - 1.0) for f in (1.0, 2.0)) <= 0.04
    assert r.constant_tempo
    assert hit_rate(r.beats, beats) >= 0.95


@pytest.mark.parametrize("track", ["m21_schubert_lindenbaum", "m21_clara_schumann_polonaise1"])
def test_triple_metre_score_moving_in_eighths_gets_its_notated_beat(corpus: Path,
                                                                    track: str) -> None:
    """Scores in 3/4 rendered at one tempo (README: tempo, beats and downbeats exact)
    whose running eighth notes are the most salient pulse: the bar lines recur every
    six eighths, so the beat is the quarter note, counted in three, on the annotated
    beats and downbeats; the quick analysis (no bars reported) gives the same grid."""
    bpm, beats, downs = annotation(corpus, track)
    acc = RhythmAccumulator()
    with AudioSource(corpus / "dev" / f"{track}.ogg") as src:
        for block in src.blocks():
            acc.feed(downmix(block))
    features = acc.finish()
    r = estimate_rhythm(features)
    assert r.bpm == pytest.approx(bpm, rel=0.04)
    assert r.beats_per_bar == 3
    assert hit_rate(r.beats, beats) >= 0.95
    assert false_rate(r.beats, beats) <= 0.05
    assert hit_rate(r.downbeats, downs) >= 0.9
    quick = estimate_rhythm(features, quick=True)
    assert quick.bpm == r.bpm
    np.testing.assert_array_equal(quick.beats, r.beats)
    assert quick.downbeats.size == 0 and quick.beats_per_bar is None


@pytest.mark.parametrize("track", ["m21_bach_bwv269", "m21_bach_bwv66.6",
                                   "m21_corelli_op3no1_grave", "m21_liliuokalani_aloha_oe"])
def test_scores_without_drums_are_counted_in_their_beat_not_their_running_notes(
        corpus: Path, track: str) -> None:
    """Chorales, a grave and a song rendered at one tempo (README: tempo and beats
    exact) with no drums: their most regular pulse is the running eighth notes, which
    nothing subdivides; the beat is the notated one (half of it), on every annotated
    beat and with no beat between them."""
    bpm, beats, _downs = annotation(corpus, track)
    r = analyse_file(corpus / "dev" / f"{track}.ogg")
    assert r.bpm == pytest.approx(bpm, rel=0.04)
    assert hit_rate(r.beats, beats) >= 0.95
    assert false_rate(r.beats, beats) <= 0.05


@pytest.mark.parametrize("track", ["m21_haydn_op74no1_m1", "m21_mozart_k155_m1"])
def test_scores_whose_beat_is_subdivided_keep_it(corpus: Path, track: str) -> None:
    """Allegro movements rendered at one tempo (README: tempo exact) with running
    sixteenth notes under the beat: the beat is subdivided, so it is not halved."""
    bpm, beats, _downs = annotation(corpus, track)
    r = analyse_file(corpus / "dev" / f"{track}.ogg")
    assert r.bpm == pytest.approx(bpm, rel=0.04)
    assert hit_rate(r.beats, beats) >= 0.95


def test_a_rag_is_counted_in_its_notated_beat_on_its_bass_notes(corpus: Path) -> None:
    """A rag in 2/4 rendered at one tempo (README: tempo and beats exact): its left
    hand alternates bass notes and chords in eighth notes ("oom-pah") under a melody
    in sixteenths; the beat is the notated quarter, on the bass notes, not between."""
    bpm, beats, _downs = annotation(corpus, "m21_joplin_maple_leaf_rag")
    r = analyse_file(corpus / "dev" / "m21_joplin_maple_leaf_rag.ogg")
    assert r.bpm == pytest.approx(bpm, rel=0.04)
    assert hit_rate(r.beats, beats) >= 0.95
    assert false_rate(r.beats, beats) <= 0.05


def test_a_syncopated_electronic_track_gets_its_beat_not_its_half(corpus: Path) -> None:
    """An electronic track rendered at one project tempo (README: tempo and beats
    exact) whose half tempo is as salient as its tempo: at the half the tracked beats
    slip between on- and off-beats and no grid fits; at the tempo one does."""
    bpm, beats, _downs = annotation(corpus, "lmms_DirtyLove")
    r = analyse_file(corpus / "dev" / "lmms_DirtyLove.ogg")
    assert r.bpm == pytest.approx(bpm, rel=0.04)
    assert r.constant_tempo
    assert hit_rate(r.beats, beats) >= 0.95
    assert false_rate(r.beats, beats) <= 0.05
