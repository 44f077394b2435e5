"""Shared pieces of the container walkers: the fallback signal, byte ranges, tags.

Every walker reads a memory-mapped file (anything with the buffer protocol,
slicing and ``find``) and returns the byte ranges whose concatenation is what
FFmpeg's demuxer hands out as audio packets. When a walker meets anything it was
not written for it raises :class:`Unsupported` and the caller falls back to the
demuxer, so a walker never has to guess.
"""

from __future__ import annotations

import os
import struct
from typing import TypeAlias, overload

__all__ = ["Buf", "FileView", "Ranges", "Unsupported", "add_range", "id3v2_end", "read_u32be",
           "syncsafe", "tail_tags_start", "unpack_at"]

#: ``(start, stop)`` byte offsets, in hashing order.
Ranges: TypeAlias = list[tuple[int, int]]

_U32BE = struct.Struct(">I")
#: Bytes :class:`FileView` reads at a time.
_WINDOW = 64 * 1024


class Unsupported(Exception):
    """The file is outside what the walker vouches for: hash it through the demuxer."""


class FileView:
    """Read-only random access to an open file through ``os.pread``.

    Supports what the walkers use of ``bytes``: indexing, slicing (clipped to
    the file, like ``bytes``) and :meth:`find`. Reads go through one cached
    64 KiB window, so walking small structures costs few system calls. The
    file is not memory-mapped: a file truncated by another program while it is
    being read makes a read come up short (reported as :class:`Unsupported`)
    instead of raising ``SIGBUS``.

    Parameters
    ----------
    fd : int
        Open file descriptor (not closed by the view).
    size : int
        The file's size when it was opened.
    """

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self._start = 0
        self._data = b""

    def __len__(self) -> int:
        return self.size

    def read(self, pos: int, count: int) -> bytes:
        """Return `count` bytes from `pos` (fewer at the end of the file).

        Parameters
        ----------
        pos : int
            Offset, 0 <= `pos` <= size.
        count : int
            Bytes wanted.

        Returns
        -------
        bytes
            ``min(count, size - pos)`` bytes.

        Raises
        ------
        Unsupported
            The file is shorter than it was when opened.
        OSError
            The file cannot be read.
        """
        count = max(0, min(count, self.size - pos))
        offset = pos - self._start
        if offset >= 0 and offset + count <= len(self._data):
            return self._data[offset:offset + count]
        data = os.pread(self.fd, max(count, _WINDOW), pos)
        if len(data) < count:
            raise Unsupported("the file shrank while being read")
        if count <= _WINDOW:
            self._start, self._data = pos, data
        return data[:count]

    @overload
    def __getitem__(self, key: int) -> int: ...

    @overload
    def __getitem__(self, key: slice) -> bytes: ...

    def __getitem__(self, key: int | slice) -> int | bytes:
        if isinstance(key, slice):
            start, stop, _ = key.indices(self.size)
            return self.read(start, stop - start)
        if key < 0:
            key += self.size
        if not 0 <= key < self.size:
            raise IndexError("FileView index out of range")
        return self.read(key, 1)[0]

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        """Lowest offset of `sub` within ``[start, end)``, or -1 (like ``bytes.find``).

        Parameters
        ----------
        sub : bytes
            Non-empty byte string to look for.
        start, end : int
            Search window (clipped to the file).

        Returns
        -------
        int
            The offset, or -1.
        """
        end = self.size if end is None else min(end, self.size)
        step = 1 << 20
        while start + len(sub) <= end:
            stop = min(end, start + step + len(sub) - 1)
            found = self.read(start, stop - start).find(sub)
            if found >= 0:
                return start + found
            start += step
        return -1


#: What the walkers read: a file through :class:`FileView`, or its bytes.
Buf: TypeAlias = bytes | FileView


def unpack_at(fmt: str | struct.Struct, buf: Buf, pos: int) -> tuple[int, ...]:
    """Unpack a ``struct`` format at `pos` of `buf`.

    Parameters
    ----------
    fmt : str or struct.Struct
        Format of the fields.
    buf : bytes or FileView
        Where to read.
    pos : int
        Offset of the first field.

    Returns
    -------
    tuple
        The unpacked fields.

    Raises
    ------
    Unsupported
        The fields run past the end of `buf` (a structure cut short).
    """
    st = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
    raw = buf[pos:pos + st.size] if pos >= 0 else b""
    if len(raw) != st.size:
        raise Unsupported("structure runs past the end of the file")
    return st.unpack(raw)


def add_range(ranges: Ranges, start: int, stop: int) -> None:
    """Append ``[start, stop)`` to `ranges`, merging it into the last range if adjacent.

    Parameters
    ----------
    ranges : list of (int, int)
        Ranges collected so far; modified in place.
    start, stop : int
        Byte offsets; empty ranges are ignored.

    Returns
    -------
    None
    """
    if stop <= start:
        return
    if ranges and ranges[-1][1] == start:
        ranges[-1] = (ranges[-1][0], stop)
    else:
        ranges.append((start, stop))


def syncsafe(raw: bytes) -> int:
    """Decode a 28-bit ID3v2 "syncsafe" integer (7 bits per byte, big-endian).

    Parameters
    ----------
    raw : bytes
        At least four bytes; the high bit of each is masked off, as FFmpeg's
        ``id3v2.c`` does.

    Returns
    -------
    int
        The decoded value.
    """
    return (raw[0] & 0x7F) << 21 | (raw[1] & 0x7F) << 14 | (raw[2] & 0x7F) << 7 | raw[3] & 0x7F


def id3v2_end(buf: Buf, pos: int, size: int) -> int | None:
    """Where FFmpeg's ID3v2 reader leaves the file after a tag starting at `pos`.

    Mirrors ``ff_id3v2_match`` and the final seek of ``id3v2_parse`` in
    FFmpeg's ``libavformat/id3v2.c``: a header is ``"ID3"``, a version byte and a
    revision byte other than 0xFF, flags and a syncsafe size; the reader ends
    ``10 + size`` bytes after `pos`, plus the 10-byte footer of an ID3v2.4 tag
    that declares one (flag 0x10), unless the tag was skipped as unsupported
    (unknown version, ID3v2.2 compression, broken extended header), in which
    case the footer is not skipped. Source: ID3 tag version 2.4.0 - Main
    Structure (id3.org), sections 3.1 and 3.4.

    Parameters
    ----------
    buf : buffer
        The file's bytes.
    pos : int
        Offset to test.
    size : int
        Bytes of `buf` that belong to the file.

    Returns
    -------
    int or None
        The offset after the tag, or None if there is no ID3v2 header at `pos`.

    Raises
    ------
    Unsupported
        The extended header lies beyond the end of the file.
    """
    if pos + 10 > size:
        return None
    head = bytes(buf[pos:pos + 10])
    if (head[:3] != b"ID3" or head[3] == 0xFF or head[4] == 0xFF
            or (head[6] | head[7] | head[8] | head[9]) & 0x80):
        return None
    length = syncsafe(head[6:10])
    version, flags = head[3], head[5]
    end = pos + 10 + length
    parsed = version in (3, 4) or (version == 2 and not flags & 0x40)
    if parsed and version in (3, 4) and flags & 0x40:
        if pos + 14 > size:
            raise Unsupported("ID3v2 extended header beyond the end of the file")
        extlen = syncsafe(bytes(buf[pos + 10:pos + 14]))
        if version == 4:
            extlen -= 4
        if extlen < 0 or length - extlen - 4 < 0:
            parsed = False
    if parsed and version == 4 and flags & 0x10:
        end += 10
    return end


def tail_tags_start(fd: int, size: int) -> int:
    """Offset where the tags appended to a raw audio stream begin (`size` if none).

    Recognises, stacked in any order: ID3v1 (128 bytes ``TAG``, plus a 227-byte
    ``TAG+`` block before it), APEv2 (32-byte ``APETAGEX`` footer), Lyrics3 v1 and
    v2, and an appended ID3v2.4 tag with a footer (``3DI``).

    Parameters
    ----------
    fd : int
        Open file descriptor of the file (read with ``os.pread``).
    size : int
        The file's size in bytes.

    Returns
    -------
    int
        Offset of the first appended tag byte, or `size`.

    Raises
    ------
    OSError
        The file cannot be read.

    Notes
    -----
    Sources: ID3v1 and Lyrics3 descriptions on id3.org; APEv2 specification
    (wiki.hydrogenaud.io); ID3 tag version 2.4.0 - Main Structure, section 3.4.
    """
    end = size
    for _ in range(8):
        if end >= 128 and os.pread(fd, 3, end - 128) == b"TAG":
            end -= 128
            if end >= 227 and os.pread(fd, 4, end - 227) == b"TAG+":
                end -= 227
            continue
        tail = os.pread(fd, 32, end - 32) if end >= 32 else b""
        if tail[:8] == b"APETAGEX":
            tag_size, _items, flags = struct.unpack("<III", tail[12:24])
            total = tag_size + (32 if flags & 0x80000000 else 0)
            if 32 <= total <= end:
                end -= total
                continue
        if tail[-9:] == b"LYRICS200" and end >= 15 and tail[-15:-9].isdigit():
            start = end - 15 - int(tail[-15:-9])
            if start >= 0 and os.pread(fd, 11, start) == b"LYRICSBEGIN":
                end = start
                continue
        if tail[-9:] == b"LYRICSEND":
            window = max(0, end - 5100 - 20)
            found = os.pread(fd, end - window, window).rfind(b"LYRICSBEGIN")
            if found >= 0:
                end = window + found
                continue
        if tail[-10:-7] == b"3DI":
            start = end - syncsafe(tail[-4:]) - 20
            if start >= 0 and os.pread(fd, 3, start) == b"ID3":
                end = start
                continue
        break
    return end


def read_u32be(buf: bytes, pos: int, end: int) -> int:
    """Big-endian 32-bit value at `pos`, zero-filled past `end` like ``avio_rb32`` at EOF.

    Parameters
    ----------
    buf : buffer
        The file's bytes.
    pos : int
        Offset of the value.
    end : int
        End of the readable data (bytes from `end` on read as zero).

    Returns
    -------
    int
        The value.
    """
    if pos + 4 <= end:
        return int(_U32BE.unpack_from(buf, pos)[0])
    raw = bytes(buf[pos:end]) if pos < end else b""
    return int.from_bytes((raw + b"\0\0\0\0")[:4], "big")
