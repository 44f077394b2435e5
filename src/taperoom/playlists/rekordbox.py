"""rekordbox XML (``DJ_PLAYLISTS``): the collection and playlist tree DJ software shares.

rekordbox imports and exports this file (*File → Export Collection in xml format*,
*Preferences → Advanced → rekordbox xml*); Lexicon, Mixxx, Serato converters and
Traktor tools read and write it too. The layout::

    <DJ_PLAYLISTS Version="1.0.0">
      <PRODUCT Name="..." Version="..." Company="..."/>
      <COLLECTION Entries="N">
        <TRACK TrackID="1" Name="..." Artist="..." ... Location="file://localhost/...">
          <TEMPO Inizio="0.025" Bpm="128.00" Metro="4/4" Battito="1"/>
          <POSITION_MARK Name="" Type="0" Start="32.025" Num="0" Red="40" Green="226"
                         Blue="20"/>
        </TRACK>
      </COLLECTION>
      <PLAYLISTS>
        <NODE Type="0" Name="ROOT" Count="1">
          <NODE Type="1" Name="Set" KeyType="0" Entries="1"><TRACK Key="1"/></NODE>
        </NODE>
      </PLAYLISTS>
    </DJ_PLAYLISTS>

Sources: Pioneer DJ, *rekordbox XML format list*
(https://cdn.rekordbox.com/files/20200410160904/xml_format_list.pdf, linked from
https://rekordbox.com/en/support/developer/): attributes, units (seconds, kbit/s,
Hz), ``Rating`` 0/51/102/153/204/255 for 0-5 stars, ``POSITION_MARK Type`` 0 cue,
1 fade-in, 2 fade-out, 3 load, 4 loop, ``Num`` 0-7 for hot cues A-H and -1 for
memory cues, ``NODE Type`` 0 folder / 1 playlist, ``KeyType`` 0 TrackID /
1 Location; the ``Red``/``Green``/``Blue`` of hot cues and the ``0xRRGGBB`` form of
``Colour`` as rekordbox 6 writes them (pyrekordbox's test files and documentation,
https://github.com/dylanljones/pyrekordbox, ``docs/source/formats/xml.md``).

Reading refuses DTDs and entity declarations (``defusedxml``, forbid_dtd): a
rekordbox file has none, and they are how XML bombs and external entities get in.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import defusedxml
import defusedxml.ElementTree as SafeET

from taperoom import __version__
from taperoom.errors import InvalidInput
from taperoom.playlists.exchange import (
    CueKind,
    CuePoint,
    ExchangeTrack,
    FolderNode,
    PlaylistNode,
    Tempo,
    is_absolute,
    is_colour,
    normalise_path,
    path_to_url,
    url_scheme,
    url_to_path,
)

CUE_TYPES: dict[CueKind, int] = {CueKind.CUE: 0, CueKind.FADE_IN: 1, CueKind.FADE_OUT: 2,
                                 CueKind.LOAD: 3, CueKind.LOOP: 4}
"""``POSITION_MARK Type`` of each cue kind."""

RATING_STEP = 51
"""``Rating`` of one star: 0, 51, 102, 153, 204, 255 for 0-5 stars."""

_KINDS = {"mp3": "MP3 File", "wav": "WAV File", "aif": "AIFF File", "aiff": "AIFF File",
          "flac": "FLAC File", "m4a": "M4A File", "mp4": "M4A File", "aac": "AAC File",
          "ogg": "OGG File", "opus": "OPUS File", "alac": "ALAC File"}
# characters XML 1.0 cannot hold (section 2.2, Char), lone surrogates included
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_HEX_COLOUR = re.compile(r"^(?:0x|#)([0-9a-fA-F]{6})$")


@dataclass(slots=True)
class RekordboxLibrary:
    """What :func:`read_rekordbox` found in a file.

    Attributes
    ----------
    tracks : list of ExchangeTrack
        The collection, in file order, ``track_id`` the file's ``TrackID``.
    playlists : FolderNode
        The playlist tree under the ``ROOT`` folder; playlist entries are
        ``TrackID`` values of `tracks` (entries of ``KeyType="1"`` playlists are
        matched to tracks by location).
    product : str
        ``PRODUCT Name`` and ``Version`` of the writer, e.g. ``"rekordbox 6.6.2"``.
    problems : list of str
        What was skipped or read in part, one sentence each.
    """

    tracks: list[ExchangeTrack] = field(default_factory=list)
    playlists: FolderNode = field(default_factory=lambda: FolderNode("ROOT"))
    product: str = ""
    problems: list[str] = field(default_factory=list)

    def track(self, track_id: str) -> ExchangeTrack | None:
        """The track of `track_id`, or None."""
        for track in self.tracks:
            if track.track_id == track_id:
                return track
        return None


# -- writing ---------------------------------------------------------------------------


def write_rekordbox(tracks: Sequence[ExchangeTrack],
                    playlists: FolderNode | Iterable[FolderNode | PlaylistNode] = (),
                    *, product: str = "Taperoom", version: str = __version__,
                    company: str = "Taperoom") -> bytes:
    """Write a collection and its playlist tree as rekordbox XML.

    Tracks are numbered ``TrackID`` 1..N in the order given; playlists refer to them
    by that number (``KeyType="0"``). Text attributes are always written (empty when
    unknown), numbers only when known; times keep millisecond precision, tempos
    hundredths of a BPM, as rekordbox writes them. Characters XML cannot hold
    (control characters) are dropped from tag text.

    Parameters
    ----------
    tracks : sequence of ExchangeTrack
        The collection; paths absolute, ``track_id`` unique among them (None for a
        track no playlist refers to).
    playlists : FolderNode or iterable of FolderNode and PlaylistNode
        The tree under ``ROOT`` (a folder's own name is not written for the root);
        playlist entries are ``track_id`` values of `tracks`.
    product, version, company : str
        The writer named in ``PRODUCT``.

    Returns
    -------
    bytes
        UTF-8 XML, indented, after ``<?xml version="1.0" encoding="UTF-8"?>``.

    Raises
    ------
    ValueError
        If a path is relative, a ``track_id`` repeats, or a playlist names a track
        not in `tracks`.
    """
    root = ET.Element("DJ_PLAYLISTS", Version="1.0.0")
    ET.SubElement(root, "PRODUCT", Name=_text(product), Version=_text(version),
                  Company=_text(company))
    collection = ET.SubElement(root, "COLLECTION", Entries=str(len(tracks)))
    numbers: dict[str, str] = {}
    for index, track in enumerate(tracks, start=1):
        if track.track_id is not None:
            if track.track_id in numbers:
                raise ValueError(f"track id {track.track_id!r} appears twice")
            numbers[track.track_id] = str(index)
        _write_track(collection, str(index), track)
    children = playlists.children if isinstance(playlists, FolderNode) else list(playlists)
    tree = ET.SubElement(root, "PLAYLISTS")
    top = ET.SubElement(tree, "NODE", Type="0", Name="ROOT", Count=str(len(children)))
    for child in children:
        _write_node(top, child, numbers)
    ET.indent(root, space="  ")
    # the declaration exactly as rekordbox writes it (double quotes): its importer
    # wants this first line (pyrekordbox, docs/source/formats/xml.md)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'.encode()


def _write_track(parent: ET.Element, number: str, track: ExchangeTrack) -> None:
    attrs: dict[str, str] = {"TrackID": number}
    texts = {"Name": track.title, "Artist": track.artist, "Album": track.album,
             "Genre": track.genre}
    attrs.update({key: _text(value) for key, value in texts.items()})
    attrs["Kind"] = _text(track.kind if track.kind is not None else kind_of(track.path))
    numbers: dict[str, str | None] = {
        "Size": _int(track.size),
        "TotalTime": _int(track.duration),
        "Year": _int(track.year),
        "AverageBpm": _fixed(track.bpm, 2),
        "DateAdded": track.date_added.isoformat() if track.date_added else None,
        "BitRate": _int(track.bit_rate),
        "SampleRate": _int(track.sample_rate),
    }
    attrs.update({key: value for key, value in numbers.items() if value is not None})
    attrs["Comments"] = _text(track.comment)
    attrs["PlayCount"] = str(max(0, track.play_count))
    attrs["Rating"] = str(RATING_STEP * min(5, max(0, track.rating)))
    attrs["Location"] = path_to_url(track.path)
    attrs["Tonality"] = _text(track.key or "")
    if track.colour is not None and is_colour(track.colour):
        attrs["Colour"] = "0x" + track.colour[1:].upper()
    element = ET.SubElement(parent, "TRACK", attrs)
    for tempo in track.tempos:
        ET.SubElement(element, "TEMPO", Inizio=_fixed(tempo.start, 3) or "0",
                      Bpm=_fixed(tempo.bpm, 2) or "0", Metro=_text(tempo.meter),
                      Battito=str(tempo.beat))
    for cue in track.cues:
        mark = {"Name": _text(cue.name), "Type": str(CUE_TYPES[cue.kind]),
                "Start": _fixed(cue.start, 3) or "0"}
        if cue.end is not None:
            mark["End"] = _fixed(cue.end, 3) or "0"
        mark["Num"] = str(cue.number)
        if cue.colour is not None and is_colour(cue.colour):
            red, green, blue = (int(cue.colour[i:i + 2], 16) for i in (1, 3, 5))
            mark.update(Red=str(red), Green=str(green), Blue=str(blue))
        ET.SubElement(element, "POSITION_MARK", mark)


def _write_node(parent: ET.Element, node: FolderNode | PlaylistNode,
                numbers: dict[str, str]) -> None:
    if isinstance(node, FolderNode):
        folder = ET.SubElement(parent, "NODE", Type="0", Name=_text(node.name),
                               Count=str(len(node.children)))
        for child in node.children:
            _write_node(folder, child, numbers)
        return
    playlist = ET.SubElement(parent, "NODE", Type="1", Name=_text(node.name), KeyType="0",
                             Entries=str(len(node.track_ids)))
    for track_id in node.track_ids:
        if track_id not in numbers:
            raise ValueError(f"playlist {node.name!r} names track {track_id!r}, "
                             "which is not in the collection")
        ET.SubElement(playlist, "TRACK", Key=numbers[track_id])


def kind_of(path: str) -> str:
    """rekordbox's ``Kind`` of a file from its extension (``"MP3 File"``)."""
    name = normalise_path(path).rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _KINDS.get(extension, f"{extension.upper()} File" if extension else "File")


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _int(value: float | None) -> str | None:
    if value is None or not math.isfinite(value):
        return None
    return str(round(value))


def _fixed(value: float | None, decimals: int) -> str | None:
    if value is None or not math.isfinite(value):
        return None
    return f"{value:.{decimals}f}"


# -- reading ---------------------------------------------------------------------------


def read_rekordbox(data: bytes) -> RekordboxLibrary:
    """Read a rekordbox XML file: its collection and playlist tree.

    Robust to what other writers leave out or add: every attribute but ``Location``
    may be missing (text reads as ``""``, numbers as None; ``0`` for a tempo, year,
    length or size means unknown, as rekordbox writes it), unknown elements and
    attributes are ignored, and a track or mark that cannot be read is skipped and
    reported in ``problems``. A file without ``COLLECTION`` or ``PLAYLISTS`` reads
    as empty.

    Parameters
    ----------
    data : bytes
        File content (any encoding its XML declaration names; UTF-8 by default).

    Returns
    -------
    RekordboxLibrary
        Tracks with locations decoded to paths, BPM, key (``Tonality``), beatgrid,
        cues, rating 0-5, play count and ``#rrggbb`` colour; the playlist tree; the
        problems met.

    Raises
    ------
    InvalidInput
        If the data is not well-formed XML, declares a DTD or entities, or its root
        is not ``DJ_PLAYLISTS``.
    """
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except ET.ParseError as exc:
        raise InvalidInput(f"not a rekordbox XML file: malformed XML ({exc})") from exc
    except defusedxml.DefusedXmlException as exc:
        raise InvalidInput("not a rekordbox XML file: DTDs and entity declarations are "
                           f"refused ({type(exc).__name__})") from exc
    if root.tag != "DJ_PLAYLISTS":
        raise InvalidInput(f"not a rekordbox XML file: the root element is <{root.tag}>, "
                           "not <DJ_PLAYLISTS>")
    result = RekordboxLibrary()
    product = root.find("PRODUCT")
    if product is not None:
        result.product = " ".join(
            part for part in (product.get("Name", ""), product.get("Version", "")) if part)
    reader = _Reader(result.problems)
    collection = root.find("COLLECTION")
    by_location: dict[str, str] = {}
    seen: set[str] = set()
    for index, element in enumerate(collection.findall("TRACK") if collection is not None
                                    else (), start=1):
        track = reader.track(element, index)
        if track is None:
            continue
        if track.track_id is not None:
            if track.track_id in seen:
                result.problems.append(f"track {index}: TrackID {track.track_id} repeats "
                                       "an earlier track; skipped")
                continue
            seen.add(track.track_id)
            by_location.setdefault(track.path, track.track_id)
        result.tracks.append(track)
    tree = root.find("PLAYLISTS")
    top = tree.find("NODE") if tree is not None else None
    if top is not None:
        for child in top.findall("NODE"):
            node = reader.node(child, (), seen, by_location)
            if node is not None:
                result.playlists.children.append(node)
    return result


class _Reader:
    """Reads elements, noting problems as it goes."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def track(self, element: ET.Element, index: int) -> ExchangeTrack | None:
        track_id = element.get("TrackID") or None
        where = f"track {index}" + (f" (TrackID {track_id})" if track_id else "")
        location = (element.get("Location") or "").strip()
        if not location:
            self.problems.append(f"{where}: no Location; skipped")
            return None
        path = self.location(location, where)
        if path is None:
            return None
        number = _Numbers(self.problems, where, element)
        rating = number.integer("Rating")
        track = ExchangeTrack(
            path=path,
            track_id=track_id,
            title=element.get("Name", ""),
            artist=element.get("Artist", ""),
            album=element.get("Album", ""),
            genre=element.get("Genre", ""),
            comment=element.get("Comments", ""),
            kind=(element.get("Kind") or "").strip() or None,
            size=number.integer("Size", positive=True),
            duration=number.real("TotalTime", positive=True),
            year=number.integer("Year", positive=True),
            bpm=number.real("AverageBpm", positive=True),
            date_added=number.day("DateAdded"),
            bit_rate=number.integer("BitRate", positive=True),
            sample_rate=number.integer("SampleRate", positive=True),
            play_count=max(0, number.integer("PlayCount") or 0),
            rating=min(5, max(0, round(rating / RATING_STEP))) if rating else 0,
            key=(element.get("Tonality") or "").strip() or None,
            colour=self.colour(element.get("Colour"), where),
        )
        for tempo in element.findall("TEMPO"):
            grid = self.tempo(tempo, where)
            if grid is not None:
                track.tempos.append(grid)
        track.tempos.sort(key=lambda anchor: anchor.start)
        for mark in element.findall("POSITION_MARK"):
            cue = self.cue(mark, where)
            if cue is not None:
                track.cues.append(cue)
        return track

    def location(self, text: str, where: str) -> str | None:
        scheme = url_scheme(text)
        if scheme == "file":
            try:
                return url_to_path(text)
            except ValueError as exc:
                self.problems.append(f"{where}: {exc}; skipped")
                return None
        if scheme is None and is_absolute(text):
            return normalise_path(text)
        self.problems.append(f"{where}: Location {text!r} is not a local file; skipped")
        return None

    def colour(self, text: str | None, where: str) -> str | None:
        if not text:
            return None
        match = _HEX_COLOUR.match(text.strip())
        if match is None:
            self.problems.append(f"{where}: Colour {text!r} is not 0xRRGGBB; ignored")
            return None
        return "#" + match.group(1).lower()

    def tempo(self, element: ET.Element, where: str) -> Tempo | None:
        number = _Numbers(self.problems, f"{where}, TEMPO", element)
        start, bpm = number.real("Inizio"), number.real("Bpm", positive=True)
        if start is None or bpm is None or start < 0:
            self.problems.append(f"{where}: TEMPO without a usable Inizio and Bpm; skipped")
            return None
        beat = number.integer("Battito")
        return Tempo(start=start, bpm=bpm, meter=(element.get("Metro") or "4/4").strip(),
                     beat=beat if beat is not None and beat >= 1 else 1)

    def cue(self, element: ET.Element, where: str) -> CuePoint | None:
        number = _Numbers(self.problems, f"{where}, POSITION_MARK", element)
        start = number.real("Start")
        if start is None or start < 0:
            self.problems.append(f"{where}: POSITION_MARK without a usable Start; skipped")
            return None
        num = number.integer("Num")
        num = -1 if num is None else num
        if not -1 <= num <= 7:
            self.problems.append(f"{where}: POSITION_MARK Num {num} is not -1 or 0-7; "
                                 "skipped")
            return None
        kind_number = number.integer("Type")
        kinds = {value: kind for kind, value in CUE_TYPES.items()}
        kind = kinds.get(kind_number if kind_number is not None else 0)
        if kind is None:
            self.problems.append(f"{where}: POSITION_MARK Type {kind_number} is unknown; "
                                 "read as a cue")
            kind = CueKind.CUE
        end = number.real("End")
        if end is not None and end < start:
            self.problems.append(f"{where}: POSITION_MARK End before Start; End ignored")
            end = None
        rgb = [number.integer(channel) for channel in ("Red", "Green", "Blue")]
        colour = None
        if all(value is not None and 0 <= value <= 255 for value in rgb):
            colour = "#" + "".join(f"{value:02x}" for value in rgb if value is not None)
        return CuePoint(start=start, end=end, number=num, name=element.get("Name", ""),
                        kind=kind, colour=colour)

    def node(self, element: ET.Element, path: tuple[str, ...], ids: set[str],
             by_location: dict[str, str]) -> FolderNode | PlaylistNode | None:
        name = element.get("Name", "")
        where = "playlist " + "/".join((*path, name))
        kind = element.get("Type")
        if kind == "0":
            folder = FolderNode(name)
            for child in element.findall("NODE"):
                node = self.node(child, (*path, name), ids, by_location)
                if node is not None:
                    folder.children.append(node)
            return folder
        if kind != "1":
            self.problems.append(f"{where}: NODE Type {kind!r} is neither folder (0) nor "
                                 "playlist (1); skipped")
            return None
        by_path = element.get("KeyType", "0") == "1"
        playlist = PlaylistNode(name)
        for entry in element.findall("TRACK"):
            key = entry.get("Key", "")
            track_id: str | None = key if key in ids else None
            if by_path:
                path_of = self.location(key, where) if key else None
                track_id = by_location.get(path_of) if path_of else None
            if track_id is None:
                self.problems.append(f"{where}: entry {key!r} is not in the collection; "
                                     "skipped")
                continue
            playlist.track_ids.append(track_id)
        return playlist


class _Numbers:
    """Numeric attributes of one element; unreadable values become None and a
    problem."""

    def __init__(self, problems: list[str], where: str, element: ET.Element) -> None:
        self.problems, self.where, self.element = problems, where, element

    def _raw(self, name: str) -> str | None:
        value = self.element.get(name)
        return value.strip() if value is not None and value.strip() else None

    def real(self, name: str, positive: bool = False) -> float | None:
        raw = self._raw(name)
        if raw is None:
            return None
        try:
            value = float(raw.replace(",", "."))
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            self.problems.append(f"{self.where}: {name} {raw!r} is not a number; ignored")
            return None
        return None if positive and value <= 0 else value

    def integer(self, name: str, positive: bool = False) -> int | None:
        value = self.real(name, positive)
        return None if value is None else round(value)

    def day(self, name: str) -> date | None:
        raw = self._raw(name)
        if raw is None:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            self.problems.append(f"{self.where}: {name} {raw!r} is not yyyy-mm-dd; ignored")
            return None
