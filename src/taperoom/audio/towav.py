"""Decode any audio file to a PCM WAV file, carrying its tags and cover art.

The audio is decoded with PyAV (FFmpeg) and written as integer PCM at the
source's sample rate and channel layout: 16-bit for lossy codecs (MP3, AAC,
Vorbis, Opus decode to float; 16 bits hold their resolution) and 16-bit
sources, 24-bit for 24-bit lossless ones (FLAC, ALAC, AIFF), 32-bit for
32-bit ones. Tags go both into a RIFF ``LIST``/``INFO`` chunk before ``data``
(read by FFmpeg, Windows and most DAWs) and into an ``id3 `` chunk after it,
which also holds the cover art (read by mutagen, foobar2000, Mp3tag and most
players), so nothing a player needs precedes the audio but a few hundred bytes.

References: Microsoft/IBM, *Multimedia Programming Interface and Data
Specifications 1.0* (1991), ``LIST``/``INFO`` sub-chunks ``INAM``, ``IART``,
``IPRD``, ``IGNR``, ``ICRD``, ``ITRK``, ``ICMT``; ID3v2.3.0 (id3.org) in a RIFF
``id3 `` chunk, as mutagen's ``mutagen.wave`` writes it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from pathlib import Path

import av
import av.audio.stream
import mutagen
import numpy as np
from mutagen.id3 import (
    APIC,
    COMM,
    TALB,
    TBPM,
    TCON,
    TDRC,
    TIT2,
    TKEY,
    TPE1,
    TPE2,
    TRCK,
)
from mutagen.wave import WAVE

from taperoom.audio import wav
from taperoom.audio.demux import demux_packets
from taperoom.audio.tags import TagInfo
from taperoom.errors import MediaError

#: RIFF INFO sub-chunk of each tag field.
INFO_IDS: dict[str, bytes] = {
    "title": b"INAM", "artist": b"IART", "album": b"IPRD", "genre": b"IGNR",
    "year": b"ICRD", "track_number": b"ITRK", "comment": b"ICMT",
}
#: ID3 frame of each tag field.
_ID3_FRAMES = {"title": TIT2, "artist": TPE1, "album": TALB, "album_artist": TPE2,
               "genre": TCON, "year": TDRC, "track_number": TRCK, "bpm": TBPM, "key": TKEY}
#: Largest data chunk of a RIFF file (its size field is 32 bits).
_MAX_DATA = 0xFFFFFFFF - 4096


def tag_fields(tags: TagInfo | None) -> dict[str, str]:
    """The text of every tag field that `tags` has, by field name."""
    if tags is None:
        return {}
    values: dict[str, object] = {
        "title": tags.title, "artist": tags.artist, "album": tags.album,
        "album_artist": tags.album_artist, "genre": tags.genre, "year": tags.year,
        "track_number": tags.track_number, "comment": tags.comment,
        "bpm": None if tags.bpm is None else f"{tags.bpm:g}", "key": tags.key,
    }
    return {k: str(v) for k, v in values.items() if v is not None and str(v)}


def info_chunk(fields: Mapping[str, str]) -> bytes:
    """A ``LIST``/``INFO`` chunk (header included) of `fields`; empty when none applies.

    Each value is UTF-8, NUL-terminated, padded to an even length.
    """
    body = b""
    for field, cid in INFO_IDS.items():
        text = fields.get(field)
        if not text:
            continue
        data = text.encode("utf-8") + b"\x00"
        body += struct.pack("<4sI", cid, len(data)) + data + (b"\x00" if len(data) & 1 else b"")
    if not body:
        return b""
    return struct.pack("<4sI", b"LIST", 4 + len(body)) + b"INFO" + body


def _output_bits(src: Path, stream: av.audio.stream.AudioStream) -> int:
    """Bits per sample of the WAV: 16, 24 or 32 (see the module docstring).

    FFmpeg decodes 24-bit PCM, FLAC and ALAC to 32-bit samples; the source's own
    depth comes from its stream header as mutagen reads it (32 when unknown, so
    nothing is lost).
    """
    ctx = stream.codec_context
    fmt = ctx.format.name if ctx.format is not None else ""
    if not fmt.startswith("s32"):
        return 16
    try:
        source_bits = int(getattr(mutagen.File(src).info, "bits_per_sample", 0) or 0)
    except Exception:  # mutagen raises many types on files it does not know
        source_bits = 0
    return 24 if 0 < source_bits <= 24 else 32


def decode_to_wav(src: str | Path, dest: str | Path, *, fields: Mapping[str, str] | None = None,
                  cover: tuple[bytes, str] | None = None) -> wav.WavInfo:
    """Decode the first audio stream of `src` into a new PCM WAV file at `dest`.

    Frames are written as they are decoded (memory stays small whatever the
    length); the RIFF sizes are patched at the end. `dest` is created or
    truncated and is not synced: the caller decides when it is complete.

    Parameters
    ----------
    src : str or Path
        Any file FFmpeg decodes (MP3, FLAC, Ogg Vorbis, Opus, AIFF, M4A, ...).
    dest : str or Path
        Where to write the WAV file.
    fields : mapping of str to str, optional
        Tag text by field (``title``, ``artist``, ``album``, ``album_artist``,
        ``genre``, ``year``, ``track_number``, ``comment``, ``bpm``, ``key``), as
        :func:`tag_fields` gives them.
    cover : (bytes, str), optional
        Cover picture and its MIME type, stored as the ID3 front cover.

    Returns
    -------
    WavInfo
        Layout of the written file.

    Raises
    ------
    MediaError
        `src` cannot be opened or decoded, has no audio stream or no audio, or
        would not fit in a RIFF file (4 GiB of data).
    """
    src, dest = Path(src), Path(dest)
    fields = dict(fields or {})
    try:
        container = av.open(str(src))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(src, f"cannot open: {exc}") from exc
    with container, open(dest, "wb") as out:
        if not container.streams.audio:
            raise MediaError(src, "no audio stream")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        bits = _output_bits(src, stream)
        rate = ctx.sample_rate
        channels = ctx.channels
        if not rate or not channels:
            raise MediaError(src, "no sample rate or channel count")
        block = channels * bits // 8
        fmt = struct.pack("<HHIIHH", wav.WAVE_FORMAT_PCM, channels, rate, rate * block, block,
                          bits)
        header = (b"RIFF\x00\x00\x00\x00WAVE" + struct.pack("<4sI", b"fmt ", len(fmt)) + fmt
                  + info_chunk(fields))
        data_at = len(header) + 8
        out.write(header + b"data\x00\x00\x00\x00")
        resampler = av.AudioResampler(format="s16" if bits == 16 else "s32",
                                      layout=ctx.layout, rate=rate)
        size = 0

        def write(frames: list[av.AudioFrame]) -> None:
            nonlocal size
            for frame in frames:
                a = frame.to_ndarray()
                if bits == 24:  # the top three bytes of each little-endian int32
                    a = a.astype("<i4", copy=False).view(np.uint8).reshape(-1, 4)[:, 1:]
                raw = a.tobytes()
                size += len(raw)
                if size > _MAX_DATA:
                    raise MediaError(src, "more than 4 GiB of audio: too long for a WAV file")
                out.write(raw)

        try:
            for packet in demux_packets(container, stream):
                for frame in ctx.decode(packet):
                    write(resampler.resample(frame))
            for frame in ctx.decode(None):
                write(resampler.resample(frame))
            write(resampler.resample(None))
        except av.FFmpegError as exc:
            raise MediaError(src, f"cannot decode: {exc}") from exc
        if size == 0:
            raise MediaError(src, "no audio frames")
        if size & 1:
            out.write(b"\x00")
        out.seek(4)
        out.write(struct.pack("<I", data_at - 8 + size + (size & 1)))
        out.seek(data_at - 4)
        out.write(struct.pack("<I", size))
    if fields or cover:
        _write_id3(dest, fields, cover)
    return wav.read_info(dest)


def _write_id3(dest: Path, fields: Mapping[str, str], cover: tuple[bytes, str] | None) -> None:
    """Append an ``id3 `` chunk with `fields` and `cover` (ID3v2.3) to the WAV at `dest`."""
    audio = WAVE(dest)
    audio.add_tags()
    tags = audio.tags
    assert tags is not None
    for field, frame in _ID3_FRAMES.items():
        if fields.get(field):
            tags.add(frame(encoding=3, text=[fields[field]]))
    if fields.get("comment"):
        tags.add(COMM(encoding=3, lang="eng", desc="", text=[fields["comment"]]))
    if cover is not None:
        data, mime = cover
        tags.add(APIC(encoding=3, mime=mime, type=3, desc="Cover", data=data))
    audio.save(v2_version=3)
    os.utime(dest)
