"""Validation of the ``/api/analysis`` request bodies.

The routes read their bodies as any JSON (:mod:`taperoom.library.api.analysis`), so
that a malformed one gets the contract's ``{error, message}`` answer (400) instead
of the framework's; the shapes are the pydantic models of
:mod:`taperoom.library.schemas`, which the OpenAPI document shows.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from taperoom.library.analysis.errors import AnalysisInvalid, AnalysisNotFound
from taperoom.library.models import Track
from taperoom.library.repository import analysis as repo
from taperoom.library.schemas import AnalysisOptions
from taperoom.library.tracks import canonical_id

__all__ = ["check_options", "find_track", "parse"]

Model = TypeVar("Model", bound=BaseModel)


def parse(model: type[Model], body: Any, error: str) -> Model:
    """`body` (parsed JSON, None for no body) as a `model`.

    Parameters
    ----------
    model : type of BaseModel
        The request's model (:class:`~taperoom.library.schemas.AnalysisRequestBody`...).
    body : Any
        The JSON body; None counts as ``{}``.
    error : str
        The short ``error`` of the refusal (``"Invalid request"``, ``"Invalid callback"``).

    Raises
    ------
    AnalysisInvalid
        Not a JSON object, or its first invalid field and why (400).
    """
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise AnalysisInvalid(error, "the body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise AnalysisInvalid(error, f"{where}: {first.get('msg')}" if where
                              else str(first.get("msg"))) from None


def check_options(options: AnalysisOptions, *, external: bool) -> None:
    """Stems need an external analysis server.

    Raises
    ------
    AnalysisInvalid
        ``stems`` asked for without ``ANALYSIS_SERVER_URL`` (400).
    """
    if options.stems and not external:
        raise AnalysisInvalid("Invalid request", "Stems come only from an external "
                              "analysis server: set ANALYSIS_SERVER_URL to ask for them")


def find_track(s: Session, track_id: str) -> Track:
    """The track `track_id` names (track ids are UUIDs, contract §1).

    Raises
    ------
    AnalysisNotFound
        ``Track not found`` (404).
    """
    canonical = canonical_id(track_id)
    track = repo.get_track(s, canonical) if canonical is not None else None
    if track is None:
        raise AnalysisNotFound("Track not found", f"Track with ID {track_id} does not exist")
    return track
