"""AIFF and AIFF-C: the sample bytes of the ``SSND`` chunk, as FFmpeg demuxes them.

FFmpeg's ``aiff`` demuxer (``libavformat/aiffdec.c``) walks the chunks inside
the ``FORM`` chunk, counting down the FORM size, parses ``COMM`` (channels,
sample size, 80-bit sample rate, AIFF-C compression type) and remembers the
``SSND`` chunk; it then hands out the sound data from ``SSND`` data start + 8 +
its ``offset`` field up to the end of the chunk (or of the file), the last
partial block included. Only uncompressed PCM is accepted (AIFF, and AIFF-C
``NONE``, ``twos``, ``sowt``, ``in24``, ``in32``, ``fl32``, ``fl64``).

Sources: Apple *Audio Interchange File Format: "AIFF"*, version 1.3 (1989),
sections "Common Chunk" and "Sound Data Chunk"; Apple *AIFF-C* draft (1991).
"""

from __future__ import annotations

import struct

from taperoom.audio.containers._base import Buf, Ranges, Unsupported, id3v2_end, unpack_at

__all__ = ["aiff_ranges"]

_CHUNK = struct.Struct(">4si")
#: ``FVER`` timestamp of AIFF-C version 1; with any other version FFmpeg reads no
#: compression type.
_AIFC_VERSION1 = 0xA2805140
_COMM = struct.Struct(">HIHHQ")
#: AIFF-C compression types that are PCM, with their bits per sample (0: from COMM).
_AIFC_PCM = {b"NONE": 0, b"twos": 0, b"sowt": 16, b"in24": 24, b"in32": 32, b"fl32": 32,
             b"fl64": 64}
#: Chunks after ``SSND`` that older FFmpeg versions never read and newer ones do.
_LATE_FORBIDDEN = {b"COMM", b"SSND", b"APCM", b"wave", b"CHAN", b"FVER"}


def _block_align(buf: Buf, body: int, length: int, aifc: bool, size: int) -> int:
    """Block alignment of the sound described by a ``COMM`` chunk (``get_aiff_header``)."""
    if length < 18 or body + length > size:
        raise Unsupported("short or truncated COMM chunk")
    channels, frames, bits, exponent, mantissa = unpack_at(_COMM, buf, body)
    if frames >= 1 << 31:
        raise Unsupported("frame count FFmpeg reads as negative")
    exp = exponent - 16383 - 63
    if not -63 <= exp <= 63:
        raise Unsupported("sample rate exponent out of range")
    rate = mantissa << exp if exp >= 0 else (mantissa + (1 << (-exp - 1))) >> -exp
    rate = (rate + (1 << 31)) % (1 << 32) - (1 << 31)  # stored into a C int
    if rate <= 0 or channels == 0:
        raise Unsupported("bad sample rate or channel count")
    if aifc and length - 18 >= 4:
        kind = bytes(buf[body + 18:body + 22])
        if kind not in _AIFC_PCM:
            raise Unsupported(f"AIFF-C compression {kind!r}")
        bits = _AIFC_PCM[kind] or bits
    if not 1 <= bits <= 64:
        raise Unsupported(f"{bits} bits per sample")
    width = 8 if bits <= 8 else 16 if bits <= 16 else 24 if bits <= 24 else 32 if bits <= 32 else 64
    if width == 64 and not (aifc and bytes(buf[body + 18:body + 22]) == b"fl64"):
        raise Unsupported("more than 32 bits of integer PCM")
    align = width * channels >> 3
    if not 0 < align <= 4096:
        raise Unsupported("block alignment FFmpeg cannot packetise")
    return align


def aiff_ranges(buf: Buf, size: int) -> Ranges:
    """Byte ranges of the audio packets FFmpeg's ``aiff`` demuxer hands out.

    Parameters
    ----------
    buf : bytes or FileView
        The whole file.
    size : int
        Its size in bytes (AIFF ignores appended tags).

    Returns
    -------
    list of (int, int)
        One range: the sound data of ``SSND``, clipped to the file.

    Raises
    ------
    Unsupported
        Not a FORM AIFF/AIFC file of uncompressed PCM, no ``COMM`` or ``SSND``,
        more than one ``COMM``, chunks that would end or derail FFmpeg's walk
        differently (a chunk running past the end of the file, unless it is a
        cut-short ``SSND`` that ends the ``FORM``), or no data.
    """
    if size < 12 or bytes(buf[0:4]) != b"FORM":
        raise Unsupported("not an IFF FORM")
    kind = bytes(buf[8:12])
    if kind not in (b"AIFF", b"AIFC"):
        raise Unsupported("not AIFF/AIFC")
    aifc = kind == b"AIFC"
    remaining = unpack_at(">i", buf, 4)[0]
    if remaining < 0:
        remaining = 0x7FFFFFFF
    remaining -= 4
    pos = 12
    align = 0
    data_start = 0
    data_end = 0
    while remaining > 0:
        if pos + 8 > size:
            if pos >= size and align and data_start:
                break  # FFmpeg reads a zero tag at EOF and stops there
            raise Unsupported("chunk header beyond the end of the file")
        tag, length = unpack_at(_CHUNK, buf, pos)
        if length < 0:
            length = 0x7FFFFFFF
        remaining = 0 if length >= 0x7FFFFFFF - 8 else remaining - length - 8
        body = pos + 8
        if data_start and tag in _LATE_FORBIDDEN:
            raise Unsupported(f"{tag!r} chunk after SSND")
        if tag == b"COMM":
            if align:
                # FFmpeg parses every COMM but keeps the first one's block alignment.
                raise Unsupported("more than one COMM chunk")
            align = _block_align(buf, body, length, aifc, size)
            pos = body + length + (length & 1)
        elif tag == b"SSND":
            if length < 8:
                raise Unsupported("SSND chunk too short")
            data_end = body + length
            data_start = body + 8 + unpack_at(">I", buf, body)[0]
            pos = data_end
        elif tag == b"FVER":
            if body + 4 > size:
                raise Unsupported("truncated FVER chunk")
            aifc = unpack_at(">I", buf, body)[0] == _AIFC_VERSION1
            pos = body + 4  # FFmpeg reads the version and does not skip the rest
        elif tag == b"ID3 ":
            if length < 10:
                raise Unsupported("short ID3 chunk")
            end = body
            while end - body < length - 10:
                nxt = id3v2_end(buf, end, size)
                if nxt is None:
                    break
                end = nxt
            pos = max(body + length, end)
        elif tag in (b"APCM", b"wave", b"CHAN"):
            raise Unsupported(f"AIFF with a {tag!r} chunk")
        elif tag == b"\0\0\0\0" and data_start and align:
            break
        else:
            pos = body + length
        if length & 1:
            remaining -= 1
            pos += 1
        if pos > size and (tag != b"SSND" or remaining > 0):
            # FFmpeg's walk then goes on past the end of the file, and depending
            # on how its I/O buffer skips there it ends or fails (measured with
            # FFmpeg 8: an odd last chunk without its pad byte, a chunk longer
            # than the file, a cut SSND of a small file with more chunks counted
            # by FORM all fail). A cut SSND that FORM counts as the last chunk ends
            # the walk, and FFmpeg hands out the sound data up to the end.
            raise Unsupported(f"{tag!r} chunk runs past the end of the file")
    if not align or not data_start:
        raise Unsupported("no COMM or SSND chunk")
    stop = min(data_end, size)
    if stop <= data_start:
        raise Unsupported("no sound data")
    return [(data_start, stop)]
