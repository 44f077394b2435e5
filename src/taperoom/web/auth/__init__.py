"""Sign-in for the library and the recorder: users, sessions, API token, CSRF.

:func:`install_access` puts every guard of an app in place, outermost first:
the ``Host`` check (:mod:`taperoom.web.hosts`), CORS and the origin guard
(:mod:`taperoom.web.origins`), then the credentials check
(:mod:`taperoom.web.auth.middleware`) and the login routes
(:mod:`taperoom.web.auth.routes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from taperoom.web.auth.middleware import AuthMiddleware, current_csrf_token, current_user
from taperoom.web.auth.policy import Access, decide_access
from taperoom.web.auth.routes import LoginPage, build_login_router
from taperoom.web.auth.settings import AccessSettings
from taperoom.web.auth.store import AuthStore, open_store
from taperoom.web.auth.tables import AuthTables
from taperoom.web.auth.throttle import LoginThrottle
from taperoom.web.errors import BodyRenderer, error_body
from taperoom.web.hosts import install_host_check
from taperoom.web.origins import install_origin_policy

__all__ = [
    "Access",
    "AccessSettings",
    "AuthStore",
    "LoginPage",
    "check_access_at_start",
    "current_csrf_token",
    "current_user",
    "decide_access",
    "install_access",
    "open_access",
    "open_store",
]


def open_access(app: str, settings: AccessSettings, listen_host: str,
                store: AuthStore) -> Access:
    """The access rule of an app from its settings and its users.

    Raises
    ------
    Misconfigured
        See :func:`~taperoom.web.auth.policy.decide_access`.
    """
    return decide_access(app, listen_host, api_token=settings.api_token.get_secret_value(),
                         has_users=store.has_users(),
                         trusted_network=settings.trusted_network)


def check_access_at_start(app: str, settings: AccessSettings, listen_host: str, url: str,
                          upgrade: Callable[[Engine], None], tables: AuthTables) -> Access:
    """Decide, before the server starts, whether `app` may listen on `listen_host`.

    Parameters
    ----------
    app : str
        ``"library"`` or ``"recorder"``.
    settings : AccessSettings
        The app's settings.
    listen_host : str
        The address it is to listen on.
    url, upgrade, tables
        The app's database, migration and user tables (see :func:`open_store`).

    Raises
    ------
    Misconfigured
        Listening beyond loopback without credentials (see
        :func:`taperoom.web.auth.policy.decide_access`).
    """
    store, close = open_store(url, upgrade, tables)
    try:
        return open_access(app, settings, listen_host, store)
    finally:
        close()


def install_access(app: FastAPI, *, access: Access, settings: AccessSettings,
                   store: AuthStore, page: LoginPage, render: BodyRenderer = error_body,
                   public_paths: Iterable[str] = (),
                   public_prefixes: Iterable[str] = ()) -> None:
    """Guard `app`: Host names, origins, credentials; add ``/login`` and ``/logout``.

    Parameters
    ----------
    app : FastAPI
        The application, its routes included.
    access : Access
        From :func:`open_access`.
    settings : AccessSettings
        ``CORS_ORIGIN``, ``ALLOWED_HOSTS``, ``LOGIN_RATE_LIMIT``.
    store : AuthStore
        The app's users and sessions.
    page : LoginPage
        The app's login page.
    render : callable
        The app's error body.
    public_paths, public_prefixes : iterable of str
        Routes open without credentials (health; static files).
    """
    throttle = LoginThrottle(settings.login_rate_limit)
    app.include_router(build_login_router(page, access, store, throttle))
    app.add_middleware(AuthMiddleware, access=access, store=store, throttle=throttle,
                       cookie=page.session_cookie, public_paths=public_paths,
                       public_prefixes=public_prefixes, login_paths=("/login", "/logout"),
                       login_path="/login", render=render)
    install_origin_policy(app, settings.cors_origin, render)
    install_host_check(app, access.listen_host, settings.allowed_hosts)


def session_lifetime(settings: AccessSettings) -> timedelta:
    """``SESSION_DAYS`` as a duration."""
    return timedelta(days=settings.session_days)
