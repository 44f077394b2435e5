"""ASGI app of the recorder: services, lifespan, API routers, dashboard, live events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, WebSocket
from fastapi.staticfiles import StaticFiles

from taperoom import __version__
from taperoom.recorder.api import (
    backup,
    feeds,
    health,
    pages,
    schedules,
    sessions,
    streams,
    system,
)
from taperoom.recorder.context import RecorderServices, build_services
from taperoom.recorder.schemas import error_body
from taperoom.recorder.settings import RecorderSettings
from taperoom.web.auth import LoginPage, install_access, open_access, session_lifetime
from taperoom.web.errors import install_error_handlers
from taperoom.web.heap import freeze_startup_heap
from taperoom.web.routing import install_allow_header
from taperoom.web.ws import WebSocketHub

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "web" / "static"
#: Routes open without credentials: health checks of orchestrators and monitors.
PUBLIC_PATHS = ("/health", "/api/health", "/api/system/health")
#: Path prefixes open without credentials: static files, and the podcast feeds, which
#: let in only requests with a feed's secret token (or ``PUBLIC_FEEDS``).
PUBLIC_PREFIXES = ("/static/", "/feeds/")
#: The routers, in the order they are matched.
ROUTERS = (health.router, streams.router, schedules.router, sessions.router, system.router,
           backup.router, feeds.router, feeds.public_router, pages.router)


def create_app(settings: RecorderSettings | None = None,
               services: RecorderServices | None = None) -> FastAPI:
    """Build the recorder ASGI app.

    Parameters
    ----------
    settings : RecorderSettings, optional
        Read from the environment when omitted (and `services` is not given).
    services : RecorderServices, optional
        Already built services (tests); built from `settings` otherwise. The app
        starts their background parts (scheduler, upload consumer, metrics) when
        it starts, and closes services it built itself when it stops.

    Raises
    ------
    Misconfigured
        ``WEB_HOST`` is beyond loopback and there are no credentials (no user, no
        ``API_TOKEN``) nor ``TRUSTED_NETWORK`` (see :mod:`taperoom.web.auth.policy`).
    """
    own = services is None
    services = services or build_services(settings)
    try:
        access = open_access("recorder", services.settings, services.settings.host,
                             services.users)
    except Exception:
        if own:
            services.close()
        raise
    hub = WebSocketHub(services.bus)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from taperoom.recorder.logs import setup_recorder_logging

        setup_recorder_logging(services.settings)
        hub.start()
        services.start()
        services.sampler.start()
        freeze_startup_heap()  # the app is built: full collections skip it
        try:
            yield
        finally:
            services.sampler.stop()
            hub.stop()
            if own:
                services.close()

    app = FastAPI(title="Taperoom recorder", version=__version__, lifespan=lifespan)
    app.state.services = services
    app.state.hub = hub
    install_error_handlers(app, error_body)
    install_allow_header(app)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await hub.serve(websocket)

    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_access(app, access=access, settings=services.settings, store=services.users,
                   page=LoginPage("recorder", "Taperoom recorder", home="/",
                                  stylesheet=f"/static/recorder.css?v={__version__}",
                                  lifetime=session_lifetime(services.settings)),
                   render=error_body, public_paths=PUBLIC_PATHS, public_prefixes=PUBLIC_PREFIXES)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``."""
    from taperoom.config import setup_logging

    setup_logging()
    return create_app()
