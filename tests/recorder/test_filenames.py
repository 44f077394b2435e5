"""Output file names: every placeholder works and names stay in RECORDINGS_DIR."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from taperoom.errors import InvalidInput
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


@pytest.mark.parametrize("pattern", ["{name:d}.mp3", "{name!r}.mp3", "{name:_>50000000}.mp3",
                                     "{date:%Y}_{name}.mp3", "{name:{date}}.mp3",
                                     "{name!s:>10}.mp3", "{name.upper}.mp3", "{name[0]}.mp3"])
def test_format_specs_conversions_and_lookups_are_refused(pattern: str) -> None:
    """Only bare placeholders: a format spec, a conversion, an attribute or an index is
    refused when the pattern is saved (the original accepted ``{name:d}`` and failed after
    the capture, and built a 50 MB string for ``{name:_>50000000}``)."""
    with pytest.raises(ValueError, match=r"\{date\}|format|conversion|placeholder"):
        check_pattern(pattern)
    with pytest.raises(ValidationError, match="output_filename_pattern"):
        StationCreate(name="a", stream_url="http://x/s", artist="a", album="b",
                      album_artist="c", output_filename_pattern=pattern)


def test_a_stored_pattern_with_a_format_spec_is_never_applied() -> None:
    """A pattern stored before it was validated (``{name:_>50000000}``) is refused at
    rendering time with InvalidInput, without building the padded string."""
    with pytest.raises(InvalidInput, match="format"):
        render_filename("{name:_>50000000}.mp3", station="KUVO", artist="a", album="b",
                        started_local=START)


@pytest.mark.parametrize("station", ["☆" * 100, "ü" * 100, "x" * 100],
                         ids=["symbols", "umlauts", "ascii"])
def test_long_fields_are_cut_never_the_extension(tmp_path: Path, station: str) -> None:
    """Long station, artist and album names give a name that still ends in ``.mp3``, keeps
    the date and time, and fits the file system's 255-byte limit in UTF-8, with room for
    the ``(2)`` of a second recording and the `` - tracks`` folder of split tracks."""
    name = render_filename("{date}_{name}_{artist}_{album}_{timestamp}.mp3", station=station,
                           artist="日本語" * 33, album="é" * 100, started_local=START)
    assert name.endswith(".mp3")
    assert len(name.encode("utf-8")) <= 255
    assert name.startswith("2025-10-03_" + station[0]) and "_20251003_232300.mp3" in name
    first = unique_path(tmp_path, name)
    first.write_bytes(b"x")  # the file system takes it
    second = unique_path(tmp_path, name)
    assert second.name.endswith(" (2).mp3")
    second.write_bytes(b"x")
    (tmp_path / f"{second.stem} - tracks").mkdir()
    assert second.with_suffix(".cue").name.endswith(".cue")
    second.with_suffix(".cue").write_text("x")


def test_fields_are_shared_fairly_when_cut() -> None:
    """Cutting starts with the longest field: a short field survives whole."""
    name = render_filename("{name} - {artist}.mp3", station="KUVO", artist="A" * 100,
                           started_local=START, album="x")
    assert name.startswith("KUVO - AAAA") and name.endswith(".mp3")
    long = render_filename("{name} - {artist} - {album}.mp3", station="☆" * 100,
                           artist="★" * 100, album="✦" * 100, started_local=START)
    assert len(long.encode()) <= 255
    assert long.count("☆") >= 20 and long.count("★") >= 20 and long.count("✦") >= 20
