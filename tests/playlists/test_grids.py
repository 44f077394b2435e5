"""Beatgrids between beat lists and rekordbox TEMPO anchors."""

from __future__ import annotations

import random

from taperoom.playlists.exchange import Tempo
from taperoom.playlists.grids import beats_from_tempos, tempos_from_beats


def test_steady_grid_is_one_anchor_with_its_bar_position() -> None:
    beats = [0.5 + i * 60 / 128 for i in range(600)]
    rng = random.Random(7)
    jittered = [t + rng.uniform(-0.004, 0.004) for t in beats]
    assert tempos_from_beats(beats, downbeats=beats[2::4]) == [Tempo(0.5, 128.0, "4/4", 3)]
    (anchor,) = tempos_from_beats(jittered)
    assert abs(anchor.start - 0.5) < 0.004 and anchor.bpm == 128.0


def test_tempo_change_starts_an_anchor_and_round_trips() -> None:
    beats = [0.5 + i * 0.5 for i in range(100)]
    beats += [beats[-1] + (i + 1) * 60 / 125 for i in range(100)]
    tempos = tempos_from_beats(beats, bar=3)
    assert tempos == [Tempo(0.5, 120.0, "3/4", 1), Tempo(50.0, 125.0, "3/4", 1)]
    back, downbeats = beats_from_tempos(tempos, beats[-1] + 0.1)
    assert len(back) == len(beats)
    assert max(abs(a - b) for a, b in zip(back, beats, strict=True)) < 0.002
    assert downbeats[:3] == [0.5, 2.0, 3.5]


def test_without_beats() -> None:
    assert tempos_from_beats([], bpm=128, first_beat=0.2) == [Tempo(0.2, 128, "4/4", 1)]
    assert tempos_from_beats([], bpm=None, first_beat=0.2) == []
    assert beats_from_tempos([Tempo(1.0, 120.0)], None) == ([1.0], [1.0])
    assert beats_from_tempos([Tempo(1.0, 120.0, "4/4", 2)], 3.0) == (
        [1.0, 1.5, 2.0, 2.5], [2.5])
