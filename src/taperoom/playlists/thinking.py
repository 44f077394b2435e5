"""The thinking playlist: one scratch playlist (type ``temp``) a DJ fills while
digging, and promotes to a real playlist when it is good.

``GET /thinking`` creates it when absent (``Thinking Playlist``, icon
``lightbulb``, ``is_temporary`` 1); a unique index on ``type = 'temp'`` keeps it
single when two clients ask at once. Promoting copies its entries into a new
static playlist and empties it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.events import EventBus, send_playlist_updates
from taperoom.library import models
from taperoom.library.models import utcnow
from taperoom.library.repository import playlists as repo
from taperoom.playlists.guards import locked
from taperoom.playlists.views import entry_dict, playlist_dict, unix

THINKING_NAME = "Thinking Playlist"


class ThinkingPlaylist:
    """The thinking playlist and its promotion.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``playlist:updated``.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus) -> None:
        self.db = db
        self.bus = bus

    def _ensure(self) -> str:
        """The thinking playlist's id, creating it when absent."""
        with self.db() as s:
            found = repo.thinking(s)
            if found is not None:
                return found.id
        now = utcnow()
        try:
            with transaction(self.db) as s:
                created = repo.create(
                    s, name=THINKING_NAME, type="temp", is_temporary=True, icon="lightbulb",
                    is_smart=False, date_created=now, date_modified=now, created_at=now,
                    updated_at=now, last_accessed=unix(now))
                new_id = created.id
        except IntegrityError:  # another request created it first
            with self.db() as s:
                again = repo.thinking(s)
                assert again is not None
                return again.id
        send_playlist_updates(self.bus, [new_id], "created")
        return new_id

    def get(self) -> dict[str, Any]:
        """The thinking playlist with its ``tracks`` (created when absent)."""
        playlist_id = self._ensure()
        with self.db() as s:
            playlist = s.get(models.Playlist, playlist_id)
            assert playlist is not None
            out = playlist_dict(playlist)
            out["tracks"] = [entry_dict(r) for r in repo.entries_with_tracks(s, playlist_id)]
            return out

    def promote(self, name: str) -> dict[str, Any]:
        """Copy the thinking playlist's entries into a new static playlist `name` and
        empty it.

        Returns
        -------
        dict
            ``promoted_playlist`` (the new playlist, with ``track_count``) and
            ``new_thinking_playlist`` (the emptied thinking playlist).
        """
        thinking_id = self._ensure()
        now = utcnow()
        with transaction(self.db) as s:
            thinking = locked(s, thinking_id, writable=False)
            rows = [{"track_id": r["track_id"], "occurrence": 0, "date_added": r["date_added"],
                     **{k: r[k] for k in ("notes", "cue_in", "cue_out", "rating_in_context")}}
                    for r in repo.entry_rows(s, thinking.id)]
            promoted = repo.create(
                s, name=name, type="static", is_smart=False, date_created=now,
                date_modified=now, created_at=now, updated_at=now, last_accessed=unix(now))
            repo.insert_entries(s, promoted.id, rows)
            repo.clear_entries(s, thinking.id)
            out = {"promoted_playlist": playlist_dict(promoted, track_count=len(rows)),
                   "new_thinking_playlist": playlist_dict(thinking, track_count=0)}
        send_playlist_updates(self.bus, [out["promoted_playlist"]["id"]], "created")
        send_playlist_updates(self.bus, [thinking_id], "cleared")
        return out
