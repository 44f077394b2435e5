"""Stream responses read from the page cache on the event loop: same bytes, ranges and heads."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from taperoom.errors import RangeNotSatisfiable
from taperoom.web.errors import install_error_handlers
from taperoom.web.filestream import AudioFileResponse, CachedFileReader, byte_ranges


def _data(n: int) -> bytes:
    return bytes((i * 7 + i // 251) % 256 for i in range(n))


def test_reader_reads_exact_bytes_and_stops_at_the_end(tmp_path: Path) -> None:
    """read() gives the bytes at the position, fewer only at the end of the file."""
    data = _data(700_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    async def run() -> tuple[list[bytes], CachedFileReader]:
        reader = CachedFileReader(os.open(path, os.O_RDONLY))
        out = []
        await reader.seek(123_456)
        out.append(await reader.read(300_000))
        out.append(await reader.read(300_000))
        out.append(await reader.read(10))
        await reader.aclose()
        return out, reader

    out, reader = asyncio.run(run())
    assert out[0] == data[123_456:423_456]
    assert out[1] == data[423_456:]
    assert out[2] == b""
    assert reader.inline_reads >= 1  # the file was just written: it is in the page cache


def test_audio_file_response_on_a_real_server(tmp_path: Path,
                                              live_server: Callable[[Any], Any]) -> None:
    """Whole file, single and multiple ranges and HEAD answer as Starlette's FileResponse
    does, and the blocks come through CachedFileReader."""
    data = _data(1_000_003)
    path = tmp_path / "a.wav"
    path.write_bytes(data)
    responses: list[AudioFileResponse] = []

    def endpoint(request: Request) -> AudioFileResponse:
        response = AudioFileResponse(path, media_type="audio/wav")
        responses.append(response)
        return response

    app = Starlette(routes=[Route("/f", endpoint, methods=["GET", "HEAD"])])
    install_error_handlers(app)  # answers the 416
    srv = live_server(app)
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        whole = client.get("/f")
        assert whole.status_code == 200
        assert whole.content == data
        part = client.get("/f", headers={"Range": "bytes=300000-"})
        assert part.status_code == 206
        assert part.content == data[300_000:]
        assert part.headers["content-range"] == f"bytes 300000-{len(data) - 1}/{len(data)}"
        suffix = client.get("/f", headers={"Range": "bytes=-5"})
        assert suffix.content == data[-5:]
        multi = client.get("/f", headers={"Range": "bytes=0-9,500000-500009"})
        assert multi.status_code == 206
        assert data[:10] in multi.content and data[500_000:500_010] in multi.content
        head = client.head("/f")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(data))
        assert head.content == b""
        bad = client.get("/f", headers={"Range": f"bytes={len(data) + 5}-"})
        assert bad.status_code == 416
        assert bad.headers["content-range"] == f"bytes */{len(data)}"
    readers = [r.reader for r in responses if r.reader is not None]
    assert readers, "AudioFileResponse no longer reads through CachedFileReader"
    assert sum(r.inline_reads for r in readers) >= 2


#: Range headers that do not follow RFC 9110 §14.1.2 (or use another unit): ignored.
INVALID_RANGES = [
    "bytes=5-1", "bytes=abc", "items=0-1", "bytes=", "bytes=-", "bytes=,", "bytes",
    "bytes=1-2-3", "bytes=0-1,abc", "bytes=0-1,5-1", "bytes=+1-2", "bytes=1_0-20",
    "bytes=0x10-", "bytes=--5", "bytes=-5-", "bytes=-+5", "bytes=1.5-2", "=0-1", "bytes=0-1;2-3",
    "bytes=5-1,0-0",
]


def _range_app(path: Path) -> Starlette:
    def endpoint(request: Request) -> AudioFileResponse:
        return AudioFileResponse(path, media_type="audio/wav")

    app = Starlette(routes=[Route("/f", endpoint, methods=["GET", "HEAD"])])
    install_error_handlers(app)  # answers a 416
    return app


def test_invalid_range_is_ignored_whole_file_sent(tmp_path: Path,
                                                  live_server: Callable[[Any], Any]) -> None:
    """An invalid Range header is ignored (RFC 9110 §14.2 lets a server do so): 200 with the
    whole file, on GET and HEAD, instead of a plain-text 400."""
    data = _data(10_000)
    path = tmp_path / "a.wav"
    path.write_bytes(data)
    srv = live_server(_range_app(path))
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        for header in INVALID_RANGES:
            r = client.get("/f", headers={"Range": header})
            assert r.status_code == 200, header
            assert r.content == data, header
            assert r.headers["content-length"] == str(len(data)), header
            assert r.headers["content-type"] == "audio/wav", header
            assert "content-range" not in r.headers, header
            head = client.head("/f", headers={"Range": header})
            assert head.status_code == 200, header
            assert head.headers["content-length"] == str(len(data)), header


def test_valid_but_unsatisfiable_range_is_416(tmp_path: Path,
                                              live_server: Callable[[Any], Any]) -> None:
    """A valid range set of which no range overlaps the file answers 416 with
    Content-Range: bytes */size; huge positions are numbers like any other."""
    data = _data(10_000)
    path = tmp_path / "a.wav"
    path.write_bytes(data)
    (tmp_path / "empty.wav").write_bytes(b"")
    srv = live_server(_range_app(path))
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        for header in ("bytes=10000-", "bytes=10000-20000", "bytes=-0", "bytes=-0, -0",
                       "bytes=10000-,20000-30000", "bytes=" + "9" * 40 + "-",
                       "bytes=" + "1" * 5000 + "-", "BYTES=10000-"):
            r = client.get("/f", headers={"Range": header})
            assert r.status_code == 416, header[:40]
            assert r.headers["content-range"] == "bytes */10000", header[:40]


def test_only_the_satisfiable_ranges_are_sent(tmp_path: Path,
                                              live_server: Callable[[Any], Any]) -> None:
    """Ranges past the end are left out of a set that has others (RFC 9110 §14.1.1: the set
    is unsatisfiable only when no range overlaps); positions may have leading zeros and the
    list may have empty elements and spaces."""
    data = _data(10_000)
    path = tmp_path / "a.wav"
    path.write_bytes(data)
    srv = live_server(_range_app(path))
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        r = client.get("/f", headers={"Range": "bytes=20000-,0-9"})
        assert r.status_code == 206
        assert r.headers["content-range"] == "bytes 0-9/10000"
        assert r.content == data[:10]
        r = client.get("/f", headers={"Range": "bytes= , 0010-0019 ,, 50000-"})
        assert r.status_code == 206
        assert r.headers["content-range"] == "bytes 10-19/10000"
        assert r.content == data[10:20]
        r = client.get("/f", headers={"Range": "bytes=0-" + "9" * 5000})
        assert r.status_code == 206
        assert r.content == data


@pytest.mark.slow
@given(header=st.one_of(
    st.text(alphabet="bytes=0123456789-, \t+x_", max_size=40),
    st.text(max_size=40)),
    size=st.integers(min_value=0, max_value=10**12))
def test_byte_ranges_are_inside_the_file_or_refused(header: str, size: int) -> None:
    """Any header gives sorted, disjoint, non-empty ranges inside the file, the whole file
    (None) or RangeNotSatisfiable -- nothing else."""
    try:
        ranges = byte_ranges(header, size)
    except RangeNotSatisfiable as exc:
        assert exc.size == size
        return
    if ranges is None:
        return
    assert ranges
    for start, stop in ranges:
        assert 0 <= start < stop <= size
    for (_, stop), (start, _) in itertools.pairwise(ranges):
        assert stop < start


@pytest.mark.parametrize(("header", "size", "expected"), [
    ("bytes=0-0", 10, [(0, 1)]), ("bytes=-3", 10, [(7, 10)]), ("bytes=-30", 10, [(0, 10)]),
    ("bytes=8-,0-1,1-2", 10, [(0, 3), (8, 10)]), ("bytes=-5", 0, None),
    ("Bytes=2-2", 10, [(2, 3)]), ("bytes=5-1", 10, None), ("bytes=5-1", 3, None),
])
def test_byte_ranges_examples(header: str, size: int,
                              expected: list[tuple[int, int]] | None) -> None:
    """Suffix, merged and case-insensitive units; an invalid range is ignored even when its
    first position is past the end (it is invalid before it is unsatisfiable)."""
    assert byte_ranges(header, size) == expected
