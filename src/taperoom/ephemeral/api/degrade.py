"""``POST /degrade/<f>``: one play of a segment, which wears it.

Requests are answered by :class:`taperoom.ephemeral.hotpath.DegradeFastPath`
ahead of the routing; this route gives the operation its OpenAPI entry (the
body is declared by hand: it is parsed by ``parse_segment_index``, for the
contract's messages) and answers when the hot path does not apply (an app
mounted under a ``root_path``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from taperoom.ephemeral.api.deps import DegradeLimitDep, ServiceDep
from taperoom.ephemeral.schemas import DEGRADE_REQUEST_BODY, DegradePublic, error_responses
from taperoom.ephemeral.service import parse_segment_index

router = APIRouter(tags=["wear"])


@router.post("/degrade/{filename}", responses=error_responses(400, 404, 409, 413, 429, 503),
             openapi_extra=DEGRADE_REQUEST_BODY)
async def degrade(request: Request, filename: str, service: ServiceDep,
                  limit: DegradeLimitDep) -> DegradePublic:
    """Count one play of segment ``segment_index`` and wear it."""
    limit.hit(request.client.host if request.client else "unknown")
    index = parse_segment_index(await request.body())
    return await run_in_threadpool(service.degrade, filename, index)
