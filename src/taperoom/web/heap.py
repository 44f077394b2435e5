"""The cyclic garbage collector of a long-running server process."""

from __future__ import annotations

import gc
import logging
import os

__all__ = ["FREEZE_ENV", "freeze_startup_heap"]

log = logging.getLogger(__name__)

#: Set to ``1`` by ``taperoom serve`` and the apps' ``serve`` commands, and inherited by
#: uvicorn's worker processes: only a server process freezes its start-up heap, never a
#: test or a command that builds an app and drops it (frozen objects are never collected).
FREEZE_ENV = "TAPEROOM_FREEZE_HEAP"


def freeze_startup_heap() -> int | None:
    """In a server process, collect once and move every object alive to the collector's
    permanent generation.

    A server has built, by the end of its start-up, hundreds of thousands of objects that
    live as long as it does (modules, the app, its routes and services). Every full
    (generation 2) collection walks all of them again: with the allocations of a large
    answer (a playlist of 1,000 tracks is about 70,000 objects) that is tens of
    milliseconds added to an unlucky request (``bench/playlists.py``: p99 of a
    1,000-track playlist 190 ms without, 72 ms with). :func:`gc.freeze` takes them out
    of the collector's walks (CPython's documentation of ``gc.freeze``; the practice
    described in "Dismissing Python Garbage Collection at Instagram", 2017); objects
    made later are collected as before.

    Returns
    -------
    int or None
        How many objects are frozen (:func:`gc.get_freeze_count`); None outside a server
        process (:data:`FREEZE_ENV` not ``1``), where nothing is done.
    """
    if os.environ.get(FREEZE_ENV) != "1":
        return None
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("start-up heap frozen: %d objects left out of garbage collection", frozen)
    return frozen
