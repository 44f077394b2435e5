"""The percussive share of real music and of plain signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taperoom.analysis.decode import AudioSource, downmix
from taperoom.analysis.onsets import OnsetFramer
from taperoom.analysis.percussion import PercussionMeter

RATE = 44100


def share_of(y: np.ndarray) -> float | None:
    framer = OnsetFramer(RATE)
    for i in range(0, y.size, 65536):
        framer.push(y[i:i + 65536])
    framer.flush()
    return framer.percussive_share


def share_of_file(path: Path) -> float | None:
    framer = OnsetFramer(RATE)
    with AudioSource(path) as src:
        for block in src.blocks():
            framer.push(downmix(block))
    framer.flush()
    return framer.percussive_share


@pytest.mark.parametrize("track", ["hydrogen_TR808kit-demo.ogg",
                                   "fof_muldjord_internal_degeneration.ogg"])
def test_drum_machines_and_bands_are_percussive(corpus: Path, track: str) -> None:
    share = share_of_file(corpus / "dev" / track)
    assert share is not None and share >= 0.3


@pytest.mark.parametrize("track", ["m21_bach_bwv269.ogg",
                                   "bachviolin_john-garner_bwv1002_mov7.mp3"])
def test_a_chorale_and_a_solo_violin_are_not(corpus: Path, track: str) -> None:
    share = share_of_file(corpus / "dev" / track)
    assert share is not None and share <= 0.1


def test_clicks_are_percussive_and_a_held_chord_is_not() -> None:
    t = np.arange(RATE * 12) / RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    clicks = np.zeros_like(t)
    rng = np.random.default_rng(3)
    for start in range(0, t.size - 2000, RATE // 4):
        clicks[start:start + 400] = rng.standard_normal(400) * np.exp(-np.arange(400) / 80)
    held = share_of(chord.astype(np.float32))
    struck = share_of(clicks.astype(np.float32))
    assert held is not None and struck is not None
    assert held < 0.05 < 0.5 < struck


def test_silence_has_no_share() -> None:
    assert share_of(np.zeros(RATE * 10, dtype=np.float32)) is None
    assert PercussionMeter(RATE, 1024).share is None
