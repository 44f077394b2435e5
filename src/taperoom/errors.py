"""Error hierarchy shared by every Taperoom app.

Every error raised on purpose by Taperoom code derives from :class:`TaperoomError`.
Each subclass also inherits the matching built-in exception (as attrs does), so
callers that only know Python's built-ins still catch them. The HTTP status of each
class is its ``status`` attribute, read in one place (:mod:`taperoom.web.errors`);
the CLI exit code is its ``exit_code`` attribute, read in :mod:`taperoom.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class TaperoomError(Exception):
    """Base of every deliberate Taperoom error.

    Parameters
    ----------
    message : str
        Human-readable explanation, shown to API clients and CLI users.
    """

    status: int = 500
    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def extra(self) -> dict[str, Any]:
        """Fields an API answer of this error carries beside its message (none here).

        Subclasses of one app name what its contract adds (the library's
        ``{"success": false, "error": "Track not found", "message": "Track with ID
        ... does not exist"}``); :mod:`taperoom.web.errors` puts them in the body.
        """
        return {}

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The JSON body of this error's API answer, from the app's error `body`.

        By default `body` plus :meth:`extra` (whose keys win). A contract that
        answers some error with a shape of its own overrides this (the recorder's
        ``{"valid": false, "error": ..., "message": ...}`` for a bad cron
        expression); :mod:`taperoom.web.errors` is the one caller.
        """
        return {**body, **self.extra()}


class InvalidInput(TaperoomError, ValueError):
    """The client sent something malformed (HTTP 400)."""

    status = 400
    exit_code = 2


class InvalidFields(InvalidInput):
    """Some fields of a request hold values the server refuses (HTTP 400), answered as
    a request validation error is.

    Parameters
    ----------
    details : list of dict
        ``{"field", "message"}`` per refused field (``field`` dotted, e.g.
        ``settings.0.value``).
    message : str
        Summary (default ``Validation failed``, as request validation errors say).
    """

    def __init__(self, details: list[dict[str, str]], message: str = "Validation failed"
                 ) -> None:
        super().__init__(message)
        self.details = details


class Unauthorized(TaperoomError, PermissionError):
    """Credentials are missing or wrong (HTTP 401)."""

    status = 401
    exit_code = 3


class Forbidden(TaperoomError, PermissionError):
    """The action is not allowed, whoever asks (HTTP 403)."""

    status = 403
    exit_code = 3


class NotFound(TaperoomError, LookupError):
    """The named resource does not exist (HTTP 404)."""

    status = 404
    exit_code = 4


class NotAcceptable(TaperoomError, ValueError):
    """The client does not accept what the route sends (HTTP 406, RFC 9110 §15.5.7)."""

    status = 406
    exit_code = 2


class Conflict(TaperoomError, RuntimeError):
    """The request conflicts with the current state (HTTP 409)."""

    status = 409
    exit_code = 5


class TooLarge(TaperoomError, ValueError):
    """The request body or an uploaded file is too large (HTTP 413)."""

    status = 413
    exit_code = 2


class RangeNotSatisfiable(TaperoomError, ValueError):
    """A byte range lies outside the resource (HTTP 416).

    Parameters
    ----------
    message : str
        Explanation.
    size : int
        Size of the resource in bytes, sent back as ``Content-Range: bytes */size``.
    """

    status = 416
    exit_code = 2

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class Unprocessable(TaperoomError, ValueError):
    """The request is well-formed but its content cannot be processed (HTTP 422)."""

    status = 422
    exit_code = 2


class RateLimited(TaperoomError, RuntimeError):
    """The client sent too many requests (HTTP 429).

    Parameters
    ----------
    message : str
        Explanation.
    retry_after : float
        Seconds until the client may try again.
    """

    status = 429
    exit_code = 6

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Busy(TaperoomError, TimeoutError):
    """A lock or resource could not be had in time (HTTP 503)."""

    status = 503
    exit_code = 7


class InsufficientStorage(TaperoomError, OSError):
    """Not enough free disk space to start the work (HTTP 507)."""

    status = 507
    exit_code = 9


class Misconfigured(TaperoomError, RuntimeError):
    """The settings do not allow the app to start (HTTP 500; exit code 78, EX_CONFIG
    of BSD ``sysexits.h``)."""

    status = 500
    exit_code = 78


class MediaError(TaperoomError, ValueError):
    """An audio file cannot be read or written.

    Parameters
    ----------
    path : str or Path
        The file concerned.
    reason : str
        What is wrong with it.
    """

    status = 422
    exit_code = 8

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{Path(path).name}: {reason}")
        self.path = Path(path)
        self.reason = reason


def file_error_reason(exc: BaseException) -> str:
    """What is wrong with a file, in one line, from the error reading it raised: a
    :class:`MediaError`'s reason, an ``OSError``'s system message (``"No such file or
    directory"``), else the error's type and text."""
    if isinstance(exc, MediaError):
        return exc.reason
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"
