"""Routes of /api/scan (contracts/library.md, section 2 "Scan").

* ``POST /library/{id}`` ``{strategy: hybrid|fast|full, priority: low|normal|high}``
  -> 202 ``{success, message: "Scan started", data: {libraryDirectoryId, strategy}}``;
  400 bad id or body, 404 unknown folder (checked before answering, unlike the
  original), 409 inactive or unavailable folder, 409 ``Scan already in progress``
  with ``data`` = the current scan status
  (:class:`~taperoom.library.scanner.manager.ScanInProgress`).
* ``GET /library/{id}/status`` -> ``{success, data: {scanning: false} | scanInfo}``.
* ``GET /active`` -> ``{success, count, data: [scanInfo]}``.
* ``DELETE /library/{id}`` -> ``{success, message: "Scan cancelled"}`` | 404
  ``No active scan found``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import Body

from taperoom.library.api.deps import ScanQueueDep
from taperoom.library.api.wire import library_router
from taperoom.library.schemas import (
    Envelope,
    ScanRequest,
    ScanStartedPublic,
    ScanStatusPublic,
    ok,
)

router = library_router("/api/scan", tag="scan")


@router.post("/library/{id}", status_code=202, response_model=Envelope[ScanStartedPublic])
def start_scan(id: UUID, scans: ScanQueueDep,
               body: ScanRequest | None = Body(None)) -> dict[str, Any]:
    """202 ``{success, message: "Scan started", data}``; 409 with the running scan."""
    req = body or ScanRequest()
    return ok(scans.start(str(id), req.strategy, req.priority), message="Scan started")


@router.get("/library/{id}/status", response_model=Envelope[ScanStatusPublic])
def scan_status(id: UUID, scans: ScanQueueDep) -> dict[str, Any]:
    """``{success, data: status}``."""
    return ok(scans.status(str(id)))


@router.get("/active", response_model=Envelope[list[ScanStatusPublic]])
def active_scans(scans: ScanQueueDep) -> dict[str, Any]:
    """``{success, count, data: [status]}``: running scans first, then the queue."""
    active = scans.active()
    return {"success": True, "count": len(active), "data": active}


@router.delete("/library/{id}", response_model=Envelope[None])
def cancel_scan(id: UUID, scans: ScanQueueDep) -> dict[str, Any]:
    """``{success, message: "Scan cancelled"}``; 404 ``No active scan found``."""
    scans.cancel(str(id))
    return {"success": True, "message": "Scan cancelled"}
