"""Capture of an internet radio stream into one MP3 file, through drops and stalls.

One job per module:

* :mod:`~taperoom.recorder.capture.types` -- what a capture is asked
  (:class:`CaptureOptions`) and what it reports (:class:`CaptureProgress`,
  :class:`CaptureResult` with its :class:`Gap` and :class:`CueEntry` lists);
* :mod:`~taperoom.recorder.capture.sources` -- one connection attempt per daemon
  thread (HTTP/Icecast/SHOUTcast, station playlists, HLS, RTMP), every URL through
  the URL policy (:mod:`taperoom.recorder.urlpolicy`), reporting events to a queue;
* :mod:`~taperoom.recorder.capture.pacing` -- paced reads of a live HTTP stream (the
  socket gathers audio between two reads; drops and the end are noticed at once);
* :mod:`~taperoom.recorder.capture.output` -- the output file: MP3 frames copied,
  or one encoder for the rest of the recording once anything needs encoding;
* :mod:`~taperoom.recorder.capture.supervisor` -- :func:`record_stream`: the loop
  that reconnects with backoff, records gaps and titles, and paces the recording
  in media time (a source faster than real time is a file, recorded once);
* :mod:`~taperoom.recorder.capture.probe` -- :func:`probe_stream_url`, the URL test.

HLS I/O and the URL policy have modules of their own beside this package
(:mod:`taperoom.recorder.hlsio`, :mod:`taperoom.recorder.urlpolicy`).
"""

from __future__ import annotations

from taperoom.recorder.capture.probe import probe_stream_url
from taperoom.recorder.capture.supervisor import (
    FASTER_THAN_REAL_TIME,
    NO_AUDIO,
    SAME_AUDIO_AGAIN,
    record_stream,
)
from taperoom.recorder.capture.types import (
    CaptureOptions,
    CaptureProgress,
    CaptureResult,
    CueEntry,
    Gap,
)

__all__ = [
    "FASTER_THAN_REAL_TIME",
    "NO_AUDIO",
    "SAME_AUDIO_AGAIN",
    "CaptureOptions",
    "CaptureProgress",
    "CaptureResult",
    "CueEntry",
    "Gap",
    "probe_stream_url",
    "record_stream",
]
