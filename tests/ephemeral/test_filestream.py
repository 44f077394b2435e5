"""Stream responses read from the page cache on the event loop: same bytes, ranges and heads."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from taperoom.ephemeral.filestream import AudioFileResponse, CachedFileReader


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
    readers = [r.reader for r in responses if r.reader is not None]
    assert readers, "AudioFileResponse no longer reads through CachedFileReader"
    assert sum(r.inline_reads for r in readers) >= 2
