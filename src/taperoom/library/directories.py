"""The directory service: library folders added, changed, removed, checked and restored.

A *library directory* is a root folder of the DJ's music (an internal folder, a
USB stick, a network share). :class:`DirectoryService` holds the behaviour behind
``/api/library/directories`` (contracts/library.md §2); the router only parses
the request and wraps the results in the contract's envelopes. Removable-media
detection is in :mod:`taperoom.library.media`, browsing in
:mod:`taperoom.library.browsing`, cleanup and its backup in
:mod:`taperoom.library.cleanup`.

The service tells the others what changed through the event bus: the watcher
watches a folder on ``library:directory:added``, re-watches it on
``library:directory:updated`` (path, activity, recursion or links changed), drops
it on ``library:directory:removed`` and ``library:media:disconnected`` and takes
it back on ``library:media:connected``; the scan manager cancels the scan of a
disconnected folder.

Decisions where the contract and the seed are silent
----------------------------------------------------
* **Paths** are normalised with ``expanduser`` and ``resolve`` (symlinks
  followed, no trailing slash). A folder cannot be added twice, and folders may
  not nest in either direction (a track would belong to two roots): both are 409.
* **Refused folders**: the filesystem root, system folders and pseudo
  filesystems cannot be added or moved to (400 ``Refused as a library folder:
  ...``, as other unusable paths); see :mod:`taperoom.library.folderpolicy` and
  ``LIBRARY_ALLOWED_ROOTS``. A row an older version accepted still loads (so it
  can be removed or moved), but it is not watched, scanned or browsed (409 with
  the same message) and the watcher status lists it under ``refused``.
* **Removable media**: see :mod:`taperoom.library.media`.
* **Removing a folder** keeps its tracks by default, as rekordbox keeps collection
  entries when a folder is no longer watched: the rows stay with their tags,
  analysis, hot cues and playlist places, ``library_directory_id`` becomes NULL
  and their missing state is left as it is. Adding the folder (or a parent of
  it) again re-attaches them. ``delete_tracks=true`` deletes the rows (never
  files). A folder being scanned cannot be removed or moved (409).
* **Moving a folder** (``PUT`` with a new ``path``) relocates its tracks:
  ``file_path`` becomes ``<new path>/<relative_path>`` and every track is
  checked on disk, so cues, analysis and playlists survive a collection moved
  to a new drive (rekordbox's *Relocate*).
* **Availability**: a folder is available when it is a readable directory. When
  it disappears, all its present tracks are marked missing in one UPDATE and
  ``library:media:disconnected`` is sent; when it comes back, the missing tracks
  whose files exist again are restored in one UPDATE and
  ``library:media:connected`` is sent. Tracks missing for other reasons stay
  missing. A folder that disappears has its scan cancelled and its watch
  dropped; with file watching enabled, one that comes back is watched again and
  a ``hybrid`` rescan is queued (new files), as the watcher's own polling does.
* **Browsing** lists the sub-folders on disk and those known from the database
  (so a disconnected drive can still be browsed), hides dot-folders
  (``.Trashes``, ``.Spotlight-V100``), and lists the tracks at that level sorted
  by file name, missing ones included (``is_missing: 1``). Folder figures count
  present tracks; ``missingCount`` counts the others.
* **Cleanup** deletes tracks missing since more than N days; tracks marked
  missing without a date are never removed. The JSON backup goes to
  ``<database folder>/backups/`` and is written before anything is deleted.
"""


from __future__ import annotations

import logging
import os
import stat
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import Conflict, InvalidInput, NotFound
from taperoom.events import Event, EventBus, send_playlist_updates
from taperoom.library import browsing
from taperoom.library.cleanup import write_backup
from taperoom.library.folderpolicy import FolderPolicy
from taperoom.library.media import detect_removable, folder_available
from taperoom.library.models import LibraryDirectory, Track, new_id, utcnow
from taperoom.library.repository import directories as repo
from taperoom.library.repository import playlists as playlist_repo
from taperoom.library.repository import scan as scan_repo
from taperoom.library.schemas import (
    UPDATABLE,
    CleanupRequest,
    DirectoryCreate,
    DirectoryUpdate,
    directory_dict,
    iso,
)

log = logging.getLogger(__name__)

#: Thresholds (days) reported by the missing-track statistics, as the original.
MISSING_AGE_BUCKETS = (7, 30, 90)

NOT_FOUND = "Library directory not found"
_TRUE = frozenset({"true", "1", "yes", "on", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "off", "n", "f"})


class ScanActivity(Protocol):
    """What the directory service asks the scan manager: is a folder being scanned?"""

    def is_scanning(self, directory_id: str) -> bool: ...


# --------------------------------------------------------------------------- small helpers


def parse_bool(name: str, raw: str | None, *, default: bool | None = None) -> bool | None:
    """Parse a query-string boolean (``true/false``, ``1/0``, ``yes/no``, ``on/off``).

    Parameters
    ----------
    name : str
        Parameter name, for the error message.
    raw : str or None
        The raw value; None or empty gives `default`.
    default : bool, optional

    Raises
    ------
    InvalidInput
        Any other value (HTTP 400).
    """
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput(f"{name} must be a boolean (true or false), got {raw!r}")


def canonical_id(directory_id: str) -> str:
    """The canonical (lower-case, dashed) UUID string of `directory_id`.

    Raises
    ------
    NotFound
        When `directory_id` is not a UUID: no directory can have that id.
    """
    try:
        return str(uuid.UUID(directory_id))
    except (ValueError, AttributeError, TypeError):
        raise NotFound(NOT_FOUND) from None


def _load(session: Session, directory_id: str) -> LibraryDirectory:
    directory = repo.get(session, canonical_id(directory_id))
    if directory is None:
        raise NotFound(NOT_FOUND)
    return directory


def normalise_path(raw: str) -> Path:
    """Absolute, symlink-free form of a folder path a client sent (``~`` expanded).

    Raises
    ------
    InvalidInput
        When the text cannot be a path (NUL byte, unknown ``~user``).
    """
    if "\x00" in raw:
        raise InvalidInput("Invalid path: it contains a NUL character")
    try:
        return Path(raw).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise InvalidInput(f"Invalid path: {raw} ({exc})") from None


def require_folder(path: Path) -> None:
    """Check that `path` is an existing, readable directory.

    Raises
    ------
    InvalidInput
        ``Directory does not exist: <path>``, ``Path is not a directory: <path>``
        or ``Directory is not readable: <path>`` (HTTP 400).
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InvalidInput(f"Directory does not exist: {path}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InvalidInput(f"Directory is not accessible: {path} ({reason})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"Path is not a directory: {path}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InvalidInput(f"Directory is not readable: {path}")


def _overlap_check(session: Session, path: Path, *, exclude_id: str | None = None) -> None:
    """Raise Conflict when `path` is already a library folder, or nests with one."""
    for other_id, other_path in repo.all_paths(session):
        if other_id == exclude_id:
            continue
        other = Path(other_path)
        if other == path:
            raise Conflict(f"Directory already exists in library: {path}")
        if path.is_relative_to(other):
            raise Conflict(f"Directory {path} is inside the library directory {other}; "
                           "nested library directories are not allowed (scan the parent "
                           "instead)")
        if other.is_relative_to(path):
            raise Conflict(f"Directory {path} contains the library directory {other}; "
                           "nested library directories are not allowed (remove that one "
                           "first)")


def _default_name(path: Path) -> str:
    return path.name or str(path)


@dataclass
class AvailabilityResult:
    """Outcome of an availability check of one folder.

    Attributes
    ----------
    directory : LibraryDirectory
        The directory after the check.
    changed : bool
        ``is_available`` flipped.
    marked_missing : int
        Tracks marked missing because the folder disappeared.
    restored : int
        Missing tracks whose file was found again.
    """

    directory: LibraryDirectory
    changed: bool = False
    marked_missing: int = 0
    restored: int = 0


class DirectoryService:
    """Library folders: CRUD, availability, restore, browsing, cleanup and statistics.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``library:directory:*`` and ``library:media:*`` events.
    folders : FolderPolicy
        Which folders may be library folders (``LIBRARY_ALLOWED_ROOTS``).
    scans : ScanActivity
        Tells whether a folder is being scanned (such a folder is not moved or removed).
    backup_dir : Path
        Where cleanup writes its backups (``backups/`` beside the database).
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, folders: FolderPolicy,
                 scans: ScanActivity, *, backup_dir: Path) -> None:
        self.db = db
        self.bus = bus
        self.folders = folders
        self.scans = scans
        self.backup_dir = backup_dir

    def _scan_busy(self, directory: LibraryDirectory) -> bool:
        """Whether a scan of the folder is queued or running."""
        return directory.scan_status == "scanning" or self.scans.is_scanning(directory.id)

    def _verify_tracks(self, directory_id: str) -> tuple[int, int]:
        """Check every track of the folder on disk; mark gone ones missing, restore found ones.

        Returns
        -------
        (int, int)
            Tracks newly marked missing, tracks restored.
        """
        with self.db() as session:
            present = repo.track_paths(session, directory_id, missing=False)
            missing = repo.track_paths(session, directory_id, missing=True)
        gone = [tid for tid, path in present if not os.path.isfile(path)]
        back = [tid for tid, path in missing if os.path.isfile(path)]
        with transaction(self.db) as session:
            marked = scan_repo.mark_missing(session, gone, utcnow())
            restored = scan_repo.restore_tracks(session, back)
            repo.refresh_stats(session, [directory_id])
        return marked, restored

    # ----------------------------------------------------------------------- CRUD

    def get_directory(self, directory_id: str) -> LibraryDirectory:
        """The directory with this id.

        Raises
        ------
        NotFound
            Unknown or malformed id.
        """
        with self.db() as session:
            return _load(session, directory_id)

    def list_directories(self, *, is_active: bool | None = None,
                         is_available: bool | None = None) -> list[LibraryDirectory]:
        """Directories (highest priority first, then by name), optionally filtered by flags."""
        with self.db() as session:
            return repo.list_directories(session, is_active=is_active,
                                         is_available=is_available)

    def create_directory(self, body: DirectoryCreate) -> LibraryDirectory:
        """Add a library folder; sends ``library:directory:added`` (the watcher watches it).

        Detached tracks already in the database below the folder (from an earlier
        removal) are attached to it again and checked on disk.

        Raises
        ------
        InvalidInput
            The path does not exist, is not a directory or is not readable, or it is
            refused by the folder policy (:class:`~taperoom.library.folderpolicy.RefusedFolder`:
            the filesystem root, a system folder, a pseudo filesystem) (400).
        Conflict
            The folder is already in the library, or nests with a library folder (409).
        """
        path = normalise_path(body.path)
        self.folders.check(path)
        require_folder(path)
        removable = detect_removable(path) if body.is_removable is None else body.is_removable
        name = (body.name or "").strip() or _default_name(path)
        try:
            with transaction(self.db) as session:
                _overlap_check(session, path)
                directory = repo.insert(
                    session, id=new_id(), path=str(path), name=name, is_active=body.is_active,
                    is_removable=removable, is_available=True, scan_status="idle",
                    recursive_scan=body.recursive_scan, max_depth=body.max_depth,
                    scan_patterns=body.scan_patterns, exclude_patterns=body.exclude_patterns,
                    follow_symlinks=body.follow_symlinks, priority=body.priority,
                    date_added=utcnow(), total_files=0, total_tracks=0, total_missing=0)
                adopted = repo.adopt_orphans(session, directory.id, str(path))
                repo.refresh_stats(session, [directory.id])
        except IntegrityError:
            raise Conflict(f"Directory already exists in library: {path}") from None
        if adopted:
            self._verify_tracks(directory.id)
            directory = self.get_directory(directory.id)
        log.info("library directory added: %s (%s)", directory.name, directory.path)
        self.bus.send(Event.DIRECTORY_ADDED, {"directoryId": directory.id,
                                              "directory": directory_dict(directory)})
        return directory

    def update_directory(self, directory_id: str, body: DirectoryUpdate) -> LibraryDirectory:
        """Change a directory's settings; a new ``path`` relocates its tracks.

        Sends ``library:directory:updated`` with ``{directoryId, changes, directory}``
        when something changed (the watcher re-watches the folder when its path,
        ``is_active``, ``recursive_scan`` or ``follow_symlinks`` changed).

        Raises
        ------
        NotFound
            Unknown id (404).
        InvalidInput
            New path missing, not a directory or unreadable, or refused by the folder
            policy (400).
        Conflict
            New path already a library folder, nesting with one, colliding with
            other tracks' paths, or a scan of the folder is running (409).
        """
        current = self.get_directory(directory_id)
        given = body.model_fields_set & set(UPDATABLE)
        fields: dict[str, Any] = {key: getattr(body, key) for key in given if key != "path"}
        new_path: Path | None = None
        if "path" in given and body.path is not None:
            candidate = normalise_path(body.path)
            self.folders.check(candidate)
            require_folder(candidate)
            if str(candidate) != current.path:
                new_path = candidate
                fields["path"] = str(candidate)
                if "is_removable" not in given:
                    fields["is_removable"] = detect_removable(candidate)
        if "name" in fields:
            fields["name"] = ((fields["name"] or "").strip()
                              or _default_name(new_path or Path(current.path)))
        changes: dict[str, Any] = {}
        try:
            with transaction(self.db) as session:
                directory = _load(session, current.id)
                if new_path is not None:
                    if self._scan_busy(directory):
                        raise Conflict("A scan of this directory is in progress; cancel it "
                                       "before moving the folder")
                    _overlap_check(session, new_path, exclude_id=directory.id)
                    clashes = repo.relocation_collisions(session, directory.id, str(new_path))
                    if clashes:
                        raise Conflict(f"Cannot move the library folder to {new_path}: "
                                       f"{clashes} track(s) of other library entries already "
                                       "use those paths")
                    repo.relocate_tracks(session, directory.id, str(new_path))
                    fields["is_available"] = True
                changes = {key: value for key, value in fields.items()
                           if getattr(directory, key) != value}
                repo.update_fields(session, directory, changes)
        except IntegrityError:
            raise Conflict(f"Cannot move the library folder to {new_path}: it conflicts with "
                           "existing library entries") from None
        if new_path is not None:
            self._verify_tracks(current.id)
        directory = self.get_directory(current.id)
        if changes:
            self.bus.send(Event.DIRECTORY_UPDATED, {
                "directoryId": directory.id, "changes": changes,
                "directory": directory_dict(directory)})
        return directory

    def delete_directory(self, directory_id: str, *,
                         delete_tracks: bool = False) -> dict[str, Any]:
        """Remove a library folder from the library (files are never touched).

        Sends ``library:directory:removed`` (the watcher stops watching it).

        Parameters
        ----------
        delete_tracks : bool
            True deletes the folder's track rows (with their hot cues and playlist
            places); False keeps them, detached (see the module notes).

        Returns
        -------
        dict
            ``{"id", "path", "tracks_deleted", "tracks_kept"}``.

        Raises
        ------
        NotFound
            Unknown id (404).
        Conflict
            A scan of the folder is running (409).
        """
        directory = self.get_directory(directory_id)
        if self._scan_busy(directory):
            raise Conflict("A scan of this directory is in progress; cancel it before "
                           "removing the directory")
        with transaction(self.db) as session:
            row = _load(session, directory.id)
            touched: list[str] = []
            if delete_tracks:  # playlist entries go first, their gaps closed
                touched = playlist_repo.drop_directory_entries(session, row.id)[1]
                deleted, kept = repo.delete_tracks(session, row.id), 0
            else:
                deleted, kept = 0, repo.detach_tracks(session, row.id)
            repo.delete_directory(session, row)
        log.info("library directory removed: %s (%d tracks deleted, %d kept)", directory.path,
                 deleted, kept)
        self.bus.send(Event.DIRECTORY_REMOVED, {
            "directoryId": directory.id, "path": directory.path, "name": directory.name,
            "tracksDeleted": deleted, "tracksKept": kept})
        send_playlist_updates(self.bus, touched, "track:deleted")
        return {"id": directory.id, "path": directory.path, "tracks_deleted": deleted,
                "tracks_kept": kept}

    # ----------------------------------------------------------------------- availability

    def _sync_availability(self, directory_id: str, *, restore_all: bool
                           ) -> AvailabilityResult:
        """Probe the folder, record availability, mark/restore tracks, send media events.

        Parameters
        ----------
        restore_all : bool
            Also look for the files of missing tracks when the folder was already
            available (``/restore``); otherwise only when it comes back.
        """
        directory = self.get_directory(directory_id)
        available = folder_available(directory)
        found: list[str] = []
        if available and (restore_all or not directory.is_available):
            with self.db() as session:
                missing = repo.track_paths(session, directory.id, missing=True)
            found = [tid for tid, path in missing if os.path.isfile(path)]
        with transaction(self.db) as session:
            row = _load(session, directory.id)
            was = row.is_available
            marked = (repo.mark_all_missing(session, row.id, utcnow())
                      if was and not available else 0)
            restored = scan_repo.restore_tracks(session, found)
            if was != available:
                repo.update_fields(session, row, {"is_available": available})
            repo.refresh_stats(session, [row.id])
        result = AvailabilityResult(self.get_directory(directory.id), was != available,
                                    marked, restored)
        payload = {"directoryId": directory.id, "path": directory.path,
                   "name": directory.name}
        if result.changed and not available:
            log.info("library directory disconnected: %s (%d tracks missing)",
                     directory.path, marked)
            self.bus.send(Event.MEDIA_DISCONNECTED, {
                **payload, "tracksMarkedMissing": marked, "tracksMissing": marked,
                "directory": directory_dict(result.directory)})
        elif result.changed:
            log.info("library directory connected: %s (%d tracks restored)", directory.path,
                     restored)
            self.bus.send(Event.MEDIA_CONNECTED, {
                **payload, "tracksRestored": restored,
                "directory": directory_dict(result.directory)})
        elif restored:
            self.bus.send(Event.DIRECTORY_UPDATED, {
                "directoryId": directory.id, "changes": {"tracks_restored": restored},
                "directory": directory_dict(result.directory)})
        return result

    def check_availability(self, directory_id: str) -> LibraryDirectory:
        """Re-check whether the folder is reachable and record the change.

        On disconnection the folder is marked unavailable, its tracks missing in
        one UPDATE and ``library:media:disconnected`` sent (its scan is cancelled
        and its watch dropped by those services); on reconnection it is marked
        available, its files found again are restored and
        ``library:media:connected`` sent (the watcher takes it back and queues a
        ``hybrid`` rescan).

        Raises
        ------
        NotFound
            Unknown id (404).
        """
        return self._sync_availability(directory_id, restore_all=False).directory

    def check_all_availability(self) -> list[LibraryDirectory]:
        """:meth:`check_availability` of every directory, in list order."""
        out = []
        for directory in self.list_directories():
            try:
                out.append(self.check_availability(directory.id))
            except NotFound:  # removed meanwhile
                continue
        return out

    def restore_missing(self, directory_id: str) -> dict[str, Any]:
        """Look for the file of every missing track of the folder; restore those found.

        Returns
        -------
        dict
            ``{"restored", "still_missing", "available", "tracksRestored",
            "totalMissing", "message"}`` (the last three as the original).

        Raises
        ------
        NotFound
            Unknown id (404).
        """
        result = self._sync_availability(directory_id, restore_all=True)
        still = result.directory.total_missing
        return {"restored": result.restored, "still_missing": still,
                "available": result.directory.is_available,
                "tracksRestored": result.restored, "totalMissing": result.restored + still,
                "message": f"Restored {result.restored} tracks"}

    # ----------------------------------------------------------------------- browsing

    def browse(self, directory_id: str, raw_path: str | None) -> dict[str, Any]:
        """Sub-folders and tracks at one level of a library folder
        (see :func:`taperoom.library.browsing.browse`).

        Raises
        ------
        NotFound
            Unknown directory id, or a sub-folder that is neither on disk nor known
            from the database (404).
        InvalidInput
            ``Invalid path`` (400).
        Conflict
            The folder is refused by the folder policy (a row an older version
            accepted, e.g. ``/etc``) (409).
        """
        browsing.relative_folder(raw_path)  # a bad path is a 400 before anything else
        directory = self.get_directory(directory_id)
        refused = self.folders.refusal(Path(directory.path))
        if refused is not None:  # a row from before the folder policy: do not list /etc
            raise Conflict(refused)
        return browsing.browse(self.db, directory, raw_path)

    def server_folders(self, raw_path: str | None) -> dict[str, Any]:
        """One level of the server's folders, each with the folder policy's verdict,
        for choosing a new library folder (see
        :func:`taperoom.library.browsing.server_folders`).

        Raises
        ------
        InvalidInput
            ``Invalid path``: not absolute (400).
        NotFound
            ``Folder not found`` (404).
        """
        return browsing.server_folders(raw_path, self.folders.refusal)

    # ----------------------------------------------------------------------- missing media

    def missing_tracks(self, directory_id: str, *, page: int = 1,
                       limit: int = 50) -> tuple[list[Track], int]:
        """One page of the folder's missing tracks, longest missing first, and their total.

        Raises
        ------
        NotFound
            Unknown id (404).
        """
        with self.db() as session:
            directory = _load(session, directory_id)
            return repo.missing_page(session, directory.id, offset=(page - 1) * limit,
                                     limit=limit)

    def missing_stats(self, directory_id: str) -> dict[str, Any]:
        """Figures of the folder's missing tracks.

        Returns
        -------
        dict
            ``total_missing``, ``missing_over_7_days``, ``missing_over_30_days``,
            ``missing_over_90_days``, ``oldest_missing_since``, ``newest_missing_since``
            and ``oldest_missing`` (ISO or None; the last as the original),
            ``total_size`` (bytes), ``total_duration`` (s), ``is_available``.

        Raises
        ------
        NotFound
            Unknown id (404).
        """
        now = utcnow()
        buckets = {f"missing_over_{days}_days": now - timedelta(days=days)
                   for days in MISSING_AGE_BUCKETS}
        with self.db() as session:
            directory = _load(session, directory_id)
            figures = repo.missing_stats(session, directory.id, buckets)
        oldest = iso(figures["oldest_missing_since"])
        return {**figures, "oldest_missing_since": oldest, "oldest_missing": oldest,
                "newest_missing_since": iso(figures["newest_missing_since"]),
                "is_available": directory.is_available}

    def cleanup(self, directory_id: str, request: CleanupRequest | None = None
                ) -> dict[str, Any]:
        """Delete the folder's tracks missing for longer than N days (database rows only).

        Parameters
        ----------
        request : CleanupRequest, optional
            ``remove_missing_older_than_days`` (N, default 30), ``keep_playlists_intact``
            (default true: tracks in any playlist are kept) and ``backup_metadata``
            (default true: a JSON export of the removed rows is written first, see
            :func:`taperoom.library.cleanup.write_backup`).

        Returns
        -------
        dict
            ``{"removed", "kept_in_playlists", "candidates", "backup_path",
            "remove_missing_older_than_days", "tracksRemoved", "metadataBackedUp",
            "backupPath", "message"}`` (the last four as the original).

        Raises
        ------
        NotFound
            Unknown id (404).
        TaperoomError
            The backup could not be written (500); nothing is deleted then.
        """
        request = request or CleanupRequest()
        now = utcnow()
        before = now - timedelta(days=request.remove_missing_older_than_days)
        with transaction(self.db) as session:
            directory = _load(session, directory_id)
            candidates = repo.cleanup_candidates(session, directory.id, before)
            protected = (repo.in_any_playlist(session, [t.id for t in candidates])
                         if request.keep_playlists_intact else set())
            doomed = [t for t in candidates if t.id not in protected]
            backup = (write_backup(self.backup_dir, session, directory, doomed, request, now)
                      if doomed and request.backup_metadata else None)
            touched = playlist_repo.drop_track_entries(session, [t.id for t in doomed])[1]
            removed = repo.delete_tracks_by_ids(session, [t.id for t in doomed])
            repo.refresh_stats(session, [directory.id])
        if removed:
            log.info("cleanup of %s removed %d missing tracks (backup %s)", directory.path,
                     removed, backup)
            self.bus.send(Event.DIRECTORY_UPDATED, {
                "directoryId": directory.id, "changes": {"tracks_removed": removed},
                "directory": directory_dict(self.get_directory(directory.id))})
        send_playlist_updates(self.bus, touched, "track:deleted")
        path = str(backup) if backup else None
        return {"removed": removed, "kept_in_playlists": len(protected),
                "candidates": len(candidates), "backup_path": path,
                "remove_missing_older_than_days": request.remove_missing_older_than_days,
                "tracksRemoved": removed, "metadataBackedUp": backup is not None,
                "backupPath": path,
                "message": f"Removed {removed} missing tracks" if removed
                else "No tracks to cleanup"}

    # ----------------------------------------------------------------------- statistics

    def directory_stats(self, directory_id: str) -> dict[str, Any]:
        """Statistics of one library folder (``GET /:id/stats``).

        Returns
        -------
        dict
            ``directory_id``, ``name``, ``path``, ``is_available``, ``scan_status``,
            ``last_scan``, ``total_files`` (audio files seen by the last scan), track
            counts (``total_tracks`` = all rows, ``present_tracks``,
            ``missing_tracks``, ``analyzed``, ``unanalyzed``, ``with_bpm``,
            ``with_key``, ``hashed``, ``with_artwork``, ``scan_errors``,
            ``in_playlists``, ``with_hot_cues``), ``total_size``/``present_size``
            (bytes), ``total_duration``/``average_duration`` (s), ``oldest_track_date``,
            ``newest_track_date`` and ``formats``: ``[{format, count, total_size,
            total_duration}]`` by file extension, most frequent first.

        Raises
        ------
        NotFound
            Unknown id (404).
        """
        with self.db() as session:
            directory = _load(session, directory_id)
            figures = repo.summary(session, directory.id)
            rows = repo.format_rows(session, directory.id)
        formats: dict[str, dict[str, Any]] = {}
        for file_path, codec, file_size, duration in rows:
            ext = Path(file_path).suffix.lower().lstrip(".") or (codec or "unknown")
            entry = formats.setdefault(ext, {"format": ext, "count": 0, "total_size": 0,
                                             "total_duration": 0.0})
            entry["count"] += 1
            entry["total_size"] += file_size or 0
            entry["total_duration"] += duration or 0.0
        total = figures["total_tracks"]
        return {
            "directory_id": directory.id, "name": directory.name, "path": directory.path,
            "is_available": directory.is_available, "scan_status": directory.scan_status,
            "last_scan": iso(directory.last_scan), "total_files": directory.total_files,
            **figures,
            "unanalyzed": total - figures["analyzed"],
            "average_duration": figures["total_duration"] / total if total else 0.0,
            "oldest_track_date": iso(figures["oldest_track_date"]),
            "newest_track_date": iso(figures["newest_track_date"]),
            "formats": sorted(formats.values(), key=lambda f: (-f["count"], f["format"])),
        }
