"""Keys naming a track's own files: reversible, ASCII, distinct even ignoring case."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from taperoom.ephemeral.names import MAX_KEY, filename_of_key, track_key

#: File names as os.listdir gives them: any character but "/" and NUL, undecodable bytes
#: as surrogate escapes (PEP 383).
_NAMES = st.binary(min_size=1, max_size=255).filter(
    lambda b: b"/" not in b and b"\x00" not in b).map(lambda b: os.fsdecode(b))


@settings(max_examples=500)
@given(name=st.one_of(_NAMES, st.text(min_size=1, max_size=80)
                      .filter(lambda t: "/" not in t and "\x00" not in t)))
def test_key_is_ascii_safe_and_reversible(name: str) -> None:
    """A key is ASCII with no path separator, reserved or control character, never hidden,
    at most MAX_KEY long, and gives back the exact name unless it had to be cut."""
    key = track_key(name)
    assert key.isascii()
    assert len(key) <= MAX_KEY
    assert not key.startswith(".")
    assert not set(key) & set('/\\:*?"<>|')
    assert all(32 <= ord(c) < 127 for c in key)
    back = filename_of_key(key)
    if back is None:
        assert key[-33] == "~"
    else:
        assert back == name


@settings(max_examples=500)
@given(name=_NAMES, data=st.data())
def test_keys_differ_ignoring_case(name: str, data: st.DataObject) -> None:
    """Two distinct names (here: one and a case variant of it) never give keys that are
    equal when case-folded, so they stay distinct files on case-insensitive file systems."""
    other = data.draw(st.sampled_from([name.upper(), name.lower(), name.swapcase(),
                                       name.casefold(), name + "x"]))
    if other != name:
        assert track_key(name).casefold() != track_key(other).casefold()


def test_examples() -> None:
    """Lower-case names stay readable; upper case, %, ~ and non-ASCII are escaped."""
    assert track_key("a.wav") == "a.wav"
    assert track_key("My Track.wav") == "%4Dy %54rack.wav"
    assert track_key("x.WAV") == "x.%57%41%56"
    assert track_key("100% ~mix: one.wav") == "100%25 %7Emix%3A one.wav"
    assert track_key("é.wav") == "%C3%A9.wav"
    long = "Ü" * 125 + ".wav"
    key = track_key(long)
    assert len(key) <= MAX_KEY
    assert filename_of_key(key) is None
    assert key != track_key("Ü" * 124 + ".wav")
