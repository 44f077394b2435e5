"""Safe file operations on tracks: move, rename and delete, one at a time per file.

Every operation follows the same steps, so that the database and the disk never
disagree:

1. validate the request against the database and the disk (404 unknown track,
   400 bad destination or name, 409 taken path, missing file or no free space);
2. take the per-file locks of the source and the target (keys of a
   :class:`~taperoom.fslock.KeyLocks` file, so they hold across the worker
   processes, and a process that dies releases its own) and re-read the track
   (a concurrent operation may just have moved it);
3. log a ``pending`` row in ``file_operations`` and send ``file_operation:started``;
4. change the disk in a way that can be undone: a rename (or hard link + unlink)
   inside one filesystem; across filesystems a copy to a hidden temporary file,
   ``fsync``, size check, then publishing it under its final name while the
   source is kept; a delete renames the file to a hidden name beside it;
5. update the database in one transaction (track location, directory counts,
   log row ``completed``), retried on a busy database;
6. if that fails, undo step 4 (move back, remove the copy, restore the name),
   mark the log row ``failed`` with the error and send ``file_operation:failed``;
   otherwise finish step 4 (unlink the source of a cross-device copy, unlink the
   hidden deleted file) and send ``file_operation:complete`` and ``track:moved``
   or ``track:deleted``.

Requests are answered synchronously with the result: a move inside one drive is
a rename, and even a cross-drive copy of a long WAV takes seconds, which HTTP
clients wait for (cross-drive copies also send ``file_operation:progress``).
The "queue" of the original design is the lock map: operations on the same file
wait for each other, in whichever worker process each request arrived;
operations on different files run in parallel. Any process may run an
operation (no hop to the leader process): the locks, the database and the
recovery of interrupted operations (which skips an operation whose locks a live
process holds) are shared by all of them.

Decisions where the contract is silent (as DJ software does it):

* ``destination_path`` of a move is a **folder** (the file keeps its name), as in
  rekordbox, Serato and Mixxx. For compatibility with clients of the original
  API, a path that ends in the track's own extension and is not an existing
  folder is taken as the full new file path. A relative path is taken inside
  the target library folder (``library_directory_id``, else the track's own).
  Missing sub-folders are created; the target must lie inside a library folder
  once symlinks are resolved, and ``..`` is refused.
* Nothing is ever overwritten (409). Too little free space for a cross-device
  copy is a 409 (:class:`InsufficientSpace`), checked before copying.
* ``new_name`` of a rename is a file name without folder. When it does not end
  in the track's extension, the extension is appended (``"Mr. Oizo - Flat Beat"``
  keeps its dot); another audio extension is refused (a rename does not convert).
  Changing only the letter case works, also on case-insensitive filesystems.
* Deleting a track whose file is already gone still removes the track (as
  rekordbox does), with a ``warning`` in the result.

Every operation stays inside its library folders, whatever happens to the disk
between the request and the change: the folder of the file and the folder of
the target are opened from their library folder one name at a time without
following symbolic links (:func:`taperoom.confined.open_folder`), and the disk
is changed only by names inside those open folders (``renameat``, ``linkat``,
``unlinkat``). A folder (or the track's file) that is a symbolic link is refused
with a 409, unless the library folder is set to ``follow_symlinks``, whose scan
follows links too. A delete also refuses (409) a file that is not the one the
scan recorded: its size or modification time (``file_size``,
``file_mtime_ns``) differ. The scan records no inode, on purpose: FAT and exFAT
drives, common on DJ USB sticks, get new inode numbers at each mount, so an
inode check would refuse every delete after a re-plug. After the file is renamed
to its hidden name, the inode is compared with the one checked, so that a file
swapped in between is put back, not deleted. Move and rename do not check the
identity: they keep the file, whatever it is, and the next scan reads it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from taperoom.confined import Folder, SymlinkRefused, open_folder, parts_inside
from taperoom.db import transaction
from taperoom.errors import Busy, Conflict, InvalidInput, NotFound, TaperoomError
from taperoom.events import Event, EventBus, send_playlist_updates
from taperoom.fslock import KeyLocks
from taperoom.library import models
from taperoom.library.recovery import DELETE_SUFFIX, PART_SUFFIX, lock_key
from taperoom.library.repository import fileops as repo
from taperoom.library.schemas import operation_dict, track_dict

log = logging.getLogger(__name__)

#: Bytes kept free on the target drive beyond the file itself.
SPACE_RESERVE = 4 * 1024 * 1024
#: Chunk size of cross-device copies (bytes).
COPY_CHUNK = 1024 * 1024
#: Seconds between ``file_operation:progress`` events of a copy.
PROGRESS_INTERVAL = 0.25
#: Attempts of the database step when the database is busy.
DB_ATTEMPTS = 3
#: Longest file name in bytes (NAME_MAX of Linux, macOS and Windows filesystems).
NAME_MAX = 255


class InsufficientSpace(Conflict):
    """The target drive lacks the free space for a copy (HTTP 409)."""


@dataclass
class _Place:
    """Where a file is on disk: a name in a folder below a library folder."""

    root: Path                  # the library folder (its own links are followed)
    folders: list[str]          # names of the folders from `root` down to the file's
    name: str
    follow_symlinks: bool = False

    @property
    def path(self) -> Path:
        return self.root.joinpath(*self.folders, self.name)

    def open(self, *, create: bool = False) -> Folder:
        """Open the file's folder inside the library folder (see :mod:`taperoom.confined`)."""
        return open_folder(self.root, self.folders, follow_symlinks=self.follow_symlinks,
                           create=create)


@dataclass
class _Plan:
    """A validated move or rename, ready to run."""

    kind: str
    track_id: str
    src: Path                   # current file path, as stored
    dst: Path                   # new file path, as it will be stored
    old_dir_id: str | None
    new_dir_id: str | None
    relative_path: str | None
    src_at: _Place
    dst_at: _Place


@dataclass
class _Opened:
    """The open folders of a plan's source and target (the target's once it exists)."""

    src: Folder
    dst: Folder | None
    stack: ExitStack = field(default_factory=ExitStack)


@dataclass
class _Relocation:
    """How to finish or undo a file relocation."""

    undo: Callable[[], None]
    finish: Callable[[], str | None] = lambda: None


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _same_inode(a: os.stat_result | None, b: os.stat_result | None) -> bool:
    return a is not None and b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _same_file_other_case(src: Folder, src_name: str, dst: Folder, dst_name: str) -> bool:
    """True when `dst_name` in `dst` names the file `src_name` of `src` itself,
    differing only in letter case (a case-insensitive filesystem)."""
    return (src_name != dst_name and src_name.casefold() == dst_name.casefold()
            and _same_inode(src.lstat(src_name), dst.lstat(dst_name)))


#: C0 controls, DEL and C1 controls (Unicode general category Cc).
_CONTROL = frozenset(map(chr, [*range(0x20), *range(0x7F, 0xA0)]))


def _check_no_controls(value: str, field_name: str) -> None:
    """Refuse control characters in a name a client gives (they break listings and
    shells, and ``\\n`` splits log lines); NUL is one of them."""
    bad = next((ch for ch in value if ch in _CONTROL), None)
    if bad is not None:
        raise InvalidInput(f"{field_name} must not contain control characters "
                           f"(found U+{ord(bad):04X})")


def _os_error(exc: OSError, what: str) -> TaperoomError:
    """The API error for a failed file-system call."""
    where = exc.filename or ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientSpace(f"{what} failed: no space left on the target drive")
    if exc.errno == errno.EEXIST:
        return Conflict(f"{what} failed: destination already exists: {where}")
    if exc.errno == errno.ENOENT:
        return Conflict(f"{what} failed: file not found: {where}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return Conflict(f"{what} failed: permission denied: {where}")
    if exc.errno == errno.ENAMETOOLONG:
        return InvalidInput(f"{what} failed: file name too long")
    return Conflict(f"{what} failed: {exc.strerror or exc}")


def _db_error(exc: SQLAlchemyError, undone: str) -> TaperoomError:
    """The API error for a failed database step (after the disk change was undone)."""
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    if isinstance(exc, IntegrityError):
        return Conflict(f"The database refused the change ({reason}); {undone}")
    if isinstance(exc, OperationalError):
        return Busy(f"The database is busy ({reason}); {undone}")
    return Conflict(f"Database update failed ({reason}); {undone}")


def check_file_name(name: str) -> str:
    """Validate a new file name (no folder) and return it without surrounding blanks.

    Raises
    ------
    InvalidInput
        Empty, ``.``/``..``, hidden (leading dot), containing ``/`` or ``\\``,
        containing a control character (C0, DEL, C1: Unicode category Cc, NUL
        included), or longer than :data:`NAME_MAX` bytes in UTF-8.
    """
    _check_no_controls(name, "new_name")
    name = name.strip()
    if not name or name in (".", ".."):
        raise InvalidInput("new_name must be a file name")
    if "/" in name or "\\" in name:
        raise InvalidInput("new_name must be a file name without folder separators")
    if name.startswith("."):
        raise InvalidInput("new_name must not start with '.' (hidden files are not scanned)")
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise InvalidInput(f"new_name is longer than {NAME_MAX} bytes")
    return name


class FileOperations:
    """Move, rename and delete track files one at a time per file.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``file_operation:*``, ``track:moved`` and ``track:deleted``.
    refusal : callable(Path) -> str or None
        The folder policy: a destination it refuses is not a place for music.
    extensions : frozenset of str
        Audio file extensions (lower case, with their dot).
    locks : KeyLocks
        The per-file locks (``DATA_DIR/locks/files.lock``), shared by every
        worker process; keys are :func:`~taperoom.library.recovery.lock_key`.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, *,
                 refusal: Callable[[Path], str | None], extensions: frozenset[str],
                 locks: KeyLocks) -> None:
        self.db = db
        self.bus = bus
        self.refusal = refusal
        self.extensions = extensions
        self.locks = locks
        self._cond = threading.Condition()
        self._running = 0
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    @contextmanager
    def _active(self, what: str) -> Iterator[None]:
        """Count a running operation; map stray disk and database errors to API errors.

        Errors of the disk change and of the final database step are handled
        (and undone) where they happen; what reaches this point failed before
        anything changed (a file vanishing while being checked, a busy database).
        """
        with self._cond:
            if self._closing:
                raise Busy("File operations are shutting down")
            self._running += 1
        try:
            yield
        except OSError as exc:
            raise _os_error(exc, what) from exc
        except SQLAlchemyError as exc:
            raise _db_error(exc, "nothing was changed") from exc
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Refuse new operations and wait (up to `timeout` s) for running ones to finish."""
        with self._cond:
            self._closing = True
            self._cond.wait_for(lambda: self._running == 0, timeout)

    # ------------------------------------------------------------------ public API

    def in_progress(self, path: str | os.PathLike[str]) -> bool:
        """True while an operation moves, renames or deletes the file at `path` (or
        moves a file to it); a file watcher can ignore such paths' events."""
        return self.locks.busy(lock_key(path))

    def move(self, track_id: str, destination_path: str,
             library_directory_id: str | None = None) -> dict[str, Any]:
        """Move a track's file into a (sub)folder of a library folder.

        Parameters
        ----------
        track_id : str
            Track UUID.
        destination_path : str
            Target folder (absolute, or relative to the target library folder); or,
            for compatibility, the full new file path ending in the track's extension.
        library_directory_id : str, optional
            Target library folder; by default the one containing an absolute
            `destination_path`, or the track's own for a relative one.

        Returns
        -------
        dict
            ``track`` (track object after the move), ``operation`` (log row, or
            None when the track already was there) and ``warning`` (str or None).

        Raises
        ------
        NotFound
            Unknown track or library folder.
        InvalidInput
            Destination outside every library folder, ``..``, a control
            character, another file type.
        Conflict
            Target exists or belongs to another track, source file missing,
            library folder unavailable, a folder on either path (or the file)
            is a symbolic link (:class:`~taperoom.confined.SymlinkRefused`), no
            free space, or a failed disk/database step (then nothing was changed).
        """
        _check_no_controls(destination_path, "destination_path")
        if ".." in Path(destination_path).parts:
            raise InvalidInput("destination_path must not contain '..'")
        return self._run_locked(
            "Move", track_id, lambda s: self._plan_move(s, track_id, destination_path,
                                                        library_directory_id))

    def rename(self, track_id: str, new_name: str) -> dict[str, Any]:
        """Rename a track's file inside its folder.

        Parameters
        ----------
        track_id : str
            Track UUID.
        new_name : str
            New file name; the track's extension is appended when missing.

        Returns
        -------
        dict
            As :meth:`move`.

        Raises
        ------
        NotFound, InvalidInput, Conflict
            As :meth:`move` (400 also for a bad name, see :func:`check_file_name`).
        """
        name = check_file_name(new_name)
        return self._run_locked("Rename", track_id,
                                lambda s: self._plan_rename(s, track_id, name))

    def delete(self, track_id: str, *, confirm: bool) -> dict[str, Any]:
        """Delete a track's file and remove the track (its playlist entries and hot cues too).

        Parameters
        ----------
        track_id : str
            Track UUID.
        confirm : bool
            Must be True.

        Returns
        -------
        dict
            ``trackId``, ``filePath``, ``fileDeleted`` (False when the file was
            already gone), ``operationId``, ``playlistEntriesRemoved``,
            ``hotCuesRemoved`` and ``warning`` (str or None).

        Raises
        ------
        InvalidInput
            `confirm` is not True.
        NotFound
            Unknown track.
        Conflict
            The file cannot be removed, is reached through a symbolic link, is
            not the file the scan recorded (size or modification time differ),
            or is not inside a library folder (nothing was changed).
        """
        if confirm is not True:
            raise InvalidInput('Deletion must be confirmed with {"confirm": true}')
        with self._active("Delete"):
            while True:
                with self.db() as s:
                    track = repo.get_track(s, track_id)
                    if track is None:
                        raise NotFound("Track not found")
                    src = Path(track.file_path)
                with self.locks.hold(lock_key(src)):
                    with self.db() as s:
                        track = repo.get_track(s, track_id)
                        if track is None:
                            raise NotFound("Track not found")
                        if Path(track.file_path) != src:
                            continue
                        dir_id = track.library_directory_id
                        place = self._place_of(s, track)
                        recorded = (track.file_size, track.file_mtime_ns)
                    return self._delete_locked(track_id, src, dir_id, place, recorded)

    # ------------------------------------------------------------------ planning

    def _track(self, s: Any, track_id: str) -> models.Track:
        track = repo.get_track(s, track_id)
        if track is None:
            raise NotFound("Track not found")
        return track

    def _place_of(self, s: Any, track: models.Track) -> _Place:
        """Where the track's file is, below its library folder (taken lexically).

        Raises
        ------
        Conflict
            The track has no library folder holding its path.
        """
        lib = (repo.get_directory(s, track.library_directory_id)
               if track.library_directory_id else None)
        if lib is None:  # a track whose folder was removed: the folder holding its path
            path = os.path.abspath(track.file_path)
            holders = [d for d in repo.list_directories(s)
                       if _inside(Path(path), Path(os.path.abspath(d.path)))]
            lib = max(holders, key=lambda d: len(Path(os.path.abspath(d.path)).parts),
                      default=None)
        if lib is None:
            raise Conflict(f"The track's file {track.file_path} is not inside a library folder; "
                           "file operations act only inside library folders (DELETE "
                           "/api/tracks/{id} removes the track without its file)")
        try:
            parts = parts_inside(lib.path, track.file_path)
        except ValueError:
            raise Conflict(f"The track's file {track.file_path} is not inside its library "
                           f"folder {lib.path}") from None
        return _Place(Path(os.path.abspath(lib.path)), parts[:-1], parts[-1],
                      bool(lib.follow_symlinks))

    def _library_containing(self, s: Any, path: Path) -> models.LibraryDirectory | None:
        real = Path(os.path.realpath(path))
        best: tuple[int, models.LibraryDirectory] | None = None
        for d in repo.list_directories(s):
            root = Path(os.path.realpath(d.path))
            if _inside(real, root) and (best is None or len(root.parts) > best[0]):
                best = (len(root.parts), d)
        return best[1] if best else None

    def _plan_move(self, s: Any, track_id: str, destination_path: str,
                   library_directory_id: str | None) -> _Plan | None:
        track = self._track(s, track_id)
        src = Path(track.file_path)
        lib: models.LibraryDirectory | None = None
        if library_directory_id:
            lib = repo.get_directory(s, library_directory_id)
            if lib is None:
                raise NotFound("Library directory not found")
        dest = Path(destination_path)
        if dest.is_absolute():
            lib = lib or self._library_containing(s, dest)
            if lib is None:
                raise InvalidInput("destination_path must be inside a library folder")
            candidate = dest
        else:
            if lib is None and track.library_directory_id:
                lib = repo.get_directory(s, track.library_directory_id)
            if lib is None:
                raise InvalidInput("A relative destination_path needs library_directory_id")
            candidate = Path(lib.path) / dest
        root = Path(lib.path)
        if not lib.is_available or not root.is_dir():
            raise Conflict(f"Library folder is not available: {lib.path}")
        real_root = Path(os.path.realpath(root))
        real_candidate = Path(os.path.realpath(candidate))
        if not _inside(real_candidate, real_root):
            raise InvalidInput(f"destination_path must be inside the library folder {lib.path}")
        refused = self.refusal(real_candidate)
        if refused is not None:  # a library folder stored before the folder policy existed
            raise InvalidInput(f"destination_path is not a place for music: {refused}")

        as_folder = (destination_path.endswith(("/", os.sep)) or real_candidate.is_dir()
                     or candidate.suffix.lower() not in self.extensions)
        if as_folder:
            target = real_candidate / src.name
        else:
            if candidate.suffix.lower() != src.suffix.lower():
                raise InvalidInput(f"A move cannot change the file type ({src.suffix} -> "
                                   f"{candidate.suffix}); give a folder")
            target = real_candidate
        if target == real_root:
            raise InvalidInput("destination_path must name a folder or a file")
        rel = target.relative_to(real_root)
        dst = root / rel
        src_at = self._place_of(s, track)
        dst_at = _Place(Path(os.path.abspath(root)), list(rel.parts[:-1]), rel.name)
        plan = _Plan("move", track.id, src, dst, track.library_directory_id, lib.id,
                     str(rel), src_at, dst_at)
        if Path(os.path.realpath(src)) == target:
            return None
        return plan

    def _plan_rename(self, s: Any, track_id: str, name: str) -> _Plan | None:
        track = self._track(s, track_id)
        src = Path(track.file_path)
        ext = src.suffix
        suffix = Path(name).suffix.lower()
        if ext and suffix == ext.lower():
            final = name
        elif suffix in self.extensions:
            raise InvalidInput(f"A rename cannot change the file type ({ext} -> {suffix})")
        else:
            final = name + ext
        if len(final.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise InvalidInput(f"new_name is longer than {NAME_MAX} bytes")
        if final == src.name:
            return None
        dst = src.with_name(final)
        relative: str | None = None
        if track.relative_path:
            parent = Path(track.relative_path).parent
            relative = str(parent / final) if str(parent) != "." else final
        src_at = self._place_of(s, track)
        dst_at = _Place(src_at.root, src_at.folders, final, src_at.follow_symlinks)
        return _Plan("rename", track.id, src, dst, track.library_directory_id,
                     track.library_directory_id, relative, src_at, dst_at)

    @contextmanager
    def _open(self, plan: _Plan) -> Iterator[_Opened]:
        """Open the folders of the source and (when it exists) of the target.

        Raises
        ------
        SymlinkRefused
            A folder on either path is a symbolic link.
        Conflict
            The source's folder is missing.
        """
        with ExitStack() as stack:
            try:
                src = stack.enter_context(plan.src_at.open())
            except (FileNotFoundError, NotADirectoryError):
                raise Conflict(f"Track file is missing on disk: {plan.src}") from None
            dst: Folder | None = src
            if plan.dst_at.root != plan.src_at.root or plan.dst_at.folders != plan.src_at.folders:
                try:
                    dst = stack.enter_context(plan.dst_at.open())
                except FileNotFoundError:
                    dst = None  # made after the operation is logged
            opened = _Opened(src, dst, stack)
            yield opened

    def _check_target(self, s: Any, plan: _Plan, opened: _Opened) -> None:
        """Source a regular file (not a link), target free, path unused by another track."""
        st = opened.src.lstat(plan.src_at.name)
        if st is not None and stat.S_ISLNK(st.st_mode):
            if not plan.src_at.follow_symlinks:
                raise SymlinkRefused(plan.src, plan.src_at.root)
            try:
                st = os.stat(plan.src_at.name, dir_fd=opened.src.fd)
            except FileNotFoundError:
                st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            raise Conflict(f"Track file is missing on disk: {plan.src}")
        if opened.dst is not None and plan.dst != plan.src \
                and opened.dst.lstat(plan.dst_at.name) is not None \
                and not _same_file_other_case(opened.src, plan.src_at.name, opened.dst,
                                              plan.dst_at.name):
            raise Conflict(f"Destination file already exists: {plan.dst}")
        other = repo.track_at_path(s, str(plan.dst), exclude_id=plan.track_id)
        if other:
            raise Conflict(f"Another track already uses this path: {plan.dst}")

    def _check_space(self, src: Path, target: Path) -> None:
        probe = target.parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if os.stat(probe).st_dev == os.stat(src).st_dev:
            return
        need = os.stat(src).st_size + SPACE_RESERVE
        free = shutil.disk_usage(probe).free
        if free < need:
            raise InsufficientSpace(f"Not enough free space on the target drive: need {need} "
                                    f"bytes, {free} free")

    def _run_locked(self, kind: str, track_id: str, make_plan: Callable[[Any], _Plan | None]
                    ) -> dict[str, Any]:
        """Plan, take the locks of source and target, plan again under them, check, run.

        The first plan only finds the paths to lock (the disk may be changing
        under another operation). Under the locks the plan is made again; when a
        concurrent operation moved the track in between, its paths differ and
        the loop starts over from the new location. Otherwise the disk and the
        database are checked (source present, target free, path unused, space),
        and the checks hold while the operation runs.
        """
        with self._active(kind):
            while True:
                with self.db() as s:
                    plan = make_plan(s)
                if plan is None:
                    return self._unchanged(track_id)
                keys = (lock_key(plan.src), lock_key(plan.dst))
                with self.locks.hold(*keys):
                    with self.db() as s:
                        plan = make_plan(s)
                        if plan is None:
                            return self._unchanged(track_id)
                        if (lock_key(plan.src), lock_key(plan.dst)) != keys:
                            continue
                    with self._open(plan) as opened:
                        with self.db() as s:
                            self._check_target(s, plan, opened)
                        if plan.kind == "move":
                            self._check_space(plan.src, plan.dst)
                        return self._relocate_track(plan, opened)

    def _unchanged(self, track_id: str) -> dict[str, Any]:
        with self.db() as s:
            return {"track": track_dict(self._track(s, track_id)), "operation": None,
                    "warning": None}

    # ------------------------------------------------------------------ execution

    def _log_start(self, kind: str, track_id: str, old_path: str, new_path: str | None,
                   old_dir: str | None, new_dir: str | None) -> tuple[int, dict[str, Any]]:
        with transaction(self.db) as s:
            op = repo.start_operation(s, operation_type=kind, track_id=track_id,
                                      old_path=old_path, new_path=new_path,
                                      old_directory_id=old_dir, new_directory_id=new_dir)
            op_id = int(op.id)
        payload = {"operationId": op_id, "type": kind, "trackId": track_id,
                   "oldPath": old_path, "newPath": new_path}
        self.bus.send(Event.FILE_OP_STARTED, payload)
        return op_id, payload

    def _log_failure(self, op_id: int, payload: dict[str, Any], message: str) -> None:
        try:
            with transaction(self.db) as s:
                repo.finish_operation(s, op_id, "failed", message)
        except SQLAlchemyError:
            log.exception("could not mark file operation %s failed", op_id)
        self.bus.send(Event.FILE_OP_FAILED, {**payload, "status": "failed", "error": message})

    def _operation(self, op_id: int) -> dict[str, Any]:
        try:
            with self.db() as s:
                op = repo.get_operation(s, op_id)
                if op is not None:
                    return operation_dict(op)
        except SQLAlchemyError:
            log.exception("could not read file operation %s", op_id)
        return {"id": op_id, "status": "completed"}

    def _relocate_track(self, plan: _Plan, opened: _Opened) -> dict[str, Any]:
        op_id, payload = self._log_start(plan.kind, plan.track_id, str(plan.src), str(plan.dst),
                                         plan.old_dir_id, plan.new_dir_id)
        try:
            if opened.dst is None:  # make the missing folders of a move's target
                opened.dst = opened.stack.enter_context(plan.dst_at.open(create=True))
            dst = opened.dst
            relocation = self._relocate(opened.src, plan.src_at.name, dst, plan.dst_at.name,
                                        payload, follow_symlinks=plan.src_at.follow_symlinks)
        except (OSError, TaperoomError) as exc:
            self._remove_created(opened)
            err = _os_error(exc, plan.kind.capitalize()) if isinstance(exc, OSError) else exc
            self._log_failure(op_id, payload, err.message)
            raise err from exc
        try:
            st = os.stat(plan.dst_at.name, dir_fd=dst.fd)
            track = self._commit_location(plan, op_id, st)
        except (SQLAlchemyError, NotFound, OSError) as exc:
            undone = "the file was put back"
            try:
                relocation.undo()
            except OSError as undo_exc:
                undone = f"putting the file back failed too: {undo_exc}"
                log.critical("%s of track %s: database update failed and the file could not "
                             "be put back (%s -> %s): %s", plan.kind, plan.track_id, plan.dst,
                             plan.src, undo_exc)
            self._remove_created(opened)
            if isinstance(exc, SQLAlchemyError):
                err = _db_error(exc, undone)
            elif isinstance(exc, OSError):
                err = Conflict(f"{plan.kind.capitalize()} failed: {exc}; {undone}")
            else:
                err = NotFound(f"Track not found; {undone}")
            self._log_failure(op_id, payload, err.message)
            raise err from exc
        warning = relocation.finish()
        operation = self._operation(op_id)
        self.bus.send(Event.FILE_OP_COMPLETE, {**payload, "status": "completed",
                                                   "warning": warning})
        self.bus.send(Event.TRACK_MOVED, {
            "trackId": plan.track_id, "oldPath": str(plan.src), "newPath": str(plan.dst),
            "libraryDirectoryId": plan.new_dir_id})
        return {"track": track, "operation": operation, "warning": warning}

    @staticmethod
    def _remove_created(opened: _Opened) -> None:
        if opened.dst is not None and opened.dst is not opened.src:
            opened.dst.remove_created()

    def _relocate(self, src: Folder, src_name: str, dst: Folder, dst_name: str,
                  payload: dict[str, Any], *, follow_symlinks: bool = False) -> _Relocation:
        """Give the file `src_name` of `src` the name `dst_name` in `dst`, overwriting nothing.

        Inside one filesystem: a hard link then unlink (atomic refusal to
        overwrite), or a rename where hard links are unsupported or only the
        letter case changes. Across filesystems: see :meth:`_copy_across`. Every
        call names an entry of an open folder (``linkat``, ``renameat``,
        ``unlinkat``), so nothing outside those folders is touched.
        """
        if src is dst and src_name == dst_name:
            return _Relocation(undo=lambda: None)

        def undo() -> None:
            os.rename(dst_name, src_name, src_dir_fd=dst.fd, dst_dir_fd=src.fd)

        if _same_file_other_case(src, src_name, dst, dst_name):
            os.rename(src_name, dst_name, src_dir_fd=src.fd, dst_dir_fd=dst.fd)
            return _Relocation(undo=undo)
        target = dst.path / dst_name
        try:
            os.link(src_name, dst_name, src_dir_fd=src.fd, dst_dir_fd=dst.fd,
                    follow_symlinks=False)
        except FileExistsError:
            raise Conflict(f"Destination file already exists: {target}") from None
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return self._copy_across(src, src_name, dst, dst_name, payload,
                                         follow_symlinks=follow_symlinks)
            if dst.lstat(dst_name) is not None:  # filesystems without hard links (FAT, SMB)
                raise Conflict(f"Destination file already exists: {target}") from None
            os.rename(src_name, dst_name, src_dir_fd=src.fd, dst_dir_fd=dst.fd)
        else:
            try:
                os.unlink(src_name, dir_fd=src.fd)
            except OSError:
                os.unlink(dst_name, dir_fd=dst.fd)
                raise
        dst.sync()
        if src is not dst:
            src.sync()
        return _Relocation(undo=undo)

    def _copy_across(self, src: Folder, src_name: str, dst: Folder, dst_name: str,
                     payload: dict[str, Any], *, follow_symlinks: bool = False) -> _Relocation:
        """Copy to a hidden file beside the target, fsync, verify the size, publish it.

        The copy gets the source's permission bits and times (as
        ``shutil.copystat``). The source is unlinked only by ``finish`` (after the
        database step), and only while its name still holds the file that was
        copied; ``undo`` removes the copy.
        """
        target = dst.path / dst_name
        tmp = f".{dst_name}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}"
        no_follow = 0 if follow_symlinks else os.O_NOFOLLOW
        try:
            fin_fd = os.open(src_name, os.O_RDONLY | os.O_CLOEXEC | no_follow, dir_fd=src.fd)
            with open(fin_fd, "rb") as fin:
                st = os.fstat(fin.fileno())
                total = st.st_size
                copied = 0
                last = time.monotonic()
                fout_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                  | os.O_CLOEXEC, 0o600, dir_fd=dst.fd)
                with open(fout_fd, "wb") as fout:
                    while chunk := fin.read(COPY_CHUNK):
                        fout.write(chunk)
                        copied += len(chunk)
                        now = time.monotonic()
                        if now - last >= PROGRESS_INTERVAL:
                            last = now
                            self.bus.send(Event.FILE_OP_PROGRESS, {
                                **payload, "bytesCopied": copied, "totalBytes": total,
                                "progress": round(100 * copied / total, 1) if total else 100.0})
                    fout.flush()
                    # FAT and SMB mounts have no permission bits to copy
                    with contextlib.suppress(PermissionError):
                        os.chmod(fout.fileno(), stat.S_IMODE(st.st_mode))
                    os.utime(fout.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))
                    os.fsync(fout.fileno())
                    size = os.fstat(fout.fileno()).st_size
            if size != total:
                raise Conflict(f"Copy verification failed: {target} has a different size")
            try:
                os.link(tmp, dst_name, src_dir_fd=dst.fd, dst_dir_fd=dst.fd,
                        follow_symlinks=False)
            except FileExistsError:
                raise Conflict(f"Destination file already exists: {target}") from None
            except OSError:
                if dst.lstat(dst_name) is not None:
                    raise Conflict(f"Destination file already exists: {target}") from None
                os.rename(tmp, dst_name, src_dir_fd=dst.fd, dst_dir_fd=dst.fd)
            dst.sync()
        finally:
            if dst.lstat(tmp) is not None:
                os.unlink(tmp, dir_fd=dst.fd)

        def finish() -> str | None:
            try:
                now = os.stat(src_name, dir_fd=src.fd, follow_symlinks=bool(follow_symlinks))
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                    return (f"The copy is in place but the original {src.path / src_name} was "
                            "replaced by another file meanwhile and was kept")
                os.unlink(src_name, dir_fd=src.fd)
                src.sync()
            except OSError as exc:
                log.warning("moved %s across drives but could not remove the source: %s",
                            src.path / src_name, exc)
                return f"The copy is in place but the original could not be removed: {exc}"
            return None

        return _Relocation(undo=lambda: os.unlink(dst_name, dir_fd=dst.fd), finish=finish)

    def _commit_location(self, plan: _Plan, op_id: int, st: os.stat_result) -> dict[str, Any]:
        modified = datetime.fromtimestamp(st.st_mtime, UTC).replace(tzinfo=None)
        for attempt in range(DB_ATTEMPTS):
            try:
                with transaction(self.db) as s:
                    n = repo.set_track_location(
                        s, plan.track_id, file_path=str(plan.dst),
                        library_directory_id=plan.new_dir_id, relative_path=plan.relative_path,
                        file_modified=modified, file_mtime_ns=st.st_mtime_ns)
                    if n != 1:
                        raise NotFound("Track not found")
                    repo.finish_operation(s, op_id, "completed")
                    repo.refresh_directory_counts(s, {plan.old_dir_id, plan.new_dir_id})
                    track = repo.get_track(s, plan.track_id)
                    assert track is not None
                    return track_dict(track)
            except OperationalError:
                if attempt == DB_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    @staticmethod
    def _check_identity(src: Path, st: os.stat_result,
                        recorded: tuple[int | None, int | None]) -> None:
        """Refuse a file whose size or mtime differ from what the scan recorded."""
        size, mtime_ns = recorded
        changed = [what for what, now, then in (("size", st.st_size, size),
                                                ("modification time", st.st_mtime_ns, mtime_ns))
                   if then is not None and now != then]
        if changed:
            raise Conflict(f"The file {src} has changed since the library last scanned it "
                           f"(its {' and '.join(changed)} differ), so it may not be the "
                           "track's file; nothing was deleted. Rescan its folder, then "
                           "delete again")

    def _delete_locked(self, track_id: str, src: Path, dir_id: str | None, place: _Place,
                       recorded: tuple[int | None, int | None]) -> dict[str, Any]:
        with ExitStack() as stack:
            try:
                folder: Folder | None = stack.enter_context(place.open())
            except (FileNotFoundError, NotADirectoryError):
                folder = None  # the file's folder is gone: so is the file
            st = folder.lstat(place.name) if folder is not None else None
            if folder is not None and st is not None:
                current: os.stat_result | None = st
                if stat.S_ISLNK(st.st_mode):
                    if not place.follow_symlinks:
                        raise SymlinkRefused(src, place.root)
                    try:
                        current = os.stat(place.name, dir_fd=folder.fd)
                    except FileNotFoundError:
                        current = None
                if stat.S_ISDIR(st.st_mode):
                    raise Conflict(f"Track path is a folder: {src}")
                if current is not None:
                    self._check_identity(src, current, recorded)
            return self._delete_checked(track_id, src, dir_id, folder, place.name, st)

    def _delete_checked(self, track_id: str, src: Path, dir_id: str | None,
                        folder: Folder | None, name: str, st: os.stat_result | None
                        ) -> dict[str, Any]:
        """Hide the checked file, remove the track, then unlink the hidden file."""
        op_id, payload = self._log_start("delete", track_id, str(src), None, dir_id, None)
        hidden: str | None = None
        if folder is not None and st is not None:
            hidden = f".{name}.{uuid.uuid4().hex[:8]}{DELETE_SUFFIX}"
            try:
                os.rename(name, hidden, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
                if not _same_inode(folder.lstat(hidden), st):  # swapped since checked
                    os.rename(hidden, name, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
                    raise Conflict(f"The file {src} was replaced while it was being deleted; "
                                   "nothing was deleted")
            except (OSError, Conflict) as exc:
                err = _os_error(exc, "Delete") if isinstance(exc, OSError) else exc
                self._log_failure(op_id, payload, err.message)
                raise err from exc
        try:
            with transaction(self.db) as s:
                removed = repo.remove_tracks(s, [track_id])
                if removed["tracksRemoved"] != 1:
                    raise NotFound("Track not found")
                repo.finish_operation(s, op_id, "completed")
        except (SQLAlchemyError, NotFound) as exc:
            undone = "the file was kept"
            if hidden is not None and folder is not None:
                try:
                    os.rename(hidden, name, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
                except OSError as undo_exc:
                    undone = f"restoring the file failed too: {undo_exc}"
                    log.critical("delete of track %s: database update failed and %s could not "
                                 "be restored from %s: %s", track_id, src, hidden, undo_exc)
            err = (_db_error(exc, undone) if isinstance(exc, SQLAlchemyError)
                   else NotFound(f"Track not found; {undone}"))
            self._log_failure(op_id, payload, err.message)
            raise err from exc
        warning: str | None = None
        if hidden is None or folder is None:
            warning = "The file was already missing; the track was removed from the library"
        else:
            try:
                os.unlink(hidden, dir_fd=folder.fd)
                folder.sync()
            except OSError as exc:
                warning = f"The track was removed but its file could not be deleted: {exc}"
                log.error("could not unlink %s: %s", src.with_name(hidden), exc)
        deleted = hidden is not None
        self.bus.send(Event.FILE_OP_COMPLETE, {**payload, "status": "completed",
                                                   "warning": warning})
        self.bus.send(Event.TRACK_DELETED, {"trackId": track_id, "filePath": str(src),
                                                "fileDeleted": deleted})
        send_playlist_updates(self.bus, removed["playlistIds"], "track:deleted")
        return {"trackId": track_id, "filePath": str(src), "fileDeleted": deleted,
                "operationId": op_id,
                "playlistEntriesRemoved": removed["playlistEntriesRemoved"],
                "hotCuesRemoved": removed["hotCuesRemoved"], "warning": warning}
