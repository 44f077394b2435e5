"""How library routes answer: the contract's envelopes, exactly the keys given.

Every library router uses :class:`WireRoute`, which answers with
``response_model_exclude_unset``: the route's response model (an
:class:`~taperoom.library.schemas.Envelope` of ``...Public`` schemas) checks and
documents the body, and the body carries exactly the keys the route gave, nulls
included (``{"success": true, "data": ..., "count": 3}`` has no ``message``).
Every router also documents the error answers (:data:`ERROR_RESPONSES`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from taperoom.library.schemas import ERROR_RESPONSES


class WireRoute(APIRoute):
    """An API route whose answer holds only the keys the route set."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["response_model_exclude_unset"] = True
        super().__init__(path, endpoint, **kwargs)


def library_router(prefix: str = "", *, tag: str) -> APIRouter:
    """A router of library routes mounted at `prefix` (see the module docstring)."""
    return APIRouter(prefix=prefix, tags=[tag], route_class=WireRoute,
                     responses=dict(ERROR_RESPONSES))
