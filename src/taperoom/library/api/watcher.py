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

from fastapi import APIRouter

from taperoom.library.context import LibraryContext
from taperoom.library.schemas import ok


def build_router(ctx: LibraryContext) -> APIRouter:
    """Router of the watcher routes (mounted at ``/api/watcher``)."""
    r = APIRouter()

    @r.get("/status")
    def watcher_status() -> dict[str, Any]:
        return ok(ctx.watcher.status())

    @r.post("/start-all")
    def start_all() -> dict[str, Any]:
        count = ctx.watcher.start_all()
        return {"success": True, "message": f"Started watching {count} directories",
                "count": count}

    @r.post("/stop-all")
    def stop_all() -> dict[str, Any]:
        count = ctx.watcher.stop_all()
        return {"success": True, "message": f"Stopped watching {count} directories",
                "count": count}

    @r.post("/start/{id}")
    def start(id: UUID) -> dict[str, Any]:
        ctx.watcher.watch(str(id))
        return {"success": True, "message": f"Started watching directory {id}"}

    @r.post("/stop/{id}")
    def stop(id: UUID) -> dict[str, Any]:
        ctx.watcher.unwatch(str(id))
        return {"success": True, "message": f"Stopped watching directory {id}"}

    return r
