"""Sources of a capture: one connection attempt per daemon thread, reporting events.

A :class:`Source` opens the station URL and pushes what it receives into the
supervisor's queue: :class:`Connected`, whole MP3 frames (:class:`Mp3Frames`),
decoded audio (:class:`PcmFrame`), ICY titles (:class:`TitleChange`) and how it
:class:`Ended`. The supervisor (:mod:`~taperoom.recorder.capture.supervisor`)
never waits on the network: it abandons a source that hangs, and the thread ends
by itself at its read timeout.

Protocols
---------
* ``http``/``https`` (Icecast, SHOUTcast 1 and 2, plain HTTP audio; ``icy://`` is read
  as ``http://``) through httpx, with ``Icy-MetaData: 1``; the interleaved metadata is
  removed and every ``StreamTitle`` change is reported at its audio offset. The content
  is sniffed, not trusted to the ``Content-Type``: a chain of Layer III frame headers
  means MP3 (kept byte for byte), two ADTS headers in a row mean AAC; anything else is
  handed to FFmpeg (through PyAV, reading from the same connection). The body is read
  at a pace (:mod:`~taperoom.recorder.capture.pacing`): each read takes what the socket
  gathered over up to half a second, while a drop, a reset or the end of the recording
  (:meth:`Source.finish`) is acted on at once. Station playlists
  (``.pls``, ``.m3u``, ``.xspf``) are followed to the first stream they name that the
  URL policy allows; HLS playlists go to PyAV.
* HLS (``.m3u8``, every playlist, key and segment fetched through
  :class:`~taperoom.recorder.hlsio.HlsOpener`) and RTMP/RTMPS through ``av.open(url,
  timeout=...)``; an MP3 elementary stream is still copied, other codecs are decoded.

URL policy
----------
Every URL opened -- the station URL, each playlist entry, each redirect, each HLS
variant, key and segment -- passes :class:`~taperoom.recorder.urlpolicy.UrlPolicy`
(``CaptureOptions.policy``): allowed schemes, and destination addresses checked
after DNS resolution. Every PyAV open sets FFmpeg's ``protocol_whitelist``. A
refusal ends the connection with a reason starting with :data:`REFUSED`.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import av
import av.audio.stream
import httpx

from taperoom.audio.demux import demux_packets
from taperoom.recorder.capture.pacing import ReadPacer
from taperoom.recorder.capture.types import CaptureOptions
from taperoom.recorder.encode import FrameSync, SyncedFrame
from taperoom.recorder.hlsio import HlsOpener, check_hls_playlist
from taperoom.recorder.icy import (
    PLAYLIST_TYPES,
    IcyDemuxer,
    IcyMetadata,
    hls_best_variant,
    hls_target_duration,
    http_client,
    is_hls_playlist,
    open_checked,
    parse_playlist,
)
from taperoom.recorder.urlpolicy import (
    FFMPEG_HLS_PROTOCOLS,
    FFMPEG_NO_PROTOCOLS,
    FFMPEG_RTMP_PROTOCOLS,
    HTTP_SCHEMES,
    UrlRefused,
)

#: Start of the reason of a connection that ended because the URL policy refused a URL.
REFUSED = "refused: "
#: Options of FFmpeg's HLS demuxer with every open going through :class:`HlsOpener`:
#: no persistent or parallel HTTP connections of its own (those need its http protocol).
HLS_OPTIONS = {"protocol_whitelist": FFMPEG_HLS_PROTOCOLS, "http_persistent": "0",
                "http_multiple": "0", "http_seekable": "0"}
#: Stream time FFmpeg may read to identify a stream opened by URL (HLS, RTMP ...), seconds.
FFMPEG_ANALYZE_SECONDS = 1.0
#: Bytes read from an HTTP stream (after a leading ID3 tag) before giving up on
#: recognising MP3 or ADTS frames and handing the stream to FFmpeg's probe.
SNIFF_BYTES = 16 * 1024
#: Largest playlist body read (bytes).
PLAYLIST_MAX_BYTES = 256 * 1024
#: Playlist files followed before the stream itself (a .pls naming a .m3u ...).
MAX_PLAYLIST_HOPS = 4


# -- events from a source thread ---------------------------------------------------------


@dataclass
class Connected:
    """The source answered with audio.

    Attributes
    ----------
    codec : str
        ``"mp3"`` (frames are copied) or the codec being decoded (FFmpeg's name).
    content_type : str or None
        The answer's ``Content-Type`` (or FFmpeg's format name).
    stall_timeout : float or None
        A longer stall timeout this source needs, s (HLS: two target durations + 1).
    """

    codec: str
    content_type: str | None = None
    stall_timeout: float | None = None


@dataclass
class Mp3Frames:
    """Whole MP3 frames of the source, to be copied as they are."""

    frames: list[SyncedFrame]


@dataclass
class PcmFrame:
    """One decoded audio frame (any format PyAV decodes), to be encoded."""

    frame: av.AudioFrame


@dataclass
class TitleChange:
    """An ICY ``StreamTitle`` arrived (it applies from the audio that follows)."""

    title: str


@dataclass
class Ended:
    """The connection ended; `reason` says how (``dropped``, ``http 503``,
    ``refused: ...``, ``end of stream`` ...)."""

    reason: str


class _Cancelled(Exception):
    """The supervisor no longer listens: the source thread ends quietly."""


class _SourceError(Exception):
    """A connection ended for a reason worth reporting as is (``http 503`` ...)."""


def _describe(exc: BaseException) -> str:
    """A short reason for a failed or ended connection."""
    if isinstance(exc, _SourceError):
        return str(exc)
    if isinstance(exc, UrlRefused):
        return f"{REFUSED}{exc}"
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, httpx.ReadTimeout):
        return "stalled"
    if isinstance(exc, httpx.ConnectError):
        return f"connect failed: {exc}"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return "dropped"
    if isinstance(exc, av.error.TimeoutError | av.error.ExitError):
        return "stalled"
    if isinstance(exc, av.error.HTTPError):
        return f"http error: {exc}"
    if isinstance(exc, av.error.FFmpegError):
        return f"ffmpeg: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def is_playlist(url: str, ctype: str | None) -> bool:
    """Whether an HTTP answer is a playlist: by content type, or by name unless typed as media."""
    if ctype in PLAYLIST_TYPES:
        return True
    media = ctype is not None and ctype.startswith(("audio/", "video/"))
    return not media and urlsplit(url).path.lower().endswith((".m3u8", ".m3u", ".pls",
                                                              ".xspf"))


def is_adts(data: bytes) -> bool:
    """True when two ADTS frame headers follow each other in `data` (ISO/IEC 13818-7 6.2)."""
    pos = data.find(b"\xff")
    while pos >= 0 and pos + 7 <= len(data):
        b1 = data[pos + 1]
        if (b1 & 0xF6) == 0xF0:
            length = ((data[pos + 3] & 0x03) << 11) | (data[pos + 4] << 3) | (data[pos + 5] >> 5)
            nxt = pos + length
            if length >= 7 and nxt + 2 <= len(data) and data[nxt] == 0xFF \
                    and (data[nxt + 1] & 0xF6) == 0xF0:
                return True
        pos = data.find(b"\xff", pos + 1)
    return False


class _ItemReader:
    """A file-like ``read()`` over audio bytes for PyAV, collecting ICY metadata aside."""

    def __init__(self, items: Iterator[bytes | IcyMetadata],
                 on_meta: Callable[[IcyMetadata], None]) -> None:
        self._items = items
        self._on_meta = on_meta
        self._buf = bytearray()
        self._eof = False

    def read(self, n: int) -> bytes:
        while not self._buf and not self._eof:
            item = next(self._items, None)
            if item is None:
                self._eof = True
            elif isinstance(item, IcyMetadata):
                self._on_meta(item)
            else:
                self._buf += item
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


class Source(threading.Thread):
    """One connection attempt, run in a daemon thread, reporting to a queue.

    Parameters
    ----------
    url : str
        The station URL (normalised by the URL policy).
    options : CaptureOptions
        Timeouts, user agent and URL policy.
    events : queue.Queue
        Where :class:`Connected`, :class:`Mp3Frames`, :class:`PcmFrame`,
        :class:`TitleChange` and finally :class:`Ended` are put.
    cancel : threading.Event
        Set by the supervisor when it no longer listens; the thread then ends quietly.

    Attributes
    ----------
    last_data : float
        ``options.clock.monotonic()`` when bytes last arrived (the supervisor's stall
        check).
    first_data : float or None
        When the first audio bytes arrived (``options.clock.monotonic()``).
    pacer : ReadPacer or None
        Paces the reads of an HTTP stream (see :mod:`~taperoom.recorder.capture.pacing`).
    """

    def __init__(self, url: str, options: CaptureOptions, events: queue.Queue[Any],
                 cancel: threading.Event) -> None:
        super().__init__(name="capture-source", daemon=True)
        self.url = url
        self.options = options
        self.events = events
        self.cancel = cancel
        self.last_data = self.options.clock.monotonic()
        self.first_data: float | None = None  # when the first audio bytes arrived
        self.pacer: ReadPacer | None = None
        self._finishing = False  # the supervisor asked for one last read
        self._flushed = threading.Event()  # ... and it is in the queue

    # -- plumbing --

    def put(self, event: Any) -> None:
        """Queue `event` for the supervisor; ends the thread once it is cancelled."""
        while True:
            if self.cancel.is_set():
                raise _Cancelled
            try:
                self.events.put(event, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self, timeout: float) -> None:
        """The recording ends: have a paced reader read once more (what the socket gathered
        since its last read) and queue it; wait for that at most `timeout` seconds.

        Returns at once when the reader is not pausing (it reads as data comes).
        """
        pacer = self.pacer
        if pacer is None or not pacer.waiting or not self.is_alive():
            return
        self._finishing = True
        pacer.wake()
        self._flushed.wait(timeout)

    def run(self) -> None:
        """Connect, report, and always end with an :class:`Ended` (unless cancelled)."""
        try:
            self._run()
            self.put(Ended("end of stream"))
        except _Cancelled:
            pass
        except Exception as exc:
            with contextlib.suppress(_Cancelled):
                self.put(Ended(_describe(exc)))

    def _run(self) -> None:
        policy = self.options.policy
        url, what = self.url, "stream URL"
        for _ in range(MAX_PLAYLIST_HOPS):
            url = policy.normalize(url, what=what)
            if urlsplit(url).scheme.lower() not in HTTP_SCHEMES:
                self._ffmpeg(policy.check_url(url, what=what))
                return
            follow = self._http(url)
            if follow is None:
                return
            kind, url, stall = follow
            what = "playlist entry"
            if kind == "hls":
                self._ffmpeg(url, stall_timeout=stall, hls=True)
                return
        raise _SourceError("too many nested playlists")

    # -- HTTP (Icecast/SHOUTcast) --

    def _http(self, url: str) -> tuple[str, str, float | None] | None:
        opts = self.options
        with http_client(user_agent=opts.user_agent, connect_timeout=opts.connect_timeout,
                         read_timeout=opts.stall_timeout + 2.0, policy=opts.policy) as client, \
                contextlib.closing(open_checked(client, url, policy=opts.policy,
                                                headers={"Accept-Encoding": "identity"})) as resp:
            if resp.status_code >= 400:
                raise _SourceError(f"http {resp.status_code}")
            self.last_data = self.options.clock.monotonic()
            ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower() or None
            raw = resp.iter_raw()
            if is_playlist(str(resp.url), ctype):
                body = bytearray()
                for chunk in raw:
                    body += chunk
                    if len(body) > PLAYLIST_MAX_BYTES:
                        break
                text = body.decode("utf-8", "replace")
                if is_hls_playlist(text):
                    return self._hls(client, text, str(resp.url))
                urls = parse_playlist(text, str(resp.url))
                if urls:
                    return "url", opts.policy.first_allowed(urls, what="playlist entry"), None
                if len(body) > PLAYLIST_MAX_BYTES or not text.strip():
                    raise _SourceError("the playlist names no stream")
                if ctype in PLAYLIST_TYPES:
                    raise _SourceError("the playlist names no stream")
            try:
                metaint = int(resp.headers.get("icy-metaint", "0") or 0)
            except ValueError:
                metaint = 0
            demux = IcyDemuxer(metaint if metaint > 0 else None)
            # h11 may hold several chunks of a chunked body after one socket read:
            # pausing between them would fall behind; such bodies are read unpaced.
            chunked = "chunked" in resp.headers.get("transfer-encoding", "").lower()
            pacer = ReadPacer(None if chunked else _socket_of(resp))
            self.pacer = pacer

            def items() -> Iterator[bytes | IcyMetadata]:
                for chunk in raw:
                    if self.cancel.is_set():
                        raise _Cancelled
                    self.last_data = self.options.clock.monotonic()
                    if self.first_data is None:
                        self.first_data = self.last_data
                    yield from demux.feed(chunk)
                    if self._finishing:  # the last read asked for is queued
                        self._flushed.set()
                    else:  # let the socket gather the next few kilobytes
                        pacer.pause(len(chunk))

            try:
                self._http_audio(items(), ctype)
            finally:
                pacer.close()
        raise _SourceError("dropped")  # the server ended the body: radio never ends

    def _hls(self, client: httpx.Client, text: str, url: str) -> tuple[str, str, float | None]:
        """Pick the best variant of a master playlist; derive the stall timeout of HLS.
        Every URL either playlist names must be one the policy allows."""
        policy = self.options.policy
        check_hls_playlist(text, url, policy)
        variant = hls_best_variant(text, url)
        if variant is not None:
            with contextlib.closing(open_checked(client, variant, policy=policy,
                                                 what="HLS variant")) as resp:
                resp.read()
                url, text = str(resp.url), resp.text
            check_hls_playlist(text, url, policy)
        target = hls_target_duration(text)
        return "hls", url, (2 * target + 1.0 if target else None)

    def _http_audio(self, items: Iterator[bytes | IcyMetadata], ctype: str | None) -> None:
        """Sniff the codec from the first bytes, then copy MP3 or decode the rest."""
        seen: list[bytes | IcyMetadata] = []
        probe = FrameSync()
        head = bytearray()
        codec = None
        for item in items:
            seen.append(item)
            if isinstance(item, IcyMetadata):
                continue
            head += item
            if probe.feed(item):
                codec = "mp3"
                break
            if is_adts(bytes(head[-(SNIFF_BYTES + 8192):])):
                codec = "aac"
                break
            if probe.bytes_in - probe.skipped_tag_bytes >= SNIFF_BYTES:
                break
        replay = _chain(seen, items)
        if codec == "mp3":
            self._copy_mp3(replay, ctype)
            return
        if not head:
            raise _SourceError("no audio data")
        self._decode(replay, "aac" if codec == "aac" else None, ctype)

    def _copy_mp3(self, items: Iterator[bytes | IcyMetadata], ctype: str | None) -> None:
        self.put(Connected("mp3", ctype))
        sync = FrameSync()
        for item in items:
            if isinstance(item, IcyMetadata):
                if item.title:
                    self.put(TitleChange(item.title))
                continue
            frames = sync.feed(item)
            if frames:
                self.put(Mp3Frames(frames))
        tail = sync.flush()
        if tail:
            self.put(Mp3Frames(tail))

    def _decode(self, items: Iterator[bytes | IcyMetadata], fmt: str | None,
                ctype: str | None) -> None:
        pending: list[tuple[int, str]] = []

        def on_meta(meta: IcyMetadata) -> None:
            if meta.title:
                pending.append((meta.audio_offset, meta.title))

        reader = _ItemReader(items, on_meta)
        # Small probe: the data arrives in real time, and every byte FFmpeg waits
        # for before the first packet is latency.
        probe = ({"probesize": "32", "analyzeduration": "0"} if fmt
                 else {"probesize": "16384", "analyzeduration": "200000"})
        probe["protocol_whitelist"] = FFMPEG_NO_PROTOCOLS  # bytes in hand: open nothing
        container = av.open(reader, "r", format=fmt, options=probe)
        try:
            if not container.streams.audio:
                raise _SourceError("no audio stream in the data")
            stream = container.streams.audio[0]
            self.put(Connected(stream.codec_context.name, ctype))
            for packet in demux_packets(container, stream):
                if self.cancel.is_set():
                    raise _Cancelled
                pos = packet.pos if packet.pos is not None else -1
                while pending and (pos < 0 or pending[0][0] <= pos):
                    self.put(TitleChange(pending.pop(0)[1]))
                self._decode_packet(packet)
            self._flush_decoder(stream)
            for _, title in pending:
                self.put(TitleChange(title))
        finally:
            container.close()

    def _decode_packet(self, packet: av.Packet) -> None:
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            return  # a damaged frame: skip it, as players do
        self._queue_frames(frames)

    def _flush_decoder(self, stream: av.audio.stream.AudioStream) -> None:
        """Queue the frames the decoder of `stream` still holds (the packets of
        :func:`demux_packets` end without PyAV's empty flush packets)."""
        try:
            frames = stream.codec_context.decode(None)
        except av.error.InvalidDataError:
            return
        self._queue_frames(frames)

    def _queue_frames(self, frames: list[Any]) -> None:
        for frame in frames:
            if isinstance(frame, av.AudioFrame):
                self.put(PcmFrame(frame))

    # -- FFmpeg protocols and HLS --

    def _ffmpeg(self, url: str, stall_timeout: float | None = None, *,
                hls: bool = False) -> None:
        opts = self.options
        stall = max(opts.stall_timeout, stall_timeout or 0.0)
        # A live source delivers in real time, and FFmpeg's default probe (5 s of
        # stream time) would hold the first packet back for 5 s on RTMP, where no
        # burst arrives; one second is plenty for a single audio stream.
        options = {"user_agent": opts.user_agent, "rw_timeout": str(int((stall + 2) * 1e6)),
                   "live_start_index": "-1", "icy": "0",
                   "analyzeduration": str(int(FFMPEG_ANALYZE_SECONDS * 1e6)),
                   "protocol_whitelist": FFMPEG_RTMP_PROTOCOLS}
        with contextlib.ExitStack() as stack:
            opener = None
            if hls:  # every playlist, key and segment through the URL policy
                opener = HlsOpener(opts.policy, user_agent=opts.user_agent,
                                   connect_timeout=opts.connect_timeout,
                                   read_timeout=stall + 2.0,
                                   on_refused=lambda exc: self.put(Ended(_describe(exc))))
                stack.callback(opener.close)
                options.update(HLS_OPTIONS)
            stack.enter_context(refusal_first(opener))
            container = av.open(url, "r", format="hls" if hls else None, options=options,
                                timeout=(opts.connect_timeout, stall + 2.0), io_open=opener)
            stack.callback(container.close)
            if not container.streams.audio:
                raise _SourceError("no audio stream")
            stream = container.streams.audio[0]
            codec = stream.codec_context.name
            copy = codec in ("mp3", "mp3float")
            self.put(Connected("mp3" if copy else codec, container.format.name, stall_timeout))
            sync = FrameSync()
            self.last_data = self.options.clock.monotonic()
            for packet in demux_packets(container, stream):
                if self.cancel.is_set():
                    raise _Cancelled
                self.last_data = self.options.clock.monotonic()
                if self.first_data is None:
                    self.first_data = self.last_data
                if not copy:
                    self._decode_packet(packet)
                elif packet.size:
                    frames = sync.feed(bytes(packet))
                    if frames:
                        self.put(Mp3Frames(frames))
            if not copy:
                self._flush_decoder(stream)
            tail = sync.flush()
            if tail:
                self.put(Mp3Frames(tail))


def _socket_of(resp: httpx.Response) -> socket.socket | None:
    """The socket under a streamed httpx response (httpcore's ``network_stream``
    extension), or None."""
    stream = resp.extensions.get("network_stream")
    try:
        sock = stream.get_extra_info("socket") if stream is not None else None
    except Exception:  # a network stream without the "socket" info
        return None
    return sock if isinstance(sock, socket.socket) else None


@contextlib.contextmanager
def refusal_first(opener: HlsOpener | None) -> Iterator[None]:
    """Raise the HLS opener's refusal, if it refused a URL, instead of whatever that
    refusal caused (FFmpeg skips a segment it cannot open, or fails later)."""
    try:
        yield
    except Exception:
        if opener is not None and opener.refused is not None:
            raise opener.refused from None
        raise
    if opener is not None and opener.refused is not None:
        raise opener.refused


def _chain(first: list[bytes | IcyMetadata],
           rest: Iterator[bytes | IcyMetadata]) -> Iterator[bytes | IcyMetadata]:
    yield from first
    yield from rest

