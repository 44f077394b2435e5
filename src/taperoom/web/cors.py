"""CORS for every route, preflight included, from a ``CORS_ORIGIN`` setting."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware


def parse_origins(value: str) -> list[str]:
    """Split a ``CORS_ORIGIN`` value (``*`` or comma-separated origins) into a list."""
    origins = [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
    return origins or ["*"]


def install_cors(app: FastAPI, origins: str) -> None:
    """Answer CORS preflight (``OPTIONS``) and tag every response for `origins`.

    Parameters
    ----------
    app : FastAPI
        The application.
    origins : str
        ``*`` for any origin, or a comma-separated list of origins.
    """
    allowed = parse_origins(origins)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=allowed,
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["Content-Range", "Content-Length", "Accept-Ranges", "Retry-After"],
        max_age=600,
    )
