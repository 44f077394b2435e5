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
serialisation itself). Their rows hold wire values already (times as ISO text,
flags as 0/1, selected so by the repository) and orjson writes them. Their
response model still documents them, and the test suite checks their answers
against it.

Routes that read their body as any JSON and have their service check it (the
``/api/analysis`` routes answer a malformed body with their own bare error) still
document its shape: :func:`documented_body` gives their ``openapi_extra``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

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
    """`body` (plain JSON values: dicts, lists, str, int, float, None) as a JSON
    answer, serialised by orjson without a model check (the same JSON FastAPI gives
    a plain dict, about four times faster than pydantic-core for a page of 1000
    tracks); for the hot paths described above only."""
    return Response(orjson.dumps(body), media_type="application/json")


def documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads its JSON body as ``Any``: the body's
    schema is `model`'s (its validation schema, nested models written out in place,
    so that it needs no entry of the document's components).

    Parameters
    ----------
    model : type of BaseModel
        The model the service validates the body with.

    Returns
    -------
    dict
        ``{"requestBody": {"content": {"application/json": {"schema": ...}}}}``,
        merged by FastAPI over the operation it generates.
    """
    schema = model.model_json_schema(mode="validation")
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: inline(v) for k, v in node.items() if k != "$ref"}
                return inline(defs[ref.rsplit("/", 1)[-1]]) | rest
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"requestBody": {"content": {"application/json": {"schema": inline(schema)}}}}
