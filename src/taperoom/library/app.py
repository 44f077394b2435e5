"""ASGI app of the library: context, lifespan, routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from taperoom import __version__
from taperoom.library.api import (
    directories,
    duplicates,
    hot_cues,
    scan,
    system,
    tracks,
    watcher,
)
from taperoom.library.api import fileops as fileops_api
from taperoom.library.api import settings as settings_api
from taperoom.library.context import LibraryContext, open_context
from taperoom.library.schemas import error_envelope
from taperoom.library.settings import LibrarySettings
from taperoom.library.users import user_store
from taperoom.web.auth import LoginPage, install_access, open_access, session_lifetime
from taperoom.web.errors import install_error_handlers
from taperoom.web.routing import install_allow_header
from taperoom.web.ws import WebSocketHub

log = logging.getLogger(__name__)


def create_app(settings: LibrarySettings | None = None,
               ctx: LibraryContext | None = None) -> FastAPI:
    """Build the library ASGI app.

    Parameters
    ----------
    settings : LibrarySettings, optional
        Read from the environment when omitted.
    ctx : LibraryContext, optional
        An already opened context (tests); opened from `settings` otherwise. The
        app closes the context it opened itself when it shuts down.

    Raises
    ------
    Misconfigured
        ``HOST`` is beyond loopback and there are no credentials (no user, no
        ``API_TOKEN``) nor ``TRUSTED_NETWORK`` (see :mod:`taperoom.web.auth.policy`).
    """
    own = ctx is None
    ctx = ctx or open_context(settings)
    users = user_store(ctx.sessions)
    try:
        access = open_access("library", ctx.settings, ctx.settings.host, users)
    except Exception:
        if own:
            ctx.close()
        raise
    hub = WebSocketHub(ctx.bus)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub.start()
        if ctx.settings.file_watcher_enabled:
            ctx.watcher.start_all(wait=0)  # watches are set up in the background
        if ctx.settings.scan_on_startup:
            ctx.scans.start_all_available()
        try:
            yield
        finally:
            hub.stop()
            if own:
                ctx.close()

    app = FastAPI(title="Taperoom library", version=__version__, lifespan=lifespan)
    app.state.ctx = ctx
    app.state.hub = hub
    install_error_handlers(app, error_envelope)
    install_allow_header(app)
    app.include_router(system.build_router(ctx, hub))
    app.include_router(settings_api.build_router(ctx), prefix="/api/settings")
    app.include_router(directories.build_router(ctx), prefix="/api/library/directories")
    app.include_router(scan.build_router(ctx), prefix="/api/scan")
    app.include_router(watcher.build_router(ctx), prefix="/api/watcher")
    app.include_router(hot_cues.build_router(ctx), prefix="/api/tracks")
    app.include_router(fileops_api.build_router(ctx), prefix="/api/tracks")
    app.include_router(tracks.build_router(ctx), prefix="/api/tracks")
    app.include_router(duplicates.build_router(ctx), prefix="/api/duplicates")
    install_access(app, access=access, settings=ctx.settings, store=users,
                   page=LoginPage("library", "Taperoom library", home="/login",
                                  lifetime=session_lifetime(ctx.settings)),
                   render=error_envelope, public_paths=("/health",))
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``."""
    from taperoom.config import setup_logging

    setup_logging()
    return create_app()
