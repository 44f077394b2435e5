"""The ephemeral ASGI app: its routers, middleware and error mapping over its services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from taperoom import __version__
from taperoom.ephemeral.api import (
    admin,
    admin_pages,
    audio,
    degrade,
    live,
    pages,
    status,
    tracks,
    wear_models,
)
from taperoom.ephemeral.api import analytics as analytics_api
from taperoom.ephemeral.context import EphemeralServices, build_services
from taperoom.ephemeral.hotpath import DegradeFastPath
from taperoom.ephemeral.settings import EphemeralSettings
from taperoom.web.cors import install_cors
from taperoom.web.errors import install_error_handlers
from taperoom.web.heap import freeze_startup_heap
from taperoom.web.routing import install_allow_header

STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: EphemeralSettings | None = None,
               services: EphemeralServices | None = None) -> FastAPI:
    """Build the ephemeral ASGI app.

    Parameters
    ----------
    settings : EphemeralSettings, optional
        Read from the environment when omitted; services are built from them and
        closed when the app shuts down.
    services : EphemeralServices, optional
        Services built by the caller (tests), who closes them; the app then uses
        their settings.

    Raises
    ------
    ValueError
        Both `settings` and `services` are given, with other settings.
    """
    if services is not None and settings is not None and settings is not services.settings:
        raise ValueError("give the settings or services built from them, not both")
    owned = services is None
    if services is None:
        services = build_services(settings or EphemeralSettings())
    built = services

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = built.settings.threads
        freeze_startup_heap()  # the app is built: full collections skip it
        built.live.start()
        try:
            yield
        finally:
            await built.live.stop()
            if owned:
                built.close()

    app = FastAPI(title="Taperoom ephemeral", version=__version__, lifespan=lifespan)
    app.state.services = built
    install_error_handlers(app)
    # inside CORS, which tags its answers like any other route's
    app.add_middleware(DegradeFastPath, service=built.service, limit=built.degrade_limit,
                       executor=built.wear_threads)
    install_cors(app, built.settings.cors_origin)
    install_allow_header(app)
    for module in (status, tracks, audio, degrade, wear_models, live, pages):
        app.include_router(module.router)
    app.include_router(analytics_api.router)
    if built.curator is not None:  # no ADMIN_TOKEN: no curator's page at all (404)
        app.include_router(admin.router)
        app.include_router(admin_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (worker processes read the environment)."""
    from taperoom.config import setup_logging

    setup_logging()
    return create_app()
