"""MPEG audio (MP3, MP2) elementary streams: the packets of FFmpeg's MPEG audio parser.

FFmpeg opens such a file with the ``mp3`` demuxer (``libavformat/mp3dec.c``):
the ID3v2 tag at the start is skipped, a first frame carrying a Xing, Info or
VBRI header is skipped when it declares a frame count or a byte count, and the
demuxer then resynchronises on the first two consecutive frames with matching
headers (``MP3_MASK``), searching at most 64 KiB. From there the raw bytes go
through the MPEG audio parser (``libavcodec/mpegaudio_parser.c``), which cuts
them at the end of every frame it finds: a packet is whatever lay before the
next valid frame header (junk) plus that frame, and at the end of the stream
the rest. :func:`taperoom.audio.hashing.audio_hash` keeps only packets that
start with an MPEG frame sync. :func:`mp3_ranges` replays all of this on the
bytes: for an ordinary file it is one contiguous range, for files with junk
between frames the packets that start with junk drop out exactly as they do in
the demuxed hash.

The fast path only takes files that FFmpeg's probe is sure to call MPEG audio:
at most one ID3v2 tag, then (after zero padding) seven chained frames without
sync emulation, as ``mp3_read_probe`` counts them.

Sources: ISO/IEC 11172-3 section 2.4.1.3 and ISO/IEC 13818-3 (frame header,
frame length = 144 * bitrate / sample rate (+ padding) for Layer III, 12 * ... *
4 for Layer I; MPEG 2.5 extension); the Xing/Info VBR header (LAME technical
documentation, "Mp3 Info Tag rev 1"); Fraunhofer VBRI header layout.
"""

from __future__ import annotations

import struct

from taperoom.audio.containers._base import (
    Buf,
    Ranges,
    Unsupported,
    add_range,
    id3v2_end,
    read_u32be,
)

__all__ = ["frame_size", "mp3_ranges"]

#: Header bits FFmpeg compares between two frames: sync, version, layer, sample
#: rate, channel mode, copyright, original, emphasis.
MP3_MASK = 0xFFFE0CCF

#: Bit rates in kbit/s by (low sampling frequency, layer).
_BITRATES: dict[tuple[int, int], tuple[int, ...]] = {
    (0, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (0, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (0, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (1, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (1, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (1, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = (44100, 48000, 32000)
#: Offset of the Xing/Info tag after the 4-byte header, by (lsf, mono).
_XING_OFFSET = {(0, False): 32, (0, True): 17, (1, False): 17, (1, True): 9}
_XING, _INFO, _VBRI = 0x58696E67, 0x496E666F, 0x56425249

_U32 = struct.Struct(">I")
#: Frame sizes by ``header >> 9`` (sync through padding bit); 0 for free format.
_SIZES: dict[int, int] = {}
#: The same for the headers the parser takes as frames (sizes of at least 4).
_FRAMES: dict[int, int] = {}
#: Candidate headers the junk search may test before giving up on a file.
_SEARCH_BUDGET = 200_000


def frame_size(header: int) -> int:
    """Length in bytes of the MPEG audio frame with this 32-bit header.

    Follows ``ff_mpa_check_header`` and ``avpriv_mpegaudio_decode_header`` in
    FFmpeg's ``libavcodec/mpegaudiodecheader.[ch]``: the 11-bit sync, a version
    other than the reserved one, a layer, a bit rate index other than 15 and a
    sample rate index other than 3 are required.

    Parameters
    ----------
    header : int
        Four bytes read big-endian.

    Returns
    -------
    int
        The frame length including the header; 0 for a free-format frame (bit
        rate index 0, which FFmpeg's parser does not take as a frame); -1 if the
        header is invalid.
    """
    key = header >> 9
    size = _SIZES.get(key)
    if size is not None:
        return size
    if (header & 0xFFE00000 != 0xFFE00000 or header & (3 << 19) == 1 << 19
            or not header & (3 << 17) or header & (0xF << 12) == 0xF << 12
            or header & (3 << 10) == 3 << 10):
        return -1
    if header & (1 << 20):
        lsf, mpeg25 = (0 if header & (1 << 19) else 1), 0
    else:
        lsf, mpeg25 = 1, 1
    layer = 4 - ((header >> 17) & 3)
    rate = _RATES[(header >> 10) & 3] >> (lsf + mpeg25)
    index = (header >> 12) & 0xF
    padding = (header >> 9) & 1
    if index == 0:
        size = 0
    else:
        kbps = _BITRATES[(lsf, layer)][index]
        if layer == 1:
            size = ((kbps * 12000) // rate + padding) * 4
        elif layer == 2:
            size = (kbps * 144000) // rate + padding
        else:
            size = (kbps * 144000) // (rate << lsf) + padding
    _SIZES[key] = size
    if size >= 4:
        _FRAMES[key] = size
    return size


def _probe_check(buf: bytes, off: int, end: int) -> None:
    """Raise :class:`Unsupported` unless FFmpeg's MP3 probe would score the stream high.

    Mirrors the ``first_frames >= 7`` case of ``mp3_read_probe``: after any zero
    bytes, seven chained frames, none containing more than two emulated headers.
    """
    zeros = 0
    while off < end and buf[off] == 0:
        off += 1
        zeros += 1
        if zeros > 65536:
            raise Unsupported("long zero run before the frames")
    for _ in range(7):
        if off + 4 > end:
            raise Unsupported("fewer than seven frames")
        header = _U32.unpack_from(buf, off)[0]
        size = frame_size(header)
        if size <= 0 or off + size > end:
            raise Unsupported("stream does not start with chained frames")
        target = header & MP3_MASK
        emulated = 0
        pos = off + 4
        while (pos := buf.find(b"\xff", pos, off + size)) >= 0:
            if pos + 4 <= end and _U32.unpack_from(buf, pos)[0] & MP3_MASK == target:
                emulated += 1
            pos += 1
        if emulated > 2:
            raise Unsupported("frame with emulated sync words")
        off += size


def _skip_vbr_frame(buf: bytes, off: int, end: int) -> int:
    """Where ``mp3_parse_vbr_tags`` leaves the demuxer: after a Xing/Info/VBRI frame or at `off`."""
    header = read_u32be(buf, off, end)
    size = frame_size(header)
    if size < 0 or 4 - ((header >> 17) & 3) != 3:
        return off
    lsf = 0 if header & (1 << 20) and header & (1 << 19) else 1
    mono = (header >> 6) & 3 == 3
    tag_at = off + 4 + _XING_OFFSET[(lsf, mono)]
    frames = length = 0
    if read_u32be(buf, tag_at, end) in (_XING, _INFO):
        flags = read_u32be(buf, tag_at + 4, end)
        at = tag_at + 8
        if flags & 1:
            frames = read_u32be(buf, at, end)
            at += 4
        if flags & 2:
            length = read_u32be(buf, at, end)
    if read_u32be(buf, off + 36, end) == _VBRI and read_u32be(buf, off + 40, end) >> 16 == 1:
        length = read_u32be(buf, off + 46, end)
        frames = read_u32be(buf, off + 50, end)
    if not frames and not length:
        return off
    return off + size


def _resync(buf: bytes, off: int, end: int) -> int:
    """The start ``mp3_read_header`` settles on: two chained frames within 64 KiB of `off`.

    Raises
    ------
    Unsupported
        The search would read past the end of the stream, which makes FFmpeg
        fail to open the file.
    """
    limit = min(off + 65536, end - 3)
    pos = off
    while (pos := buf.find(b"\xff", pos, limit)) >= 0:
        header = _U32.unpack_from(buf, pos)[0]
        size = frame_size(header)
        if size > 0:
            nxt = pos + size
            if nxt + 4 > end:
                raise Unsupported("resync reads past the end")
            second = _U32.unpack_from(buf, nxt)[0]
            if frame_size(second) > 0 and header & MP3_MASK == second & MP3_MASK:
                return pos
        pos += 1
    if limit < off + 65536:
        raise Unsupported("no frame pair before the end")
    return off


def _next_header(buf: bytes, pos: int, end: int, budget: list[int]) -> int:
    """First offset >= `pos` where the parser recognises a frame header (-1 if none)."""
    while (pos := buf.find(b"\xff", pos, end - 3)) >= 0:
        budget[0] -= 1
        if budget[0] < 0:
            raise Unsupported("too much junk between frames")
        if frame_size(_U32.unpack_from(buf, pos)[0]) >= 4:
            return pos
        pos += 1
    return -1


def _parse(buf: bytes, start: int, end: int) -> Ranges:
    """Replay the MPEG audio parser over ``[start, end)``; ranges of the kept packets."""
    ranges: Ranges = []
    frames = _FRAMES
    unpack = _U32.unpack_from
    budget = [_SEARCH_BUDGET]
    run = pos = start  # `run`: start of the current stretch of kept whole frames
    last = end - 4
    while pos <= last:
        header = unpack(buf, pos)[0]
        size = frames.get(header >> 9)
        if size is None and frame_size(header) < 4:
            # No frame here: the packet runs from `pos` to the end of the next frame.
            add_range(ranges, run, pos)
            found = _next_header(buf, pos + 1, end, budget)
            stop = end if found < 0 else min(found + frame_size(unpack(buf, found)[0]), end)
            if stop - pos >= 4 and buf[pos] == 0xFF and buf[pos + 1] & 0xE0 == 0xE0:
                add_range(ranges, pos, stop)
            run = pos = stop
            continue
        pos += size if size is not None else frame_size(header)
    # A frame cut short by the end of the stream is kept; 1 to 3 stray bytes are not.
    add_range(ranges, run, min(pos, end))
    return ranges


def mp3_ranges(buf: Buf, end: int) -> Ranges:
    """Byte ranges of the packets the MP3 demuxer hands out that start with a frame sync.

    Parameters
    ----------
    buf : bytes or FileView
        The whole file.
    end : int
        Where the stream ends: the file size, or the start of the tags appended
        to it (which are cut off before demuxing).

    Returns
    -------
    list of (int, int)
        The kept packets, adjacent ones merged.

    Raises
    ------
    Unsupported
        More than one ID3v2 tag, a start that FFmpeg's probe might not take for
        MPEG audio, a stream FFmpeg would fail to open, pathological junk, or no
        audio.
    """
    data = buf[0:end]
    off = 0
    tag_end = id3v2_end(data, 0, end)
    if tag_end is not None:
        off = tag_end
        if id3v2_end(data, off, end) is not None:
            raise Unsupported("stacked ID3v2 tags")
    if off + 4 > end:
        raise Unsupported("no audio after the ID3v2 tag")
    _probe_check(data, off, end)
    start = _resync(data, _skip_vbr_frame(data, off, end), end)
    ranges = _parse(data, start, end)
    if not ranges:
        raise Unsupported("no frames")
    return ranges
