"""Routes of the analysis server (contract §3): jobs, health, stats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import Message

from taperoom import __version__
from taperoom.analysis.server.intake import JobIntake
from taperoom.analysis.server.jobs import JobRunner
from taperoom.analysis.server.schemas import (
    ERRORS,
    JOB_BODY,
    Health,
    JobAccepted,
    JobRemoved,
    JobView,
    Stats,
)
from taperoom.errors import InvalidInput, TooLarge

router = APIRouter(tags=["analysis"], responses=ERRORS)

#: Largest local-mode JSON body (bytes).
MAX_JSON_BODY = 1_000_000
#: Bytes a multipart body may carry beyond the file (boundaries, text fields).
MULTIPART_OVERHEAD = 256 * 1024
#: File field of a remote-mode job (contract §3).
FILE_FIELD = "file"


def _runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.runner
    return runner


def _intake(request: Request) -> JobIntake:
    intake: JobIntake = request.app.state.intake
    return intake


RunnerDep = Annotated[JobRunner, Depends(_runner)]
IntakeDep = Annotated[JobIntake, Depends(_intake)]


def _limited(request: Request, limit: int, what: str) -> Request:
    """`request` with a body that raises :class:`TooLarge` past `limit` bytes (declared
    or received), so no more than that is ever read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"{what}: request of {declared} bytes; the limit is {limit} bytes")
    seen = 0

    async def receive() -> Message:
        nonlocal seen
        message = await request.receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge(f"{what}: request over the limit of {limit} bytes")
        return message

    return Request(request.scope, receive)


@router.post("/jobs", status_code=202, response_model=JobAccepted, openapi_extra=JOB_BODY,
             responses={200: {"model": JobAccepted,
                              "description": "A job of that track hash is already queued "
                                             "or processing"}})
async def create_job(request: Request, runner: RunnerDep, intake: IntakeDep) -> JSONResponse:
    """Queue an analysis: local mode (JSON ``{file_path, track_hash, options,
    callback_url, stem_delivery_mode}``) or remote mode (multipart ``file``,
    ``track_hash``, ``options`` as JSON, ``callback_url``, ``stem_delivery_mode``).
    202 ``{job_id, status: "queued", track_hash, created_at, callback_url,
    stem_delivery_mode}``; 200 with the job already queued or processing for that
    track hash; 400 bad fields; 403 ``file_path`` outside the allowed folders;
    413 too large; 503 queue full."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        spec = await _upload_spec(request, intake)
    elif kind == "application/json" or kind.endswith("+json"):
        body = await _limited(request, MAX_JSON_BODY, "JSON job").body()
        try:
            payload = json.loads(body)
        except ValueError:
            raise InvalidInput("The request body is not valid JSON") from None
        spec = intake.local(payload)
    else:
        raise InvalidInput("Send the job as JSON (local file_path) or multipart/form-data "
                           "(remote mode, field 'file')")
    answer, created = await run_in_threadpool(runner.submit, spec)
    return JSONResponse(JobAccepted(**answer).model_dump(mode="json"),
                        status_code=202 if created else 200)


async def _upload_spec(request: Request, intake: JobIntake) -> Any:
    limit: int = request.app.state.settings.max_upload_bytes
    form = await _limited(request, limit + MULTIPART_OVERHEAD, "upload").form(
        max_files=1, max_fields=20, max_part_size=64 * 1024)
    work_dir: Path | None = None
    try:
        upload = form.get(FILE_FIELD)
        if not isinstance(upload, UploadFile):
            raise InvalidInput(f"No audio file in the request (multipart field '{FILE_FIELD}')")
        if upload.size is not None and upload.size > limit:
            raise TooLarge(f"upload of {upload.size} bytes; the limit is {limit} bytes")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        work_dir = intake.new_work_dir()
        target = intake.upload_path(work_dir, upload.filename or "")

        def save() -> None:
            upload.file.seek(0)
            with open(target, "wb") as out:
                shutil.copyfileobj(upload.file, out, 1024 * 1024)

        await run_in_threadpool(save)
        return intake.upload(fields, upload.filename or "", work_dir)
    except BaseException:
        if work_dir is not None:
            intake.discard(work_dir)
        raise
    finally:
        await form.close()


@router.get("/jobs/{job_id}", response_model=JobView)
def get_job(job_id: str, runner: RunnerDep) -> dict[str, Any]:
    """The job: status, progress, current stage, per-stage state (``completed``,
    ``skipped`` with its reason, ``failed``), error, callbacks; 404 unknown."""
    return runner.get(job_id)


@router.delete("/jobs/{job_id}", response_model=JobRemoved)
def delete_job(job_id: str, runner: RunnerDep) -> dict[str, Any]:
    """Cancel a queued or processing job (no further callbacks; its upload is
    removed), or forget a finished one; 404 unknown."""
    return runner.cancel(job_id)


@router.get("/health", response_model=Health)
def health(runner: RunnerDep) -> dict[str, Any]:
    """``{status: "ok", version, jobs_queued, jobs_processing}`` (open without token)."""
    return {"status": "ok", "version": __version__, **runner.counts()}


@router.get("/stats", response_model=Stats)
def stats(runner: RunnerDep) -> dict[str, Any]:
    """Counts since start, capacity, callbacks, analysis speed."""
    return runner.stats()
