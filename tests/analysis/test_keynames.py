"""Key names: standard, Camelot and Open Key, read back by the tag parser."""

from __future__ import annotations

import pytest

from taperoom.analysis.keynames import camelot, key_name, mode_name, open_key
from taperoom.library.keys import Key, parse_key


@pytest.mark.parametrize(("key", "mode", "cam", "ok"), [
    (0, 1, "8B", "1d"), (9, 0, "8A", "1m"), (7, 1, "9B", "2d"), (4, 0, "9A", "2m"),
    (5, 1, "7B", "12d"), (2, 0, "7A", "12m"), (11, 0, "10A", "3m"), (6, 1, "2B", "7d"),
    (8, 0, "1A", "6m"), (11, 1, "1B", "6d"),
])
def test_wheel_names(key: int, mode: int, cam: str, ok: str) -> None:
    """Camelot and Open Key names follow the published wheels."""
    assert camelot(key, mode) == cam
    assert open_key(key, mode) == ok


@pytest.mark.parametrize("key", range(12))
@pytest.mark.parametrize("mode", [0, 1])
def test_every_name_parses_back(key: int, mode: int) -> None:
    """Every key's standard, Camelot and Open Key names parse back to the same key."""
    standard = key_name(key) + ("m" if mode == 0 else "")
    for text in (standard, camelot(key, mode), open_key(key, mode)):
        assert parse_key(text) == Key(key, mode), text
    assert mode_name(mode) == ("major" if mode else "minor")


def test_bad_keys_are_refused() -> None:
    """Pitch classes outside 0-11 and modes other than 0/1 raise ValueError."""
    for bad in ((12, 1), (-1, 0), (3, 2)):
        with pytest.raises(ValueError):
            camelot(*bad)
