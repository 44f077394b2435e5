"""Ogg Vorbis and Ogg Opus: the data packets of the one logical stream, header packets excluded.

FFmpeg's ``ogg`` demuxer (``libavformat/oggdec.c``) checks every page's CRC
(skipping pages that fail), joins the segments of each packet across pages,
lets the codec module consume the header packets (Vorbis: identification,
comment, setup, ``oggparsevorbis.c``; Opus: ``OpusHead`` and ``OpusTags``,
``oggparseopus.c``) and hands out the other packets; a packet still incomplete
at the end of the file is dropped. The packets' bytes are therefore the page
bodies from the first data packet on, minus that trailing fragment.
:func:`ogg_ranges` walks the pages, verifies each CRC, replays the packet
assembly and the header checks FFmpeg makes (including the Vorbis setup header
scan of ``libavcodec/vorbis_parser.c``), and refuses files where FFmpeg would
skip, fail or do something else: several logical streams (multiplexed or
chained), a bad CRC, a page that continues a packet that never started, empty
or one-byte code-3 Opus packets, audio packets that start like a header (Opus
``OpusHead``/``OpusTags``, Vorbis packet types 1, 3 and 5: FFmpeg parses them
as the headers of a chained stream, and fails on them or drops them), or
granule positions Opus rejects.

Sources: RFC 3533 *The Ogg Encapsulation Format Version 0* (page header,
lacing values, continuation flag, CRC-32 with polynomial 0x04C11DB7, MSB first,
initial value 0); Xiph.Org *Vorbis I specification*, section 4.2 (header
packets); RFC 7845 *Ogg Encapsulation for the Opus Audio Codec*, sections 5.1
and 5.2; RFC 6716 section 3.1 (TOC byte).
"""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np

from taperoom.audio.containers._base import Buf, Ranges, Unsupported, add_range
from taperoom.audio.containers.avcrc import AV_CRC_32_IEEE, address_of, crc_function

__all__ = ["ogg_ranges", "vorbis_setup_ok"]

_PAGE = struct.Struct("<4sBBqIIIB")
#: A lacing value below 255 ends a packet (RFC 3533 section 5).
_PACKET_END = re.compile(rb"[^\xff]")
_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
_ZERO4 = bytes(4)
_CONTINUED, _BOS, _EOS = 1, 2, 4
#: FFmpeg's CRC-32 for Ogg pages, or None (then zlib on bit-reversed bytes).
_AV_CRC32 = crc_function(AV_CRC_32_IEEE)
_ZERO4_AT = address_of(_ZERO4)
#: Opus packets on a page with a granule position above this make FFmpeg fail.
_OPUS_MAX_GRANULE = 1 << 62
#: First bytes of Vorbis header packets (identification, comment, setup). An audio
#: packet starting with one of them after the headers makes FFmpeg fail (1, 3) or
#: drop it along with other packets (5).
_VORBIS_HEADER_BYTES = np.array([1, 3, 5], dtype=np.uint8)
#: Opus packets that start like a header: after the headers FFmpeg parses them as
#: headers again (chained streams), dropping valid ones and failing on others.
_OPUS_HEADERS = (b"OpusHead", b"OpusTags")


def _page_crc_ok(data: bytes, pos: int, end: int, flipped: memoryview | None,
                 base: int) -> bool:
    """Check the CRC of the Ogg page ``data[pos:end]`` (RFC 3533 section 6).

    The CRC covers the page with its CRC field zeroed. It is computed by
    FFmpeg's ``av_crc`` where available, which keeps the value byte-swapped, so
    it is compared with the stored little-endian field read big-endian (as
    ``oggdec.c`` does). Otherwise `flipped` holds the stream with the bits of
    every byte reversed: the MSB-first CRC of a page is the bit-reversed
    LSB-first CRC of its bit-reversed bytes, which zlib computes (with a zero
    register when the start value is 0xFFFFFFFF and the final XOR is undone).
    """
    field = data[pos + 22:pos + 26]
    if flipped is None:
        crc32 = _AV_CRC32
        assert crc32 is not None
        crc = crc32.at(base + pos, 22)
        crc = crc32.at(_ZERO4_AT, 4, crc)
        return crc32.at(base + pos + 26, end - pos - 26, crc) == int.from_bytes(field, "big")
    crc = zlib.crc32(flipped[pos:pos + 22], 0xFFFFFFFF)
    crc = zlib.crc32(_ZERO4, crc)
    crc = zlib.crc32(flipped[pos + 26:end], crc) ^ 0xFFFFFFFF
    return crc == int.from_bytes(field.translate(_REVERSED), "big")


def vorbis_setup_ok(packet: bytes) -> bool:
    """Whether FFmpeg's Vorbis parser accepts this setup header.

    Replays ``parse_setup_header`` of ``libavcodec/vorbis_parser.c``: it reads
    the packet backwards from the framing bit and needs to find a plausible
    mode count (1 to 63) from the trailing mode configurations (Vorbis I
    specification, section 4.2.4).

    Parameters
    ----------
    packet : bytes
        The complete setup header packet.

    Returns
    -------
    bool
        False where FFmpeg fails to open the stream.
    """
    if len(packet) < 7 or packet[0] != 5 or packet[1:7] != b"vorbis":
        return False
    total = len(packet) * 8
    value = int.from_bytes(packet[::-1], "big")

    def bits(pos: int, count: int) -> int:
        return (value >> (total - pos - count)) & ((1 << count) - 1)

    pos = 0
    framing = 0
    while total - pos > 97:
        pos += 1
        if bits(pos - 1, 1):
            framing = pos
            break
    if not framing:
        return False
    modes = last = 0
    while total - pos >= 97:
        if bits(pos, 8) > 63:
            break
        pos += 8
        if bits(pos, 16):
            break
        pos += 16
        if bits(pos, 16):
            break
        pos += 17
        modes += 1
        if modes > 64:
            break
        if bits(pos, 6) + 1 == modes:
            last = modes
    return 0 < last <= 63


def _short_packet(lacing: bytes, continued: bool) -> bool:
    """Whether a packet of 0 or 1 bytes starts on a page with these lacing values."""
    for value in (b"\0", b"\1"):
        at = lacing.find(value)
        while at >= 0:
            if (at == 0 and not continued) or (at > 0 and lacing[at - 1] < 255):
                return True
            at = lacing.find(value, at + 1)
    return False


class _Stream:
    """Packet assembly state of the one logical stream (``struct ogg_stream``)."""

    def __init__(self, buf: bytes, codec: str) -> None:
        self.buf = buf
        self.codec = codec
        self.pieces: Ranges = []  # byte ranges of the packet being assembled
        self.psize = 0
        self.headers: list[int] = []  # Vorbis header types seen, or Opus header count
        self.data = False
        self.first_data = 0  # file offset of the first audio packet
        self.ranges: Ranges = []
        #: Opus: the open packet began with fewer than 8 bytes on its page, so
        #: whether it starts like a header is only known on a later page.
        self.recheck = False

    def packet_bytes(self, limit: int | None = None) -> bytes:
        """The packet being assembled, or its first `limit` bytes."""
        out = b""
        for a, b in self.pieces:
            if limit is not None:
                b = min(b, a + limit - len(out))
            out += self.buf[a:b]
            if limit is not None and len(out) >= limit:
                break
        return out

    def header(self, flags: int) -> bool:
        """Consume a header packet; False when it is the first data packet."""
        if self.codec == "opus":
            if not self.headers:
                packet = self.packet_bytes(9)
                if (not flags & _BOS or self.psize < 19 or packet[:8] != b"OpusHead"
                        or packet[8] & 0xF0):
                    raise Unsupported("bad OpusHead")
            elif len(self.headers) == 1:
                if flags & _BOS or self.packet_bytes(8) != b"OpusTags":
                    raise Unsupported("bad OpusTags")
            else:
                return False
            self.headers.append(0)
            return True
        if self.psize == 0:
            raise Unsupported("empty Vorbis header packet")
        kind = self.buf[self.pieces[0][0]]
        if not kind & 1:
            if self.headers != [1, 3, 5]:
                raise Unsupported("Vorbis headers missing")
            return False
        expected = (1, 3, 5)[len(self.headers)] if len(self.headers) < 3 else 0
        if kind != expected:
            raise Unsupported("Vorbis headers out of order")
        if kind == 1:
            packet = self.packet_bytes()
            if len(packet) != 30:
                raise Unsupported("bad Vorbis identification header")
            rate, = struct.unpack_from("<i", packet, 12)
            small, large = packet[28] & 15, packet[28] >> 4
            if (packet[1:7] != b"vorbis" or packet[7:11] != _ZERO4 or not packet[11]
                    or rate <= 0 or small > large or small < 6 or large > 13 or packet[29] != 1):
                raise Unsupported("bad Vorbis identification header")
        elif kind == 5 and not vorbis_setup_ok(self.packet_bytes()):
            raise Unsupported("Vorbis setup header FFmpeg rejects")
        self.headers.append(kind)
        return True

    def complete(self, flags: int, granule: int) -> None:
        """A packet ended: let the codec consume it or keep its bytes."""
        if not self.data and not self.header(flags):
            self.data = True
            self.first_data = self.pieces[0][0] if self.pieces else 0
        if self.data:
            if self.codec == "opus":
                if self.psize == 0:
                    raise Unsupported("empty Opus packet")
                if self.psize == 1 and self.buf[self.pieces[0][0]] & 3 == 3:
                    raise Unsupported("one-byte Opus packet with code 3")
                if granule & 0xFFFFFFFFFFFFFFFF > _OPUS_MAX_GRANULE:
                    raise Unsupported("Opus granule position FFmpeg rejects")
                if self.packet_bytes(8) in _OPUS_HEADERS:
                    raise Unsupported("Opus header packet among the audio packets")
            for a, b in self.pieces:
                add_range(self.ranges, a, b)
        self.pieces = []
        self.psize = 0

    def page_exact(self, body: int, lacing: bytes, flags: int, granule: int) -> None:
        """Assemble the page's packets one by one (header pages, odd pages)."""
        pos = body
        start = 0
        for match in _PACKET_END.finditer(lacing):
            stop = match.end()
            size = sum(lacing[start:stop])
            self.pieces.append((pos, pos + size))
            self.psize += size
            pos += size
            start = stop
            self.complete(flags, granule)
        if start < len(lacing):
            size = sum(lacing[start:])
            self.pieces.append((pos, pos + size))
            self.psize += size

    def page_fast(self, body: int, lacing: bytes, flags: int, granule: int) -> None:
        """Assemble a data page whose packets need no per-packet checks."""
        closed = len(lacing.rstrip(b"\xff"))
        stop = body + sum(lacing)
        if not closed:
            self.pieces.append((body, stop))
            self.psize += stop - body
            return
        if self.codec == "opus" and granule & 0xFFFFFFFFFFFFFFFF > _OPUS_MAX_GRANULE:
            raise Unsupported("Opus granule position FFmpeg rejects")
        split = body + sum(lacing[:closed])
        for a, b in self.pieces:
            add_range(self.ranges, a, b)
        add_range(self.ranges, body, split)
        self.pieces = [(split, stop)] if stop > split else []
        self.psize = stop - split

    def check_open_start(self) -> None:
        """Opus: check the start of the packet left open at the end of a page."""
        if self.psize >= 8 and self.packet_bytes(8) in _OPUS_HEADERS:
            raise Unsupported("Opus header packet among the audio packets")
        self.recheck = 0 < self.psize < 8

    def page(self, body: int, lacing: bytes, flags: int, granule: int) -> None:
        """Feed one page (``ogg_read_page`` and ``ogg_packet``).

        Opus data pages go the exact way when a packet may start like a header:
        the page holds the bytes ``Opus``, or a packet begun on an earlier page
        has not shown its first 8 bytes yet (a packet's bytes on two pages are
        not adjacent in the file).
        """
        if flags & _CONTINUED and not self.psize:
            raise Unsupported("page continues a packet that never started")
        opus = self.codec == "opus"
        if not self.data or (opus and (self.recheck or _short_packet(lacing, self.psize > 0)
                                       or self.buf.find(b"Opus", body,
                                                        body + sum(lacing)) >= 0)):
            self.page_exact(body, lacing, flags, granule)
            if opus and self.data:
                self.check_open_start()
        else:
            self.page_fast(body, lacing, flags, granule)
            if opus:
                self.recheck = 0 < self.psize < 8


def _header_like_audio(data: bytes, bodies: list[int], lacings: list[bytes],
                       first_data: int) -> bool:
    """Whether a Vorbis audio packet from `first_data` on starts with a header type byte.

    A segment starts a packet when the segment before it, on this page or the
    one before (packets continue across pages), is shorter than 255 bytes
    (RFC 3533 section 5); empty packets have no first byte. Done for all pages
    at once: a per-page loop in Python tripled the walk's time.
    """
    lacing = np.frombuffer(b"".join(lacings), dtype=np.uint8)
    if not lacing.size:
        return False
    counts = np.fromiter(map(len, lacings), dtype=np.int64, count=len(lacings))
    page = np.repeat(np.arange(len(lacings)), counts)
    before = np.cumsum(lacing, dtype=np.int64) - lacing  # bytes before each segment
    page_first = np.cumsum(counts) - counts  # index of each page's first segment
    offset = np.asarray(bodies, dtype=np.int64)[page] + before - before[
        np.minimum(page_first, lacing.size - 1)][page]
    previous = np.concatenate(([0], lacing[:-1]))
    starts = offset[(previous < 255) & (lacing > 0)]
    starts = starts[starts >= first_data]
    firsts = np.frombuffer(data, dtype=np.uint8)[starts]
    return bool(np.isin(firsts, _VORBIS_HEADER_BYTES).any())


def ogg_ranges(buf: Buf, end: int) -> Ranges:
    """Byte ranges of the data packets FFmpeg's ``ogg`` demuxer hands out.

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
        The data packets' bytes, adjacent ranges merged.

    Raises
    ------
    Unsupported
        Not a single Vorbis or Opus logical stream, a page with a bad CRC or
        version, bytes after the last page that might hide another page,
        header packets FFmpeg would reject, packets FFmpeg would fail on, or no
        data packets.
    """
    if end < 28 or bytes(buf[0:5]) != b"OggS\0":
        raise Unsupported("not an Ogg stream")
    data = buf[0:end]
    flipped = None if _AV_CRC32 is not None else memoryview(data.translate(_REVERSED))
    base = address_of(data)  # `data` stays alive for the whole walk
    stream: _Stream | None = None
    serial0 = None
    eos = False
    pos = last = 0
    bodies: list[int] = []
    lacings: list[bytes] = []
    while pos + 27 <= end:
        magic, version, flags, granule, serial, _seq, _crc, nsegs = _PAGE.unpack_from(data, pos)
        if magic != b"OggS":
            break
        body = pos + 27 + nsegs
        if body > end:
            break
        lacing = data[pos + 27:body]
        page_end = body + sum(lacing)
        if page_end > end:
            break  # FFmpeg's read of the last page comes up short: end of stream
        if version != 0 or not _page_crc_ok(data, pos, page_end, flipped, base):
            raise Unsupported("page FFmpeg would skip")
        if stream is None:
            first = data[body:body + 8]
            if not flags & _BOS:
                raise Unsupported("first page is not a BOS page")
            if first[:7] == b"\x01vorbis":
                stream = _Stream(data, "vorbis")
            elif first == b"OpusHead":
                stream = _Stream(data, "opus")
            else:
                raise Unsupported("neither Vorbis nor Opus")
            serial0 = serial
        elif serial != serial0 or flags & _BOS or eos:
            raise Unsupported("more than one logical stream")
        eos = bool(flags & _EOS)
        stream.page(body, lacing, flags, granule)
        bodies.append(body)
        lacings.append(lacing)
        last, pos = pos, page_end
    # Anything after the last whole page is a truncated page (FFmpeg stops there)
    # or junk, where FFmpeg searches for a page sync from the last page on.
    if end - pos >= 4 and data[pos:pos + 4] != b"OggS" and \
            data.find(b"OggS", last + 4, end) >= 0:
        raise Unsupported("bytes after the last page hold a page sync")
    if stream is None or not stream.ranges:
        raise Unsupported("no data packets")
    if stream.codec == "vorbis" and _header_like_audio(data, bodies, lacings, stream.first_data):
        raise Unsupported("Vorbis audio packet that starts like a header")
    return stream.ranges
