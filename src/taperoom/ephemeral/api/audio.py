"""Audio out: ``GET|HEAD /stream/<f>`` and ``GET /stream/<f>/chunk/<i>``.

``/stream`` sends the file through :class:`~taperoom.web.filestream.AudioFileResponse`
(page-cache reads on the event loop, RFC 9110 ranges), or with ``degrade=1`` a
real-time stream that wears what it sends.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from taperoom.ephemeral.api.deps import ServiceDep
from taperoom.ephemeral.schemas import CHUNK_RESPONSES, STREAM_RESPONSES
from taperoom.web.filestream import AudioFileResponse, sent_from_first_byte

router = APIRouter(tags=["audio"])

NO_CACHE = {"Cache-Control": "no-cache"}


async def stream(request: Request, filename: str, service: ServiceDep,
                 start: float | None = None, degrade: bool = False) -> Response:
    """The WAV file as it is now (ranges allowed); with ``degrade=1``, from `start`
    seconds at real time, each segment worn once sent."""
    if degrade:
        plan = await run_in_threadpool(service.plan_worn_stream, filename, start or 0.0)
        if request.method == "GET":
            await run_in_threadpool(service.count_stream, filename)
        body = service.worn_stream(filename, plan) if request.method == "GET" else iter(())
        return StreamingResponse(body, media_type="audio/wav", headers={
            **NO_CACHE, "Content-Length": str(plan.content_length)})
    path = await run_in_threadpool(service.stream_path, filename)
    if request.method == "GET" and sent_from_first_byte(request.headers.get("range")):
        await run_in_threadpool(service.count_stream, filename)
    return AudioFileResponse(path, media_type="audio/wav", headers=NO_CACHE)


# One route answers GET and HEAD, so that a 405 on the path lists both in Allow (the
# router's 405 names the methods of the first route matching the path). The OpenAPI
# document needs one operation per method, each with its own operation id, so it is
# given two entries, never reached, behind that route.
router.add_api_route("/stream/{filename}", stream, methods=["GET", "HEAD"], response_model=None,
                     include_in_schema=False)
for _method in ("GET", "HEAD"):
    router.add_api_route("/stream/{filename}", stream, methods=[_method], response_model=None,
                         response_class=Response, responses=STREAM_RESPONSES,
                         operation_id=f"stream_stream__filename__{_method.lower()}")


@router.get("/stream/{filename}/chunk/{chunk_index}", response_class=Response,
            responses=CHUNK_RESPONSES)
def chunk(filename: str, chunk_index: int, service: ServiceDep) -> Response:
    """Five seconds of the track from chunk `chunk_index`, as a complete WAV file."""
    return Response(service.chunk(filename, chunk_index), media_type="audio/wav",
                    headers={**NO_CACHE, "Accept-Ranges": "bytes"})
