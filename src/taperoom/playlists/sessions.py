"""DJ sessions: playlists that log what was played, live (``/api/playlists/sessions``).

A session is a playlist of type ``session`` named ``Session - YYYY-MM-DD[ - venue]``.
Each logged play is an entry at the end with ``played_at`` (unix s),
``play_duration`` (s) and ``notes``; the track's ``play_count`` and
``last_played`` count it too. Finalizing sets ``session_duration`` (from the
first play's start to the last play's end, 0 without plays) and makes the
session read-only: from then on every change is 409 (the original answered 500).
``sessions/active`` lists only sessions not finalized (the original listed all).

**Replays.** A DJ may play a track twice in one night, and a session must log
both plays. ``playlist_tracks`` was keyed by ``(playlist_id, track_id)``, which
allowed one entry per track; revision 0007 adds ``occurrence`` to the key (0 for
a track's first entry, 1 for its first replay, ...). Each play is its own entry
with its own position and play data; other playlist types keep one entry per
track (their ``occurrence`` is always 0, so the key still refuses a second one).
A replay is addressed by ``?occurrence=N`` where a route names a track; entries
carry ``occurrence`` beside the contract's keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.events import Event, EventBus, send_playlist_updates
from taperoom.library.models import utcnow
from taperoom.library.repository import playlists as repo
from taperoom.playlists.errors import PlaylistConflict, PlaylistInvalid, track_not_found
from taperoom.playlists.guards import locked
from taperoom.playlists.views import playlist_dict, unix


def session_name(date: int, venue: str | None) -> str:
    """``Session - YYYY-MM-DD[ - venue]`` of a session starting at unix time `date` (UTC)."""
    day = datetime.fromtimestamp(date, UTC).strftime("%Y-%m-%d")
    return f"Session - {day} - {venue}" if venue else f"Session - {day}"


class SessionService:
    """Starts DJ sessions, logs their plays and finalizes them.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``playlist:updated`` and ``track:updated`` (play counts).
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus) -> None:
        self.db = db
        self.bus = bus

    def start(self, venue: str | None = None, date: int | None = None) -> dict[str, Any]:
        """A new session playlist (description ``DJ session history``, icon
        ``calendar``); `date` (unix s) defaults to now."""
        now = utcnow()
        when = date if date is not None else unix(now)
        with transaction(self.db) as s:
            playlist = repo.create(
                s, name=session_name(when, venue), description="DJ session history",
                icon="calendar", type="session", is_smart=False, session_date=when,
                session_venue=venue, date_created=now, date_modified=now, created_at=now,
                updated_at=now, last_accessed=unix(now))
            out = playlist_dict(playlist)
        send_playlist_updates(self.bus, [out["id"]], "created")
        return out

    def log_play(self, playlist_id: str, track_id: str, *, played_at: int | None = None,
                 duration: int | None = None, notes: str | None = None) -> int:
        """Log a play at the end of a session (a replay when the track was played
        before); returns the entry's ``occurrence``.

        Raises
        ------
        PlaylistNotFound
            No such playlist or track (404).
        PlaylistInvalid
            The playlist is not a session (400).
        PlaylistConflict
            The session is finalized (409).
        """
        when = played_at if played_at is not None else unix(utcnow())
        with transaction(self.db) as s:
            playlist = locked(s, playlist_id)
            if playlist.type != "session":
                raise PlaylistInvalid("Not a session",
                                      f"Playlist {playlist.id} is not a session playlist")
            if not repo.existing_tracks(s, [track_id]):
                raise track_not_found(track_id)
            occurrence = repo.next_occurrence(s, playlist.id, track_id)
            repo.insert_entries(s, playlist.id, [{
                "track_id": track_id, "occurrence": occurrence, "played_at": when,
                "play_duration": duration, "notes": notes}])
            repo.record_play(s, track_id, when)
        send_playlist_updates(self.bus, [playlist.id], "track:played")
        self.bus.send(Event.TRACK_UPDATED, {"trackId": track_id,
                                            "changes": ["play_count", "last_played"]})
        return occurrence

    def finalize(self, playlist_id: str) -> int:
        """Make a session read-only and set its ``session_duration`` (s); returns it.

        Raises
        ------
        PlaylistNotFound
            No such playlist (404).
        PlaylistInvalid
            Not a session (400).
        PlaylistConflict
            Already finalized (409).
        """
        with transaction(self.db) as s:
            playlist = locked(s, playlist_id, writable=False)
            if playlist.type != "session":
                raise PlaylistInvalid("Not a session",
                                      f"Playlist {playlist.id} is not a session playlist")
            if playlist.is_readonly:
                raise PlaylistConflict("Session already finalized",
                                       f"Session {playlist.id} is already finalized")
            first, last = repo.play_times(s, playlist.id)
            duration = max(0, last - first) if first is not None and last is not None else 0
            playlist.session_duration = duration
            playlist.is_readonly = True
        send_playlist_updates(self.bus, [playlist.id], "finalized")
        return duration

    def active(self) -> list[dict[str, Any]]:
        """Sessions not finalized, with ``track_count`` (most recent first)."""
        with self.db() as s:
            rows = repo.list_playlists(s, type_="session", is_readonly=False)
            return [playlist_dict(p, track_count=n) for p, n in rows]
