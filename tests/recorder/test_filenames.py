"""Output file names: every placeholder works and names stay in RECORDINGS_DIR."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from taperoom.recorder.schemas import StationCreate, check_pattern
from taperoom.recorder.service import render_filename, unique_path

START = datetime(2025, 10, 3, 23, 23, 0, tzinfo=ZoneInfo("America/Denver"))


def test_every_placeholder_is_filled() -> None:
    """{date}, {name}, {timestamp}, {artist} and {album} all work (the original
    raised KeyError for {artist} and {album})."""
    name = render_filename("{date}_{name}_{timestamp}_{artist}_{album}.mp3", station="KUVO Jazz",
                           artist="KUVO", album="Live", started_local=START)
    assert name == "2025-10-03_KUVO Jazz_20251003_232300_KUVO_Live.mp3"


def test_separators_in_values_cannot_leave_the_folder() -> None:
    """Slashes and control characters in station fields become underscores."""
    name = render_filename("{name}/{artist}.mp3".replace("/", "-"), station="../../etc",
                           artist="a/b\\c\x00", album="x", started_local=START)
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")


def test_unique_path_adds_a_counter(tmp_path: Path) -> None:
    """An existing file is never overwritten: ' (2)', ' (3)' are appended."""
    (tmp_path / "a.mp3").write_bytes(b"x")
    (tmp_path / "a (2).mp3").write_bytes(b"x")
    assert unique_path(tmp_path, "a.mp3").name == "a (3).mp3"


@pytest.mark.parametrize("pattern", ["{date}/{name}.mp3", "{nope}.mp3", "plain.mp3", "{}.mp3",
                                     "{date", "..\\{name}.mp3"])
def test_bad_patterns_are_refused(pattern: str) -> None:
    """Unknown placeholders, none at all, or path separators are validation errors."""
    with pytest.raises(ValueError):
        check_pattern(pattern)
    with pytest.raises(ValidationError):
        StationCreate(name="a", stream_url="http://x/s", artist="a", album="b",
                      album_artist="c", output_filename_pattern=pattern)


def test_extension_is_added() -> None:
    """A pattern without .mp3 gets it."""
    assert check_pattern("{date} {name}") == "{date} {name}.mp3"
