"""Characteristics: audible start/end, spectral shape, danceability, dynamic complexity
and energy (taperoom.analysis.features)."""

from __future__ import annotations

from pathlib import Path

import essentia.standard as es
import numpy as np
import pytest

from taperoom.analysis.decode import AudioSource, downmix
from taperoom.analysis.features import (
    FeatureAccumulator,
    FrameFeatures,
    characteristics,
    energy_score,
)
from taperoom.analysis.loudness import LoudnessAccumulator, loudness
from tests.analysis.signals import RATE, sine, write_audio


def _features(y: np.ndarray, block: int = 65536) -> FrameFeatures:
    acc = FeatureAccumulator()
    for i in range(0, y.shape[0], block):
        acc.feed(y[i:i + block])
    return acc.finish()


def test_audible_start_and_end_of_a_silence_padded_file(tmp_path: Path) -> None:
    """A file of 2 s silence, 3 s tone and 1.5 s silence is audible from 2.0 s to
    5.0 s (to the millisecond), read through the decoder from a FLAC file."""
    y = np.concatenate([np.zeros(2 * RATE), sine(440.0, 3.0, dbfs=-20.0),
                        np.zeros(int(1.5 * RATE))]).astype(np.float32)
    path = write_audio(tmp_path / "padded.flac", y)
    acc = FeatureAccumulator()
    with AudioSource(path) as src:
        for block in src.blocks(10_000):
            acc.feed(downmix(block))
    result = characteristics(acc.finish(), lufs=None)
    assert result.audible_start == pytest.approx(2.0, abs=0.001)
    assert result.audible_end == pytest.approx(5.0, abs=0.001)


def test_quiet_hiss_below_minus_60_dbfs_is_not_audible() -> None:
    """Noise peaking below -60 dBFS before and after the music does not count."""
    rng = np.random.default_rng(0)
    hiss = (rng.uniform(-1, 1, RATE) * 10 ** (-62 / 20)).astype(np.float32)
    y = np.concatenate([hiss, sine(440.0, 1.0, dbfs=-20.0), hiss])
    result = characteristics(_features(y), lufs=None)
    assert result.audible_start == pytest.approx(1.0, abs=0.001)
    assert result.audible_end == pytest.approx(2.0, abs=0.001)


def test_silence_has_no_audible_range() -> None:
    """Digital silence has no audible start or end and the lowest energy."""
    result = characteristics(_features(np.zeros(RATE * 2, dtype=np.float32)), lufs=None)
    assert result.audible_start is None and result.audible_end is None
    assert result.energy == 1.0 and result.energy_level == 1


@pytest.mark.parametrize("freq", [440.0, 3000.0])
def test_spectral_shape_and_zero_crossings_of_a_sine(freq: float) -> None:
    """A sine's centroid and roll-off sit at its frequency (within two 21.5 Hz bins)
    and it crosses zero twice per period."""
    result = characteristics(_features(sine(freq, 4.0)), lufs=None)
    assert result.spectral_centroid == pytest.approx(freq, abs=43.0)
    assert result.spectral_rolloff == pytest.approx(freq, abs=43.0)
    assert result.zero_crossing_rate == pytest.approx(2 * freq / RATE, rel=0.01)


def test_block_size_does_not_change_the_features() -> None:
    """Odd block sizes give the same characteristics as one block."""
    rng = np.random.default_rng(3)
    y = (rng.normal(size=RATE * 6) * 0.1).astype(np.float32)
    assert characteristics(_features(y, 1234), lufs=-20.0) == characteristics(
        _features(y, y.size), lufs=-20.0)


@pytest.mark.parametrize("name", ["hydrogen_GM_kit_demo2.ogg", "m21_corelli_op3no1_grave.ogg",
                                  "bachviolin_john-garner_bwv1002_mov6.mp3"])
def test_danceability_and_dynamic_complexity_equal_essentia(corpus: Path, name: str) -> None:
    """Danceability (DFA) and dynamic complexity, computed block by block, equal
    essentia's Danceability and DynamicComplexity run on the whole signal."""
    acc = FeatureAccumulator()
    mono = []
    with AudioSource(corpus / "dev" / name) as src:
        for block in src.blocks():
            m = downmix(block)
            acc.feed(m)
            mono.append(m)
    y = np.concatenate(mono)
    result = characteristics(acc.finish(), lufs=None)
    assert result.danceability_raw == pytest.approx(float(es.Danceability()(y)[0]), abs=2e-3)
    assert result.dynamic_complexity == pytest.approx(float(es.DynamicComplexity()(y)[0]),
                                                      abs=2e-3)
    assert result.danceability == pytest.approx(min(result.danceability_raw / 3, 1.0),
                                                abs=1e-3)


def test_energy_score_bounds() -> None:
    """Silence scores 1, the loudest, busiest, brightest track 10, and each part
    raises the score."""
    assert energy_score(lufs=None, flux=0.0, centroid=0.0) == 1.0
    assert energy_score(lufs=-3.0, flux=900.0, centroid=6000.0) == 10.0
    base = energy_score(lufs=-20.0, flux=300.0, centroid=1500.0)
    assert energy_score(lufs=-10.0, flux=300.0, centroid=1500.0) > base
    assert energy_score(lufs=-20.0, flux=400.0, centroid=1500.0) > base
    assert energy_score(lufs=-20.0, flux=300.0, centroid=2500.0) > base


def _energy(path: Path) -> float:
    acc = FeatureAccumulator()
    with AudioSource(path) as src:
        meter = LoudnessAccumulator(RATE, src.info.channel_names)
        for block in src.blocks():
            acc.feed(downmix(block))
            meter.feed(block)
    return characteristics(acc.finish(), lufs=loudness(meter.finish()).integrated_lufs).energy


def test_metal_has_more_energy_than_a_chorale(corpus: Path) -> None:
    """A band-produced metal song scores at least 2 points more energy than a rendered
    Bach chorale."""
    metal = _energy(corpus / "dev" / "fof_muldjord_armygeddon.ogg")
    chorale = _energy(corpus / "dev" / "m21_bach_bwv269.ogg")
    assert metal >= chorale + 2.0, (metal, chorale)
