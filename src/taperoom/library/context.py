"""The library's composition root: every service, built once with its collaborators.

:func:`build_services` opens the database (migrating it to the newest revision)
and builds each service in dependency order, handing it exactly what it uses
(the session factory ``db``, the event bus, a few settings, other services
behind small protocols), as Mopidy's ``Core`` hands each controller its
backends and Navidrome builds its scanner from a datastore and a broker.
:meth:`LibraryServices.close` closes them in reverse order. No service imports
this module; services that react to each other do so through the event bus
(the watcher watches a folder the directory service added, the scan manager
cancels the scan of a folder whose drive went away).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import make_engine, make_sessionmaker
from taperoom.events import EventBus
from taperoom.library import migrate
from taperoom.library.cleanup import backup_folder
from taperoom.library.directories import DirectoryService
from taperoom.library.duplicates import DuplicateService
from taperoom.library.fileops import FileOperations
from taperoom.library.folderpolicy import FolderPolicy
from taperoom.library.recovery import RecoveryReport, recover_operations
from taperoom.library.scanner import ScanManager, Scanner, ScanQueue
from taperoom.library.settings import LibrarySettings
from taperoom.library.settings_service import SettingsService
from taperoom.library.tracks import TrackService
from taperoom.library.users import user_store
from taperoom.library.watcher import LibraryWatcher
from taperoom.web.auth import AuthStore


@dataclass(frozen=True)
class LibraryServices:
    """Every service of the library, fully built (see :func:`build_services`).

    Attributes
    ----------
    settings : LibrarySettings
    engine : Engine
        SQLAlchemy engine of the library database (migrated to head).
    db : sessionmaker
        Session factory; use :func:`taperoom.db.transaction` for writes.
    bus : EventBus
        ``track:*``, ``library:*``, ``duplicate:*`` and ``file_operation:*`` events.
    folders : FolderPolicy
        Which folders may be library folders (``LIBRARY_ALLOWED_ROOTS``).
    recovery : RecoveryReport
        File operations a crash had interrupted, finished or undone at start.
    users : AuthStore
        Users and sign-in sessions (the access layer).
    settings_store : SettingsService
        The user settings of ``/api/settings``.
    tracks : TrackService
    fileops : FileOperations
        Serialised move/rename/delete of track files.
    duplicates : DuplicateService
    scanner : Scanner
        Runs the phases of one scan.
    scans : ScanQueue
        Starts, tracks and cancels scans (:class:`~taperoom.library.scanner.ScanManager`).
    directories : DirectoryService
    watcher : LibraryWatcher
        Watches library folders and removable drives.
    """

    settings: LibrarySettings
    engine: Engine
    db: sessionmaker[Session]
    bus: EventBus
    folders: FolderPolicy
    recovery: RecoveryReport
    users: AuthStore
    settings_store: SettingsService
    tracks: TrackService
    fileops: FileOperations
    duplicates: DuplicateService
    scanner: Scanner
    scans: ScanQueue
    directories: DirectoryService
    watcher: LibraryWatcher
    _closer: ExitStack = field(repr=False, compare=False)

    def close(self) -> None:
        """Stop the background services (watcher, scans, file operations), in the
        reverse order of their building, and dispose of the engine."""
        self._closer.close()


def build_services(settings: LibrarySettings | None = None) -> LibraryServices:
    """Open the database (migrating it to the newest revision) and build every service.

    File operations a crash had interrupted are recovered before anything else
    touches the files (:func:`~taperoom.library.recovery.recover_operations`).

    Parameters
    ----------
    settings : LibrarySettings, optional
        Read from the environment when omitted.

    Returns
    -------
    LibraryServices
        Close it with :meth:`LibraryServices.close`.
    """
    settings = settings or LibrarySettings()
    with ExitStack() as stack:
        engine = make_engine(settings.url)
        stack.callback(engine.dispose)
        migrate.upgrade(engine)
        db = make_sessionmaker(engine)
        bus = EventBus()
        folders = FolderPolicy(settings.allowed_roots)
        recovery = recover_operations(db)
        tracks = TrackService(db, bus, extensions=settings.extensions)
        fileops = FileOperations(db, bus, refusal=folders.refusal,
                                 extensions=settings.extensions)
        stack.callback(fileops.shutdown)
        duplicates = DuplicateService(db, bus, fileops)
        scanner = Scanner(db, bus, extensions=settings.extensions, refusal=folders.refusal,
                          workers=settings.scan_workers)
        scans = ScanManager(db, bus, scanner, refusal=folders.refusal,
                            max_concurrent=settings.max_concurrent_scans)
        stack.callback(scans.shutdown)
        directories = DirectoryService(db, bus, folders, scans,
                                       backup_dir=backup_folder(Path(settings.database_path)))
        watcher = LibraryWatcher(db, bus, settings, refusal=folders.refusal, scanner=scanner,
                                 scans=scans, directories=directories)
        stack.callback(watcher.stop)
        services = LibraryServices(
            settings=settings, engine=engine, db=db, bus=bus, folders=folders,
            recovery=recovery, users=user_store(db), settings_store=SettingsService(db),
            tracks=tracks, fileops=fileops, duplicates=duplicates, scanner=scanner,
            scans=scans, directories=directories, watcher=watcher, _closer=stack.pop_all())
    return services
