"""SQL of playlists, their entries and their folders (crates).

Every change of a playlist's entries starts with :func:`lock`: an ``UPDATE`` of
the playlist's row, the transaction's first statement. On SQLite it takes the
database's write lock before anything is read (so the positions read next are
those the change applies to: no other writer can slip in between); on
PostgreSQL it locks the playlist's row until commit, so concurrent changes of
one playlist run one after the other while other playlists go on. Changes that
touch entries of many playlists (a track deleted, duplicates resolved) lock
them in id order (:func:`lock_many`), so two of them never wait on each other.

Positions are dense: 0..n-1 in playlist order after every change
(:func:`renumber` closes gaps).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from taperoom.library import models
from taperoom.library.models import utcnow
from taperoom.library.repository.tracks import TRACK_API_COLUMNS
from taperoom.library.repository.wirevalues import wire_time

PLAYLISTS = cast(Table, models.Playlist.__table__)
ENTRIES = cast(Table, models.PlaylistTrack.__table__)
FOLDERS = cast(Table, models.PlaylistFolder.__table__)
TRACKS = cast(Table, models.Track.__table__)
P = models.Playlist
E = models.PlaylistTrack
#: Columns of an entry, in the contract's order (the track object follows them).
ENTRY_COLUMNS = ("playlist_id", "track_id", "position", "date_added", "played_at",
                 "play_duration", "notes", "cue_in", "cue_out", "rating_in_context")
#: What :func:`entries_with_tracks` selects of an entry (times as ISO text).
_ENTRY_API_COLUMNS = tuple(wire_time(ENTRIES.c[name], "entry_date_added") if name == "date_added"
                           else ENTRIES.c[name] for name in ENTRY_COLUMNS)
#: Bound parameters per statement: SQLite's old limit is 999.
_CHUNK = 500


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start:start + _CHUNK])


# --------------------------------------------------------------------------- playlists


def lock(session: Session, playlist_id: str) -> models.Playlist | None:
    """Lock a playlist for a change (see the module docstring) and return it.

    Sets ``updated_at`` and ``date_modified`` to now. Returns None (nothing
    locked) when there is no such playlist.
    """
    now = utcnow()
    done = session.execute(update(PLAYLISTS).where(PLAYLISTS.c.id == playlist_id)
                           .values(updated_at=now, date_modified=now))
    if _rowcount(done) == 0:
        return None
    return session.get(P, playlist_id, populate_existing=True)


def lock_many(session: Session, playlist_ids: Iterable[str]) -> list[str]:
    """Lock several playlists, in id order (see the module docstring); returns the ids."""
    ids = sorted(set(playlist_ids))
    now = utcnow()
    for playlist_id in ids:
        session.execute(update(PLAYLISTS).where(PLAYLISTS.c.id == playlist_id)
                        .values(updated_at=now, date_modified=now))
    return ids


def get(session: Session, playlist_id: str) -> models.Playlist | None:
    """The playlist with this id, or None."""
    return session.get(P, playlist_id)


def create(session: Session, **values: Any) -> models.Playlist:
    """Insert a playlist with these column values (timestamps default to now)."""
    playlist = models.Playlist(**values)
    session.add(playlist)
    session.flush()
    return playlist


def delete_playlists(session: Session, playlist_ids: Sequence[str]) -> int:
    """Delete playlists (their entries cascade); returns how many went."""
    total = 0
    for chunk in _chunks(list(playlist_ids)):
        session.execute(delete(ENTRIES).where(ENTRIES.c.playlist_id.in_(chunk)))
        total += _rowcount(session.execute(delete(PLAYLISTS).where(PLAYLISTS.c.id.in_(chunk))))
    return total


def list_playlists(session: Session, *, type_: str | None = None,
                   is_favorite: bool | None = None, is_temporary: bool | None = None,
                   is_readonly: bool | None = None, search: str | None = None,
                   folder_id: str | None = None, at_top: bool = False,
                   limit: int | None = None) -> list[tuple[models.Playlist, int]]:
    """Playlists with their entry counts, favourites first, then the most recently
    updated (the contract's order).

    Parameters
    ----------
    type_, is_favorite, is_temporary, is_readonly : optional
        Equality filters.
    search : str, optional
        Substring of the name or the description, case-insensitive.
    folder_id : str, optional
        Only the playlists of this folder; `at_top` True: only those in no folder.
    limit : int, optional
        At most this many.
    """
    counts = (select(ENTRIES.c.playlist_id, func.count().label("n"))
              .group_by(ENTRIES.c.playlist_id).subquery())
    query = (select(P, func.coalesce(counts.c.n, 0))
             .outerjoin(counts, counts.c.playlist_id == P.id))
    if type_ is not None:
        query = query.where(P.type == type_)
    if is_favorite is not None:
        query = query.where(P.is_favorite.is_(is_favorite))
    if is_temporary is not None:
        query = query.where(P.is_temporary.is_(is_temporary))
    if is_readonly is not None:
        query = query.where(P.is_readonly.is_(is_readonly))
    if search:
        pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%") \
            .replace("_", "\\_") + "%"
        query = query.where(or_(func.lower(P.name).like(pattern, escape="\\"),
                                func.lower(P.description).like(pattern, escape="\\")))
    if at_top:
        query = query.where(P.folder_id.is_(None))
    elif folder_id is not None:
        query = query.where(P.folder_id == folder_id)
    query = query.order_by(P.is_favorite.desc(), P.updated_at.desc(), P.name, P.id)
    if limit is not None:
        query = query.limit(limit)
    return [(row[0], int(row[1])) for row in session.execute(query).all()]


def thinking(session: Session) -> models.Playlist | None:
    """The thinking playlist (type ``temp``; at most one exists), or None."""
    return session.scalars(select(P).where(P.type == "temp")).first()


# --------------------------------------------------------------------------- entries


def count_entries(session: Session, playlist_id: str) -> int:
    """Number of entries of a playlist."""
    return int(session.scalar(select(func.count()).select_from(ENTRIES)
                              .where(ENTRIES.c.playlist_id == playlist_id)) or 0)


def entry_keys(session: Session, playlist_id: str) -> list[tuple[str, int]]:
    """``(track_id, occurrence)`` of every entry, in position order."""
    rows = session.execute(select(ENTRIES.c.track_id, ENTRIES.c.occurrence)
                           .where(ENTRIES.c.playlist_id == playlist_id)
                           .order_by(ENTRIES.c.position, ENTRIES.c.date_added))
    return [(r[0], int(r[1])) for r in rows]


def entries_with_tracks(session: Session, playlist_id: str) -> Sequence[Sequence[Any]]:
    """Entries in position order, each a plain row of wire values: the entry's
    columns (:data:`ENTRY_COLUMNS`, ``date_added`` as ISO text), then its track's
    fields (the columns of
    :data:`~taperoom.library.repository.tracks.TRACK_API_COLUMNS`, in the order of
    :data:`~taperoom.library.schemas.TRACK_FIELDS`).

    Run on the session's connection, without the ORM's result layer (a
    1,000-track playlist is read on every ``GET``: about a third faster)."""
    return session.connection().execute(_ENTRIES_WITH_TRACKS,
                                        {"playlist_id": playlist_id}).all()


#: The query of :func:`entries_with_tracks`, built once: SQLAlchemy keeps the cache
#: key of a statement object, so a run does not walk its 76 columns each time.
_ENTRIES_WITH_TRACKS = (select(*_ENTRY_API_COLUMNS, *TRACK_API_COLUMNS)
                        .join(TRACKS, TRACKS.c.id == ENTRIES.c.track_id)
                        .where(ENTRIES.c.playlist_id == bindparam("playlist_id"))
                        .order_by(ENTRIES.c.position))


def entry_rows(session: Session, playlist_id: str) -> list[RowMapping]:
    """Every column of every entry, in position order."""
    return list(session.execute(select(ENTRIES).where(ENTRIES.c.playlist_id == playlist_id)
                                .order_by(ENTRIES.c.position)).mappings())


def insert_entries(session: Session, playlist_id: str, rows: Sequence[dict[str, Any]],
                   at: int | None = None) -> None:
    """Insert entries at position `at` (the end when None or past it), moving the
    entries from there down; each row gives ``track_id``, ``occurrence`` and any other
    entry columns. The playlist must be locked (:func:`lock`)."""
    if not rows:
        return
    size = count_entries(session, playlist_id)
    start = size if at is None or at > size else at
    if start < size:
        session.execute(update(ENTRIES).where(ENTRIES.c.playlist_id == playlist_id,
                                              ENTRIES.c.position >= start)
                        .values(position=ENTRIES.c.position + len(rows)))
    now = utcnow()
    session.execute(insert(ENTRIES), [
        {"date_added": now, **row, "playlist_id": playlist_id, "position": start + i}
        for i, row in enumerate(rows)])


def delete_entries(session: Session, playlist_id: str, track_id: str,
                   occurrence: int | None = None) -> int:
    """Delete the entries of a track (one `occurrence`, or all) and close the gaps;
    returns how many went. The playlist must be locked (:func:`lock`)."""
    query = delete(ENTRIES).where(ENTRIES.c.playlist_id == playlist_id,
                                  ENTRIES.c.track_id == track_id)
    if occurrence is not None:
        query = query.where(ENTRIES.c.occurrence == occurrence)
    removed = _rowcount(session.execute(query))
    if removed:
        renumber(session, playlist_id)
    return removed


def clear_entries(session: Session, playlist_id: str) -> int:
    """Delete every entry of a playlist; returns how many went."""
    return _rowcount(session.execute(delete(ENTRIES).where(ENTRIES.c.playlist_id == playlist_id)))


def occurrence_at(session: Session, playlist_id: str, position: int) -> tuple[str, int] | None:
    """``(track_id, occurrence)`` of the entry at `position`, or None."""
    row = session.execute(select(ENTRIES.c.track_id, ENTRIES.c.occurrence)
                          .where(ENTRIES.c.playlist_id == playlist_id,
                                 ENTRIES.c.position == position)).first()
    return (row[0], int(row[1])) if row else None


def next_occurrence(session: Session, playlist_id: str, track_id: str) -> int:
    """The occurrence number a new entry of `track_id` gets (0 for the first)."""
    top = session.scalar(select(func.max(ENTRIES.c.occurrence))
                         .where(ENTRIES.c.playlist_id == playlist_id,
                                ENTRIES.c.track_id == track_id))
    return 0 if top is None else int(top) + 1


def set_positions(session: Session, playlist_id: str,
                  order: Sequence[tuple[str, int]]) -> None:
    """Give the entries `order` (``(track_id, occurrence)`` each) positions 0..n-1;
    only rows whose position changes are written."""
    current = {(r[0], int(r[1])): int(r[2]) for r in session.execute(
        select(ENTRIES.c.track_id, ENTRIES.c.occurrence, ENTRIES.c.position)
        .where(ENTRIES.c.playlist_id == playlist_id))}
    changes = [{"k_track": t, "k_occ": o, "k_pos": i}
               for i, (t, o) in enumerate(order) if current.get((t, o)) != i]
    if changes:
        session.execute(
            update(ENTRIES).where(ENTRIES.c.playlist_id == playlist_id,
                                  ENTRIES.c.track_id == bindparam("k_track"),
                                  ENTRIES.c.occurrence == bindparam("k_occ"))
            .values(position=bindparam("k_pos")).execution_options(synchronize_session=False),
            changes)


def renumber(session: Session, playlist_id: str) -> None:
    """Close the gaps in a playlist's positions (order kept)."""
    set_positions(session, playlist_id, entry_keys(session, playlist_id))


def update_entries(session: Session, playlist_id: str, track_id: str,
                   occurrence: int | None, values: dict[str, Any]) -> int:
    """Set entry columns of a track's entries (one `occurrence`, or all); returns how
    many entries matched."""
    query = update(ENTRIES).where(ENTRIES.c.playlist_id == playlist_id,
                                  ENTRIES.c.track_id == track_id)
    if occurrence is not None:
        query = query.where(ENTRIES.c.occurrence == occurrence)
    if not values:
        return count_track_entries(session, playlist_id, track_id, occurrence)
    return _rowcount(session.execute(query.values(**values)))


def count_track_entries(session: Session, playlist_id: str, track_id: str,
                        occurrence: int | None = None) -> int:
    """How many entries a track has in a playlist (of one `occurrence`, or all)."""
    query = select(func.count()).select_from(ENTRIES).where(
        ENTRIES.c.playlist_id == playlist_id, ENTRIES.c.track_id == track_id)
    if occurrence is not None:
        query = query.where(ENTRIES.c.occurrence == occurrence)
    return int(session.scalar(query) or 0)


def replace_entries(session: Session, playlist_id: str, track_ids: Sequence[str]) -> None:
    """Make a playlist hold exactly `track_ids` (distinct), in this order; entries of
    tracks it keeps keep their metadata. The playlist must be locked (:func:`lock`)."""
    wanted = list(dict.fromkeys(track_ids))
    keep = set(wanted)
    held = {t for t, _ in entry_keys(session, playlist_id)}
    gone = sorted(held - keep)
    for chunk in _chunks(gone):
        session.execute(delete(ENTRIES).where(ENTRIES.c.playlist_id == playlist_id,
                                              ENTRIES.c.track_id.in_(chunk)))
    session.execute(delete(ENTRIES).where(ENTRIES.c.playlist_id == playlist_id,
                                          ENTRIES.c.occurrence > 0))
    new = [t for t in wanted if t not in held]
    if new:
        size = count_entries(session, playlist_id)
        now = utcnow()
        session.execute(insert(ENTRIES), [
            {"playlist_id": playlist_id, "track_id": t, "occurrence": 0,
             "position": size + i, "date_added": now} for i, t in enumerate(new)])
    set_positions(session, playlist_id, [(t, 0) for t in wanted])


def smart_playlists(session: Session) -> list[tuple[str, str | None]]:
    """``(id, smart_criteria)`` of every smart playlist, by id."""
    rows = session.execute(select(P.id, P.smart_criteria).where(P.type == "smart")
                           .order_by(P.id))
    return [(r[0], r[1]) for r in rows]


def matching_tracks(session: Session, query: Select[Any]) -> list[str]:
    """Run a query of track ids (a smart playlist's, from
    :func:`taperoom.playlists.criteria_sql.track_ids_query`); the ids in its order."""
    return [str(t) for t in session.scalars(query)]


def make_static(session: Session, playlist_id: str) -> None:
    """Turn a smart playlist into a static one with the tracks it holds (its criteria
    are dropped)."""
    session.execute(update(PLAYLISTS).where(PLAYLISTS.c.id == playlist_id)
                    .values(type="static", is_smart=False, smart_criteria=None))


def existing_tracks(session: Session, track_ids: Sequence[str]) -> set[str]:
    """The subset of `track_ids` that are tracks of the library."""
    out: set[str] = set()
    for chunk in _chunks(list(dict.fromkeys(track_ids))):
        out.update(session.scalars(select(TRACKS.c.id).where(TRACKS.c.id.in_(chunk))))
    return out


def record_play(session: Session, track_id: str, played_at: int) -> None:
    """Count a play of a track: ``play_count`` + 1 and ``last_played`` (from the unix
    time `played_at`, s, if later than the one stored)."""
    when = datetime.fromtimestamp(played_at, UTC).replace(tzinfo=None)
    last = TRACKS.c.last_played
    session.execute(update(TRACKS).where(TRACKS.c.id == track_id).values(
        play_count=func.coalesce(TRACKS.c.play_count, 0) + 1,
        last_played=case((or_(last.is_(None), last < when), when), else_=last)))


def play_times(session: Session, playlist_id: str) -> tuple[int | None, int | None]:
    """``(first play's start, last play's end)`` of a session (unix s; end = start +
    ``play_duration``), or Nones without plays."""
    row = session.execute(
        select(func.min(ENTRIES.c.played_at),
               func.max(ENTRIES.c.played_at + func.coalesce(ENTRIES.c.play_duration, 0)))
        .where(ENTRIES.c.playlist_id == playlist_id, ENTRIES.c.played_at.is_not(None))).first()
    if row is None or row[0] is None:
        return None, None
    return int(row[0]), int(row[1])


def stats(session: Session, playlist_id: str) -> dict[str, Any]:
    """Figures of a playlist's tracks.

    Returns
    -------
    dict
        ``track_count``, ``total_duration`` (s), ``avg_bpm``, ``min_bpm``,
        ``max_bpm``, ``avg_energy``, ``avg_danceability`` (None without values),
        ``key_distribution`` (``[{musical_key, count}]``, most frequent first) and
        ``genre_distribution`` (``[{genre, count}]``, the 10 most frequent).
    """
    t = TRACKS
    mine = and_(ENTRIES.c.playlist_id == playlist_id, t.c.id == ENTRIES.c.track_id)
    row = session.execute(
        select(func.count(), func.coalesce(func.sum(t.c.duration_seconds), 0),
               func.avg(t.c.bpm), func.min(t.c.bpm), func.max(t.c.bpm),
               func.avg(t.c.energy), func.avg(t.c.danceability))
        .select_from(ENTRIES).join(t, t.c.id == ENTRIES.c.track_id)
        .where(ENTRIES.c.playlist_id == playlist_id)).one()
    keys = session.execute(
        select(t.c.musical_key, func.count().label("n")).select_from(ENTRIES)
        .join(t, mine).where(t.c.musical_key.is_not(None))
        .group_by(t.c.musical_key).order_by(func.count().desc(), t.c.musical_key)).all()
    genres = session.execute(
        select(t.c.genre, func.count().label("n")).select_from(ENTRIES)
        .join(t, mine).where(t.c.genre.is_not(None), t.c.genre != "")
        .group_by(t.c.genre).order_by(func.count().desc(), t.c.genre).limit(10)).all()

    def num(value: Any) -> float | None:
        return None if value is None else float(value)

    return {"track_count": int(row[0]), "total_duration": float(row[1] or 0),
            "avg_bpm": num(row[2]), "min_bpm": num(row[3]), "max_bpm": num(row[4]),
            "avg_energy": num(row[5]), "avg_danceability": num(row[6]),
            "key_distribution": [{"musical_key": int(k), "count": int(n)} for k, n in keys],
            "genre_distribution": [{"genre": g, "count": int(n)} for g, n in genres]}


def export_rows(session: Session, playlist_id: str) -> list[RowMapping]:
    """``duration_seconds, artist, title, file_path, is_missing`` of each entry's
    track, in position order."""
    t = TRACKS
    return list(session.execute(
        select(t.c.duration_seconds, t.c.artist, t.c.title, t.c.file_path, t.c.is_missing)
        .select_from(ENTRIES).join(t, t.c.id == ENTRIES.c.track_id)
        .where(ENTRIES.c.playlist_id == playlist_id).order_by(ENTRIES.c.position)).mappings())


# ------------------------------------------------------- changes the library makes itself


def _playlists_holding(session: Session, track_ids: Sequence[str]) -> list[str]:
    out: set[str] = set()
    for chunk in _chunks(list(track_ids)):
        out.update(session.scalars(select(ENTRIES.c.playlist_id).distinct()
                                   .where(ENTRIES.c.track_id.in_(chunk))))
    return sorted(out)


def drop_track_entries(session: Session, track_ids: Sequence[str]) -> tuple[int, list[str]]:
    """Remove every playlist entry of these tracks (before the tracks are deleted) and
    close the gaps.

    Returns
    -------
    tuple of (int, list of str)
        Entries removed, and the playlists they were in (sorted; locked and
        touched).
    """
    ids = list(dict.fromkeys(track_ids))
    playlist_ids = lock_many(session, _playlists_holding(session, ids))
    removed = 0
    for chunk in _chunks(ids):
        removed += _rowcount(session.execute(delete(ENTRIES).where(
            ENTRIES.c.track_id.in_(chunk))))
    for playlist_id in playlist_ids:
        renumber(session, playlist_id)
    return removed, playlist_ids


def drop_directory_entries(session: Session, directory_id: str) -> tuple[int, list[str]]:
    """:func:`drop_track_entries` of every track of a library folder."""
    ids = list(session.scalars(select(TRACKS.c.id)
                               .where(TRACKS.c.library_directory_id == directory_id)))
    return drop_track_entries(session, ids)


def repoint_entries(session: Session, canonical_id: str, duplicate_ids: Sequence[str]
                    ) -> dict[str, Any]:
    """Make playlists that hold a duplicate hold the canonical track instead.

    Each entry of a duplicate is repointed to the canonical track in place (same
    position, notes, cue points). In a session playlist the entry stays as a play
    of the canonical track (a replay when the session already holds it). In any
    other playlist that already holds the canonical track (or an earlier copy was
    just repointed there) the duplicate's entry is dropped and the gap closed.

    Returns
    -------
    dict
        ``repointed`` and ``removed`` entry counts, ``playlistIds`` touched (sorted).
    """
    if not duplicate_ids:
        return {"repointed": 0, "removed": 0, "playlistIds": []}
    dups = list(dict.fromkeys(duplicate_ids))
    playlist_ids = lock_many(session, _playlists_holding(session, dups))
    sessions = set(session.scalars(select(P.id).where(P.id.in_(playlist_ids),
                                                      P.type == "session"))) \
        if playlist_ids else set()
    repointed = removed = 0
    for playlist_id in playlist_ids:
        dropped = False
        rows = session.execute(
            select(ENTRIES.c.track_id, ENTRIES.c.occurrence)
            .where(ENTRIES.c.playlist_id == playlist_id, ENTRIES.c.track_id.in_(dups))
            .order_by(ENTRIES.c.position)).all()
        for track_id, occurrence in rows:
            next_occ = next_occurrence(session, playlist_id, canonical_id)
            key = and_(ENTRIES.c.playlist_id == playlist_id, ENTRIES.c.track_id == track_id,
                       ENTRIES.c.occurrence == occurrence)
            if next_occ == 0 or playlist_id in sessions:
                session.execute(update(ENTRIES).where(key)
                                .values(track_id=canonical_id, occurrence=next_occ))
                repointed += 1
            else:
                session.execute(delete(ENTRIES).where(key))
                removed += 1
                dropped = True
        if dropped:
            renumber(session, playlist_id)
    return {"repointed": repointed, "removed": removed, "playlistIds": playlist_ids}


# --------------------------------------------------------------------------- folders


def get_folder(session: Session, folder_id: str) -> models.PlaylistFolder | None:
    """The folder with this id, or None."""
    return session.get(models.PlaylistFolder, folder_id)


def all_folders(session: Session) -> list[models.PlaylistFolder]:
    """Every folder, by name."""
    return list(session.scalars(select(models.PlaylistFolder)
                                .order_by(func.lower(models.PlaylistFolder.name),
                                          models.PlaylistFolder.id)))


def create_folder(session: Session, name: str, parent_id: str | None) -> models.PlaylistFolder:
    """Insert a folder."""
    folder = models.PlaylistFolder(name=name, parent_id=parent_id)
    session.add(folder)
    session.flush()
    return folder


def lock_folder(session: Session, folder_id: str) -> models.PlaylistFolder | None:
    """Lock a folder for a change (as :func:`lock` does a playlist); None if unknown."""
    done = session.execute(update(FOLDERS).where(FOLDERS.c.id == folder_id)
                           .values(updated_at=utcnow()))
    if _rowcount(done) == 0:
        return None
    return session.get(models.PlaylistFolder, folder_id, populate_existing=True)


def update_folder(session: Session, folder_id: str, values: dict[str, Any]) -> None:
    """Set folder columns (``name``, ``parent_id``)."""
    session.execute(update(FOLDERS).where(FOLDERS.c.id == folder_id)
                    .values(**values, updated_at=utcnow()))


def playlists_in_folders(session: Session, folder_ids: Sequence[str]) -> list[str]:
    """Ids of the playlists filed in these folders."""
    out: list[str] = []
    for chunk in _chunks(list(folder_ids)):
        out.extend(session.scalars(select(P.id).where(P.folder_id.in_(chunk))))
    return out


def delete_folders(session: Session, folder_ids: Sequence[str]) -> int:
    """Delete folders (children first is not needed: sub-folders cascade)."""
    total = 0
    for chunk in _chunks(list(folder_ids)):
        session.execute(update(PLAYLISTS).where(PLAYLISTS.c.folder_id.in_(chunk))
                        .values(folder_id=None))
        total += _rowcount(session.execute(delete(FOLDERS).where(FOLDERS.c.id.in_(chunk))))
    return total
