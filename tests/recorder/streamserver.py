"""An Icecast-compatible radio stream server for tests, on a real socket on 127.0.0.1.

The server is plain asyncio streams in a background thread; it speaks just enough
HTTP/1.0 for radio clients (httpx, FFmpeg, VLC, curl). Every *mount* (a URL path)
is one station with its own clock. A station goes on air with the first request
of its mount (as an Icecast on-demand mount starts with its first listener), so a
test's timeline (titles, refusals, HLS segments) starts with its first listener
however long the test took to set up: "station time" counts from then, and the
audio a listener receives is a function of station time, as on a real radio, so a
listener who reconnects after 3 s has missed 3 s of audio.

Media
-----
:func:`build_media` encodes the first 20 s of a real corpus recording (a string
orchestra, 44.1 kHz stereo WAV) once into a cache folder with PyAV:

* MP3: 128 kbit/s CBR, 44.1 kHz stereo, bare frames (frame k starts at
  ``k * 1152 / 44100`` s of station time; the material loops);
* AAC: 96 kbit/s, 48 kHz stereo, ADTS frames (1024 samples each);
* HLS: the AAC audio in MPEG-TS segments of about 1 s, with a live sliding-window
  playlist (no ``#EXT-X-ENDLIST``); and the same ADTS frames cut into raw AAC
  segments of 47 frames (RFC 8216 section 3.4 "packed audio": each starts with an
  ID3 tag whose ``PRIV`` frame ``com.apple.streaming.transportStreamTimestamp``
  gives its first sample's 90 kHz timestamp).

Mounts
------
``server.mount(path, kind=..., ...)`` adds or replaces a mount, off air until its
next request; the keyword arguments are the fields of :class:`Mount`:

* ``kind``: ``"mp3"`` (``audio/mpeg``), ``"aac"`` (``audio/aac``, ADTS), ``"hls"``
  (the path serves the live media playlist, or with ``hls_master=True`` a master
  playlist of three variants ``<path>.v1.m3u8`` (64 kbit/s), ``.v2`` (128 kbit/s)
  and ``.v3`` (96 kbit/s), all the same media playlist; segments are served at
  ``<path>.seg<k>.ts``; a segment is listed from ``k * duration`` s of station
  time, in a window of ``hls_window`` segments; with ``hls_segment_type="aac"``
  the raw AAC segments, at ``<path>.seg<k>.aac``),
  ``"pls"`` / ``"m3u"`` (a station playlist naming ``target``, another mount path),
  ``"bytes"`` (``body`` with ``content_type``: for non-audio answers, or a whole
  file sent at once as a web server does), ``"hang"`` (reads the request and never
  answers, until the server stops: a dead server that still accepts connections).
* ``metaint``: ``icy-metaint`` interval in audio bytes, used when the request sends
  ``Icy-MetaData: 1``; ``titles``: ``[(station_seconds, "StreamTitle"), ...]``.
  A metadata block carries the title in effect at the station time of the audio
  byte before it; as Icecast does, the title is sent in the first block and when
  it changes, and other blocks are empty (length byte 0).
* ``burst_seconds``: audio sent at once on connect, from before the live position
  (Icecast's burst-on-connect); the station goes on air that long before its first
  request, so the first listener gets its burst too, from station time 0.
* ``plans``: a list of :class:`Plan`, one per successive audio request (the
  ``default`` plan applies after them): ``status`` (answer with this HTTP status
  and close), ``drop_after`` (close the socket after that many seconds of
  streaming; ``reset=True`` sends a TCP RST), ``stall_after`` + ``stall_for``
  (send nothing for ``stall_for`` seconds, then go on at the live position).
* ``send_interval``: seconds between two sends of a live audio stream (0.02: a
  segment every 20 ms; a benchmark serving hundreds of listeners sends less often).
* ``refuse_for`` + ``refuse_status``: answer every request of the mount with that
  status (503 by default) during the first ``refuse_for`` seconds of station time.
* ``icy_status_line``: answer ``ICY 200 OK`` as SHOUTcast 1 does; ``id3_prefix``:
  send an ID3v2 tag before the first frame; ``start_offset_bytes``: begin each
  connection that many bytes into a frame (a partial first frame).

Records
-------
``server.requests`` lists a :class:`RequestRecord` per request (path, lower-case
headers, status, arrival time, station time of the request and of the first audio
sent, audio bytes and frame indexes sent, how it ended), updated while the request
streams; ``server.requests_for(path)`` filters them.

Use in tests
------------
The fixtures ``stream_media`` and ``stream_server`` are imported into
``tests/recorder/conftest.py``, so every recorder test module can ask for them::

    def test_something(stream_server):
        stream_server.mount("/live.mp3", titles=[(0, "A - One"), (2, "B - Two")],
                            plans=[Plan(drop_after=1.0)])
        url = stream_server.url("/live.mp3")
        ...
        assert stream_server.requests_for("/live.mp3")[1].status == 200

``stream_media`` uses the ``corpus`` fixture of ``tests/conftest.py``.

Outside pytest (benchmarks)::

    media = build_media(cache_dir, corpus_wav)
    with StreamServer(media) as server:
        server.mount("/live.mp3")
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import pytest

#: The corpus recording encoded into the test media (44.1 kHz stereo WAV, 30 s).
SOURCE_NAME = ("14 - various (librosa example data) - Hungarian Dance number 5 - "
               "Allegro in F sharp minor (string orchestra).wav")
SOURCE_SECONDS = 20.0
MP3_BITRATE = 128_000
MP3_RATE = 44_100
AAC_BITRATE = 96_000
AAC_RATE = 48_000


# -- media ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamMedia:
    """Encoded test material: frame lists and HLS segments.

    Attributes
    ----------
    mp3_frames : list of bytes
        Bare MP3 frames (128 kbit/s CBR, 44.1 kHz stereo), in order.
    mp3_frame_seconds : float
        Duration of one MP3 frame (1152 / 44100 s).
    aac_frames : list of bytes
        ADTS frames (96 kbit/s, 48 kHz stereo), header included.
    aac_frame_seconds : float
        Duration of one AAC frame (1024 / 48000 s).
    hls_segments : list of (bytes, float)
        MPEG-TS segments holding the AAC audio, with their durations in seconds.
    hls_aac_segments : list of (bytes, float)
        Raw AAC (ADTS) segments with their ID3 timestamp tag, and their durations.
    """

    mp3_frames: list[bytes]
    mp3_frame_seconds: float
    aac_frames: list[bytes]
    aac_frame_seconds: float
    hls_segments: list[tuple[bytes, float]]
    hls_aac_segments: list[tuple[bytes, float]] = field(default_factory=list)


#: ADTS frames per raw AAC HLS segment (47 * 1024 / 48000 = 1.0027 s).
AAC_SEGMENT_FRAMES = 47


def _syncsafe(n: int) -> bytes:
    """A 28-bit ID3v2 "synchsafe" integer (7 bits per byte; ID3v2.4 section 6.2)."""
    return bytes(((n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F))


def packed_audio_id3(pts_90khz: int) -> bytes:
    """The ID3v2.4 tag that starts an HLS packed-audio segment (RFC 8216 section 3.4):
    one ``PRIV`` frame, owner ``com.apple.streaming.transportStreamTimestamp``, with
    the 33-bit MPEG-2 timestamp (90 kHz) of the segment's first sample, big-endian
    in 8 bytes."""
    body = (b"com.apple.streaming.transportStreamTimestamp\x00"
            + (pts_90khz & (2**33 - 1)).to_bytes(8, "big"))
    frame = b"PRIV" + _syncsafe(len(body)) + b"\x00\x00" + body
    return b"ID3\x04\x00\x00" + _syncsafe(len(frame)) + frame


def _aac_segments(frames: list[bytes]) -> list[tuple[bytes, float]]:
    out = []
    for i in range(0, len(frames) - AAC_SEGMENT_FRAMES + 1, AAC_SEGMENT_FRAMES):
        pts = i * 1024 * 90_000 // AAC_RATE
        out.append((packed_audio_id3(pts) + b"".join(frames[i:i + AAC_SEGMENT_FRAMES]),
                    AAC_SEGMENT_FRAMES * 1024 / AAC_RATE))
    return out


def _decode_source(source: Path) -> list[av.AudioFrame]:
    frames = []
    with av.open(str(source)) as c:
        stream = c.streams.audio[0]
        limit = int(SOURCE_SECONDS * stream.rate)
        got = 0
        for f in c.decode(stream):
            if got >= limit:
                break
            f.pts = None
            frames.append(f)
            got += f.samples
    return frames


def _encode_mp3(frames: list[av.AudioFrame], target: Path) -> None:
    enc = av.CodecContext.create("libmp3lame", "w")
    enc.sample_rate = MP3_RATE  # type: ignore[attr-defined]
    enc.layout = "stereo"  # type: ignore[attr-defined]
    enc.format = "fltp"  # type: ignore[attr-defined]
    enc.bit_rate = MP3_BITRATE
    enc.open()
    with open(target, "wb") as out:
        for f in [*frames, None]:
            for p in enc.encode(f):  # type: ignore[arg-type]
                out.write(bytes(p))


def _encode_aac(frames: list[av.AudioFrame], target: Path) -> None:
    with av.open(str(target), "w", format="adts") as out:
        stream = out.add_stream("aac", rate=AAC_RATE, layout="stereo")
        stream.bit_rate = AAC_BITRATE
        for f in [*frames, None]:
            for p in stream.encode(f):
                out.mux(p)


def _segment_hls(adts: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with av.open(str(adts)) as src, av.open(
            str(folder / "index.m3u8"), "w", format="hls",
            options={"hls_time": "1", "hls_list_size": "0",
                     "hls_segment_filename": str(folder / "seg%03d.ts")}) as out:
        ins = src.streams.audio[0]
        ost = out.add_stream_from_template(ins)
        for p in src.demux(ins):
            if p.dts is None:
                continue
            p.stream = ost
            out.mux(p)


def split_adts(data: bytes) -> list[bytes]:
    """Split an ADTS byte string into frames by the 13-bit frame length of each header."""
    frames, pos = [], 0
    while pos + 7 <= len(data):
        if data[pos] != 0xFF or (data[pos + 1] & 0xF6) != 0xF0:
            raise ValueError(f"no ADTS sync at byte {pos}")
        length = ((data[pos + 3] & 0x03) << 11) | (data[pos + 4] << 3) | (data[pos + 5] >> 5)
        frames.append(data[pos:pos + length])
        pos += length
    return frames


def build_media(cache_dir: Path, source: Path) -> StreamMedia:
    """Encode (once; reused from `cache_dir` afterwards) the test stream material.

    Parameters
    ----------
    cache_dir : Path
        Folder for ``source.mp3``, ``source.aac`` and ``hls/``.
    source : Path
        A real recording PyAV can decode (the first 20 s are used).

    Returns
    -------
    StreamMedia
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    mp3, aac, hls = cache_dir / "source.mp3", cache_dir / "source.aac", cache_dir / "hls"
    if not (mp3.is_file() and aac.is_file() and (hls / "index.m3u8").is_file()):
        decoded = _decode_source(source)
        _encode_mp3(decoded, mp3)
        _encode_aac(decoded, aac)
        _segment_hls(aac, hls)
    with av.open(str(mp3)) as c:
        mp3_frames = [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]
    aac_frames = split_adts(aac.read_bytes())
    segments = []
    playlist = (hls / "index.m3u8").read_text()
    for dur, name in re.findall(r"#EXTINF:([0-9.]+),\s*\n(\S+)", playlist):
        segments.append(((hls / name).read_bytes(), float(dur)))
    return StreamMedia(mp3_frames, 1152 / MP3_RATE, aac_frames, 1024 / AAC_RATE, segments,
                       _aac_segments(aac_frames))


# -- configuration ------------------------------------------------------------------------


@dataclass
class Plan:
    """What the server does with one audio request (see the module docstring)."""

    status: int = 200
    drop_after: float | None = None
    reset: bool = False
    stall_after: float | None = None
    stall_for: float = 0.0


@dataclass
class Mount:
    """One station (see the module docstring for every field)."""

    kind: str = "mp3"
    metaint: int | None = 8192
    titles: list[tuple[float, str]] = field(default_factory=list)
    burst_seconds: float = 0.0
    plans: list[Plan] = field(default_factory=list)
    default: Plan = field(default_factory=Plan)
    refuse_for: float = 0.0
    refuse_status: int = 503
    icy_status_line: bool = False
    id3_prefix: bool = False
    start_offset_bytes: int = 0
    content_type: str | None = None
    target: str | None = None
    body: bytes = b""
    name: str = "Taperoom Test FM"
    hls_window: int = 4
    hls_master: bool = False
    hls_segment_type: str = "ts"
    send_interval: float = 0.02
    created: float | None = None  # time.monotonic() at station time 0; None: off air
    audio_requests: int = 0

    def go_on_air(self) -> None:
        """Start the station clock, unless it runs (called on every request)."""
        if self.created is None:
            self.created = time.monotonic() - self.burst_seconds

    def station_time(self) -> float:
        """Seconds since the station went on air (0 while off air)."""
        return 0.0 if self.created is None else time.monotonic() - self.created

    def title_at(self, t: float) -> str | None:
        """The StreamTitle in effect at station time t."""
        current = None
        for at, title in sorted(self.titles):
            if at <= t:
                current = title
        return current


@dataclass
class RequestRecord:
    """What the server saw and did for one request.

    Attributes
    ----------
    path : str
        Request path (query removed).
    headers : dict of str to str
        Request headers, lower-case names.
    status : int
        Status answered.
    station_time : float
        Station time of the mount when the request arrived.
    received : float
        ``time.monotonic()`` when the request arrived (for a test's own timings).
    audio_start : float or None
        Station time of the first audio frame sent.
    audio_bytes : int
        Audio bytes sent (metadata blocks not counted).
    first_frame, last_frame : int or None
        Global indexes of the first and last whole frame sent (frame k of the
        material is ``k % len(frames)``).
    titles_sent : list of (int, str)
        ``(audio byte offset, title)`` of every non-empty metadata block sent.
    ended : str
        ``"open"`` while streaming; then ``"client closed"``, ``"dropped"``,
        ``"reset"``, ``"done"``, ``"server stopped"``; ``"hung"`` for a ``hang`` mount.
    """

    path: str
    headers: dict[str, str]
    status: int = 0
    station_time: float = 0.0
    received: float = field(default_factory=time.monotonic)
    audio_start: float | None = None
    audio_bytes: int = 0
    first_frame: int | None = None
    last_frame: int | None = None
    titles_sent: list[tuple[int, str]] = field(default_factory=list)
    ended: str = "open"


_REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            500: "Internal Server Error", 503: "Service Unavailable"}



def _id3_tag(title: str) -> bytes:
    """A minimal ID3v2.4 tag holding one TIT2 frame (sizes are synchsafe, < 128 here)."""
    content = b"\x03" + title.encode() + b"\x00"
    frame = b"TIT2" + bytes([0, 0, 0, len(content)]) + b"\x00\x00" + content
    return b"ID3\x04\x00\x00" + bytes([0, 0, 0, len(frame)]) + frame


_ID3_TAG = _id3_tag("Test tag")


class _IcyWriter:
    """Interleave ICY metadata blocks every `metaint` audio bytes (Icecast style)."""

    def __init__(self, metaint: int | None, record: RequestRecord) -> None:
        self.metaint = metaint
        self.left = metaint or 0
        self.last_sent: str | None = None
        self.record = record

    def wrap(self, audio: bytes, title: str | None) -> bytes:
        if not self.metaint:
            return audio
        out = bytearray()
        pos = 0
        while pos < len(audio):
            take = min(self.left, len(audio) - pos)
            out += audio[pos:pos + take]
            pos += take
            self.left -= take
            if self.left == 0:
                offset = self.record.audio_bytes + pos
                if title is not None and title != self.last_sent:
                    text = f"StreamTitle='{title}';".encode()
                    blocks = math.ceil(len(text) / 16)
                    out += bytes([blocks]) + text.ljust(blocks * 16, b"\x00")
                    self.last_sent = title
                    self.record.titles_sent.append((offset, title))
                else:
                    out += b"\x00"
                self.left = self.metaint
        return bytes(out)


# -- the server ----------------------------------------------------------------------------


class StreamServer:
    """An Icecast-like HTTP stream server on 127.0.0.1 (see the module docstring).

    Parameters
    ----------
    media : StreamMedia
        The material streamed.
    host : str
        Address to listen on.
    tls : ssl.SSLContext, optional
        Serve HTTPS with this server context (``url()`` then gives ``https://``).
    """

    def __init__(self, media: StreamMedia, host: str = "127.0.0.1",
                 tls: ssl.SSLContext | None = None) -> None:
        self.media = media
        self.host = host
        self.tls = tls
        self.port = 0
        self.mounts: dict[str, Mount] = {}
        self.requests: list[RequestRecord] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = threading.Event()

    # -- control (any thread) --

    def url(self, path: str) -> str:
        """Absolute URL of `path` on this server."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}{path}"

    def mount(self, path: str, **config: Any) -> Mount:
        """Add or replace the mount at `path` (on air from its next request); return it."""
        m = Mount(**config)
        self.mounts[path] = m
        return m

    def requests_for(self, path: str) -> list[RequestRecord]:
        """The requests received for `path`, in order."""
        return [r for r in self.requests if r.path == path]

    def start(self) -> StreamServer:
        """Start listening (returns once the socket is bound)."""
        self._thread = threading.Thread(target=self._run, name="stream-server", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("stream server did not start")
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> StreamServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- event loop side --

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            self._server = await asyncio.start_server(self._handle, self.host, 0, ssl=self.tls)
            self.port = self._server.sockets[0].getsockname()[1]

        loop.run_until_complete(boot())
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        record: RequestRecord | None = None
        try:
            request_line = (await reader.readline()).decode("latin-1").strip()
            headers: dict[str, str] = {}
            while True:
                line = (await reader.readline()).decode("latin-1").strip()
                if not line:
                    break
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            parts = request_line.split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else "/"
            record = RequestRecord(path=path, headers=headers)
            self.requests.append(record)
            await self._dispatch(record, writer)
            if record.ended == "open":
                record.ended = "done"
        except asyncio.CancelledError:
            if record is not None and record.ended == "open":
                record.ended = "server stopped"
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            if record is not None and record.ended == "open":
                record.ended = "client closed"
        finally:
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, writer: asyncio.StreamWriter, record: RequestRecord, status: int,
                      headers: dict[str, str], body: bytes = b"", *,
                      icy_line: bool = False) -> None:
        record.status = status
        first = (f"ICY {status} {_REASONS.get(status, 'OK')}" if icy_line
                 else f"HTTP/1.0 {status} {_REASONS.get(status, 'Error')}")
        lines = [first, *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        writer.write("\r\n".join(lines).encode("latin-1") + body)
        await writer.drain()

    async def _dispatch(self, record: RequestRecord, writer: asyncio.StreamWriter) -> None:
        path = record.path
        mount = self.mounts.get(path)
        sub: str | None = None  # "seg<k>" or "v<n>" below an HLS mount
        if mount is None:
            m = re.fullmatch(r"(.+)\.(seg\d+)\.(?:ts|aac)|(.+)\.(v\d)\.m3u8", path)
            base = m and (m.group(1) or m.group(3))
            if m and base in self.mounts and self.mounts[base].kind == "hls":
                mount, sub, path = self.mounts[base], m.group(2) or m.group(4), base
        if mount is None:
            await self._answer(writer, record, 404, {"Content-Type": "text/plain"},
                               b"no such mount\n")
            return
        mount.go_on_air()
        record.station_time = mount.station_time()
        if record.station_time < mount.refuse_for:
            await self._answer(writer, record, mount.refuse_status,
                               {"Content-Type": "text/plain"}, b"refused\n")
            return
        if mount.kind in ("pls", "m3u"):
            target = self.url(mount.target or "/")
            body = (f"[playlist]\nNumberOfEntries=1\nFile1={target}\nTitle1={mount.name}\n"
                    "Length1=-1\nVersion=2\n" if mount.kind == "pls"
                    else f"#EXTM3U\n#EXTINF:-1,{mount.name}\n{target}\n")
            ctype = "audio/x-scpls" if mount.kind == "pls" else "audio/x-mpegurl"
            await self._answer(writer, record, 200, {"Content-Type": ctype,
                                                     "Content-Length": str(len(body))},
                               body.encode())
            return
        if mount.kind == "hang":
            record.ended = "hung"
            await asyncio.Event().wait()  # until the server stops and cancels the task
        if mount.kind == "bytes":
            await self._answer(writer, record, 200, {
                "Content-Type": mount.content_type or "application/octet-stream",
                "Content-Length": str(len(mount.body))}, mount.body)
            return
        if mount.kind == "hls":
            await self._hls(mount, path, record, writer, sub)
            return
        await self._stream(mount, record, writer)

    async def _hls(self, mount: Mount, path: str, record: RequestRecord,
                   writer: asyncio.StreamWriter, sub: str | None) -> None:
        aac = mount.hls_segment_type == "aac"
        segs = self.media.hls_aac_segments if aac else self.media.hls_segments
        ext, ctype = ("aac", "audio/aac") if aac else ("ts", "video/mp2t")
        nominal = max(d for _, d in segs)
        if sub is not None and sub.startswith("seg"):
            data, _ = segs[int(sub[3:]) % len(segs)]
            if aac:  # each repeat of the material goes on from the previous timestamp
                k = int(sub[3:])
                data = (packed_audio_id3(k * AAC_SEGMENT_FRAMES * 1024 * 90_000 // AAC_RATE)
                        + data[len(packed_audio_id3(0)):])
            await self._answer(writer, record, 200, {"Content-Type": ctype,
                                                     "Content-Length": str(len(data))}, data)
            return
        if sub is None and mount.hls_master:
            body = ("#EXTM3U\n"
                    f"#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.2\"\n{path}.v1.m3u8\n"
                    f"#EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS=\"mp4a.40.2\"\n{path}.v2.m3u8\n"
                    f"#EXT-X-STREAM-INF:BANDWIDTH=96000,CODECS=\"mp4a.40.2\"\n{path}.v3.m3u8\n"
                    ).encode()
            await self._answer(writer, record, 200, {
                "Content-Type": "application/vnd.apple.mpegurl",
                "Content-Length": str(len(body))}, body)
            return
        newest = int(record.station_time // nominal)  # segment k is out at k * nominal
        first = max(0, newest - mount.hls_window + 1)
        lines = ["#EXTM3U", "#EXT-X-VERSION:3",
                 f"#EXT-X-TARGETDURATION:{math.ceil(nominal)}",
                 f"#EXT-X-MEDIA-SEQUENCE:{first}"]
        for k in range(first, newest + 1):
            lines += [f"#EXTINF:{segs[k % len(segs)][1]:.6f},", f"{path}.seg{k}.{ext}"]
        body = ("\n".join(lines) + "\n").encode()
        await self._answer(writer, record, 200, {
            "Content-Type": "application/vnd.apple.mpegurl",
            "Content-Length": str(len(body)), "Cache-Control": "no-cache"}, body)

    async def _stream(self, mount: Mount, record: RequestRecord,
                      writer: asyncio.StreamWriter) -> None:
        plan = (mount.plans[mount.audio_requests] if mount.audio_requests < len(mount.plans)
                else mount.default)
        mount.audio_requests += 1
        if plan.status != 200:
            await self._answer(writer, record, plan.status, {"Content-Type": "text/plain"},
                               b"unavailable\n")
            return
        if mount.kind == "aac":
            frames, frame_s = self.media.aac_frames, self.media.aac_frame_seconds
            ctype, br = "audio/aac", AAC_BITRATE // 1000
        else:
            frames, frame_s = self.media.mp3_frames, self.media.mp3_frame_seconds
            ctype, br = "audio/mpeg", MP3_BITRATE // 1000
        want_meta = record.headers.get("icy-metadata") == "1" and bool(mount.metaint)
        headers = {"Content-Type": mount.content_type or ctype, "icy-name": mount.name,
                   "icy-br": str(br), "icy-pub": "0", "Cache-Control": "no-cache",
                   "Server": "Icecast 2.4.4 (taperoom test peer)"}
        if want_meta:
            headers["icy-metaint"] = str(mount.metaint)
        await self._answer(writer, record, 200, headers, icy_line=mount.icy_status_line)
        icy = _IcyWriter(mount.metaint if want_meta else None, record)

        async def send(audio: bytes, k: int) -> None:
            title = mount.title_at(k * frame_s)
            writer.write(icy.wrap(audio, title))
            record.audio_bytes += len(audio)
            await writer.drain()

        if mount.id3_prefix:
            await send(_ID3_TAG, 0)
        started = time.monotonic()
        k = max(0, int((record.station_time - mount.burst_seconds) / frame_s))
        record.audio_start = k * frame_s
        skip = mount.start_offset_bytes
        stalled = False
        while True:
            now = time.monotonic()
            streamed = now - started
            if plan.drop_after is not None and streamed >= plan.drop_after:
                record.ended = "reset" if plan.reset else "dropped"
                if plan.reset:
                    writer.transport.abort()
                else:
                    writer.close()
                return
            if (plan.stall_after is not None and not stalled
                    and streamed >= plan.stall_after):
                stalled = True
                await asyncio.sleep(plan.stall_for)
                k = max(k, int(mount.station_time() / frame_s))  # go on at the live position
                continue
            live = mount.station_time()
            batch = bytearray()
            first_k = k
            while k * frame_s <= live + 0.05:
                data = frames[k % len(frames)]
                if skip:
                    data, skip = data[skip:], 0
                else:
                    if record.first_frame is None:
                        record.first_frame = k
                    record.last_frame = k
                batch += data
                k += 1
            if batch:
                await send(bytes(batch), first_k)
            await asyncio.sleep(mount.send_interval)


@pytest.fixture(scope="session")
def stream_media(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> StreamMedia:
    """The test stream material, encoded once per test session from a corpus recording."""
    source = corpus / "scanner" / "real_music_tagged" / SOURCE_NAME
    return build_media(tmp_path_factory.mktemp("stream-media"), source)


@pytest.fixture
def stream_server(stream_media: StreamMedia) -> Iterator[StreamServer]:
    """A started :class:`StreamServer` on 127.0.0.1 (no mounts yet), stopped after the test."""
    server = StreamServer(stream_media).start()
    try:
        yield server
    finally:
        server.stop()

