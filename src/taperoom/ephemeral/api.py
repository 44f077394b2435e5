"""HTTP routes of the ephemeral app (contracts/ephemeral.md); thin over the service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from taperoom import __version__
from taperoom.ephemeral.filestream import AudioFileResponse, sent_from_first_byte
from taperoom.ephemeral.hotpath import DegradeFastPath
from taperoom.ephemeral.schemas import (
    CHUNK_RESPONSES,
    DEGRADE_REQUEST_BODY,
    STREAM_RESPONSES,
    DegradeResult,
    WaveformPoint,
    error_responses,
)
from taperoom.ephemeral.service import EphemeralService, parse_segment_index
from taperoom.ephemeral.settings import EphemeralSettings
from taperoom.web.cors import install_cors
from taperoom.web.errors import install_error_handlers
from taperoom.web.ratelimit import ClientRateLimit
from taperoom.web.routing import install_allow_header

HERE = Path(__file__).parent
NO_CACHE = {"Cache-Control": "no-cache"}


def build_router(service: EphemeralService, limit: ClientRateLimit) -> APIRouter:
    """Routes of the contract, plus the seed-001 worn stream, reset and player."""
    r = APIRouter()

    # Every route declares its error answers ({"error": ...}; validation errors are 400)
    # and, for audio, its real media types: see schemas.py.
    @r.get("/")
    def status() -> dict[str, object]:
        return service.status()

    @r.get("/tracks", responses=error_responses())
    def tracks() -> list[dict[str, object]]:
        return service.tracks()

    async def stream(request: Request, filename: str, start: float | None = None,
                     degrade: bool = False) -> Response:
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
    r.add_api_route("/stream/{filename}", stream, methods=["GET", "HEAD"], response_model=None,
                    include_in_schema=False)
    for method in ("GET", "HEAD"):
        r.add_api_route("/stream/{filename}", stream, methods=[method], response_model=None,
                        response_class=Response, responses=STREAM_RESPONSES,
                        operation_id=f"stream_stream__filename__{method.lower()}")

    @r.get("/stream/{filename}/chunk/{chunk_index}", response_class=Response,
           responses=CHUNK_RESPONSES)
    def chunk(filename: str, chunk_index: int) -> Response:
        return Response(service.chunk(filename, chunk_index), media_type="audio/wav",
                        headers={**NO_CACHE, "Accept-Ranges": "bytes"})

    @r.get("/waveform/{filename}", response_model=list[WaveformPoint],
           responses=error_responses(404, 422, 503))
    def waveform(filename: str) -> list[dict[str, float]]:
        return service.waveform(filename)

    # POST /degrade is answered by hotpath.DegradeFastPath ahead of the routing; this
    # route gives it its OpenAPI entry (the body is declared by hand: it is parsed by
    # parse_segment_index, for the contract's messages) and answers when the middleware
    # does not apply.
    @r.post("/degrade/{filename}", response_model=DegradeResult,
            responses=error_responses(400, 404, 409, 413, 429, 503),
            openapi_extra=DEGRADE_REQUEST_BODY)
    async def degrade(request: Request, filename: str) -> dict[str, object]:
        limit.hit(request.client.host if request.client else "unknown")
        index = parse_segment_index(await request.body())
        return await run_in_threadpool(service.degrade, filename, index)

    @r.get("/stats/{filename}", responses=error_responses(404, 503))
    def stats(filename: str) -> dict[str, object]:
        return service.stats(filename)

    @r.post("/reset/{filename}", responses=error_responses(401, 403, 404, 422, 503))
    def reset(request: Request, filename: str) -> dict[str, object]:
        service.check_admin(request.headers.get("authorization"))
        return service.reset(filename)

    @r.get("/player", response_class=HTMLResponse)
    def player() -> HTMLResponse:
        html = (HERE / "templates" / "player.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("{{version}}", __version__))

    return r


def create_app(settings: EphemeralSettings | None = None) -> FastAPI:
    """Build the ephemeral ASGI app.

    Parameters
    ----------
    settings : EphemeralSettings, optional
        Read from the environment when omitted.
    """
    settings = settings or EphemeralSettings()
    service = EphemeralService(settings)
    wear_threads = ThreadPoolExecutor(settings.threads, thread_name_prefix="wear")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        try:
            yield
        finally:
            wear_threads.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="Taperoom ephemeral", version=__version__, lifespan=lifespan)
    app.state.service = service
    limit = ClientRateLimit(settings.degrade_rate_limit, "degrade")
    install_error_handlers(app)
    # inside CORS, which tags its answers like any other route's
    app.add_middleware(DegradeFastPath, service=service, limit=limit, executor=wear_threads)
    install_cors(app, settings.cors_origin)
    install_allow_header(app)
    app.include_router(build_router(service, limit))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (worker processes read the environment)."""
    from taperoom.config import setup_logging

    setup_logging()
    return create_app()
