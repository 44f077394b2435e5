"""Playlists, entries and folders as the contract's JSON objects.

A playlist is ``{id, name, description, date_created, date_modified, is_smart,
smart_criteria, color, icon, type, session_date, session_venue, session_duration,
is_temporary, is_readonly, is_favorite, created_at, updated_at, last_accessed}``
(booleans 0/1, times ISO, ``session_date``/``last_accessed`` unix seconds) plus,
beside the contract, ``folder_id``; then ``criteria`` (parsed) when smart,
``track_count`` in lists and ``tracks`` in the detail.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from taperoom.library import models
from taperoom.library.repository.playlists import ENTRY_COLUMNS
from taperoom.library.schemas import TRACK_FIELDS, iso
from taperoom.playlists.smart import parsed_criteria

_ENTRY_WIDTH = len(ENTRY_COLUMNS)
_BOOLS = ("is_smart", "is_temporary", "is_readonly", "is_favorite")
_TIMES = ("date_created", "date_modified", "created_at", "updated_at")
_PLAIN = ("id", "name", "description", "smart_criteria", "color", "icon", "type",
          "session_date", "session_venue", "session_duration", "last_accessed", "folder_id")
_ORDER = ("id", "name", "description", "date_created", "date_modified", "is_smart",
          "smart_criteria", "color", "icon", "type", "session_date", "session_venue",
          "session_duration", "is_temporary", "is_readonly", "is_favorite", "created_at",
          "updated_at", "last_accessed", "folder_id")


def unix(when: datetime) -> int:
    """Unix seconds of a naive UTC datetime (the database's times)."""
    return int(when.replace(tzinfo=UTC).timestamp())


def playlist_dict(playlist: models.Playlist, *, track_count: int | None = None
                  ) -> dict[str, Any]:
    """The playlist object (see the module docstring); ``track_count`` when given."""
    values: dict[str, Any] = {}
    for name in _PLAIN:
        values[name] = getattr(playlist, name)
    for name in _BOOLS:
        values[name] = int(bool(getattr(playlist, name)))
    for name in _TIMES:
        values[name] = iso(getattr(playlist, name))
    out = {name: values[name] for name in _ORDER}
    if playlist.type == "smart" or playlist.is_smart:
        out["criteria"] = parsed_criteria(playlist.smart_criteria)
    if track_count is not None:
        out["track_count"] = track_count
    return out


def entry_dict(row: Sequence[Any]) -> dict[str, Any]:
    """A playlist-track item ``{playlist_id, track_id, position, date_added, played_at,
    play_duration, notes, cue_in, cue_out, rating_in_context, track}`` from a row of
    :func:`taperoom.library.repository.playlists.entries_with_tracks`, whose values
    are the wire's already (times as ISO text, flags as 0/1): the same object as
    :func:`~taperoom.library.schemas.track_dict` gives for the track, built by two
    ``zip`` only (a 1,000-track playlist builds 1,000 of them per ``GET``)."""
    out: dict[str, Any] = dict(zip(ENTRY_COLUMNS, row[:_ENTRY_WIDTH], strict=True))
    out["track"] = dict(zip(TRACK_FIELDS, row[_ENTRY_WIDTH:], strict=True))
    return out


def folder_dict(folder: models.PlaylistFolder) -> dict[str, Any]:
    """``{id, name, parent_id, created_at, updated_at}`` of a folder."""
    return {"id": folder.id, "name": folder.name, "parent_id": folder.parent_id,
            "created_at": iso(folder.created_at), "updated_at": iso(folder.updated_at)}
