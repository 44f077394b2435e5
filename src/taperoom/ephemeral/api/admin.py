"""The curator's JSON API, ``/admin/api/...`` (only with ``ADMIN_TOKEN``).

Each request needs ``Authorization: Bearer <ADMIN_TOKEN>``, or the session
cookie of ``/admin``; with the cookie, every change (``POST``, ``PUT``,
``DELETE``) also needs the session's CSRF token in ``X-CSRF-Token``
(:mod:`taperoom.ephemeral.admin.session`). Failed bearer tokens count against
``ADMIN_LOGIN_RATE_LIMIT`` like failed sign-ins.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from taperoom.ephemeral.admin.curator import Curator
from taperoom.ephemeral.admin.schemas import (
    AdminTrackPublic,
    DeletedPublic,
    RestoredPublic,
    admin_errors,
)
from taperoom.ephemeral.admin.session import CSRF_HEADER, SESSION_COOKIE, AdminSessions
from taperoom.ephemeral.admin.upload import receive_body, receive_file
from taperoom.ephemeral.api.deps import ServicesDep, admin_bearer
from taperoom.ephemeral.schemas import TrackWearModelUpdate
from taperoom.errors import Forbidden, NotFound, Unauthorized

#: Methods that change state (RFC 9110 §9.2.1: all but the safe ones).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _parts(services: ServicesDep) -> tuple[Curator, AdminSessions]:
    if services.curator is None or services.admin_sessions is None:
        raise NotFound("Not Found")
    return services.curator, services.admin_sessions


async def curator(services: ServicesDep) -> Curator:
    """The app's :class:`~taperoom.ephemeral.admin.curator.Curator` (404 without one)."""
    return _parts(services)[0]


async def admin_sessions(services: ServicesDep) -> AdminSessions:
    """The app's :class:`~taperoom.ephemeral.admin.session.AdminSessions` (404 without)."""
    return _parts(services)[1]


CuratorDep = Annotated[Curator, Depends(curator)]
SessionsDep = Annotated[AdminSessions, Depends(admin_sessions)]


def client_address(request: Request) -> str:
    """The client's address (after uvicorn applied trusted proxy headers)."""
    return request.client.host if request.client else "unknown"


async def require_curator(
        request: Request, services: ServicesDep, sessions: SessionsDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
) -> None:
    """Let the request through with the bearer token, or a session (and, for changes,
    its CSRF token).

    Raises
    ------
    RateLimited
        The client failed too often (``ADMIN_LOGIN_RATE_LIMIT``).
    Unauthorized
        A wrong bearer token, or neither a token nor a live session.
    Forbidden
        A change with the session cookie but without its CSRF token.
    """
    if credentials is not None:
        address = client_address(request)
        sessions.check_throttle(address)
        if not sessions.token_matches(credentials.credentials):
            sessions.failed(address)
        services.service.check_admin(credentials.credentials)
        return
    session = sessions.read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise Unauthorized("Sign in at /admin, or send Authorization: Bearer <ADMIN_TOKEN>")
    if request.method in UNSAFE_METHODS and not sessions.csrf_matches(
            session, request.headers.get(CSRF_HEADER)):
        raise Forbidden("Missing or wrong CSRF token (send the page's token in X-CSRF-Token)")


router = APIRouter(prefix="/admin/api", tags=["curator"], dependencies=[Depends(require_curator)])

UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "A WAV, MP3, FLAC, Ogg Vorbis, Opus, AIFF "
                                               "or M4A file; its name becomes the track's"}}}}}}}
RESTORE_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/x-tar": {"schema": {"type": "string", "format": "binary",
                                     "description": "An archive of GET /admin/api/backup"}}}}}
BACKUP_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A tar archive of every track: audio, metadata, pristine copies, "
                         "manifest.json",
          "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}}},
    **admin_errors(503),
}


@router.get("/tracks", responses=admin_errors(503))
def list_tracks(cur: CuratorDep) -> list[AdminTrackPublic]:
    """Every readable track, with its wear model and whether it can be reset."""
    return cur.tracks()


@router.post("/tracks", status_code=201, openapi_extra=UPLOAD_BODY,
             responses=admin_errors(400, 403, 409, 413, 503))
async def upload(request: Request, cur: CuratorDep) -> AdminTrackPublic:
    """Add a track from an uploaded file (multipart/form-data, part ``file``), once it
    proved to be decodable audio; files of other formats are converted to WAV."""
    received = await receive_file(dict(request.headers), request.stream(),
                                  folder=cur.store.audio_dir,
                                  max_bytes=cur.settings.admin_upload_max_bytes)
    return await run_in_threadpool(cur.add, received)


@router.put("/tracks/{filename}", responses=admin_errors(400, 403, 503))
def set_wear_model(filename: str, body: TrackWearModelUpdate,
                   cur: CuratorDep) -> AdminTrackPublic:
    """Choose the track's wear model (a name of ``GET /wear-models``; null: WEAR_MODEL's)."""
    return cur.set_wear_model(filename, body.wear_model)


@router.delete("/tracks/{filename}", responses=admin_errors(403, 503))
def delete_track(filename: str, cur: CuratorDep) -> DeletedPublic:
    """Remove the track: its WAV file, metadata, waveform and pristine copy."""
    return cur.delete(filename)


@router.post("/tracks/{filename}/reset", responses=admin_errors(403, 422, 503))
def reset_track(filename: str, cur: CuratorDep) -> AdminTrackPublic:
    """Restore the track from its pristine copy and zero its counts (404 without one)."""
    return cur.reset(filename)


@router.get("/backup", response_class=FileResponse, responses=BACKUP_RESPONSES)
async def backup(cur: CuratorDep) -> FileResponse:
    """One consistent archive of every track, taken under the tracks' locks."""
    path, _ = await run_in_threadpool(cur.backup)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return FileResponse(path, media_type="application/x-tar",
                        filename=f"taperoom-ephemeral-{stamp}.tar",
                        headers={"Cache-Control": "no-store"},
                        background=BackgroundTask(path.unlink, missing_ok=True))


@router.post("/restore", openapi_extra=RESTORE_BODY,
             responses=admin_errors(400, 403, 413, 503))
async def restore(request: Request, cur: CuratorDep) -> RestoredPublic:
    """Replace every track by those of a backup archive (the request body), all or
    nothing; tracks not in the archive are removed."""
    received = await receive_body(dict(request.headers), request.stream(), folder=cur.work_dir,
                                  max_bytes=cur.settings.admin_restore_max_bytes,
                                  what="archive (ADMIN_RESTORE_MAX_BYTES)")
    try:
        return await run_in_threadpool(cur.restore, received.path)
    finally:
        received.path.unlink(missing_ok=True)
