"""``GET /stream/<f>``: Starlette's ``FileResponse`` with cheaper block reads.

Every real-time listener takes 176,400 bytes/s for as long as it listens, so the
cost of sending a second of audio bounds how many listeners one server holds.
Starlette reads each 64 KiB block in a worker thread (one thread round trip and
GIL hand-over per block). Here blocks are 256 KiB and are read on the event loop
with ``preadv(RWF_NOWAIT)``, which copies from the page cache and never waits
for the disk; only bytes that are not cached (and the end of the file) are read
in a worker thread. The worn tracks are read and written all the time, so they
are normally cached.

Measured with 200 real-time listeners (streams only, one worker) on the 2-core
benchmark machine, server CPU per second of audio sent: 1.55 ms with
Starlette's reads, 1.13 ms with 256 KiB blocks read in threads, 0.72-0.85 ms
with the reads below. Other programs were loading the machine, so the ratios
matter more than the figures; BENCHMARKS.md has the whole benchmark.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from starlette.responses import FileResponse

_RWF_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)


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
    """``FileResponse`` (single and multiple ranges, HEAD, ETag, 416) sending 256 KiB
    blocks read by :class:`CachedFileReader`.

    Only how blocks are read changes; Starlette still parses ranges, writes the
    headers and stops on disconnect. Should a Starlette version stop opening
    files through ``_open_file``, the response keeps working with Starlette's
    own reads (tests/ephemeral/test_api.py checks that these reads are used).
    """

    chunk_size = 256 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reader: CachedFileReader | None = None

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[Any]:
        fd = await anyio.to_thread.run_sync(os.open, self.path, os.O_RDONLY)
        self.reader = CachedFileReader(fd)
        try:
            yield self.reader
        finally:
            await self.reader.aclose()
