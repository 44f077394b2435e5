"""Names of musical keys: standard, Camelot and Open Key.

Keys are ``(key, mode)`` pairs as in the library schema: ``key`` is the pitch
class of the tonic (0-11, C=0) and ``mode`` 1 for major, 0 for minor.
:func:`taperoom.library.keys.parse_key` reads every name written here back.

* Camelot (Mixed In Key): 1-12 around the circle of fifths, ``B`` major and
  ``A`` minor, with ``8B`` = C major and ``8A`` = A minor.
* Open Key (Traktor): 1-12, ``d`` major and ``m`` minor, with ``1d`` = C major
  and ``1m`` = A minor.
"""

from __future__ import annotations

__all__ = ["PITCH_NAMES", "camelot", "key_name", "mode_name", "open_key"]

#: Name of each pitch class, C=0 (sharps for C#/F#, flats for Eb/Ab/Bb, as DJ
#: software and essentia print them).
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def _check(key: int, mode: int) -> None:
    if not 0 <= key <= 11 or mode not in (0, 1):
        raise ValueError(f"no such key: key={key!r}, mode={mode!r}")


def key_name(key: int) -> str:
    """Name of the tonic: ``key_name(6) == "F#"``.

    Raises
    ------
    ValueError
        `key` is not 0-11.
    """
    _check(key, 1)
    return PITCH_NAMES[key]


def mode_name(mode: int) -> str:
    """``"major"`` for 1, ``"minor"`` for 0."""
    _check(0, mode)
    return "major" if mode == 1 else "minor"


def _wheel(key: int, mode: int) -> int:
    """Position 0-11 on the circle of fifths, C major / A minor = 0."""
    _check(key, mode)
    major = key if mode == 1 else (key + 3) % 12  # the relative major of a minor key
    return (major * 7) % 12  # semitones to fifths: 7 is its own inverse mod 12


def camelot(key: int, mode: int) -> str:
    """Camelot name: ``camelot(0, 1) == "8B"``, ``camelot(9, 0) == "8A"``.

    Raises
    ------
    ValueError
        Not a key.
    """
    return f"{(_wheel(key, mode) + 7) % 12 + 1}{'B' if mode == 1 else 'A'}"


def open_key(key: int, mode: int) -> str:
    """Open Key name: ``open_key(0, 1) == "1d"``, ``open_key(9, 0) == "1m"``.

    Raises
    ------
    ValueError
        Not a key.
    """
    return f"{_wheel(key, mode) + 1}{'d' if mode == 1 else 'm'}"
