"""Smart playlists: their tracks evaluated from their criteria, refreshed, converted, explained.

A smart playlist stores its tracks like any other (``playlist_tracks``, dense
positions in the criteria's order), so reading it costs what reading a static
playlist costs. The stored tracks are evaluated again

* on ``POST /api/playlists/:id/refresh`` (:meth:`SmartPlaylists.refresh`),
* when the criteria are set (creation, ``PUT`` with ``criteria``:
  :func:`fill`, in the transaction that stores them),
* when a playlist whose criteria depend on time is read
  (:meth:`taperoom.playlists.service.PlaylistService.get`),
* after changes of the library's tracks, by the leader process
  (:meth:`SmartPlaylists.refresh_affected`, called by
  :class:`taperoom.playlists.keeper.SmartPlaylistKeeper`).

The evaluation is one SQL query (:func:`taperoom.playlists.criteria_sql.track_ids_query`);
a refresh first compares its answer with the stored tracks in a read-only
session and writes (locking the playlist) only when they differ, so a refresh
that changes nothing takes no write lock and sends no event. A change sends
``playlist:updated`` with reason ``refreshed``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import InvalidInput
from taperoom.events import EventBus, send_playlist_updates
from taperoom.library.repository import directories as dir_repo
from taperoom.library.repository import playlists as repo
from taperoom.library.schemas import track_dict
from taperoom.playlists.criteria import Criteria, explain, fields
from taperoom.playlists.criteria_sql import track_ids_query
from taperoom.playlists.errors import PlaylistError, PlaylistInvalid
from taperoom.playlists.guards import existing, locked
from taperoom.playlists.smart import criteria_for_storage, stored_criteria

log = logging.getLogger(__name__)

#: ``reason`` of the ``playlist:updated`` a refresh sends.
REFRESHED = "refreshed"


@dataclass(frozen=True)
class Refresh:
    """What a refresh changed.

    Attributes
    ----------
    added, removed : tuple of str
        Track ids that entered (in playlist order) and left (in their old order).
    total : int
        Tracks the playlist holds now.
    changed : bool
        Whether anything changed, the order included.
    """

    added: tuple[str, ...]
    removed: tuple[str, ...]
    total: int
    changed: bool

    def answer(self) -> dict[str, Any]:
        """The contract's ``{added, removed, total, addedCount, removedCount}``."""
        return {"added": list(self.added), "removed": list(self.removed), "total": self.total,
                "addedCount": len(self.added), "removedCount": len(self.removed)}


def _diff(held: Sequence[str], wanted: Sequence[str]) -> Refresh:
    keep, had = set(wanted), set(held)
    return Refresh(added=tuple(t for t in wanted if t not in had),
                   removed=tuple(t for t in held if t not in keep), total=len(wanted),
                   changed=list(held) != list(wanted))


def not_smart(playlist_id: str) -> PlaylistInvalid:
    """``Not a smart playlist`` (400)."""
    return PlaylistInvalid("Not a smart playlist",
                           f"Playlist {playlist_id} is not a smart playlist")


def criteria_of(playlist_id: str, stored: str | None) -> Criteria:
    """The parsed criteria of a smart playlist.

    Raises
    ------
    PlaylistInvalid
        The stored criteria do not parse (400 ``Invalid criteria``; set new ones
        with ``PUT /api/playlists/:id``).
    """
    try:
        return stored_criteria(stored)
    except InvalidInput as exc:
        raise PlaylistInvalid("Invalid criteria",
                              f"Playlist {playlist_id}: {exc.message}") from None


def _held(session: Session, playlist_id: str) -> list[str]:
    return [t for t, _ in repo.entry_keys(session, playlist_id)]


def fill(session: Session, playlist_id: str, criteria: Criteria, *,
         now: datetime | None = None) -> Refresh:
    """Make a locked smart playlist hold the tracks of `criteria`, in their order.

    Parameters
    ----------
    session : Session
        In a transaction that has locked the playlist
        (:func:`taperoom.playlists.guards.locked`).
    playlist_id : str
    criteria : Criteria
    now : datetime, optional
        Naive UTC "now" of relative criteria (default: now).

    Returns
    -------
    Refresh
    """
    wanted = repo.matching_tracks(session, track_ids_query(criteria, now=now))
    held = _held(session, playlist_id)
    result = _diff(held, wanted)
    if result.changed:
        repo.replace_entries(session, playlist_id, wanted)
    return result


class SmartPlaylists:
    """Refresh, convert and explain smart playlists.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``playlist:updated`` (reason ``refreshed``) when a refresh
        changed a playlist.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus) -> None:
        self.db = db
        self.bus = bus

    def refresh(self, playlist_id: str, *, now: datetime | None = None) -> Refresh:
        """Evaluate a smart playlist's criteria and store the tracks when they differ.

        Raises
        ------
        PlaylistNotFound
            No such playlist (404).
        PlaylistInvalid
            Not a smart playlist, or its stored criteria do not parse (400).
        """
        with self.db() as s:
            playlist = existing(s, playlist_id)
            if playlist.type != "smart":
                raise not_smart(playlist_id)
            criteria = criteria_of(playlist_id, playlist.smart_criteria)
            wanted = repo.matching_tracks(s, track_ids_query(criteria, now=now))
            result = _diff(_held(s, playlist.id), wanted)
        if not result.changed:
            return result
        with transaction(self.db) as s:  # something changed: again, under the lock
            playlist = locked(s, playlist_id, writable=False)
            if playlist.type != "smart":
                raise not_smart(playlist_id)
            result = fill(s, playlist.id, criteria_of(playlist_id, playlist.smart_criteria),
                          now=now)
        if result.changed:
            send_playlist_updates(self.bus, [playlist_id], REFRESHED)
        return result

    def refresh_affected(self, changed: frozenset[str] | None) -> list[str]:
        """Refresh the smart playlists a change of tracks may affect.

        Parameters
        ----------
        changed : frozenset of str or None
            Track columns that changed (``{"rating"}``...); None when tracks were
            added, deleted, went missing or came back (every smart playlist may
            change). A playlist whose criteria read none of `changed`
            (:func:`taperoom.playlists.criteria.fields`) is skipped.

        Returns
        -------
        list of str
            Ids of the playlists that changed (each sent ``playlist:updated``).
        """
        with self.db() as s:
            rows = repo.smart_playlists(s)
        done: list[str] = []
        for playlist_id, stored in rows:
            try:
                criteria = stored_criteria(stored)
            except InvalidInput:
                continue
            if changed is not None and not (changed & fields(criteria)):
                continue
            try:
                if self.refresh(playlist_id).changed:
                    done.append(playlist_id)
            except PlaylistError:
                continue  # converted or deleted meanwhile
            except Exception:
                log.exception("could not refresh smart playlist %s", playlist_id)
        return done

    def convert(self, playlist_id: str) -> int:
        """Make a smart playlist static with the tracks its criteria give now; returns
        how many it holds.

        Raises
        ------
        PlaylistNotFound
            No such playlist (404).
        PlaylistInvalid
            Not a smart playlist (400).
        """
        with transaction(self.db) as s:
            playlist = locked(s, playlist_id, writable=False)
            if playlist.type != "smart":
                raise not_smart(playlist_id)
            with contextlib.suppress(InvalidInput):  # unreadable: keep the tracks it holds
                fill(s, playlist.id, stored_criteria(playlist.smart_criteria))
            repo.make_static(s, playlist.id)
            count = repo.count_entries(s, playlist.id)
        send_playlist_updates(self.bus, [playlist_id], "updated")
        return count

    def preview(self, criteria: Any, *, limit: int = 50,
                now: datetime | None = None) -> dict[str, Any]:
        """The tracks criteria match now, without a playlist (the page's smart editor).

        Parameters
        ----------
        criteria : dict
            Criteria as ``POST /api/playlists`` takes them.
        limit : int
            Most tracks returned (all matches are counted, up to the criteria's own
            ``limit``, at most 1000).

        Returns
        -------
        dict
            ``{count, explanation, tracks: [track]}``, tracks in the criteria's order.

        Raises
        ------
        PlaylistInvalid
            The criteria do not parse (400 ``Validation failed``).
        """
        parsed = stored_criteria(criteria_for_storage(criteria))
        with self.db() as s:
            ids = repo.matching_tracks(s, track_ids_query(parsed, now=now))
            rows = {t.id: t for t in dir_repo.tracks_by_ids(s, ids[:limit])}
            tracks = [track_dict(rows[i]) for i in ids[:limit] if i in rows]
        return {"count": len(ids), "explanation": explain(parsed), "tracks": tracks}

    def explain(self, playlist_id: str) -> dict[str, Any]:
        """``{explanation, criteria}``: the parsed criteria in words, and the stored
        JSON text (the contract's raw ``smart_criteria`` string).

        Raises
        ------
        PlaylistNotFound
            No such playlist (404).
        PlaylistInvalid
            Not a smart playlist, or its criteria do not parse (400).
        """
        with self.db() as s:
            playlist = existing(s, playlist_id)
            if playlist.type != "smart":
                raise not_smart(playlist_id)
            stored = playlist.smart_criteria
        return {"explanation": explain(criteria_of(playlist_id, stored)), "criteria": stored}
