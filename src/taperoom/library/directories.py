"""Library folders: add, change, remove, availability, browsing and missing media.

A *library directory* is a root folder of the DJ's music (an internal folder, a
USB stick, a network share). This module holds the behaviour behind
``/api/library/directories`` (contracts/library.md §2); the router only parses
the request and wraps the results in the contract's envelopes.

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
* **Removable media** (``is_removable``), when the client does not say: a folder
  below ``/media``, ``/mnt``, ``/run/media`` (Linux mount roots) or ``/Volumes``
  (macOS), or on another device (``st_dev``) than both the user's home and the
  file-system root, counts as removable. The client may always override it.
  Removable folders that exist but are empty while the database knows tracks in
  them are treated as unavailable: that is an unmounted mount point.
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

import base64
import json
import logging
import os
import re
import stat
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.exc import IntegrityError

from taperoom.db import transaction
from taperoom.errors import Conflict, InvalidInput, NotFound, TaperoomError
from taperoom.events import Event
from taperoom.library import schemas
from taperoom.library.models import LibraryDirectory, Track, new_id, utcnow
from taperoom.library.repository import directories as repo
from taperoom.library.repository import scan as scan_repo

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from taperoom.library.context import LibraryContext

log = logging.getLogger(__name__)

#: Mount roots of removable and network media: udisks (``/media``, ``/run/media``),
#: the traditional ``/mnt``, and macOS (``/Volumes``).
REMOVABLE_ROOTS: tuple[Path, ...] = (Path("/media"), Path("/mnt"), Path("/run/media"),
                                     Path("/Volumes"))
#: Most scan or exclude patterns a directory may have, and longest pattern.
MAX_PATTERNS = 100
MAX_PATTERN_LENGTH = 512
#: Thresholds (days) reported by the missing-track statistics, as the original.
MISSING_AGE_BUCKETS = (7, 30, 90)

NOT_FOUND = "Library directory not found"
INVALID_PATH = "Invalid path"
_TRUE = frozenset({"true", "1", "yes", "on", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "off", "n", "f"})
_DRIVE = re.compile(r"^[A-Za-z]:")


# --------------------------------------------------------------------------- request bodies


def _check_patterns(value: list[str] | None) -> list[str] | None:
    """Validate glob patterns (``*.mp3``, ``**/Samples/**``, ``[!.]*``)."""
    if value is None:
        return None
    if len(value) > MAX_PATTERNS:
        raise ValueError(f"at most {MAX_PATTERNS} patterns are allowed")
    out: list[str] = []
    for pattern in value:
        pattern = pattern.strip()
        if not pattern:
            raise ValueError("a pattern must not be empty")
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise ValueError(f"a pattern must be at most {MAX_PATTERN_LENGTH} characters")
        if any(ord(c) < 32 or ord(c) == 127 for c in pattern):
            raise ValueError(f"pattern {pattern!r} contains a control character")
        _check_brackets(pattern)
        if pattern not in out:
            out.append(pattern)
    return out


def _check_brackets(pattern: str) -> None:
    """Reject a ``[`` character class without its closing ``]`` (fnmatch syntax)."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "[":
            j = i + 1
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                raise ValueError(f"pattern {pattern!r} has an unclosed '['")
            i = j
        i += 1


def _check_path_text(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("path must not contain a NUL character")
    return value


class DirectoryCreate(BaseModel):
    """Body of ``POST /api/library/directories``.

    Unknown fields are ignored (as the original's ``stripUnknown``).
    ``is_removable`` omitted (or null) means: detect it (:func:`detect_removable`).
    ``max_depth`` is -1 for unlimited, else the number of folder levels below the root.
    """

    model_config = ConfigDict(extra="ignore")

    path: str = Field(min_length=1, max_length=4096)
    name: str | None = Field(None, max_length=255)
    is_active: bool = True
    is_removable: bool | None = None
    recursive_scan: bool = True
    max_depth: int = Field(-1, ge=-1, le=1000)
    scan_patterns: list[str] | None = None
    exclude_patterns: list[str] | None = None
    follow_symlinks: bool = False
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)

    _patterns = field_validator("scan_patterns", "exclude_patterns")(_check_patterns)
    _path = field_validator("path")(_check_path_text)
    _name = field_validator("name")(schemas.no_nul)


#: Fields of a directory that ``PUT`` may change.
UPDATABLE = ("path", "name", "is_active", "is_removable", "recursive_scan", "max_depth",
             "scan_patterns", "exclude_patterns", "follow_symlinks", "priority")
_NOT_NULL = frozenset({"path", "is_active", "is_removable", "recursive_scan", "max_depth",
                       "follow_symlinks", "priority"})


class DirectoryUpdate(BaseModel):
    """Body of ``PUT /api/library/directories/:id``: any subset of :data:`UPDATABLE`.

    Read-only fields a client may echo back (``id``, ``is_available``, the
    counters, ...) are ignored. ``name: null`` resets the name to the folder's;
    ``scan_patterns``/``exclude_patterns: null`` clear them; other fields may not
    be null.
    """

    model_config = ConfigDict(extra="ignore")

    path: str | None = Field(None, min_length=1, max_length=4096)
    name: str | None = Field(None, max_length=255)
    is_active: bool | None = None
    is_removable: bool | None = None
    recursive_scan: bool | None = None
    max_depth: int | None = Field(None, ge=-1, le=1000)
    scan_patterns: list[str] | None = None
    exclude_patterns: list[str] | None = None
    follow_symlinks: bool | None = None
    priority: int | None = Field(None, ge=-1_000_000, le=1_000_000)

    _patterns = field_validator("scan_patterns", "exclude_patterns")(_check_patterns)
    _path = field_validator("path")(_check_path_text)
    _name = field_validator("name")(schemas.no_nul)

    @model_validator(mode="after")
    def _no_nulls(self) -> DirectoryUpdate:
        for name in sorted(self.model_fields_set & _NOT_NULL):
            if getattr(self, name) is None:
                raise ValueError(f"{name} must not be null")
        return self


class CleanupRequest(BaseModel):
    """Body of ``POST /:id/cleanup`` (all optional; an absent body means the defaults)."""

    model_config = ConfigDict(extra="ignore")

    remove_missing_older_than_days: float = Field(30, ge=0, le=36_500)
    keep_playlists_intact: bool = True
    backup_metadata: bool = True


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


def detect_removable(path: Path, *, home: Path | None = None,
                     roots: Sequence[Path] = REMOVABLE_ROOTS) -> bool:
    """Guess whether a folder lives on removable or network media.

    Parameters
    ----------
    path : Path
        Absolute, resolved folder path.
    home : Path, optional
        The user's home folder (default :meth:`Path.home`).
    roots : sequence of Path
        Mount roots of removable media (default :data:`REMOVABLE_ROOTS`).

    Returns
    -------
    bool
        True when `path` is below one of `roots`, or when its device differs from
        the devices of both `home` and the file-system root (an external disk,
        a network share). False when the folder cannot be inspected.
    """
    if any(path == root or path.is_relative_to(root) for root in roots):
        return True
    try:
        device = path.stat().st_dev
        home_device = (home or Path.home()).stat().st_dev
        root_device = Path(path.anchor or os.sep).stat().st_dev
    except (OSError, RuntimeError, ValueError):
        return False
    return device not in (home_device, root_device)


def folder_available(directory: LibraryDirectory) -> bool:
    """Whether a library folder is reachable now.

    True when its path is a readable, listable directory, except for a removable
    folder that is empty while the database knows tracks in it (an unmounted
    mount point such as ``/mnt/usb``), which counts as unavailable.
    """
    path = Path(directory.path)
    try:
        st = path.stat()
        if not stat.S_ISDIR(st.st_mode) or not os.access(path, os.R_OK | os.X_OK):
            return False
        if directory.is_removable and (directory.total_tracks or directory.total_missing):
            with os.scandir(path) as entries:
                if next(entries, None) is None:
                    return False
    except (OSError, ValueError):
        return False
    return True


def _call(ctx: LibraryContext, service: str, method: str, *args: Any) -> Any:
    """Call ``ctx.<service>.<method>(*args)`` if it exists; never raise.

    Used for the watcher (``watch``/``unwatch``) and the scan manager
    (``is_scanning``/``cancel``/``start``): the folder change is already done,
    and their refusals (not watched, already scanning, ...) must not undo it.
    """
    fn = getattr(getattr(ctx, service, None), method, None)
    if fn is None:
        return None
    try:
        return fn(*args)
    except TaperoomError as exc:
        log.debug("%s.%s%s: %s", service, method, args, exc)
    except Exception:
        log.warning("%s.%s%s failed", service, method, args, exc_info=True)
    return None


def _watch_again(ctx: LibraryContext, directory: LibraryDirectory) -> None:
    """Drop the folder's watch and, when watching is enabled and it is active, watch it anew."""
    _call(ctx, "watcher", "unwatch", directory.id)
    if ctx.settings.file_watcher_enabled and directory.is_active:
        _call(ctx, "watcher", "watch", directory.id)


def _scan_busy(ctx: LibraryContext, directory: LibraryDirectory) -> bool:
    """Whether a scan of the folder is queued or running."""
    return directory.scan_status == "scanning" or bool(
        _call(ctx, "scans", "is_scanning", directory.id))


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


def _verify_tracks(ctx: LibraryContext, directory_id: str) -> tuple[int, int]:
    """Check every track of the folder on disk; mark gone ones missing, restore found ones.

    Returns
    -------
    (int, int)
        Tracks newly marked missing, tracks restored.
    """
    with ctx.sessions() as session:
        present = repo.track_paths(session, directory_id, missing=False)
        missing = repo.track_paths(session, directory_id, missing=True)
    gone = [tid for tid, path in present if not os.path.isfile(path)]
    back = [tid for tid, path in missing if os.path.isfile(path)]
    with transaction(ctx.sessions) as session:
        marked = scan_repo.mark_missing(session, gone, utcnow())
        restored = scan_repo.restore_tracks(session, back)
        repo.refresh_stats(session, [directory_id])
    return marked, restored


# --------------------------------------------------------------------------- CRUD


def get_directory(ctx: LibraryContext, directory_id: str) -> LibraryDirectory:
    """The directory with this id.

    Raises
    ------
    NotFound
        Unknown or malformed id.
    """
    with ctx.sessions() as session:
        return _load(session, directory_id)


def list_directories(ctx: LibraryContext, *, is_active: bool | None = None,
                     is_available: bool | None = None) -> list[LibraryDirectory]:
    """Directories (highest priority first, then by name), optionally filtered by flags."""
    with ctx.sessions() as session:
        return repo.list_directories(session, is_active=is_active, is_available=is_available)


def create_directory(ctx: LibraryContext, body: DirectoryCreate) -> LibraryDirectory:
    """Add a library folder; sends ``library:directory:added`` and starts watching it.

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
    ctx.folders.check(path)
    require_folder(path)
    removable = detect_removable(path) if body.is_removable is None else body.is_removable
    name = (body.name or "").strip() or _default_name(path)
    try:
        with transaction(ctx.sessions) as session:
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
        _verify_tracks(ctx, directory.id)
        directory = get_directory(ctx, directory.id)
    log.info("library directory added: %s (%s)", directory.name, directory.path)
    ctx.bus.send(Event.DIRECTORY_ADDED, {"directoryId": directory.id,
                                         "directory": schemas.directory_dict(directory)})
    if ctx.settings.file_watcher_enabled and directory.is_active:
        _call(ctx, "watcher", "watch", directory.id)
    return directory


def update_directory(ctx: LibraryContext, directory_id: str,
                     body: DirectoryUpdate) -> LibraryDirectory:
    """Change a directory's settings; a new ``path`` relocates its tracks.

    Sends ``library:directory:updated`` with ``{directoryId, changes, directory}``
    when something changed, and re-watches the folder when its path or
    ``is_active`` changed.

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
    current = get_directory(ctx, directory_id)
    given = body.model_fields_set & set(UPDATABLE)
    fields: dict[str, Any] = {key: getattr(body, key) for key in given if key != "path"}
    new_path: Path | None = None
    if "path" in given and body.path is not None:
        candidate = normalise_path(body.path)
        ctx.folders.check(candidate)
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
        with transaction(ctx.sessions) as session:
            directory = _load(session, current.id)
            if new_path is not None:
                if _scan_busy(ctx, directory):
                    raise Conflict("A scan of this directory is in progress; cancel it "
                                   "before moving the folder")
                _overlap_check(session, new_path, exclude_id=directory.id)
                clashes = repo.relocation_collisions(session, directory.id, str(new_path))
                if clashes:
                    raise Conflict(f"Cannot move the library folder to {new_path}: {clashes} "
                                   "track(s) of other library entries already use those paths")
                repo.relocate_tracks(session, directory.id, str(new_path))
                fields["is_available"] = True
            changes = {key: value for key, value in fields.items()
                       if getattr(directory, key) != value}
            repo.update_fields(session, directory, changes)
    except IntegrityError:
        raise Conflict(f"Cannot move the library folder to {new_path}: it conflicts with "
                       "existing library entries") from None
    if new_path is not None:
        _verify_tracks(ctx, current.id)
    directory = get_directory(ctx, current.id)
    if changes:
        ctx.bus.send(Event.DIRECTORY_UPDATED, {
            "directoryId": directory.id, "changes": changes,
            "directory": schemas.directory_dict(directory)})
    if changes.keys() & {"path", "is_active", "recursive_scan", "follow_symlinks"}:
        _watch_again(ctx, directory)
    return directory


def delete_directory(ctx: LibraryContext, directory_id: str, *,
                     delete_tracks: bool = False) -> dict[str, Any]:
    """Remove a library folder from the library (files are never touched).

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
    directory = get_directory(ctx, directory_id)
    if _scan_busy(ctx, directory):
        raise Conflict("A scan of this directory is in progress; cancel it before removing "
                       "the directory")
    _call(ctx, "watcher", "unwatch", directory.id)
    with transaction(ctx.sessions) as session:
        row = _load(session, directory.id)
        if delete_tracks:
            deleted, kept = repo.delete_tracks(session, row.id), 0
        else:
            deleted, kept = 0, repo.detach_tracks(session, row.id)
        repo.delete_directory(session, row)
    log.info("library directory removed: %s (%d tracks deleted, %d kept)", directory.path,
             deleted, kept)
    ctx.bus.send(Event.DIRECTORY_REMOVED, {
        "directoryId": directory.id, "path": directory.path, "name": directory.name,
        "tracksDeleted": deleted, "tracksKept": kept})
    return {"id": directory.id, "path": directory.path, "tracks_deleted": deleted,
            "tracks_kept": kept}


# --------------------------------------------------------------------------- availability


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


def _sync_availability(ctx: LibraryContext, directory_id: str, *,
                       restore_all: bool) -> AvailabilityResult:
    """Probe the folder, record availability, mark/restore tracks, send media events.

    Parameters
    ----------
    restore_all : bool
        Also look for the files of missing tracks when the folder was already
        available (``/restore``); otherwise only when it comes back.
    """
    directory = get_directory(ctx, directory_id)
    available = folder_available(directory)
    found: list[str] = []
    if available and (restore_all or not directory.is_available):
        with ctx.sessions() as session:
            missing = repo.track_paths(session, directory.id, missing=True)
        found = [tid for tid, path in missing if os.path.isfile(path)]
    with transaction(ctx.sessions) as session:
        row = _load(session, directory.id)
        was = row.is_available
        marked = repo.mark_all_missing(session, row.id, utcnow()) if was and not available else 0
        restored = scan_repo.restore_tracks(session, found)
        if was != available:
            repo.update_fields(session, row, {"is_available": available})
        repo.refresh_stats(session, [row.id])
    result = AvailabilityResult(get_directory(ctx, directory.id), was != available,
                                marked, restored)
    payload = {"directoryId": directory.id, "path": directory.path, "name": directory.name}
    if result.changed and not available:
        log.info("library directory disconnected: %s (%d tracks missing)", directory.path,
                 marked)
        _call(ctx, "scans", "cancel", directory.id)
        _call(ctx, "watcher", "unwatch", directory.id)
        ctx.bus.send(Event.MEDIA_DISCONNECTED, {
            **payload, "tracksMarkedMissing": marked, "tracksMissing": marked,
            "directory": schemas.directory_dict(result.directory)})
    elif result.changed:
        log.info("library directory connected: %s (%d tracks restored)", directory.path,
                 restored)
        ctx.bus.send(Event.MEDIA_CONNECTED, {
            **payload, "tracksRestored": restored,
            "directory": schemas.directory_dict(result.directory)})
        if ctx.settings.file_watcher_enabled and result.directory.is_active:
            _watch_again(ctx, result.directory)
            _call(ctx, "scans", "start", directory.id, "hybrid", "high")
    elif restored:
        ctx.bus.send(Event.DIRECTORY_UPDATED, {
            "directoryId": directory.id, "changes": {"tracks_restored": restored},
            "directory": schemas.directory_dict(result.directory)})
    return result


def check_availability(ctx: LibraryContext, directory_id: str) -> LibraryDirectory:
    """Re-check whether the folder is reachable; see :func:`_sync_availability`.

    Raises
    ------
    NotFound
        Unknown id (404).
    """
    return _sync_availability(ctx, directory_id, restore_all=False).directory


def check_all_availability(ctx: LibraryContext) -> list[LibraryDirectory]:
    """:func:`check_availability` of every directory, in list order."""
    out = []
    for directory in list_directories(ctx):
        try:
            out.append(check_availability(ctx, directory.id))
        except NotFound:  # removed meanwhile
            continue
    return out


def restore_missing(ctx: LibraryContext, directory_id: str) -> dict[str, Any]:
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
    result = _sync_availability(ctx, directory_id, restore_all=True)
    still = result.directory.total_missing
    return {"restored": result.restored, "still_missing": still,
            "available": result.directory.is_available,
            "tracksRestored": result.restored, "totalMissing": result.restored + still,
            "message": f"Restored {result.restored} tracks"}


# --------------------------------------------------------------------------- browsing


def relative_folder(raw: str | None) -> str:
    """Validate and normalise a sub-folder path relative to a library root.

    Returns
    -------
    str
        ``"a/b"`` form (no leading, trailing or doubled slashes, no ``.``); ``""``
        for the root.

    Raises
    ------
    InvalidInput
        ``Invalid path`` for absolute paths, drive letters, ``..`` components or
        NUL characters (HTTP 400).
    """
    if raw is None:
        return ""
    if "\x00" in raw or raw.startswith(("/", "\\")) or _DRIVE.match(raw):
        raise InvalidInput(INVALID_PATH)
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise InvalidInput(INVALID_PATH)
    return "/".join(parts)


def _has_subfolder(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return any(not e.name.startswith(".") and e.is_dir() for e in entries)
    except OSError:
        return False


def _disk_folders(target: Path, real_root: Path, follow_symlinks: bool) -> dict[str, Path]:
    """Visible sub-folders of `target` on disk that stay inside the library root."""
    out: dict[str, Path] = {}
    try:
        with os.scandir(target) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if not entry.is_dir():
                        continue
                    if entry.is_symlink():
                        if not follow_symlinks:
                            continue
                        if not Path(entry.path).resolve().is_relative_to(real_root):
                            continue
                except OSError:
                    continue
                out[entry.name] = Path(entry.path)
    except OSError:
        return {}
    return out


def browse(ctx: LibraryContext, directory_id: str, raw_path: str | None) -> dict[str, Any]:
    """Sub-folders and tracks at one level of a library folder.

    Parameters
    ----------
    raw_path : str or None
        Sub-folder relative to the library root (``"Artist/Album"``); None or
        empty for the root.

    Returns
    -------
    dict
        ``libraryDirectoryId``, ``path``, ``absolutePath``, ``parentPath`` (None at
        the root), ``breadcrumbs`` ``[{name, path}]``, ``available`` (the folder is
        on disk), ``folders`` ``[{name, relativePath, trackCount, totalSize (bytes),
        missingCount, hasSubfolders, available}]`` (figures cover everything below
        the folder), ``tracks`` (track objects at this level) and ``stats``
        ``{totalTracks, totalSize, missingTracks, folderCount, trackCount}``.

    Raises
    ------
    NotFound
        Unknown directory id, or a sub-folder that is neither on disk nor known
        from the database (404).
    InvalidInput
        ``Invalid path``: traversal, absolute path, or a symlink leading outside
        the library folder (400).
    Conflict
        The folder is refused by the folder policy (a row an older version
        accepted, e.g. ``/etc``) (409).
    """
    rel = relative_folder(raw_path)
    directory = get_directory(ctx, directory_id)
    refused = ctx.folders.refusal(Path(directory.path))
    if refused is not None:  # a row from before the folder policy: do not list /etc
        raise Conflict(refused)
    root = Path(directory.path)
    target = root / rel if rel else root
    try:
        real_root = root.resolve()
        real_target = target.resolve()
    except (OSError, RuntimeError):
        raise InvalidInput(INVALID_PATH) from None
    if rel and not real_target.is_relative_to(real_root):
        raise InvalidInput(INVALID_PATH)
    try:
        on_disk = real_target.is_dir()
    except OSError:
        on_disk = False

    with ctx.sessions() as session:
        rows = repo.tracks_below(session, directory.id, rel)
        depth = len(rel) + 1 if rel else 0
        folders: dict[str, dict[str, Any]] = {}
        here: list[str] = []
        total = size = missing = 0
        for track_id, relative_path, file_size, is_missing in rows:
            rest = (relative_path or "")[depth:]
            if is_missing:
                missing += 1
            else:
                total += 1
                size += file_size or 0
            if "/" not in rest:
                here.append(track_id)
                continue
            child, below = rest.split("/", 1)
            info = folders.setdefault(child, {"trackCount": 0, "totalSize": 0,
                                              "missingCount": 0, "hasSubfolders": False})
            if is_missing:
                info["missingCount"] += 1
            else:
                info["trackCount"] += 1
                info["totalSize"] += file_size or 0
            if "/" in below:
                info["hasSubfolders"] = True
        if rel and not on_disk and not rows:
            raise NotFound(f"Folder not found: {rel}")
        tracks = repo.tracks_by_ids(session, here)

    disk = _disk_folders(real_target, real_root, directory.follow_symlinks) if on_disk else {}
    listing = []
    for name in sorted(set(folders) | set(disk), key=lambda n: (n.casefold(), n)):
        info = folders.get(name, {"trackCount": 0, "totalSize": 0, "missingCount": 0,
                                  "hasSubfolders": False})
        if name in disk and not info["hasSubfolders"]:
            info["hasSubfolders"] = _has_subfolder(disk[name])
        listing.append({"name": name, "relativePath": f"{rel}/{name}" if rel else name,
                        **info, "available": name in disk})
    tracks.sort(key=lambda t: ((t.relative_path or t.file_path).casefold(), t.file_path))
    crumbs = [{"name": directory.name or _default_name(root), "path": ""}]
    so_far: list[str] = []
    for part in rel.split("/") if rel else []:
        so_far.append(part)
        crumbs.append({"name": part, "path": "/".join(so_far)})
    return {
        "libraryDirectoryId": directory.id, "path": rel, "absolutePath": str(target),
        "parentPath": None if not rel else rel.rpartition("/")[0],
        "breadcrumbs": crumbs, "available": on_disk, "folders": listing,
        "tracks": [schemas.track_dict(t) for t in tracks],
        "stats": {"totalTracks": total, "totalSize": size, "missingTracks": missing,
                  "folderCount": len(listing), "trackCount": len(tracks)},
    }


# --------------------------------------------------------------------------- missing media


def missing_tracks(ctx: LibraryContext, directory_id: str, *, page: int = 1,
                   limit: int = 50) -> tuple[list[Track], int]:
    """One page of the folder's missing tracks, longest missing first, and their total.

    Raises
    ------
    NotFound
        Unknown id (404).
    """
    with ctx.sessions() as session:
        directory = _load(session, directory_id)
        return repo.missing_page(session, directory.id, offset=(page - 1) * limit, limit=limit)


def missing_stats(ctx: LibraryContext, directory_id: str) -> dict[str, Any]:
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
    with ctx.sessions() as session:
        directory = _load(session, directory_id)
        figures = repo.missing_stats(session, directory.id, buckets)
    oldest = schemas.iso(figures["oldest_missing_since"])
    return {**figures, "oldest_missing_since": oldest, "oldest_missing": oldest,
            "newest_missing_since": schemas.iso(figures["newest_missing_since"]),
            "is_available": directory.is_available}


def backup_folder(ctx: LibraryContext) -> Path:
    """Where cleanup backups go: ``backups/`` beside the database file."""
    return Path(ctx.settings.database_path).expanduser().resolve().parent / "backups"


def _b64(blob: bytes | None) -> str | None:
    return base64.b64encode(blob).decode("ascii") if blob is not None else None


def _write_backup(ctx: LibraryContext, session: Session, directory: LibraryDirectory,
                  tracks: list[Track], request: CleanupRequest, now: datetime) -> Path:
    """Write the JSON export of `tracks` (atomically) and return its path.

    The file holds, per track, the full track object (binary beat data as base64),
    its hot cues and its playlist places.
    """
    ids = [t.id for t in tracks]
    cues = repo.hot_cues_of(session, ids)
    places = repo.memberships_of(session, ids)
    exported = []
    for track in tracks:
        item = schemas.track_dict(track)
        item["beats_data"] = _b64(track.beats_data)
        item["downbeats_data"] = _b64(track.downbeats_data)
        item["hot_cues"] = [schemas.hot_cue_dict(c) for c in cues.get(track.id, [])]
        item["playlists"] = [
            {"playlist_id": playlist.id, "playlist_name": playlist.name,
             "playlist_type": playlist.type, **schemas.row_dict(entry)}
            for entry, playlist in places.get(track.id, [])]
        exported.append(item)
    document = {
        "format": "taperoom.missing-tracks-backup", "version": 1,
        "created_at": schemas.iso(now),
        "library_directory": {"id": directory.id, "name": directory.name,
                              "path": directory.path},
        "criteria": request.model_dump(exclude={"backup_metadata"}),
        "track_count": len(exported), "tracks": exported,
    }
    folder = backup_folder(ctx)
    target = folder / f"missing-tracks-{directory.id[:8]}-{now:%Y%m%dT%H%M%S%fZ}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".backup-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(document, fh, ensure_ascii=False, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise TaperoomError(f"Could not write the metadata backup in {folder}: "
                            f"{exc.strerror or exc}") from exc
    return target


def cleanup(ctx: LibraryContext, directory_id: str,
            request: CleanupRequest | None = None) -> dict[str, Any]:
    """Delete the folder's tracks missing for longer than N days (database rows only).

    Parameters
    ----------
    request : CleanupRequest, optional
        ``remove_missing_older_than_days`` (N, default 30), ``keep_playlists_intact``
        (default true: tracks in any playlist are kept) and ``backup_metadata``
        (default true: a JSON export of the removed rows is written first).

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
    with transaction(ctx.sessions) as session:
        directory = _load(session, directory_id)
        candidates = repo.cleanup_candidates(session, directory.id, before)
        protected = (repo.in_any_playlist(session, [t.id for t in candidates])
                     if request.keep_playlists_intact else set())
        doomed = [t for t in candidates if t.id not in protected]
        backup = (_write_backup(ctx, session, directory, doomed, request, now)
                  if doomed and request.backup_metadata else None)
        removed = repo.delete_tracks_by_ids(session, [t.id for t in doomed])
        repo.refresh_stats(session, [directory.id])
    if removed:
        log.info("cleanup of %s removed %d missing tracks (backup %s)", directory.path,
                 removed, backup)
        ctx.bus.send(Event.DIRECTORY_UPDATED, {
            "directoryId": directory.id, "changes": {"tracks_removed": removed},
            "directory": schemas.directory_dict(get_directory(ctx, directory.id))})
    path = str(backup) if backup else None
    return {"removed": removed, "kept_in_playlists": len(protected),
            "candidates": len(candidates), "backup_path": path,
            "remove_missing_older_than_days": request.remove_missing_older_than_days,
            "tracksRemoved": removed, "metadataBackedUp": backup is not None,
            "backupPath": path,
            "message": f"Removed {removed} missing tracks" if removed
            else "No tracks to cleanup"}


# --------------------------------------------------------------------------- statistics


def directory_stats(ctx: LibraryContext, directory_id: str) -> dict[str, Any]:
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
    with ctx.sessions() as session:
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
        "last_scan": schemas.iso(directory.last_scan), "total_files": directory.total_files,
        **figures,
        "unanalyzed": total - figures["analyzed"],
        "average_duration": figures["total_duration"] / total if total else 0.0,
        "oldest_track_date": schemas.iso(figures["oldest_track_date"]),
        "newest_track_date": schemas.iso(figures["newest_track_date"]),
        "formats": sorted(formats.values(), key=lambda f: (-f["count"], f["format"])),
    }
