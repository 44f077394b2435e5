"""ID3 tags, cover art and cue sheets of finished recordings.

A recording is tagged once, after capture, with ID3v2.4 frames in UTF-8 as the
original recorder did (contract ``recorder.md``, "Recording pipeline"):

=====  ==========================================================
TIT2   ``"<YYYY-MM-DD> <station name>"`` (local date of the start)
TPE1   station artist
TALB   station album
TPE2   station album artist
TRCK   days since 2020-01-01, plus one (2025-10-03 -> 2103)
TDRC   year of the start only
APIC   type 3 (front cover), description ``"Cover"``, JPEG or PNG
COMM   optional comment (language ``eng``, empty description)
=====  ==========================================================

The tag is built in memory with mutagen and written in front of the unchanged
audio into a temporary file beside the MP3, which then replaces it
(:func:`os.replace`), so a crash or a full disk never leaves a half-written
recording. The ICY ``StreamTitle`` changes seen during capture become a cue
sheet beside the MP3 (:func:`write_cue_sheet`).

References: M. Nilsson, *ID3 tag version 2.4.0 - Main Structure* and *Native
Frames* (id3.org, 2000); the CDRWIN cue sheet syntax (``FILE``, ``TRACK``,
``INDEX mm:ss:ff`` with 75 frames per second, the CD-DA sector rate of
Red Book, IEC 60908).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import threading
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

from mutagen import MutagenError
from mutagen.id3 import (
    APIC,
    COMM,
    ID3,
    TALB,
    TDRC,
    TIT2,
    TPE1,
    TPE2,
    TRCK,
    Encoding,
    Frame,
    ID3NoHeaderError,
    PictureType,
)
from mutagen.mp3 import MP3
from PIL import Image, ImageOps, UnidentifiedImageError

from taperoom.errors import MediaError
from taperoom.fslock import fsync_dir

log = logging.getLogger(__name__)

#: Day 1 of the track numbering (contract: ``TRCK = (date - 2020-01-01).days + 1``).
TRACK_EPOCH = date(2020, 1, 1)
#: Cue sheet frames per second (CD-DA: 75 sectors per second, IEC 60908).
CUE_FRAMES_PER_SECOND = 75
#: Padding left after the ID3 tag so that later edits by other taggers fit in place.
TAG_PADDING = 1024
#: JPEG quality of re-encoded cover art (Pillow scale 1-95).
JPEG_QUALITY = 90
#: A first cue closer than this to the start (s) is moved to 00:00:00; a later one
#: gets an intro track before it, so that no audio lies outside every track.
_CUE_START_SLACK = 1.0
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class CueLike(Protocol):
    """Anything with a start offset and a title (the capture module's ``CueEntry``)."""

    @property
    def offset_seconds(self) -> float:
        """Start of the title, seconds from the start of the recording."""
        ...

    @property
    def title(self) -> str:
        """ICY ``StreamTitle`` (usually ``"Artist - Title"``)."""
        ...


# --------------------------------------------------------------------------- pure helpers


def recording_title(started_local: datetime, station_name: str) -> str:
    """The title of a recording: ``"YYYY-MM-DD <station>"``.

    Parameters
    ----------
    started_local : datetime
        Start of the recording in the configured local zone (``TZ``); its local
        calendar date is used, so a show starting at 23:30 in Denver carries the
        Denver date even though it is already the next day in UTC.
    station_name : str
        Name of the station.

    Returns
    -------
    str
        E.g. ``"2025-10-03 KUVO Jazz"`` (contract: TIT2).
    """
    return f"{started_local:%Y-%m-%d} {station_name}"


def track_number(day: date) -> int:
    """Track number of a recording made on `day`: days since 2020-01-01, plus one.

    Parameters
    ----------
    day : date
        Local date of the start (a ``datetime`` is reduced to its date).

    Returns
    -------
    int
        ``max(1, (day - date(2020, 1, 1)).days + 1)``: 2020-01-01 -> 1,
        2025-10-03 -> 2103; dates before 2020 give 1 (contract: TRCK).
    """
    if isinstance(day, datetime):
        day = day.date()
    return max(1, (day - TRACK_EPOCH).days + 1)


def cue_timestamp(seconds: float) -> str:
    """``mm:ss:ff`` of a cue ``INDEX`` (75 frames per second; minutes may exceed 99).

    Parameters
    ----------
    seconds : float
        Offset from the start of the file, >= 0 (negative values count as 0).

    Returns
    -------
    str
        E.g. ``cue_timestamp(61.5) == "01:01:37"``.
    """
    frames = max(0, round(seconds * CUE_FRAMES_PER_SECOND))
    minutes, rest = divmod(frames, 60 * CUE_FRAMES_PER_SECOND)
    secs, ff = divmod(rest, CUE_FRAMES_PER_SECOND)
    return f"{minutes:02d}:{secs:02d}:{ff:02d}"


def split_stream_title(text: str) -> tuple[str | None, str]:
    """Split an ICY ``StreamTitle`` of the form ``"Artist - Title"``.

    Parameters
    ----------
    text : str
        The stream title.

    Returns
    -------
    (performer, title) : tuple
        Split at the first ``" - "``; ``performer`` is None when there is none
        (the whole text is the title).
    """
    artist, sep, title = text.partition(" - ")
    if sep and artist.strip() and title.strip():
        return artist.strip(), title.strip()
    return None, text.strip()


def _cue_text(text: str) -> str:
    # Cue sheets have no escape for '"': use two single quotes, as EAC does.
    return _CONTROL.sub(" ", text).replace('"', "''").strip()


# --------------------------------------------------------------------------- artwork


def prepare_artwork(path: Path, *, max_bytes: int, max_px: int = 800) -> tuple[bytes, str]:
    """Cover art ready for an ID3 ``APIC`` frame: JPEG or PNG, at most `max_bytes`.

    A JPEG or PNG file no larger than `max_bytes` is embedded as it is (same
    bytes). Other formats (GIF, BMP, WebP, TIFF, ...) are converted: to PNG
    when the image has transparency, else to JPEG. A file larger than
    `max_bytes` is shrunk so that its longer side is at most `max_px` (the
    original recorder's ``thumbnail((800, 800))``), after applying its EXIF
    orientation; if the result is still too large it is shrunk further.

    Parameters
    ----------
    path : Path
        Image file.
    max_bytes : int
        Largest size embedded without resizing (``MAX_ARTWORK_SIZE_MB``), bytes.
    max_px : int
        Longest side after resizing, pixels.

    Returns
    -------
    (data, mime) : tuple of bytes and str
        Encoded image and ``"image/jpeg"`` or ``"image/png"``.

    Raises
    ------
    MediaError
        The file is missing, unreadable, not an image or truncated, or cannot be
        made smaller than `max_bytes`.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MediaError(path, f"cannot read artwork: {exc.strerror or exc}") from exc
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # decode fully: a truncated file fails here, not later
            fmt = im.format or ""
            if fmt in _MIME and len(data) <= max_bytes:
                return data, _MIME[fmt]
            image = ImageOps.exif_transpose(im) or im
            image.load()
    except UnidentifiedImageError as exc:
        raise MediaError(path, "not an image file (JPEG, PNG, GIF, BMP or WebP)") from exc
    except (OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        raise MediaError(path, f"not a readable image ({exc})") from exc
    alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)
    out_fmt = "PNG" if fmt == "PNG" or (alpha and fmt != "JPEG") else "JPEG"
    size = max_px if len(data) > max_bytes else max(image.size)
    while size >= 16:
        encoded = _encode(image, out_fmt, size)
        if len(encoded) <= max_bytes:
            return encoded, _MIME[out_fmt]
        size = int(size * 0.75)
    raise MediaError(path, f"artwork cannot be made smaller than {max_bytes} bytes")


def _encode(image: Image.Image, fmt: str, max_px: int) -> bytes:
    img = image.copy()
    if max(img.size) > max_px:
        img.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    if fmt == "JPEG":
        if img.mode not in ("RGB", "L"):
            if img.mode in ("RGBA", "LA", "PA", "P"):
                rgba = img.convert("RGBA")
                img = Image.new("RGB", rgba.size, (255, 255, 255))
                img.paste(rgba, mask=rgba.getchannel("A"))
            else:
                img = img.convert("RGB")
    elif img.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        img = img.convert("RGBA")
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


# --------------------------------------------------------------------------- tagging


def _id3v2_size(head: bytes) -> int:
    """Size (bytes, header and footer included) of the ID3v2 tag at the start of `head`.

    ID3v2.4 main structure, section 3.1: ``"ID3"``, version (2 bytes), flags,
    size as a 28-bit synchsafe integer (4 bytes, 7 bits each) excluding the
    10-byte header; a footer (flag bit 4) adds 10 bytes. 0 when there is none.
    """
    if len(head) < 10 or head[:3] != b"ID3" or any(b & 0x80 for b in head[6:10]):
        return 0
    size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
    return 10 + size + (10 if head[5] & 0x10 else 0)


def _audio_span(path: Path) -> tuple[int, int]:
    """(start, end) byte offsets of the audio: after every ID3v2 tag, before an ID3v1 tag."""
    total = path.stat().st_size
    start = 0
    with path.open("rb") as f:
        while True:
            f.seek(start)
            n = _id3v2_size(f.read(10))
            if not n or start + n > total:
                break
            start += n
        end = total
        if total - start >= 128:
            f.seek(total - 128)
            if f.read(3) == b"TAG":
                end = total - 128
    return start, end


def tag_recording(
    path: Path,
    *,
    station_name: str,
    artist: str,
    album: str,
    album_artist: str,
    started_at: datetime,
    artwork: Path | None = None,
    max_artwork_bytes: int = 10 * 2**20,
    comment: str | None = None,
) -> None:
    """Write the recording's ID3v2.4 tag (UTF-8) into the MP3 at `path`, atomically.

    Frames (contract ``recorder.md``): TIT2 :func:`recording_title`, TPE1
    `artist`, TALB `album`, TPE2 `album_artist`, TRCK :func:`track_number` of
    the local start date, TDRC the year only, APIC type 3 ``"Cover"`` from
    `artwork` (see :func:`prepare_artwork`) and COMM `comment` when given.
    Frames of an existing tag that are not listed here are kept; an ID3v1 tag
    is dropped. The MPEG audio frames are copied unchanged.

    Parameters
    ----------
    path : Path
        The MP3 file.
    station_name, artist, album, album_artist : str
        Station fields.
    started_at : datetime
        Start of the recording, timezone-aware, already in the configured zone
        (``TZ``): its local date gives the title, the track number and the year.
    artwork : Path or None
        Cover image. An unreadable image is logged and left out: the recording
        is still tagged.
    max_artwork_bytes : int
        ``MAX_ARTWORK_SIZE_MB`` in bytes; larger artwork is resized to <= 800 px.
    comment : str or None
        Optional ``COMM`` text (e.g. the stream URL, or the gaps of the capture).

    Raises
    ------
    MediaError
        `path` is not a readable MP3, or the tagged file cannot be written
        (the original file is then left as it was).
    """
    day = started_at.date()
    _write_tag(Path(path), [
        TIT2(encoding=Encoding.UTF8, text=[recording_title(started_at, station_name)]),
        TPE1(encoding=Encoding.UTF8, text=[artist]),
        TALB(encoding=Encoding.UTF8, text=[album]),
        TPE2(encoding=Encoding.UTF8, text=[album_artist]),
        TRCK(encoding=Encoding.UTF8, text=[str(track_number(day))]),
        TDRC(encoding=Encoding.UTF8, text=[str(day.year)]),
    ], artwork=artwork, max_artwork_bytes=max_artwork_bytes, comment=comment)


def tag_track(
    path: Path,
    *,
    stream_title: str,
    index: int,
    count: int,
    station_name: str,
    artist: str,
    album_artist: str,
    started_at: datetime,
    artwork: Path | None = None,
    max_artwork_bytes: int = 10 * 2**20,
) -> None:
    """Write the ID3v2.4 tag of one piece of a recording split at ICY title changes.

    Frames: TIT2 the song of `stream_title` and TPE1 its performer
    (:func:`split_stream_title`; the station's `artist` when the title names
    none), TALB the recording's title (:func:`recording_title`: the show is the
    album), TPE2 `album_artist`, TRCK ``index/count``, TDRC the year and the
    station's cover art, as :func:`tag_recording` writes them.

    Parameters
    ----------
    path : Path
        The piece (an MP3 file).
    stream_title : str
        The ICY ``StreamTitle`` the piece starts with.
    index, count : int
        Position of the piece (from 1) and number of pieces.
    station_name, artist, album_artist : str
        Station fields.
    started_at : datetime
        Start of the whole recording, aware, in the configured zone.
    artwork : Path or None
        Cover image (left out when unreadable).
    max_artwork_bytes : int
        ``MAX_ARTWORK_SIZE_MB`` in bytes.

    Raises
    ------
    MediaError
        `path` is not a readable MP3 or cannot be written.
    """
    performer, song = split_stream_title(stream_title)
    _write_tag(Path(path), [
        TIT2(encoding=Encoding.UTF8, text=[song or stream_title]),
        TPE1(encoding=Encoding.UTF8, text=[performer or artist]),
        TALB(encoding=Encoding.UTF8, text=[recording_title(started_at, station_name)]),
        TPE2(encoding=Encoding.UTF8, text=[album_artist]),
        TRCK(encoding=Encoding.UTF8, text=[f"{index}/{count}"]),
        TDRC(encoding=Encoding.UTF8, text=[str(started_at.year)]),
    ], artwork=artwork, max_artwork_bytes=max_artwork_bytes, comment=None)


def _write_tag(path: Path, frames: list[Frame], *, artwork: Path | None,
               max_artwork_bytes: int, comment: str | None) -> None:
    """Replace `frames` (and COMM, APIC) in the ID3v2.4 tag of `path`, atomically."""
    try:
        MP3(path)
    except (MutagenError, OSError) as exc:
        raise MediaError(path, f"not a readable MP3 ({exc})") from exc
    try:
        tags = ID3(path)
    except ID3NoHeaderError:
        tags = ID3()
    except (MutagenError, ValueError) as exc:
        log.warning("%s: existing ID3 tag unreadable (%s); writing a new one", path.name, exc)
        tags = ID3()
    for frame in frames:
        tags.delall(frame.FrameID)
        tags.add(frame)
    if comment is not None:
        tags.delall("COMM")
        tags.add(COMM(encoding=Encoding.UTF8, lang="eng", desc="", text=[comment]))
    if artwork is not None:
        try:
            data, mime = prepare_artwork(Path(artwork), max_bytes=max_artwork_bytes)
        except MediaError as exc:
            log.warning("%s: cover art left out: %s", path.name, exc)
        else:
            tags.delall("APIC")
            tags.add(APIC(encoding=Encoding.UTF8, mime=mime, type=PictureType.COVER_FRONT,
                          desc="Cover", data=data))

    buf = io.BytesIO()
    tags.save(buf, v1=0, v2_version=4, padding=lambda _info: TAG_PADDING)
    _rewrite(path, buf.getvalue())


def _rewrite(path: Path, tag: bytes) -> None:
    """Replace `path` by `tag` + its audio bytes through a temp file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tagging")
    try:
        start, end = _audio_span(path)
        with path.open("rb") as src, tmp.open("wb") as dst:
            dst.write(tag)
            src.seek(start)
            left = end - start
            while left > 0:
                chunk = src.read(min(left, 1 << 20))
                if not chunk:
                    raise OSError(f"{path.name} shrank while being tagged")
                dst.write(chunk)
                left -= len(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise MediaError(path, f"cannot write tags: {exc.strerror or exc}") from exc
    fsync_dir(path.parent)


# --------------------------------------------------------------------------- cue sheets


def write_cue_sheet(audio_path: Path, cues: Sequence[CueLike], *, performer: str,
                    title: str) -> Path:
    """Write the titles heard during a recording as a cue sheet beside the MP3.

    The sheet (``<name>.cue``, UTF-8, CRLF line ends) has one ``FILE "<name>.mp3"
    MP3`` and one ``TRACK nn AUDIO`` per title with ``TITLE``, ``PERFORMER``
    (from an ICY ``"Artist - Title"``) and ``INDEX 01 mm:ss:ff``. Cues are
    sorted by offset; a repeated or empty title continues the previous track;
    when two titles fall on the same cue frame the later one wins. A first
    title starting after 1 s gets an intro track (titled `title`) before it, so
    that every second of audio belongs to a track. Track numbers have at least
    two digits (more than 99 titles are numbered on, as long DJ-mix sheets do).

    Parameters
    ----------
    audio_path : Path
        The recording; the sheet gets the same name with ``.cue``.
    cues : sequence of CueLike
        ``offset_seconds`` (s from the start of the file) and ``title``; a
        ``wall_time`` datetime attribute, when present, is kept as ``REM WALLTIME``.
    performer : str
        Album performer (the station's artist).
    title : str
        Album title (:func:`recording_title`).

    Returns
    -------
    Path
        The cue sheet, written atomically (temp file, rename).

    Raises
    ------
    MediaError
        The sheet cannot be written.
    """
    audio_path = Path(audio_path)
    tracks: list[tuple[float, str, object]] = []
    for cue in sorted(cues, key=lambda c: float(c.offset_seconds)):
        text = _cue_text(str(cue.title or ""))
        offset = max(0.0, float(cue.offset_seconds))
        if not text or (tracks and tracks[-1][1] == text):
            continue
        if tracks and round(offset * CUE_FRAMES_PER_SECOND) <= round(
                tracks[-1][0] * CUE_FRAMES_PER_SECOND):
            tracks.pop()
            if tracks and tracks[-1][1] == text:
                continue
        tracks.append((offset, text, getattr(cue, "wall_time", None)))
    if not tracks or tracks[0][0] >= _CUE_START_SLACK:
        tracks.insert(0, (0.0, _cue_text(title), None))
    else:
        tracks[0] = (0.0, tracks[0][1], tracks[0][2])

    lines = [f'PERFORMER "{_cue_text(performer)}"', f'TITLE "{_cue_text(title)}"',
             f'FILE "{_cue_text(audio_path.name)}" MP3']
    for number, (offset, text, wall) in enumerate(tracks, start=1):
        artist, song = split_stream_title(text)
        lines.append(f"  TRACK {number:02d} AUDIO")
        lines.append(f'    TITLE "{song}"')
        if artist:
            lines.append(f'    PERFORMER "{artist}"')
        if isinstance(wall, datetime):
            lines.append(f"    REM WALLTIME {wall.isoformat(timespec='seconds')}")
        lines.append(f"    INDEX 01 {cue_timestamp(offset)}")
    text_out = "\r\n".join(lines) + "\r\n"

    cue_path = audio_path.with_suffix(".cue")
    tmp = cue_path.with_name(f".{cue_path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as f:
            f.write(text_out)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, cue_path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise MediaError(cue_path, f"cannot write the cue sheet: {exc.strerror or exc}") from exc
    return cue_path
