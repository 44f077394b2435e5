"""The callbacks of an external analysis server (contract §3, ``POST
/api/analysis/callback``): each stage stored through the same road as this process's
own results (:class:`~.storage.ResultStore`), the job ended when its stages have come.
"""

from __future__ import annotations

import contextlib
import hmac
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import NotFound
from taperoom.events import Event, EventBus
from taperoom.library.analysis.errors import (
    AnalysisConflict,
    AnalysisForbidden,
    AnalysisInvalid,
    AnalysisNotFound,
)
from taperoom.library.analysis.naming import (
    KIND,
    LOCAL_STAGES,
    OPTION_STAGES,
    checked_job_id,
    event_base,
    percent,
)
from taperoom.library.analysis.outcomes import JobOutcomes
from taperoom.library.analysis.requests import parse
from taperoom.library.analysis.storage import ResultStore
from taperoom.library.jobqueue import JobQueue
from taperoom.library.repository import analysis as repo
from taperoom.library.schemas import CallbackBody

if TYPE_CHECKING:
    from taperoom.library.analysis.external import ExternalAnalysis

__all__ = ["CallbackReceiver"]


class CallbackReceiver:
    """Takes the stages an external analysis server posts.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``analysis:progress``.
    jobs : JobQueue
        The job layer (a job the server ended is not run here).
    storage : ResultStore
        Where the stages go.
    outcomes : JobOutcomes
        Ends the jobs.
    external : ExternalAnalysis, optional
        The external analysis server, told when one of its jobs ended.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, jobs: JobQueue,
                 storage: ResultStore, outcomes: JobOutcomes,
                 external: ExternalAnalysis | None) -> None:
        self.db = db
        self.bus = bus
        self.jobs = jobs
        self.storage = storage
        self.outcomes = outcomes
        self.external = external

    def callback(self, body: Any, token: str | None = None) -> dict[str, Any]:
        """``POST /api/analysis/callback``: store one stage an external analysis server
        sends (contract §3), through :meth:`ResultStore.store_stage`.

        ``job_id`` is the audio hash, or the job id the server gave (a callback
        that comes before the server's answer named it is found by its token);
        ``stage`` one of
        ``basic_features``, ``characteristics``, ``stems`` (stored), ``genre``,
        ``segments``, ``transitions`` (accepted, not stored), ``job_completed``,
        ``job_failed``, ``error`` (``data.error``); a stage of status ``skipped``
        (the server cannot do it) counts as done with nothing stored. The job
        completes when every stage it asked for has come, or at ``job_completed``.
        A skipped stage's reason goes to ``last_error``.

        Parameters
        ----------
        body : Any
            The JSON body.
        token : str, optional
            The ``token`` query parameter: the job's ``callback_token``, given
            only to the server the job was sent to (:mod:`.external`).

        Raises
        ------
        AnalysisInvalid
            ``Invalid callback``: no ``job_id`` or ``stage``, or stage data of the
            wrong type (400).
        AnalysisNotFound
            No such job (404).
        AnalysisForbidden
            The job was not sent to an analysis server, or `token` is not its
            secret (403); nothing is stored.
        AnalysisConflict
            The job was cancelled or has failed (409); nothing is stored. A
            callback for a completed job is acknowledged and stores nothing.
        """
        req = parse(CallbackBody, body, "Invalid callback")
        if not req.job_id or not req.stage:
            raise AnalysisInvalid("Invalid callback", "job_id and stage are required")
        checked_job_id(req.job_id)
        with self.db() as s:
            row = repo.latest_job(s, req.job_id) or repo.job_by_remote_id(s, req.job_id)
            if row is None:  # a server naming jobs its own way, before its answer named it
                early = repo.job_by_callback_token(s, token or "")
                row = early if early is not None and early.remote_job_id is None else None
            if row is None:
                raise AnalysisNotFound("Job not found", f"No analysis job {req.job_id}")
            if not row.callback_token or not hmac.compare_digest(
                    (token or "").encode(), row.callback_token.encode()):
                raise AnalysisForbidden("Invalid callback", "Wrong or missing callback token "
                                        "for this job")
            row_id, file_hash, track_id = row.id, row.job_id, row.track_id
            status = row.status
            done = list(row.stages_completed or [])
            options = dict(row.options or {})
            requested = [k for k in OPTION_STAGES if options.get(k, k in LOCAL_STAGES)]
            tracks = [t.id for t in repo.tracks_with_hash(s, file_hash)]
        ack = {"message": "Callback acknowledged", "job_id": req.job_id, "stage": req.stage}
        if status in ("cancelled", "failed"):
            raise AnalysisConflict("Invalid callback", f"Analysis job {req.job_id} is {status}")
        if status == "completed":  # its last stage came already: a late copy changes nothing
            return ack
        base = event_base(file_hash, track_id, tracks)
        data = req.data or {}
        stage = req.stage
        if stage in ("job_failed", "error"):
            error = str(data.get("error") or req.status or stage)
            self.outcomes.failed(row_id, file_hash, track_id, tracks, error)
            self._drop_local(file_hash)
            return ack
        fields: dict[str, Any] = {}
        if stage in OPTION_STAGES:
            if req.status == "skipped":  # the server cannot do it (no model): say why
                why = str(data.get("error") or "no reason given")[:300]
                with transaction(self.db) as s:
                    repo.update_job(s, row_id, last_error=f"{stage} skipped by the "
                                    f"analysis server: {why}")
            else:
                try:
                    fields = self.storage.store_stage(file_hash, stage, data)
                except ValueError as exc:
                    with transaction(self.db) as s:
                        repo.update_job(s, row_id, last_error=f"{stage}: {exc}")
                    raise AnalysisInvalid("Invalid callback", f"{stage}: {exc}") from None
            if stage not in done:
                done.append(stage)
        elif stage != "job_completed":
            raise AnalysisInvalid("Invalid callback", f"unknown stage {stage!r}")
        progress = min(100, percent(done, requested or list(LOCAL_STAGES)))
        if stage == "job_completed" or progress >= 100:
            self.outcomes.completed(row_id, file_hash, done, base, fields)
            self._drop_local(file_hash)
        else:
            with transaction(self.db) as s:
                repo.update_job(s, row_id, status="processing", stages_completed=done,
                                progress_percent=progress)
            self.bus.send(Event.ANALYSIS_PROGRESS, base | {"progress": progress,
                                                           "stage": stage})
        return ack

    def _drop_local(self, file_hash: str) -> None:
        """An external server finished the job: this process's queue must not run it,
        and a consumer waiting for its end sees it at once."""
        if self.external is not None:
            self.external.changed()
        with contextlib.suppress(NotFound):
            self.jobs.cancel(KIND, file_hash)
