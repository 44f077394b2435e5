"""The Camelot wheel's compatible keys and tempo compatibility (taperoom.playlists.harmony)."""

from __future__ import annotations

import pytest

from taperoom.analysis.keynames import camelot
from taperoom.playlists.harmony import (
    bpm_match,
    bpm_windows,
    compatible_keys,
    key_move,
    parse_key_text,
    wheel,
)


def _names(key: int, mode: int) -> dict[str, str]:
    return {m.move: camelot(m.musical_key, m.mode) for m in compatible_keys(key, mode)}


def test_compatible_keys_of_a_minor_follow_the_camelot_wheel() -> None:
    """8A (A minor) mixes into 8A, 9A, 7A, 8B, 10A and 3A, in that order of moves."""
    assert _names(9, 0) == {"same": "8A", "+1": "9A", "-1": "7A", "relative": "8B",
                            "+2": "10A", "+7": "3A"}


def test_the_wheel_wraps_around_twelve() -> None:
    """12B +1 is 1B and 1A -1 is 12A; 12B +7 is 7B."""
    e_major = parse_key_text("12B")
    assert _names(*e_major)["+1"] == "1B"
    assert _names(*e_major)["+7"] == "7B"
    assert _names(*parse_key_text("1A"))["-1"] == "12A"


def test_energy_moves_are_a_whole_tone_and_a_semitone_up() -> None:
    """+2 raises the tonic by two semitones, +7 by one (Mixed In Key's energy boosts)."""
    for key in range(12):
        for mode in (0, 1):
            moves = {m.move: m for m in compatible_keys(key, mode)}
            assert (moves["+2"].musical_key, moves["+2"].mode) == ((key + 2) % 12, mode)
            assert (moves["+7"].musical_key, moves["+7"].mode) == ((key + 1) % 12, mode)


def test_relative_key_shares_the_number_and_flips_the_letter() -> None:
    """C major (8B) and A minor (8A) are relatives; the label names the target's mode."""
    move = key_move((0, 1), (9, 0))
    assert move is not None and move.move == "relative" and move.label == "relative minor"
    assert key_move((9, 0), (0, 1)).label == "relative major"  # type: ignore[union-attr]


def test_key_move_describes_the_step_as_a_reason() -> None:
    """The reason reads "8A → 9A: +1 on the Camelot wheel"."""
    move = key_move(tuple(parse_key_text("8A")), tuple(parse_key_text("Em")))  # type: ignore[arg-type]
    assert move is not None
    assert move.describe((9, 0)) == "8A → 9A: +1 on the Camelot wheel"


def test_incompatible_keys_have_no_move() -> None:
    """A minor to F# major (8A → 2B) is no compatible move."""
    assert key_move((9, 0), (6, 1)) is None


def test_wheel_and_parse_reuse_the_library_notations() -> None:
    """Camelot, Open Key and standard names parse to the same key; bad text is refused."""
    assert wheel(*parse_key_text("1d")) == (8, "B")
    assert parse_key_text("F#m") == parse_key_text("11A")
    with pytest.raises(ValueError):
        parse_key_text("H#")
    with pytest.raises(ValueError):
        wheel(12, 0)


def test_bpm_match_within_percent_describes_the_step() -> None:
    """126 → 128 is +1.6 % and matches within 6 %, not within 1 %."""
    match = bpm_match(126, 128, 6)
    assert match is not None and match.factor == 1.0
    assert match.describe(126, 128) == "126 → 128 BPM (+1.6 %)"
    assert bpm_match(126, 128, 1) is None


def test_bpm_match_takes_half_and_double_time() -> None:
    """A 64 BPM track mixes with a 126 BPM one in half time, 252 in double time."""
    half = bpm_match(126, 64, 3)
    assert half is not None and half.factor == 0.5
    assert half.describe(126, 64) == "126 → 64 BPM (half time, +1.6 %)"
    double = bpm_match(126, 250, 3)
    assert double is not None and double.factor == 2.0
    assert bpm_match(126, 64, 3, half_double=False) is None


def test_bpm_windows_are_inclusive_ranges_per_factor() -> None:
    """The windows of 100 BPM ± 5 % are 95-105, 47.5-52.5 and 190-210."""
    windows = bpm_windows(100, 5)
    assert [tuple(round(x, 6) for x in w) for w in windows] == [
        (95.0, 105.0), (47.5, 52.5), (190.0, 210.0)]
    assert len(bpm_windows(100, 5, half_double=False)) == 1
    with pytest.raises(ValueError):
        bpm_windows(0, 5)
