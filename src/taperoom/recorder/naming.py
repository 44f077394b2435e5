"""File names of recordings: a station's ``output_filename_pattern``, checked and filled.

A pattern is text with bare placeholders, in :meth:`str.format` syntax (``{{`` and
``}}`` for literal braces): ``{date}`` (``YYYY-MM-DD``), ``{name}`` (station name),
``{timestamp}`` (``YYYYMMDD_HHMMSS``), ``{artist}`` and ``{album}``. It is checked
when it is saved (:func:`check_pattern`): a format spec, a conversion, an attribute
or an index (``{name:d}``, ``{name!r}``, ``{name:_>50000000}``, ``{name.upper}``) is
refused, since :meth:`str.format` would run them, and it is filled by
:func:`render_filename` without :meth:`str.format`, so a pattern stored before it
was checked is refused there rather than run.

A name is cut to the file system's limit by shortening the station fields (the
longest first), never the extension, the date or the time; the limit is counted in
UTF-8 bytes, with room left for what is added later (`` (2)`` for a second
recording of the same name, `` - tracks`` for the folder of split tracks).
"""

from __future__ import annotations

import math
import re
import string
from datetime import datetime
from pathlib import Path

from taperoom.errors import InvalidInput

#: Placeholders of ``output_filename_pattern`` (all of them work, unlike the original's).
PATTERN_FIELDS = frozenset({"date", "name", "timestamp", "artist", "album"})
#: Placeholders whose values come from the station and are cut when a name is too long.
STATION_FIELDS = ("name", "artist", "album")
#: Pattern of a station that does not give one (contracts/recorder.md).
DEFAULT_PATTERN = "{date}_{name}.mp3"
#: Extension of every recording.
EXTENSION = ".mp3"
#: Longest file name, in bytes: ``NAME_MAX`` of ext4, XFS, btrfs and ZFS (Linux
#: ``<limits.h>``), and 255 UTF-8 bytes on APFS.
NAME_MAX_BYTES = 255
#: Bytes kept free in a recording's name for `` (9999)`` (:func:`unique_path`) and
#: `` - tracks`` (the folder of its split tracks).
RESERVED_BYTES = len(" (9999)") + len(" - tracks")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _allowed() -> str:
    return ", ".join("{" + n + "}" for n in sorted(PATTERN_FIELDS))


def parse_pattern(pattern: str) -> list[tuple[str, str | None]]:
    """Split a pattern into ``(literal text, placeholder or None)`` pieces.

    Parameters
    ----------
    pattern : str
        The pattern, in :meth:`str.format` syntax.

    Returns
    -------
    list of (str, str or None)
        Each literal text (braces undoubled) and the placeholder that follows it.

    Raises
    ------
    ValueError
        Unbalanced braces, an unknown or empty placeholder, or a placeholder with a
        format spec, a conversion, an attribute or an index; the message says which.
    """
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise ValueError(f"malformed pattern: {exc}") from exc
    pieces: list[tuple[str, str | None]] = []
    unknown: list[str] = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            pieces.append((literal, None))
            continue
        if field not in PATTERN_FIELDS:
            unknown.append(field)
            continue
        if spec or conversion is not None:
            written = "{" + field + (f"!{conversion}" if conversion is not None else "") \
                + (f":{spec}" if spec else "") + "}"
            raise ValueError(f"{written}: placeholders take no format spec or conversion; "
                             f"write {{{field}}}")
        pieces.append((literal, field))
    if unknown:
        raise ValueError("unknown placeholder(s) "
                         f"{', '.join('{' + n + '}' for n in sorted(set(unknown)))}; "
                         f"allowed: {_allowed()}")
    return pieces


def check_pattern(value: str) -> str:
    """Validate an output file-name pattern, as it is saved.

    It may use only the bare placeholders of :data:`PATTERN_FIELDS`, must use at
    least one of them, and may not contain a path separator or a control character
    (files stay in ``RECORDINGS_DIR``). ``.mp3`` is appended when the pattern has no
    extension.

    Parameters
    ----------
    value : str
        The pattern sent by a client.

    Returns
    -------
    str
        The pattern, stripped, ending in ``.mp3``.

    Raises
    ------
    ValueError
        With a message naming what is wrong (see :func:`parse_pattern`).
    """
    value = value.strip()
    pieces = parse_pattern(value)
    if not any(field for _, field in pieces):
        raise ValueError(f"pattern must use at least one of {_allowed()}")
    if "/" in value or "\\" in value:
        raise ValueError("pattern may not contain a path separator")
    if _CONTROL.search(value):
        raise ValueError("pattern may not contain control characters")
    if not value.lower().endswith(EXTENSION):
        value += EXTENSION
    return value


def cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` whose UTF-8 encoding fits in `max_bytes` bytes
    (never half a character)."""
    return text.encode("utf-8")[:max(0, max_bytes)].decode("utf-8", "ignore")


def _clean(value: str) -> str:
    return _UNSAFE.sub("_", value).strip() or "_"


def fit_name(stem: str, suffix: str = EXTENSION, *, max_bytes: int = NAME_MAX_BYTES) -> str:
    """A bare file name ``<stem><suffix>`` of at most `max_bytes` UTF-8 bytes.

    Path separators and control characters in `stem` become ``_``; the stem is cut
    (on a character boundary), never the suffix.
    """
    stem = _clean(stem).lstrip(".") or "_"
    return cut_utf8(stem, max_bytes - len(suffix.encode("utf-8"))).rstrip() + suffix


def render_filename(pattern: str, *, station: str, artist: str, album: str,
                    started_local: datetime) -> str:
    """The file name of a recording from a station's ``output_filename_pattern``.

    Parameters
    ----------
    pattern : str
        Pattern with ``{date}`` (``YYYY-MM-DD``), ``{name}`` (station name),
        ``{timestamp}`` (``YYYYMMDD_HHMMSS``), ``{artist}`` and ``{album}``, as
        :func:`check_pattern` accepts it.
    station, artist, album : str
        Values of the placeholders; path separators and control characters in
        them become ``_``, so the name never leaves ``RECORDINGS_DIR``.
    started_local : datetime
        Start of the recording in the configured zone.

    Returns
    -------
    str
        A bare file name ending in ``.mp3``, of at most :data:`NAME_MAX_BYTES` minus
        :data:`RESERVED_BYTES` bytes in UTF-8: when it would be longer, the station
        fields are cut, the longest first.

    Raises
    ------
    InvalidInput
        The pattern is not one :func:`check_pattern` accepts (stored before it was
        checked); nothing of it is run.
    """
    try:
        pieces = parse_pattern(pattern.strip())
    except ValueError as exc:
        raise InvalidInput(f"invalid file-name pattern {pattern[:200]!r}: {exc}") from exc
    values = {"date": started_local.strftime("%Y-%m-%d"),
              "timestamp": started_local.strftime("%Y%m%d_%H%M%S"),
              "name": _clean(station), "artist": _clean(artist), "album": _clean(album)}
    uses = {f: sum(1 for _, g in pieces if g == f) for f in STATION_FIELDS}
    limit = NAME_MAX_BYTES - RESERVED_BYTES - len(EXTENSION)

    def stem() -> str:
        text = _clean("".join(lit + (values[f] if f else "") for lit, f in pieces))
        text = text.lstrip(".")
        if text.lower().endswith(EXTENSION):
            text = text[:-len(EXTENSION)]
        return text or "recording"

    name = stem()
    while (over := len(name.encode("utf-8")) - limit) > 0:
        sizes = {f: len(values[f].encode("utf-8")) for f in STATION_FIELDS
                 if uses[f] and len(values[f]) > 1}
        if not sizes:  # only the fixed text is left to cut
            name = cut_utf8(name, limit)
            break
        longest = max(sizes, key=lambda f: sizes[f])
        runner_up = max((b for f, b in sizes.items() if f != longest), default=0)
        target = max(sizes[longest] - math.ceil(over / uses[longest]), runner_up)
        values[longest] = cut_utf8(values[longest], min(target, sizes[longest] - 1))
        if not values[longest]:
            values[longest] = "_"
        name = stem()
    return name.rstrip() + EXTENSION


def unique_path(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/<stem> (2).mp3`` and so on when it exists."""
    path = folder / name
    stem, suffix = path.stem, path.suffix
    n = 2
    while path.exists():
        path = folder / f"{stem} ({n}){suffix}"
        n += 1
    return path
