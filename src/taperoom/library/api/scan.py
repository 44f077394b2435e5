"""Routes of /api/scan (contracts/library.md, section 2 "Scan").

* ``POST /library/{id}`` ``{strategy: hybrid|fast|full, priority: low|normal|high}``
  -> 202 ``{success, message: "Scan started", data: {libraryDirectoryId, strategy}}``;
  400 bad id or body, 404 unknown folder (checked before answering, unlike the
  original), 409 inactive or unavailable folder, 409 ``Scan already in progress``
  with ``data`` = the current scan status.
* ``GET /library/{id}/status`` -> ``{success, data: {scanning: false} | scanInfo}``.
* ``GET /active`` -> ``{success, count, data: [scanInfo]}``.
* ``DELETE /library/{id}`` -> ``{success, message: "Scan cancelled"}`` | 404
  ``No active scan found``.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from taperoom.library.context import LibraryContext
from taperoom.library.scans import ScanInProgress
from taperoom.library.schemas import ok


class ScanRequest(BaseModel):
    """Body of ``POST /api/scan/library/{id}`` (unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    strategy: Literal["hybrid", "fast", "full"] = "hybrid"
    priority: Literal["low", "normal", "high"] = "normal"


def build_router(ctx: LibraryContext) -> APIRouter:
    """Router of the scan routes (mounted at ``/api/scan``)."""
    r = APIRouter()

    @r.post("/library/{id}", status_code=202, response_model=None)
    def start_scan(id: UUID, body: ScanRequest | None = Body(None)
                   ) -> dict[str, Any] | JSONResponse:
        req = body or ScanRequest()
        try:
            data = ctx.scans.start(str(id), req.strategy, req.priority)
        except ScanInProgress as exc:
            return JSONResponse({"success": False, "error": exc.message,
                                 "data": exc.scan_status}, status_code=409)
        return ok(data, message="Scan started")

    @r.get("/library/{id}/status")
    def scan_status(id: UUID) -> dict[str, Any]:
        return ok(ctx.scans.status(str(id)))

    @r.get("/active")
    def active_scans() -> dict[str, Any]:
        scans = ctx.scans.active()
        return {"success": True, "count": len(scans), "data": scans}

    @r.delete("/library/{id}")
    def cancel_scan(id: UUID) -> dict[str, Any]:
        ctx.scans.cancel(str(id))
        return {"success": True, "message": "Scan cancelled"}

    return r
