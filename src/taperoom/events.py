"""Typed event names and payloads, and an in-process event bus.

Services call :meth:`EventBus.send`; subscribers (the WebSocket hub, the engine
link, tests) receive ``(name, data)``. Names are those of the library contract
(section 5) and the seed's phase 6 list.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

log = logging.getLogger(__name__)


class Event(StrEnum):
    """Every event the library, the recorder and the ephemeral app send to frontends."""

    TRACK_ADDED = "track:added"
    TRACK_UPDATED = "track:updated"
    TRACK_DELETED = "track:deleted"
    TRACK_MOVED = "track:moved"
    TRACK_MISSING = "track:missing"
    TRACK_RESTORED = "track:restored"
    DIRECTORY_ADDED = "library:directory:added"
    DIRECTORY_UPDATED = "library:directory:updated"
    DIRECTORY_REMOVED = "library:directory:removed"
    SCAN_STARTED = "library:directory:scan:started"
    SCAN_PROGRESS = "library:directory:scan:progress"
    SCAN_COMPLETE = "library:directory:scan:complete"
    MEDIA_CONNECTED = "library:media:connected"
    MEDIA_DISCONNECTED = "library:media:disconnected"
    DUPLICATE_DETECTED = "duplicate:detected"
    DUPLICATE_RESOLVED = "duplicate:resolved"
    FILE_OP_STARTED = "file_operation:started"
    FILE_OP_PROGRESS = "file_operation:progress"
    FILE_OP_COMPLETE = "file_operation:complete"
    FILE_OP_FAILED = "file_operation:failed"
    ANALYSIS_STARTED = "analysis:started"
    ANALYSIS_PROGRESS = "analysis:progress"
    ANALYSIS_COMPLETE = "analysis:complete"
    #: Beside the contract: an analysis job ended without results.
    ANALYSIS_FAILED = "analysis:failed"
    #: Beside the contract: a ``taperoom library worker`` process is alive (every few s).
    ANALYSIS_WORKER = "analysis:worker"
    #: A playlist's tracks or its details changed (payload :class:`PlaylistUpdatedPayload`).
    PLAYLIST_UPDATED = "playlist:updated"
    # recorder (its dashboard listens on its own /ws)
    RECORDING_STARTED = "recording:started"
    RECORDING_PROGRESS = "recording:progress"
    RECORDING_STATUS = "recording:status"
    TRANSFER_STATUS = "transfer:status"
    STATION_CHANGED = "station:changed"
    SCHEDULE_CHANGED = "schedule:changed"
    #: The recorder's scheduler fired a schedule (payload :class:`ScheduleFired`);
    #: the recording service starts the recording.
    SCHEDULE_FIRED = "schedule:fired"
    # the library's link to the audio engine and its live set
    #: A track that really played on a deck was logged into the active session
    #: (payload :class:`SessionTrackPlayedPayload`).
    SESSION_TRACK_PLAYED = "session:track_played"
    #: A track's first beat moved (a user's edit or a new analysis; payload
    #: :class:`FirstBeatOffsetPayload`); the engine link tells the engine.
    ENGINE_FIRST_BEAT_OFFSET = "engine:first_beat_offset"
    # stems for the audio engine (beside the contract; the engine link sends them on)
    #: A track's stems are WAV files in the stem cache (payload :class:`StemsReadyPayload`).
    STEMS_READY = "stems:ready"
    #: A track's stems could not be made (payload :class:`StemsFailedPayload`).
    STEMS_FAILED = "stems:failed"
    # ephemeral (its live wear routes carry it to every worker process)
    #: A play of a segment was counted (payload :class:`WearPlayed`).
    WEAR_PLAYED = "wear:played"


class SessionTrackPlayedPayload(TypedDict):
    """``session:track_played``: a track played on a deck for at least
    ``LIVE_SET_MIN_PLAY_SECONDS`` and was logged into the active session
    ``playlistId`` (``playedAt`` unix s when it started playing, ``duration`` s of
    play, ``occurrence`` its entry: 0 for the first play of the track in it)."""

    playlistId: str
    trackId: str
    deck: str
    playedAt: int
    duration: int
    occurrence: int


class FirstBeatOffsetPayload(TypedDict):
    """``engine:first_beat_offset``: track ``trackId``'s first beat is at
    ``firstBeatOffset`` s now."""

    trackId: str
    firstBeatOffset: float


class ScheduleFired(TypedDict):
    """Payload of :attr:`Event.SCHEDULE_FIRED`."""

    schedule_id: int


class WearPlayed(TypedDict):
    """Payload of :attr:`Event.WEAR_PLAYED`: segment `segment_index` of `filename` was
    played once; `play_count` is its count after that play, `counted_at` the wall
    clock (Unix seconds) when the count was saved."""

    filename: str
    segment_index: int
    play_count: int
    counted_at: float


Subscriber = Callable[[str, dict[str, Any]], None]


class EventBus:
    """Synchronous fan-out of events to subscribers; safe to call from any thread.

    A subscriber that raises is logged and skipped; it never breaks the sender.
    """

    def __init__(self) -> None:
        self._subs: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Add `fn`; returns a function that removes it again."""
        with self._lock:
            self._subs.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subs:
                    self._subs.remove(fn)

        return unsubscribe

    def on(self, name: Event | str, fn: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``fn(data)`` for every event called `name`; returns a function that
        stops it. A reaction that raises is logged (see the class) and skipped."""
        wanted = str(name)

        def deliver(event: str, data: dict[str, Any]) -> None:
            if event == wanted:
                fn(data)

        return self.subscribe(deliver)

    def send(self, name: Event | str, data: dict[str, Any]) -> None:
        """Deliver event `name` with payload `data` to every subscriber."""
        with self._lock:
            subs = list(self._subs)
        for fn in subs:
            try:
                fn(str(name), data)
            except Exception:  # a broken subscriber must not break the sender
                log.exception("event subscriber failed on %s", name)


# --------------------------------------------------------------------------- payloads
# Payloads that services react to (the WebSocket hub forwards them unchanged).


class TrackAddedPayload(TypedDict):
    """``track:added``: the scanner (a scan or the watcher) or ``POST /api/tracks``
    added a track; the analysis queue analyses it when ``ANALYZE_ON_SCAN`` is on."""

    trackId: str
    track: dict[str, Any]


class AnalysisStartedPayload(TypedDict):
    """``analysis:started``: a job began (``jobId`` is the audio hash).

    ``trackIds`` (beside the contract) lists every track sharing that audio."""

    jobId: str
    trackId: str | None
    trackIds: list[str]


class AnalysisProgressPayload(TypedDict):
    """``analysis:progress``: ``progress`` 0-100 of the job; ``stage`` is the stage
    under way (``decode``, ``basic_features``, ``characteristics``, ...)."""

    jobId: str
    trackId: str | None
    trackIds: list[str]
    progress: int
    stage: str


class AnalysisCompletePayload(TypedDict):
    """``analysis:complete``: the job's results were stored; ``results`` holds the
    track fields it set (no beat lists, no waveforms: those are fetched)."""

    jobId: str
    trackId: str | None
    trackIds: list[str]
    results: dict[str, Any]


class AnalysisFailedPayload(TypedDict):
    """``analysis:failed`` (beside the contract): the job ended without results, or
    was cancelled (``error`` says why)."""

    jobId: str
    trackId: str | None
    trackIds: list[str]
    status: str
    error: str | None


class PlaylistUpdatedPayload(TypedDict):
    """``playlist:updated``: a playlist changed. ``reason`` says how (``tracks:added``,
    ``tracks:removed``, ``tracks:reordered``, ``track:updated``, ``track:played``,
    ``created``, ``updated``, ``deleted``, ``finalized``, ``cleared``, or, for
    changes made by the library itself, ``track:deleted``,
    ``duplicate:resolved`` and ``refreshed``: a smart playlist's tracks were
    evaluated again after tracks changed, or on request)."""

    playlistId: str
    reason: str


def send_playlist_updates(bus: EventBus, playlist_ids: list[str], reason: str) -> None:
    """Send ``playlist:updated`` for each of `playlist_ids` (see
    :class:`PlaylistUpdatedPayload`)."""
    for playlist_id in playlist_ids:
        payload: PlaylistUpdatedPayload = {"playlistId": playlist_id, "reason": reason}
        bus.send(Event.PLAYLIST_UPDATED, dict(payload))


class DirectoryAddedPayload(TypedDict):
    """``library:directory:added``: a library folder was added."""

    directoryId: str
    directory: dict[str, Any]


class DirectoryUpdatedPayload(TypedDict):
    """``library:directory:updated``: a folder's settings (``changes``, by column) or
    its track counts changed."""

    directoryId: str
    changes: dict[str, Any]
    directory: dict[str, Any]


class DirectoryRemovedPayload(TypedDict):
    """``library:directory:removed``: a library folder was removed."""

    directoryId: str
    path: str
    name: str | None
    tracksDeleted: int
    tracksKept: int


class MediaPayload(TypedDict):
    """``library:media:connected`` / ``library:media:disconnected``: a folder's drive
    came back or went away."""

    directoryId: str
    path: str
    name: str | None
    directory: dict[str, Any]
    tracksRestored: NotRequired[int]
    tracksMarkedMissing: NotRequired[int]
    tracksMissing: NotRequired[int]


class StemsReadyPayload(TypedDict):
    """``stems:ready``: the stems a track's request asked for are in the stem cache;
    ``stems`` gives the absolute path of each WAV by stem name (``bass``, ``drums``,
    ``other``, ``vocals``)."""

    trackId: str
    stems: dict[str, str]


class StemsFailedPayload(TypedDict):
    """``stems:failed``: the stems a track's request asked for could not be made
    (``error`` says why)."""

    trackId: str
    error: str
