"""Last phase of a scan, **duplicates**: regroup the tracks of the touched audio hashes.

Only the hashes a scan added or changed are regrouped (the whole library is
regrouped by :meth:`taperoom.library.duplicates.DuplicateService.scan`);
``duplicate:detected`` is sent for every group that appeared.
"""

from __future__ import annotations

from collections.abc import Set

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.events import Event, EventBus
from taperoom.library.repository import scan as repo


def assign_duplicates(db: sessionmaker[Session], bus: EventBus, hashes: Set[str]) -> None:
    """Group the tracks sharing one of `hashes` and announce the new groups.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``duplicate:detected`` ``{groupId, fileHash, trackIds, ...}``.
    hashes : set of str
        Audio hashes touched by the scan; nothing is done when empty.
    """
    if not hashes:
        return
    with transaction(db) as session:
        detected = repo.assign_duplicate_groups(session, hashes)
    for group in detected:
        bus.send(Event.DUPLICATE_DETECTED, group)
