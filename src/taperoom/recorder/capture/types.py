"""What a capture is asked to do and what it reports (the data of :mod:`taperoom.recorder.capture`).

:class:`CaptureOptions` tunes one recording; :class:`CaptureProgress` is the
snapshot the supervisor reports while it runs; :class:`CaptureResult` (with its
:class:`Gap` and :class:`CueEntry` lists) is what a finished recording produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from taperoom import __version__
from taperoom.clock import Clock, SystemClock
from taperoom.recorder.urlpolicy import UrlPolicy


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
    clock : Clock
        Where every time of the capture comes from: the recording's start, duration
        and end time, the reconnection backoff, stalls, gap lengths and times, how
        far a connection's audio runs ahead of its wall time, title times, progress
        (:class:`~taperoom.clock.SystemClock` by default; a test passes a
        :class:`~taperoom.clock.SimulatedClock`). Socket reads still wait in real
        time.
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
    clock: Clock = field(default_factory=SystemClock)


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
