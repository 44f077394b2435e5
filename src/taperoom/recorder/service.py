"""The recording pipeline: capture -> process (name, tags, cue sheet) -> upload.

:class:`RecordingService` starts recordings (now, or when a schedule fires: it
listens for ``schedule:fired`` on the bus), runs each in its own thread, tracks
live progress, stops them on request, turns the captured stream into a tagged
MP3 in ``RECORDINGS_DIR`` and hands it to the upload queue. A recording is
written under ``RECORDINGS_DIR/.partial`` and only renamed to its final name once
it is complete, so a crash never leaves a half-written file under a final name;
on the next start, interrupted sessions are marked failed and what they captured
is kept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from taperoom.clock import Clock, SystemClock
from taperoom.db import transaction
from taperoom.errors import (
    Conflict,
    InsufficientStorage,
    InvalidInput,
    NotFound,
    TaperoomError,
    Unprocessable,
)
from taperoom.events import Event, EventBus
from taperoom.recorder import repository as repo
from taperoom.recorder.models import SessionStatus, TransferStatus, utcnow
from taperoom.recorder.naming import DEFAULT_PATTERN, fit_name, parse_pattern
from taperoom.recorder.naming import render_filename as render_filename  # re-exported
from taperoom.recorder.naming import unique_path as unique_path  # re-exported
from taperoom.recorder.scheduler import CronJobs, repeated_wall_clock
from taperoom.recorder.schemas import session_dict
from taperoom.recorder.settings import RecorderSettings

if TYPE_CHECKING:
    from taperoom.recorder.capture import CaptureProgress, CaptureResult

log = logging.getLogger(__name__)

#: Minimum interval between two ``recording:progress`` events of one session (s).
PROGRESS_INTERVAL = 0.5
#: Shortest rest of a time slot (s) worth a retry of a scheduled recording.
MIN_RETRY_SECONDS = 10.0
#: Folder (inside ``RECORDINGS_DIR``) of recordings still being captured.
PARTIAL_DIR = ".partial"


def _op(operation_type: str, session_id: int | None = None) -> dict[str, Any]:
    """``extra`` of a structured log record (see :mod:`taperoom.recorder.logs`)."""
    return {"operation_type": operation_type, "session_id": session_id}


@dataclass
class _Running:
    session_id: int
    station: dict[str, Any]
    duration: float
    schedule_id: int | None
    trigger: str
    started_utc: datetime
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    last_event: float = 0.0
    stop_reason: str = ""


class UploadSink(Protocol):
    """Where finished recordings go (:class:`~taperoom.recorder.uploads.UploadQueue`)."""

    def enqueue(self, session_id: int, local_path: Path, destination: str) -> None:
        """Queue the upload of `local_path` (and its cue sheet) to `destination`."""


class RecordingService:
    """Starts, tracks and stops recordings and hands finished files to the upload queue.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the recorder database.
    bus : EventBus
        Receives ``recording:*`` and ``transfer:status``; the service listens for
        ``schedule:fired`` between :meth:`start` and :meth:`shutdown`.
    settings : RecorderSettings
        Folders, limits (``MAX_CONCURRENT_RECORDINGS``, ``MIN_FREE_DISK_MB``),
        capture timeouts, retries, retention and ``TZ``.
    jobs : CronJobs
        The scheduler (next fire times, jobs of deleted schedules, reconciliation).
    uploads : UploadSink
        The upload queue.
    clock : Clock, optional
        Where a recording's times come from: its capture (``CaptureOptions.clock``:
        duration, end time, backoff, gaps), and the session's start and end times and
        the time slot of a scheduled recording (:class:`~taperoom.clock.SystemClock` by
        default). When a schedule fires stays the scheduler's (real time).
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, settings: RecorderSettings,
                 jobs: CronJobs, uploads: UploadSink, *, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.bus = bus
        self.settings = settings
        self.jobs = jobs
        self.uploads = uploads
        self._running: dict[int, _Running] = {}
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._closing = False
        self._unsubscribe: Callable[[], None] | None = None

    def _utcnow(self) -> datetime:
        """The clock's time in UTC, naive (the stored form)."""
        return self.clock.now().astimezone(UTC).replace(tzinfo=None)

    # -- public API ------------------------------------------------------------------

    def record(self, station_id: int, duration_seconds: float, *,
               schedule_id: int | None = None, trigger: str = "manual") -> dict[str, Any]:
        """Start recording a station now, through the whole pipeline.

        Parameters
        ----------
        station_id : int
            Station to record.
        duration_seconds : float
            Wall-clock length of the recording (s), however often the stream drops.
        schedule_id : int, optional
            Schedule that fired, if any.
        trigger : {"manual", "schedule", "retry"}
            What started it (shown in the session).

        Returns
        -------
        dict
            The new session (``session_dict``), status ``recording``.

        Raises
        ------
        NotFound
            Unknown station.
        Conflict
            ``MAX_CONCURRENT_RECORDINGS`` recordings already run.
        InsufficientStorage
            Free space on ``RECORDINGS_DIR`` is below ``MIN_FREE_DISK_MB``.
        Unprocessable
            The station's stored file-name pattern is not valid (saved before
            patterns were checked); nothing is recorded.
        """
        if duration_seconds <= 0:
            raise InvalidInput("duration_seconds must be positive")
        settings = self.settings
        with self._lock:
            if self._closing:
                raise Conflict("the recorder is shutting down")
            with transaction(self.db) as db:
                st = repo.get_station(db, station_id)
                station = {c: getattr(st, c) for c in (
                    "id", "name", "stream_url", "artist", "album", "album_artist",
                    "artwork_path", "output_filename_pattern", "scp_destination",
                    "bitrate_kbps", "split_tracks")}
            try:  # what rendering would refuse (stored before patterns were checked)
                parse_pattern(station["output_filename_pattern"])
            except ValueError as exc:
                raise Unprocessable(
                    f"station {station['name']!r} has an invalid file name pattern "
                    f"{station['output_filename_pattern'][:200]!r} ({exc}); edit the "
                    "station to record it") from None
            if len(self._running) >= settings.max_concurrent_recordings:
                raise Conflict(f"{len(self._running)} recordings are running "
                               f"(MAX_CONCURRENT_RECORDINGS={settings.max_concurrent_recordings})")
            self.check_disk()
            started = self._utcnow()
            with transaction(self.db) as db:
                row = repo.create_session(db, {
                    "schedule_id": schedule_id, "station_id": station_id,
                    "station_name": station["name"], "trigger": trigger,
                    "start_time": started, "planned_duration_seconds": float(duration_seconds),
                    "status": SessionStatus.RECORDING.value,
                    "transfer_status": TransferStatus.PENDING.value,
                })
                data = session_dict(row, settings.zone)
            run = _Running(row.id, station, float(duration_seconds), schedule_id, trigger,
                           started)
            run.progress = {"session_id": row.id, "elapsed_seconds": 0.0, "audio_seconds": 0.0,
                            "bytes_written": 0, "reconnects": 0, "connected": False,
                            "title": None, "percent": 0.0}
            run.thread = threading.Thread(target=self._run, args=(run,), daemon=True,
                                          name=f"recording-{row.id}")
            self._running[row.id] = run
            run.thread.start()
        log.info("recording %s started: %s for %.0f s (%s)", row.id, station["name"],
                 duration_seconds, trigger, extra=_op("recording", row.id))
        self.bus.send(Event.RECORDING_STARTED, data)
        return data

    def stop(self, session_id: int) -> dict[str, Any]:
        """Stop a running recording early; what was captured is processed and kept.

        Raises
        ------
        NotFound
            Unknown session.
        Conflict
            The session is not recording.
        """
        with self._lock:
            run = self._running.get(session_id)
        if run is None:
            with self.db() as db:
                row = repo.get_session(db, session_id)
                raise Conflict(f"recording session {session_id} is not running "
                               f"(status {row.status})")
        run.stop_reason = "stopped on request"
        run.stop.set()
        log.info("recording %s: stop requested", session_id, extra=_op("recording", session_id))
        return {"message": f"Recording session {session_id} is stopping",
                "session_id": session_id}

    def active(self) -> list[dict[str, Any]]:
        """Sessions being recorded or processed, each with its live ``progress``."""
        with self._lock:
            progress = {sid: dict(r.progress) for sid, r in self._running.items()}
        with self.db() as db:
            rows = repo.active_sessions(db)
            out = []
            for row in rows:
                d = session_dict(row, self.settings.zone)
                d["progress"] = progress.get(row.id)
                out.append(d)
        return out

    def is_running(self, session_id: int) -> bool:
        """True while `session_id` is being captured or processed in this process."""
        with self._lock:
            return session_id in self._running

    def progress(self, session_id: int) -> dict[str, Any] | None:
        """Live progress of a session recording in this process, None otherwise:
        ``{session_id, elapsed_seconds, audio_seconds, bytes_written, reconnects,
        connected, title, percent}``."""
        with self._lock:
            run = self._running.get(session_id)
            return None if run is None else dict(run.progress)

    def retry_transfer(self, session_id: int) -> dict[str, Any]:
        """Queue the upload of a completed session again (after a final failure).

        Raises
        ------
        NotFound
            Unknown session.
        Conflict
            The session is not completed, has no destination, its upload is
            already queued or done, or its local file is gone.
        """
        with transaction(self.db) as db:
            row = repo.get_session(db, session_id)
            if row.status != SessionStatus.COMPLETED.value:
                raise Conflict(f"session {session_id} is {row.status}, not completed")
            if row.transfer_status not in (TransferStatus.FAILED.value,):
                raise Conflict(f"upload of session {session_id} is {row.transfer_status}")
            dest = repo.station_destination(db, row.station_id)
            if not dest:
                raise Conflict("the station has no upload destination")
            if not row.output_file_path or not Path(row.output_file_path).is_file():
                raise Conflict("the local recording is gone")
            row = repo.update_session(db, session_id, {  # a new round of attempts
                "transfer_status": TransferStatus.PENDING.value,
                "transfer_error_message": None, "transfer_attempts": 0})
            path = Path(row.output_file_path)  # type: ignore[arg-type]
            data = session_dict(row, self.settings.zone)
        self.uploads.enqueue(session_id, path, dest)
        self.bus.send(Event.TRANSFER_STATUS, {"session_id": session_id,
                                              "transfer_status": "pending"})
        return data

    def check_disk(self) -> dict[str, Any]:
        """Raise InsufficientStorage when ``RECORDINGS_DIR`` is too full to record."""
        status = self.disk_status()
        if status["free_bytes"] < status["min_free_bytes"]:
            raise InsufficientStorage(
                f"only {status['free_bytes'] / 2**20:.0f} MB free in the recordings folder "
                f"(MIN_FREE_DISK_MB={self.settings.min_free_disk_mb:g})")
        return status

    def disk_status(self) -> dict[str, Any]:
        """Free and total bytes of the file system holding ``RECORDINGS_DIR``."""
        usage = shutil.disk_usage(self.settings.recordings_dir)
        return {"path": str(self.settings.recordings_dir), "free_bytes": usage.free,
                "total_bytes": usage.total, "used_bytes": usage.used,
                "min_free_bytes": int(self.settings.min_free_disk_mb * 2**20)}

    # -- schedules ---------------------------------------------------------------------

    def fire_schedule(self, schedule_id: int) -> None:
        """Scheduler callback: record the schedule's station for its duration.

        A schedule that cannot start (concurrency limit, disk guard) gets a
        failed session saying why, so the miss shows in the history, and is
        tried again after ``RETRY_DELAY_SECONDS`` for the rest of its time slot,
        up to the schedule's ``max_retries`` times (the count starts afresh at
        each fire time).
        """
        with transaction(self.db) as db:
            try:
                sched = repo.get_schedule(db, schedule_id)
            except NotFound:
                self.jobs.remove(schedule_id)
                return
            if not sched.is_active:
                return
            now = self._utcnow()
            if sched.last_run_time is not None and repeated_wall_clock(
                    sched.last_run_time.replace(tzinfo=UTC), now.replace(tzinfo=UTC),
                    self.settings.zone):
                log.info("schedule %s: skipping the repeated local time", schedule_id,
                         extra=_op("scheduling"))
                return
            station_id, duration = sched.station_id, sched.duration_minutes * 60.0
            sched.last_run_time = now
            sched.retry_count = 0  # a new time slot: its own retries
            nxt = self.jobs.next_run(schedule_id)
            sched.next_run_time = (nxt.astimezone(UTC).replace(tzinfo=None)
                                   if nxt is not None else None)
        log.info("schedule %s fired", schedule_id, extra=_op("scheduling"))
        self._start_or_record_failure(station_id, duration, schedule_id, "schedule",
                                      now + timedelta(seconds=duration))

    def _start_or_record_failure(self, station_id: int, duration: float,
                                 schedule_id: int | None, trigger: str,
                                 slot_end: datetime) -> None:
        """Start a scheduled recording; when it cannot start, leave a failed
        session and maybe retry within the slot (ends at naive-UTC `slot_end`)."""
        try:
            self.record(station_id, duration, schedule_id=schedule_id, trigger=trigger)
        except NotFound as exc:  # the station went away since the schedule fired
            log.error("schedule %s could not start: %s", schedule_id, exc,
                      extra=_op("scheduling"))
        except (Conflict, InsufficientStorage, Unprocessable) as exc:
            log.error("schedule %s could not start: %s", schedule_id, exc,
                      extra=_op("scheduling"))
            with transaction(self.db) as db:
                station = repo.get_station(db, station_id)
                row = repo.create_session(db, {
                    "schedule_id": schedule_id, "station_id": station_id,
                    "station_name": station.name, "trigger": trigger, "start_time": self._utcnow(),
                    "end_time": self._utcnow(), "planned_duration_seconds": duration,
                    "status": SessionStatus.FAILED.value, "error_message": str(exc),
                    "transfer_status": TransferStatus.SKIPPED.value})
                data = session_dict(row, self.settings.zone)
            self.bus.send(Event.RECORDING_STATUS, data)
            if schedule_id is not None:
                self._maybe_retry(schedule_id, station_id, slot_end)

    def reconcile_schedules(self) -> None:
        """Make the scheduler's jobs match the schedules table and store next run times."""
        with transaction(self.db) as db:
            rows = repo.all_schedules(db)
            nexts = self.jobs.reconcile(
                [(r.id, r.cron_expression, bool(r.is_active)) for r in rows])
            for sid, nxt in nexts.items():
                repo.set_next_run(db, sid, nxt.astimezone(UTC).replace(tzinfo=None)
                                  if nxt is not None else None)

    # -- start-up and shut-down ------------------------------------------------------

    def start(self) -> None:
        """Recover what a previous process left (:meth:`recover`) and start listening
        for fired schedules."""
        self.recover()
        if self._unsubscribe is None:
            self._unsubscribe = self.bus.subscribe(self._on_event)

    def _on_event(self, name: str, data: dict[str, Any]) -> None:
        if name == Event.SCHEDULE_FIRED:
            self.fire_schedule(int(data["schedule_id"]))

    def recover(self) -> None:
        """After a restart: mark sessions a previous process left running as failed
        and keep (rename and tag) what they captured.

        Uploads that were cut off are not this method's: an upload may be running in
        a worker process elsewhere, so the stale-upload watcher beside each queue
        consumer queues one again once its worker has been silent for
        ``UPLOAD_STALE_SECONDS`` (:mod:`taperoom.recorder.upload_leases`).
        """
        partial_dir = self.settings.recordings_dir / PARTIAL_DIR
        with transaction(self.db) as db:
            rows = [r for r in repo.active_sessions(db)]
            left = [(r.id, r.station_id, r.start_time) for r in rows]
            ids = repo.fail_interrupted_sessions(
                db, "interrupted: the recorder stopped during this session")
        for sid, station_id, started in left:
            partial = partial_dir / f"session-{sid}.mp3"
            if sid in ids and partial.is_file() and partial.stat().st_size > 0:
                try:
                    self._salvage(sid, station_id, started, partial)
                except Exception:
                    log.exception("could not keep the partial recording of session %s", sid)

    def _salvage(self, session_id: int, station_id: int | None, started: datetime,
                 partial: Path) -> None:
        with self.db() as db:
            st = repo.get_station(db, station_id) if station_id is not None else None
            station = {c: getattr(st, c) for c in (
                "name", "artist", "album", "album_artist", "artwork_path",
                "output_filename_pattern")} if st is not None else None
        if station is None:
            return
        final = self._final_path(station, started)
        os.replace(partial, final)
        with contextlib.suppress(TaperoomError):
            self._tag(final, station, started)
        from taperoom.recorder.encode import mp3_duration

        with transaction(self.db) as db:
            repo.update_session(db, session_id, {
                "output_file_path": str(final), "file_size_bytes": final.stat().st_size,
                "duration_seconds": mp3_duration(final),
                "error_message": "interrupted: the recorder stopped during this session; "
                                 "the part recorded until then is kept",
                "transfer_status": TransferStatus.SKIPPED.value})

    def shutdown(self, timeout: float = 20.0) -> None:
        """Stop listening for fired schedules and stop every running recording; each
        keeps and processes what it captured."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._lock:
            self._closing = True
            runs = list(self._running.values())
            for t in self._timers:
                t.cancel()
        for run in runs:
            run.stop_reason = "stopped at recorder shutdown"
            run.stop.set()
        deadline = time.monotonic() + timeout
        for run in runs:
            if run.thread is not None:
                run.thread.join(max(0.1, deadline - time.monotonic()))

    # -- the pipeline ----------------------------------------------------------------

    def _run(self, run: _Running) -> None:
        from taperoom.recorder.capture import CaptureOptions, record_stream

        settings = self.settings
        sid, station = run.session_id, run.station
        partial_dir = settings.recordings_dir / PARTIAL_DIR
        partial_dir.mkdir(parents=True, exist_ok=True)
        partial = partial_dir / f"session-{sid}.mp3"
        options = CaptureOptions(
            bitrate_kbps=station["bitrate_kbps"] or settings.mp3_bitrate_kbps,
            stall_timeout=settings.stall_timeout_seconds,
            backoff_max=settings.reconnect_backoff_max_seconds,
            policy=settings.stream_policy,
            no_audio_timeout=settings.no_audio_timeout_seconds or None, clock=self.clock)
        try:
            try:
                result = record_stream(station["stream_url"], partial, run.duration,
                                       options=options, stop=run.stop,
                                       progress=lambda p: self._on_progress(run, p))
            except Exception as exc:
                self._fail(run, f"capture failed: {exc}", capture_failed=True)
                with contextlib.suppress(OSError):
                    partial.unlink()
                return
            self._set_status(sid, SessionStatus.PROCESSING, {"end_time": self._utcnow()})
            try:
                self._process(run, result, partial)
            except Exception as exc:
                log.exception("recording %s: processing failed", sid,
                              extra=_op("processing", sid))
                self._fail(run, f"processing failed: {exc}")
        finally:
            with self._lock:
                self._running.pop(sid, None)
            with contextlib.suppress(Exception):
                self.apply_retention()

    def _process(self, run: _Running, result: CaptureResult, partial: Path) -> None:
        settings, station, sid = self.settings, run.station, run.session_id
        created: list[Path] = []
        try:
            final, cue_path = self._finish_files(run, result, partial, created)
            gaps = [{"at_seconds": round(g.at_seconds, 3),
                     "started_at": g.started_at.astimezone(settings.zone).isoformat(),
                     "length_seconds": round(g.length_seconds, 3), "reason": g.reason}
                    for g in result.gaps]
            note = None
            if result.stopped:
                note = (f"{run.stop_reason or 'stopped early'} after "
                        f"{result.duration_seconds:.0f} s of {run.duration:.0f} s")
            elif result.note:
                note = (f"{result.note} ({result.duration_seconds:.0f} s of audio; "
                        f"{run.duration:.0f} s planned)")
            dest = station["scp_destination"] or ""
            values: dict[str, Any] = {
                "status": SessionStatus.COMPLETED.value, "end_time": self._utcnow(),
                "output_file_path": str(final), "file_size_bytes": final.stat().st_size,
                "duration_seconds": round(result.duration_seconds, 3),
                "reconnects": result.reconnects, "gaps": gaps,
                "cue_sheet_path": str(cue_path) if cue_path else None,
                "stream_copy": result.stream_copy, "source_codec": result.source_codec,
                "error_message": note,
                "transfer_status": (TransferStatus.PENDING if dest
                                    else TransferStatus.SKIPPED).value,
            }
            with transaction(self.db) as db:
                row = repo.update_session(db, sid, values)
                if run.schedule_id is not None:
                    with contextlib.suppress(NotFound):
                        repo.update_schedule(db, run.schedule_id, {"retry_count": 0})
                data = session_dict(row, settings.zone)
        except BaseException:
            # a failed session leaves no file behind: its partial recording, the file it
            # was renamed to, the cue sheet and the split tracks all go
            self._remove_files([partial, *created], sid)
            raise
        log.info("recording %s completed: %s (%.1f s, %d gaps, %s)", sid, final.name,
                 result.duration_seconds, len(gaps),
                 "stream copy" if result.stream_copy else "re-encoded",
                 extra=_op("processing", sid))
        self.bus.send(Event.RECORDING_STATUS, data)
        if dest:
            self.uploads.enqueue(sid, final, dest)

    def _finish_files(self, run: _Running, result: CaptureResult, partial: Path,
                      created: list[Path]) -> tuple[Path, Path | None]:
        """Rename, tag, write the cue sheet and split; append each path made to
        `created` as soon as it exists. Returns the recording and its cue sheet."""
        from taperoom.recorder.tagging import recording_title, write_cue_sheet

        settings, station, sid = self.settings, run.station, run.session_id
        final = self._final_path(station, run.started_utc)
        os.replace(partial, final)
        created.append(final)
        self._tag(final, station, run.started_utc)
        started_local = run.started_utc.replace(tzinfo=UTC).astimezone(settings.zone)
        cue_path: Path | None = None
        if result.cues:
            cue_path = final.with_suffix(".cue")
            existed = cue_path.exists()
            written = write_cue_sheet(final, result.cues, performer=station["artist"],
                                      title=recording_title(started_local, station["name"]))
            if not existed:
                created.append(written)
            if station["split_tracks"] and len(result.cues) > 1:
                pieces: list[Path] = []
                try:
                    self._split(final, result, station, run.started_utc, pieces)
                except (TaperoomError, OSError) as exc:  # the whole recording is still good
                    log.error("recording %s: could not split into tracks: %s", sid, exc,
                              extra=_op("processing", sid))
                    self._remove_files(pieces, sid)
                else:
                    created.extend(pieces)
        return final, cue_path

    def _remove_files(self, paths: list[Path], session_id: int) -> None:
        """Delete the files (and then-empty folders) in `paths`, last made first."""
        for path in reversed(paths):
            try:
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()  # only once empty: what was in it is listed before it
                else:
                    path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("recording %s: could not remove %s: %s", session_id, path, exc,
                            extra=_op("processing", session_id))

    def _split(self, final: Path, result: CaptureResult, station: dict[str, Any],
               started_utc: datetime, made: list[Path]) -> None:
        """Cut the recording at its ICY title changes into ``<stem> - tracks/NN - title.mp3``,
        each piece tagged (:func:`~taperoom.recorder.tagging.tag_track`); the folder
        (when made here) and each piece that did not exist before go to `made`, the
        folder first, even when the split fails half-way."""
        from taperoom.recorder.encode import split_mp3
        from taperoom.recorder.tagging import tag_track

        settings = self.settings
        cues = sorted(result.cues, key=lambda c: c.offset_seconds)
        # titles at the same offset: the later one names the track (as in the cue sheet)
        cues = [c for i, c in enumerate(cues)
                if i + 1 == len(cues) or cues[i + 1].offset_seconds > c.offset_seconds]
        # track 1 runs from 0 s under the first title; each later title starts a track
        later = [c for c in cues[1:] if c.offset_seconds > 0]
        points = [c.offset_seconds for c in later]
        titles = [cues[0].title, *(c.title for c in later)]
        names = [fit_name(f"{i + 1:02d} - {title}") for i, title in enumerate(titles)]
        out_dir = final.with_name(final.stem + " - tracks")
        if not out_dir.exists():
            out_dir.mkdir()
            made.append(out_dir)
        made.extend(out_dir / n for n in names if not (out_dir / n).exists())
        by_name = dict(zip(names, titles, strict=True))
        pieces = split_mp3(final, points, out_dir, names)
        started_at = started_utc.replace(tzinfo=UTC).astimezone(settings.zone)
        artwork = self._artwork(station)
        for i, piece in enumerate(pieces, 1):
            tag_track(piece, stream_title=by_name[piece.name], index=i, count=len(pieces),
                      station_name=station["name"], artist=station["artist"],
                      album_artist=station["album_artist"], started_at=started_at,
                      artwork=artwork, max_artwork_bytes=settings.max_artwork_bytes)

    def _artwork(self, station: dict[str, Any]) -> Path | None:
        """The station's cover image file, None when it has none (or it is gone)."""
        if not station.get("artwork_path"):
            return None
        art = Path(station["artwork_path"])
        if not art.is_absolute():
            art = self.settings.artwork_dir / art.name
        return art if art.is_file() else None

    def _tag(self, final: Path, station: dict[str, Any], started_utc: datetime) -> None:
        from taperoom.recorder.tagging import tag_recording

        settings = self.settings
        artwork = self._artwork(station)
        tag_recording(final, station_name=station["name"], artist=station["artist"],
                      album=station["album"], album_artist=station["album_artist"],
                      started_at=started_utc.replace(tzinfo=UTC).astimezone(settings.zone),
                      artwork=artwork, max_artwork_bytes=settings.max_artwork_bytes)

    def _final_path(self, station: dict[str, Any], started_utc: datetime) -> Path:
        settings = self.settings
        started_local = started_utc.replace(tzinfo=UTC).astimezone(settings.zone)
        fields = {"station": station["name"], "artist": station["artist"],
                  "album": station["album"], "started_local": started_local}
        try:
            name = render_filename(station["output_filename_pattern"], **fields)
        except InvalidInput as exc:  # a pattern stored before patterns were checked
            log.warning("%s; using %s", exc, DEFAULT_PATTERN, extra=_op("processing"))
            name = render_filename(DEFAULT_PATTERN, **fields)
        return unique_path(settings.recordings_dir, name)

    def _on_progress(self, run: _Running, p: CaptureProgress) -> None:
        percent = min(100.0, 100.0 * p.elapsed_seconds / run.duration) if run.duration else 0.0
        run.progress = {"session_id": run.session_id,
                        "elapsed_seconds": round(p.elapsed_seconds, 2),
                        "audio_seconds": round(p.audio_seconds, 2),
                        "bytes_written": p.bytes_written, "reconnects": p.reconnects,
                        "connected": p.connected, "title": p.title,
                        "percent": round(percent, 1)}
        now = time.monotonic()
        if now - run.last_event >= PROGRESS_INTERVAL:
            run.last_event = now
            self.bus.send(Event.RECORDING_PROGRESS, dict(run.progress))

    def _set_status(self, session_id: int, status: SessionStatus,
                    values: dict[str, Any] | None = None) -> None:
        with transaction(self.db) as db:
            row = repo.update_session(db, session_id, {"status": status.value, **(values or {})})
            data = session_dict(row, self.settings.zone)
        self.bus.send(Event.RECORDING_STATUS, data)

    def _fail(self, run: _Running, message: str, *, capture_failed: bool = False) -> None:
        log.error("recording %s failed: %s", run.session_id, message,
                  extra=_op("recording" if capture_failed else "processing", run.session_id))
        self._set_status(run.session_id, SessionStatus.FAILED,
                         {"error_message": message, "end_time": self._utcnow(),
                          "transfer_status": TransferStatus.SKIPPED.value})
        if run.schedule_id is not None and capture_failed and not run.stop.is_set():
            self._maybe_retry(run.schedule_id, int(run.station["id"]),
                              run.started_utc + timedelta(seconds=run.duration))

    def _maybe_retry(self, schedule_id: int, station_id: int, slot_end: datetime) -> None:
        """Retry a scheduled recording that failed or could not start, for the
        rest of its slot (ending at naive-UTC `slot_end`), after
        ``RETRY_DELAY_SECONDS``, up to the schedule's ``max_retries``; no retry
        when less than :data:`MIN_RETRY_SECONDS` of the slot would be left."""
        delay = self.settings.retry_delay_seconds
        remaining = (slot_end - self._utcnow()).total_seconds() - delay
        if remaining < MIN_RETRY_SECONDS:
            return
        with transaction(self.db) as db:
            try:
                sched = repo.get_schedule(db, schedule_id)
            except NotFound:
                return
            if not sched.is_active or sched.retry_count >= sched.max_retries:
                return
            sched.retry_count += 1
            attempt = sched.retry_count
        log.info("schedule %s: retry %d in %.0f s for the remaining %.0f s", schedule_id,
                 attempt, delay, remaining, extra=_op("scheduling"))
        timer = threading.Timer(delay, self._start_or_record_failure,
                                args=(station_id, remaining, schedule_id, "retry", slot_end))
        timer.daemon = True
        with self._lock:
            if self._closing:
                return
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def apply_retention(self) -> list[int]:
        """Delete the oldest local recordings beyond ``RETENTION_DAYS`` / ``RETENTION_MAX_GB``.

        Only recordings that are safe elsewhere (uploaded) or never meant to be
        uploaded (no destination) are deleted; a pending or failed upload keeps
        its file. Returns the ids of the sessions whose files were deleted.
        """
        settings = self.settings
        if not settings.retention_days and not settings.retention_max_gb:
            return []
        deletable = {TransferStatus.COMPLETED.value, TransferStatus.SKIPPED.value}
        with self.db() as db:
            rows = [(r.id, Path(r.output_file_path), r.start_time, r.transfer_status,
                     r.cue_sheet_path)
                    for r in repo.local_recordings(db) if r.output_file_path]
        present = [r for r in rows if r[1].is_file()]
        total = sum(r[1].stat().st_size for r in present)
        cutoff = utcnow() - timedelta(days=settings.retention_days)
        limit = settings.retention_max_gb * 2**30
        deleted: list[int] = []
        for sid, path, started, transfer, cue in present:  # oldest first
            too_old = bool(settings.retention_days) and started < cutoff
            too_big = bool(settings.retention_max_gb) and total > limit
            if not (too_old or too_big) or transfer not in deletable:
                continue
            size = path.stat().st_size
            path.unlink(missing_ok=True)
            if cue:
                Path(cue).unlink(missing_ok=True)
            total -= size
            deleted.append(sid)
            log.info("retention: deleted %s", path.name, extra=_op("system", sid))
        gone = [r[0] for r in rows if not r[1].is_file()]
        with transaction(self.db) as db:
            repo.mark_local_deleted(db, [*deleted, *gone])
        return deleted
