"""Tuning frequency, then key, mode and strength (taperoom.analysis.tonal and .key)."""

from __future__ import annotations

import csv
from pathlib import Path

import mir_eval
import numpy as np
import pytest

from taperoom.analysis.decode import AudioSource, downmix
from taperoom.analysis.key import estimate_key, key_from_pcp
from taperoom.analysis.tonal import (
    TonalAccumulator,
    TonalFeatures,
    chromagram,
    tuning_frequency,
)
from tests.analysis.signals import chords

# I-IV-V-I in E flat major, i-iv-V-i in E minor (harmonic minor: B major dominant)
EB_MAJOR = [[51, 55, 58, 63], [56, 60, 63, 68], [58, 62, 65, 70], [51, 55, 58, 63]]
E_MINOR = [[52, 55, 59, 64], [57, 60, 64, 69], [59, 63, 66, 71], [52, 55, 59, 64]]


def _features(y: np.ndarray, block: int = 65536) -> TonalFeatures:
    acc = TonalAccumulator()
    for i in range(0, y.shape[0], block):
        acc.feed(y[i:i + block])
    return acc.finish()


@pytest.mark.parametrize(("progression", "key", "mode", "camelot", "open_key"), [
    (EB_MAJOR, 3, 1, "5B", "10d"),
    (E_MINOR, 4, 0, "9A", "2m"),
])
def test_chord_progression_in_a_known_key(progression: list[list[int]], key: int, mode: int,
                                          camelot: str, open_key: str) -> None:
    """A cadence in E flat major / E minor is found as that key, with its wheel names."""
    result = estimate_key(_features(chords(progression)))
    assert (result.key, result.mode) == (key, mode)
    assert result.camelot == camelot and result.open_key == open_key
    assert result.strength is not None and result.strength > 0.5
    assert result.tuning_frequency == pytest.approx(440.0, abs=0.5)


@pytest.mark.parametrize("a4", [432.0, 446.0, 451.0])
def test_tuned_away_from_440_is_measured_and_folded(a4: float) -> None:
    """A recording tuned to 432, 446 or 451 Hz (+43 cents: folded onto the semitones
    of 440 Hz its notes would keep 5 % of their weight) has its tuning measured to
    0.5 Hz and its key found."""
    result = estimate_key(_features(chords(E_MINOR, a4=a4)))
    assert result.tuning_frequency == pytest.approx(a4, abs=0.5)
    assert (result.key, result.mode) == (4, 0)


def test_vibrato_does_not_pull_the_tuning() -> None:
    """A violin-like +-30 cent vibrato at 446 Hz still measures 446 Hz (a histogram
    maximum is pulled towards the vibrato's turning points; the circular mean is not)."""
    y = chords(E_MINOR, a4=446.0, vibrato_cents=30.0)
    assert tuning_frequency(_features(y)) == pytest.approx(446.0, abs=1.0)


def test_block_size_does_not_change_the_peaks() -> None:
    """The frames do not depend on how the signal is cut into blocks."""
    y = chords(EB_MAJOR, repeats=1)
    a, b = _features(y, 65536), _features(y, 1001)
    assert a.pitch.shape == b.pitch.shape
    assert np.array_equal(a.pitch, b.pitch)
    assert np.allclose(a.mags.astype(float), b.mags.astype(float), rtol=2e-3, atol=1e-6)


def test_peaks_are_stored_compactly() -> None:
    """A frame's peaks take 160 bytes (uint16 pitch in 1/512 semitone, float16
    magnitude), so a two-hour mix keeps about 12 MB of them, and the stored pitch is
    within a cent of the sine's."""
    features = _features(chords([[57]], seconds=4.0, repeats=1, a4=446.0))
    assert features.pitch.dtype == np.uint16 and features.mags.dtype == np.float16
    assert features.pitch.nbytes + features.mags.nbytes <= 160 * features.pitch.shape[0]
    strongest = features.pitch[5][np.argmax(features.mags[5])] / 512.0
    assert strongest == pytest.approx(57 + 12 * np.log2(446.0 / 440.0), abs=0.01)


# A major material (I-V-I-IV, as a D major exposition's second group in the dominant)
A_SECTION = [[57, 61, 64, 69], [52, 56, 59, 64], [57, 61, 64, 69], [50, 54, 57, 62]]


def test_final_cadence_names_the_tonic_of_a_piece_that_dwells_in_its_dominant() -> None:
    """A piece that spends most of its time in its dominant, A major (its pitch-class
    profile says A major), and ends on a held D major chord is in D major; ending
    on a held E major chord (a half cadence) leaves it in A major."""
    body = chords(A_SECTION, repeats=4)
    held_d = chords([[50, 54, 57, 62]], seconds=2.5, repeats=1)
    held_e = chords([[52, 56, 59, 64]], seconds=2.5, repeats=1)
    tail = np.zeros(44100, dtype=np.float32)
    assert key_from_pcp(np.asarray(estimate_key_profile(body)))[:2] == (9, 1)
    in_d = estimate_key(_features(np.concatenate([body, held_d, tail])))
    assert (in_d.key, in_d.mode) == (2, 1)
    in_a = estimate_key(_features(np.concatenate([body, held_e, tail])))
    assert (in_a.key, in_a.mode) == (9, 1)


def estimate_key_profile(y: np.ndarray) -> np.ndarray:
    """The whole-signal pitch-class profile the key estimate starts from."""
    features = _features(y)
    return chromagram(features, tuning=tuning_frequency(features)).sum(axis=0)


def test_silence_has_no_key() -> None:
    """Digital silence gives no key, no mode, no strength and 440 Hz tuning."""
    result = estimate_key(_features(np.zeros(44100 * 3, dtype=np.float32)))
    assert result.key is None and result.mode is None and result.strength is None
    assert result.camelot is None and result.key_name is None
    assert result.tuning_frequency == 440.0


def test_flat_profile_has_no_key() -> None:
    """A pitch-class profile with every class equal names no key."""
    assert key_from_pcp(np.ones(12)) is None


def test_dev_corpus_weighted_score(corpus: Path) -> None:
    """On the unambiguous key tracks of the dev corpus (solo violin recordings and
    rendered scores), the MIREX weighted score is at least 0.90 (the best reference,
    essentia's KeyExtractor with the shaath profile, scores 0.85 there)."""
    dev = corpus / "dev"
    with open(dev / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["key"] and r["key_ambiguous"] != "True"]
    assert len(rows) >= 10
    scores = []
    for row in rows:
        acc = TonalAccumulator()
        with AudioSource(dev / row["file"]) as src:
            for block in src.blocks():
                acc.feed(downmix(block))
        result = estimate_key(acc.finish())
        reference = row["key"][0].upper() + row["key"][1:]
        scores.append(mir_eval.key.weighted_score(
            reference, f"{result.key_name} {result.mode_name}"))
    assert float(np.mean(scores)) >= 0.90, scores
