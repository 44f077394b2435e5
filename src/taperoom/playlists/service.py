"""Playlists and their tracks (``/api/playlists``, contracts/library.md "Playlists").

What this service does beyond the original, on purpose:

* an unknown playlist or track is 404 (``Playlist not found`` / ``Track not
  found``), never 500; a malformed body is 400 ``{error, message, details}``;
* adding a track a static (or smart, or thinking) playlist already holds is
  409 ``Track already in playlist`` and nothing is added (a request naming the
  same track twice is refused the same way); only session playlists hold a
  track more than once (:mod:`taperoom.playlists.sessions`);
* a read-only playlist (a finalized session) refuses every change of its
  tracks or details with 409; only ``is_favorite`` and ``folder_id`` (which
  file it, they do not change it) may still be set, and it may be deleted;
* a smart playlist's tracks come from its criteria: adding, removing or
  reordering them by hand is 409;
* ``PUT /:id/tracks/reorder`` takes every entry of the playlist, in the new
  order; a list that is not the playlist's tracks (another client changed them
  meanwhile) is 409 and nothing moves;
* ``PUT``/``DELETE /:id/tracks/:trackId`` act on every entry of the track, or
  on one replay with ``occurrence``;
* positions stay 0..n-1 under concurrent changes: each change locks its
  playlist first (:mod:`taperoom.library.repository.playlists`);
* every change of a playlist's tracks sends ``playlist:updated``;
* a smart playlist's criteria must parse (400 otherwise); its tracks are
  evaluated when it is created and when ``PUT`` sets new ``criteria``, and again
  on every read when they depend on time (:mod:`taperoom.playlists.smartlists`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.events import EventBus, send_playlist_updates
from taperoom.library import models
from taperoom.library.models import utcnow
from taperoom.library.repository import playlists as repo
from taperoom.playlists.errors import (
    PlaylistConflict,
    PlaylistInvalid,
    PlaylistNotFound,
    folder_not_found,
    track_not_found,
)
from taperoom.playlists.export import contract_m3u
from taperoom.playlists.guards import existing, locked
from taperoom.playlists.smart import criteria_for_storage, stored_criteria, timed
from taperoom.playlists.smartlists import SmartPlaylists, fill
from taperoom.playlists.views import entry_dict, playlist_dict, unix

#: Types a client may create (``temp`` is the thinking playlist's own).
CREATABLE_TYPES = ("static", "smart", "session")
#: Fields of ``PUT /:id`` that a read-only playlist still takes.
FILING_FIELDS = frozenset({"is_favorite", "folder_id"})


@dataclass(frozen=True)
class NewPlaylist:
    """A playlist to create (``POST /api/playlists``), already checked for shape.

    ``criteria`` is required when ``type`` is ``smart`` and refused otherwise
    (:meth:`PlaylistService.create` checks it).
    """

    name: str
    type: str = "static"
    description: str | None = None
    color: str | None = None
    icon: str | None = None
    criteria: dict[str, Any] | None = None
    session_venue: str | None = None
    session_date: int | None = None
    is_favorite: bool = False
    folder_id: str | None = None


class PlaylistService:
    """Playlists, their entries, statistics and M3U export.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``playlist:updated``.
    smart : SmartPlaylists
        Refreshes a smart playlist whose criteria depend on time before it is read.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus,
                 smart: SmartPlaylists) -> None:
        self.db = db
        self.bus = bus
        self.smart = smart

    def _updated(self, playlist_id: str, reason: str) -> None:
        send_playlist_updates(self.bus, [playlist_id], reason)

    # ----------------------------------------------------------------------- reading

    def list_playlists(self, *, type_: str | None = None, is_favorite: bool | None = None,
             is_temporary: bool | None = None, search: str | None = None,
             folder_id: str | None = None) -> list[dict[str, Any]]:
        """Playlists with ``track_count``, favourites first, then the most recently
        updated; filters as :func:`taperoom.library.repository.playlists.list_playlists`."""
        with self.db() as s:
            rows = repo.list_playlists(s, type_=type_, is_favorite=is_favorite,
                                       is_temporary=is_temporary, search=search,
                                       folder_id=folder_id)
            return [playlist_dict(p, track_count=n) for p, n in rows]

    def search(self, query: str, limit: int = 100) -> list[dict[str, Any]]:
        """Playlists whose name or description holds `query` (case-insensitive)."""
        with self.db() as s:
            rows = repo.list_playlists(s, search=query, limit=limit)
            return [playlist_dict(p, track_count=n) for p, n in rows]

    def get(self, playlist_id: str, *, include_tracks: bool = True) -> dict[str, Any]:
        """The playlist, with ``tracks`` (entries with their track objects, in order)
        unless `include_tracks` is False; PlaylistNotFound (404). A smart playlist
        whose criteria depend on time is evaluated first."""
        with self.db() as s:
            playlist = existing(s, playlist_id)
            if not (playlist.type == "smart" and timed(playlist.smart_criteria)):
                return self._detail(s, playlist, include_tracks)
        self.smart.refresh(playlist_id)
        with self.db() as s:
            return self._detail(s, existing(s, playlist_id), include_tracks)

    @staticmethod
    def _detail(s: Session, playlist: models.Playlist, include_tracks: bool
                ) -> dict[str, Any]:
        out = playlist_dict(playlist)
        if include_tracks:
            out["tracks"] = [entry_dict(r) for r in repo.entries_with_tracks(s, playlist.id)]
        return out

    def stats(self, playlist_id: str) -> dict[str, Any]:
        """Figures of the playlist's tracks
        (:func:`taperoom.library.repository.playlists.stats`); PlaylistNotFound (404)."""
        with self.db() as s:
            playlist = existing(s, playlist_id)
            return repo.stats(s, playlist.id)

    def export_m3u(self, playlist_id: str) -> tuple[str, str]:
        """``(name, M3U text)`` of a playlist (:func:`taperoom.playlists.export.contract_m3u`)."""
        with self.db() as s:
            playlist = existing(s, playlist_id)
            rows = repo.export_rows(s, playlist.id)
            return playlist.name, contract_m3u(playlist.name, playlist.description, rows,
                                               utcnow())

    # ----------------------------------------------------------------------- playlists

    def create(self, new: NewPlaylist) -> dict[str, Any]:
        """Create a playlist (without tracks); a session gets today's date when none
        is given.

        Raises
        ------
        PlaylistInvalid
            ``criteria`` missing for a smart playlist or given for another type, or
            an unknown ``type`` (400).
        PlaylistNotFound
            ``folder_id`` names no folder (404).
        """
        if new.type not in CREATABLE_TYPES:
            raise PlaylistInvalid.from_fields([{
                "field": "type", "message": f'"type" must be one of {list(CREATABLE_TYPES)}'}])
        if new.type == "smart" and new.criteria is None:
            raise PlaylistInvalid.from_fields([{"field": "criteria",
                                                "message": '"criteria" is required'}])
        if new.type != "smart" and new.criteria is not None:
            raise PlaylistInvalid.from_fields([{"field": "criteria",
                                                "message": '"criteria" is not allowed'}])
        criteria = criteria_for_storage(new.criteria) if new.criteria is not None else None
        now = utcnow()
        with transaction(self.db) as s:
            if new.folder_id is not None and repo.get_folder(s, new.folder_id) is None:
                raise folder_not_found(new.folder_id)
            playlist = repo.create(
                s, name=new.name, description=new.description, color=new.color,
                icon=new.icon, type=new.type, is_smart=new.type == "smart",
                smart_criteria=criteria, session_venue=new.session_venue,
                session_date=(new.session_date if new.session_date is not None
                              else unix(now) if new.type == "session" else None),
                is_favorite=new.is_favorite, folder_id=new.folder_id,
                date_created=now, date_modified=now, created_at=now, updated_at=now,
                last_accessed=unix(now))
            if criteria is not None:
                fill(s, playlist.id, stored_criteria(criteria))
            out = playlist_dict(playlist)
        self._updated(out["id"], "created")
        return out

    def update(self, playlist_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Set ``name``, ``description``, ``color``, ``icon``, ``is_favorite``,
        ``folder_id`` and, of a smart playlist, ``criteria`` (the keys of `changes`);
        returns the playlist. New criteria are evaluated at once.

        Raises
        ------
        PlaylistInvalid
            ``criteria`` that do not parse, or given for a playlist that is not
            smart (400).
        PlaylistNotFound
            No such playlist, or ``folder_id`` names no folder (404).
        PlaylistConflict
            A read-only playlist, for anything but ``is_favorite`` and
            ``folder_id`` (409).
        """
        changes = dict(changes)
        criteria = (criteria_for_storage(changes.pop("criteria")) if "criteria" in changes
                    else None)
        with transaction(self.db) as s:
            playlist = locked(s, playlist_id, writable=(not set(changes) <= FILING_FIELDS)
                              or criteria is not None)
            if criteria is not None and playlist.type != "smart":
                raise PlaylistInvalid.from_fields([{
                    "field": "criteria", "message": '"criteria" is only allowed for a smart '
                                                    "playlist"}])
            folder_id = changes.get("folder_id")
            if folder_id is not None and repo.get_folder(s, folder_id) is None:
                raise folder_not_found(folder_id)
            for name, value in changes.items():
                setattr(playlist, name, value)
            if criteria is not None:
                playlist.smart_criteria = criteria
                s.flush()
                fill(s, playlist.id, stored_criteria(criteria))
            playlist.last_accessed = unix(utcnow())
            s.flush()
            out = playlist_dict(playlist)
        self._updated(out["id"], "updated")
        return out

    def delete(self, playlist_id: str) -> str:
        """Delete a playlist and its entries (a finalized session too); returns its id.
        PlaylistNotFound (404)."""
        with transaction(self.db) as s:
            playlist = locked(s, playlist_id, writable=False)
            repo.delete_playlists(s, [playlist.id])
        self._updated(playlist.id, "deleted")
        return playlist.id

    def duplicate(self, playlist_id: str, name: str | None) -> dict[str, Any]:
        """A copy of a playlist with its entries (notes, cue points, ratings kept).

        A session or thinking playlist's copy is static (a track played twice is
        copied once, at its first play); a smart playlist's copy is smart with the
        same criteria. Named `name`, or ``"<name> (copy)"``.
        """
        now = utcnow()
        with transaction(self.db) as s:
            source = existing(s, playlist_id)
            kind = source.type if source.type in ("static", "smart") else "static"
            copy = repo.create(
                s, name=name or f"{source.name} (copy)", description=source.description,
                color=source.color, icon=source.icon, type=kind, is_smart=kind == "smart",
                smart_criteria=source.smart_criteria if kind == "smart" else None,
                is_favorite=False, folder_id=source.folder_id, date_created=now,
                date_modified=now, created_at=now, updated_at=now, last_accessed=unix(now))
            rows = [{"track_id": r["track_id"], "occurrence": 0, "date_added": now,
                     **{k: r[k] for k in ("notes", "cue_in", "cue_out", "rating_in_context")}}
                    for r in repo.entry_rows(s, source.id) if r["occurrence"] == 0]
            repo.insert_entries(s, copy.id, rows)
            out = playlist_dict(copy)
        self._updated(out["id"], "created")
        return out

    # ----------------------------------------------------------------------- entries

    def add_tracks(self, playlist_id: str, track_ids: list[str], *,
                   position: int | None = None, notes: str | None = None) -> int:
        """Insert tracks at `position` (the end by default; past the end means the
        end), in the given order; returns how many were added.

        Raises
        ------
        PlaylistNotFound
            No such playlist, or a track id names no track (404); nothing is added.
        PlaylistConflict
            A track is already in the playlist or named twice (not a session), a
            smart playlist, or a read-only one (409); nothing is added.
        """
        with transaction(self.db) as s:
            playlist = locked(s, playlist_id)
            _not_smart(playlist.type)
            known = repo.existing_tracks(s, track_ids)
            for track_id in track_ids:
                if track_id not in known:
                    raise track_not_found(track_id)
            replays = playlist.type == "session"
            if not replays:
                held = {t for t, _ in repo.entry_keys(s, playlist.id)}
                seen: set[str] = set()
                for track_id in track_ids:
                    if track_id in held or track_id in seen:
                        raise PlaylistConflict(
                            "Track already in playlist",
                            f"Track {track_id} is already in playlist {playlist.id}")
                    seen.add(track_id)
            counts: dict[str, int] = {}
            rows = []
            for track_id in track_ids:
                if track_id not in counts:
                    counts[track_id] = (repo.next_occurrence(s, playlist.id, track_id)
                                        if replays else 0)
                rows.append({"track_id": track_id, "occurrence": counts[track_id],
                             "notes": notes})
                counts[track_id] += 1
            repo.insert_entries(s, playlist.id, rows, at=position)
        self._updated(playlist.id, "tracks:added")
        return len(rows)

    def remove_track(self, playlist_id: str, track_id: str,
                     occurrence: int | None = None) -> int:
        """Remove a track's entries (or one replay) and close the gap; returns how
        many went.

        Raises
        ------
        PlaylistNotFound
            No such playlist (``Playlist not found``), or the track is not in it
            (``Track not found in playlist``, the contract's 404).
        PlaylistConflict
            A smart or read-only playlist (409).
        """
        with transaction(self.db) as s:
            playlist = locked(s, playlist_id)
            _not_smart(playlist.type)
            removed = repo.delete_entries(s, playlist.id, track_id, occurrence)
            if not removed:
                raise _not_in_playlist(track_id, playlist.id)
        self._updated(playlist.id, "tracks:removed")
        return removed

    def reorder(self, playlist_id: str, track_ids: list[str]) -> None:
        """Put the entries in the order of `track_ids`, which names every entry once (a
        replayed track as often as it was played; its plays keep their own order).

        Raises
        ------
        PlaylistNotFound
            No such playlist (404).
        PlaylistConflict
            `track_ids` are not the playlist's tracks (409: it changed meanwhile), a
            smart or a read-only playlist (409).
        """
        with transaction(self.db) as s:
            playlist = locked(s, playlist_id)
            _not_smart(playlist.type)
            keys = repo.entry_keys(s, playlist.id)
            if sorted(track_ids) != sorted(t for t, _ in keys):
                raise PlaylistConflict(
                    "Track list does not match the playlist",
                    "track_ids must name every track of the playlist once (as often as it "
                    "appears); the playlist may have changed meanwhile")
            plays: dict[str, list[int]] = {}
            for track_id, occurrence in keys:
                plays.setdefault(track_id, []).append(occurrence)
            order = [(t, plays[t].pop(0)) for t in track_ids]
            repo.set_positions(s, playlist.id, order)
        self._updated(playlist.id, "tracks:reordered")

    def update_entry(self, playlist_id: str, track_id: str, values: dict[str, Any],
                     occurrence: int | None = None) -> None:
        """Set ``notes``, ``cue_in``, ``cue_out``, ``rating_in_context`` of a track's
        entries in a playlist (one replay with `occurrence`).

        Raises
        ------
        PlaylistNotFound
            No such playlist, or the track is not in it (404).
        PlaylistConflict
            A read-only playlist (409).
        """
        with transaction(self.db) as s:
            playlist = locked(s, playlist_id)
            if not repo.update_entries(s, playlist.id, track_id, occurrence, values):
                raise _not_in_playlist(track_id, playlist.id)
        self._updated(playlist.id, "track:updated")


def _not_smart(kind: str) -> None:
    if kind == "smart":
        raise PlaylistConflict("Smart playlist",
                               "A smart playlist's tracks come from its criteria; convert it "
                               "to a static playlist to edit them")


def _not_in_playlist(track_id: str, playlist_id: str) -> PlaylistNotFound:
    return PlaylistNotFound("Track not found in playlist",
                            f"Track {track_id} is not in playlist {playlist_id}")
