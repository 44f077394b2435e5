"""Stems for the audio engine (``getTrackInfo`` with ``stems: true``, contract §4): from the
stem cache at once, or made by the external analysis server and announced later.

:meth:`StemsService.request_stems` answers a track's stems from the cache
(:class:`~.cache.StemCache`) when its recording has a complete set (bass,
drums, other, vocals). Otherwise it queues a stems-only analysis job
(``options: {stems: true, basic_features: false, characteristics: false}``,
``high`` priority, ``callback_metadata.type = audio_server_stems``) on the
library's analysis queue, which hands it to ``ANALYSIS_SERVER_URL``; the
server's ``stems`` callback converts the stems into the cache (:mod:`.delivery`),
and when the job ends ``stems:ready`` goes out for every track that asked
(``{"trackId", "stems": {name: absolute WAV path}}``), or ``stems:failed``
(``{"trackId", "error"}``) when the server ended it without them.

Without a server (``ANALYSIS_SERVER_URL`` empty) a request raises
:class:`~.errors.StemsUnavailable` at once. When the server does not answer its
health check, the request raises it too (``kept=True``), and is kept: a background
thread checks the server's health every ``STEMS_RETRY_SECONDS`` and queues the job
once the server is back, after which ``stems:ready`` goes out as above; a request
that has waited ``STEMS_WAIT_SECONDS`` for the server ends with ``stems:failed``
naming the server (the track has long left the deck). This service is the one place
that retries: the engine link only waits for ``stems:ready`` / ``stems:failed``, so
the engine gets its ``stemsReady`` as soon as the stems are made. A job that fails
while the server is down (its retries spent) waits for the server in the same way. A
job cancelled here (a deck's quick analysis replaces a waiting job) or one the stems
request only joined (an analysis of the same recording without stems already queued
or running) is queued again by that thread once the queue takes it.

The requests kept are this process's (they are lost at a restart; the engine
asks again when it loads the track).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session, sessionmaker

from taperoom.enginelink.stems import STEM_NAMES
from taperoom.errors import Conflict, NotFound, TaperoomError
from taperoom.events import Event, EventBus, StemsFailedPayload, StemsReadyPayload
from taperoom.library.repository import analysis as repo
from taperoom.library.stems.cache import StemCache
from taperoom.library.stems.errors import StemsUnavailable
from taperoom.library.tracks import canonical_id

__all__ = ["AnalysisServer", "StemJobs", "StemsService"]

log = logging.getLogger(__name__)


class StemJobs(Protocol):
    """The analysis queue, as the stems service uses it."""

    def queue_stems(self, track_id: str) -> bool:
        """Queue a stems job for `track_id`'s recording; True when the job now queued or
        running for it asks for stems, False when an analysis without stems was
        already queued or running (the request joined it)."""
        ...


class AnalysisServer(Protocol):
    """The external analysis server, as the stems service uses it."""

    @property
    def url(self) -> str:
        """Its base URL."""
        ...

    def healthy(self) -> tuple[bool, str | None]:
        """(whether ``GET /health`` answers ok, why not)."""
        ...


#: ``job``: a stems job is queued or running; ``server``: waiting for the server to
#: come back; ``queue``: waiting to queue a job (the one it joined lacked stems).
_State = Literal["job", "server", "queue"]


@dataclass
class _Pending:
    """The tracks of one recording waiting for its stems."""

    track_ids: list[str]
    state: _State
    jobs: int = 0
    #: ``time.monotonic()`` when it began to wait for the server (state ``server``).
    server_since: float = 0.0


class StemsService:
    """Stems by track (see the module docstring); implements the engine link's
    ``StemsProvider``.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database (track -> audio hash).
    bus : EventBus
        Sends ``stems:ready`` and ``stems:failed``; listens for
        ``analysis:complete`` and ``analysis:failed``.
    cache : StemCache
        The stem cache.
    jobs : StemJobs
        The analysis queue.
    server : AnalysisServer, optional
        ``ANALYSIS_SERVER_URL``; None without one.
    retry_interval : float
        ``STEMS_RETRY_SECONDS``: seconds between two health checks of a server that
        is down, or two attempts to queue a job.
    max_jobs : int
        Most jobs queued for one request before it fails.
    max_wait : float
        ``STEMS_WAIT_SECONDS``: seconds a request waits for a server that is down
        before it fails (``stems:failed``).
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, cache: StemCache, *,
                 jobs: StemJobs, server: AnalysisServer | None, retry_interval: float,
                 max_jobs: int = 3, max_wait: float = 900.0) -> None:
        self.db = db
        self.bus = bus
        self.cache = cache
        self.jobs = jobs
        self.server = server
        self.retry_interval = retry_interval
        self.max_jobs = max_jobs
        self.max_wait = max_wait
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe = [
            bus.on(Event.ANALYSIS_COMPLETE, lambda data: self._ended(data, failed=False)),
            bus.on(Event.ANALYSIS_FAILED, lambda data: self._ended(data, failed=True))]

    # -- the engine link's StemsProvider --------------------------------------------------

    async def request_stems(self, track_id: str) -> Mapping[str, Path] | None:
        """A track's stems (:meth:`request`, run in a thread).

        Returns
        -------
        mapping or None
            Absolute WAV path by stem name when cached; None when a stems job was
            started (``stems:ready`` or ``stems:failed`` follows).

        Raises
        ------
        StemsUnavailable
            No analysis server; or it cannot be reached, and then the request is
            kept (``kept=True``) and made when it is back, ``stems:ready`` or
            ``stems:failed`` following as for a job started at once.
        NotFound
            No such track.
        Conflict
            The track has no audio hash yet.
        """
        return await asyncio.to_thread(self.request, track_id)

    def request(self, track_id: str) -> dict[str, Path] | None:
        """:meth:`request_stems`, blocking (see there)."""
        file_hash = self._hash_of(track_id)
        track_id = canonical_id(track_id) or track_id
        found = self.cache.lookup(file_hash)
        if found is not None:
            return found
        if self.server is None:
            raise StemsUnavailable("Stems come only from an external analysis server, and "
                                   "none is configured (set ANALYSIS_SERVER_URL)")
        with self._lock:
            pending = self._pending.get(file_hash)
            if pending is not None:
                if track_id not in pending.track_ids:
                    pending.track_ids.append(track_id)
                if pending.state != "server":
                    return None
        ok, why = self.server.healthy()
        if not ok:
            with self._lock:
                pending = self._pending.setdefault(
                    file_hash, _Pending([track_id], "server", server_since=time.monotonic()))
                if track_id not in pending.track_ids:
                    pending.track_ids.append(track_id)
            self._start_thread()
            raise StemsUnavailable(why or f"The analysis server at {self.server.url} is "
                                   "not healthy", kept=True)
        with self._lock:
            pending = self._pending.setdefault(file_hash, _Pending([track_id], "queue"))
            if track_id not in pending.track_ids:
                pending.track_ids.append(track_id)
            if pending.state == "server":
                pending.state = "queue"
            if pending.state != "queue":
                return None
        self._queue(file_hash)
        return None

    # -- inside ---------------------------------------------------------------------------

    def _hash_of(self, track_id: str) -> str:
        canonical = canonical_id(track_id)
        with self.db() as s:
            track = repo.get_track(s, canonical) if canonical is not None else None
            if track is None:
                raise NotFound(f"Track with ID {track_id} does not exist")
            file_hash = track.file_hash
        if not file_hash:
            raise Conflict("The track has no audio hash yet: scan its folder first")
        return file_hash

    def _queue(self, file_hash: str) -> None:
        """Queue the stems job of a ``queue`` request (its state becomes ``job``, or stays
        ``queue`` when the request joined a job without stems)."""
        with self._lock:
            pending = self._pending.get(file_hash)
            if pending is None or pending.state != "queue":
                return
            track_id = pending.track_ids[0]
        try:
            asks_stems = self.jobs.queue_stems(track_id)
        except TaperoomError as exc:
            self._fail(file_hash, f"Cannot queue the stems job: {exc.message}")
            return
        with self._lock:
            pending = self._pending.get(file_hash)
            if pending is None:
                return
            if asks_stems:
                pending.state = "job"
                pending.jobs += 1
        if not asks_stems:
            self._start_thread()

    def _ended(self, data: dict[str, Any], *, failed: bool) -> None:
        """``analysis:complete`` / ``analysis:failed`` of a recording: its stems are ready,
        missing, or to be asked for again."""
        file_hash = data.get("jobId")
        if not isinstance(file_hash, str):
            return
        with self._lock:
            pending = self._pending.get(file_hash)
            if pending is None:
                return
            state = pending.state
        found = self.cache.lookup(file_hash)
        if found is not None:
            self._ready(file_hash, found)
            return
        if state != "job":
            return  # a job it did not queue ended: the thread queues its own
        if data.get("status") == "cancelled":
            self._again(file_hash, "queue", "the stems job was cancelled")
        elif failed and self.server is not None and not self.server.healthy()[0]:
            self._again(file_hash, "server", str(data.get("error") or "failed"))
        elif failed:
            self._fail(file_hash, f"The stems job failed: {data.get('error') or 'no reason'}")
        else:
            present = self.cache.present(file_hash)
            missing = [n for n in STEM_NAMES if n not in present]
            self._fail(file_hash, "The analysis server ended the job without the stems "
                       + ", ".join(missing) + (f" (it delivered {', '.join(present)})"
                                               if present else ""))

    def _again(self, file_hash: str, state: _State, why: str) -> None:
        with self._lock:
            pending = self._pending.get(file_hash)
            if pending is None:
                return
            if pending.jobs >= self.max_jobs:
                give_up = True
            else:
                give_up = False
                if state == "server" and pending.state != "server":
                    pending.server_since = time.monotonic()
                pending.state = state
        if give_up:
            self._fail(file_hash, f"No stems after {self.max_jobs} jobs: {why}")
        else:
            self._start_thread()

    def _ready(self, file_hash: str, found: Mapping[str, Path]) -> None:
        with self._lock:
            pending = self._pending.pop(file_hash, None)
        for track_id in pending.track_ids if pending is not None else ():
            ready: StemsReadyPayload = {"trackId": track_id,
                                        "stems": {n: str(p) for n, p in sorted(found.items())}}
            self.bus.send(Event.STEMS_READY, dict(ready))

    def _fail(self, file_hash: str, error: str) -> None:
        with self._lock:
            pending = self._pending.pop(file_hash, None)
        log.warning("stems of %s: %s", file_hash, error)
        for track_id in pending.track_ids if pending is not None else ():
            failed: StemsFailedPayload = {"trackId": track_id, "error": error}
            self.bus.send(Event.STEMS_FAILED, dict(failed))

    # -- the retry thread -----------------------------------------------------------------

    def _start_thread(self) -> None:
        with self._lock:
            if self._stopping.is_set() or (self._thread is not None
                                           and self._thread.is_alive()):
                self._wake.set()
                return
            self._thread = threading.Thread(target=self._retry_loop, name="stems-retry",
                                            daemon=True)
            self._thread.start()

    def _retry_loop(self) -> None:
        """Every ``retry_interval``: check the server for requests waiting for it, and
        queue the jobs of those waiting to be queued; ends when none waits. A round
        that fails is logged and the next one comes all the same."""
        while not self._stopping.is_set():
            with self._lock:
                waiting = {h: p.state for h, p in self._pending.items() if p.state != "job"}
                if not waiting:
                    self._thread = None
                    return
            try:
                self._retry_round(waiting)
            except Exception:  # the retries must go on (a lock not had in time...)
                log.exception("stems: a retry round failed")
            self._wake.wait(self.retry_interval)
            self._wake.clear()

    def _retry_round(self, waiting: Mapping[str, _State]) -> None:
        if any(state == "server" for state in waiting.values()):
            assert self.server is not None
            self._expire_waits()
            ok, _ = self.server.healthy()
            if ok:
                with self._lock:
                    for file_hash in waiting:
                        pending = self._pending.get(file_hash)
                        if pending is not None and pending.state == "server":
                            pending.state = "queue"
                log.info("the analysis server is back: queueing the stems asked for")
        for file_hash in waiting:
            found = self.cache.lookup(file_hash)
            if found is not None:
                self._ready(file_hash, found)
            else:
                self._queue(file_hash)

    def _expire_waits(self) -> None:
        """Fail the requests that have waited ``max_wait`` seconds for the server."""
        now = time.monotonic()
        with self._lock:
            expired = [h for h, p in self._pending.items()
                       if p.state == "server" and now - p.server_since >= self.max_wait]
        for file_hash in expired:
            assert self.server is not None
            self._fail(file_hash, f"The analysis server at {self.server.url} could not be "
                       f"reached for {self.max_wait:g} s: no stems")

    def pending(self) -> dict[str, str]:
        """The state of each recording waiting for stems (``job``, ``server``, ``queue``),
        by audio hash."""
        with self._lock:
            return {h: p.state for h, p in self._pending.items()}

    def close(self) -> None:
        """Stop listening and stop the retry thread."""
        for stop in self._unsubscribe:
            stop()
        self._stopping.set()
        self._wake.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(10)
