"""Capture of an internet radio stream into one MP3 file, through drops and stalls.

:func:`record_stream` records a stream for a span of wall-clock time. It runs a
supervisor loop in the calling thread; each connection attempt runs in a daemon
*source* thread that pushes events (connected, whole MP3 frames, decoded audio
frames, ICY titles, end) into a queue of its own, so the supervisor can notice a
stall, the end time or a stop request at once, whatever the network is doing, and
simply abandon a source that hangs (the thread ends by itself at its read timeout).

Sources
-------
* ``http``/``https`` (Icecast, SHOUTcast 1 and 2, plain HTTP audio; ``icy://`` is read
  as ``http://``) through httpx, with ``Icy-MetaData: 1``; the interleaved metadata is
  removed and every ``StreamTitle`` change becomes a :class:`CueEntry` at its audio
  offset. The content is sniffed, not trusted to the ``Content-Type``: a chain of
  Layer III frame headers means MP3 (kept byte for byte), two ADTS headers in a row
  mean AAC; anything else is handed to FFmpeg (through PyAV, reading from the same
  connection). Station playlists (``.pls``, ``.m3u``, ``.xspf``) are followed to the
  first stream they name that the URL policy allows; HLS playlists go to PyAV.
* HLS (``.m3u8``, every playlist, key and segment fetched through
  :class:`~taperoom.recorder.hlsio.HlsOpener`) and RTMP/RTMPS through ``av.open(url,
  timeout=...)``; an MP3 elementary stream is still copied, other codecs are
  decoded.

URL policy
----------
Every URL opened — the station URL, each playlist entry, each redirect, each HLS
variant, key and segment — passes :class:`~taperoom.recorder.urlpolicy.UrlPolicy`
(``CaptureOptions.policy``): allowed schemes, and destination addresses checked
after DNS resolution. Every PyAV open sets FFmpeg's ``protocol_whitelist``. A
refusal ends the recording at once (it would be refused again on every retry).

Output
------
When the source is MP3, only whole frames are written (no ICY bytes, no ID3 tag
from the stream start, no Xing frame, no partial frame at a join: each connection
starts with a fresh :class:`~taperoom.recorder.encode.FrameSync`), so the joined
file is one valid MP3 stream. Otherwise (or when a later connection's MP3 has a
different sample rate or channel count) the audio is decoded and re-encoded by one
:class:`~taperoom.recorder.encode.Mp3Encoder` that lives for the whole recording;
from then on every connection goes through it, so the file stays gapless.

Interruptions
-------------
A dropped connection, an HTTP error, a connection failure or a stall (no byte for
``stall_timeout`` seconds; for HLS at least two target durations plus one second,
since segments arrive in bursts) ends the connection, and the capture reconnects
until the end time: at once after the first failure, then after
``backoff_initial`` seconds, doubling up to ``backoff_max`` (FFmpeg's HTTP
reconnect schedule is the same 0, 1, 3, 7... shape); a connection that carried
real-time audio for ``healthy_seconds`` resets the schedule. Each stretch of wall
time without audio becomes one :class:`Gap` at its position in the output audio,
with the reason that started it; a failed first connection opens a gap at 0 s, and
a gap still open at the end time is closed there. Audio is not padded over a gap: a
real-time stream gives as many seconds of audio as it was connected (plus the
server's burst-on-connect). When no audio at all has arrived for
``no_audio_timeout`` seconds (a dead URL, a server that accepts and never sends),
the recording ends there instead of holding its slot until the end time.

Pacing
------
What a recording writes is counted in media time (frame durations, sample counts),
never in wall time: at most ``duration`` seconds of audio, plus, at the end time, the
audio a live connection still open then received beyond it (the server's burst on
connect, at most ``burst_allowance`` seconds); once that much audio is written and
the connection ends, the recording ends. A connection whose audio runs more than
``burst_allowance`` seconds ahead of the wall time it has been open (or, for HLS,
two target durations plus one second if that is more) delivers far faster than
real time: it is a file (an MP3 on a web server, an HLS VOD playlist), not a live
stream. It is recorded once, as fast as it comes, up to ``duration`` seconds, and
never reconnected. A shorter file, which ends before it can run that far ahead, is
recognised when the next connection starts with the same audio as a connection
that ended ahead of real time; the recording then ends without appending it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import av
import httpx

from taperoom import __version__
from taperoom.errors import InvalidInput, MediaError
from taperoom.recorder.encode import FrameSync, Mp3Encoder, SyncedFrame, valid_bitrates
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
    UrlPolicy,
    UrlRefused,
)

log = logging.getLogger(__name__)

#: Start of the reason of a connection that ended because the URL policy refused a URL.
REFUSED = "refused: "
#: Options of FFmpeg's HLS demuxer with every open going through :class:`HlsOpener`:
#: no persistent or parallel HTTP connections of its own (those need its http protocol).
_HLS_OPTIONS = {"protocol_whitelist": FFMPEG_HLS_PROTOCOLS, "http_persistent": "0",
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

_CODEC_BY_TYPE = {
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mpeg3": "mp3", "audio/x-mpeg": "mp3",
    "audio/aac": "aac", "audio/aacp": "aac", "audio/x-aac": "aac", "audio/mp4": "aac",
    "audio/ogg": "ogg", "application/ogg": "ogg", "audio/opus": "opus", "audio/flac": "flac",
}


@dataclass(frozen=True)
class CaptureOptions:
    """How a stream is captured.

    Attributes
    ----------
    bitrate_kbps : int
        libmp3lame constant bit rate (kbit/s) when the stream is re-encoded.
    stall_timeout : float
        Seconds without any byte from the server after which the connection is
        treated as dropped.
    connect_timeout : float
        Seconds to connect and get the response headers.
    backoff_initial : float
        Seconds before a reconnection attempt that follows a failed one; doubles
        after each further failure. The first attempt after a connection that
        delivered audio (and the first retry of the recording) is immediate.
    backoff_max : float
        Upper bound of the reconnection delay, in seconds.
    healthy_seconds : float
        A connection that delivered real-time audio for this many seconds (from its
        attempt) resets the reconnection backoff.
    burst_allowance : float
        Seconds of audio a connection may deliver ahead of the wall time it has been
        open before its source counts as faster than real time (a file). Icecast's
        burst-on-connect is 64 KiB by default (``burst-size``): 4 s at 128 kbit/s,
        22 s at 24 kbit/s. It is also the most audio kept beyond the recording's
        duration.
    no_audio_timeout : float or None
        Seconds without any audio (from the start, or since the last audio) after
        which the recording ends; None or 0 waits until the end time.
    user_agent : str
        ``User-Agent`` sent to the server.
    progress_interval : float
        Seconds between two progress reports.
    policy : UrlPolicy
        Which URLs and destination addresses may be opened; the default refuses
        every non-public address.
    """

    bitrate_kbps: int = 192
    stall_timeout: float = 10.0
    connect_timeout: float = 10.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    healthy_seconds: float = 10.0
    burst_allowance: float = 60.0
    no_audio_timeout: float | None = 300.0
    user_agent: str = f"Taperoom/{__version__}"
    progress_interval: float = 0.5
    policy: UrlPolicy = field(default_factory=UrlPolicy)


@dataclass(frozen=True)
class Gap:
    """A stretch of wall time during which no audio was received.

    Attributes
    ----------
    at_seconds : float
        Position in the output audio (seconds) where the audio before and after
        the gap are joined.
    started_at : datetime
        Aware UTC wall-clock time when audio stopped (or when the recording started,
        for a gap at 0 s).
    length_seconds : float
        Wall-clock length of the gap in seconds.
    reason : str
        What started it: ``"dropped"``, ``"stalled"``, ``"http 503"``,
        ``"connect failed: ..."``, ...
    """

    at_seconds: float
    started_at: datetime
    length_seconds: float
    reason: str


@dataclass(frozen=True)
class CueEntry:
    """One ICY ``StreamTitle`` change.

    Attributes
    ----------
    offset_seconds : float
        Position in the output audio (seconds) from which the title applies; the
        first title of a connection applies from the connection's first audio.
    title : str
        The ``StreamTitle`` text (usually ``"Artist - Title"``).
    wall_time : datetime
        Aware UTC time when the title arrived.
    """

    offset_seconds: float
    title: str
    wall_time: datetime


@dataclass
class CaptureProgress:
    """A snapshot of a running capture, reported every ``progress_interval`` seconds.

    Attributes
    ----------
    elapsed_seconds : float
        Wall-clock seconds since the capture started.
    audio_seconds : float
        Seconds of audio written so far.
    bytes_written : int
        Bytes written to the output file.
    reconnects : int
        Connection attempts after the first one.
    connected : bool
        Whether audio is currently flowing.
    title : str or None
        The current ICY title.
    """

    elapsed_seconds: float
    audio_seconds: float
    bytes_written: int
    reconnects: int
    connected: bool
    title: str | None


@dataclass
class CaptureResult:
    """What :func:`record_stream` produced.

    Attributes
    ----------
    path : Path
        The MP3 file written.
    duration_seconds : float
        Audio duration of the file (frames x samples per frame / rate).
    bytes_written : int
        Size of the file in bytes.
    source_codec : str
        Codec of the (first) source: ``"mp3"``, ``"aac"``, or FFmpeg's codec name.
    stream_copy : bool
        True when every frame of the file is a frame of the source (no re-encoding).
    gaps : list of Gap
        Every interruption, in order.
    cues : list of CueEntry
        Every ICY title change, in order.
    reconnects : int
        Connection attempts after the first one.
    stopped : bool
        True when the capture ended early because `stop` was set.
    finite_source : bool
        True when the source delivered far faster than real time (a file, not a
        live stream) and was recorded once.
    note : str or None
        Why the capture ended before its end time, other than `stop`: the source
        was a file, or no audio arrived for ``no_audio_timeout`` seconds.
    """

    path: Path
    duration_seconds: float
    bytes_written: int
    source_codec: str
    stream_copy: bool
    gaps: list[Gap] = field(default_factory=list)
    cues: list[CueEntry] = field(default_factory=list)
    reconnects: int = 0
    stopped: bool = False
    finite_source: bool = False
    note: str | None = None


# -- events from a source thread ---------------------------------------------------------


@dataclass
class _Connected:
    codec: str
    content_type: str | None = None
    stall_timeout: float | None = None  # a longer stall timeout this source needs (HLS)


@dataclass
class _Mp3:
    frames: list[SyncedFrame]


@dataclass
class _Pcm:
    frame: av.AudioFrame


@dataclass
class _Title:
    title: str


@dataclass
class _Ended:
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


def _is_playlist(url: str, ctype: str | None) -> bool:
    """Whether an HTTP answer is a playlist: by content type, or by name unless typed as media."""
    if ctype in PLAYLIST_TYPES:
        return True
    media = ctype is not None and ctype.startswith(("audio/", "video/"))
    return not media and urlsplit(url).path.lower().endswith((".m3u8", ".m3u", ".pls",
                                                              ".xspf"))


def _is_adts(data: bytes) -> bool:
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


class _Source(threading.Thread):
    """One connection attempt, run in a daemon thread, reporting to a queue."""

    def __init__(self, url: str, options: CaptureOptions, events: queue.Queue[Any],
                 cancel: threading.Event) -> None:
        super().__init__(name="capture-source", daemon=True)
        self.url = url
        self.options = options
        self.events = events
        self.cancel = cancel
        self.last_data = time.monotonic()
        self.first_data: float | None = None  # when the first audio bytes arrived

    # -- plumbing --

    def put(self, event: Any) -> None:
        while True:
            if self.cancel.is_set():
                raise _Cancelled
            try:
                self.events.put(event, timeout=0.2)
                return
            except queue.Full:
                continue

    def run(self) -> None:
        try:
            self._run()
            self.put(_Ended("end of stream"))
        except _Cancelled:
            pass
        except Exception as exc:
            with contextlib.suppress(_Cancelled):
                self.put(_Ended(_describe(exc)))

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
            self.last_data = time.monotonic()
            ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower() or None
            raw = resp.iter_raw()
            if _is_playlist(str(resp.url), ctype):
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

            def items() -> Iterator[bytes | IcyMetadata]:
                for chunk in raw:
                    if self.cancel.is_set():
                        raise _Cancelled
                    self.last_data = time.monotonic()
                    if self.first_data is None:
                        self.first_data = self.last_data
                    yield from demux.feed(chunk)

            self._http_audio(items(), ctype)
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
            if _is_adts(bytes(head[-(SNIFF_BYTES + 8192):])):
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
        self.put(_Connected("mp3", ctype))
        sync = FrameSync()
        for item in items:
            if isinstance(item, IcyMetadata):
                if item.title:
                    self.put(_Title(item.title))
                continue
            frames = sync.feed(item)
            if frames:
                self.put(_Mp3(frames))
        tail = sync.flush()
        if tail:
            self.put(_Mp3(tail))

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
            self.put(_Connected(stream.codec_context.name, ctype))
            for packet in container.demux(stream):
                if self.cancel.is_set():
                    raise _Cancelled
                pos = packet.pos if packet.pos is not None else -1
                while pending and (pos < 0 or pending[0][0] <= pos):
                    self.put(_Title(pending.pop(0)[1]))
                self._decode_packet(packet)
            for _, title in pending:
                self.put(_Title(title))
        finally:
            container.close()

    def _decode_packet(self, packet: av.Packet) -> None:
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            return  # a damaged frame: skip it, as players do
        for frame in frames:
            if isinstance(frame, av.AudioFrame):
                self.put(_Pcm(frame))

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
                                   on_refused=lambda exc: self.put(_Ended(_describe(exc))))
                stack.callback(opener.close)
                options.update(_HLS_OPTIONS)
            stack.enter_context(_refusal_first(opener))
            container = av.open(url, "r", format="hls" if hls else None, options=options,
                                timeout=(opts.connect_timeout, stall + 2.0), io_open=opener)
            stack.callback(container.close)
            if not container.streams.audio:
                raise _SourceError("no audio stream")
            stream = container.streams.audio[0]
            codec = stream.codec_context.name
            copy = codec in ("mp3", "mp3float")
            self.put(_Connected("mp3" if copy else codec, container.format.name, stall_timeout))
            sync = FrameSync()
            self.last_data = time.monotonic()
            for packet in container.demux(stream):
                if self.cancel.is_set():
                    raise _Cancelled
                self.last_data = time.monotonic()
                if self.first_data is None:
                    self.first_data = self.last_data
                if not copy:
                    self._decode_packet(packet)  # the last, empty packets flush the decoder
                elif packet.size:
                    frames = sync.feed(bytes(packet))
                    if frames:
                        self.put(_Mp3(frames))
            tail = sync.flush()
            if tail:
                self.put(_Mp3(tail))


@contextlib.contextmanager
def _refusal_first(opener: HlsOpener | None) -> Iterator[None]:
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


# -- output ----------------------------------------------------------------------------------


class _Output:
    """The output file: copies MP3 frames, or encodes once anything needs encoding."""

    def __init__(self, fh: BinaryIO, bitrate_kbps: int) -> None:
        self.fh = fh
        self.bitrate_kbps = bitrate_kbps
        self.copy_signature: tuple[str, int, int] | None = None
        self.copy_seconds = 0.0
        self.copy_bytes = 0
        self.encoder: Mp3Encoder | None = None
        self._mp3_decoder: av.AudioCodecContext | None = None

    @property
    def stream_copy(self) -> bool:
        return self.encoder is None

    @property
    def audio_seconds(self) -> float:
        return self.copy_seconds + (self.encoder.seconds_in if self.encoder else 0.0)

    @property
    def bytes_written(self) -> int:
        return self.copy_bytes + (self.encoder.bytes_written if self.encoder else 0)

    def new_connection(self) -> None:
        self._mp3_decoder = None  # the bit reservoir must not span a join

    def write_mp3(self, frames: list[SyncedFrame]) -> None:
        for f in frames:
            if self.encoder is None and self.copy_signature is None:
                self.copy_signature = f.header.signature
            if self.encoder is None and f.header.signature == self.copy_signature:
                self.fh.write(f.data)
                self.copy_seconds += f.header.duration
                self.copy_bytes += len(f.data)
                continue
            if self._mp3_decoder is None:
                ctx = av.CodecContext.create("mp3", "r")
                assert isinstance(ctx, av.AudioCodecContext)
                self._mp3_decoder = ctx
            try:
                decoded = self._mp3_decoder.decode(av.Packet(f.data))
            except av.error.FFmpegError:
                continue
            for frame in decoded:
                self.write_pcm(frame)

    def write_pcm(self, frame: av.AudioFrame) -> None:
        if self.encoder is None:
            rate, channels = 44100, 2
            if self.copy_signature is not None:  # continue the copied stream's format
                _, rate, channels = self.copy_signature
                log.info("re-encoding from here on: the source format changed")
            allowed = valid_bitrates(rate)
            bitrate = min(allowed, key=lambda b: (abs(b - self.bitrate_kbps), b))
            self.encoder = Mp3Encoder(self.fh, bitrate_kbps=bitrate, sample_rate=rate,
                                      channels=channels)
        self.encoder.encode(frame)

    def close(self) -> float:
        """Flush; return the audio duration of the file in seconds."""
        if self.encoder is None:
            return self.copy_seconds
        self.encoder.close()
        return self.copy_seconds + self.encoder.seconds_out


# -- the supervisor -----------------------------------------------------------------------


#: A connection that ended with more audio than this many times the wall time it was
#: open (and over a second ahead of it) ran faster than real time.
FAST_FACTOR = 2.0
#: How a connection ends when its audio runs ahead of real time by more than the allowance.
FASTER_THAN_REAL_TIME = "faster than real time"
#: How a connection ends when it starts with the audio of a file already recorded.
SAME_AUDIO_AGAIN = "the same audio again"
#: How a connection ends when no audio arrived for ``no_audio_timeout`` seconds.
NO_AUDIO = "no audio"


def _seconds(event: _Mp3 | _Pcm) -> float:
    """Media duration of an audio event in seconds (frame durations, or samples / rate)."""
    if isinstance(event, _Mp3):
        return sum(f.header.duration for f in event.frames)
    rate = event.frame.sample_rate
    return event.frame.samples / rate if rate else 0.0


def _digest(event: _Mp3 | _Pcm) -> bytes:
    """Fingerprint of the first audio of a connection (its first MP3 frame, or the
    samples of its first decoded frame), to recognise a file served again."""
    data = (event.frames[0].data if isinstance(event, _Mp3)
            else event.frame.to_ndarray().tobytes())
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass
class _Link:
    """The supervisor's view of one connection attempt."""

    source: _Source
    events: queue.Queue[Any]
    stall: float
    last_event: float
    join_offset: float  # audio position where this connection's audio starts
    started: float  # when the attempt began (monotonic)
    connected: bool = False
    got_audio: bool = False
    first_title: bool = True
    first_audio: float | None = None  # when its first audio arrived (monotonic)
    media: float = 0.0  # seconds of audio it delivered
    head: bytes | None = None  # _digest of its first audio
    held: list[_Mp3 | _Pcm] = field(default_factory=list)  # audio beyond the duration
    held_seconds: float = 0.0
    held_since: float | None = None  # when the first audio beyond the duration arrived
    ended_at: float | None = None

    def lead(self, now: float) -> float:
        """Seconds its audio runs ahead of the wall time since its first audio."""
        if self.first_audio is None:
            return 0.0
        return self.media - (now - self.first_audio)

    def ended_ahead(self) -> bool:
        """Whether it ended having delivered its audio far faster than real time (over
        its whole attempt: FFmpeg's probe may hold the first second back, then hand it
        over at once)."""
        if self.first_audio is None or self.ended_at is None:
            return False
        life = max(0.0, self.ended_at - self.started)
        return self.media > FAST_FACTOR * life and self.media - life > 1.0


@dataclass
class _OpenGap:
    started_mono: float
    started_at: datetime
    reason: str


class _Capture:
    """State of one :func:`record_stream` call."""

    def __init__(self, url: str, out_path: Path, duration: float, options: CaptureOptions,
                 stop: threading.Event, progress: Callable[[CaptureProgress], None] | None
                 ) -> None:
        self.url = url
        self.out_path = out_path
        self.duration = duration
        self.options = options
        self.stop = stop
        self.progress = progress
        self.start_mono = time.monotonic()
        self.start_wall = datetime.now(UTC)
        self.deadline = self.start_mono + duration
        self.gaps: list[Gap] = []
        self.cues: list[CueEntry] = []
        self.reconnects = 0
        self.source_codec: str | None = None
        self.title: str | None = None
        self.connected = False
        self.last_reason = "no audio received"
        self.open_gap: _OpenGap | None = None
        self._last_progress = 0.0
        self.output: _Output | None = None
        self.last_audio = self.start_mono  # when audio last arrived (monotonic)
        self.finite = False  # the source is a file, recorded once
        self.note: str | None = None  # why the recording ended before its end time
        self.fast_head: bytes | None = None  # first audio of a connection that ran ahead

    def wall(self, mono: float) -> datetime:
        return self.start_wall + timedelta(seconds=mono - self.start_mono)

    def run(self) -> CaptureResult:
        try:
            fh = open(self.out_path, "wb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise MediaError(self.out_path, f"cannot write: {exc.strerror or exc}") from exc
        with fh:
            out = _Output(fh, self.options.bitrate_kbps)
            self.output = out
            try:
                stopped = self._loop(out)
            finally:
                duration = out.close()
        end = time.monotonic()
        if self.finite:
            self.open_gap = None  # the file ended: not an interruption
        if self.open_gap is not None:
            self._close_gap(min(end, self.deadline), out.audio_seconds)
        size = out.bytes_written
        if size == 0:
            with contextlib.suppress(OSError):
                self.out_path.unlink()
            raise MediaError(self.out_path, f"nothing could be recorded from {self.url}: "
                                            f"{self.last_reason}")
        self._report(force=True)
        return CaptureResult(path=self.out_path, duration_seconds=duration, bytes_written=size,
                             source_codec=self.source_codec or "unknown",
                             stream_copy=out.stream_copy, gaps=self.gaps, cues=self.cues,
                             reconnects=self.reconnects, stopped=stopped,
                             finite_source=self.finite, note=self.note)

    # -- pacing and timeouts --

    def _allowance(self, link: _Link) -> float:
        """Seconds `link`'s audio may run ahead of real time (more for HLS segments)."""
        return max(self.options.burst_allowance, link.stall)

    def _no_audio_deadline(self) -> float:
        timeout = self.options.no_audio_timeout
        return self.last_audio + timeout if timeout else float("inf")

    def _out_of_audio(self, now: float, current: str) -> bool:
        """True (and the reason noted) once no audio arrived for ``no_audio_timeout`` s;
        `current` says what the capture is doing meanwhile."""
        if now < self._no_audio_deadline():
            return False
        if self.note is None:
            reason = f"no audio for {self.options.no_audio_timeout:g} s ({current})"
            self.note = self.last_reason = reason
            log.warning("stream %s: %s", self.url, reason)
        return True

    def _write(self, link: _Link, out: _Output, event: _Mp3 | _Pcm) -> None:
        """Write `event`'s audio up to the recording's duration (media time); hold the
        rest, in case the connection turns out to be live and open at the end time."""
        if link.held or out.audio_seconds >= self.duration:
            self._hold(link, event)
        elif isinstance(event, _Pcm):
            out.write_pcm(event.frame)
        else:
            for i, frame in enumerate(event.frames):
                if out.audio_seconds >= self.duration:
                    self._hold(link, _Mp3(event.frames[i:]))
                    return
                out.write_mp3([frame])

    def _hold(self, link: _Link, event: _Mp3 | _Pcm) -> None:
        seconds = _seconds(event)
        if self.finite or link.held_seconds + seconds > self._allowance(link):
            return  # a file has no live tail; and no burst is longer than the allowance
        if link.held_since is None:
            link.held_since = time.monotonic()
        link.held.append(event)
        link.held_seconds += seconds

    def _keep_tail(self, link: _Link, out: _Output, now: float) -> None:
        """At the end time: keep the audio held beyond the duration if `link` is a live
        connection: its audio no further ahead of real time than a burst, and the audio
        held came at the pace of real time (give or take a stall: HLS segments)."""
        since = link.held_since if link.held_since is not None else now
        paced = link.held_seconds <= (now - since) + link.stall
        if link.held and paced and not self.finite \
                and link.lead(now) <= self._allowance(link):
            for event in link.held:
                if isinstance(event, _Mp3):
                    out.write_mp3(event.frames)
                else:
                    out.write_pcm(event.frame)
        link.held.clear()

    def _file(self, reason: str) -> str:
        """Note that the source is a file: it is recorded once (up to the duration),
        never reconnected, and the recording ends with it."""
        if not self.finite:
            self.finite = True
            self.note = (f"the source is a file, not a live stream ({reason}): it was "
                         "recorded once")
            log.info("stream %s: %s", self.url, self.note)
        return reason

    # -- the loop --

    def _loop(self, out: _Output) -> bool:
        opts = self.options
        delay = 0.0
        attempt = 0
        while True:
            if self.stop.is_set():
                return True
            if time.monotonic() >= self.deadline:
                return False
            if attempt:
                self.reconnects += 1
            attempt += 1
            link, ended = self._connection(out)
            if ended == "stop":
                return True
            if ended == "deadline":
                return False
            if self.finite or ended == NO_AUDIO:
                return False
            self.last_reason = ended
            log.info("stream %s: %s", self.url, ended)
            if ended.startswith(REFUSED):  # the URL policy would refuse it again
                return False
            ahead = link.ended_ahead()
            if out.audio_seconds >= self.duration:  # all the audio asked for is there
                if ahead:
                    self._file(FASTER_THAN_REAL_TIME)
                return False
            self.fast_head = link.head if ahead else None
            assert link.ended_at is not None
            if link.got_audio and not ahead \
                    and link.ended_at - link.started >= opts.healthy_seconds:
                delay = 0.0  # a healthy stretch: start the backoff afresh
            if delay > 0:
                self._report(force=True)
                until = min(self.deadline, self._no_audio_deadline())
                if self.stop.wait(max(0.0, min(delay, until - time.monotonic()))):
                    return True
                if self._out_of_audio(time.monotonic(), f"last: {ended}"):
                    return False
            delay = opts.backoff_initial if delay == 0 else min(delay * 2, opts.backoff_max)

    def _connection(self, out: _Output) -> tuple[_Link, str]:
        """One connection attempt; returns it and how it ended."""
        opts = self.options
        events: queue.Queue[Any] = queue.Queue(maxsize=256)
        cancel = threading.Event()
        now = time.monotonic()
        link = _Link(_Source(self.url, opts, events, cancel), events, opts.stall_timeout,
                     now, out.audio_seconds, started=now)
        out.new_connection()
        link.source.start()
        try:
            while True:
                now = time.monotonic()
                if self.stop.is_set() or now >= self.deadline:
                    cancel.set()  # the source stops adding events ...
                    self._drain(link, out)  # ... and what arrived before the end is kept
                    self._keep_tail(link, out, time.monotonic())
                    return link, "stop" if self.stop.is_set() else "deadline"
                if now >= self._no_audio_deadline() and self._out_of_audio(
                        now, ("connected, but no audio" if link.connected else "no answer")
                        + (f"; before: {self.last_reason}" if self.reconnects else "")):
                    self._begin_gap(self.last_audio if link.got_audio else self.start_mono,
                                    NO_AUDIO)
                    return link, NO_AUDIO
                heard = max(link.source.last_data, link.last_event)
                limit = link.stall if link.connected else opts.connect_timeout + link.stall
                if now - heard > limit:  # audio stopped when the data did
                    self._begin_gap(heard if link.got_audio else self.start_mono, "stalled")
                    return link, "stalled"
                self._report()
                try:
                    event = events.get(timeout=max(0.01, min(0.1, self.deadline - now)))
                except queue.Empty:
                    continue
                ended = self._handle(link, out, event)
                if ended is not None:
                    return link, ended
        finally:
            cancel.set()
            link.ended_at = time.monotonic()
            self.connected = False

    def _drain(self, link: _Link, out: _Output) -> None:
        """Apply the events queued when the recording ended, and no more: a source
        faster than the encoder would otherwise keep the queue full for ever."""
        for _ in range(link.events.qsize() + 1):  # +1: a put racing the cancel
            try:
                event = link.events.get_nowait()
            except queue.Empty:
                return
            if isinstance(event, _Ended):
                return
            if self._handle(link, out, event) is not None:
                return

    def _handle(self, link: _Link, out: _Output, event: Any) -> str | None:
        """Apply one source event; return the reason when the connection ended."""
        now = link.last_event = time.monotonic()
        if isinstance(event, _Connected):
            link.connected = True
            if event.stall_timeout:
                link.stall = max(link.stall, event.stall_timeout)
            if self.source_codec is None:
                self.source_codec = event.codec
        elif isinstance(event, _Mp3 | _Pcm):
            if not link.got_audio:
                head = _digest(event)
                if head == self.fast_head:  # a file that was recorded already
                    return self._file(SAME_AUDIO_AGAIN)
                link.head = head
                link.got_audio = self.connected = True
                link.join_offset = out.audio_seconds
                first = link.source.first_data
                link.first_audio = first if first is not None and first <= now else now
                self._close_gap(link.first_audio, link.join_offset)
            self.last_audio = now
            link.media += _seconds(event)
            if not self.finite and link.lead(now) > self._allowance(link):
                self._file(FASTER_THAN_REAL_TIME)  # record it on, up to the duration
                link.held.clear()
            self._write(link, out, event)
            if self.finite and out.audio_seconds >= self.duration:
                return "duration reached"  # all of the file that was asked for
        elif isinstance(event, _Title):
            offset = link.join_offset if link.first_title else out.audio_seconds
            link.first_title = False
            if event.title != self.title:
                self.title = event.title
                self.cues.append(CueEntry(round(offset, 3), event.title, datetime.now(UTC)))
        elif isinstance(event, _Ended):
            self._begin_gap(now if link.got_audio else self.start_mono, event.reason)
            return event.reason
        return None

    def _begin_gap(self, mono: float, reason: str) -> None:
        if self.open_gap is None:
            self.open_gap = _OpenGap(mono, self.wall(mono), reason)

    def _close_gap(self, mono: float, at_seconds: float) -> None:
        gap = self.open_gap
        if gap is None:
            return
        self.open_gap = None
        self.gaps.append(Gap(at_seconds=round(at_seconds, 3), started_at=gap.started_at,
                             length_seconds=round(max(0.0, mono - gap.started_mono), 3),
                             reason=gap.reason))

    def _report(self, *, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if not force and now - self._last_progress < self.options.progress_interval:
            return
        self._last_progress = now
        out = self.output
        try:
            self.progress(CaptureProgress(
                elapsed_seconds=min(now, self.deadline) - self.start_mono,
                audio_seconds=out.audio_seconds if out else 0.0,
                bytes_written=out.bytes_written if out else 0,
                reconnects=self.reconnects, connected=self.connected, title=self.title))
        except Exception:
            log.exception("capture progress callback failed")


def record_stream(url: str, out_path: Path, duration_seconds: float, *,
                  options: CaptureOptions = CaptureOptions(),
                  stop: threading.Event | None = None,
                  progress: Callable[[CaptureProgress], None] | None = None) -> CaptureResult:
    """Record a stream into one MP3 file for a span of wall-clock time.

    Blocks until ``duration_seconds`` of wall time have passed since the call (however
    many reconnections that takes) or `stop` is set; or, earlier, once a source that
    turns out to be a file has been recorded once, once ``duration_seconds`` of audio
    are written and the connection ends, or when no audio arrived for
    ``options.no_audio_timeout`` seconds. At most ``duration_seconds`` of audio (media
    time) are written, plus the real-time tail of a live connection open at the end
    time (its burst on connect, at most ``options.burst_allowance`` seconds). Meant to
    run in a worker thread.

    Parameters
    ----------
    url : str
        ``http``/``https``/``icy`` (Icecast, SHOUTcast, HLS ``.m3u8``,
        ``.pls``/``.m3u``/``.xspf`` station playlists) or ``rtmp``/``rtmps``.
    out_path : Path
        File written directly (created or truncated); the caller renames it after.
    duration_seconds : float
        Wall-clock length of the recording, in seconds (> 0).
    options : CaptureOptions
        Bit rate, timeouts and reconnection backoff.
    stop : threading.Event, optional
        Set it to end the recording early; what was recorded is kept.
    progress : callable, optional
        Called with a :class:`CaptureProgress` about every
        ``options.progress_interval`` seconds, from the calling thread; its
        exceptions are logged and ignored.

    Returns
    -------
    CaptureResult
        The file, its audio duration, codec facts, gaps, cues and reconnections.

    Raises
    ------
    InvalidInput
        A non-positive duration or an invalid bit rate; :class:`UrlRefused` (an
        InvalidInput) when `url` itself is outside ``options.policy``.
    MediaError
        No audio at all could be recorded (the file is removed); the message gives
        the last reason (``http 404``, ``connect failed: ...``, ``no audio for 300 s
        (...)``, ``refused: ...`` when a playlist entry, redirect or address was outside
        the policy, which ends the recording at once).
    """
    if not duration_seconds or duration_seconds <= 0:
        raise InvalidInput(f"recording duration must be positive, got {duration_seconds}")
    if options.bitrate_kbps not in valid_bitrates(44100):
        raise InvalidInput(f"{options.bitrate_kbps} kbit/s is not an MP3 bit rate")
    clean = options.policy.normalize(url)
    capture = _Capture(clean, Path(out_path), float(duration_seconds), options,
                       stop or threading.Event(), progress)
    log.info("recording %s for %.0f s into %s", clean, duration_seconds, Path(out_path).name)
    result = capture.run()
    log.info("recorded %s: %.1f s of audio, %d gaps, %d reconnects%s", clean,
             result.duration_seconds, len(result.gaps), result.reconnects,
             " (stopped)" if result.stopped else "")
    return result


# -- URL test -------------------------------------------------------------------------------


def probe_stream_url(url: str, *, timeout: float = 10.0,
                     user_agent: str = CaptureOptions.user_agent,
                     policy: UrlPolicy | None = None) -> dict[str, Any]:
    """Connect to a stream briefly and say what it carries (the contract's URL test).

    Parameters
    ----------
    url : str
        Stream URL (any scheme :func:`record_stream` accepts).
    timeout : float
        Seconds allowed for the whole probe.
    user_agent : str
        ``User-Agent`` sent.
    policy : UrlPolicy, optional
        Applied to the URL and to everything it leads to, as in a recording; by
        default every non-public address is refused.

    Returns
    -------
    dict
        ``success`` (bool: audio was recognised), ``message`` (human-readable),
        ``content_type``, ``codec`` (``"mp3"``, ``"aac"``, FFmpeg's name or None),
        ``bitrate`` (kbit/s or None), ``sample_rate`` (Hz or None), ``channels``,
        ``icy_name``, ``status_code`` (HTTP status or None) and ``stream_url`` (the
        URL finally read, after playlists). Network errors never raise: they give
        ``success: False`` and the reason in ``message``.

    Raises
    ------
    UrlRefused
        The URL, a playlist entry, a redirect, an HLS entry or a destination
        address is outside `policy` (nothing outside it was opened; the answer does
        not depend on whether a refused local path exists).
    """
    info: dict[str, Any] = {"success": False, "message": "", "content_type": None,
                            "codec": None, "bitrate": None, "sample_rate": None,
                            "channels": None, "icy_name": None, "status_code": None,
                            "stream_url": url}
    policy = policy or UrlPolicy()
    deadline = time.monotonic() + timeout
    target, what = url, "stream URL"
    try:
        for _ in range(MAX_PLAYLIST_HOPS):
            target = policy.normalize(target, what=what)
            info["stream_url"] = target
            if urlsplit(target).scheme.lower() in HTTP_SCHEMES:
                nxt = _probe_http(target, info, deadline, user_agent, policy)
                if nxt is None:
                    break
                target, what = nxt, "playlist entry"
                if target.startswith("hls+"):
                    target = target[4:]
                    info["stream_url"] = target
                    _probe_ffmpeg(target, info, deadline, user_agent, policy, hls=True)
                    break
            else:
                target = policy.check_url(target, what=what)
                _probe_ffmpeg(target, info, deadline, user_agent, policy)
                break
    except UrlRefused:
        raise
    except httpx.TimeoutException:
        info["message"] = f"timed out after {timeout:g} s"
    except httpx.HTTPError as exc:
        info["message"] = f"connection failed: {exc}"
    except av.error.FFmpegError as exc:
        info["message"] = f"cannot open the stream: {exc.strerror or exc}"
    except Exception as exc:  # the probe never raises for what a server does
        info["message"] = f"{type(exc).__name__}: {exc}"
    if info["success"] and not info["message"]:
        parts = [str(info["codec"]).upper()]
        if info["bitrate"]:
            parts.append(f"{info['bitrate']} kbit/s")
        if info["sample_rate"]:
            parts.append(f"{info['sample_rate'] / 1000:g} kHz")
        if info["channels"]:
            parts.append({1: "mono", 2: "stereo"}.get(info["channels"],
                                                     f"{info['channels']} channels"))
        name = f" ({info['icy_name']})" if info["icy_name"] else ""
        info["message"] = "Stream is reachable: " + " ".join(parts) + name
    elif not info["success"] and not info["message"]:
        info["message"] = "no audio recognised in the stream"
    return info


def _probe_http(url: str, info: dict[str, Any], deadline: float, user_agent: str,
                policy: UrlPolicy) -> str | None:
    """Probe one HTTP URL; return the next URL to probe (a playlist entry, or
    ``"hls+<url>"`` for an HLS playlist) or None."""
    left = max(0.5, deadline - time.monotonic())
    with http_client(user_agent=user_agent, connect_timeout=left, read_timeout=left,
                     policy=policy) as client, \
            contextlib.closing(open_checked(client, url, policy=policy,
                                            headers={"Accept-Encoding": "identity"})) as resp:
        info["status_code"] = resp.status_code
        ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower() or None
        info["content_type"] = ctype
        info["icy_name"] = resp.headers.get("icy-name")
        with contextlib.suppress(ValueError):
            br = resp.headers.get("icy-br", "").split(",")[0]
            info["bitrate"] = int(br) if br else None
        if resp.status_code >= 400:
            info["message"] = f"HTTP {resp.status_code} {resp.reason_phrase}".strip()
            return None
        try:
            metaint = int(resp.headers.get("icy-metaint", "0") or 0)
        except ValueError:
            metaint = 0
        demux = IcyDemuxer(metaint if metaint > 0 else None)
        data = bytearray()
        limit = PLAYLIST_MAX_BYTES
        for chunk in resp.iter_raw():
            for item in demux.feed(chunk):
                if isinstance(item, bytes):
                    data += item
            if _sniffed(bytes(data), info) or len(data) >= limit \
                    or time.monotonic() > deadline:
                break
        if not info["success"] and _is_playlist(str(resp.url), ctype):
            text = bytes(data).decode("utf-8", "replace")
            if is_hls_playlist(text):
                check_hls_playlist(text, str(resp.url), policy)
                return "hls+" + str(resp.url)
            urls = parse_playlist(text, str(resp.url))
            if urls:
                return policy.first_allowed(urls, what="playlist entry")
            info["message"] = "the playlist names no stream"
            return None
        if not info["success"] and data:
            _probe_bytes(bytes(data), info)
    return None


def _sniffed(data: bytes, info: dict[str, Any]) -> bool:
    frames = FrameSync().feed(data)
    if frames:
        h = frames[0].header
        info.update(success=True, codec="mp3", sample_rate=h.sample_rate, channels=h.channels)
        info["bitrate"] = info["bitrate"] or h.bitrate_kbps
        return True
    if _is_adts(data):
        pos = 0
        while data[pos] != 0xFF or (data[pos + 1] & 0xF6) != 0xF0:
            pos += 1
        rates = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000,
                 11025, 8000, 7350)
        sr_index = (data[pos + 2] >> 2) & 0x0F
        channels = ((data[pos + 2] & 0x01) << 2) | (data[pos + 3] >> 6)
        info.update(success=True, codec="aac",
                    sample_rate=rates[sr_index] if sr_index < len(rates) else None,
                    channels=channels or None)
        return True
    return False


def _probe_bytes(data: bytes, info: dict[str, Any]) -> None:
    """Let FFmpeg identify a stream from its first bytes."""
    import io

    try:
        with av.open(io.BytesIO(data), "r",
                     options={"protocol_whitelist": FFMPEG_NO_PROTOCOLS}) as c:
            if c.streams.audio:
                s = c.streams.audio[0]
                info.update(success=True, codec=s.codec_context.name, sample_rate=s.rate,
                            channels=s.channels)
                if s.bit_rate and not info["bitrate"]:
                    info["bitrate"] = s.bit_rate // 1000
    except av.error.FFmpegError:
        info["codec"] = _CODEC_BY_TYPE.get(info["content_type"] or "")


def _probe_ffmpeg(url: str, info: dict[str, Any], deadline: float, user_agent: str,
                  policy: UrlPolicy, *, hls: bool = False) -> None:
    """Let FFmpeg open an RTMP URL, or an HLS playlist with every fetch through `policy`."""
    left = max(1.0, deadline - time.monotonic())
    options = {"user_agent": user_agent, "rw_timeout": str(int(left * 1e6)),
               "protocol_whitelist": FFMPEG_RTMP_PROTOCOLS}
    with contextlib.ExitStack() as stack:
        opener = None
        if hls:
            opener = HlsOpener(policy, user_agent=user_agent, connect_timeout=left,
                               read_timeout=left)
            stack.callback(opener.close)
            options.update(_HLS_OPTIONS)
        stack.enter_context(_refusal_first(opener))
        c = stack.enter_context(av.open(url, "r", format="hls" if hls else None,
                                        options=options, timeout=(left, left),
                                        io_open=opener))
        info["content_type"] = info["content_type"] or c.format.name
        if not c.streams.audio:
            info["message"] = "no audio stream"
            return
        s = c.streams.audio[0]
        info.update(success=True, codec=s.codec_context.name, sample_rate=s.rate,
                    channels=s.channels)
        br = s.bit_rate or c.bit_rate
        if br and not info["bitrate"]:
            info["bitrate"] = int(br) // 1000
