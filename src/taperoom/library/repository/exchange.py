"""SQL of the exchange with other DJ software (M3U, rekordbox XML export and import).

Bulk reads for an export (tracks, hot cues and playlist entries in a few queries,
whatever the size of the library), the columns an import matches tracks on, and
the writes of an import (imported hot cues, beatgrids). Playlists, entries and
folders are written with :mod:`taperoom.library.repository.playlists`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from taperoom.library import models

TRACKS = cast(Table, models.Track.__table__)
CUES = cast(Table, models.HotCue.__table__)
ENTRIES = cast(Table, models.PlaylistTrack.__table__)
PLAYLISTS = cast(Table, models.Playlist.__table__)
FOLDERS = cast(Table, models.PlaylistFolder.__table__)

#: Track columns an export writes.
EXPORT_COLUMNS = ("id", "file_path", "title", "artist", "album", "genre", "comment",
                  "file_size", "duration_seconds", "year", "bpm", "date_added", "bit_rate",
                  "sample_rate", "play_count", "rating", "musical_key", "mode", "key_tag",
                  "color_tag", "beats_data", "downbeats_data", "first_beat_offset",
                  "time_signature", "is_missing")
#: Track columns an import matches on and checks before it writes a grid.
MATCH_COLUMNS = ("id", "file_path", "file_size", "duration_seconds", "file_hash",
                 "is_missing")
#: Source of the hot cues an import of rekordbox XML writes.
REKORDBOX_SOURCE = "rekordbox"
_CHUNK = 500


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start:start + _CHUNK])


# -------------------------------------------------------------------------- export


def export_tracks(session: Session, track_ids: Sequence[str] | None = None
                  ) -> list[RowMapping]:
    """:data:`EXPORT_COLUMNS` of the tracks that are not missing: those of
    `track_ids` (any order), or every one (by file path) when None."""
    columns = [TRACKS.c[name] for name in EXPORT_COLUMNS]
    if track_ids is None:
        return list(session.execute(
            select(*columns).where(TRACKS.c.is_missing.is_(False))
            .order_by(TRACKS.c.file_path)).mappings())
    rows: list[RowMapping] = []
    for chunk in _chunks(list(dict.fromkeys(track_ids))):
        rows.extend(session.execute(select(*columns).where(
            TRACKS.c.id.in_(chunk), TRACKS.c.is_missing.is_(False))).mappings())
    return rows


def hot_cues(session: Session, track_ids: Sequence[str] | None = None) -> list[RowMapping]:
    """``track_id, cue_index, position, name, color, is_loop, loop_end, source`` of the
    hot cues of `track_ids` (every track's when None), by track then index."""
    columns = [CUES.c[name] for name in ("track_id", "cue_index", "position", "name",
                                         "color", "is_loop", "loop_end", "source")]
    order = (CUES.c.track_id, CUES.c.cue_index, CUES.c.source)
    if track_ids is None:
        return list(session.execute(select(*columns).order_by(*order)).mappings())
    rows: list[RowMapping] = []
    for chunk in _chunks(list(dict.fromkeys(track_ids))):
        rows.extend(session.execute(select(*columns).where(CUES.c.track_id.in_(chunk))
                                    .order_by(*order)).mappings())
    return rows


def exported_playlists(session: Session) -> list[RowMapping]:
    """``id, name, folder_id`` of every playlist but the thinking one (``temp``), by
    name."""
    p = PLAYLISTS.c
    return list(session.execute(select(p.id, p.name, p.folder_id)
                                .where(p.type != "temp")
                                .order_by(func.lower(p.name), p.id)).mappings())


def all_entries(session: Session) -> list[tuple[str, str]]:
    """``(playlist_id, track_id)`` of every entry whose track is not missing, in
    playlist then position order."""
    rows = session.execute(
        select(ENTRIES.c.playlist_id, ENTRIES.c.track_id)
        .join(TRACKS, TRACKS.c.id == ENTRIES.c.track_id)
        .where(TRACKS.c.is_missing.is_(False))
        .order_by(ENTRIES.c.playlist_id, ENTRIES.c.position))
    return [(r[0], r[1]) for r in rows]


def playlist_track_ids(session: Session, playlist_id: str) -> list[str]:
    """Track ids of a playlist's entries whose track is not missing, in order."""
    return list(session.scalars(
        select(ENTRIES.c.track_id).join(TRACKS, TRACKS.c.id == ENTRIES.c.track_id)
        .where(ENTRIES.c.playlist_id == playlist_id, TRACKS.c.is_missing.is_(False))
        .order_by(ENTRIES.c.position)))


def folders(session: Session) -> list[RowMapping]:
    """``id, name, parent_id`` of every playlist folder, by name."""
    f = FOLDERS.c
    return list(session.execute(select(f.id, f.name, f.parent_id)
                                .order_by(func.lower(f.name), f.id)).mappings())


# -------------------------------------------------------------------------- import


def match_rows(session: Session) -> list[RowMapping]:
    """:data:`MATCH_COLUMNS` of every track (an import matches its entries on them)."""
    return list(session.execute(select(*[TRACKS.c[n] for n in MATCH_COLUMNS])).mappings())


def playlist_names(session: Session) -> set[str]:
    """Every playlist name, lower-cased."""
    return {name.lower() for name in session.scalars(select(PLAYLISTS.c.name))}


def grid_state(session: Session, track_ids: Sequence[str]) -> dict[str, RowMapping]:
    """``id, user_fields, duration_seconds`` of tracks, by id."""
    out: dict[str, RowMapping] = {}
    for chunk in _chunks(list(track_ids)):
        for row in session.execute(select(TRACKS.c.id, TRACKS.c.user_fields,
                                          TRACKS.c.duration_seconds)
                                   .where(TRACKS.c.id.in_(chunk))).mappings():
            out[row["id"]] = row
    return out


def set_grid(session: Session, track_id: str, values: dict[str, Any]) -> None:
    """Set the grid columns of a track (``bpm``, ``first_beat_offset``,
    ``beats_data``, ``downbeats_data``, ``time_signature``)."""
    session.execute(update(TRACKS).where(TRACKS.c.id == track_id).values(**values))


def replace_source_cues(session: Session, track_id: str, source: str,
                        cues: Sequence[dict[str, Any]]) -> None:
    """Delete the hot cues of `source` of a track and insert `cues` (each with
    ``cue_index, position, name, color, is_loop, loop_end``). Cues of other sources
    (the user's) are left alone."""
    session.execute(delete(CUES).where(CUES.c.track_id == track_id, CUES.c.source == source))
    if cues:
        now = models.utcnow()
        session.execute(insert(CUES), [
            {"id": models.new_id(), "track_id": track_id, "source": source,
             "auto_loop": False, "created_at": now, "updated_at": now, **cue}
            for cue in cues])


def folder_children(session: Session) -> dict[tuple[str | None, str], str]:
    """Folder id by ``(parent_id, lower-cased name)`` (the first by id when names
    repeat)."""
    out: dict[tuple[str | None, str], str] = {}
    for row in session.execute(select(FOLDERS.c.id, FOLDERS.c.name, FOLDERS.c.parent_id)
                               .order_by(FOLDERS.c.id)):
        out.setdefault((row[2], row[1].lower()), row[0])
    return out
