"""MP4/M4A (ISO base media file format) with one AAC or ALAC track: its samples in order.

FFmpeg's ``mov`` demuxer (``libavformat/mov.c``) builds an index of the
track's samples from the sample table (``mov_build_index``): chunk offsets
(``stco``/``co64``), samples per chunk (``stsc``) and sample sizes (``stsz``);
within a chunk the samples follow each other. With an edit list it then
rebuilds the index (``mov_fix_index``): audio samples from one second before
the edit's media time on are kept (earlier ones flagged for discarding, but
still handed out) and the index stops after the first sample that reaches the
end of the edit. :func:`mp4_ranges` accepts the common case where that keeps
every sample -- no edit list, or one edit whose media time is less than one
second plus the first sample's duration and whose end lies after the last
sample's start (encoder delay and padding of AAC) -- and reads the samples'
byte ranges from the tables.

Everything else goes to the demuxer: fragmented files (``mvex``/``moof``),
boxes other than the usual ones at the top level or on the way to the sample
table (FFmpeg parses a box by its type wherever it meets it), several tracks,
a track before the movie header, other codecs or MPEG-1/2 audio in ``mp4a``
(which FFmpeg re-parses), encrypted or multiple sample descriptions, external
data references, sync-sample, composition-offset or compact-size tables,
sample groups other than roll recovery, raw PCM chunks, odd ``stsc`` entries,
samples outside the file.

Sources: ISO/IEC 14496-12 (ISO base media file format) sections 4.2 (box
header, 64-bit and to-end sizes), 8.3.2 (``tkhd``), 8.4.2 (``mdhd``), 8.4.3
(``hdlr``), 8.5.2 (sample entries), 8.6.1.2 (``stts``), 8.6.6 (``elst``),
8.7.2 (``dref``), 8.7.3 (``stsz``), 8.7.4 (``stsc``), 8.7.5 (``stco``/``co64``),
8.8 (movie fragments); ISO/IEC 14496-14 section 5.6 (``esds``); ISO/IEC
14496-1 section 7.2.6 (``ES_Descriptor``, ``DecoderConfigDescriptor``).
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterator
from itertools import accumulate, pairwise

from taperoom.audio.containers._base import Buf, Ranges, Unsupported, add_range, unpack_at

__all__ = ["mp4_ranges"]

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
#: MPEG-4 object type indications that FFmpeg maps to AAC (ISO/IEC 14496-1 table 5).
_AAC_OTI = frozenset({0x40, 0x66, 0x67, 0x68})
_AUDIO_ENTRY = 36  # box header + SampleEntry + AudioSampleEntry (version 0) fields
_INT64_MAX = (1 << 63) - 1
#: Largest ``moov`` box read into memory (cover art lives there).
_MAX_MOOV = 64 << 20
#: Top-level boxes that leave FFmpeg's track alone. FFmpeg parses a box by its
#: type wherever it meets it, so a ``dref``, ``stsd`` or ``tkhd`` after ``moov``
#: changes or breaks the last track, and ``sidx`` or a short ``uuid`` fail.
_TOP_LEVEL = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pdin",
                        b"udta", b"meta", b"uuid"})
_PADDING = frozenset({b"free", b"skip", b"wide"})
#: Boxes each container on the way to the sample table may hold; any other one
#: (a second ``mdia`` in ``moov``, an ``stsd`` in ``minf``, ...) goes to the
#: demuxer, which would parse it as if it were where it belongs.
_ALLOWED = {
    b"moov": frozenset({b"mvhd", b"trak", b"udta", b"meta", b"iods"}) | _PADDING,
    b"trak": frozenset({b"tkhd", b"edts", b"mdia", b"udta", b"meta", b"tref"}) | _PADDING,
    b"mdia": frozenset({b"mdhd", b"hdlr", b"minf", b"udta"}) | _PADDING,
    b"minf": frozenset({b"smhd", b"dinf", b"stbl", b"hdlr"}) | _PADDING,
    b"stbl": frozenset({b"stsd", b"stts", b"stsc", b"stsz", b"stco", b"co64", b"sgpd",
                        b"sbgp"}) | _PADDING,
}


def _boxes(buf: Buf, start: int, stop: int, top: bool = False) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, body_start, box_end)`` for the boxes in ``[start, stop)``.

    A box that does not fit ends a top-level walk (appended tags or junk, which
    FFmpeg skips the same way) and fails a nested one.
    """
    pos = start
    while pos + 8 <= stop:
        size = unpack_at(_U32, buf, pos)[0]
        kind = bytes(buf[pos + 4:pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > stop:
                size = 0
            else:
                size = unpack_at(_U64, buf, pos + 8)[0]
                header = 16
        elif size == 0:
            size = stop - pos
        if size < header or pos + size > stop:
            if top:
                return
            raise Unsupported(f"box {kind!r} does not fit")
        yield kind, pos + header, pos + size
        pos += size


def _children(buf: Buf, start: int, stop: int) -> dict[bytes, list[tuple[int, int]]]:
    found: dict[bytes, list[tuple[int, int]]] = {}
    for kind, body, end in _boxes(buf, start, stop):
        found.setdefault(kind, []).append((body, end))
    return found


def _only(boxes: dict[bytes, list[tuple[int, int]]], parent: bytes) -> None:
    """Refuse boxes that `parent` is not expected to hold (see :data:`_ALLOWED`)."""
    unexpected = set(boxes) - _ALLOWED[parent]
    if unexpected:
        raise Unsupported(f"{parent!r} holding {sorted(unexpected)!r}")


def _one(boxes: dict[bytes, list[tuple[int, int]]], kind: bytes) -> tuple[int, int]:
    found = boxes.get(kind, [])
    if len(found) != 1:
        raise Unsupported(f"{len(found)} {kind!r} boxes")
    return found[0]


def _table(buf: Buf, at: int, count: int, width: int, stop: int) -> array[int]:
    """`count` big-endian unsigned integers of `width` bytes at `at` (within `stop`)."""
    if at + count * width > stop:
        raise Unsupported("table runs past its box")
    values = array("I" if width == 4 else "Q")
    if values.itemsize != width:
        raise Unsupported("platform integer width")
    values.frombytes(bytes(buf[at:at + count * width]))
    values.byteswap()
    return values


def _descriptor(buf: Buf, pos: int, stop: int) -> tuple[int, int, int]:
    """``(tag, body_start, body_end)`` of the MPEG-4 descriptor at `pos` (14496-1, 8.3.3)."""
    if pos + 2 > stop:
        raise Unsupported("truncated descriptor")
    tag = buf[pos]
    pos += 1
    length = 0
    for _ in range(4):
        if pos >= stop:
            raise Unsupported("truncated descriptor")
        byte = buf[pos]
        pos += 1
        length = length << 7 | byte & 0x7F
        if not byte & 0x80:
            break
    return tag, pos, pos + length


def _check_esds(buf: Buf, body: int, stop: int) -> None:
    """Require an ``esds`` whose decoder config names AAC with a config FFmpeg accepts.

    Follows ``ff_mov_read_esds``, ``ff_mp4_parse_es_descr`` and
    ``ff_mp4_read_dec_config_descr`` (``libavformat/isom.c``): the
    ``AudioSpecificConfig`` must be non-empty, lie in the box, not be MPEG-4
    ALS and have a channel configuration below 15 (ISO/IEC 14496-3, 1.6.2.1).
    """
    tag, pos, end = _descriptor(buf, body + 4, stop)
    if tag != 3 or end > stop or pos + 3 > end:
        raise Unsupported("no ES_Descriptor")
    flags = buf[pos + 2]
    pos += 3
    if flags & 0x80:
        pos += 2
    if flags & 0x40:
        pos += 1 + buf[pos]
    if flags & 0x20:
        pos += 2
    tag, pos, config_end = _descriptor(buf, pos, end)
    if tag != 4 or pos + 13 > config_end or config_end > end or buf[pos] not in _AAC_OTI:
        raise Unsupported("mp4a that is not AAC")
    if pos + 13 == config_end:
        return  # no DecoderSpecificInfo: nothing for FFmpeg to reject
    tag, pos, info_end = _descriptor(buf, pos + 13, config_end)
    if tag != 5:
        return
    if info_end - pos < 2 or info_end > config_end:
        raise Unsupported("empty or overlong AudioSpecificConfig")
    bits = int.from_bytes(buf[pos:pos + 2], "big")
    object_type = bits >> 11
    index = (bits >> 7) & 0xF
    if object_type == 31 or index == 15:
        raise Unsupported("AudioSpecificConfig with escape codes")
    if object_type == 36 or (bits >> 3) & 0xF == 15:
        raise Unsupported("ALS or invalid channel configuration")


def _check_sample_entry(buf: Buf, body: int, stop: int) -> None:
    """Require exactly one ``mp4a`` (AAC) or ``alac`` sample entry using data reference 1."""
    if body + 8 > stop or unpack_at(_U32, buf, body + 4)[0] != 1:
        raise Unsupported("not exactly one sample description")
    boxes = list(_boxes(buf, body + 8, stop))
    if len(boxes) != 1:
        raise Unsupported("sample descriptions do not fit")
    kind, entry, end = boxes[0]
    if kind not in (b"mp4a", b"alac") or entry + 28 > end:
        raise Unsupported(f"sample entry {kind!r}")
    if unpack_at(_U32, buf, body + 8)[0] != end - (body + 8):
        # FFmpeg's stsd reader takes the 32-bit size as it is (no 0 for "to the
        # end", no 64-bit size) and fails on sizes below 8.
        raise Unsupported("sample entry size other than its plain 32-bit length")
    if unpack_at(">H", buf, entry + 6)[0] != 1:
        raise Unsupported("sample entry uses another data reference")
    version = unpack_at(">H", buf, entry + 8)[0]
    fixed = {0: _AUDIO_ENTRY, 1: _AUDIO_ENTRY + 16, 2: _AUDIO_ENTRY + 36}.get(version)
    if fixed is None or entry - 8 + fixed > end:
        raise Unsupported("unknown sound sample description version")
    if kind == b"alac":
        return
    children = _children(buf, entry - 8 + fixed, end)
    if b"wave" in children:
        wave_body, wave_end = _one(children, b"wave")
        children = _children(buf, wave_body, wave_end)
    esds_body, esds_end = _one(children, b"esds")
    _check_esds(buf, esds_body, esds_end)


def _check_dref(buf: Buf, minf: dict[bytes, list[tuple[int, int]]]) -> None:
    """Require the first data reference to be this file (``url `` with flag 1, no location)."""
    if b"dinf" not in minf:
        return
    dinf = _children(buf, *_one(minf, b"dinf"))
    body, stop = _one(dinf, b"dref")
    entries = list(_boxes(buf, body + 8, stop)) if body + 8 <= stop else []
    # FFmpeg reads each entry's size as 32 bits and wants at least 12 (mov_read_dref),
    # so the 0 ("to the end") and 1 (64-bit) of other boxes do not apply here.
    if (len(entries) != 1 or unpack_at(_U32, buf, body + 4)[0] != 1
            or unpack_at(_U32, buf, body + 8)[0] != 12
            or entries[0][0] != b"url " or entries[0][2] - entries[0][1] != 4
            or entries[0][2] != stop or not buf[entries[0][1] + 3] & 1):
        raise Unsupported("data reference other than this file")


def _full(buf: Buf, body: int, stop: int) -> tuple[int, int]:
    """Version and entry count of a full box holding a table."""
    if body + 8 > stop:
        raise Unsupported("truncated table box")
    return buf[body], unpack_at(_U32, buf, body + 4)[0]


def _edit_keeps_all(buf: Buf, edts: tuple[int, int], durations: list[tuple[int, int]],
                    samples: int, media_scale: int, movie_scale: int) -> bool:
    """Whether ``mov_fix_index`` keeps every sample under this edit list."""
    elst_body, elst_end = _one(_children(buf, *edts), b"elst")
    version, count = _full(buf, elst_body, elst_end)
    if count != 1 or movie_scale == 0 or version > 1:
        return False
    if elst_end - elst_body != 8 + (20 if version == 1 else 12):
        return False  # FFmpeg derives the entry count from the box size
    at = elst_body + 8
    if version == 1:
        if at + 20 > elst_end:
            return False
        duration, media_time = unpack_at(">Qq", buf, at)
    else:
        if at + 12 > elst_end:
            return False
        duration, media_time = unpack_at(">Ii", buf, at)
    if media_time < 0:
        return False
    edit = (duration * media_scale + movie_scale // 2) // movie_scale
    if edit + media_time > _INT64_MAX:
        edit = 0
    # Decode times of the second and the last sample, stepping through stts as
    # mov_build_index does (the last entry's delta repeats; a zero count sticks).
    first_delta = durations[0][1]
    before_last = 0
    left = samples - 1
    for i, (count_i, delta) in enumerate(durations):
        take = left if i == len(durations) - 1 or count_i == 0 else min(count_i, left)
        before_last += take * delta
        left -= take
        if not left:
            break
    search = max(media_time - media_scale, 0)
    return search < first_delta and before_last < edit + media_time


def mp4_ranges(buf: Buf, size: int) -> Ranges:
    """Byte ranges of the samples FFmpeg's ``mov`` demuxer hands out, in decode order.

    Parameters
    ----------
    buf : bytes or FileView
        The whole file.
    size : int
        Its size in bytes (MP4 ignores anything not referenced by its tables).

    Returns
    -------
    list of (int, int)
        The samples' byte ranges, adjacent ones merged.

    Raises
    ------
    Unsupported
        Anything but a plain, unfragmented file with a single AAC or ALAC track
        whose samples all lie in the file and all survive the edit list.
    """
    if size < 16 or bytes(buf[4:8]) != b"ftyp":
        raise Unsupported("no ftyp box at the start")
    top = _children_top(buf, size)
    if b"moof" in top or b"mfra" in top:
        raise Unsupported("fragmented MP4")
    if set(top) - _TOP_LEVEL:
        raise Unsupported(f"top-level boxes {sorted(set(top) - _TOP_LEVEL)!r}")
    if any(end - body < 16 for body, end in top.get(b"uuid", [])):
        raise Unsupported("uuid box shorter than its UUID")
    moov_body, moov_end = _one(top, b"moov")
    if moov_end - moov_body > _MAX_MOOV:
        raise Unsupported("moov box too large to read at once")
    buf = buf[moov_body:moov_end]  # offsets below are within the moov box
    moov = _children(buf, 0, len(buf))
    if b"mvex" in moov:
        raise Unsupported("fragmented MP4")
    _only(moov, b"moov")
    mvhd_body, _mvhd_end = _one(moov, b"mvhd")
    movie_scale = unpack_at(_U32, buf, mvhd_body + (20 if buf[mvhd_body] == 1 else 12))[0]
    trak_body, trak_end = _one(moov, b"trak")
    if trak_body < mvhd_body:
        # FFmpeg reads the boxes in order: the track's edit list would meet a
        # movie time scale of 0, which it does not support (no packets at all).
        raise Unsupported("trak before mvhd")
    trak = _children(buf, trak_body, trak_end)
    _only(trak, b"trak")
    mdia = _children(buf, *_one(trak, b"mdia"))
    _only(mdia, b"mdia")
    mdhd_body, _ = _one(mdia, b"mdhd")
    if buf[mdhd_body] > 1 or buf[mvhd_body] > 1:
        raise Unsupported("unknown mvhd or mdhd version")
    media_scale = unpack_at(_U32, buf, mdhd_body + (20 if buf[mdhd_body] == 1 else 12))[0]
    hdlr_body, _ = _one(mdia, b"hdlr")
    if bytes(buf[hdlr_body + 8:hdlr_body + 12]) != b"soun" or not 0 < media_scale < 1 << 31:
        raise Unsupported("not a sound track")
    minf = _children(buf, *_one(mdia, b"minf"))
    _only(minf, b"minf")
    _check_dref(buf, minf)
    stbl = _children(buf, *_one(minf, b"stbl"))
    _only(stbl, b"stbl")
    for kind in (b"stss", b"ctts", b"stz2", b"stps"):
        if kind in stbl:
            raise Unsupported(f"sample table with {kind!r}")
    for body, stop in stbl.get(b"sbgp", []):
        # Roll-recovery groups only matter to decoders; random-access groups
        # change FFmpeg's key frames and with them the edit list handling.
        if body + 8 > stop or bytes(buf[body + 4:body + 8]) not in (b"roll", b"prol"):
            raise Unsupported("sample groups other than roll recovery")
    _check_sample_entry(buf, *_one(stbl, b"stsd"))

    body, stop = _one(stbl, b"stsz")
    _, constant = _full(buf, body, stop)
    samples = unpack_at(_U32, buf, body + 8)[0] if body + 12 <= stop else 0
    if not samples:
        raise Unsupported("no samples")
    sizes = None if constant else _table(buf, body + 12, samples, 4, stop)
    if max(sizes or [constant]) > 0x3FFFFFFF:
        raise Unsupported("sample too large for FFmpeg")

    body, stop = _one(stbl, b"stts")
    _, count = _full(buf, body, stop)
    flat = _table(buf, body + 8, 2 * count, 4, stop)
    durations = list(zip(flat[0::2], flat[1::2], strict=True))
    if not durations or any(d == 0 or d >= 1 << 31 for _, d in durations):
        raise Unsupported("odd sample durations")
    if len(durations) == 1 and durations[0][1] == 1:
        raise Unsupported("raw audio chunks")

    body, stop = _one(stbl, b"stsc")
    _, count = _full(buf, body, stop)
    flat = _table(buf, body + 8, 3 * count, 4, stop)
    firsts, per_chunk, ids = flat[0::3], flat[1::3], flat[2::3]
    if (not count or firsts[0] != 1 or any(b <= a for a, b in pairwise(firsts))
            or min(per_chunk) < 1 or any(i != 1 for i in ids)):
        raise Unsupported("odd stsc entries")

    if (b"stco" in stbl) == (b"co64" in stbl):
        raise Unsupported("not exactly one chunk offset box")
    wide = b"co64" in stbl
    body, stop = _one(stbl, b"co64" if wide else b"stco")
    _, chunks = _full(buf, body, stop)
    offsets = _table(buf, body + 8, chunks, 8 if wide else 4, stop)

    if b"edts" in trak and not _edit_keeps_all(buf, _one(trak, b"edts"), durations, samples,
                                               media_scale, movie_scale):
        raise Unsupported("edit list drops samples")

    ends = list(accumulate(sizes, initial=0)) if sizes is not None else None
    ranges: Ranges = []
    entry = 0
    sample = 0
    for chunk, offset in enumerate(offsets, 1):
        while entry + 1 < count and firsts[entry + 1] == chunk:
            entry += 1
        n = per_chunk[entry]
        if sample + n > samples:
            raise Unsupported("sample to chunk table overruns the sample count")
        length = ends[sample + n] - ends[sample] if ends is not None else n * constant
        if offset + length > size:
            raise Unsupported("samples beyond the end of the file")
        add_range(ranges, offset, offset + length)
        sample += n
    if sample != samples:
        raise Unsupported("chunks hold fewer samples than stsz")
    return ranges


def _children_top(buf: Buf, size: int) -> dict[bytes, list[tuple[int, int]]]:
    found: dict[bytes, list[tuple[int, int]]] = {}
    for kind, body, end in _boxes(buf, 0, size, top=True):
        found.setdefault(kind, []).append((body, end))
    return found
