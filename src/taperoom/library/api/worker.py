"""GET /api/worker: which worker process answered (``taperoom library serve --workers N``).

Not in the contract (it is new, beside it): ``{success, data: {pid, leader}}``,
for operators who want to know which process leads, and for tests that must
reach several processes (one connection stays with the process that accepted it).
"""

from __future__ import annotations

import os
from typing import Any

from taperoom.library.api.deps import LeadershipDep
from taperoom.library.api.wire import library_router
from taperoom.library.schemas import Envelope, WorkerPublic, ok

router = library_router("/api", tag="system")


@router.get("/worker", response_model=Envelope[WorkerPublic])
def worker(leadership: LeadershipDep) -> dict[str, Any]:
    """``{success, data: {pid, leader}}``."""
    return ok({"pid": os.getpid(), "leader": leadership.leading})
