"""Plain records exchanged with other DJ software (rekordbox, Lexicon, Mixxx, players).

The format modules (:mod:`taperoom.playlists.m3u`, :mod:`taperoom.playlists.rekordbox`)
read and write these records and nothing else: no database, no web. The playlist
service maps library rows to them for an export and matches them back to library
tracks on an import (by path, then by audio hash).

Units follow the library: seconds for times and durations, beats per minute for
tempo, bytes for sizes, kbit/s for bit rates, Hz for sample rates, 0-5 stars for
ratings, ``#RRGGBB`` for colours. Paths are strings (a file of another machine may
hold a Windows path such as ``C:/Music/a.mp3``), with ``/`` as the separator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from urllib.parse import quote, unquote

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class CueKind(StrEnum):
    """Kind of a position mark, as rekordbox names them (``POSITION_MARK Type``).

    Source: Pioneer DJ, *rekordbox XML format list*
    (https://cdn.rekordbox.com/files/20200410160904/xml_format_list.pdf):
    Cue = 0, Fade-In = 1, Fade-Out = 2, Load = 3, Loop = 4.
    """

    CUE = "cue"
    FADE_IN = "fade-in"
    FADE_OUT = "fade-out"
    LOAD = "load"
    LOOP = "loop"


@dataclass(frozen=True, slots=True)
class Tempo:
    """One beatgrid anchor: from `start` on, beats fall every ``60 / bpm`` seconds.

    Attributes
    ----------
    start : float
        Time of the anchor beat, seconds from the start of the file (``Inizio``).
    bpm : float
        Tempo from this anchor on, beats per minute (``Bpm``).
    meter : str
        Musical meter, e.g. ``"4/4"`` (``Metro``).
    beat : int
        Number of the anchor beat in its bar, 1-based (``Battito``; 1-4 in 4/4).
    """

    start: float
    bpm: float
    meter: str = "4/4"
    beat: int = 1


@dataclass(frozen=True, slots=True)
class CuePoint:
    """A hot cue, memory cue or loop.

    Attributes
    ----------
    start : float
        Position, seconds from the start of the file.
    end : float or None
        End of a loop, seconds; None for a plain cue.
    number : int
        Hot cue index 0-7 (A-H), or -1 for a memory cue (``Num``).
    name : str
        Label shown by the DJ software.
    kind : CueKind
        Cue, loop, fade-in, fade-out or load point.
    colour : str or None
        ``#RRGGBB``, or None for the software's default.
    """

    start: float
    end: float | None = None
    number: int = -1
    name: str = ""
    kind: CueKind = CueKind.CUE
    colour: str | None = None

    @property
    def is_hot(self) -> bool:
        """True for a hot cue (``number`` 0-7), False for a memory cue."""
        return self.number >= 0


@dataclass(slots=True)
class ExchangeTrack:
    """One track of an exported or imported collection.

    Attributes
    ----------
    path : str
        Absolute path of the audio file (``/`` separators).
    track_id : str or None
        Identifier of the track within the file: the library's id on an export (the
        rekordbox writer numbers the tracks itself), the ``TrackID`` on an import.
    title, artist, album, genre, comment : str
        Tag text; empty when unknown.
    kind : str or None
        File kind as rekordbox shows it (``"MP3 File"``); None derives it from the
        extension on export.
    size : int or None
        File size, bytes.
    duration : float or None
        Length, seconds.
    year : int or None
        Year of release.
    bpm : float or None
        Average tempo, beats per minute.
    date_added : datetime.date or None
        Day the track entered the collection.
    bit_rate : int or None
        Encoding bit rate, kbit/s.
    sample_rate : int or None
        Sampling frequency, Hz.
    play_count : int
        Times played.
    rating : int
        0-5 stars.
    key : str or None
        Musical key as text (``"Am"``, ``"8A"``), rekordbox's ``Tonality``.
    colour : str or None
        ``#RRGGBB`` colour tag.
    tempos : list of Tempo
        Beatgrid anchors, in time order.
    cues : list of CuePoint
        Hot cues, memory cues and loops.
    """

    path: str
    track_id: str | None = None
    title: str = ""
    artist: str = ""
    album: str = ""
    genre: str = ""
    comment: str = ""
    kind: str | None = None
    size: int | None = None
    duration: float | None = None
    year: int | None = None
    bpm: float | None = None
    date_added: date | None = None
    bit_rate: int | None = None
    sample_rate: int | None = None
    play_count: int = 0
    rating: int = 0
    key: str | None = None
    colour: str | None = None
    tempos: list[Tempo] = field(default_factory=list)
    cues: list[CuePoint] = field(default_factory=list)


@dataclass(slots=True)
class PlaylistNode:
    """A playlist of an exchanged playlist tree.

    Attributes
    ----------
    name : str
        Name shown to the user.
    track_ids : list of str
        ``ExchangeTrack.track_id`` of each entry, in play order (repeats allowed).
    """

    name: str
    track_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FolderNode:
    """A folder (crate) of an exchanged playlist tree.

    Attributes
    ----------
    name : str
        Name shown to the user (``"ROOT"`` for the invisible root of rekordbox).
    children : list of FolderNode or PlaylistNode
        Sub-folders and playlists, in display order.
    """

    name: str
    children: list[FolderNode | PlaylistNode] = field(default_factory=list)

    def playlists(self, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...],
                                                                   PlaylistNode]]:
        """Every playlist below this folder, depth first, with its folder path.

        Parameters
        ----------
        prefix : tuple of str
            Folder names leading to this folder (empty for the root).

        Returns
        -------
        list of (tuple of str, PlaylistNode)
            The names of the folders holding each playlist (this folder excluded),
            and the playlist.
        """
        found: list[tuple[tuple[str, ...], PlaylistNode]] = []
        for child in self.children:
            if isinstance(child, FolderNode):
                found.extend(child.playlists((*prefix, child.name)))
            else:
                found.append((prefix, child))
        return found


def is_colour(text: str) -> bool:
    """True if `text` is a ``#RRGGBB`` colour."""
    return bool(_COLOUR.match(text))


# -- paths and file URLs ---------------------------------------------------------------

_DRIVE = re.compile(r"^([A-Za-z]:)(?:/|$)")


def _split_root(path: str) -> tuple[str, list[str]]:
    """Root (``""`` relative, ``"/"``, ``"C:/"``, ``"//host/share/"``) and the steps."""
    if path.startswith("//") and not path.startswith("///"):
        steps = [step for step in path[2:].split("/") if step]
        share = steps[:2]
        return "//" + "/".join(share) + "/", steps[2:]
    drive = _DRIVE.match(path)
    if drive:
        return drive.group(1).upper() + "/", [s for s in path[2:].split("/") if s]
    root = "/" if path.startswith("/") else ""
    return root, [step for step in path.split("/") if step]


def normalise_path(text: str) -> str:
    r"""A path written by any system, with ``/`` separators and no ``.``/``..`` steps.

    Windows separators become ``/`` (``C:\Music\a.mp3`` → ``C:/Music/a.mp3``,
    ``\\nas\music\a.mp3`` → ``//nas/music/a.mp3``); repeated separators collapse
    except the two that open a UNC path; ``..`` above an absolute root is dropped.

    Parameters
    ----------
    text : str
        A path, absolute or relative.

    Returns
    -------
    str
        The normalised path (``""`` stays ``""``, ``"./"`` becomes ``"."``).
    """
    if not text:
        return ""
    root, steps = _split_root(text.replace("\\", "/"))
    parts: list[str] = []
    for step in steps:
        if step == ".":
            continue
        if step == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not root:
                parts.append(step)
            continue
        parts.append(step)
    if not root and not parts:
        return "."
    if root.startswith("//") and not parts:
        return root.rstrip("/")
    return root + "/".join(parts)


def is_absolute(path: str) -> bool:
    """True for an absolute POSIX, Windows drive or UNC path (``/`` or ``\\``)."""
    return bool(_split_root(path.replace("\\", "/"))[0])


def join_path(base: str, relative: str) -> str:
    """`relative` resolved against the folder `base` (both normalised).

    Parameters
    ----------
    base : str
        Folder the relative path starts from; empty leaves `relative` relative.
    relative : str
        Relative path; an absolute one is returned normalised.

    Returns
    -------
    str
        The normalised joined path.
    """
    if is_absolute(relative) or not base:
        return normalise_path(relative)
    return normalise_path(base.replace("\\", "/").rstrip("/") + "/" + relative)


def relative_path(path: str, base: str) -> str:
    """`path` written relative to the folder `base`, or absolute when it cannot be.

    Paths on different roots (two drives, two UNC shares, a drive and a POSIX root)
    and relative inputs keep `path` as it is (normalised).

    Parameters
    ----------
    path : str
        Absolute path of a file.
    base : str
        Absolute path of a folder.

    Returns
    -------
    str
        E.g. ``relative_path("/m/a/x.mp3", "/m/b")`` is ``"../a/x.mp3"``.
    """
    target_root, target = _split_root(normalise_path(path))
    start_root, start = _split_root(normalise_path(base))
    if not target_root or target_root != start_root:
        return normalise_path(path)
    common = 0
    for a, b in zip(target, start, strict=False):
        if a != b:
            break
        common += 1
    return "/".join([".."] * (len(start) - common) + target[common:])


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_URL_DRIVE = re.compile(r"^/[A-Za-z][:|](?:/|$)")


def url_scheme(text: str) -> str | None:
    """The lower-case scheme of a URL (``"file"``, ``"http"``), None for a path.

    A one-letter scheme is a Windows drive (``C:``), not a URL.
    """
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else None


def url_to_path(url: str) -> str:
    """The local path a ``file:`` URL names (RFC 8089), percent-decoded.

    Accepts ``file:///music/a%20b.mp3``, ``file://localhost/music/a.mp3``,
    ``file://localhost/C:/Music/a.mp3`` (rekordbox), ``file:///C|/Music/a.mp3``
    (old Windows form), ``file:/music/a.mp3`` and ``file://nas/share/a.mp3`` (a UNC
    path ``//nas/share/a.mp3``). Repeated slashes collapse, so the
    ``file://localhost//music/a.mp3`` some writers produce reads as ``/music/a.mp3``.
    Percent-escapes decode as UTF-8; bytes that are not UTF-8 come back as
    surrogate escapes (``os.fsdecode`` does the same), so every POSIX name survives.
    ``?`` and ``#`` belong to the path: a local file has no query, and sloppy
    writers leave them unescaped in names such as ``Track #1.mp3``.

    Parameters
    ----------
    url : str
        A URL with the ``file`` scheme (any case).

    Returns
    -------
    str
        Normalised absolute path.

    Raises
    ------
    ValueError
        If `url` is not a ``file:`` URL or names no absolute path.
    """
    if url_scheme(url) != "file":
        raise ValueError(f"not a file URL: {url!r}")
    rest = url[5:]
    host = ""
    if rest.startswith("//"):
        authority, slash, rest = rest[2:].partition("/")
        host = authority.lower()
        rest = slash + rest
    path = unquote(rest, encoding="utf-8", errors="surrogateescape")
    path = re.sub(r"/{2,}", "/", path.replace("\\", "/"))
    if _URL_DRIVE.match(path):
        path = path[1] + ":" + path[3:]
    if host not in ("", "localhost"):
        path = f"//{host}/{path.lstrip('/')}"
    if not path or not is_absolute(path):
        raise ValueError(f"file URL names no absolute path: {url!r}")
    return normalise_path(path)


def path_to_url(path: str) -> str:
    """The ``file://localhost/`` URL of an absolute path, as rekordbox writes it.

    Every character but letters, digits, ``-._~`` and the ``/`` and ``:`` of the
    path is percent-encoded as UTF-8 (a space is ``%20``); surrogate escapes of a
    POSIX name that is not UTF-8 encode as the original bytes.

    Parameters
    ----------
    path : str
        Absolute POSIX (``/music/a.mp3``), drive (``C:\\Music\\a.mp3``) or UNC
        (``//nas/share/a.mp3``) path.

    Returns
    -------
    str
        ``file://localhost/music/a.mp3``, ``file://localhost/C:/Music/a.mp3`` or
        ``file://nas/share/a.mp3``.

    Raises
    ------
    ValueError
        If `path` is relative.
    """
    norm = normalise_path(path)
    if not is_absolute(norm):
        raise ValueError(f"not an absolute path: {path!r}")
    if norm.startswith("//"):
        return "file:" + quote(norm, safe="/:", encoding="utf-8", errors="surrogateescape")
    if not norm.startswith("/"):
        norm = "/" + norm
    return "file://localhost" + quote(norm, safe="/:", encoding="utf-8",
                                      errors="surrogateescape")
