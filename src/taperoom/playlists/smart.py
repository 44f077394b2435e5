"""What a smart playlist's criteria become when stored.

:func:`criteria_for_storage` is the one place that checks the criteria a client
gives (``POST /api/playlists`` with ``type: smart``) before they are stored in
``playlists.smart_criteria``. For now it stores them as given (a JSON object);
the criteria parser (:mod:`taperoom.playlists.criteria`) takes over the checking
here when it exists.
"""

from __future__ import annotations

import json
from typing import Any

from taperoom.playlists.errors import PlaylistInvalid


def criteria_for_storage(criteria: dict[str, Any]) -> str:
    """The text stored in ``smart_criteria`` for these criteria.

    Parameters
    ----------
    criteria : dict
        The ``criteria`` object of the request.

    Returns
    -------
    str
        Its JSON text.

    Raises
    ------
    PlaylistInvalid
        The criteria are not a JSON object (400).
    """
    if not isinstance(criteria, dict):
        raise PlaylistInvalid.from_fields([{"field": "criteria",
                                            "message": "must be an object"}])
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
