"""``Allow`` headers of 405 responses that name every method of the path.

Starlette's router answers 405 from the *first* route whose path matches but
whose methods do not, so a path served by two routes (``POST`` and ``DELETE
/api/scan/library/{id}``, one function each) gets ``Allow: POST`` only. RFC 9110
§15.5.6 requires a 405 to carry an ``Allow`` header listing the methods the
target resource supports (§10.2.1). :class:`AllowHeaderMiddleware` rewrites the
header of a 405 with every method for which routing finds a handler at the
request's path (:func:`allowed_methods`); the body is left as the app rendered it.

Install it on any app with :func:`install_allow_header`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AllowHeaderMiddleware", "allowed_methods", "install_allow_header"]


#: Methods tried for ``Allow``: those of RFC 9110 §9.3 but CONNECT (a proxy's), and
#: PATCH (RFC 5789).
PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def _routed(routes: Iterable[BaseRoute], scope: Scope) -> bool:
    """Whether routing finds a handler for `scope` (the first full match, as a router)."""
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.FULL:
            if isinstance(route, Mount) and route.routes:
                return _routed(route.routes, {**scope, **child})
            return True
    return False


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> set[str]:
    """Methods for which the routes have a handler at the request's path.

    Each of :data:`PROBED_METHODS` is tried with the routes' own ``matches``
    (the public interface of :class:`starlette.routing.BaseRoute`), so path
    converters, included routers and mounted routers count as they do when a
    request is routed, whatever the framework's route classes are.

    Parameters
    ----------
    routes : iterable of starlette.routing.BaseRoute
        The app's routes (``app.routes``).
    scope : dict
        ASGI scope of an HTTP request.

    Returns
    -------
    set of str
        Upper-case method names; empty when no route has the path.
    """
    routes = list(routes)
    return {m for m in PROBED_METHODS if _routed(routes, {**scope, "method": m})}


class AllowHeaderMiddleware:
    """ASGI middleware: a 405's ``Allow`` header lists every method of the path.

    Parameters
    ----------
    app : ASGI app
        The wrapped app (Starlette passes it).
    routes : callable() -> iterable of BaseRoute
        The routes to match, read at each 405 (so routes added later count).
    """

    def __init__(self, app: ASGIApp, routes: Callable[[], Iterable[BaseRoute]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; fix the headers of a 405 on its way out."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # routing updates the scope in place (a mount moves ``root_path``): match
        # against the request as it came in
        request = dict(scope)

        async def send_fixed(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = allowed_methods(self.routes(), request)
                # a 405 for a method routing accepts came from the handler (or a
                # mounted app) itself: its own Allow stands
                if methods and request["method"] not in methods:
                    _set_header(message, b"allow", ", ".join(sorted(methods)).encode("latin-1"))
            await send(message)

        await self.app(scope, receive, send_fixed)


def _set_header(message: MutableMapping[str, Any], name: bytes, value: bytes) -> None:
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != name]
    headers.append((name, value))
    message["headers"] = headers


def install_allow_header(app: Starlette) -> None:
    """Add :class:`AllowHeaderMiddleware` to `app`, matching against ``app.routes``."""
    app.add_middleware(AllowHeaderMiddleware, routes=lambda: app.routes)
