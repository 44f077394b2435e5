"""Who may use the analysis server: machine to machine, an optional bearer token.

The server has no users and no sign-in page. The rule is that of the other apps
(:func:`taperoom.web.auth.policy.decide_access`) with an API token as the only
credential:

- no ``ANALYSIS_SERVER_API_TOKEN`` and listening on loopback (the default,
  ``127.0.0.1``): open to connections that arrived on a loopback address, as the
  Node.js backend on the same machine expects (it sends no credentials);
- a token set: every route but ``GET /health`` needs ``Authorization: Bearer
  <token>`` (RFC 6750 §2.1), on loopback too; wrong tokens are counted per
  client address and answered 429 beyond ``ANALYSIS_SERVER_LOGIN_RATE_LIMIT``;
- listening beyond loopback without a token: the server refuses to start, unless
  ``ANALYSIS_SERVER_TRUSTED_NETWORK=true``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from taperoom.errors import Forbidden, RateLimited, TaperoomError, Unauthorized
from taperoom.web.auth.middleware import arrived_on_loopback, client_address, same_secret
from taperoom.web.auth.policy import Access
from taperoom.web.auth.throttle import LoginThrottle
from taperoom.web.errors import error_response

__all__ = ["TokenMiddleware"]

log = logging.getLogger(__name__)


class TokenMiddleware:
    """ASGI middleware: the bearer-token check of the analysis server.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    access : Access
        From :func:`~taperoom.web.auth.policy.decide_access` (``required`` when a
        token is set).
    throttle : LoginThrottle
        Counts wrong tokens per client address.
    public_paths : iterable of str
        Paths open to everyone (``/health``).
    """

    def __init__(self, app: ASGIApp, *, access: Access, throttle: LoginThrottle,
                 public_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.access = access
        self.throttle = throttle
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        if not self.access.required:
            if self.access.trusted_network or arrived_on_loopback(scope):
                await self.app(scope, receive, send)
                return
            await self._refuse(scope, receive, send, Forbidden(
                "This analysis server has no API token and answers on loopback only: set "
                "ANALYSIS_SERVER_API_TOKEN, or ANALYSIS_SERVER_TRUSTED_NETWORK=true"))
            return
        address = client_address(scope)
        try:
            self.throttle.check(address=address)
        except RateLimited as exc:
            await self._refuse(scope, receive, send, exc)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and same_secret(token.strip(), self.access.api_token):
            await self.app(scope, receive, send)
            return
        if scheme:
            self.throttle.failed(address=address)
            log.warning("wrong API token from %s on %s", address, scope["path"])
            await self._refuse(scope, receive, send, Unauthorized("Wrong API token"))
            return
        await self._refuse(scope, receive, send, Unauthorized(
            "Send the API token (Authorization: Bearer)"))

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, exc: TaperoomError) -> None:
        await error_response(exc)(scope, receive, send)
