"""Queueing analyses: a user's request, a re-analysis, a track loaded on a deck.

A job analyses one *recording*: its id is the audio hash of the track, so two
copies of a file share one job. Priorities (:class:`~taperoom.jobs.Priority`): a
track loaded on a deck gets ``URGENT`` (a quick pass first, the rest at
``NORMAL``); a user's request is ``normal`` unless it says ``high`` or ``low``; the
automatic analysis of new tracks is ``LOW`` (:mod:`.autoqueue`). A waiting job
asked for again at a higher priority moves up.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import TaperoomError
from taperoom.jobs import Priority
from taperoom.library.analysis.controls import AnalysisControls
from taperoom.library.analysis.errors import AnalysisConflict, AnalysisInvalid
from taperoom.library.analysis.naming import (
    KIND,
    LOCAL_STAGES,
    OPTION_STAGES,
    PRIORITIES,
    job_summary,
    priority_name,
)
from taperoom.library.analysis.outcomes import insert_plain_row
from taperoom.library.analysis.requests import check_options, find_track, parse
from taperoom.library.analysis.views import AnalysisViews
from taperoom.library.jobqueue import JobExists, JobInfo, JobQueue
from taperoom.library.models import AnalysisJob, utcnow
from taperoom.library.repository import analysis as repo
from taperoom.library.schemas import (
    AnalysisOptions,
    AnalysisRequestBody,
    ReanalyzeBody,
    iso,
)
from taperoom.library.tracks import canonical_id

if TYPE_CHECKING:
    from taperoom.library.analysis.external import ExternalAnalysis

__all__ = ["AnalysisQueueing"]


class AnalysisQueueing:
    """Puts analyses in the queue.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    jobs : JobQueue
        The job layer (queue, priorities, one active job per recording).
    views : AnalysisViews
        The job answers.
    controls : AnalysisControls
        Cancels a deck's waiting job before its quick one.
    max_retries : int
        ``ANALYSIS_MAX_RETRIES`` of the new rows.
    external : ExternalAnalysis, optional
        The external analysis server (which does every stage asked for).
    """

    def __init__(self, db: sessionmaker[Session], jobs: JobQueue, views: AnalysisViews,
                 controls: AnalysisControls, *, max_retries: int,
                 external: ExternalAnalysis | None) -> None:
        self.db = db
        self.jobs = jobs
        self.views = views
        self.controls = controls
        self.max_retries = max_retries
        self.external = external

    def queue(self, track_id: str, file_hash: str, priority: int, options: AnalysisOptions,
              *, source: str, force: bool = False, quick: bool = False,
              metadata: dict[str, Any] | None = None) -> tuple[AnalysisJob, int]:
        """Queue the analysis of `file_hash` for `track_id`, or raise the priority of its
        waiting job.

        Returns
        -------
        (AnalysisJob, int)
            Its ``analysis_jobs`` row, and 1 when queued now, else 0.

        Raises
        ------
        AnalysisNotFound
            No such track.
        """
        active = self.jobs.active(KIND, file_hash)
        if active is not None:
            return self._joined(active, priority), 0
        stages = [s for s in LOCAL_STAGES if getattr(options, s)] or ["basic_features"]
        asked = ([s for s in OPTION_STAGES if getattr(options, s)] or stages
                 if self.external is not None else stages)  # the server does them all
        with transaction(self.db) as s:
            track = find_track(s, track_id)
            row = repo.insert_job(
                s, job_id=file_hash, track_id=track_id, file_path=track.file_path,
                status="queued", priority=priority_name(priority),
                options=options.model_dump(), stages_completed=[],
                stages_total=len(asked), progress_percent=0, retry_count=0,
                max_retries=self.max_retries, created_at=utcnow(),
                callback_metadata=metadata)
            repo.end_active_rows(s, file_hash, "failed", keep=row.id,
                                 error="Superseded by a newer request")
        try:
            self.jobs.submit(KIND, file_hash, priority=priority, params={
                "track_id": track_id, "row": row.id, "stages": stages, "quick": quick,
                "force": force, "source": source})
        except JobExists as exc:  # another process queued it in between
            with transaction(self.db) as s:
                repo.update_job(s, row.id, status="cancelled", completed_at=utcnow(),
                                last_error="Joined the job already queued")
            return self._joined(exc.job, priority), 0
        return row, 1

    def _joined(self, active: JobInfo, priority: int) -> AnalysisJob:
        """The row of an active job, moved up to `priority` when that is higher."""
        if priority > active.priority and active.state == "queued":
            self.jobs.promote(KIND, active.subject, priority)
            with transaction(self.db) as s:
                row = repo.active_row(s, active.subject)
                if row is not None:
                    repo.update_job(s, row.id, priority=priority_name(priority))
        with self.db() as s:
            row = repo.active_row(s, active.subject) or repo.latest_job(s, active.subject)
        if row is None:  # a job row without its contract row (queued by an older version)
            with transaction(self.db) as s:
                row = insert_plain_row(s, active.subject, active.params.get("track_id"),
                                       priority, stages_total=2,
                                       max_retries=self.max_retries)
        return row

    def queue_stems(self, track_id: str) -> bool:
        """Queue a stems-only job for `track_id`'s recording (``options: {stems: true,
        basic_features: false, characteristics: false}``, ``high`` priority,
        ``callback_metadata: {type: audio_server_stems, trackId}``), for the audio
        engine (:class:`~taperoom.library.stems.service.StemsService`).

        Returns
        -------
        bool
            True when the job now queued or running for the recording asks for
            stems; False when an analysis without stems was already queued or
            running, which the request joined.

        Raises
        ------
        AnalysisNotFound
            No such track.
        AnalysisConflict
            The track has no audio hash yet.
        """
        with self.db() as s:
            track = find_track(s, track_id)
            track_id, file_hash = track.id, track.file_hash
        if not file_hash:
            raise AnalysisConflict("Invalid request", "The track has no audio hash yet")
        options = AnalysisOptions(basic_features=False, characteristics=False, stems=True)
        row, _ = self.queue(track_id, file_hash, Priority.HIGH, options, source="stems",
                            force=True, metadata={"type": "audio_server_stems",
                                                  "trackId": track_id})
        return bool((row.options or {}).get("stems"))

    def request(self, body: Any) -> dict[str, Any]:
        """``POST /api/analysis/request``: queue one track's analysis.

        A track already analysed (tempo, key and ``date_analyzed`` known) is not
        analysed again unless ``force``; its last job is answered. A track whose
        recording is already queued or running joins that job (which moves up
        when this request's priority is higher).

        Returns
        -------
        dict
            ``{"message": "Analysis requested successfully", "job": {job_id,
            track_id, status, priority, progress_percent, created_at}}``.

        Raises
        ------
        AnalysisInvalid
            ``Invalid request``: malformed body (400).
        AnalysisNotFound
            No such track (404).
        AnalysisConflict
            The track has no audio hash yet (not scanned) (409).
        """
        req = parse(AnalysisRequestBody, body, "Invalid request")
        check_options(req.options, external=self.external is not None)
        with self.db() as s:
            track = find_track(s, req.track_id)
            file_hash, analysed = track.file_hash, (
                track.date_analyzed is not None and track.bpm is not None
                and track.musical_key is not None
                and (track.stems_path is not None or not req.options.stems))
            analysed_at = track.date_analyzed
        if not file_hash:
            raise AnalysisConflict("Invalid request", "The track has no audio hash yet: "
                                   "scan its folder first")
        if analysed and not req.force and self.jobs.active(KIND, file_hash) is None:
            with self.db() as s:
                last = repo.latest_job(s, file_hash)
            job = (job_summary(last) if last is not None and last.status == "completed"
                   else {"job_id": file_hash, "track_id": req.track_id, "status": "completed",
                         "priority": req.priority, "progress_percent": 100,
                         "created_at": iso(analysed_at)})
            return {"message": "Analysis requested successfully", "job": job}
        row, _ = self.queue(req.track_id, file_hash, PRIORITIES[req.priority], req.options,
                            source="request", force=req.force)
        return {"message": "Analysis requested successfully", "job": job_summary(row)}

    def reanalyze(self, body: Any) -> dict[str, Any]:
        """``POST /api/analysis/reanalyze``: queue the analysis of several tracks again.

        Returns
        -------
        dict
            ``{"message": "Re-analysis queued for N tracks", "summary":
            {total_requested, queued, failed, errors: [{track_id, error}]}}``;
            ``queued`` counts the tracks whose recording is queued or running now.

        Raises
        ------
        AnalysisInvalid
            ``Invalid request``: nothing chosen, or no track matches (400).
        """
        req = parse(ReanalyzeBody, body, "Invalid request")
        check_options(req.options, external=self.external is not None)
        if not (req.track_ids or req.library_id or req.all):
            raise AnalysisInvalid("Invalid request",
                                  "give track_ids, a library_id, or all: true")
        with self.db() as s:
            if req.all:
                chosen = repo.track_hashes(s)
            elif req.library_id:
                chosen = repo.track_hashes(s, directory_id=canonical_id(req.library_id)
                                           or "-")
            else:
                chosen = repo.track_hashes(
                    s, track_ids=[c for t in req.track_ids or () if (c := canonical_id(t))],
                    present=False)
        requested = (list(dict.fromkeys(canonical_id(t) or t for t in req.track_ids))
                     if req.track_ids else [t for t, _ in chosen])
        if not requested:
            raise AnalysisInvalid("Invalid request", "No tracks to re-analyse")
        priority = PRIORITIES[req.priority or ("normal" if req.track_ids else "low")]
        hashes = dict(chosen)
        errors: list[dict[str, str]] = []
        queued = 0
        done: set[str] = set()
        for track_id in requested:
            file_hash = hashes.get(track_id)
            if track_id not in hashes:
                errors.append({"track_id": track_id, "error": "Track not found"})
                continue
            if not file_hash:
                errors.append({"track_id": track_id, "error": "The track has no audio hash"})
                continue
            if file_hash not in done:
                try:
                    self.queue(track_id, file_hash, priority, req.options,
                               source="reanalyze", force=True)
                except TaperoomError as exc:
                    errors.append({"track_id": track_id, "error": exc.message})
                    continue
                done.add(file_hash)
            queued += 1
        return {"message": f"Re-analysis queued for {queued} tracks",
                "summary": {"total_requested": len(requested), "queued": queued,
                            "failed": len(errors), "errors": errors}}

    def analyze_for_deck(self, track_id: str) -> dict[str, Any] | None:
        """A track was loaded on a deck: analyse it first, quick part first.

        Its recording's job runs at ``URGENT`` priority: a quick pass (tempo,
        beat grid, key, waveforms) whose results are stored at once, then the
        rest of the analysis goes back to the queue at ``normal`` priority. A
        track already analysed gets nothing; a running job is left to run; a
        waiting one is replaced by the quick one.

        Returns
        -------
        dict or None
            The job (as :meth:`AnalysisViews.job` answers it), or None when there is
            nothing to do.

        Raises
        ------
        AnalysisNotFound
            No such track.
        AnalysisConflict
            The track has no audio hash yet.
        """
        with self.db() as s:
            track = find_track(s, track_id)
            file_hash = track.file_hash
            ready = track.bpm is not None and track.musical_key is not None and bool(
                repo.waveform_levels(s, file_hash or ""))
        if not file_hash:
            raise AnalysisConflict("Invalid request", "The track has no audio hash yet")
        active = self.jobs.active(KIND, file_hash)
        if active is not None and active.state == "running":
            return self.views.job(file_hash)
        if ready and active is None:
            return None
        if active is not None:
            with contextlib.suppress(TaperoomError):
                self.controls.cancel(file_hash)
        row, _ = self.queue(track_id, file_hash, Priority.URGENT, AnalysisOptions(),
                            source="deck", force=True, quick=True,
                            metadata={"type": "deck_load", "trackId": track_id})
        return self.views.job(row.job_id)
