"""Routes of /api/watcher (contracts/library.md, section 2 "Watcher").

* ``GET /status`` -> ``{success, data: {activeCount, watchers: [...], refused: [...],
  watchLimit, watchesUsed, ...}}``; each watcher says its ``mode`` (``starting``,
  ``inotify``, ``polling``, ``waiting``, ``failed``) and why (``message``).
* ``POST /start/{id}`` -> ``{success, message: "Started watching directory <id>"}``;
  400 already watched, 404 unknown, inactive or unavailable folder, 409 a folder
  the folder policy refuses or that the system would not watch.
* ``POST /stop/{id}`` -> ``{success, message: "Stopped watching directory <id>"}``;
  404 not watched.
* ``POST /start-all``, ``POST /stop-all`` -> ``{success, message, count}``.

Every route answers within seconds: watches are set up in the background
(:mod:`taperoom.library.watcher`), a start waits at most a few seconds for its
setup and a stop never waits for one.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from taperoom.library.api.deps import WatcherDep
from taperoom.library.api.wire import library_router
from taperoom.library.schemas import Envelope, WatcherStatusPublic, ok

router = library_router("/api/watcher", tag="watcher")


@router.get("/status", response_model=Envelope[WatcherStatusPublic])
def watcher_status(watcher: WatcherDep) -> dict[str, Any]:
    """``{success, data: status}``."""
    return ok(watcher.status())


@router.post("/start-all", response_model=Envelope[None])
def start_all(watcher: WatcherDep) -> dict[str, Any]:
    """``{success, message, count}``: folders watched (or being set up) afterwards."""
    count = watcher.start_all()
    return {"success": True, "message": f"Started watching {count} directories",
            "count": count}


@router.post("/stop-all", response_model=Envelope[None])
def stop_all(watcher: WatcherDep) -> dict[str, Any]:
    """``{success, message, count}``: watches stopped."""
    count = watcher.stop_all()
    return {"success": True, "message": f"Stopped watching {count} directories",
            "count": count}


@router.post("/start/{id}", response_model=Envelope[None])
def start(id: UUID, watcher: WatcherDep) -> dict[str, Any]:
    """``{success, message}``; 400 already watched, 404, 409."""
    watcher.watch(str(id))
    return {"success": True, "message": f"Started watching directory {id}"}


@router.post("/stop/{id}", response_model=Envelope[None])
def stop(id: UUID, watcher: WatcherDep) -> dict[str, Any]:
    """``{success, message}``; 404 not watched."""
    watcher.unwatch(str(id))
    return {"success": True, "message": f"Stopped watching directory {id}"}
