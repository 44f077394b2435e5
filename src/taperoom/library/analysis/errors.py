"""The exceptions of the library's analysis: the ``/api/analysis`` refusals, answered
bare as the contract's analysis routes do (``{"error", "message"}``, no ``success``
envelope), and the signal that stops a running analysis."""

from __future__ import annotations

from typing import Any

from taperoom.errors import Busy, Conflict, Forbidden, InvalidInput, NotFound, TaperoomError

__all__ = ["AnalysisConflict", "AnalysisForbidden", "AnalysisInvalid", "AnalysisNotFound",
           "AnalysisRefusal", "AnalysisUnavailable", "Stopped"]


class AnalysisRefusal(TaperoomError):
    """An ``/api/analysis`` error, answered bare as the contract's analysis routes do:
    ``{"error": <short>, "message": <why>}`` (no ``success`` envelope).

    Parameters
    ----------
    error : str
        The short ``error`` (``"Invalid request"``, ``"Job not found"``...).
    message : str
        What is wrong.
    """

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"error", "message"}``, whatever the app's envelope."""
        return {"error": self.error, "message": self.message}


class AnalysisInvalid(AnalysisRefusal, InvalidInput):
    """A malformed analysis request (HTTP 400)."""


class AnalysisNotFound(AnalysisRefusal, NotFound):
    """No such track, job or waveform (HTTP 404)."""


class AnalysisForbidden(AnalysisRefusal, Forbidden):
    """A callback without its job's secret (HTTP 403)."""


class AnalysisConflict(AnalysisRefusal, Conflict):
    """The request does not fit the job's or track's state (HTTP 409)."""


class AnalysisUnavailable(AnalysisRefusal, Busy):
    """The analyzer cannot run here (HTTP 503)."""


class Stopped(Exception):
    """The running analysis was cancelled or its process is stopping (raised from a
    progress callback, caught by the job's runner)."""
