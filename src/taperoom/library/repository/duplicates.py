"""SQL of duplicate groups: grouping by audio hash, ranking copies, playlist repointing.

A duplicate group is the set of tracks sharing one ``file_hash`` (xxh3-128 over
the demuxed audio packets, so copies that differ only in their tags share it).
Groups are kept by :func:`rebuild_groups` (one set-based pass over the library)
and :func:`refresh_groups` (a few groups after tracks were removed).

Copies are ranked by :func:`rank_order`, the one definition of "the best copy"
used both to suggest a canonical track and to resolve a group.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    Table,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from taperoom.library import models
from taperoom.library.limits import MAX_INTEGER
from taperoom.library.models import utcnow
from taperoom.library.repository import playlists as playlist_repo

TRACKS = cast(Table, models.Track.__table__)
GROUPS = cast(Table, models.DuplicateGroup.__table__)

#: Codec names (lower case, as PyAV/FFmpeg and mutagen report them) of lossless audio.
LOSSLESS_CODECS = ("flac", "alac", "wav", "aiff", "wavpack", "ape", "tta", "tak", "optimfrog",
                   "truehd", "mlp", "shorten", "als", "dsd", "dst")
#: Codec name prefixes of lossless audio (``pcm_s16le``, ``pcm_f32be`` ...).
LOSSLESS_CODEC_PREFIXES = ("pcm",)
#: File extensions that always hold lossless audio (``.m4a`` may hold AAC or ALAC,
#: so it counts as lossless only when the codec says ``alac``).
LOSSLESS_EXTENSIONS = (".flac", ".wav", ".wave", ".aif", ".aiff", ".aifc", ".alac", ".wv",
                       ".ape", ".tta")
#: Text tags counted by :func:`tag_count_expr`.
COUNTED_TEXT_TAGS = ("title", "artist", "album", "genre", "comment")
#: Numeric tags counted by :func:`tag_count_expr`.
COUNTED_NUMBER_TAGS = ("year", "track_number")
#: Hashes that never identify music: the empty string and xxh3-128 of no bytes
#: (a file whose demuxer yields no audio packets).
IGNORED_HASHES = ("", "99aa06d3014798d86001c324468d497f")

#: Resolution policies of :func:`rank_order`.
POLICIES = ("quality", "location", "oldest", "newest", "most_played")


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# ---------------------------------------------------------------------------
# ranking
# ---------------------------------------------------------------------------

def lossless_expr(t: FromClause) -> ColumnElement[int]:
    """1 when the track row of `t` holds lossless audio, else 0.

    The codec the scanner read decides (``flac``, ``alac``, ``pcm_s16le`` ...);
    when it is unknown, the file extension does (:data:`LOSSLESS_EXTENSIONS`).
    """
    codec = func.lower(func.coalesce(t.c.codec, ""))
    path = func.lower(t.c.file_path)
    by_codec = or_(codec.in_(LOSSLESS_CODECS),
                   *(codec.like(p + "%") for p in LOSSLESS_CODEC_PREFIXES))
    by_path = or_(*(path.like("%" + ext) for ext in LOSSLESS_EXTENSIONS))
    return case((codec.in_(("", "unknown")), case((by_path, 1), else_=0)),
                (by_codec, 1), else_=0)


def tag_count_expr(t: FromClause) -> ColumnElement[int]:
    """Number (0-7) of non-empty tags among title, artist, album, genre, year,
    track_number and comment of the track row of `t`."""
    parts: list[ColumnElement[int]] = [
        case((func.length(func.trim(func.coalesce(t.c[name], ""))) > 0, 1), else_=0)
        for name in COUNTED_TEXT_TAGS]
    parts += [case((t.c[name].isnot(None), 1), else_=0) for name in COUNTED_NUMBER_TAGS]
    total: ColumnElement[int] = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def preferred_expr(t: FromClause, preferred_directory_id: str | None) -> ColumnElement[int]:
    """1 when the track row of `t` lies in the preferred library folder, else 0."""
    if not preferred_directory_id:
        return literal(0, Integer)
    return case((t.c.library_directory_id == preferred_directory_id, 1), else_=0)


def rank_order(t: FromClause, policy: str = "quality",
               preferred_directory_id: str | None = None) -> list[ColumnElement[Any]]:
    """ORDER BY clauses that put the copy to keep first.

    The quality chain, used by every policy after its own first key:
    lossless before lossy, then higher ``bit_rate``, then more complete tags
    (:func:`tag_count_expr`), then inside `preferred_directory_id`, then the oldest
    ``date_added``, then the smallest id (so the order is total and stable).

    Parameters
    ----------
    t : FromClause
        The tracks table or an alias of it.
    policy : {"quality", "location", "oldest", "newest", "most_played"}
        ``quality`` is the chain alone; ``location`` puts copies inside the
        preferred folder first; ``oldest``/``newest`` order by ``date_added``
        first; ``most_played`` by ``play_count`` first.
    preferred_directory_id : str, optional
        Library-folder UUID that the ``location`` key (and the chain's folder step) prefers.

    Raises
    ------
    ValueError
        Unknown policy.
    """
    chain: list[ColumnElement[Any]] = [
        lossless_expr(t).desc(),
        func.coalesce(t.c.bit_rate, 0).desc(),
        tag_count_expr(t).desc(),
        preferred_expr(t, preferred_directory_id).desc(),
        t.c.date_added.asc(),
        t.c.id.asc(),
    ]
    if policy == "quality":
        return chain
    if policy == "location":
        return [preferred_expr(t, preferred_directory_id).desc(), *chain]
    if policy == "oldest":
        return [t.c.date_added.asc(), *chain]
    if policy == "newest":
        return [t.c.date_added.desc(), *chain]
    if policy == "most_played":
        return [func.coalesce(t.c.play_count, 0).desc(), *chain]
    raise ValueError(f"unknown policy {policy!r}")


def ranked_members(session: Session, group_id: int, policy: str = "quality",
                   preferred_directory_id: str | None = None
                   ) -> list[tuple[models.Track, dict[str, Any]]]:
    """Tracks of a group, best copy first, each with the facts the ranking used.

    Returns
    -------
    list of (Track, dict)
        The dict holds ``lossless`` (bool), ``bit_rate``, ``tag_count`` (0-7) and
        ``in_preferred_directory`` (bool).
    """
    t = TRACKS
    stmt = (select(models.Track, lossless_expr(t), tag_count_expr(t),
                   preferred_expr(t, preferred_directory_id))
            .where(models.Track.duplicate_group_id == group_id)
            .order_by(*rank_order(t, policy, preferred_directory_id)))
    out = []
    for track, lossless, tags, preferred in session.execute(stmt).all():
        out.append((track, {"lossless": bool(lossless), "bit_rate": track.bit_rate,
                            "tag_count": int(tags),
                            "in_preferred_directory": bool(preferred)}))
    return out


# ---------------------------------------------------------------------------
# grouping
# ---------------------------------------------------------------------------

def _member_count(group: FromClause) -> Any:
    """Correlated count of the tracks that share `group`'s hash."""
    t = TRACKS.alias("mt")
    return (select(func.count()).select_from(t)
            .where(t.c.file_hash == group.c.file_hash).scalar_subquery())


def _fix_canonicals(session: Session, only_ids: Sequence[int] | None = None) -> None:
    """Give every group (or those of `only_ids`) whose canonical track is unset or no
    longer a member the best-ranked member as canonical (quality policy)."""
    t = TRACKS.alias("ct")
    best = (select(t.c.id).where(t.c.duplicate_group_id == GROUPS.c.id)
            .order_by(*rank_order(t)).limit(1).scalar_subquery())
    member = exists().where(and_(TRACKS.c.id == GROUPS.c.canonical_track_id,
                                 TRACKS.c.duplicate_group_id == GROUPS.c.id))
    stmt = (update(GROUPS)
            .where(or_(GROUPS.c.canonical_track_id.is_(None), ~member))
            .values(canonical_track_id=best, updated_at=utcnow()))
    if only_ids is not None:
        stmt = stmt.where(GROUPS.c.id.in_(list(only_ids)))
    session.execute(stmt)


def rebuild_groups(session: Session) -> dict[str, Any]:
    """Bring every duplicate group in line with the tracks' hashes, in one set-based pass.

    Hashes shared by two or more tracks get a ``duplicate_groups`` row (existing
    groups keep their id, and their canonical track while it is still a member);
    every track's ``duplicate_group_id`` points at its hash's group or is cleared;
    groups whose hash is now held by fewer than two tracks are deleted. Tracks
    without a hash (never hashed, or unreadable) are left out, as are the
    :data:`IGNORED_HASHES`.

    Parameters
    ----------
    session : Session
        Open session; the caller commits.

    Returns
    -------
    dict
        ``groupsCreated`` (new groups), ``tracksProcessed`` (tracks that are in a
        group), ``totalGroups``, ``groupsRemoved`` and ``newGroupIds`` (list of int).
    """
    now = utcnow()
    max_before = session.scalar(select(func.max(GROUPS.c.id))) or 0
    hashed = and_(TRACKS.c.file_hash.isnot(None), TRACKS.c.file_hash.notin_(IGNORED_HASHES))
    dup = (select(TRACKS.c.file_hash.label("file_hash"), func.count().label("n"))
           .where(hashed).group_by(TRACKS.c.file_hash).having(func.count() > 1).subquery())
    session.execute(insert(GROUPS).from_select(
        ["file_hash", "total_duplicates", "created_at", "updated_at"],
        select(dup.c.file_hash, dup.c.n, literal(now, DateTime()), literal(now, DateTime()))
        .where(~exists().where(GROUPS.c.file_hash == dup.c.file_hash))))

    count = _member_count(GROUPS)
    stale = or_(count < 2, GROUPS.c.file_hash.in_(IGNORED_HASHES))
    stale_ids = select(GROUPS.c.id).where(stale)
    session.execute(update(TRACKS).where(TRACKS.c.duplicate_group_id.in_(stale_ids))
                    .values(duplicate_group_id=None))
    removed = _rowcount(session.execute(delete(GROUPS).where(stale)))
    session.execute(update(GROUPS).where(GROUPS.c.total_duplicates != count)
                    .values(total_duplicates=count, updated_at=now))

    gid = (select(GROUPS.c.id).where(GROUPS.c.file_hash == TRACKS.c.file_hash)
           .scalar_subquery())
    session.execute(update(TRACKS).where(TRACKS.c.duplicate_group_id.is_distinct_from(gid))
                    .values(duplicate_group_id=gid))
    _fix_canonicals(session)

    new_ids = list(session.scalars(select(GROUPS.c.id).where(GROUPS.c.id > max_before)
                                   .order_by(GROUPS.c.id)))
    total_groups, in_groups = session.execute(
        select(func.count(), func.coalesce(func.sum(GROUPS.c.total_duplicates), 0))).one()
    return {"groupsCreated": len(new_ids), "tracksProcessed": int(in_groups),
            "totalGroups": int(total_groups), "groupsRemoved": int(removed),
            "newGroupIds": new_ids}


def refresh_groups(session: Session, group_ids: Iterable[int]) -> list[int]:
    """Recount some groups after members were removed; dissolve those left with one track.

    Parameters
    ----------
    session : Session
    group_ids : iterable of int
        Groups to look at (unknown ids are ignored).

    Returns
    -------
    list of int
        Ids of the groups that were dissolved.
    """
    ids = sorted({int(g) for g in group_ids if g is not None})
    if not ids:
        return []
    t = TRACKS.alias("rt")
    count = (select(func.count()).select_from(t).where(t.c.duplicate_group_id == GROUPS.c.id)
             .scalar_subquery())
    dissolved = list(session.scalars(select(GROUPS.c.id).where(GROUPS.c.id.in_(ids),
                                                               count < 2)))
    if dissolved:
        session.execute(update(TRACKS).where(TRACKS.c.duplicate_group_id.in_(dissolved))
                        .values(duplicate_group_id=None))
        session.execute(delete(GROUPS).where(GROUPS.c.id.in_(dissolved)))
    kept = [g for g in ids if g not in dissolved]
    if kept:
        session.execute(update(GROUPS).where(GROUPS.c.id.in_(kept))
                        .values(total_duplicates=count, updated_at=utcnow()))
        _fix_canonicals(session, kept)
    return dissolved


def dissolve_group(session: Session, group_id: int) -> None:
    """Delete a group and clear its members' ``duplicate_group_id``."""
    session.execute(update(TRACKS).where(TRACKS.c.duplicate_group_id == group_id)
                    .values(duplicate_group_id=None))
    session.execute(delete(GROUPS).where(GROUPS.c.id == group_id))


def set_canonical(session: Session, group_id: int, track_id: str) -> None:
    """Record `track_id` as the canonical copy of a group."""
    session.execute(update(GROUPS).where(GROUPS.c.id == group_id)
                    .values(canonical_track_id=track_id, updated_at=utcnow()))


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------

def get_group(session: Session, group_id: int) -> models.DuplicateGroup | None:
    """The group with this id, or None (also for ids no ``Integer`` column can hold)."""
    if not 1 <= group_id <= MAX_INTEGER:
        return None
    return session.get(models.DuplicateGroup, group_id)


def list_groups(session: Session, page: int, limit: int
                ) -> tuple[list[models.DuplicateGroup], int]:
    """One page of groups, largest first (then newest, then id), and the total count.

    Parameters
    ----------
    page : int
        1-based page number.
    limit : int
        Groups per page (> 0).
    """
    total = session.scalar(select(func.count()).select_from(GROUPS)) or 0
    stmt: Select[Any] = (
        select(models.DuplicateGroup)
        .order_by(models.DuplicateGroup.total_duplicates.desc(),
                  models.DuplicateGroup.created_at.desc(), models.DuplicateGroup.id.asc())
        .offset((page - 1) * limit).limit(limit))
    return list(session.scalars(stmt)), int(total)


def group_members(session: Session, group_ids: Sequence[int]
                  ) -> dict[int, list[tuple[models.Track, str | None]]]:
    """Tracks of each group with their library folder's path (None when unset).

    Returns
    -------
    dict
        group id -> list of (Track, library folder path), unsorted.
    """
    out: dict[int, list[tuple[models.Track, str | None]]] = {g: [] for g in group_ids}
    if not group_ids:
        return out
    stmt = (select(models.Track, models.LibraryDirectory.path)
            .outerjoin(models.LibraryDirectory,
                       models.LibraryDirectory.id == models.Track.library_directory_id)
            .where(models.Track.duplicate_group_id.in_(list(group_ids))))
    for track, lib_path in session.execute(stmt).all():
        if track.duplicate_group_id is not None:
            out.setdefault(track.duplicate_group_id, []).append((track, lib_path))
    return out


def stats_rows(session: Session) -> list[tuple[int, str | None, str, str, int | None]]:
    """Every grouped track as ``(group_id, canonical_track_id, track_id, file_path,
    file_size)``, ordered by group (input of the duplicate statistics)."""
    stmt = (select(GROUPS.c.id, GROUPS.c.canonical_track_id, TRACKS.c.id,
                   TRACKS.c.file_path, TRACKS.c.file_size)
            .join(TRACKS, TRACKS.c.duplicate_group_id == GROUPS.c.id)
            .order_by(GROUPS.c.id, TRACKS.c.id))
    return [(int(g), c, t, p, s) for g, c, t, p, s in session.execute(stmt).all()]


# ---------------------------------------------------------------------------
# merging
# ---------------------------------------------------------------------------

def hot_cues_of(session: Session, track_ids: Sequence[str]) -> list[models.HotCue]:
    """Hot cues of some tracks, ordered by track, source and index."""
    if not track_ids:
        return []
    return list(session.scalars(
        select(models.HotCue).where(models.HotCue.track_id.in_(list(track_ids)))
        .order_by(models.HotCue.track_id, models.HotCue.source, models.HotCue.cue_index)))


def add_hot_cue(session: Session, track_id: str, like: models.HotCue) -> models.HotCue:
    """Copy hot cue `like` (index, position, name, colour, loop, source) onto a track."""
    now = utcnow()
    cue = models.HotCue(track_id=track_id, cue_index=like.cue_index, position=like.position,
                        name=like.name, color=like.color, is_loop=like.is_loop,
                        loop_end=like.loop_end, auto_loop=like.auto_loop, source=like.source,
                        created_at=like.created_at or now, updated_at=now)
    session.add(cue)
    return cue


def repoint_playlists(session: Session, canonical_id: str, duplicate_ids: Sequence[str]
                      ) -> dict[str, Any]:
    """Make playlists that hold a duplicate hold the canonical track instead
    (:func:`taperoom.library.repository.playlists.repoint_entries`: in place, positions
    kept dense, replays kept in session playlists).

    Returns
    -------
    dict
        ``repointed`` and ``removed`` entry counts, ``playlistIds`` touched (sorted).
    """
    return playlist_repo.repoint_entries(session, canonical_id, duplicate_ids)
