"""How library routes answer: the contract's envelopes, exactly the keys given.

Every library router uses :class:`WireRoute`, which answers with
``response_model_exclude_unset``: the route's response model (an
:class:`~taperoom.library.schemas.Envelope` of ``...Public`` schemas) checks and
documents the body, and the body carries exactly the keys the route gave, nulls
included (``{"success": true, "data": ..., "count": 3}`` has no ``message``).
Every router also documents the error answers (:data:`ERROR_RESPONSES`).

The track list pages (the hot path, up to 1000 tracks of 66 fields) answer with
:func:`json_answer` instead: their rows are selected by the schema's own field
list (:data:`~taperoom.library.schemas.TRACK_FIELDS`), so they carry exactly the
keys :class:`~taperoom.library.schemas.TrackPublic` names, and building 1000
models per request only to check that again cost 13 ms a page (3x the
serialisation itself). Their response model still documents them, and the test
suite checks their answers against it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic_core
from fastapi import APIRouter, Response
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


def json_answer(body: dict[str, Any]) -> Response:
    """`body` as a JSON answer, serialised by pydantic-core without a model check (the
    bytes FastAPI gives a plain dict); for the hot paths described above only."""
    return Response(pydantic_core.to_json(body), media_type="application/json")
