"""ASGI app of the analysis server: settings, job runner, routes, access layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from taperoom import __version__
from taperoom.analysis.server import api
from taperoom.analysis.server.access import TokenMiddleware
from taperoom.analysis.server.callbacks import CallbackSender
from taperoom.analysis.server.intake import JobIntake
from taperoom.analysis.server.jobs import Analyze, JobRunner
from taperoom.analysis.server.settings import AnalysisServerSettings
from taperoom.errors import Misconfigured
from taperoom.web.auth.policy import MIN_TOKEN_LENGTH, Access, decide_access
from taperoom.web.auth.throttle import LoginThrottle
from taperoom.web.errors import install_error_handlers
from taperoom.web.hosts import install_host_check, is_loopback
from taperoom.web.origins import install_origin_policy
from taperoom.web.routing import install_allow_header

__all__ = ["check_access", "create_app"]


def decide(settings: AnalysisServerSettings) -> Access:
    """The access rule of the server (see :mod:`taperoom.analysis.server.access`).

    Raises
    ------
    Misconfigured
        Listening beyond loopback without ``ANALYSIS_SERVER_API_TOKEN`` nor
        ``ANALYSIS_SERVER_TRUSTED_NETWORK``, or a token that is too short.
    """
    token = settings.api_token.get_secret_value().strip()
    if not token and not settings.trusted_network and not is_loopback(settings.host):
        raise Misconfigured(
            f"the analysis server listens on {settings.host or 'every address'}, beyond this "
            "machine, without credentials: set ANALYSIS_SERVER_API_TOKEN (e.g. `openssl rand "
            "-hex 32`), or ANALYSIS_SERVER_TRUSTED_NETWORK=true if everyone who can reach it "
            "may use it")
    if token and len(token) < MIN_TOKEN_LENGTH:
        raise Misconfigured(f"ANALYSIS_SERVER_API_TOKEN is too short: use at least "
                            f"{MIN_TOKEN_LENGTH} random characters (e.g. `openssl rand -hex 32`)")
    return decide_access("analysis server", settings.host,
                         api_token=settings.api_token.get_secret_value(), has_users=False,
                         trusted_network=settings.trusted_network)


def check_access() -> None:
    """Preflight of ``taperoom analysis serve``: the settings of the environment allow
    the server to start (raises :class:`~taperoom.errors.Misconfigured` otherwise)."""
    decide(AnalysisServerSettings())


def create_app(settings: AnalysisServerSettings | None = None,
               analyze: Analyze | None = None) -> FastAPI:
    """Build the analysis server.

    Parameters
    ----------
    settings : AnalysisServerSettings, optional
        Read from the environment when omitted.
    analyze : Analyze, optional
        The analyzer; :func:`taperoom.analysis.analyzer.analyze_file` by default.

    Raises
    ------
    Misconfigured
        See :func:`decide`.
    """
    cfg = settings or AnalysisServerSettings()
    access = decide(cfg)
    if analyze is None:
        from taperoom.analysis.analyzer import analyze_file

        analyze = analyze_file
    runner = JobRunner(
        analyze=analyze,
        sender=CallbackSender(timeout=cfg.callback_timeout, retries=cfg.callback_retries,
                              backoff=cfg.callback_backoff),
        concurrency=cfg.concurrency, queue_size=cfg.queue_size, jobs_kept=cfg.jobs_kept,
        bpm_range=cfg.bpm_range)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner.start()
        try:
            yield
        finally:
            runner.stop()

    app = FastAPI(title="Taperoom analysis server", version=__version__, lifespan=lifespan)
    app.state.settings = cfg
    app.state.runner = runner
    app.state.intake = JobIntake(cfg.roots, cfg.upload_dir)
    install_error_handlers(app)
    install_allow_header(app)
    app.include_router(api.router)
    app.add_middleware(TokenMiddleware, access=access,
                       throttle=LoginThrottle(cfg.login_rate_limit), public_paths=("/health",))
    install_origin_policy(app, cfg.cors_origin)
    install_host_check(app, cfg.host, cfg.allowed_hosts)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``."""
    from taperoom.config import setup_logging

    setup_logging()
    return create_app()
