"""ASGI app of the recorder: context, lifespan, API routers, dashboard, live events."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket
from fastapi.staticfiles import StaticFiles

from taperoom import __version__
from taperoom.recorder.api import backup, pages, schedules, sessions, streams, system
from taperoom.recorder.context import RecorderContext, open_context
from taperoom.recorder.settings import RecorderSettings
from taperoom.recorder.users import user_store
from taperoom.web.auth import LoginPage, install_access, open_access, session_lifetime
from taperoom.web.errors import install_error_handlers
from taperoom.web.routing import install_allow_header
from taperoom.web.ws import WebSocketHub

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "web" / "static"
#: Body of ``/health`` and ``/api/health`` (contract; the original's Docker
#: health check called ``/health``, which it did not serve).
SERVICE = "audio-stream-recorder"
#: Routes open without credentials: health checks of orchestrators and monitors.
PUBLIC_PATHS = ("/health", "/api/health", "/api/system/health")


def error_body(status: int, message: str, details: list[dict[str, str]] | None = None
               ) -> dict[str, Any]:
    """Error body of the contract: ``{"error": <reason>, "message", "status_code"}``;
    request validation errors add ``details: [{field, message, type}]``."""
    if details is not None:
        return {"error": "Validation Error", "message": "Invalid input data",
                "details": details, "status_code": status}
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    if status >= 500 and status not in (502, 503, 507):
        message = "An unexpected error occurred"
    return {"error": reason, "message": message, "status_code": status}


def create_app(settings: RecorderSettings | None = None,
               ctx: RecorderContext | None = None) -> FastAPI:
    """Build the recorder ASGI app.

    Parameters
    ----------
    settings : RecorderSettings, optional
        Read from the environment when omitted.
    ctx : RecorderContext, optional
        An already opened context (tests); opened from `settings` otherwise. The
        app starts the context's background parts (scheduler, upload consumer)
        when it starts, and closes a context it opened itself when it stops.

    Raises
    ------
    Misconfigured
        ``WEB_HOST`` is beyond loopback and there are no credentials (no user, no
        ``API_TOKEN``) nor ``TRUSTED_NETWORK`` (see :mod:`taperoom.web.auth.policy`).
    """
    own = ctx is None
    ctx = ctx or open_context(settings)
    users = user_store(ctx.sessions)
    try:
        access = open_access("recorder", ctx.settings, ctx.settings.host, users)
    except Exception:
        if own:
            ctx.close()
        raise
    hub = WebSocketHub(ctx.bus)
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from taperoom.recorder.logs import setup_recorder_logging
        from taperoom.recorder.monitor import MetricsSampler

        setup_recorder_logging(ctx.settings)
        hub.start()
        ctx.start()
        sampler = ctx.extras.get("metrics")
        if sampler is None:
            sampler = ctx.extras["metrics"] = MetricsSampler(ctx)
        sampler.start()
        try:
            yield
        finally:
            sampler.stop()
            hub.stop()
            if own:
                ctx.close()

    app = FastAPI(title="Taperoom recorder", version=__version__, lifespan=lifespan)
    app.state.ctx = ctx
    app.state.hub = hub
    app.state.started = started
    install_error_handlers(app, error_body)
    install_allow_header(app)

    def health() -> dict[str, Any]:
        return {"status": "healthy", "service": SERVICE, "version": __version__}

    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/api/health", health, methods=["GET"])

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await hub.serve(websocket)

    app.include_router(streams.build_router(ctx), prefix="/api/streams")
    app.include_router(schedules.build_router(ctx), prefix="/api/schedules")
    app.include_router(sessions.build_router(ctx), prefix="/api/sessions")
    app.include_router(system.build_router(ctx), prefix="/api/system")
    app.include_router(backup.build_router(ctx), prefix="/api/backup")
    app.include_router(pages.build_router(ctx))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_access(app, access=access, settings=ctx.settings, store=users,
                   page=LoginPage("recorder", "Taperoom recorder", home="/",
                                  stylesheet=f"/static/recorder.css?v={__version__}",
                                  lifetime=session_lifetime(ctx.settings)),
                   render=error_body, public_paths=PUBLIC_PATHS, public_prefixes=("/static/",))
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``."""
    from taperoom.config import setup_logging

    setup_logging()
    return create_app()
