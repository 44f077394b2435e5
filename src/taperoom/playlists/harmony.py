"""Harmonic mixing: the Camelot wheel's compatible keys and tempo compatibility.

Keys are ``(musical_key, mode)`` pairs as in the library schema: the pitch class
of the tonic (0-11, C=0) and 1 for major, 0 for minor. Their wheel names come
from :mod:`taperoom.analysis.keynames`; key text (``"8A"``, ``"F#m"``, ``"1d"``)
is read by :func:`taperoom.library.keys.parse_key`.

The moves follow the Camelot convention of Mark Davis's Camelot wheel as
popularised by Mixed In Key ("Harmonic Mixing Guide", mixedinkey.com/harmonic-mixing-guide):
the wheel numbers 1-12 go round the circle of fifths, ``A`` is minor and ``B``
major, and a track mixes well into

* the same key (``8A → 8A``);
* one step round the wheel, a fifth up or down (``8A → 9A``, ``8A → 7A``);
* its relative major or minor, the same number with the other letter
  (``8A → 8B``), which shares every note;
* the "energy boost" moves: two steps up (``8A → 10A``, a whole tone up) and seven
  steps up (``8A → 3A``, a semitone up), which lift a set at the cost of a few
  clashing notes.

Tempos mix when they lie within a few per cent of each other, or of half or
double the other (a 70 BPM track beat-matches a 140 BPM one in double time).
"""

from __future__ import annotations

from dataclasses import dataclass

from taperoom.analysis.keynames import camelot
from taperoom.library.keys import Key, parse_key

__all__ = [
    "MOVES",
    "BpmMatch",
    "KeyMove",
    "bpm_match",
    "bpm_windows",
    "compatible_keys",
    "key_move",
    "parse_key_text",
    "wheel",
]


@dataclass(frozen=True)
class _Move:
    """A move on the wheel: `steps` clockwise and whether the letter flips."""

    name: str
    steps: int
    flip: bool
    rank: int
    label: str


#: The compatible moves, best first: ``name -> (steps, letter flip, rank, label)``.
#: ``rank`` orders suggestions (0 best).
MOVES: dict[str, _Move] = {m.name: m for m in (
    _Move("same", 0, False, 0, "same key"),
    _Move("+1", 1, False, 1, "+1 on the Camelot wheel"),
    _Move("-1", -1, False, 1, "-1 on the Camelot wheel"),
    _Move("relative", 0, True, 1, "relative {other}"),
    _Move("+2", 2, False, 2, "+2 energy boost (a whole tone up)"),
    _Move("+7", 7, False, 2, "+7 energy boost (a semitone up)"),
)}


@dataclass(frozen=True)
class KeyMove:
    """A compatible key reached from another one by a move of :data:`MOVES`.

    Attributes
    ----------
    musical_key : int
        Pitch class of the target's tonic, 0-11.
    mode : int
        1 major, 0 minor.
    move : str
        Name of the move: ``same``, ``+1``, ``-1``, ``relative``, ``+2``, ``+7``.
    rank : int
        0 for the same key, 1 for a neighbour or the relative key, 2 for an
        energy boost.
    label : str
        E.g. ``"+1 on the Camelot wheel"``, ``"relative major"``.
    """

    musical_key: int
    mode: int
    move: str
    rank: int
    label: str

    def describe(self, origin: tuple[int, int]) -> str:
        """The move as a reason: ``"8A → 9A: +1 on the Camelot wheel"``.

        Parameters
        ----------
        origin : (int, int)
            ``(musical_key, mode)`` the move starts from.
        """
        return (f"{camelot(*origin)} → {camelot(self.musical_key, self.mode)}: "
                f"{self.label}")


def wheel(musical_key: int, mode: int) -> tuple[int, str]:
    """Camelot number (1-12) and letter (``A`` minor, ``B`` major) of a key.

    Examples
    --------
    >>> wheel(9, 0)
    (8, 'A')

    Raises
    ------
    ValueError
        `musical_key` is not 0-11 or `mode` not 0/1.
    """
    name = camelot(musical_key, mode)
    return int(name[:-1]), name[-1]


def _from_wheel(number: int, letter: str) -> Key:
    key = parse_key(f"{(number - 1) % 12 + 1}{letter}")
    assert key is not None  # every wheel name parses
    return key


def compatible_keys(musical_key: int, mode: int) -> list[KeyMove]:
    """Every key that mixes harmonically after `musical_key`/`mode`, best first.

    Parameters
    ----------
    musical_key : int
        Pitch class of the tonic, 0-11 (C=0).
    mode : int
        1 major, 0 minor.

    Returns
    -------
    list of KeyMove
        Six keys, one per move of :data:`MOVES` in its order: the same key, +1,
        -1, the relative major/minor, +2 and +7 (Mixed In Key's energy boosts).

    Raises
    ------
    ValueError
        Not a key.
    """
    number, letter = wheel(musical_key, mode)
    out = []
    for move in MOVES.values():
        target_letter = ({"A": "B", "B": "A"}[letter] if move.flip else letter)
        target = _from_wheel(number + move.steps, target_letter)
        label = move.label.format(other="major" if target.mode == 1 else "minor")
        out.append(KeyMove(target.musical_key, target.mode, move.name, move.rank, label))
    return out


def key_move(origin: tuple[int, int], target: tuple[int, int]) -> KeyMove | None:
    """The move from `origin` to `target` if they are compatible, else None.

    Parameters
    ----------
    origin, target : (int, int)
        ``(musical_key 0-11, mode 0/1)``.

    Returns
    -------
    KeyMove or None
        The best-ranked move that reaches `target` (see :func:`compatible_keys`).

    Raises
    ------
    ValueError
        Either is not a key.
    """
    wheel(*target)  # checks it
    for move in compatible_keys(*origin):
        if (move.musical_key, move.mode) == tuple(target):
            return move
    return None


def parse_key_text(text: str) -> Key:
    """A key from its name in standard, Camelot or Open Key notation.

    Parameters
    ----------
    text : str
        ``"8A"``, ``"F#m"``, ``"Bb major"``, ``"1d"`` ... (see
        :func:`taperoom.library.keys.parse_key`).

    Raises
    ------
    ValueError
        `text` names no key.
    """
    key = parse_key(text)
    if key is None:
        raise ValueError(f"not a musical key: {text!r}")
    return key


@dataclass(frozen=True)
class BpmMatch:
    """How a tempo matches a reference tempo.

    Attributes
    ----------
    factor : float
        1.0 (same tempo), 2.0 (the other is in double time) or 0.5 (half time).
    delta_percent : float
        Per cent the other tempo lies above (positive) or below the reference
        times `factor`.
    """

    factor: float
    delta_percent: float

    def describe(self, reference: float, other: float) -> str:
        """``"126 → 128 BPM (+1.6 %)"``, ``"126 → 64 BPM (half time, +1.6 %)"``."""
        time = {2.0: "double time, ", 0.5: "half time, "}.get(self.factor, "")
        return (f"{_bpm_text(reference)} → {_bpm_text(other)} BPM "
                f"({time}{self.delta_percent:+.1f} %)")


def _bpm_text(bpm: float) -> str:
    return f"{bpm:.0f}" if abs(bpm - round(bpm)) < 0.05 else f"{bpm:.1f}"


#: Tempo factors tried by :func:`bpm_match`, the plain tempo first.
FACTORS = (1.0, 0.5, 2.0)


def bpm_windows(bpm: float, percent: float, *, half_double: bool = True
                ) -> list[tuple[float, float]]:
    """Inclusive tempo ranges that mix with `bpm` within `percent` per cent.

    Parameters
    ----------
    bpm : float
        Reference tempo, beats per minute (> 0).
    percent : float
        Largest difference, per cent of the (halved or doubled) reference (>= 0).
    half_double : bool
        Also the ranges around half and double `bpm`.

    Returns
    -------
    list of (float, float)
        ``[(bpm * f * (1 - p), bpm * f * (1 + p)) for f in factors]`` with
        ``p = percent / 100`` and factors 1 (and 0.5, 2).

    Raises
    ------
    ValueError
        `bpm` is not positive or `percent` is negative.
    """
    if not bpm > 0 or not percent >= 0:
        raise ValueError("bpm must be positive and percent not negative")
    p = percent / 100.0
    factors = FACTORS if half_double else (1.0,)
    return [(bpm * f * (1 - p), bpm * f * (1 + p)) for f in factors]


def bpm_match(reference: float, other: float, percent: float, *, half_double: bool = True
              ) -> BpmMatch | None:
    """Whether `other` mixes with `reference` within `percent` per cent.

    Parameters
    ----------
    reference, other : float
        Tempos, beats per minute.
    percent : float
        Largest difference, per cent of the reference (or of its half or double).
    half_double : bool
        Also accept `other` near half or double `reference`.

    Returns
    -------
    BpmMatch or None
        The factor whose difference is smallest (the plain tempo on a tie), or
        None when no factor is within `percent` or a tempo is not positive.
    """
    if not reference > 0 or not other > 0:
        return None
    best: BpmMatch | None = None
    for factor in FACTORS if half_double else (1.0,):
        target = reference * factor
        delta = (other - target) / target * 100.0
        if abs(delta) <= percent + 1e-9 and (best is None
                                             or abs(delta) < abs(best.delta_percent)):
            best = BpmMatch(factor, delta)
    return best
