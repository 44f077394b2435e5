"""Routes of /api/backup: configuration backups (contracts/recorder.md "HTTP API").

``DELETE /delete`` takes ``{backup_filename}`` as JSON (contract) or, beside
it, as a query parameter. ``POST /validate`` answers 200 for a valid backup
and 422 with the same body (``valid: false`` and the ``errors``, plus the
usual ``error``/``status_code``) for an invalid one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from taperoom.errors import InvalidInput
from taperoom.recorder.api.deps import BackupServiceDep
from taperoom.recorder.schemas import (
    API_ERRORS,
    CONFLICT,
    UNPROCESSABLE,
    AutoBackupPublic,
    BackupCheckPublic,
    BackupCreate,
    BackupDeletedPublic,
    BackupEntryPublic,
    BackupInvalidPublic,
    BackupPublic,
    BackupRef,
    RestorePublic,
)

router = APIRouter(prefix="/api/backup", tags=["backup"], responses=API_ERRORS)


@router.post("/create", status_code=201, response_model=BackupPublic, responses=CONFLICT)
def create(backups: BackupServiceDep, body: BackupCreate | None = None) -> dict[str, Any]:
    """201 ``{backup_name, backup_path, backup_filename, created_at,
    file_size_bytes, streams_count, schedules_count, include_artwork, artwork_count,
    success}``; 409 when a backup of that name exists."""
    body = body or BackupCreate()
    return backups.create(backup_name=body.backup_name, include_artwork=body.include_artwork)


@router.post("/auto-create", status_code=201, response_model=AutoBackupPublic)
def auto_create(backups: BackupServiceDep) -> dict[str, Any]:
    """201, as ``/create``, named ``auto_backup_YYYYMMDD_HHMMSS.zip``; older
    automatic backups beyond the newest ten are deleted (``removed_backups``)."""
    return backups.auto_create()


@router.get("/list", response_model=list[BackupEntryPublic])
def list_backups(backups: BackupServiceDep) -> list[dict[str, Any]]:
    """``[{filename, file_size_bytes, created_at, valid, metadata, errors}]``,
    newest first."""
    return backups.list_backups()


@router.post("/validate", response_model=BackupCheckPublic, responses={
    422: {"model": BackupInvalidPublic, "description": "The backup does not pass"}})
def validate(body: BackupRef, backups: BackupServiceDep) -> dict[str, Any]:
    """``{backup_filename, valid, errors, metadata, artwork_files, streams_count,
    schedules_count, message}``; 422 when invalid; 400/404 name."""
    return backups.validate(body.backup_filename)


@router.post("/restore", response_model=RestorePublic, responses=UNPROCESSABLE)
def restore(body: BackupRef, backups: BackupServiceDep) -> dict[str, Any]:
    """``{success, backup_filename, restored_streams, updated_streams, skipped_streams,
    skipped_stream_names, restored_schedules, skipped_schedules, restored_artwork,
    stream_ids, schedule_ids, errors, message}``; 400/404 name; 422 damaged or
    invalid backup (nothing changed)."""
    return backups.restore(body.backup_filename, overwrite_existing=body.overwrite_existing)


@router.delete("/delete", response_model=BackupDeletedPublic)
def delete(backups: BackupServiceDep, body: BackupRef | None = None,
           backup_filename: str | None = Query(None, max_length=200)) -> dict[str, Any]:
    """``{success, backup_filename, message}``; 400 bad name; 404 unknown."""
    name = body.backup_filename if body is not None else backup_filename
    if not name:
        raise InvalidInput("backup_filename is required")
    return backups.delete(name)
