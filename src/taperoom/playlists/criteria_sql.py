"""The one translator of smart-playlist criteria into SQL (SQLAlchemy Core, any backend).

A parsed :class:`~taperoom.playlists.criteria.Criteria` tree becomes a WHERE
clause over the library's ``tracks`` table, an ORDER BY and a LIMIT, as
Navidrome's ``model/criteria`` turns its smart-playlist rules into ``squirrel``
expressions (``criteria_sql.go``): each leaf is one comparison, ``all``/``any``
groups are AND/OR, and missing tracks are always left out (``is_missing`` false,
as the contract says). Nothing evaluates criteria in Python: the database is the
one evaluator, so a refresh, an "affected playlists" check and a preview all
agree. The expressions are plain comparisons, ``LIKE`` through
:meth:`~sqlalchemy.sql.operators.ColumnOperators.icontains` and CASE-free ORs,
so they run alike on SQLite and PostgreSQL.

Three-valued logic: a criterion on a NULL value (a track without genre, tempo
or key) does not hold; ``not`` negates the criterion with unknown read as false,
so ``{"not": {"genres": ["House"]}}`` keeps the tracks without a genre.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from taperoom.library import models
from taperoom.playlists.criteria import (
    All,
    AnyOf,
    Between,
    BpmNear,
    Contains,
    Criteria,
    DateBetween,
    Equals,
    InLastDays,
    InList,
    IsSet,
    KeyCompatible,
    Node,
    Not,
)
from taperoom.playlists.harmony import bpm_windows, compatible_keys

__all__ = ["node_clause", "order_by", "track_ids_query", "where_clause"]

T = models.Track
#: Text sorts compare lower-cased (PostgreSQL's collation and SQLite's binary order
#: would otherwise disagree).
TEXT_SORTS = frozenset({"artist", "title", "album", "genre"})


def _column(name: str) -> Any:
    return T.__table__.c[name]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def node_clause(node: Node, *, now: datetime | None = None) -> ColumnElement[bool]:
    """The SQL condition of one node of a criteria tree.

    Parameters
    ----------
    node : Node
        A node of :attr:`Criteria.where <taperoom.playlists.criteria.Criteria.where>`.
    now : datetime, optional
        Naive UTC "now" of relative times (``played_in_last_days``); the current
        time when omitted.

    Returns
    -------
    ColumnElement
        A boolean expression over ``tracks``; an empty ``all`` is true, an empty
        ``any`` false.
    """
    if isinstance(node, All):
        return sa.and_(sa.true(), *(node_clause(n, now=now) for n in node.items))
    if isinstance(node, AnyOf):
        return sa.or_(sa.false(), *(node_clause(n, now=now) for n in node.items))
    if isinstance(node, Not):
        # unknown (NULL) counts as "does not hold", so its negation holds
        return sa.not_(sa.func.coalesce(node_clause(node.item, now=now), sa.false()))
    if isinstance(node, Between):
        col = _column(node.field)
        parts = []
        if node.low is not None:
            parts.append(col >= node.low)
        if node.high is not None:
            parts.append(col <= node.high)
        return sa.and_(*parts)
    if isinstance(node, Equals):
        return _column(node.field) == node.value
    if isinstance(node, InList):
        return sa.func.lower(_column(node.field)).in_([v.lower() for v in node.values])
    if isinstance(node, Contains):
        return _column(node.field).icontains(node.text, autoescape=True)
    if isinstance(node, DateBetween):
        return _date_clause(node)
    if isinstance(node, InLastDays):
        since = (now or _utcnow()) - timedelta(days=node.days)
        return _column(node.field) >= since
    if isinstance(node, IsSet):
        col = _column(node.field)
        return col.is_not(None) if node.is_set else col.is_(None)
    if isinstance(node, KeyCompatible):
        keys = {(k.musical_key, k.mode) for k in compatible_keys(node.musical_key, node.mode)}
        return sa.or_(*(sa.and_(T.musical_key == key, T.mode == mode)
                        for key, mode in sorted(keys)))
    if isinstance(node, BpmNear):
        return sa.or_(*(T.bpm.between(low, high) for low, high in
                        bpm_windows(node.bpm, node.percent, half_double=node.half_double)))
    raise TypeError(f"not a criteria node: {node!r}")


def _date_clause(node: DateBetween) -> ColumnElement[bool]:
    col = _column(node.field)
    parts: list[ColumnElement[bool]] = []
    if node.before is not None:
        before = col <= node.before
        parts.append(sa.or_(before, col.is_(None)) if node.before_or_never else before)
    if node.after is not None:
        parts.append(col >= node.after)
    return sa.and_(*parts)


def where_clause(criteria: Criteria, *, now: datetime | None = None) -> ColumnElement[bool]:
    """WHERE clause of a smart playlist: its criteria, and never a missing track.

    Parameters
    ----------
    criteria : Criteria
        From :func:`taperoom.playlists.criteria.parse_criteria`.
    now : datetime, optional
        Naive UTC time that relative criteria count from (default: now).

    Returns
    -------
    ColumnElement
        ``tracks.is_missing = false AND <criteria>``.
    """
    return sa.and_(T.is_missing == False, node_clause(criteria.where, now=now))  # noqa: E712


def order_by(criteria: Criteria) -> list[Any]:
    """ORDER BY of a smart playlist: its sort column (text lower-cased, NULLs last on
    every backend), then the track id, so the order and a ``limit`` are stable.

    Returns
    -------
    list
        Order expressions for :meth:`sqlalchemy.sql.Select.order_by`.
    """
    col: Any = _column(criteria.sort_by)
    nullable = bool(col.nullable)
    if criteria.sort_by in TEXT_SORTS:
        col = sa.func.lower(col)
    descending = criteria.sort_order == "desc"
    ordered = col.desc() if descending else col.asc()
    return [ordered.nulls_last() if nullable else ordered,
            T.id.desc() if descending else T.id.asc()]


def track_ids_query(criteria: Criteria, *, now: datetime | None = None) -> sa.Select[Any]:
    """``SELECT tracks.id`` of the tracks of a smart playlist, in its order and limit.

    Parameters
    ----------
    criteria : Criteria
    now : datetime, optional
        See :func:`where_clause`.

    Returns
    -------
    Select
        Execute it in a repository (``session.scalars(query)``); add columns with
        :meth:`~sqlalchemy.sql.Select.add_columns` or narrow it with ``.where``
        (e.g. to the tracks a change touched).
    """
    query = sa.select(T.id).where(where_clause(criteria, now=now)).order_by(*order_by(criteria))
    return query.limit(criteria.limit) if criteria.limit is not None else query
