"""The one mapping from :class:`~taperoom.errors.TaperoomError` to HTTP responses.

Each app chooses only the JSON *body* shape (the ephemeral contract answers
``{"error": "..."}``; the library contract wraps it in an envelope); the status
code always comes from the error class (``TaperoomError.status``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from taperoom.errors import (
    InvalidFields,
    RangeNotSatisfiable,
    RateLimited,
    TaperoomError,
    Unauthorized,
)

log = logging.getLogger(__name__)

BodyRenderer = Callable[[int, str, list[dict[str, str]] | None], dict[str, Any]]


def error_body(status: int, message: str, details: list[dict[str, str]] | None = None
               ) -> dict[str, Any]:
    """Default body: ``{"error": message}`` (field details folded into the message)."""
    if details:
        message = "; ".join(f"{d['field']}: {d['message']}" if d["field"] else d["message"]
                            for d in details)
    return {"error": message}


def error_headers(exc: TaperoomError) -> dict[str, str]:
    """Response headers an error calls for: ``Content-Range`` on 416, ``Retry-After`` on 429,
    ``WWW-Authenticate: Bearer`` on 401 (RFC 9110 §11.6.1, RFC 6750 §3)."""
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="taperoom"'

    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return headers


def error_answer_body(exc: TaperoomError, render: BodyRenderer = error_body) -> dict[str, Any]:
    """The JSON body of `exc`'s answer.

    The app's body ``render(status, message, details)`` (`details`: the refused
    fields of an :class:`~taperoom.errors.InvalidFields`, else None), given to the
    error's :meth:`~taperoom.errors.TaperoomError.answer`: by default it adds the
    fields of :meth:`~taperoom.errors.TaperoomError.extra`; an error whose
    contract answer has a shape of its own returns that shape.

    Parameters
    ----------
    exc : TaperoomError
        The error.
    render : callable(status, message, details) -> dict
        The app's body shape (see :func:`install_error_handlers`).
    """
    details = exc.details if isinstance(exc, InvalidFields) else None
    return exc.answer(render(exc.status, exc.message, details))


def error_response(exc: TaperoomError, render: BodyRenderer = error_body) -> JSONResponse:
    """The HTTP response of `exc`: its class's status, its body
    (:func:`error_answer_body`), its headers.

    Parameters
    ----------
    exc : TaperoomError
        The error.
    render : callable(status, message, details) -> dict
        The app's body shape (see :func:`install_error_handlers`).
    """
    return JSONResponse(error_answer_body(exc, render), status_code=exc.status,
                        headers=error_headers(exc))


def install_error_handlers(app: FastAPI, render: BodyRenderer = error_body) -> None:
    """Register the exception handlers of `app`.

    Parameters
    ----------
    app : FastAPI
        The application.
    render : callable(status, message, details) -> dict
        Builds the JSON body of an error response; `details` lists
        ``{"field", "message"}`` for request validation errors, else None.
    """

    async def taperoom_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TaperoomError)
        if exc.status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        return error_response(exc, render)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ())]
            if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
                loc = loc[1:]
            details.append({"field": ".".join(loc), "message": str(err.get("msg")),
                            "type": str(err.get("type", ""))})
        return JSONResponse(render(400, "Validation failed", details), status_code=400)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(render(exc.status_code, str(exc.detail), None),
                            status_code=exc.status_code, headers=exc.headers)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(render(500, "Internal server error", None), status_code=500)

    app.add_exception_handler(TaperoomError, taperoom_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
