"""Native FLAC: every byte from the first frame to the end of the stream.

FFmpeg's ``flac`` demuxer (``libavformat/flacdec.c``) reads the metadata
blocks (``STREAMINFO`` becomes extradata; ``PADDING``, ``APPLICATION``,
``SEEKTABLE``, ``VORBIS_COMMENT``, ``PICTURE`` are consumed) and then feeds the
rest of the file, read as raw bytes, to the FLAC parser
(``libavcodec/flac_parser.c``). The parser finds every valid frame header
(sync code, valid fields, CRC-8), scores chains of headers and cuts the stream
at the best chain. Where it doubts a link between two headers it checks the
CRC-16 over the frames between them and drops what fails; otherwise every
byte from the first frame to the end of the stream is handed out (appended
tags having been cut off first). The walker takes a file only when the CRC-16
over all of its frames is zero -- which is what every frame ending with its
own correct CRC gives, and what a damaged frame, a frame cut short or junk
after the last frame does not -- so that no check of the parser can fail. The
CRC is computed by FFmpeg's own ``av_crc`` (:mod:`.avcrc`); where that cannot
be bound, FLAC files are demuxed. When frames are very large (about 200 KB and
more) the parser gives up on the stream altogether, so the walker also
requires ``STREAMINFO`` to bound the frame size by 128 KiB, consistently with
the stream's length. Files with a ``CUESHEET`` (which FFmpeg may reject) or
an ID3v2 tag before ``fLaC`` go to the demuxer as well.

Sources: RFC 9639 *Free Lossless Audio Codec (FLAC)*, sections 8 (metadata
blocks, ``STREAMINFO``), 9.1 (frame header, CRC-8 with polynomial 0x07) and
9.3 (frame footer, CRC-16 with polynomial 0x8005).
"""

from __future__ import annotations

import struct

from taperoom.audio.containers._base import Ranges, Unsupported
from taperoom.audio.containers.avcrc import AV_CRC_16_ANSI, crc_function

__all__ = ["flac_ranges", "frame_header", "frame_header_ok"]

#: Metadata block types FFmpeg consumes without failing: STREAMINFO, PADDING,
#: APPLICATION, SEEKTABLE, VORBIS_COMMENT, PICTURE.
_BLOCK_TYPES = frozenset({0, 1, 2, 3, 4, 6})
#: Largest STREAMINFO maximum frame size accepted. FFmpeg's FLAC parser gives up
#: on a stream (no packets at all) when its buffer holds too few frame headers
#: for its size: with 6-channel 24-bit frames of 221 KB it hands out nothing, with
#: 197 KB frames everything (measured with FFmpeg 8.0).
_MAX_FRAME = 128 * 1024


def _crc8_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
        table.append(c)
    return table


_CRC8 = _crc8_table()


def frame_header(head: bytes) -> tuple[int, int, int, int] | None:
    """Decode the FLAC frame header at the start of `head` as FFmpeg's parser validates it.

    Checks the 15 sync and reserved bits ``0b111111111111100``, the reserved bit
    after the sample size, block size, sample rate, channel and sample size
    codes that are not reserved, the UTF-8-like coded frame or sample number
    (at most six bytes, as FFmpeg's ``GET_UTF8`` takes), and the CRC-8 of the
    header (RFC 9639, section 9.1; ``ff_flac_decode_frame_header`` in FFmpeg's
    ``libavcodec/flac.c``).

    Parameters
    ----------
    head : bytes
        Up to 16 bytes from the candidate frame start (a header cut short by
        the end of the stream is invalid).

    Returns
    -------
    (int, int, int, int) or None
        ``(number, block_size, stream_params, variable)``: the frame number (or
        first sample number with variable block size), the block size in
        samples, the bits that must not change between frames (blocking
        strategy, sample rate code and bytes, channel count, sample size code)
        as one integer, and 1 for variable block size; None if invalid.
    """
    if len(head) < 6 or head[0] != 0xFF or head[1] & 0xFE != 0xF8:
        return None
    bs_code, sr_code = head[2] >> 4, head[2] & 0x0F
    ch_code, bps_code = head[3] >> 4, (head[3] >> 1) & 0x07
    if bs_code == 0 or sr_code == 15 or ch_code > 10 or bps_code in (3, 7) or head[3] & 1:
        return None
    first = head[4]
    if first < 0x80:
        extra, number = 0, first
    elif 0xC0 <= first < 0xFE:
        extra = 1 if first < 0xE0 else 2 if first < 0xF0 else 3 if first < 0xF8 else \
            4 if first < 0xFC else 5
        number = first & (0x3F >> extra)
    else:  # continuation byte, or 0xFE/0xFF (FFmpeg's GET_UTF8 rejects them)
        return None
    pos = 5
    for _ in range(extra):
        if pos >= len(head) or head[pos] & 0xC0 != 0x80:
            return None
        number = number << 6 | head[pos] & 0x3F
        pos += 1
    if bs_code == 6:
        size_at, pos = pos, pos + 1
    elif bs_code == 7:
        size_at, pos = pos, pos + 2
    rate_at = pos
    pos += 1 if sr_code == 12 else 2 if sr_code in (13, 14) else 0
    if pos >= len(head):
        return None
    crc = 0
    for byte in head[:pos]:
        crc = _CRC8[crc ^ byte]
    if crc != head[pos]:
        return None
    if bs_code == 1:
        block = 192
    elif bs_code <= 5:
        block = 576 << (bs_code - 2)
    elif bs_code <= 7:
        block = int.from_bytes(head[size_at:rate_at], "big") + 1
    else:
        block = 256 << (bs_code - 8)
    channels = ch_code + 1 if ch_code < 8 else 2
    rate = int.from_bytes(head[rate_at:pos], "big") if pos > rate_at else 0
    params = (((head[1] & 1) << 4 | sr_code) << 20 | rate) << 8 | channels << 3 | bps_code
    return number, block, params, head[1] & 1


def frame_header_ok(head: bytes) -> bool:
    """Whether `head` starts with a FLAC frame header FFmpeg's parser accepts.

    Parameters
    ----------
    head : bytes
        Up to 16 bytes from the candidate frame start.

    Returns
    -------
    bool
        True for a valid header (see :func:`frame_header`).
    """
    return frame_header(head) is not None


def flac_ranges(buf: bytes, end: int) -> Ranges:
    """Byte ranges of the audio packets FFmpeg's ``flac`` demuxer and parser hand out.

    Parameters
    ----------
    buf : bytes
        The file's first `end` bytes (at least).
    end : int
        Where the stream ends: the file size, or the start of the tags appended
        to it (which are cut off before demuxing).

    Returns
    -------
    list of (int, int)
        One range, from the first frame to `end`.

    Raises
    ------
    Unsupported
        No ``fLaC`` marker at the start, a ``STREAMINFO`` that FFmpeg's probe
        would not score as FLAC or that allows frames over 128 KiB (or does not
        say), more bytes than the declared frames can hold, metadata blocks
        FFmpeg might reject or that run past the end, no audio, no frame header
        right after the metadata, or frames whose CRC-16 fails (or no way to
        compute it).
    """
    if end < 42 or buf[0:4] != b"fLaC":
        raise Unsupported("no fLaC marker")
    block = buf[4:8]
    min_block, max_block = struct.unpack_from(">HH", buf, 8)
    max_frame = int.from_bytes(buf[15:18], "big")
    rate = int.from_bytes(buf[18:21], "big") >> 4
    samples = int.from_bytes(buf[21:26], "big") & ((1 << 36) - 1)
    if (block[0] & 0x7F != 0 or int.from_bytes(block[1:4], "big") != 34 or min_block < 16
            or max_block < min_block or not 0 < rate <= 655350):
        raise Unsupported("STREAMINFO the FLAC probe would not accept")
    if not 0 < max_frame <= _MAX_FRAME:
        raise Unsupported("frames that may be too large for FFmpeg's FLAC parser")
    pos = 4
    last = False
    first = True
    while not last:
        if pos + 4 > end:
            raise Unsupported("metadata runs past the end")
        kind = buf[pos] & 0x7F
        last = bool(buf[pos] & 0x80)
        if kind not in _BLOCK_TYPES or (kind == 0) != first:
            raise Unsupported(f"metadata block type {kind}")
        first = False
        pos += 4 + int.from_bytes(buf[pos + 1:pos + 4], "big")
    if pos >= end:
        raise Unsupported("no audio frames")
    if frame_header(buf[pos:pos + 16]) is None:
        raise Unsupported("no frame header after the metadata")
    if samples and min_block == max_block and end - pos > -(-samples // max_block) * max_frame:
        raise Unsupported("more audio bytes than STREAMINFO allows")
    # Every frame ends with the CRC-16 of the frame, so the CRC over whole
    # frames is 0; anything else (a damaged frame, junk after the last frame, a
    # frame cut short) is what makes FFmpeg's parser drop bytes.
    crc16 = crc_function(AV_CRC_16_ANSI)
    if crc16 is None or crc16.of(buf, pos, end) != 0:
        raise Unsupported("frames that fail their CRC-16, or no CRC available")
    return [(pos, end)]
