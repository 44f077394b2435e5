"""Tags and stream facts of audio files, read with mutagen.

Every tag family names the same fields differently: ID3 frames (MP3, WAV, AIFF,
DSF), Vorbis comments (FLAC, Ogg Vorbis, Opus, Speex), MP4 atoms (M4A/ALAC),
ASF attributes (WMA), APEv2 items (Monkey's Audio, WavPack, Musepack, TAK, and
MP3 files tagged by foobar2000), RIFF ``LIST/INFO`` chunks (WAV) and AIFF text
chunks. This module keeps one table per family mapping each :class:`TagInfo`
field to the keys to try, in order (``ID3_KEYS``, ``VORBIS_KEYS``, ...), and one
small reader per family that turns a key into a list of strings; everything after
that (cleaning, parsing years, track numbers and tempos, filling gaps from a
secondary family, the filename fallback) is shared.

The container is recognised by its content (magic bytes), never by the file
name extension: FLAC data in a file named ``.mp3`` is read as FLAC. Only files
whose content matches no known signature (an MP3 with junk before its first
frame, an old QuickTime file without ``ftyp``), or that looked like MPEG audio
but did not parse as such, fall back to mutagen's extension-weighted guess.

References: ID3 tag version 2.4.0 - Native Frames (id3.org, 2000); Xiph.Org,
*Ogg Vorbis I format specification: comment field and header specification*
and the FLAC ``METADATA_BLOCK_PICTURE`` layout (RFC 9639, section 8.8); Apple,
*QuickTime File Format Specification*, metadata item list; Microsoft, *ASF
Specification* rev. 01.20.03 and the Windows Media Format SDK attribute list;
the APEv2 specification (wiki.hydrogenaud.io); Microsoft/IBM, *Multimedia
Programming Interface and Data Specifications 1.0* (1991), RIFF ``INFO`` list;
Apple, *Audio Interchange File Format* 1.3 (1989), text chunks.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import mutagen
from mutagen.aac import AAC
from mutagen.ac3 import AC3
from mutagen.aiff import AIFF
from mutagen.apev2 import APEBinaryValue, APETextValue, APEv2, APEv2File
from mutagen.asf import ASF, ASFTags
from mutagen.dsdiff import DSDIFF
from mutagen.dsf import DSF
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3, ID3FileType
from mutagen.monkeysaudio import MonkeysAudio
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Cover, MP4Tags
from mutagen.musepack import Musepack
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggtheora import OggTheora
from mutagen.oggvorbis import OggVorbis
from mutagen.optimfrog import OptimFROG
from mutagen.smf import SMF
from mutagen.tak import TAK
from mutagen.trueaudio import TrueAudio
from mutagen.wave import WAVE
from mutagen.wavpack import WavPack

from taperoom.errors import MediaError

__all__ = [
    "AIFF_TEXT_KEYS",
    "APE_KEYS",
    "ASF_KEYS",
    "FIELDS",
    "ID3_KEYS",
    "MP4_KEYS",
    "RIFF_INFO_KEYS",
    "VORBIS_KEYS",
    "TagInfo",
    "read_artwork",
    "read_tags",
    "title_from_filename",
]

#: The tag fields of :class:`TagInfo`, in the order of the key tables.
FIELDS = ("title", "artist", "album", "album_artist", "genre", "year", "track_number",
          "comment", "bpm", "key")

KeyTable = Mapping[str, tuple[str, ...]]

#: ID3v2 frames (v2.3 ``TYER`` is upgraded to ``TDRC`` by mutagen; ``TXXX:NAME``
#: is a user text frame matched on its description, case-insensitively).
ID3_KEYS: KeyTable = {
    "title": ("TIT2",),
    "artist": ("TPE1",),
    "album": ("TALB",),
    "album_artist": ("TPE2", "TXXX:ALBUMARTIST", "TXXX:ALBUM ARTIST"),
    "genre": ("TCON",),
    "year": ("TDRC", "TYER", "TDOR", "TORY"),
    "track_number": ("TRCK",),
    "comment": ("COMM",),
    "bpm": ("TBPM", "TXXX:BPM"),
    "key": ("TKEY", "TXXX:INITIALKEY", "TXXX:KEY"),
}

#: Vorbis comment field names (FLAC, Ogg Vorbis, Opus, Speex, Ogg FLAC);
#: case-insensitive.
VORBIS_KEYS: KeyTable = {
    "title": ("TITLE",),
    "artist": ("ARTIST",),
    "album": ("ALBUM",),
    "album_artist": ("ALBUMARTIST", "ALBUM ARTIST", "ALBUM_ARTIST"),
    "genre": ("GENRE",),
    "year": ("DATE", "YEAR", "ORIGINALDATE", "ORIGINALYEAR"),
    "track_number": ("TRACKNUMBER", "TRACK"),
    "comment": ("COMMENT", "DESCRIPTION"),
    "bpm": ("BPM", "TEMPO"),
    "key": ("INITIALKEY", "KEY"),
}

#: MP4 metadata atoms; ``----:mean:name`` are iTunes free-form atoms.
MP4_KEYS: KeyTable = {
    "title": ("©nam",),
    "artist": ("©ART",),
    "album": ("©alb",),
    "album_artist": ("aART",),
    "genre": ("©gen",),
    "year": ("©day",),
    "track_number": ("trkn",),
    "comment": ("©cmt", "desc"),
    "bpm": ("tmpo", "----:com.apple.iTunes:BPM"),
    "key": ("----:com.apple.iTunes:initialkey", "----:com.apple.iTunes:KEY"),
}

#: ASF (WMA) attributes; ``Title``, ``Author`` and ``Description`` come from the
#: content description object, the others from the extended one.
ASF_KEYS: KeyTable = {
    "title": ("Title",),
    "artist": ("Author",),
    "album": ("WM/AlbumTitle",),
    "album_artist": ("WM/AlbumArtist",),
    "genre": ("WM/Genre",),
    "year": ("WM/Year", "WM/OriginalReleaseYear"),
    "track_number": ("WM/TrackNumber",),
    "comment": ("Description", "WM/Comments"),
    "bpm": ("WM/BeatsPerMinute",),
    "key": ("WM/InitialKey",),
}

#: APEv2 item keys; case-insensitive.
APE_KEYS: KeyTable = {
    "title": ("Title",),
    "artist": ("Artist",),
    "album": ("Album",),
    "album_artist": ("Album Artist", "AlbumArtist"),
    "genre": ("Genre",),
    "year": ("Year", "Date"),
    "track_number": ("Track",),
    "comment": ("Comment",),
    "bpm": ("BPM",),
    "key": ("InitialKey", "Key"),
}

#: RIFF ``LIST/INFO`` sub-chunk ids (WAV); read beside the WAV's ID3 chunk.
RIFF_INFO_KEYS: KeyTable = {
    "title": ("INAM",),
    "artist": ("IART",),
    "album": ("IPRD",),
    "genre": ("IGNR",),
    "year": ("ICRD",),
    "track_number": ("ITRK", "IPRT"),
    "comment": ("ICMT",),
}

#: AIFF text chunk ids; read beside the AIFF's ID3 chunk.
AIFF_TEXT_KEYS: KeyTable = {
    "title": ("NAME",),
    "artist": ("AUTH",),
    "comment": ("ANNO",),
}

#: Fields whose several values are joined with ``"; "``; the others keep the first.
_JOINED = frozenset({"artist", "album_artist", "genre"})


@dataclass(frozen=True, slots=True)
class TagInfo:
    """Tags and stream facts of one audio file.

    Text fields are stripped of NUL characters and surrounding whitespace; a tag
    that is missing or empty is ``None``.

    Attributes
    ----------
    title, artist, album, album_artist, genre : str or None
        As tagged. Several values of `artist`, `album_artist` or `genre` are joined
        with ``"; "``. `title` and `artist` fall back to the file name (see
        :func:`title_from_filename`) when the file has no such tag.
    year : int or None
        Year of the date tag (``"2007-05-01"`` -> 2007), 1000..2999.
    track_number : int or None
        Position on the release (``"3/12"`` -> 3), >= 1.
    comment : str or None
        First comment (ID3 comments with an ``iTun*`` description are skipped).
    bpm : float or None
        Tagged tempo in beats per minute (``"170.00"`` -> 170.0), in (0, 1000).
    key : str or None
        Musical key as tagged (``"F#m"``, ``"Am"``, ``"11A"``, ``"b minor"``).
    duration_seconds : float or None
        Duration in seconds, from the stream headers; ``None`` when unknown.
    sample_rate : int or None
        Sampling rate in Hz (48000 for Opus, the rate it always decodes at).
    bit_rate : int or None
        Average bit rate of the audio stream in bits per second.
    channels : int or None
        Number of audio channels.
    has_artwork : bool
        The file embeds at least one picture (see :func:`read_artwork`).
    format : str
        Container, recognised by content: ``"mp3"``, ``"flac"``, ``"mp4"``,
        ``"ogg"``, ``"wav"``, ``"aiff"``, ``"asf"``, ``"ape"``, ``"wavpack"``,
        ``"musepack"``, ``"aac"``, ``"ac3"``, ``"dsf"``, ``"dff"``, ``"tak"``,
        ``"tta"``, ``"optimfrog"``.
    codec : str
        Audio coding: ``"mp3"``, ``"flac"``, ``"aac"``, ``"alac"``, ``"vorbis"``,
        ``"opus"``, ``"pcm_s16le"``, ``"pcm_f32le"``, ``"pcm_s16be"``, ``"wma"``, ...
        (FFmpeg's names where one exists).
    """

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    album_artist: str | None = None
    genre: str | None = None
    year: int | None = None
    track_number: int | None = None
    comment: str | None = None
    bpm: float | None = None
    key: str | None = None
    duration_seconds: float | None = None
    sample_rate: int | None = None
    bit_rate: int | None = None
    channels: int | None = None
    has_artwork: bool = False
    format: str = ""
    codec: str = ""


# --------------------------------------------------------------------------- filename


_SEPARATOR = re.compile(r"(?:\s+|^)[-–—](?:\s+|$)")
_TRACK_PART = re.compile(r"\d{1,3}")
#: "01. Title", "01) Title", "01 Title" (zero-padded only: "50 Cent" is no track 50).
_TRACK_PREFIX = re.compile(r"(?:(\d{1,3})[.)]|(0\d{1,2}))\s+(\S.*)", re.DOTALL)


def title_from_filename(stem: str) -> tuple[str | None, str, int | None]:
    """Guess artist, title and track number from a file name without extension.

    Recognised shapes, where ``-`` may also be an en or em dash surrounded by
    spaces: ``"Artist - Title"``, ``"NN - Artist - Title"``, ``"NN - Title"``,
    ``"NN. Title"``, ``"0N Artist - Title"``; anything else is a plain title. A
    title may itself contain ``" - "`` (``"Artist - Song - Remix"`` gives the
    title ``"Song - Remix"``). Underscores stand for spaces when the name has no
    space at all.

    Parameters
    ----------
    stem : str
        File name without directory and extension.

    Returns
    -------
    artist : str or None
        ``None`` when the name has no ``" - "`` part for it.
    title : str
        Never empty unless `stem` is blank (then `stem` itself is returned).
    track_number : int or None
        Leading track number of 1 to 3 digits, when present and >= 1.
    """
    name = stem.strip()
    if " " not in name and "_" in name:
        name = name.replace("_", " ").strip()
    if not name:
        return None, stem, None
    parts = [p.strip() for p in _SEPARATOR.split(name)]
    parts = [p for p in parts if p]
    if not parts:
        return None, name, None
    track: int | None = None
    if len(parts) >= 2 and _TRACK_PART.fullmatch(parts[0]):
        track = int(parts[0]) or None
        parts = parts[1:]
    else:
        m = _TRACK_PREFIX.fullmatch(parts[0])
        if m is not None:
            track = int(m.group(1) or m.group(2)) or None
            parts[0] = m.group(3).strip()
    if len(parts) == 1:
        return None, parts[0], track
    return parts[0], " - ".join(parts[1:]), track


# --------------------------------------------------------------------------- values


def _clean(values: Iterable[object]) -> list[str]:
    """Split on NUL, strip whitespace and byte-order marks, drop empty strings."""
    out: list[str] = []
    for value in values:
        for part in str(value).split("\x00"):
            text = part.replace("\ufeff", "").strip()
            if text:
                out.append(text)
    return out


_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_COMPACT_DATE = re.compile(r"\s*(\d{4})(?:\d{2}){1,2}(?!\d)")
_LEADING_INT = re.compile(r"\s*(\d{1,6})(?!\d)")
_LEADING_FLOAT = re.compile(r"\s*(\d{1,6}(?:[.,]\d{1,9})?)(?![\d.,])")


def _parse_year(values: list[str]) -> int | None:
    """First plausible year: a 4-digit group ("2007-05-01", "05/01/2007") or the
    first 4 digits of a compact date ("20070501")."""
    for value in values:
        m = _YEAR.search(value) or _COMPACT_DATE.match(value)
        if m is not None and 1000 <= int(m.group(1)) <= 2999:
            return int(m.group(1))
    return None


def _parse_track(values: list[str]) -> int | None:
    for value in values:
        m = _LEADING_INT.match(value)
        if m is not None and int(m.group(1)) >= 1:
            return int(m.group(1))
    return None


def _parse_bpm(values: list[str]) -> float | None:
    for value in values:
        m = _LEADING_FLOAT.match(value)
        if m is not None:
            bpm = float(m.group(1).replace(",", "."))
            if 0.0 < bpm < 1000.0:
                return bpm
    return None


# --------------------------------------------------------------------------- readers

Reader = Callable[[str], list[str]]


def _id3_reader(tags: ID3) -> Reader:
    def read(key: str) -> list[str]:
        if key.startswith("TXXX:"):
            desc = key[5:].lower()
            frames = [f for f in tags.getall("TXXX") if str(f.desc).lower() == desc]
        elif key == "COMM":
            frames = [f for f in tags.getall("COMM")
                      if not str(f.desc).lower().startswith(("itun", "musicmatch"))]
            frames.sort(key=lambda f: f.desc != "")  # plain comments before named ones
        else:
            frames = tags.getall(key)
        values: list[object] = []
        for frame in frames:
            if key == "TCON":
                values.extend(frame.genres)
            else:
                values.extend(frame.text)
        return _clean(values)

    return read


def _index_reader(index: dict[str, list[str]]) -> Reader:
    def read(key: str) -> list[str]:
        return index.get(key.lower(), [])

    return read


#: Keys holding pictures, left out of the text index (see :func:`_pictures`).
_PICTURE_KEYS = frozenset({"metadata_block_picture", "coverart", "covr", "wm/picture"})


def _index(items: Iterable[tuple[str, Any]], convert: Callable[[Any], list[str]]
           ) -> dict[str, list[str]]:
    """Case-folded key -> cleaned values, keeping every value of repeated keys."""
    index: dict[str, list[str]] = {}
    for key, raw in items:
        if str(key).lower() in _PICTURE_KEYS:
            continue
        values = raw if isinstance(raw, list) else [raw]
        texts: list[str] = []
        for value in values:
            texts.extend(convert(value))
        cleaned = _clean(texts)
        if cleaned:
            index.setdefault(str(key).lower(), []).extend(cleaned)
    return index


def _text(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else []


def _mp4_value(value: Any) -> list[str]:
    if isinstance(value, MP4Cover):
        return []
    if isinstance(value, bytes):  # MP4FreeForm
        return [value.decode("utf-8", "replace")]
    if isinstance(value, tuple):  # trkn, disk: (number, total)
        return [str(value[0])] if value and value[0] else []
    if isinstance(value, bool):
        return []
    if isinstance(value, int | str):
        return [str(value)]
    return []


def _asf_value(value: Any) -> list[str]:
    inner = getattr(value, "value", value)
    if isinstance(inner, bytes | bool):
        return []
    return [str(inner)]


def _ape_value(value: Any) -> list[str]:
    if isinstance(value, APETextValue):
        return list(value)
    return []


# --------------------------------------------------------------------------- IFF chunks


def _iff_chunks(f: IO[bytes], start: int, end: int, big_endian: bool
                ) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(id, body_offset, body_size)`` of the chunks in ``[start, end)``."""
    fmt = ">4sI" if big_endian else "<4sI"
    pos = start
    for _ in range(4096):
        if pos + 8 > end:
            return
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            return
        cid, size = struct.unpack(fmt, head)
        yield cid, pos + 8, size
        pos += 8 + size + (size & 1)


def _decode_text(raw: bytes) -> str:
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


_PCM_NAMES = {(1, 8): "pcm_u8", (1, 16): "pcm_s16le", (1, 24): "pcm_s24le",
              (1, 32): "pcm_s32le", (3, 32): "pcm_f32le", (3, 64): "pcm_f64le"}
_WAV_CODECS = {0x0006: "pcm_alaw", 0x0007: "pcm_mulaw", 0x0050: "mp2", 0x0055: "mp3",
               0x2000: "ac3", 0x0011: "adpcm_ima_wav", 0x0002: "adpcm_ms"}


def _riff_extras(f: IO[bytes], size: int) -> tuple[dict[str, list[str]], str]:
    """RIFF ``INFO`` values by sub-chunk id (lower case) and the codec name."""
    info: dict[str, list[str]] = {}
    codec = "pcm"
    for cid, body, csize in _iff_chunks(f, 12, size, big_endian=False):
        if cid == b"fmt " and csize >= 16:
            f.seek(body)
            fmt = f.read(min(csize, 40))
            if len(fmt) < 16:
                continue
            tag, bits = struct.unpack("<H", fmt[:2])[0], struct.unpack("<H", fmt[14:16])[0]
            if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: sub-format GUID
                tag = struct.unpack("<H", fmt[24:26])[0]
            codec = _PCM_NAMES.get((tag, bits)) or _WAV_CODECS.get(tag, f"wav_0x{tag:04x}")
        elif cid == b"LIST" and csize >= 4:
            f.seek(body)
            if f.read(4) != b"INFO":
                continue
            for sid, sbody, ssize in _iff_chunks(f, body + 4, body + csize, big_endian=False):
                if ssize <= 65536:
                    f.seek(sbody)
                    text = _decode_text(f.read(ssize))
                    info.setdefault(sid.decode("latin-1").lower(), []).extend(_clean([text]))
    return info, codec


_AIFC_CODECS = {b"NONE": "pcm_s{bits}be", b"twos": "pcm_s{bits}be", b"sowt": "pcm_s{bits}le",
                b"fl32": "pcm_f32be", b"FL32": "pcm_f32be", b"fl64": "pcm_f64be",
                b"FL64": "pcm_f64be", b"alaw": "pcm_alaw", b"ulaw": "pcm_mulaw",
                b"ima4": "adpcm_ima_qt"}


def _aiff_extras(f: IO[bytes], size: int, bits: int) -> tuple[dict[str, list[str]], str]:
    """AIFF text chunk values by chunk id (lower case) and the codec name."""
    f.seek(8)
    aifc = f.read(4) == b"AIFC"
    texts: dict[str, list[str]] = {}
    codec = f"pcm_s{bits}be" if bits else "pcm"
    for cid, body, csize in _iff_chunks(f, 12, size, big_endian=True):
        if cid in (b"NAME", b"AUTH", b"ANNO", b"(c) ") and csize <= 65536:
            f.seek(body)
            text = _decode_text(f.read(csize))
            texts.setdefault(cid.decode("latin-1").lower(), []).extend(_clean([text]))
        elif cid == b"COMM" and aifc and csize >= 22:
            f.seek(body + 18)
            comp = f.read(4)
            name = _AIFC_CODECS.get(comp, comp.decode("latin-1").strip().lower() or "pcm")
            codec = name.format(bits=bits or 16)
    return texts, codec


# --------------------------------------------------------------------------- detection

_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")

#: (offset, magic bytes, mutagen class), checked in order on the file's first bytes.
_MAGIC: tuple[tuple[int, bytes, type[mutagen.FileType]], ...] = (
    (0, b"fLaC", FLAC),
    (4, b"ftyp", MP4),
    (0, b"MAC ", MonkeysAudio),
    (0, b"wvpk", WavPack),
    (0, b"MPCK", Musepack),
    (0, b"MP+", Musepack),
    (0, b"OFR ", OptimFROG),
    (0, b"tBaK", TAK),
    (0, b"TTA1", TrueAudio),
    (0, b"DSD ", DSF),
    (0, b"FRM8", DSDIFF),
    (0, _ASF_GUID, ASF),
    (0, b"ADIF", AAC),
    (0, b"MThd", SMF),
)

#: Codec identification packet at byte 28 of an Ogg file (after the 27-byte page
#: header and a one-entry segment table).
_OGG_CODECS: tuple[tuple[bytes, type[mutagen.FileType]], ...] = (
    (b"\x01vorbis", OggVorbis),
    (b"OpusHead", OggOpus),
    (b"\x7fFLAC", OggFLAC),
    (b"Speex   ", OggSpeex),
    (b"\x80theora", OggTheora),
)


def _sniff(head: bytes) -> type[mutagen.FileType] | None:
    """The mutagen class for a file starting with `head`, from magic bytes only."""
    for offset, magic, kind in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAVE
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return AIFF
    if head[:4] == b"OggS":
        page = head[26:] if len(head) > 26 else b""
        body = head[27 + page[0]:] if page else b""
        for magic, kind in _OGG_CODECS:
            if body.startswith(magic):
                return kind
        return None
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:  # ADTS: MPEG sync with layer bits 00
            return AAC
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
            return MP3
    if head[:2] == b"\x0b\x77":
        return AC3
    return None


def _sniff_file(f: IO[bytes]) -> type[mutagen.FileType] | None:
    f.seek(0)
    head = f.read(64)
    if head[:3] != b"ID3" or len(head) < 10:
        return _sniff(head)
    # An ID3v2 tag in front: look at what follows it (FLAC, APE, AAC ... or MPEG).
    size = 10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14
                 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F))
    if head[5] & 0x10:
        size += 10  # footer present
    f.seek(size)
    after = f.read(64)
    kind = _sniff(after)
    return kind if kind is not None else MP3


#: mutagen class name -> (format, codec); ``None`` codec means "decide from info".
_KINDS: dict[str, tuple[str, str | None]] = {
    "MP3": ("mp3", None),
    "FLAC": ("flac", "flac"),
    "MP4": ("mp4", None),
    "OggVorbis": ("ogg", "vorbis"),
    "OggOpus": ("ogg", "opus"),
    "OggFLAC": ("ogg", "flac"),
    "OggSpeex": ("ogg", "speex"),
    "WAVE": ("wav", None),
    "AIFF": ("aiff", None),
    "ASF": ("asf", "wma"),
    "MonkeysAudio": ("ape", "ape"),
    "WavPack": ("wavpack", "wavpack"),
    "Musepack": ("musepack", "musepack"),
    "OptimFROG": ("optimfrog", "optimfrog"),
    "TAK": ("tak", "tak"),
    "TrueAudio": ("tta", "tta"),
    "AAC": ("aac", "aac"),
    "AC3": ("ac3", None),
    "DSF": ("dsf", "dsd"),
    "DSDIFF": ("dff", None),
}

#: Types that mutagen parses but that hold no playable audio of their own.
_NOT_AUDIO: dict[type[mutagen.FileType], str] = {
    OggTheora: "Ogg Theora video, not an audio file",
    SMF: "MIDI file: notes, not recorded audio",
    ID3FileType: "bare ID3 tag without audio",
    APEv2File: "bare APEv2 tag without audio",
}


def _load(path: Path, f: IO[bytes]) -> mutagen.FileType:
    """Open `f` with the mutagen class its content calls for (see module docstring)."""
    f.seek(0, 2)
    if f.tell() == 0:
        raise MediaError(path, "empty file")
    kind = _sniff_file(f)
    first_error: Exception | None = None
    audio: mutagen.FileType | None = None
    if kind is not None:
        try:
            f.seek(0)
            audio = kind(f)
        except Exception as exc:  # mutagen raises many types on corrupt data
            first_error = exc
    if audio is None and kind in (None, MP3):  # no magic, or only an MPEG sync/ID3 guess
        try:
            f.seek(0)
            audio = mutagen.File(f)  # f.name is the path: mutagen weighs the extension
        except Exception as exc:
            first_error = first_error or exc
    if audio is None:
        if first_error is not None:
            raise MediaError(path, f"unreadable {_kind_name(kind)}: {first_error}") from first_error
        raise MediaError(path, "not a recognised audio format")
    reason = _NOT_AUDIO.get(type(audio))
    if reason is not None:
        raise MediaError(path, reason)
    return audio


def _kind_name(kind: type[mutagen.FileType] | None) -> str:
    return _KINDS.get(kind.__name__, (kind.__name__.lower(), None))[0] if kind else "file"


# --------------------------------------------------------------------------- families


def _families(audio: mutagen.FileType, f: IO[bytes], size: int
              ) -> tuple[list[tuple[KeyTable, Reader]], str | None]:
    """Tag families of `audio`, primary first, and the codec when the file tells it."""
    tags = audio.tags
    families: list[tuple[KeyTable, Reader]] = []
    if isinstance(tags, ID3):
        families.append((ID3_KEYS, _id3_reader(tags)))
    elif isinstance(tags, MP4Tags):
        families.append((MP4_KEYS, _index_reader(_index(tags.items(), _mp4_value))))
    elif isinstance(tags, ASFTags):
        families.append((ASF_KEYS, _index_reader(_index(tags.items(), _asf_value))))
    elif isinstance(tags, APEv2):
        families.append((APE_KEYS, _index_reader(_index(tags.items(), _ape_value))))
    elif tags is not None and hasattr(tags, "items"):  # Vorbis comments
        families.append((VORBIS_KEYS, _index_reader(_index(tags.items(), _text))))
    codec: str | None = None
    if isinstance(audio, WAVE):
        info, codec = _riff_extras(f, size)
        families.append((RIFF_INFO_KEYS, _index_reader(info)))
    elif isinstance(audio, AIFF):
        texts, codec = _aiff_extras(f, size, int(getattr(audio.info, "bits_per_sample", 0)))
        families.append((AIFF_TEXT_KEYS, _index_reader(texts)))
    elif isinstance(audio, MP3):
        try:
            f.seek(0)
            ape = APEv2(f)
        except Exception:  # no (or a broken) APEv2 tag at the end: nothing to add
            ape = None
        if ape is not None:
            families.append((APE_KEYS, _index_reader(_index(ape.items(), _ape_value))))
    return families, codec


def _merge(families: list[tuple[KeyTable, Reader]]) -> dict[str, list[str]]:
    """Field -> values from the first family (and key) that has any."""
    found: dict[str, list[str]] = {}
    for table, read in families:
        for field in FIELDS:
            if field in found:
                continue
            for key in table.get(field, ()):
                values = read(key)
                if values:
                    found[field] = values
                    break
    return found


def _codec(audio: mutagen.FileType, fmt_codec: str | None, file_codec: str | None) -> str:
    if fmt_codec is not None:
        return fmt_codec
    if file_codec is not None:
        return file_codec
    info = audio.info
    if isinstance(audio, MP3):
        return {1: "mp1", 2: "mp2"}.get(int(getattr(info, "layer", 3)), "mp3")
    if isinstance(audio, MP4):
        name = str(getattr(info, "codec", "")).lower()
        if name in ("mp4a.69", "mp4a.6b"):
            return "mp3"
        if name.startswith("mp4a"):
            return "aac"
        return {"ac-3": "ac3", "ec-3": "eac3"}.get(name, name or "unknown")
    if isinstance(audio, AC3):
        return "eac3" if str(getattr(info, "codec", "")).lower() == "ec-3" else "ac3"
    if isinstance(audio, DSDIFF):
        return "dst" if str(getattr(info, "compression", "")).upper() == "DST" else "dsd"
    return "unknown"


def _positive(value: Any, kind: type[int] | type[float]) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return number if number > 0 else None


def _duration(audio: mutagen.FileType, size: int) -> float | None:
    """Duration in seconds; MP3 lengths are capped by the bytes the file really has.

    mutagen takes an MP3's length from its Xing/VBRI header, which keeps claiming
    the full length after the file was cut short (an interrupted download). When
    the frames present at the header's average bit rate cannot last 90 % of that
    length, the shorter estimate ``(size - first frame offset) * 8 / bit rate``
    is returned instead.
    """
    info = audio.info
    length = _positive(getattr(info, "length", None), float)
    if length is not None and isinstance(audio, MP3):
        bitrate = _positive(getattr(info, "bitrate", None), int)
        offset = getattr(info, "frame_offset", None)
        if bitrate is not None and isinstance(offset, int) and size > offset:
            present = (size - offset) * 8 / bitrate
            if present < 0.9 * length:
                return present
    return length


# --------------------------------------------------------------------------- pictures

_PictureItem = tuple[bytes, str, int]  # data, declared MIME, ID3 picture type


def _image_mime(data: bytes, declared: str) -> str:
    """MIME type of an image, from its magic bytes, else from the declared type."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:2] == b"BM":
        return "image/bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    mime = declared.strip().lower()
    if mime in ("jpg", "jpeg", "image/jpg"):
        return "image/jpeg"
    if mime and "/" not in mime:
        return f"image/{mime}"
    return mime or "application/octet-stream"


def _asf_picture(raw: bytes) -> _PictureItem | None:
    """Parse a ``WM/Picture`` value: type, u32 size, UTF-16 MIME, UTF-16 description, data."""
    if len(raw) < 9:
        return None
    ptype, size = raw[0], struct.unpack("<I", raw[1:5])[0]
    pos = 5
    strings: list[str] = []
    for _ in range(2):
        end = pos
        while end + 1 < len(raw) and raw[end:end + 2] != b"\x00\x00":
            end += 2
        strings.append(raw[pos:end].decode("utf-16-le", "replace"))
        pos = end + 2
    data = raw[pos:pos + size]
    return (data, strings[0], ptype) if data else None


def _pictures(audio: mutagen.FileType) -> Iterator[_PictureItem]:
    """Embedded pictures of `audio`, in file order, decoded lazily."""
    tags = audio.tags
    if isinstance(tags, ID3):
        for frame in tags.getall("APIC"):
            if frame.mime != "-->" and frame.data:  # "-->": a link, not an image
                yield bytes(frame.data), str(frame.mime), int(frame.type)
    elif isinstance(tags, MP4Tags):
        for cover in tags.get("covr", []):
            if cover:
                fmt = getattr(cover, "imageformat", MP4Cover.FORMAT_JPEG)
                yield bytes(cover), "image/png" if fmt == MP4Cover.FORMAT_PNG else "image/jpeg", 3
    elif isinstance(tags, ASFTags):
        for attr in tags.get("WM/Picture", []):
            pic = _asf_picture(bytes(getattr(attr, "value", b"")))
            if pic is not None:
                yield pic
    elif isinstance(tags, APEv2):
        for key in tags.keys():  # noqa: SIM118 - APEv2 is no real dict
            value = tags[key]
            if key.lower().startswith("cover art") and isinstance(value, APEBinaryValue):
                _name, _, data = bytes(value.value).partition(b"\x00")
                if data:
                    yield data, "", 3 if "front" in key.lower() else 0
    if isinstance(audio, FLAC):
        for pic in audio.pictures:
            if pic.data:
                yield bytes(pic.data), str(pic.mime), int(pic.type)
    elif tags is not None and not isinstance(tags, ID3 | MP4Tags | ASFTags | APEv2):
        for b64 in tags.get("metadata_block_picture", []):
            try:
                pic = Picture(base64.b64decode(b64))
            except (binascii.Error, ValueError, mutagen.MutagenError, struct.error):
                continue
            if pic.data:
                yield bytes(pic.data), str(pic.mime), int(pic.type)
        mimes = tags.get("coverartmime", [])
        for i, b64 in enumerate(tags.get("coverart", [])):  # pre-2010 Ogg convention
            try:
                data = base64.b64decode(b64)
            except (binascii.Error, ValueError):
                continue
            if data:
                yield data, mimes[i] if i < len(mimes) else "", 3


def _front_cover(pictures: Iterable[_PictureItem]) -> tuple[bytes, str] | None:
    first: tuple[bytes, str] | None = None
    for data, mime, ptype in pictures:
        item = (data, _image_mime(data, mime))
        if ptype == 3:
            return item
        if first is None:
            first = item
    return first


# --------------------------------------------------------------------------- public


def _open_failed(path: Path, exc: OSError) -> MediaError:
    return MediaError(path, exc.strerror or str(exc))


def read_tags(path: str | Path) -> TagInfo:
    """Read the tags and stream facts of an audio file.

    The container is recognised by content (see the module docstring); tags are
    looked up through the key table of the file's tag family (``ID3_KEYS``,
    ``VORBIS_KEYS``, ``MP4_KEYS``, ``ASF_KEYS``, ``APE_KEYS``), and fields it lacks
    are filled from a secondary family when the file has one (RIFF ``INFO`` in
    WAV, text chunks in AIFF, an APEv2 tag at the end of an MP3). When the file
    has no title or no artist tag, they are guessed from the file name with
    :func:`title_from_filename` (the artist only when the title is missing too or
    matches the guessed one).

    Parameters
    ----------
    path : str or Path
        Audio file.

    Returns
    -------
    TagInfo

    Raises
    ------
    MediaError
        The file cannot be opened, is empty, is not in a format mutagen reads,
        is corrupt, or holds no audio (Ogg Theora video, MIDI, a bare tag file).
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            size = f.seek(0, 2)
            audio = _load(p, f)
            families, file_codec = _families(audio, f, size)
            values = _merge(families)
            has_artwork = next(_pictures(audio), None) is not None
    except MediaError:
        raise
    except OSError as exc:
        raise _open_failed(p, exc) from exc
    except Exception as exc:  # mutagen raises many types on corrupt data
        raise MediaError(p, f"unreadable tags ({type(exc).__name__}: {exc})") from exc

    def text(field: str) -> str | None:
        found = values.get(field)
        if not found:
            return None
        if field in _JOINED:
            return "; ".join(dict.fromkeys(found))
        return found[0]

    title, artist = text("title"), text("artist")
    track = _parse_track(values.get("track_number", []))
    if title is None or artist is None:
        f_artist, f_title, f_track = title_from_filename(p.stem)
        if artist is None and (title is None or title.casefold() == f_title.casefold()):
            artist = f_artist
        if title is None:
            title = f_title
            track = track if track is not None else f_track
    fmt, fmt_codec = _KINDS.get(type(audio).__name__, (type(audio).__name__.lower(), None))
    info = audio.info
    sample_rate = _positive(getattr(info, "sample_rate", None), int)
    if sample_rate is None and isinstance(audio, OggOpus):
        sample_rate = 48000  # Opus always decodes at 48 kHz (RFC 7845, section 5.1)
    return TagInfo(
        title=title,
        artist=artist,
        album=text("album"),
        album_artist=text("album_artist"),
        genre=text("genre"),
        year=_parse_year(values.get("year", [])),
        track_number=track,
        comment=text("comment"),
        bpm=_parse_bpm(values.get("bpm", [])),
        key=text("key"),
        duration_seconds=_duration(audio, size),
        sample_rate=sample_rate,
        bit_rate=_positive(getattr(info, "bitrate", None), int),
        channels=_positive(getattr(info, "channels", None), int),
        has_artwork=has_artwork,
        format=fmt,
        codec=_codec(audio, fmt_codec, file_codec),
    )


def read_artwork(path: str | Path) -> tuple[bytes, str] | None:
    """Return the embedded cover picture of an audio file.

    The front cover (picture type 3) is preferred; otherwise the first picture
    in file order. Sources: ID3 ``APIC``, FLAC ``PICTURE`` blocks, Ogg
    ``METADATA_BLOCK_PICTURE`` (and the older ``COVERART``), MP4 ``covr``, ASF
    ``WM/Picture``, APEv2 ``Cover Art (...)``.

    Parameters
    ----------
    path : str or Path
        Audio file.

    Returns
    -------
    (bytes, str) or None
        Image bytes and MIME type (from the image's magic bytes when recognisable,
        else as declared in the tag); ``None`` when the file has no picture.

    Raises
    ------
    MediaError
        As :func:`read_tags`.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            audio = _load(p, f)
            return _front_cover(_pictures(audio))
    except MediaError:
        raise
    except OSError as exc:
        raise _open_failed(p, exc) from exc
    except Exception as exc:  # mutagen raises many types on corrupt data
        raise MediaError(p, f"unreadable artwork ({type(exc).__name__}: {exc})") from exc
