"""Which web origins may read from and change an app (CORS and a state-change guard).

CORS only decides whether a browser lets a page *read* an answer; a form post or
a "simple" ``fetch`` from another site reaches the server without a preflight
and acts anyway. So besides Starlette's ``CORSMiddleware`` (preflights and
response headers), :class:`OriginGuard` refuses with 403 every state-changing
request (``POST``, ``PUT``, ``PATCH``, ``DELETE``, whatever its content type)
and every WebSocket handshake whose ``Origin`` — or, without one, ``Referer`` —
names an origin that is not allowed (as Django's ``CsrfViewMiddleware`` checks
the Origin, then the Referer). Requests with neither header (curl, the audio
engine, the analysis server's callback) are not browsers' and pass.

Allowed origins: the loopback ones (``http(s)://localhost``, ``*.localhost``,
``127.0.0.1`` and ``[::1]`` on any port), where the DJ frontend and the
dashboard live; the app's own origin (an ``Origin`` naming the request's
``Host``, which the Host check has already vetted); and those of the
``CORS_ORIGIN`` setting (comma-separated; ``*`` allows every origin).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from taperoom.errors import Forbidden
from taperoom.web.errors import BodyRenderer, error_body, error_response

log = logging.getLogger(__name__)

#: Origins of pages served from this machine (RFC 6454 serialisation: scheme, host, port).
LOOPBACK_ORIGIN_REGEX = (r"https?://(localhost|[a-z0-9-]+(\.[a-z0-9-]+)*\.localhost"
                         r"|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?")
#: Methods that change state (RFC 9110 §9.2.1: all but the safe ones).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOOPBACK = re.compile(LOOPBACK_ORIGIN_REGEX)


def parse_origins(value: str) -> list[str]:
    """Split ``CORS_ORIGIN`` (comma-separated origins, or ``*``) into normalised origins."""
    return [o.strip().rstrip("/").lower() for o in value.split(",") if o.strip()]


def origin_of(url: str) -> str:
    """The origin (``scheme://host[:port]``) of a URL such as a ``Referer``; ``null``
    when it has none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "null"
    if not parts.scheme or not parts.netloc:
        return "null"
    return f"{parts.scheme.lower()}://{parts.netloc.rsplit('@', 1)[-1].lower()}"


class OriginPolicy:
    """The origins allowed to use one app.

    Parameters
    ----------
    cors_origin : str
        ``CORS_ORIGIN``: extra origins, comma-separated (``https://dj.example.org``);
        ``*`` allows every origin (then nothing is checked).
    """

    def __init__(self, cors_origin: str = "") -> None:
        extra = parse_origins(cors_origin)
        self.allow_any = "*" in extra
        self.extra = frozenset(o for o in extra if o != "*")

    def allows(self, origin: str, host: str | None = None) -> bool:
        """True when a page of `origin` may use the app reached as `host`.

        Parameters
        ----------
        origin : str
            The ``Origin`` header (or the origin of the ``Referer``).
        host : str, optional
            The request's ``Host`` header: an origin naming it is the app's own.
        """
        if self.allow_any:
            return True
        origin = origin.strip().rstrip("/").lower()
        if origin in self.extra or _LOOPBACK.fullmatch(origin):
            return True
        if host and origin != "null":
            return urlsplit(origin).netloc == host.strip().lower()
        return False

    def source(self, headers: Headers) -> str | None:
        """The origin a request says it comes from: ``Origin``, else the ``Referer``'s
        origin, else None (not sent by a browser page)."""
        origin = headers.get("origin")
        if origin is not None:
            return origin
        referer = headers.get("referer")
        return None if referer is None else origin_of(referer)


class OriginGuard:
    """ASGI middleware: 403 for changes and WebSocket handshakes from other origins.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    policy : OriginPolicy
        The allowed origins.
    render : callable
        The app's error body (see :mod:`taperoom.web.errors`).
    """

    def __init__(self, app: ASGIApp, policy: OriginPolicy,
                 render: BodyRenderer = error_body) -> None:
        self.app = app
        self.policy = policy
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket" or (kind == "http" and scope["method"] in UNSAFE_METHODS):
            headers = Headers(scope=scope)
            source = self.policy.source(headers)
            if source is not None and not self.policy.allows(source, headers.get("host")):
                log.warning("refused %s %s from origin %s", scope.get("method", "WEBSOCKET"),
                            scope["path"], source)
                exc = Forbidden(f"Origin {source} is not allowed to change this server "
                                "(add it to CORS_ORIGIN)")
                await error_response(exc, self.render)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_origin_policy(app: FastAPI, cors_origin: str,
                          render: BodyRenderer = error_body) -> OriginPolicy:
    """CORS for the allowed origins, and :class:`OriginGuard` behind it.

    Parameters
    ----------
    app : FastAPI
        The application.
    cors_origin : str
        ``CORS_ORIGIN`` (see :class:`OriginPolicy`).
    render : callable
        The app's error body.

    Returns
    -------
    OriginPolicy
    """
    policy = OriginPolicy(cors_origin)
    if policy.allow_any:
        log.warning("CORS_ORIGIN=*: every web page may use this server")
    app.add_middleware(OriginGuard, policy=policy, render=render)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"] if policy.allow_any else sorted(policy.extra),
        allow_origin_regex=LOOPBACK_ORIGIN_REGEX,
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["Content-Range", "Content-Length", "Accept-Ranges", "Retry-After"],
        max_age=600,
    )
    return policy
