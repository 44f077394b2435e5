"""Routes of /api/analysis (contracts/library.md §2 "Analysis"; bare JSON, no envelope).

* ``GET /status`` -> ``{url, port, isHealthy, isProcessRunning, isReady, autoStart,
  pid}``; ``POST /start``, ``/restart`` -> ``{message, status}``; ``POST /stop`` ->
  ``{message}``. The analyzer runs in the library's leader process: these start and
  stop its analysis consumers (``stop`` pauses the queue, running jobs go back to
  it; ``start`` goes on; ``url`` and ``port`` are null, or those of the external
  analysis server of ``ANALYSIS_SERVER_URL``, whose ``GET /health`` then makes
  ``isHealthy``).
* ``GET /health`` -> 200 ``{status: "healthy", message}`` / 503 ``{status:
  "unhealthy", message}`` (analyzer missing, or consumers stopped).
* ``POST /request`` ``{track_id, options, priority, force}`` -> ``{message, job}``;
  ``POST /reanalyze`` ``{track_ids | library_id | all, options, priority}`` ->
  ``{message, summary}``.
* ``GET /jobs?status=&limit=&offset=`` -> ``{jobs, total, limit, offset}``: the newest
  job of each audio hash, newest first (beside the contract, for the page's
  analysis view); ``GET /jobs/{jobId}`` -> ``{job}``; ``DELETE /jobs/{jobId}`` ->
  ``{message, job_id}`` (``jobId`` is the audio hash); ``GET /queue`` -> ``{queue, stats}``.
* ``POST /callback?token=...`` (contract §3) -> ``{message: "Callback acknowledged",
  job_id, stage}``; open without sign-in (the analysis server has none), it needs
  the job's own secret in ``token`` (403 without it; see
  :mod:`taperoom.library.analysis.external`).
* ``GET /waveforms/{trackId}`` -> ``{track_id, waveforms}``;
  ``GET /waveforms/{trackId}/{zoomLevel}`` -> ``{waveform}``.

Errors are ``{"error", "message"}`` with their status
(:class:`~taperoom.library.analysis.errors.AnalysisRefusal`): 400 ``Invalid
request`` / ``Invalid callback`` / ``Invalid zoom level``, 404 ``Track not found``
/ ``Job not found`` / ``Waveform not found``, 409, 503. Bodies are read as any
JSON and checked by the service, so that a malformed one gets that answer too; their
shapes (the request models of :mod:`taperoom.library.schemas`) are declared in the
OpenAPI document all the same (:func:`~taperoom.library.api.wire.documented_body`).
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, Query, Response

from taperoom.library.api.deps import AnalysisServiceDep
from taperoom.library.api.wire import documented_body, library_router
from taperoom.library.schemas import (
    ANALYSIS_JOB_STATUSES,
    MAX_ANALYSIS_JOBS_PAGE,
    AnalysisCancelledPublic,
    AnalysisControlPublic,
    AnalysisHealthPublic,
    AnalysisJobAnswerPublic,
    AnalysisJobListPublic,
    AnalysisQueuePublic,
    AnalysisRequestBody,
    AnalysisRequestedPublic,
    AnalysisStatusPublic,
    AnalysisWaveformPublic,
    AnalysisWaveformsPublic,
    CallbackAckPublic,
    CallbackBody,
    ReanalyzeBody,
    ReanalyzePublic,
)

router = library_router("/api/analysis", tag="analysis")

_JSON_BODY = Body(None, description="A JSON object (see the route's description)")


@router.get("/status", response_model=AnalysisStatusPublic)
def analysis_status(analysis: AnalysisServiceDep) -> dict[str, Any]:
    """The analyzer's state (it runs in the leader process)."""
    return analysis.status()


@router.post("/start", response_model=AnalysisControlPublic)
def start_analysis(analysis: AnalysisServiceDep) -> dict[str, Any]:
    """Run the analysis consumers (again)."""
    return analysis.start()


@router.post("/stop", response_model=AnalysisControlPublic)
def stop_analysis(analysis: AnalysisServiceDep) -> dict[str, Any]:
    """Stop the analysis consumers; queued jobs wait."""
    return analysis.stop()


@router.post("/restart", response_model=AnalysisControlPublic)
def restart_analysis(analysis: AnalysisServiceDep) -> dict[str, Any]:
    """Stop, then start the analysis consumers."""
    return analysis.restart()


@router.get("/health", response_model=AnalysisHealthPublic,
            responses={503: {"model": AnalysisHealthPublic,
                             "description": "Analysis is stopped or cannot run"}})
def analysis_health(analysis: AnalysisServiceDep, response: Response) -> dict[str, Any]:
    """200 ``{status: "healthy"}`` / 503 ``{status: "unhealthy"}``."""
    healthy, body = analysis.health()
    if not healthy:
        response.status_code = 503
    return body


@router.post("/request", response_model=AnalysisRequestedPublic,
             openapi_extra=documented_body(AnalysisRequestBody))
def request_analysis(analysis: AnalysisServiceDep, body: Any = _JSON_BODY) -> dict[str, Any]:
    """``{track_id, options?, priority?: low|normal|high, force?}``."""
    return analysis.request(body)


@router.post("/reanalyze", response_model=ReanalyzePublic,
             openapi_extra=documented_body(ReanalyzeBody))
def reanalyze(analysis: AnalysisServiceDep, body: Any = _JSON_BODY) -> dict[str, Any]:
    """``{track_ids? | library_id? | all?, options?, priority?}``."""
    return analysis.reanalyze(body)


@router.get("/jobs", response_model=AnalysisJobListPublic)
def analysis_jobs(
        analysis: AnalysisServiceDep,
        status: str | None = Query(None, max_length=32, description=(
            "Only the jobs of this status (empty: every status)"),
            json_schema_extra={"enum": list(ANALYSIS_JOB_STATUSES)}),
        limit: str | None = Query(None, max_length=32, description=(
            f"Jobs of the page, 1-{MAX_ANALYSIS_JOBS_PAGE} (default 50)"),
            json_schema_extra={"type": "integer", "minimum": 1,
                               "maximum": MAX_ANALYSIS_JOBS_PAGE}),
        offset: str | None = Query(None, max_length=32, description=(
            "Jobs skipped before the page (default 0)"),
            json_schema_extra={"type": "integer", "minimum": 0})) -> dict[str, Any]:
    """The newest job of each audio hash, newest request first; 400 ``Invalid
    request`` for an unknown status or a limit or offset out of range."""
    return analysis.job_list({"status": status, "limit": limit, "offset": offset})


@router.get("/jobs/{jobId}", response_model=AnalysisJobAnswerPublic)
def analysis_job(jobId: str, analysis: AnalysisServiceDep) -> dict[str, Any]:
    """The newest job of an audio hash."""
    return {"job": analysis.job(jobId)}


@router.delete("/jobs/{jobId}", response_model=AnalysisCancelledPublic)
def cancel_analysis_job(jobId: str, analysis: AnalysisServiceDep
                        ) -> dict[str, Any]:
    """Cancel a queued or running job."""
    return analysis.cancel(jobId)


@router.get("/queue", response_model=AnalysisQueuePublic)
def analysis_queue(analysis: AnalysisServiceDep) -> dict[str, Any]:
    """The queue's state and counts."""
    return analysis.queue()


@router.post("/callback", response_model=CallbackAckPublic,
             openapi_extra=documented_body(CallbackBody))
def analysis_callback(analysis: AnalysisServiceDep, body: Any = _JSON_BODY,
                      token: str | None = Query(None, max_length=128, description=(
                          "The job's callback secret, given in its callback_url"))
                      ) -> dict[str, Any]:
    """A stage of an external analysis server (contract §3); 403 without the job's
    ``token``."""
    return analysis.callback(body, token)


@router.get("/waveforms/{trackId}", response_model=AnalysisWaveformsPublic)
def track_waveforms(trackId: str, analysis: AnalysisServiceDep
                    ) -> dict[str, Any]:
    """Every zoom level of a track's waveform."""
    return analysis.waveforms(trackId)


@router.get("/waveforms/{trackId}/{zoomLevel}", response_model=AnalysisWaveformPublic)
def track_waveform(trackId: str, zoomLevel: str,
                   analysis: AnalysisServiceDep) -> dict[str, Any]:
    """One zoom level (0, 1, 2) of a track's waveform."""
    return analysis.waveforms(trackId, zoomLevel)
