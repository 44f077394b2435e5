"""SQL of tracks, their hot cues, waveforms and the counters that depend on them.

Listing and searching share one query builder (:func:`list_tracks`): filters
become WHERE clauses, and full-text search over title, artist, album, genre and
comment uses each database's own index:

* SQLite: the FTS5 table ``tracks_fts`` (first library migration), ranked by
  ``bm25`` with :data:`FTS_WEIGHTS`;
* PostgreSQL: the GIN index over ``taperoom_track_document(...)`` (migration
  0003), a ``tsvector`` matched with ``@@`` and ranked by ``ts_rank`` with
  :data:`TS_RANK_WEIGHTS`; words are folded by ``taperoom_fold`` (lower case,
  and without diacritics where the ``unaccent`` extension is installed);
* any other database: case-insensitive ``LIKE`` over the same five columns.

On every backend each word must match (in any of the columns), the last word
as a prefix; a query without words matches its text as a substring.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from taperoom.library import models
from taperoom.library.repository.wirevalues import wire_flag, wire_time
from taperoom.library.schemas import (
    TRACK_DERIVED,
    TRACK_FIELDS,
    TRACK_INT_BOOLS,
    TRACK_TIMES,
    key_names,
)

T = models.Track


def _key_name_column(index: int, name: str) -> ColumnElement[Any]:
    """A key's name on a key wheel, computed by the database from ``musical_key`` and
    ``mode`` (a CASE over the 24 keys; NULL unless both are known), labelled `name`.
    The names come from :func:`~taperoom.library.schemas.key_names`."""
    names = {key * 2 + mode: key_names(key, mode)[index] for key in range(12)
             for mode in (0, 1)}
    return sa.case(names, value=T.musical_key * 2 + T.mode, else_=sa.null()).label(name)


#: The derived fields of the track object (``camelot``, ``open_key``, the order of
#: :func:`~taperoom.library.schemas.key_names`) as SQL: no per-row Python work on lists.
KEY_NAME_COLUMNS: dict[str, ColumnElement[Any]] = {
    name: _key_name_column(index, name) for index, name in enumerate(TRACK_DERIVED)}


def _api_column(name: str) -> Any:
    if name in KEY_NAME_COLUMNS:
        return KEY_NAME_COLUMNS[name]
    if name in TRACK_TIMES:
        return wire_time(getattr(T, name))
    if name in TRACK_INT_BOOLS:
        return wire_flag(getattr(T, name))
    return getattr(T, name)


#: What list queries select: every field of the track object, in wire order, each
#: with its wire value (times as ISO text, flags as 0/1: :mod:`.wirevalues`), so a
#: row is the track object's values as they are.
TRACK_API_COLUMNS: tuple[Any, ...] = tuple(_api_column(name) for name in TRACK_FIELDS)

#: Values of the ``sort`` query parameter, and the column each sorts by.
SORT_COLUMNS: dict[str, Any] = {
    "date_added": T.date_added,
    "artist": T.artist,
    "title": T.title,
    "album": T.album,
    "bpm": T.bpm,
    "musical_key": T.musical_key,
    "play_count": T.play_count,
    "duration_seconds": T.duration_seconds,
    "year": T.year,
    "genre": T.genre,
    "rating": T.rating,
    "last_played": T.last_played,
    "energy": T.energy,
    "energy_level": T.energy_level,
    "date_analyzed": T.date_analyzed,
}
#: Sorts compared case-insensitively.
TEXT_SORTS = frozenset({"artist", "title", "album", "genre"})
#: Columns of the full-text index, in its order.
FTS_COLUMNS = ("title", "artist", "album", "genre", "comment")
#: bm25 weight of each FTS column (a title hit outranks a comment hit).
FTS_WEIGHTS = (10.0, 8.0, 4.0, 2.0, 1.0)
#: ``ts_rank`` weights of the PostgreSQL document's classes D (comment), C (album,
#: genre), B (artist) and A (title): :data:`FTS_WEIGHTS` scaled to 0-1.
TS_RANK_WEIGHTS = "{0.1,0.4,0.8,1.0}"

_TOKEN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class TrackFilters:
    """Filters of a track listing; None means "not filtered".

    Attributes
    ----------
    artist, genre, album : str or None
        Case-insensitive substring of the column.
    bpm_min, bpm_max : float or None
        Inclusive tempo range, beats per minute.
    key : int or None
        Musical key, pitch class 0-11 (C = 0).
    mode : int or None
        0 minor, 1 major.
    library_id : str or None
        Library directory UUID.
    is_missing : bool or None
    duplicate_group_id : int or None
    year_min, year_max : int or None
        Inclusive release-year range.
    rating_min : int or None
        Minimum rating, 0-5.
    has_file_hash : bool or None
        Whether the audio-content hash is known.
    is_analyzed : bool or None
        Whether the track has been analysed (``date_analyzed`` set).
    search : str or None
        Free text, see :func:`fts_match_query`.
    """

    artist: str | None = None
    genre: str | None = None
    album: str | None = None
    bpm_min: float | None = None
    bpm_max: float | None = None
    key: int | None = None
    mode: int | None = None
    library_id: str | None = None
    is_missing: bool | None = None
    duplicate_group_id: int | None = None
    year_min: int | None = None
    year_max: int | None = None
    rating_min: int | None = None
    has_file_hash: bool | None = None
    is_analyzed: bool | None = None
    search: str | None = None


def search_terms(text: str) -> list[str]:
    """Words of a search text: runs of letters and digits, in order.

    Mirrors what the ``unicode61`` tokenizer of the index treats as token
    characters, so punctuation (quotes, ``*``, ``-``, ``:``, parentheses) only
    separates words and never reaches the FTS query syntax.
    """
    return _TOKEN.findall(text)


def fts_match_query(text: str) -> str | None:
    """FTS5 MATCH expression for free text, or None when it has no words.

    Every word is a quoted string (implicit AND), and the last one is a prefix
    query, so ``daft pu`` becomes ``"daft" "pu"*`` and finds "Daft Punk" while
    the user is still typing. Diacritics are folded by the index's tokenizer
    (``remove_diacritics 2``), for the query as for the rows.
    """
    words = search_terms(text)
    if not words:
        return None
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def _postgres_search(words: list[str]) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """WHERE clause and rank (lower is better) of a PostgreSQL full-text search.

    Each word is folded by the database (``taperoom_fold``, as the indexed text
    is) and turned into lexemes by ``plainto_tsquery``, which takes any text and
    has no syntax to escape; the last word's query is made a prefix query by
    appending ``:*`` to its canonical text. The words' queries are ANDed.
    """
    simple: Any = sa.literal_column("'pg_catalog.simple'::regconfig")
    query: Any = None
    for i, word in enumerate(words):
        q: Any = sa.func.plainto_tsquery(simple, sa.func.taperoom_fold(word))
        if i == len(words) - 1:
            q = sa.case((sa.func.numnode(q) == 0, q),
                        else_=sa.cast(sa.cast(q, sa.Text) + ":*", TSQUERY))
        query = q if query is None else query.op("&&")(q)
    document = sa.func.taperoom_track_document(*(getattr(T, c) for c in FTS_COLUMNS))
    match = document.op("@@")(query)
    rank = -sa.func.ts_rank(sa.literal_column(f"'{TS_RANK_WEIGHTS}'::float4[]"), document,
                            query)
    return match, rank


def _like_any_column(term: str) -> ColumnElement[bool]:
    cols = [getattr(T, c) for c in FTS_COLUMNS]
    return sa.or_(*(c.icontains(term, autoescape=True) for c in cols))


def _filter_clauses(f: TrackFilters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.artist:
        where.append(T.artist.icontains(f.artist, autoescape=True))
    if f.genre:
        where.append(T.genre.icontains(f.genre, autoescape=True))
    if f.album:
        where.append(T.album.icontains(f.album, autoescape=True))
    if f.bpm_min is not None:
        where.append(T.bpm >= f.bpm_min)
    if f.bpm_max is not None:
        where.append(T.bpm <= f.bpm_max)
    if f.key is not None:
        where.append(T.musical_key == f.key)
    if f.mode is not None:
        where.append(T.mode == f.mode)
    if f.library_id is not None:
        where.append(T.library_directory_id == f.library_id)
    if f.is_missing is not None:
        where.append(T.is_missing == f.is_missing)
    if f.duplicate_group_id is not None:
        where.append(T.duplicate_group_id == f.duplicate_group_id)
    if f.year_min is not None:
        where.append(T.year >= f.year_min)
    if f.year_max is not None:
        where.append(T.year <= f.year_max)
    if f.rating_min is not None:
        where.append(T.rating >= f.rating_min)
    if f.has_file_hash is not None:
        where.append(T.file_hash.is_not(None) if f.has_file_hash else T.file_hash.is_(None))
    if f.is_analyzed is not None:
        where.append(T.date_analyzed.is_not(None) if f.is_analyzed
                     else T.date_analyzed.is_(None))
    return where


def list_tracks(session: Session, filters: TrackFilters, *, sort: str | None = None,
                descending: bool = True, page: int = 1, limit: int = 50
                ) -> tuple[Sequence[Sequence[Any]], int]:
    """One page of tracks matching `filters`, and the total number of matches.

    Parameters
    ----------
    session : Session
    filters : TrackFilters
    sort : str or None
        A key of :data:`SORT_COLUMNS`; None sorts by search relevance when
        ``filters.search`` is set, else by ``date_added``. Text columns sort
        case-insensitively, NULLs always last; ties are broken by id (by rowid
        in a search without filters on SQLite, see :func:`_sqlite_ranked_page`), so
        pages never overlap.
    descending : bool
        Direction of `sort` (relevance is always best first).
    page : int
        1-based page number.
    limit : int
        Page size.

    Returns
    -------
    tracks : sequence of rows
        The values of :data:`TRACK_API_COLUMNS` per track, in the order of
        :data:`~taperoom.library.schemas.TRACK_FIELDS` (plain rows, read on the
        session's connection without the ORM's result layer: list pages are the
        hot path).
    total : int
        Number of matching tracks over all pages (0 when none).
    """
    where = _filter_clauses(filters)
    stmt = sa.select(*TRACK_API_COLUMNS)
    count = sa.select(sa.func.count(T.id)).select_from(T)
    rank: Any = None
    # NUL is no text any backend stores (PostgreSQL refuses it): a blank here
    text = (filters.search or "").replace("\x00", " ").strip()
    dialect = session.get_bind().dialect.name
    if text:
        match = fts_match_query(text)
        words = search_terms(text)
        if words and dialect == "postgresql":
            clause, rank = _postgres_search(words)
            where.append(clause)
        elif match is not None and dialect == "sqlite":
            if not where and sort is None:
                return _sqlite_ranked_page(session, match, page=page, limit=limit)
            fts = sa.table("tracks_fts", sa.column("rowid"))
            hits = (sa.select(fts.c.rowid.label("rowid"), _bm25().label("rank"))
                    .select_from(fts)
                    .where(sa.literal_column("tracks_fts").op("MATCH")(match))
                    .subquery("fts_hits"))
            on = sa.literal_column("tracks.rowid") == hits.c.rowid
            stmt = stmt.join(hits, on)
            count = count.join(hits, on)
            rank = hits.c.rank
        else:
            terms = search_terms(text) or [text]
            where.extend(_like_any_column(t) for t in terms)
    stmt = stmt.where(*where)
    total = session.scalar(count.where(*where)) or 0

    order: list[Any] = []
    if sort is None and rank is not None:
        order.append(rank.asc())
    else:
        key = sort or "date_added"
        col: Any = SORT_COLUMNS[key]
        nullable = bool(T.__table__.c[col.key].nullable)
        if key in TEXT_SORTS:
            col = sa.func.lower(col)
        ordered = col.desc() if descending else col.asc()
        # NULLS LAST only where NULLs exist: a NOT NULL column's plain order lets
        # PostgreSQL walk its index backwards for the default date_added DESC
        order.append(ordered.nulls_last() if nullable else ordered)
    order.append(T.id.desc() if descending else T.id.asc())
    rows = session.connection().execute(
        stmt.order_by(*order).offset((page - 1) * limit).limit(limit)).all()
    return rows, int(total)


def _bm25() -> ColumnElement[Any]:
    """The ``bm25`` rank of a ``tracks_fts`` row with :data:`FTS_WEIGHTS` (lower is better)."""
    weights = ", ".join(str(w) for w in FTS_WEIGHTS)
    return sa.literal_column(f"bm25(tracks_fts, {weights})")


def _sqlite_ranked_page(session: Session, match: str, *, page: int, limit: int
                        ) -> tuple[Sequence[Sequence[Any]], int]:
    """A search without filters, best match first, on SQLite: the page is chosen inside
    the FTS index and only its rows are joined to ``tracks``.

    The general query joins every match to ``tracks`` before sorting them (a common
    prefix matches tens of thousands of tracks); here the index ranks its own rows
    (ties broken by rowid, newest first, so pages still never overlap) and counts them
    (the index holds exactly the ``tracks`` rows: it is kept by triggers). The same
    matches, rank order and total as the general query; ``bench/library_page.py``
    measures the search answer painted on 100,000 tracks (BENCHMARKS.md).
    """
    fts = sa.table("tracks_fts", sa.column("rowid"))
    matches = sa.literal_column("tracks_fts").op("MATCH")(match)
    rank = _bm25().label("rank")
    hits = (sa.select(fts.c.rowid.label("rowid"), rank).select_from(fts).where(matches)
            .order_by(rank.asc(), fts.c.rowid.desc())
            .offset((page - 1) * limit).limit(limit).subquery("fts_page"))
    stmt = (sa.select(*TRACK_API_COLUMNS)
            .join(hits, sa.literal_column("tracks.rowid") == hits.c.rowid)
            .order_by(hits.c.rank.asc(), hits.c.rowid.desc()))
    total = session.scalar(sa.select(sa.func.count()).select_from(fts).where(matches)) or 0
    return session.connection().execute(stmt).all(), int(total)


def get_track(session: Session, track_id: str) -> models.Track | None:
    """The track with id `track_id`, or None."""
    return session.get(T, track_id)


def get_track_by_path(session: Session, file_path: str) -> models.Track | None:
    """The track whose ``file_path`` is exactly `file_path`, or None."""
    return session.scalars(sa.select(T).where(T.file_path == file_path)).first()


def track_stats(session: Session) -> dict[str, Any]:
    """Library-wide counters.

    Returns
    -------
    dict
        ``total`` tracks, ``missing`` (file gone), ``analyzed`` (has
        ``date_analyzed``), ``duplicates`` (tracks in a duplicate group),
        ``total_size`` (bytes) and ``avg_duration`` (seconds; 0 when unknown).
    """
    row = session.execute(sa.select(
        sa.func.count(T.id),
        sa.func.coalesce(sa.func.sum(sa.case((T.is_missing.is_(True), 1), else_=0)), 0),
        sa.func.count(T.date_analyzed),
        sa.func.count(T.duplicate_group_id),
        sa.func.coalesce(sa.func.sum(T.file_size), 0),
        sa.func.coalesce(sa.func.avg(T.duration_seconds), 0.0),
    )).one()
    return {"total": int(row[0]), "missing": int(row[1]), "analyzed": int(row[2]),
            "duplicates": int(row[3]), "total_size": int(row[4]),
            "avg_duration": float(row[5])}


def all_directories(session: Session) -> Sequence[models.LibraryDirectory]:
    """Every library directory, longest path first (innermost match wins)."""
    rows = session.scalars(sa.select(models.LibraryDirectory)).all()
    return sorted(rows, key=lambda d: len(d.path), reverse=True)


def get_directory(session: Session, directory_id: str) -> models.LibraryDirectory | None:
    """The library directory `directory_id`, or None."""
    return session.get(models.LibraryDirectory, directory_id)


def get_waveforms(session: Session, file_hash: str, *, stems: bool = False,
                  zoom: int | None = None) -> Sequence[models.Waveform]:
    """Stored waveforms of an audio hash, by zoom level (one level when `zoom` is given)."""
    stmt = (sa.select(models.Waveform)
            .where(models.Waveform.file_hash == file_hash,
                   models.Waveform.is_stems.is_(stems))
            .order_by(models.Waveform.zoom_level))
    if zoom is not None:
        stmt = stmt.where(models.Waveform.zoom_level == zoom)
    return session.scalars(stmt).all()


# --- hot cues -------------------------------------------------------------------------

H = models.HotCue


def list_hot_cues(session: Session, track_id: str, source: str | None = None
                  ) -> Sequence[models.HotCue]:
    """Hot cues of a track (of one source when given), by source then index."""
    stmt = sa.select(H).where(H.track_id == track_id).order_by(H.source, H.cue_index)
    if source is not None:
        stmt = stmt.where(H.source == source)
    return session.scalars(stmt).all()


def get_hot_cue(session: Session, track_id: str, index: int, source: str
                ) -> models.HotCue | None:
    """The hot cue of a track at `index` from `source`, or None."""
    return session.scalars(sa.select(H).where(
        H.track_id == track_id, H.cue_index == index, H.source == source)).first()


def save_hot_cue(session: Session, track_id: str, index: int, source: str,
                 values: dict[str, Any]) -> models.HotCue:
    """Create or replace the hot cue (track, index, source) with `values` (ORM attributes)."""
    cue = get_hot_cue(session, track_id, index, source)
    if cue is None:
        cue = H(track_id=track_id, cue_index=index, source=source)
        session.add(cue)
    for name, value in values.items():
        setattr(cue, name, value)
    session.flush()
    return cue


def delete_hot_cues(session: Session, track_id: str, *, index: int | None = None,
                    source: str | None = None) -> int:
    """Delete a track's hot cues (one index and/or one source when given); returns the count."""
    stmt = sa.delete(H).where(H.track_id == track_id)
    if index is not None:
        stmt = stmt.where(H.cue_index == index)
    if source is not None:
        stmt = stmt.where(H.source == source)
    result = session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
