"""Errors of ``/api/playlists``, answered bare as the contract's playlist routes do.

Every error is ``{"error": <short>, "message": <why>}`` (no ``success`` envelope);
a malformed request adds ``details`` (``[{field, message}]``, as the original's
Joi answers). The status comes from the class (400, 404, 409).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taperoom.errors import Conflict, InvalidInput, NotFound, TaperoomError


class PlaylistError(TaperoomError):
    """A ``/api/playlists`` error: ``{"error", "message"[, "details"]}``.

    Parameters
    ----------
    error : str
        The short ``error`` (``"Playlist not found"``, ``"Validation failed"``...).
    message : str
        What is wrong.
    details : list of dict, optional
        ``{"field", "message"}`` per refused field of a request.
    """

    def __init__(self, error: str, message: str,
                 details: Sequence[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.details = list(details) if details else None

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """``{"error", "message"[, "details"]}``, whatever the app's envelope."""
        out: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class PlaylistInvalid(PlaylistError, InvalidInput):
    """A malformed playlist request (HTTP 400)."""

    @classmethod
    def from_fields(cls, details: Sequence[dict[str, str]]) -> PlaylistInvalid:
        """``Validation failed`` with one ``{field, message}`` per refused field; the
        message joins them (``"name: Field required"``)."""
        message = "; ".join(f"{d['field']}: {d['message']}" if d["field"] else d["message"]
                            for d in details) or "Invalid request"
        return cls("Validation failed", message, details)


class PlaylistNotFound(PlaylistError, NotFound):
    """No such playlist, track, entry or folder (HTTP 404)."""


class PlaylistConflict(PlaylistError, Conflict):
    """The request does not fit the playlist's state (HTTP 409): a read-only
    (finalized) session, a track already in a playlist, a folder not empty..."""


def playlist_not_found(playlist_id: str) -> PlaylistNotFound:
    """The contract's ``Playlist not found`` (404)."""
    return PlaylistNotFound("Playlist not found", f"Playlist not found: {playlist_id}")


def track_not_found(track_id: str) -> PlaylistNotFound:
    """``Track not found`` (404): no track of the library has this id."""
    return PlaylistNotFound("Track not found", f"Track not found: {track_id}")


def read_only(playlist_id: str) -> PlaylistConflict:
    """``Playlist is read-only`` (409): a finalized session, or a read-only playlist."""
    return PlaylistConflict("Playlist is read-only",
                            f"Playlist {playlist_id} is read-only (a finalized session)")


def folder_not_found(folder_id: str) -> PlaylistNotFound:
    """``Folder not found`` (404)."""
    return PlaylistNotFound("Folder not found", f"Playlist folder not found: {folder_id}")
