"""Audio files over HTTP (the ephemeral ``GET /stream/<f>``, the library's
``GET /api/tracks/{id}/audio``): Starlette's ``FileResponse`` with cheaper block reads.

Every real-time listener takes 176,400 bytes/s for as long as it listens, so the
cost of sending a second of audio bounds how many listeners one server holds.
Starlette reads each 64 KiB block in a worker thread (one thread round trip and
GIL hand-over per block). Here blocks are 256 KiB and are read on the event loop
with ``preadv(RWF_NOWAIT)``, which copies from the page cache and never waits
for the disk; only bytes that are not cached (and the end of the file) are read
in a worker thread. The worn tracks are read and written all the time, so they
are normally cached.

Ranges follow RFC 9110 §14 rather than Starlette's own policy: a ``Range``
header that is not a valid ``bytes`` range set is ignored (the whole file, 200;
Starlette answers a plain-text 400), a set is unsatisfiable (416) only when none
of its ranges overlaps the file, and ranges past the end are left out of a set
that has others. A 416 is raised as :class:`~taperoom.errors.RangeNotSatisfiable`,
so that the app answers it through its error mapping (:mod:`taperoom.web.errors`),
like any other error, instead of Starlette's empty plain-text 416.

Measured with 200 real-time listeners (streams only, one worker) on the 2-core
benchmark machine, server CPU per second of audio sent: 1.55 ms with
Starlette's reads, 1.13 ms with 256 KiB blocks read in threads, 0.72-0.85 ms
with the reads below. Other programs were loading the machine, so the ratios
matter more than the figures; BENCHMARKS.md has the whole benchmark.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from starlette.responses import FileResponse

from taperoom.errors import RangeNotSatisfiable

_RWF_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)

#: ``range-unit`` is a ``token`` (RFC 9110 §14.1, §5.6.2).
_UNIT = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: One ``int-range`` (``first-pos "-" [ last-pos ]``) or ``suffix-range`` (``"-" suffix-length``)
#: of RFC 9110 §14.1.1, with the optional whitespace of a list element (§5.6.1).
_SPEC = re.compile(r"[ \t]*(?:([0-9]+)-([0-9]*)|-([0-9]+))[ \t]*")
#: More ranges than this in one header and the header is ignored (as Starlette does).
MAX_RANGES = 100
#: Positions with more digits than this are past the end of any file (2**63 has 19 digits).
_MAX_DIGITS = 19

#: A parsed range: ``(first, last)`` of an int-range (``last`` None when open), or
#: ``(None, length)`` of a suffix range.
RangeSpec = tuple[int | None, int | None]


def _position(digits: str) -> int:
    """The value of ``1*DIGIT``, capped past any file size (no 4,300-digit ``int`` limit)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10 ** _MAX_DIGITS


def parse_range_header(value: str | None) -> list[RangeSpec] | None:
    """The ranges of a ``Range`` header, or None when the header is to be ignored.

    Parameters
    ----------
    value : str or None
        The header's value.

    Returns
    -------
    list of (first, last) or (None, suffix_length), or None
        In request order, positions inclusive as written. None when there is no
        header, its unit is not ``bytes`` (which a server must ignore, RFC 9110
        §14.2), it does not match the ``ranges-specifier`` grammar of §14.1.1
        (including an int-range whose last position is before its first: invalid,
        §14.1.1), or it holds more than :data:`MAX_RANGES` ranges; §14.2 lets a
        server ignore such a header and send the whole representation.
    """
    if not value:
        return None
    unit, sep, rest = value.partition("=")
    if not sep or not _UNIT.fullmatch(unit) or unit.lower() != "bytes":
        return None
    specs: list[RangeSpec] = []
    for element in rest.split(","):  # 1#range-spec: empty elements are allowed
        if not element.strip(" \t"):
            continue
        m = _SPEC.fullmatch(element)
        if m is None:
            return None
        first, last, suffix = m.groups()
        if suffix is not None:
            specs.append((None, _position(suffix)))
            continue
        start = _position(first)
        end = _position(last) if last else None
        if end is not None and end < start:
            return None
        specs.append((start, end))
    if not specs or len(specs) > MAX_RANGES:
        return None
    return specs


def byte_ranges(value: str | None, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges of a file of `size` bytes that a ``Range`` header asks for.

    Parameters
    ----------
    value : str or None
        The ``Range`` header.
    size : int
        Length of the file in bytes.

    Returns
    -------
    list of (start, stop) or None
        Half-open byte ranges, sorted, overlapping ones merged (RFC 9110 §14.1.1
        lets a server coalesce them), ranges past the end left out; None when the
        whole file is to be sent with 200 (no header, or one that
        :func:`parse_range_header` ignores, or a suffix range of an empty file).

    Raises
    ------
    RangeNotSatisfiable
        The header is valid but no range overlaps the file: every first position
        is at or past `size`, every suffix length is zero (RFC 9110 §14.1.1,
        §15.5.17).
    """
    specs = parse_range_header(value)
    if specs is None:
        return None
    ranges: list[tuple[int, int]] = []
    for first, last in specs:
        if first is None:
            assert last is not None
            if last > 0 and size > 0:
                ranges.append((max(size - last, 0), size))
            elif last > 0:  # §14.1.3: a suffix range is satisfiable by an empty file
                return None
        elif first < size:
            ranges.append((first, size if last is None else min(last + 1, size)))
    if not ranges:
        raise RangeNotSatisfiable(f"Range not satisfiable: the file has {size} bytes", size)
    ranges.sort()
    merged = [ranges[0]]
    for start, stop in ranges[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def sent_from_first_byte(value: str | None) -> bool:
    """True when a GET with this ``Range`` header gets the file from its first byte.

    That is: no header, an ignored one (:func:`parse_range_header`), or one
    whose first range starts at byte 0 (``bytes=0-``, what players send first).
    """
    specs = parse_range_header(value)
    return specs is None or specs[0][0] == 0


class CachedFileReader:
    """The ``seek``/``read`` part of an async file, reading from the page cache inline.

    Parameters
    ----------
    fd : int
        Open file descriptor; closed by :meth:`aclose`.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pos = 0
        #: Reads answered wholly from the page cache, and those that needed a thread.
        self.inline_reads = 0
        self.thread_reads = 0

    async def seek(self, offset: int) -> int:
        """Move to byte `offset` from the start."""
        self.pos = offset
        return offset

    async def read(self, size: int) -> bytes:
        """Up to `size` bytes from the current position (fewer only at the end of the file)."""
        got = b""
        if _RWF_NOWAIT is not None and size > 0:
            buf = bytearray(size)
            try:
                n = os.preadv(self.fd, [buf], self.pos, _RWF_NOWAIT)
            except OSError:  # not cached (EAGAIN) or flag unsupported: read in a thread
                n = 0
            got = bytes(memoryview(buf)[:n])
        if len(got) < size:
            rest = await anyio.to_thread.run_sync(os.pread, self.fd, size - len(got),
                                                  self.pos + len(got))
            got += rest
            self.thread_reads += 1
        else:
            self.inline_reads += 1
        self.pos += len(got)
        return got

    async def aclose(self) -> None:
        """Close the descriptor."""
        os.close(self.fd)


class AudioFileResponse(FileResponse):
    """``FileResponse`` (single and multiple ranges, HEAD, ETag) sending 256 KiB
    blocks read by :class:`CachedFileReader`, with ranges chosen by :func:`byte_ranges`.

    Starlette still handles ``If-Range``, writes the headers, sends the parts and
    stops on disconnect; an ignored ``Range`` header reaches it as an empty range
    list, on which it sends the whole file. An unsatisfiable one raises
    :class:`~taperoom.errors.RangeNotSatisfiable` from the response before
    anything is sent, for the app's exception handlers (a route's response is
    sent inside them). Should a Starlette version stop
    opening files through ``_open_file`` or parsing through
    ``_parse_range_header``, tests/ephemeral/test_filestream.py fails.
    """

    chunk_size = 256 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reader: CachedFileReader | None = None

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        """Starlette's hook: :func:`byte_ranges`, ``[]`` for the whole file.

        Raises
        ------
        RangeNotSatisfiable
            No range overlaps the file.
        """
        return byte_ranges(http_range, file_size) or []

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[Any]:
        fd = await anyio.to_thread.run_sync(os.open, self.path, os.O_RDONLY)
        self.reader = CachedFileReader(fd)
        try:
            yield self.reader
        finally:
            await self.reader.aclose()
