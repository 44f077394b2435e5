"""What a smart playlist's criteria become when stored, and how they are read back.

:func:`criteria_for_storage` is the one place that checks the criteria a client
gives (``POST /api/playlists`` with ``type: smart``, ``PUT /api/playlists/:id``
with ``criteria``) before they are stored in ``playlists.smart_criteria``: they
must parse (:func:`taperoom.playlists.criteria.parse_criteria`), else the
request is 400. :func:`stored_criteria` parses the stored text again (cached:
a background refresh reads every smart playlist's criteria after each change
of the library), and :func:`depends_on_time` tells the criteria whose tracks
change as time passes (``played_in_last_days``), which are evaluated again
whenever the playlist is read.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from taperoom.errors import InvalidInput
from taperoom.playlists.criteria import All, AnyOf, Criteria, InLastDays, Node, Not, parse_criteria
from taperoom.playlists.errors import PlaylistInvalid


def criteria_for_storage(criteria: Any) -> str:
    """The text stored in ``smart_criteria`` for these criteria.

    Parameters
    ----------
    criteria : dict
        The ``criteria`` object of the request.

    Returns
    -------
    str
        Its JSON text (compact, as given: the contract's ``criteria`` key sends it
        back as the client wrote it).

    Raises
    ------
    PlaylistInvalid
        The criteria are not a JSON object or do not parse (an unknown key, a
        malformed value...; 400 ``Validation failed`` naming the key).
    """
    if not isinstance(criteria, dict):
        raise PlaylistInvalid.from_fields([{"field": "criteria",
                                            "message": "must be an object"}])
    try:
        parse_criteria(criteria)
    except InvalidInput as exc:
        raise PlaylistInvalid.from_fields([{"field": "criteria",
                                            "message": exc.message}]) from None
    return json.dumps(criteria, separators=(",", ":"), ensure_ascii=False)


def parsed_criteria(stored: str | None) -> Any:
    """The stored criteria as an object (the contract's ``criteria`` key), or None
    when there are none or they are not JSON."""
    if not stored:
        return None
    try:
        return json.loads(stored)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def stored_criteria(stored: str | None) -> Criteria:
    """Parse the ``smart_criteria`` text of a playlist (cached by text).

    Raises
    ------
    InvalidInput
        The text does not parse (a row written before the criteria were checked,
        or by hand); None or empty text is refused too.
    """
    if not stored:
        raise InvalidInput("Invalid smart playlist criteria: none stored")
    return parse_criteria(stored)


def _timed(node: Node) -> bool:
    if isinstance(node, All | AnyOf):
        return any(_timed(n) for n in node.items)
    if isinstance(node, Not):
        return _timed(node.item)
    return isinstance(node, InLastDays)


def depends_on_time(criteria: Criteria) -> bool:
    """Whether the tracks of `criteria` change with the passing of time alone (a
    criterion relative to now, such as ``played_in_last_days``)."""
    return _timed(criteria.where)


def timed(stored: str | None) -> bool:
    """Whether stored criteria parse and :func:`depends_on_time` (a read then evaluates
    them again)."""
    try:
        return depends_on_time(stored_criteria(stored))
    except InvalidInput:
        return False
