"""Parse the musical-key text of a tag into a pitch class and a mode.

DJ software writes the key tag (ID3 ``TKEY``, Vorbis ``INITIALKEY``/``KEY``,
MP4 ``----:com.apple.iTunes:initialkey``) in one of three notations:

* standard: ``"Am"``, ``"F#m"``, ``"Dbm"``, ``"C#"``, ``"Bb major"``, ``"b minor"``,
  ``"A min"``, ``"Ebmaj"``, with ``#``/``♯`` and ``b``/``♭`` accidentals
  (ID3v2.4 ``TKEY`` uses ``"m"`` for minor);
* Camelot (Mixed In Key): ``"8A"`` .. ``"12A"`` minor, ``"1B"`` .. ``"12B"`` major,
  where ``8B`` is C major and each step adds a fifth;
* Open Key (Traktor): ``"1m"`` .. ``"12m"`` minor, ``"1d"`` .. ``"12d"`` major,
  where ``1d`` is C major and each step adds a fifth.

The result follows the library schema: ``musical_key`` is the pitch class of the
tonic (0-11, C=0, C#/Db=1, ... B=11) and ``mode`` is 1 for major, 0 for minor.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_NOTE = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}

_STANDARD = re.compile(
    r"^\s*([a-g])\s*([#♯]|b(?=\s*(?:$|m|min|minor|maj|major|dur|moll))|♭|-?flat|-?sharp)?"
    r"\s*(m|min|minor|moll|maj|major|dur|M)?\s*$",
    re.IGNORECASE,
)
_WHEEL = re.compile(r"^\s*0?(1[0-2]|[1-9])\s*([abdm])\s*$", re.IGNORECASE)


class Key(NamedTuple):
    """A parsed key.

    Attributes
    ----------
    musical_key : int
        Pitch class of the tonic, 0-11 (C=0).
    mode : int
        1 major, 0 minor.
    """

    musical_key: int
    mode: int


def _standard(text: str) -> Key | None:
    m = _STANDARD.match(text)
    if m is None:
        return None
    note, accidental, quality = m.group(1), m.group(2), m.group(3)
    pitch = _NOTE[note.lower()]
    if accidental:
        acc = accidental.lower()
        if acc in ("#", "♯") or acc.endswith("sharp"):
            pitch += 1
        else:
            pitch -= 1
    minor = quality is not None and quality != "M" and quality.lower() in (
        "m", "min", "minor", "moll")
    return Key(pitch % 12, 0 if minor else 1)


def _wheel(text: str) -> Key | None:
    m = _WHEEL.match(text)
    if m is None:
        return None
    number, letter = int(m.group(1)), m.group(2).lower()
    # Camelot: 8B = C major, 8A = A minor; Open Key: 1d = C major, 1m = A minor
    origin = 8 if letter in ("a", "b") else 1
    major = (7 * (number - origin)) % 12
    if letter in ("b", "d"):
        return Key(major, 1)
    return Key((major + 9) % 12, 0)  # relative minor: a minor third below


def parse_key(text: str | None) -> Key | None:
    """Parse a key tag in standard, Camelot or Open Key notation.

    Parameters
    ----------
    text : str or None
        Raw tag text, e.g. ``"Am"``, ``"F#m"``, ``"Dbm"``, ``"b minor"``, ``"8A"``,
        ``"11B"``, ``"1m"``, ``"6d"``. Combined forms such as ``"8A - Am"`` or
        ``"Am/8A"`` are read from their first part that parses.

    Returns
    -------
    Key or None
        ``(musical_key 0-11 with C=0, mode 1 major / 0 minor)``, or None when the
        text is empty, ``"o"``/off-key, or not a key in any known notation.

    Examples
    --------
    >>> parse_key("F#m")
    Key(musical_key=6, mode=0)
    >>> parse_key("8B")
    Key(musical_key=0, mode=1)
    """
    if not text:
        return None
    text = text.strip()
    if not text:
        return None
    for part in [text, *re.split(r"\s*[/|,;]\s*|\s+-\s+|\s*\(\s*|\s*\)\s*", text)]:
        if not part:
            continue
        key = _wheel(part) or _standard(part)
        if key is not None:
            return key
    return None
