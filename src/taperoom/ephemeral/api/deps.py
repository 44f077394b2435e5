"""FastAPI dependencies of the ephemeral routers (the full-stack template's ``api/deps.py``).

Each returns a part of the :class:`~taperoom.ephemeral.context.EphemeralServices`
that :func:`taperoom.ephemeral.app.create_app` keeps in ``app.state.services``.
They are coroutines, so FastAPI calls them on the event loop instead of sending
each one to a worker thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from taperoom.ephemeral.context import EphemeralServices
from taperoom.ephemeral.service import EphemeralService
from taperoom.web.ratelimit import ClientRateLimit


async def services(request: Request) -> EphemeralServices:
    """The app's services."""
    found: EphemeralServices = request.app.state.services
    return found


async def ephemeral_service(request: Request) -> EphemeralService:
    """The app's :class:`~taperoom.ephemeral.service.EphemeralService`."""
    return (await services(request)).service


async def degrade_limit(request: Request) -> ClientRateLimit:
    """``DEGRADE_RATE_LIMIT``, per client address."""
    return (await services(request)).degrade_limit


ServicesDep = Annotated[EphemeralServices, Depends(services)]
ServiceDep = Annotated[EphemeralService, Depends(ephemeral_service)]
DegradeLimitDep = Annotated[ClientRateLimit, Depends(degrade_limit)]

#: ``Authorization: Bearer <ADMIN_TOKEN>``, declared as the OpenAPI security scheme of the
#: admin routes; the token is checked by :func:`require_admin` (a missing or other scheme
#: gives None here, so that the answer is the app's own 401 or 403).
admin_bearer = HTTPBearer(scheme_name="adminToken", auto_error=False,
                          description="ADMIN_TOKEN of the server")


async def require_admin(
        service: ServiceDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
) -> None:
    """Let the request through only with ``Authorization: Bearer <ADMIN_TOKEN>``.

    Raises
    ------
    Forbidden
        No ``ADMIN_TOKEN`` is configured (admin routes are off).
    Unauthorized
        The token is missing or wrong.
    """
    service.check_admin(credentials.credentials if credentials is not None else None)
