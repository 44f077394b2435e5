"""Container walkers that find the bytes FFmpeg's demuxers hand out as audio packets.

:func:`taperoom.audio.hashing.audio_hash` hashes the packets of the first audio
stream as FFmpeg demuxes them. Demuxing through PyAV costs a Python object per
packet; for the common formats the same bytes can be found by reading the
container's own structure, which is several times cheaper. Each walker here
replays, on the file's bytes, what the corresponding FFmpeg demuxer (and, for
raw streams, parser) does, and returns the byte ranges whose concatenation is
the concatenation of the packets. A walker that meets anything it was not
written for raises :class:`Unsupported`; the caller then demuxes the file, so
the digest never depends on a walker guessing.

========  =======================================  ==========================
method    format                                   module
========  =======================================  ==========================
``wav``   WAV, RF64 (integer and float PCM)        :mod:`.riff`
``aiff``  AIFF, AIFF-C (uncompressed PCM)          :mod:`.aiff`
``flac``  native FLAC                              :mod:`.flac`
``mp3``   MPEG audio elementary streams            :mod:`.mpeg`
``ogg``   Ogg Vorbis, Ogg Opus (one stream)        :mod:`.ogg`
``mp4``   MP4/M4A with one AAC or ALAC track       :mod:`.mp4`
========  =======================================  ==========================
"""

from __future__ import annotations

from typing import NamedTuple

from taperoom.audio.containers._base import (
    Buf,
    FileView,
    Ranges,
    Unsupported,
    tail_tags_start,
)
from taperoom.audio.containers.aiff import aiff_ranges
from taperoom.audio.containers.flac import flac_ranges
from taperoom.audio.containers.mp4 import mp4_ranges
from taperoom.audio.containers.mpeg import mp3_ranges
from taperoom.audio.containers.ogg import ogg_ranges
from taperoom.audio.containers.riff import wav_ranges

__all__ = ["METHODS", "FileView", "Ranges", "Unsupported", "Walk", "audio_ranges",
           "tail_tags_start"]

#: Names :func:`audio_ranges` reports, one per walker.
METHODS = ("wav", "aiff", "flac", "mp3", "ogg", "mp4")

#: Largest raw stream (FLAC, MPEG audio, Ogg) read into memory for its walk.
MAX_STREAM_READ = 512 << 20


class Walk(NamedTuple):
    """Result of :func:`audio_ranges`.

    Attributes
    ----------
    method : str
        The walker's name, one of :data:`METHODS`.
    ranges : list of (int, int)
        File offsets of the audio packets' bytes, in order.
    data : bytes or None
        The file's first bytes when the walker read them all (the ranges then
        lie within it), else None.
    """

    method: str
    ranges: Ranges
    data: bytes | None


def audio_ranges(buf: Buf, size: int, fd: int) -> Walk:
    """Recognise the container by its first bytes and walk it.

    Parameters
    ----------
    buf : bytes or FileView
        The whole file.
    size : int
        Its size in bytes.
    fd : int
        An open descriptor of the same file, for finding appended tags.

    Returns
    -------
    Walk
        The walker's name, the byte ranges of the audio packets in order, and
        the bytes it read into memory (raw streams) or None.

    Raises
    ------
    Unsupported
        No walker recognises the file, or the walker refuses it.
    OSError
        The file cannot be read.

    Notes
    -----
    FLAC, MPEG audio and Ogg are raw streams to FFmpeg: tags appended to the
    file (ID3v1, APEv2, Lyrics3, a footer-terminated ID3v2) are cut off before
    demuxing, so their walkers stop where those tags start. WAV, AIFF and MP4
    locate their audio through their own structures and see the whole file.
    The magic numbers tested are those of the respective FFmpeg probes
    (``wav_probe``, ``aiff_probe``, ``mov_probe``, ``flac_probe``,
    ``ogg_probe``; MPEG audio after an optional ID3v2 tag).
    """
    head = bytes(buf[0:12])
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return Walk("wav", wav_ranges(buf, size), None)
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return Walk("aiff", aiff_ranges(buf, size), None)
    if head[4:8] == b"ftyp":
        return Walk("mp4", mp4_ranges(buf, size), None)
    is_flac = head[:4] == b"fLaC"
    is_ogg = head[:4] == b"OggS"
    is_mpeg = head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)
    if not (is_flac or is_ogg or is_mpeg):
        raise Unsupported("unrecognised container")
    end = tail_tags_start(fd, size)
    if not 0 < end < size:
        end = size
    if end > MAX_STREAM_READ:
        raise Unsupported("stream too large to read at once")
    data = buf[0:end]
    if is_flac:
        return Walk("flac", flac_ranges(data, end), data)
    if is_ogg:
        return Walk("ogg", ogg_ranges(data, end), data)
    return Walk("mp3", mp3_ranges(data, end), data)
