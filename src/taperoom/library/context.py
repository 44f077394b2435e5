"""The library app's shared state: settings, database, event bus and services.

One :class:`LibraryContext` is built per app (or per CLI command) by
:func:`open_context`; routers receive it and call the services on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import make_engine, make_sessionmaker
from taperoom.events import EventBus
from taperoom.library import migrate
from taperoom.library.folderpolicy import FolderPolicy
from taperoom.library.settings import LibrarySettings

if TYPE_CHECKING:
    from taperoom.library.fileops import FileOperations
    from taperoom.library.recovery import RecoveryReport
    from taperoom.library.scans import ScanManager
    from taperoom.library.watcher import LibraryWatcher


@dataclass
class LibraryContext:
    """Everything a library request handler needs.

    Attributes
    ----------
    settings : LibrarySettings
    engine : Engine
        SQLAlchemy engine of the library database (migrated to head).
    sessions : sessionmaker
        Session factory; use :func:`taperoom.db.transaction` for writes.
    bus : EventBus
        Where services send ``track:*``, ``library:*``, ``duplicate:*`` and
        ``file_operation:*`` events.
    scans : ScanManager
        Starts, tracks and cancels scans (set by :func:`open_context`).
    watcher : LibraryWatcher
        Watches library folders and removable drives (set by :func:`open_context`).
    fileops : FileOperations
        Serialised move/rename/delete of track files (set by :func:`open_context`).
    recovery : RecoveryReport
        File operations a crash had interrupted, finished or undone when the
        context opened (set by :func:`open_context`).
    folders : FolderPolicy
        Which folders may be library folders (``LIBRARY_ALLOWED_ROOTS``; set by
        :func:`open_context`).
    extras : dict
        Room for later services (analysis queue, engine link).
    """

    settings: LibrarySettings
    engine: Engine
    sessions: sessionmaker[Session]
    bus: EventBus
    scans: ScanManager = field(init=False)
    watcher: LibraryWatcher = field(init=False)
    fileops: FileOperations = field(init=False)
    recovery: RecoveryReport = field(init=False)
    folders: FolderPolicy = field(init=False)
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Stop background services and dispose of the engine."""
        if hasattr(self, "watcher"):
            self.watcher.stop()
        if hasattr(self, "scans"):
            self.scans.shutdown()
        if hasattr(self, "fileops"):
            self.fileops.shutdown()
        self.engine.dispose()


def open_context(settings: LibrarySettings | None = None) -> LibraryContext:
    """Open the database (migrating it to the newest revision) and build the services."""
    from taperoom.library.fileops import FileOperations
    from taperoom.library.recovery import recover_operations
    from taperoom.library.scans import ScanManager
    from taperoom.library.watcher import LibraryWatcher

    settings = settings or LibrarySettings()
    engine = make_engine(settings.url)
    migrate.upgrade(engine)
    ctx = LibraryContext(settings, engine, make_sessionmaker(engine), EventBus())
    ctx.folders = FolderPolicy(settings.allowed_roots)
    ctx.scans = ScanManager(ctx)
    ctx.watcher = LibraryWatcher(ctx)
    ctx.fileops = FileOperations(ctx)
    ctx.recovery = recover_operations(ctx)
    return ctx
