"""Routes of /api/backup: configuration backups (contracts/recorder.md "HTTP API").

``DELETE /delete`` takes ``{backup_filename}`` as JSON (contract) or, beside
it, as a query parameter. ``POST /validate`` answers 200 for a valid backup
and 422 with the same body (``valid: false`` and the ``errors``, plus the
usual ``error``/``message``/``status_code``) for an invalid one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from taperoom.errors import InvalidInput
from taperoom.recorder import backup as service
from taperoom.recorder.context import RecorderContext
from taperoom.recorder.schemas import BackupCreate, BackupRef


def build_router(ctx: RecorderContext) -> APIRouter:
    """Router of the backup routes (mounted at ``/api/backup``)."""
    r = APIRouter(tags=["backup"])

    @r.post("/create", status_code=201)
    def create(body: BackupCreate | None = None) -> dict[str, Any]:
        """201 ``{backup_name, backup_path, backup_filename, created_at,
        file_size_bytes, streams_count, schedules_count, include_artwork, success}``;
        409 when a backup of that name exists."""
        body = body or BackupCreate()
        return service.create_backup(ctx, backup_name=body.backup_name,
                                     include_artwork=body.include_artwork)

    @r.post("/auto-create", status_code=201)
    def auto_create() -> dict[str, Any]:
        """201, as ``/create``, named ``auto_backup_YYYYMMDD_HHMMSS.zip``; older
        automatic backups beyond the newest ten are deleted (``removed_backups``)."""
        return service.auto_backup(ctx)

    @r.get("/list")
    def list_backups() -> list[dict[str, Any]]:
        """``[{filename, file_size_bytes, created_at, valid, metadata, errors}]``,
        newest first."""
        return service.list_backups(ctx)

    @r.post("/validate", response_model=None)
    def validate(body: BackupRef) -> dict[str, Any] | JSONResponse:
        """``{valid, backup_filename, errors, metadata, streams_count,
        schedules_count, artwork_files, message}``; 422 when invalid; 400/404 name."""
        result = service.validate_backup(ctx, body.backup_filename)
        if result["valid"]:
            return result
        return JSONResponse({**result, "error": "Unprocessable Entity", "status_code": 422},
                            status_code=422)

    @r.post("/restore")
    def restore(body: BackupRef) -> dict[str, Any]:
        """``{success, restored_streams, updated_streams, skipped_streams,
        restored_schedules, skipped_schedules, restored_artwork, errors, message}``;
        400/404 name; 422 damaged or invalid backup (nothing changed)."""
        return service.restore_backup(ctx, body.backup_filename,
                                      overwrite_existing=body.overwrite_existing)

    @r.delete("/delete")
    def delete(body: BackupRef | None = None,
               backup_filename: str | None = Query(None, max_length=200)) -> dict[str, Any]:
        """``{success, backup_filename, message}``; 400 bad name; 404 unknown."""
        name = body.backup_filename if body is not None else backup_filename
        if not name:
            raise InvalidInput("backup_filename is required")
        return service.delete_backup(ctx, name)

    return r
