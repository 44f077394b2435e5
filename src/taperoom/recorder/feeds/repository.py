"""All SQL of the podcast feeds: feed tokens and the recordings a feed lists.

Functions take an open :class:`~sqlalchemy.orm.Session`; the caller owns the
transaction (:func:`taperoom.db.transaction`). A station's token is its
``stream_configurations.feed_token``; the feed of all stations keeps its token in
``recorder_feed_tokens`` (row :data:`ALL_FEED`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from taperoom.recorder import repository as repo
from taperoom.recorder.models import (
    FeedToken,
    RecordingSession,
    SessionStatus,
    Station,
    new_feed_token,
    utcnow,
)

#: Key of the feed of all stations in ``recorder_feed_tokens``.
ALL_FEED = "all"


def station_token(db: Session, station_id: int) -> str:
    """The feed token of a station, made now when the row has none.

    Raises
    ------
    NotFound
        Unknown station.
    """
    row = repo.get_station(db, station_id)
    if not row.feed_token:
        row.feed_token = new_feed_token()
        db.flush()
    return row.feed_token


def station_tokens(db: Session, station_ids: Iterable[int]) -> dict[int, str]:
    """``{station id: feed token}`` of the given stations (unknown ids are left out);
    rows without a token get one."""
    ids = sorted(set(station_ids))
    if not ids:
        return {}
    rows = db.scalars(select(Station).where(Station.id.in_(ids))).all()
    out: dict[int, str] = {}
    for row in rows:
        if not row.feed_token:
            row.feed_token = new_feed_token()
            db.flush()
        out[row.id] = row.feed_token
    return out


def rotate_station_token(db: Session, station_id: int) -> str:
    """Give a station's feed a new token (the old one stops working); the new token.

    Raises
    ------
    NotFound
        Unknown station.
    """
    row = repo.get_station(db, station_id)
    row.feed_token = new_feed_token()
    db.flush()
    return row.feed_token


def all_token(db: Session) -> str:
    """The token of the feed of all stations (made now if the row is missing)."""
    row = db.get(FeedToken, ALL_FEED)
    if row is None:
        try:
            with db.begin_nested():
                row = FeedToken(feed=ALL_FEED, token=new_feed_token(), rotated_at=utcnow())
                db.add(row)
        except IntegrityError:  # made meanwhile by another request
            row = db.get(FeedToken, ALL_FEED, populate_existing=True)
            assert row is not None
    return row.token


def rotate_all_token(db: Session) -> str:
    """Give the feed of all stations a new token; the new token."""
    all_token(db)
    row = db.get(FeedToken, ALL_FEED)
    assert row is not None
    row.token = new_feed_token()
    row.rotated_at = utcnow()
    db.flush()
    return row.token


def feed_recordings(db: Session, *, station_id: int | None, limit: int
                    ) -> Sequence[RecordingSession]:
    """Completed recordings whose file is kept locally, newest first.

    Parameters
    ----------
    station_id : int or None
        Only this station's recordings; None: every recording (also those of
        deleted stations).
    limit : int
        Most rows returned.
    """
    q = select(RecordingSession).where(
        RecordingSession.status == SessionStatus.COMPLETED.value,
        RecordingSession.output_file_path.is_not(None),
        RecordingSession.local_deleted.is_(False))
    if station_id is not None:
        q = q.where(RecordingSession.station_id == station_id)
    return db.scalars(q.order_by(RecordingSession.start_time.desc(),
                                 RecordingSession.id.desc()).limit(limit)).all()


def stations_by_id(db: Session, station_ids: Iterable[int]) -> dict[int, Station]:
    """``{id: Station}`` of the given stations that exist."""
    ids = sorted(set(station_ids))
    if not ids:
        return {}
    return {s.id: s for s in db.scalars(select(Station).where(Station.id.in_(ids)))}


def feed_recording(db: Session, session_id: int) -> RecordingSession | None:
    """The recording `session_id` if a feed may list it (completed, file kept), else None."""
    row = db.get(RecordingSession, session_id)
    if row is None or row.status != SessionStatus.COMPLETED.value \
            or not row.output_file_path or row.local_deleted:
        return None
    return row
