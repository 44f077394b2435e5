"""ASGI middleware that asks for credentials: an API token or a signed-in session.

With credentials required (:class:`~taperoom.web.auth.policy.Access`), a request
passes with

- ``Authorization: Bearer <API_TOKEN>`` (programs; RFC 6750 §2.1), or
- the app's session cookie of a live session; then a state-changing request
  (``POST``, ``PUT``, ``PATCH``, ``DELETE``) must also carry the session's CSRF
  token in ``X-CSRF-Token`` (the synchronizer token pattern of the OWASP CSRF
  cheat sheet; pages put it in ``<meta name="csrf-token">``).

Otherwise a page (``GET`` of a non-API path asking for HTML) is redirected to the
login form and anything else is 401; a wrong token or CSRF token is 401/403.
Health routes, static files and the login routes stay open.

Without credentials the app is open, but only to connections that arrived on a
loopback address (unless ``TRUSTED_NETWORK``): a server started some other way
(``uvicorn --host 0.0.0.0``) than the checked commands still refuses the network.

The signed-in session of the current request is available to templates through
:func:`current_csrf_token` and :func:`current_user` (a context variable, as
Flask-WTF's ``csrf_token()``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from contextvars import ContextVar
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from taperoom.errors import Forbidden, RateLimited, TaperoomError, Unauthorized
from taperoom.web.auth.policy import Access
from taperoom.web.auth.store import AuthStore, SignedIn
from taperoom.web.auth.throttle import LoginThrottle
from taperoom.web.errors import BodyRenderer, error_body, error_response
from taperoom.web.hosts import is_loopback
from taperoom.web.origins import UNSAFE_METHODS

log = logging.getLogger(__name__)

#: Header carrying the CSRF token of cookie-authenticated changes.
CSRF_HEADER = "x-csrf-token"
_signed_in: ContextVar[SignedIn | None] = ContextVar("taperoom_signed_in", default=None)


def current_csrf_token() -> str:
    """CSRF token of the session of the request being served (empty when none)."""
    signed = _signed_in.get()
    return signed.csrf_token if signed else ""


def current_user() -> str:
    """Name of the signed-in user of the request being served (empty when none)."""
    signed = _signed_in.get()
    return signed.user if signed else ""


def same_secret(sent: str, expected: str) -> bool:
    """Constant-time comparison of two secrets (``hmac.compare_digest``); False when
    `expected` is empty."""
    return bool(expected) and hmac.compare_digest(sent.encode("utf-8", "surrogatepass"),
                                                  expected.encode("utf-8", "surrogatepass"))


def client_address(scope: Scope) -> str:
    """The client's address (after uvicorn applied trusted proxy headers)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def arrived_on_loopback(scope: Scope) -> bool:
    """True when the connection reached a loopback address of this machine (or a Unix
    socket), judged by the socket's own address (``scope["server"]``)."""
    server = scope.get("server")
    if not server or server[1] is None:
        return True
    return is_loopback(str(server[0]))


class AuthMiddleware:
    """Credentials check of one app (see the module docstring).

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    access : Access
        Whether credentials are required.
    store : AuthStore
        Users and sessions.
    throttle : LoginThrottle
        Counts wrong API tokens per client address (as failed sign-ins).
    cookie : str
        Name of the session cookie.
    public_paths : iterable of str
        Paths open to everyone (health routes).
    public_prefixes : iterable of str
        Path prefixes open to everyone (``/static/``).
    login_paths : iterable of str
        Open paths that still see the signed-in session (``/login``, ``/logout``).
    login_path : str
        Where pages send a visitor who is not signed in.
    render : callable
        The app's error body.
    """

    def __init__(self, app: ASGIApp, *, access: Access, store: AuthStore,
                 throttle: LoginThrottle, cookie: str, public_paths: Iterable[str] = (),
                 public_prefixes: Iterable[str] = (), login_paths: Iterable[str] = (),
                 login_path: str = "/login", render: BodyRenderer = error_body) -> None:
        self.app = app
        self.access = access
        self.store = store
        self.throttle = throttle
        self.cookie = cookie
        self.public_paths = frozenset(public_paths)
        self.public_prefixes = tuple(public_prefixes)
        self.login_paths = frozenset(login_paths)
        self.login_path = login_path
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        public = path in self.public_paths or path.startswith(self.public_prefixes)
        if public:
            await self.app(scope, receive, send)
            return
        if not self.access.required:
            if self.access.trusted_network or arrived_on_loopback(scope):
                await self.app(scope, receive, send)
                return
            await self._refuse(scope, receive, send, Forbidden(
                f"This {self.access.app} has no credentials and answers on loopback only: "
                f"create a user (taperoom {self.access.app} user add NAME) or set API_TOKEN, "
                "or set TRUSTED_NETWORK=true"))
            return
        headers = Headers(scope=scope)
        signed = await self._session(headers)
        if path in self.login_paths:
            await self._serve_as(signed, scope, receive, send)
            return
        authorization = headers.get("authorization")
        if authorization is not None:
            await self._bearer(authorization, scope, receive, send)
            return
        if signed is not None:
            if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS \
                    and not same_secret(headers.get(CSRF_HEADER, ""), signed.csrf_token):
                await self._refuse(scope, receive, send, Forbidden(
                    "Missing or wrong CSRF token (X-CSRF-Token header)"))
                return
            await self._serve_as(signed, scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") \
                and not path.startswith("/api/") and "text/html" in headers.get("accept", ""):
            target = path + ("?" + scope["query_string"].decode("latin-1")
                             if scope.get("query_string") else "")
            response = RedirectResponse(f"{self.login_path}?next={quote(target, safe='/')}",
                                        status_code=303)
            await response(scope, receive, send)
            return
        await self._refuse(scope, receive, send, Unauthorized(
            "Sign in or send an API token (Authorization: Bearer)"))

    async def _session(self, headers: Headers) -> SignedIn | None:
        token = cookie_parser(headers.get("cookie", "")).get(self.cookie)
        if not token:
            return None
        return await run_in_threadpool(self.store.session, token)

    async def _serve_as(self, signed: SignedIn | None, scope: Scope, receive: Receive,
                        send: Send) -> None:
        reset = _signed_in.set(signed)
        try:
            await self.app(scope, receive, send)
        finally:
            _signed_in.reset(reset)

    async def _bearer(self, authorization: str, scope: Scope, receive: Receive,
                      send: Send) -> None:
        address = client_address(scope)
        try:
            self.throttle.check(address=address)
        except RateLimited as exc:
            await self._refuse(scope, receive, send, exc)
            return
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and same_secret(token.strip(), self.access.api_token):
            await self.app(scope, receive, send)
            return
        self.throttle.failed(address=address)
        log.warning("wrong API token from %s on %s", address, scope["path"])
        await self._refuse(scope, receive, send, Unauthorized("Wrong API token"))

    async def _refuse(self, scope: Scope, receive: Receive, send: Send,
                      exc: TaperoomError) -> None:
        await error_response(exc, self.render)(scope, receive, send)
