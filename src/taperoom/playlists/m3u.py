"""M3U and M3U8 playlists: a general reader and writer.

An M3U file lists one media location per line; ``#`` starts a comment. The extended
form opens with ``#EXTM3U`` and puts ``#EXTINF:<seconds>,<artist> - <title>`` before
each location. ``.m3u8`` is the same format in UTF-8; a plain ``.m3u`` is in the
writer's legacy code page (Windows-1252 / Latin-1 for Winamp and its successors).

Sources: the Winamp extended M3U conventions as collected in *M3U* on Wikipedia
(https://en.wikipedia.org/wiki/M3U: ``#EXTM3U``, ``#EXTINF``, ``#PLAYLIST``,
``#EXTART``, ``.m3u8`` as UTF-8) and RFC 8216 section 4.3.2.1 (HTTP Live Streaming,
the ``#EXTINF:<duration>,[<title>]`` grammar with a decimal duration). Locations are
absolute or relative paths (relative to the playlist's folder), Windows paths with
``\\`` separators, or ``file:`` URLs (RFC 8089).

The contract's own export body (``GET /api/playlists/{id}/export?format=m3u``) is
written by the playlist service; this module is the general format.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from taperoom.errors import Unprocessable
from taperoom.playlists.exchange import (
    is_absolute,
    join_path,
    normalise_path,
    relative_path,
    url_scheme,
    url_to_path,
)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_DURATION = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)(?=\s|$)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class M3UEntry:
    """One location of a playlist as read.

    Attributes
    ----------
    path : str
        Normalised path (``/`` separators): absolute when the line was absolute, a
        ``file:`` URL, or relative and resolved against the playlist's folder;
        relative when no folder was given.
    location : str
        The line as written.
    line : int
        1-based line number of the location.
    duration : float or None
        Seconds from ``#EXTINF`` (None when absent or negative: ``-1`` means unknown).
    artist : str or None
        Artist from ``#EXTINF`` (the text before the first `` - ``) or ``#EXTART``.
    title : str or None
        Title from ``#EXTINF`` (the whole display text when it has no `` - ``).
    """

    path: str
    location: str
    line: int
    duration: float | None = None
    artist: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A line the reader skipped or read only in part.

    Attributes
    ----------
    line : int
        1-based line number.
    text : str
        The line as written.
    reason : str
        What is wrong with it.
    """

    line: int
    text: str
    reason: str


@dataclass(slots=True)
class M3UPlaylist:
    """What :func:`read_m3u` found in a playlist file.

    Attributes
    ----------
    entries : list of M3UEntry
        Local files, in order.
    problems : list of LineProblem
        Lines skipped (URLs that are not ``file:``, stray ``#EXTINF``, control
        characters) or read in part (a duration that is not a number).
    encoding : str
        Text encoding the file was decoded with (``utf-8``, ``utf-16``,
        ``cp1252`` or ``latin-1``).
    extended : bool
        True if the file opens with ``#EXTM3U``.
    title : str or None
        Name from a ``#PLAYLIST:`` line.
    """

    entries: list[M3UEntry] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)
    encoding: str = "utf-8"
    extended: bool = False
    title: str | None = None


class M3UItem(Protocol):
    """What :func:`write_m3u` needs of a track (an ``ExchangeTrack`` or an
    :class:`M3UEntry` will do)."""

    @property
    def path(self) -> str: ...

    @property
    def duration(self) -> float | None: ...

    @property
    def artist(self) -> str | None: ...

    @property
    def title(self) -> str | None: ...


def decode_text(data: bytes, utf8_only: bool = False) -> tuple[str, str, str | None]:
    """Text of a playlist file and the encoding it was read with.

    A byte-order mark decides (UTF-8 or UTF-16, as Windows Notepad saves); otherwise
    strict UTF-8, then Windows-1252, then Latin-1 (which decodes any bytes).

    Parameters
    ----------
    data : bytes
        File content.
    utf8_only : bool
        The file claims UTF-8 (``.m3u8``): falling back is reported as a problem.

    Returns
    -------
    text : str
        Decoded text, without the byte-order mark.
    encoding : str
        Codec used.
    problem : str or None
        Why the text may be garbled, None when it decoded as expected.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return _decode_bom(data[3:], "utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _decode_bom(data, "utf-16")
    try:
        return data.decode("utf-8"), "utf-8", None
    except UnicodeDecodeError as exc:
        problem = (f"not valid UTF-8 at byte {exc.start}: read as Windows-1252"
                   if utf8_only else None)
    try:
        return data.decode("cp1252"), "cp1252", problem
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1", problem and problem.replace(
            "Windows-1252", "Latin-1")


def _decode_bom(data: bytes, codec: str) -> tuple[str, str, str | None]:
    try:
        return data.decode(codec), codec, None
    except UnicodeDecodeError as exc:
        text = data.decode(codec, errors="replace")
        return text, codec, f"not valid {codec.upper()} at byte {exc.start}: replaced"


def read_m3u(data: bytes, *, name: str = "playlist.m3u", base: str | Path | None = None
             ) -> M3UPlaylist:
    r"""Read an M3U or M3U8 playlist, extended or plain.

    Lines may end in LF, CRLF or CR; blank lines and ``#`` comments are skipped.
    ``#EXTINF`` applies to the next location; ``#EXTART`` gives an artist where
    ``#EXTINF`` has none; ``#PLAYLIST`` names the playlist. A location is an
    absolute path, a ``file:`` URL, a Windows path (``C:\Music\a.mp3``,
    ``\\nas\share\a.mp3``, ``Music\a.mp3``) or a path relative to `base`. Other
    URLs (``http:``, ``rtsp:``...) are not local files: they are reported and
    skipped.

    Parameters
    ----------
    data : bytes
        File content.
    name : str
        File name; a ``.m3u8`` suffix means UTF-8 (see :func:`decode_text`).
    base : str or Path or None
        Folder of the playlist file, against which relative locations resolve; None
        leaves them relative.

    Returns
    -------
    M3UPlaylist
        Entries in order and the lines skipped, with their reasons.
    """
    text, encoding, decode_problem = decode_text(
        data, utf8_only=name.lower().endswith(".m3u8"))
    result = M3UPlaylist(encoding=encoding)
    if decode_problem:
        result.problems.append(LineProblem(0, "", decode_problem))
    folder = normalise_path(str(base)) if base is not None else ""
    pending: tuple[int, str, float | None, str | None, str | None] | None = None
    artist_hint: str | None = None
    for number, raw in enumerate(_LINE_BREAK.split(text), start=1):
        line = raw.strip()
        if not line:
            continue
        if _CONTROL.search(line):
            result.problems.append(LineProblem(number, raw, "control character in line"))
            if not line.startswith("#"):
                pending = artist_hint = None
            continue
        if line.startswith("#"):
            directive, _, value = line.partition(":")
            directive = directive.upper()
            if directive == "#EXTM3U" and not result.entries:
                result.extended = True
            elif directive == "#EXTINF":
                if pending is not None:
                    result.problems.append(LineProblem(
                        pending[0], pending[1], "#EXTINF not followed by a location"))
                duration, artist, title, problem = _parse_extinf(value)
                if problem:
                    result.problems.append(LineProblem(number, raw, problem))
                pending = (number, raw, duration, artist, title)
            elif directive == "#EXTART":
                artist_hint = value.strip() or None
            elif directive == "#PLAYLIST":
                result.title = value.strip() or None
            continue
        duration = artist = title = None
        if pending is not None:
            _, _, duration, artist, title = pending
            pending = None
        artist = artist or artist_hint
        artist_hint = None
        path, problem = _location_path(line, folder)
        if path is None:
            result.problems.append(LineProblem(number, raw, problem or "unreadable location"))
            continue
        result.entries.append(M3UEntry(path=path, location=line, line=number,
                                       duration=duration, artist=artist, title=title))
    if pending is not None:
        result.problems.append(LineProblem(pending[0], pending[1],
                                           "#EXTINF not followed by a location"))
    return result


def read_m3u_file(path: str | Path) -> M3UPlaylist:
    """Read a playlist file, resolving relative locations against its folder.

    Parameters
    ----------
    path : str or Path
        The ``.m3u`` or ``.m3u8`` file.

    Returns
    -------
    M3UPlaylist
        As :func:`read_m3u`.

    Raises
    ------
    OSError
        If the file cannot be read.
    """
    file = Path(path).absolute()
    return read_m3u(file.read_bytes(), name=file.name, base=file.parent)


def _parse_extinf(value: str) -> tuple[float | None, str | None, str | None, str | None]:
    """Duration, artist, title and a problem of the text after ``#EXTINF:``."""
    head, display = _split_display(value)
    problem = None
    duration: float | None = None
    match = _DURATION.match(head)
    if match:
        seconds = float(match.group(1))
        duration = seconds if seconds >= 0 else None
    elif head.strip():
        problem = "#EXTINF duration is not a number"
    if display is None:
        return duration, None, None, problem or "#EXTINF has no comma before the title"
    display = display.strip()
    if not display:
        return duration, None, None, problem
    artist, sep, title = display.partition(" - ")
    if not sep:
        return duration, None, display, problem
    return duration, artist.strip() or None, title.strip() or None, problem


def _split_display(value: str) -> tuple[str, str | None]:
    """Split ``<duration> [attributes],<display>`` at the first comma outside quotes
    (IPTV lists put ``tvg-name="a, b"`` attributes after the duration)."""
    quoted = False
    for index, char in enumerate(value):
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            return value[:index], value[index + 1:]
    return value, None


def _location_path(line: str, folder: str) -> tuple[str | None, str | None]:
    """Path of a location line, or None and the reason it is not a local file."""
    scheme = url_scheme(line)
    if scheme == "file":
        try:
            return url_to_path(line), None
        except ValueError as exc:
            return None, str(exc)
    if scheme is not None:
        return None, f"not a local file ({scheme}: URL)"
    if is_absolute(line):
        return normalise_path(line), None
    return join_path(folder, line), None


def write_m3u(items: Iterable[M3UItem], *, relative_to: str | Path | None = None,
              encoding: str = "utf-8", title: str | None = None, extended: bool = True,
              newline: str = "\n") -> bytes:
    """Write an extended M3U playlist.

    The file opens with ``#EXTM3U`` (and ``#PLAYLIST:<title>`` when given); each item
    is ``#EXTINF:<seconds>,<artist> - <title>`` then its path. Seconds are rounded to
    whole seconds (``-1`` when unknown), as Winamp writes them; without an artist the
    display is the title, without a title the file name. Line breaks in tag text
    become spaces.

    Parameters
    ----------
    items : iterable of M3UItem
        Tracks in play order (anything with ``path``, ``duration``, ``artist`` and
        ``title``; paths absolute).
    relative_to : str or Path or None
        Folder the playlist will be saved in: paths are written relative to it (with
        ``../`` steps; a path on another drive or share stays absolute). None writes
        absolute paths.
    encoding : str
        ``utf-8`` for ``.m3u8`` (and modern players of ``.m3u``); ``cp1252`` or
        ``latin-1`` for legacy ``.m3u`` players. Tag text the codec cannot hold
        becomes ``?``.
    title : str or None
        Playlist name, written as ``#PLAYLIST:``.
    extended : bool
        False writes the plain form: paths only.
    newline : str
        Line ending, ``"\\n"`` or ``"\\r\\n"``.

    Returns
    -------
    bytes
        The encoded file, ending in a line break.

    Raises
    ------
    Unprocessable
        If a path is empty, holds a line break, or cannot be written in `encoding`.
    """
    base = normalise_path(str(relative_to)) if relative_to is not None else None
    lines: list[str] = []
    if extended:
        lines.append("#EXTM3U")
        if title:
            lines.append(f"#PLAYLIST:{_one_line(title)}")
    for item in items:
        path = item.path
        if not path or "\n" in path or "\r" in path:
            raise Unprocessable(f"cannot write {path!r} in an M3U playlist: "
                                "empty or holds a line break")
        location = relative_path(path, base) if base is not None else normalise_path(path)
        if location.startswith("#"):
            location = "./" + location
        if extended:
            lines.append(_extinf(item))
        lines.append(location)
    out = bytearray()
    for line in lines:
        try:
            out += (line + newline).encode(encoding, errors="surrogateescape")
        except UnicodeEncodeError as exc:
            if line.startswith("#"):
                out += (line + newline).encode(encoding, errors="replace")
                continue
            raise Unprocessable(f"cannot write {line!r} in {encoding}: {exc.reason}") from exc
    return bytes(out)


def _extinf(item: M3UItem) -> str:
    seconds = -1 if item.duration is None or item.duration < 0 else round(item.duration)
    artist = _one_line(item.artist or "")
    title = _one_line(item.title or "")
    if not title:
        title = normalise_path(item.path).rsplit("/", 1)[-1]
    display = f"{artist} - {title}" if artist else title
    return f"#EXTINF:{seconds},{display}"


def _one_line(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())
