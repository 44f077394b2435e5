"""The supervisor of a capture: :func:`record_stream`, through drops, stalls and files.

:func:`record_stream` records a stream for a span of wall-clock time. It runs a
supervisor loop in the calling thread; each connection attempt runs in a daemon
:class:`~taperoom.recorder.capture.sources.Source` thread that pushes events into
a queue of its own, so the supervisor can notice a stall, the end time or a stop
request at once, whatever the network is doing.

Interruptions
-------------
A dropped connection, an HTTP error, a connection failure or a stall (no byte for
``stall_timeout`` seconds; for HLS at least two target durations plus one second,
since segments arrive in bursts) ends the connection, and the capture reconnects
until the end time: at once after the first failure, then after
``backoff_initial`` seconds, doubling up to ``backoff_max`` (FFmpeg's HTTP
reconnect schedule is the same 0, 1, 3, 7... shape); a connection that carried
real-time audio for ``healthy_seconds`` resets the schedule. Each stretch of wall
time without audio becomes one :class:`~taperoom.recorder.capture.types.Gap` at its
position in the output audio, with the reason that started it; a failed first
connection opens a gap at 0 s, and a gap still open at the end time is closed there.
Audio is not padded over a gap: a real-time stream gives as many seconds of audio as
it was connected (plus the server's burst-on-connect). When no audio at all has
arrived for ``no_audio_timeout`` seconds (a dead URL, a server that accepts and
never sends), the recording ends there instead of holding its slot until the end time.
A refusal of the URL policy ends the recording at once (it would be refused again on
every retry).

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

Time
----
Every time of a capture comes from ``options.clock``
(:class:`~taperoom.clock.Clock`): the start, the end time, the backoff waits (through
:meth:`~taperoom.clock.Clock.wait`, which a stop request ends), stalls, the no-audio
timeout, gap times and lengths, how far audio runs ahead of the wall time, title
times and progress. With a :class:`~taperoom.clock.SimulatedClock` an hour of
reconnection backoff passes at once. What waits for the network does so in real time
whatever the clock: the sockets, the source's paced reads, and the supervisor's look
at its event queue (at most 0.1 s of real time between two looks at the clock).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from taperoom.errors import InvalidInput, MediaError
from taperoom.recorder.capture.output import Output
from taperoom.recorder.capture.sources import (
    REFUSED,
    Connected,
    Ended,
    Mp3Frames,
    PcmFrame,
    Source,
    TitleChange,
)
from taperoom.recorder.capture.types import (
    CaptureOptions,
    CaptureProgress,
    CaptureResult,
    CueEntry,
    Gap,
)
from taperoom.recorder.encode import valid_bitrates

log = logging.getLogger(__name__)


#: A connection that ended with more audio than this many times the wall time it was
#: open (and over a second ahead of it) ran faster than real time.
FAST_FACTOR = 2.0
#: How a connection ends when its audio runs ahead of real time by more than the allowance.
FASTER_THAN_REAL_TIME = "faster than real time"
#: How a connection ends when it starts with the audio of a file already recorded.
SAME_AUDIO_AGAIN = "the same audio again"
#: How a connection ends when no audio arrived for ``no_audio_timeout`` seconds.
NO_AUDIO = "no audio"
#: Longest wait, at the end time or a stop, for a paced source's last read (seconds).
LAST_READ_SECONDS = 0.2


def _seconds(event: Mp3Frames | PcmFrame) -> float:
    """Media duration of an audio event in seconds (frame durations, or samples / rate)."""
    if isinstance(event, Mp3Frames):
        return sum(f.header.duration for f in event.frames)
    rate = event.frame.sample_rate
    return event.frame.samples / rate if rate else 0.0


def _digest(event: Mp3Frames | PcmFrame) -> bytes:
    """Fingerprint of the first audio of a connection (its first MP3 frame, or the
    samples of its first decoded frame), to recognise a file served again.

    The samples are read from the frame's planes, up to the last sample: a plane's
    buffer is FFmpeg's line size, which may run past them into alignment padding
    whose bytes are not audio (and could differ between two decodes of the same
    frame). Going through NumPy instead would import it into a worker that needs it
    nowhere else, on the first re-encoded recording.
    """
    if isinstance(event, Mp3Frames):
        return hashlib.blake2b(event.frames[0].data, digest_size=16).digest()
    frame = event.frame
    fmt = frame.format
    per_plane = frame.samples * fmt.bytes * (1 if fmt.is_planar else frame.layout.nb_channels)
    h = hashlib.blake2b(digest_size=16)
    for plane in frame.planes:
        h.update(memoryview(plane)[:per_plane])
    return h.digest()


@dataclass
class _Link:
    """The supervisor's view of one connection attempt."""

    source: Source
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
    held: list[Mp3Frames | PcmFrame] = field(default_factory=list)  # audio beyond the duration
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
        self.clock = options.clock
        self.start_mono = self.clock.monotonic()
        self.start_wall = self.clock.now()
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
        self.output: Output | None = None
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
            out = Output(fh, self.options.bitrate_kbps)
            self.output = out
            try:
                stopped = self._loop(out)
            finally:
                duration = out.close()
        end = self.clock.monotonic()
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

    def _write(self, link: _Link, out: Output, event: Mp3Frames | PcmFrame) -> None:
        """Write `event`'s audio up to the recording's duration (media time); hold the
        rest, in case the connection turns out to be live and open at the end time."""
        if link.held or out.audio_seconds >= self.duration:
            self._hold(link, event)
        elif isinstance(event, PcmFrame):
            out.write_pcm(event.frame)
        else:
            frames, room = event.frames, self.duration - out.audio_seconds
            fit = 0  # frames that start before the duration is reached
            while fit < len(frames) and room > 0:
                room -= frames[fit].header.duration
                fit += 1
            out.write_mp3(frames[:fit] if fit < len(frames) else frames)
            if fit < len(frames):
                self._hold(link, Mp3Frames(frames[fit:]))

    def _hold(self, link: _Link, event: Mp3Frames | PcmFrame) -> None:
        seconds = _seconds(event)
        if self.finite or link.held_seconds + seconds > self._allowance(link):
            return  # a file has no live tail; and no burst is longer than the allowance
        if link.held_since is None:
            link.held_since = self.clock.monotonic()
        link.held.append(event)
        link.held_seconds += seconds

    def _keep_tail(self, link: _Link, out: Output, now: float) -> None:
        """At the end time: keep the audio held beyond the duration if `link` is a live
        connection: its audio no further ahead of real time than a burst, and the audio
        held came at the pace of real time (give or take a stall: HLS segments)."""
        since = link.held_since if link.held_since is not None else now
        paced = link.held_seconds <= (now - since) + link.stall
        if link.held and paced and not self.finite \
                and link.lead(now) <= self._allowance(link):
            for event in link.held:
                if isinstance(event, Mp3Frames):
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

    def _loop(self, out: Output) -> bool:
        opts = self.options
        delay = 0.0
        attempt = 0
        while True:
            if self.stop.is_set():
                return True
            if self.clock.monotonic() >= self.deadline:
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
                if self.clock.wait(self.stop, min(delay, until - self.clock.monotonic())):
                    return True
                if self._out_of_audio(self.clock.monotonic(), f"last: {ended}"):
                    return False
            delay = opts.backoff_initial if delay == 0 else min(delay * 2, opts.backoff_max)

    def _connection(self, out: Output) -> tuple[_Link, str]:
        """One connection attempt; returns it and how it ended."""
        opts = self.options
        events: queue.Queue[Any] = queue.Queue(maxsize=256)
        cancel = threading.Event()
        now = self.clock.monotonic()
        link = _Link(Source(self.url, opts, events, cancel), events, opts.stall_timeout,
                     now, out.audio_seconds, started=now)
        out.new_connection()
        link.source.start()
        try:
            while True:
                now = self.clock.monotonic()
                if self.stop.is_set() or now >= self.deadline:
                    link.source.finish(LAST_READ_SECONDS)  # what its socket gathered
                    cancel.set()  # the source stops adding events ...
                    self._drain(link, out)  # ... and what arrived before the end is kept
                    self._keep_tail(link, out, self.clock.monotonic())
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
            link.ended_at = self.clock.monotonic()
            self.connected = False

    def _drain(self, link: _Link, out: Output) -> None:
        """Apply the events queued when the recording ended, and no more: a source
        faster than the encoder would otherwise keep the queue full for ever."""
        for _ in range(link.events.qsize() + 1):  # +1: a put racing the cancel
            try:
                event = link.events.get_nowait()
            except queue.Empty:
                return
            if isinstance(event, Ended):
                return
            if self._handle(link, out, event) is not None:
                return

    def _handle(self, link: _Link, out: Output, event: Any) -> str | None:
        """Apply one source event; return the reason when the connection ended."""
        now = link.last_event = self.clock.monotonic()
        if isinstance(event, Connected):
            link.connected = True
            if event.stall_timeout:
                link.stall = max(link.stall, event.stall_timeout)
            if self.source_codec is None:
                self.source_codec = event.codec
        elif isinstance(event, Mp3Frames | PcmFrame):
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
        elif isinstance(event, TitleChange):
            offset = link.join_offset if link.first_title else out.audio_seconds
            link.first_title = False
            if event.title != self.title:
                self.title = event.title
                self.cues.append(CueEntry(round(offset, 3), event.title, self.clock.now()))
        elif isinstance(event, Ended):
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
        now = self.clock.monotonic()
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

    Blocks until ``duration_seconds`` of wall time (of ``options.clock``) have passed
    since the call (however many reconnections that takes) or `stop` is set; or,
    earlier, once a source that turns out to be a file has been recorded once, once
    ``duration_seconds`` of audio are written and the connection ends, or when no
    audio arrived for ``options.no_audio_timeout`` seconds. At most
    ``duration_seconds`` of audio (media time) are written, plus the real-time tail of
    a live connection open at the end time (its burst on connect, at most
    ``options.burst_allowance`` seconds). Meant to run in a worker thread.

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
