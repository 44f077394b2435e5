"""ASGI app of the library: services, lifespan, routers, access layer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from taperoom import __version__
from taperoom.library.api import (
    analysis,
    directories,
    duplicates,
    engine,
    exchange,
    hot_cues,
    pages,
    playlists,
    scan,
    system,
    tracks,
    watcher,
    worker,
)
from taperoom.library.api import fileops as fileops_api
from taperoom.library.api import settings as settings_api
from taperoom.library.context import LibraryServices, build_services
from taperoom.library.schemas import error_envelope
from taperoom.library.seeding import seed_library
from taperoom.library.settings import LibrarySettings
from taperoom.web.auth import LoginPage, install_access, open_access, session_lifetime
from taperoom.web.errors import install_error_handlers
from taperoom.web.heap import freeze_startup_heap
from taperoom.web.routing import install_allow_header
from taperoom.web.ws import WebSocketHub

log = logging.getLogger(__name__)


def create_app(settings: LibrarySettings | None = None,
               services: LibraryServices | None = None) -> FastAPI:
    """Build the library ASGI app.

    Parameters
    ----------
    settings : LibrarySettings, optional
        Read from the environment when omitted.
    services : LibraryServices, optional
        Already built services (tests); built from `settings` otherwise
        (:func:`~taperoom.library.context.build_services`). The app closes the
        services it built itself when it shuts down.

    Raises
    ------
    Misconfigured
        ``HOST`` is beyond loopback and there are no credentials (no user, no
        ``API_TOKEN``) nor ``TRUSTED_NETWORK`` (see :mod:`taperoom.web.auth.policy`).
    """
    own = services is None
    svc = services or build_services(settings)
    try:
        access = open_access("library", svc.settings, svc.settings.host, svc.users)
    except Exception:
        if own:
            svc.close()
        raise
    hub = WebSocketHub(svc.bus)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub.start()
        if svc.fresh:  # a database created just now: the first run's folder (SEED_FOLDER)
            await run_in_threadpool(seed_library, svc.directories, svc.scans,
                                    svc.settings.seed_folder)
        # the leader's duties (in whichever worker process leads, now or later)
        removers = []
        if svc.settings.file_watcher_enabled:  # watches are set up in the background
            removers.append(svc.leadership.add_duty(
                "watch every folder", lambda: svc.watcher.start_all(wait=0),
                svc.watcher.stop_all))
        if svc.settings.scan_on_startup:
            removers.append(svc.leadership.add_duty(
                "scan every folder", svc.scans.start_all_available, lambda: None))
        if svc.settings.analyze_on_scan:  # the contract's start-up queueing (priority low)
            removers.append(svc.leadership.add_duty(
                "analyse unanalysed tracks", svc.analysis.queue_unanalysed_in_background,
                lambda: None))
        freeze_startup_heap()  # the app is built: full collections skip it
        try:
            yield
        finally:
            for remove in reversed(removers):
                remove()
            hub.stop()
            if own:
                svc.close()

    app = FastAPI(title="Taperoom library", version=__version__, lifespan=lifespan)
    app.state.services = svc
    app.state.hub = hub
    install_error_handlers(app, error_envelope)
    install_allow_header(app)
    for module in (system, worker, settings_api, directories, scan, watcher, hot_cues,
                   fileops_api, tracks, duplicates, analysis, playlists, exchange, engine,
                   pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    access_settings = svc.settings
    if svc.settings.analysis_server_url.strip():  # it calls back by the callback URL's host
        callback_host = urlsplit(svc.settings.callback_url).hostname or ""
        access_settings = svc.settings.model_copy(update={"allowed_hosts": ",".join(
            h for h in (svc.settings.allowed_hosts, callback_host) if h)})
    install_access(app, access=access, settings=access_settings, store=svc.users,
                   page=LoginPage("library", "Taperoom library", home="/login",
                                  lifetime=session_lifetime(svc.settings)),
                   render=error_envelope,
                   # the analysis server has no session: each callback carries its job's secret
                   public_paths=("/health", "/api/analysis/callback"))
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``."""
    from taperoom.config import setup_logging

    setup_logging()
    return create_app()
