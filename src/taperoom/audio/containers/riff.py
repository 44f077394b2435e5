"""WAV (RIFF and RF64): the sample bytes of the ``data`` chunk, as FFmpeg demuxes them.

FFmpeg's ``wav`` demuxer (``libavformat/wavdec.c``) walks the chunks of a
seekable file to the end (remembering the *last* ``data`` chunk it meets and
parsing ``fmt``, ``LIST``, ``bext``, ``id3``, ``cue`` on the way), then hands
out the data chunk's bytes in blocks until the chunk's end (or the end of the
file, when the chunk is truncated or has no usable size); the last partial
block counts. After the chunk it looks for a further ``data`` chunk; files with
one go to the demuxer. Only integer and float PCM (format tags 1, 3 and
``WAVE_FORMAT_EXTENSIBLE`` with the PCM or float subformat) are accepted: other
codecs get an FFmpeg parser that may re-cut the stream, and PCM that carries an
IEC 61937 (S/PDIF) burst is demuxed by a different path.

Sources: Microsoft/IBM *Multimedia Programming Interface and Data
Specifications 1.0* (RIFF, ``fmt``, ``data``, ``LIST``), Microsoft
``WAVEFORMATEXTENSIBLE`` documentation, EBU Tech 3306 (RF64 ``ds64``), EBU Tech
3285 (``bext``), IEC 61937-1 (burst preamble Pa/Pb = 0xF872/0x4E1F).
"""

from __future__ import annotations

import struct

from taperoom.audio.containers._base import Buf, Ranges, Unsupported, unpack_at

__all__ = ["wav_ranges"]

_CHUNK = struct.Struct("<4sI")
_U32 = struct.Struct("<I")
_FMT = struct.Struct("<HHiIHH")
#: Tail of the ``KSDATAFORMAT_SUBTYPE_*`` GUIDs after the 16-bit format tag.
_SUBTYPE_TAIL = bytes.fromhex("000000001000800000aa00389b71")
#: IEC 61937 sync words as they appear in a little-endian PCM stream.
_SPDIF_SYNC = b"\x72\xf8\x1f\x4e"
#: How far ``ff_spdif_probe`` looks into a buffer (``2 * SPDIF_MAX_OFFSET``, plus a margin).
_SPDIF_PROBE = 65536
_INF = 1 << 62


def _check_fmt(buf: Buf, body: int, length: int, size: int) -> None:
    """Raise :class:`Unsupported` unless the ``fmt`` chunk describes plain PCM or float."""
    if length < 16 or body + length > size:
        raise Unsupported("short or truncated fmt chunk")
    tag, channels, rate, _byte_rate, block_align, bits = unpack_at(_FMT, buf, body)
    if rate <= 0 or channels == 0 or block_align == 0:
        raise Unsupported("fmt chunk without rate, channels or block alignment")
    if tag == 0xFFFE:
        if length < 40 or unpack_at("<H", buf, body + 16)[0] < 22:
            raise Unsupported("short WAVE_FORMAT_EXTENSIBLE")
        guid = bytes(buf[body + 24:body + 40])
        if guid[2:] != _SUBTYPE_TAIL:
            raise Unsupported("unknown WAVE_FORMAT_EXTENSIBLE subformat")
        tag = guid[0] | guid[1] << 8
    if not ((tag == 1 and bits in (8, 16, 24, 32)) or (tag == 3 and bits in (32, 64))):
        raise Unsupported(f"WAV format tag {tag:#x} with {bits} bits")


def wav_ranges(buf: Buf, size: int) -> Ranges:
    """Byte ranges of the audio packets FFmpeg's ``wav`` demuxer hands out.

    Parameters
    ----------
    buf : bytes or FileView
        The whole file.
    size : int
        Its size in bytes (WAV ignores appended tags, so the whole file counts).

    Returns
    -------
    list of (int, int)
        One range: the sample bytes of the data chunk, clipped to the file.

    Raises
    ------
    Unsupported
        Not a RIFF/RF64 WAVE file of integer or float PCM, or anything the walk
        cannot vouch for: missing or malformed ``fmt``, no ``data`` chunk, a
        second ``data`` chunk after the first, chunks FFmpeg would fail on
        (truncated ``bext`` or ``cue``, short ``LIST``), SMV video or XMA2,
        S/PDIF sync words, or a header the ACT demuxer would claim.
    """
    if size < 44:
        raise Unsupported("too short for a WAV file")
    magic = bytes(buf[0:4])
    if magic not in (b"RIFF", b"RF64") or bytes(buf[8:12]) != b"WAVE":
        raise Unsupported("not RIFF/RF64 WAVE")
    rf64 = magic == b"RF64"
    head = bytes(buf[0:512])
    # The ACT demuxer (libavformat/act.c) scores such headers above WAV.
    if (size >= 512 and head[16:20] == b"\x10\0\0\0" and not head[44:256].strip(b"\0")
            and head[256] == 0x84 and not head[264:512].strip(b"\0")):
        raise Unsupported("header the ACT demuxer claims")
    pos = 12
    rf64_data_size = 0
    if rf64:
        if bytes(buf[12:16]) != b"ds64":
            raise Unsupported("RF64 without ds64")
        ds_size = unpack_at(_U32, buf, 16)[0]
        rf64_data_size = unpack_at("<q", buf, 28)[0]
        if ds_size < 24 or rf64_data_size < 0:
            raise Unsupported("bad ds64 chunk")
        pos = 20 + ds_size
    got_fmt = False
    data_ofs = -1
    data_end = 0
    while pos + 8 <= size:
        tag, length = unpack_at(_CHUNK, buf, pos)
        body = pos + 8
        next_ofs = body + length
        if tag == b"fmt ":
            if not got_fmt:
                _check_fmt(buf, body, length, size)
            got_fmt = True
        elif tag == b"data":
            if rf64:
                data_end = next_ofs = body + rf64_data_size
            elif length != 0xFFFFFFFF:
                data_end = next_ofs = next_ofs if length else _INF
            else:
                data_end = next_ofs = _INF
            data_ofs = body
            if not rf64 and length == 0:
                break
        elif tag == b"bext":
            if body + max(602, length) > size:
                raise Unsupported("truncated bext chunk")
        elif tag in (b"LIST", b"list"):
            if length < 4:
                raise Unsupported("LIST chunk too short")
        elif tag == b"cue ":
            if length >= 4 and got_fmt:
                if body + 4 > size:
                    raise Unsupported("truncated cue chunk")
                cues = unpack_at(_U32, buf, body)[0]
                if length >= cues * 24 + 4 and body + 4 + cues * 24 > size:
                    raise Unsupported("truncated cue chunk")
        elif tag in (b"SMV0", b"XMA2"):
            raise Unsupported(f"WAV with a {tag!r} chunk")
        if next_ofs >= size:
            break
        pos = next_ofs + (next_ofs & 1)
    if not got_fmt or data_ofs < 0:
        raise Unsupported("no fmt or data chunk")
    stop = min(data_end, size)
    if stop <= data_ofs:
        raise Unsupported("empty data chunk")
    if buf.find(_SPDIF_SYNC, 0, min(size, max(_SPDIF_PROBE, data_ofs + 65536))) >= 0:
        raise Unsupported("possible IEC 61937 (S/PDIF) payload")
    # After the chunk, wav_read_packet looks for another "data" chunk (find_tag).
    pos = data_end
    while pos < size:
        if pos + 8 > size:
            if bytes(buf[pos:pos + 4]) == b"data":
                raise Unsupported("truncated second data chunk")
            break
        tag, length = unpack_at(_CHUNK, buf, pos)
        if tag == b"data":
            raise Unsupported("second data chunk")
        pos += 8 + length + (length & 1)
    return [(data_ofs, stop)]
