"""SQL of the event relay: the ``library_events`` table (see :mod:`taperoom.library.eventrelay`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from taperoom.library.models import RelayedEvent, utcnow

#: Key of the transaction-level advisory lock that orders event inserts on PostgreSQL.
_INSERT_LOCK = 0x7461_7065_7276_6E74  # "tapervnt"


def last_event_id(session: Session) -> int:
    """The id of the newest event, 0 when there is none."""
    return int(session.scalar(select(func.max(RelayedEvent.id))) or 0)


def add_events(session: Session, origin: str, events: Sequence[tuple[str, str]]) -> None:
    """Insert events ``(name, JSON data)`` of process `origin`.

    On PostgreSQL the inserts of all processes are serialised by a
    transaction-level advisory lock, so ids become visible in increasing order
    and a reader that remembers the last id it saw skips none (sequence values
    are otherwise handed out before commit, and commits may land out of order).
    SQLite has one writer at a time anyway.
    """
    if not events:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _INSERT_LOCK})
    now = utcnow()
    session.execute(insert(RelayedEvent), [
        {"origin": origin, "name": name, "data": data, "created_at": now}
        for name, data in events])


def events_after(session: Session, after: int, limit: int = 500
                 ) -> list[tuple[int, str, str, str]]:
    """Events with an id above `after`, oldest first: ``(id, origin, name, data)``."""
    rows: Any = session.execute(
        select(RelayedEvent.id, RelayedEvent.origin, RelayedEvent.name, RelayedEvent.data)
        .where(RelayedEvent.id > after).order_by(RelayedEvent.id).limit(limit))
    return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


def prune_events(session: Session, before: datetime) -> int:
    """Delete events older than `before`; returns how many."""
    result: Any = session.execute(delete(RelayedEvent).where(RelayedEvent.created_at < before))
    return int(result.rowcount or 0)
