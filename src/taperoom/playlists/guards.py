"""The checks every change of a playlist starts with: lock it, refuse if read-only."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from taperoom.library import models
from taperoom.library.repository import playlists as repo
from taperoom.playlists.errors import PlaylistInvalid, playlist_not_found, read_only


def valid_id(value: str, field: str = "id") -> str:
    """`value` as a canonical UUID string (ids are RFC 4122 UUIDs).

    Raises
    ------
    PlaylistInvalid
        Not a UUID (400, as the original's ``"id" must be a valid UUID``).
    """
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise PlaylistInvalid.from_fields(
            [{"field": field, "message": f'"{field}" must be a valid UUID'}]) from None


def locked(session: Session, playlist_id: str, *, writable: bool = True) -> models.Playlist:
    """Lock a playlist for a change (:func:`taperoom.library.repository.playlists.lock`).

    Raises
    ------
    PlaylistNotFound
        No such playlist (404).
    PlaylistConflict
        `writable` and the playlist is read-only (a finalized session, 409).
    """
    playlist = repo.lock(session, playlist_id)
    if playlist is None:
        raise playlist_not_found(playlist_id)
    if writable and playlist.is_readonly:
        raise read_only(playlist_id)
    return playlist


def existing(session: Session, playlist_id: str) -> models.Playlist:
    """The playlist (no lock); PlaylistNotFound (404) when there is none."""
    playlist = repo.get(session, playlist_id)
    if playlist is None:
        raise playlist_not_found(playlist_id)
    return playlist
