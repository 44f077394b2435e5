"""Finish or undo file operations that a crash interrupted, when the library opens.

:class:`taperoom.library.fileops.FileOperations` logs every move, rename and
delete as a ``pending`` row in ``file_operations`` before it touches the disk,
and marks it ``completed`` in the same transaction that updates the track. A
process killed in between (``kill -9``, a power cut) leaves a pending row, and
the disk may then be one step ahead of the database. :func:`recover_operations`
runs when a process takes the lead of the library (at start, or when the leader
died), before its watcher and scans start, and brings the two back together, as
a journaling filesystem replays its journal; an operation whose file locks a
live worker process holds is its own, and is left to it:

=====================================  ==========================================
state found for a pending move/rename  what recovery does
=====================================  ==========================================
only the old file exists               nothing had changed: the row is ``failed``
only the new file exists               the move had happened: the track is
                                       pointed at it and the row ``completed``
both, one file (a hard link)           cut between link and unlink: the new name
                                       is removed, the row ``failed``
both, the new one a byte-identical     cut after a cross-drive copy was
copy                                   published: the copy is removed, ``failed``
both, differing                        left alone (nothing is deleted that might
                                       not be ours), ``failed``
neither                                ``failed``; the track keeps its path (the
                                       next scan marks it missing)
=====================================  ==========================================

Hidden partial copies (``.<name>.<id>.taperoom-part``) beside the target of an
interrupted move are removed: they are never the only copy, since the source is
unlinked only after the database step.

A pending delete whose track is still in the database had renamed the file to a
hidden name beside it (``.<name>.<id>.taperoom-delete``) at most: the name is
given back and the row marked ``failed``. A delete that had committed but not yet
unlinked the hidden file (its row is ``completed``) leaves that hidden file,
which recovery unlinks (it looks beside the 500 most recent deletes).

One case is left as it is: a cross-drive move that committed but was cut before
it unlinked its source leaves the source in place as a second copy (it is the
user's file, and the scan lists it as a duplicate of the moved track).

Recovery touches the disk as the operations do (:mod:`taperoom.confined`): only
by names inside folders opened from the operation's library folder without
following symbolic links (links are followed where the library folder is set to
``follow_symlinks``, except on a move's target). When a folder on the way has
become a link since, the operation is marked ``failed`` and its files are left
as found; when the library folder itself is missing (a drive not plugged in),
the operation stays ``pending`` for the next start.
"""

from __future__ import annotations

import errno
import logging
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from taperoom.confined import Folder, SymlinkRefused, open_folder, parts_inside
from taperoom.db import transaction
from taperoom.errors import Busy
from taperoom.fslock import KeyLocks
from taperoom.library import models
from taperoom.library.repository import fileops as repo

log = logging.getLogger(__name__)

__all__ = ["DELETE_SUFFIX", "PART_SUFFIX", "RecoveryReport", "hidden_siblings", "lock_key",
           "recover_operations"]

#: Suffix of the hidden partial copy a cross-drive move writes beside its target
#: (hidden files and non-audio extensions are skipped by the scanner).
PART_SUFFIX = ".taperoom-part"
#: Suffix of the hidden name a delete gives a file until its track row is gone.
DELETE_SUFFIX = ".taperoom-delete"


def lock_key(path: str | os.PathLike[str]) -> str:
    """Key of a file among the file-operation locks: its resolved path, case-folded.

    Case-folding makes ``Song.mp3`` and ``song.mp3`` share a lock, which is
    required on case-insensitive filesystems and harmless elsewhere.
    """
    return os.path.realpath(os.fspath(path)).casefold()


@dataclass
class RecoveryReport:
    """What :func:`recover_operations` did.

    Attributes
    ----------
    completed : list of int
        Ids of pending operations found done on disk and finished in the database.
    undone : list of int
        Ids of pending operations undone on disk (or found not started), marked
        ``failed``.
    left : list of int
        Ids of pending operations whose files were left as found, marked ``failed``.
    removed : list of str
        Hidden partial copies and hidden deleted files unlinked.
    """

    completed: list[int] = field(default_factory=list)
    undone: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.completed or self.undone or self.left or self.removed)


def _hidden_names(name: str, suffix: str, names: list[str]) -> list[str]:
    """The entries of `names` that are hidden files ``.<name>.<id><suffix>``, sorted."""
    prefix = f".{name}."
    return sorted(n for n in names if n.startswith(prefix) and n.endswith(suffix)
                  and len(n) > len(prefix) + len(suffix))


def hidden_siblings(path: Path, suffix: str, names: list[str] | None = None) -> list[Path]:
    """Hidden files ``.<name>.<id><suffix>`` that file operations left beside `path`.

    Parameters
    ----------
    path : Path
        The visible file's path (it need not exist).
    suffix : str
        :data:`PART_SUFFIX` or :data:`DELETE_SUFFIX`.
    names : list of str, optional
        The entries of ``path.parent`` when the caller has listed it already.

    Returns
    -------
    list of Path
        Sorted; empty when the folder cannot be read (an unplugged drive).
    """
    if names is None:
        try:
            names = os.listdir(path.parent)
        except OSError:
            return []
    return [path.parent / n for n in _hidden_names(path.name, suffix, names)]


class _LeftAsFound(Exception):
    """A path of an operation cannot be reached inside its library folder."""


class _Unavailable(FileNotFoundError):
    """The library folder of a path is missing (a drive not plugged in)."""


@dataclass
class _Root:
    """The library folder an operation's path belongs to."""

    path: Path
    follow_symlinks: bool


def _root_of(session: Any, directory_id: str | None, path: Path) -> _Root | None:
    """The library folder `directory_id`, else the one holding `path` (lexically)."""
    d = repo.get_directory(session, directory_id) if directory_id else None
    if d is None:
        real = Path(os.path.abspath(path))
        holders = [x for x in repo.list_directories(session)
                   if real.is_relative_to(os.path.abspath(x.path))]
        d = max(holders, key=lambda x: len(Path(os.path.abspath(x.path)).parts),
                default=None)
    if d is None:
        return None
    return _Root(Path(os.path.abspath(d.path)), bool(d.follow_symlinks))


def _open_parent(stack: ExitStack, root: _Root | None, path: Path, *,
                 follow_symlinks: bool) -> Folder | None:
    """Open the folder of `path` inside `root`; None when that folder is gone.

    Raises
    ------
    _LeftAsFound
        No library folder, `path` outside it, or a symbolic link on the way.
    _Unavailable
        The library folder itself is missing (a drive not plugged in).
    """
    if root is None:
        raise _LeftAsFound(f"{path} is not inside a library folder")
    try:
        parts = parts_inside(root.path, path)
    except ValueError:
        raise _LeftAsFound(f"{path} is not inside its library folder {root.path}") from None
    if not os.path.isdir(root.path):
        raise _Unavailable(errno.ENOENT, "Library folder not available", str(root.path))
    try:
        return stack.enter_context(open_folder(root.path, parts[:-1],
                                               follow_symlinks=follow_symlinks))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except SymlinkRefused as exc:
        raise _LeftAsFound(exc.message) from None


def _exists(folder: Folder | None, name: str) -> bool:
    return folder is not None and folder.lstat(name) is not None


def _unlink(folder: Folder, name: str, report: RecoveryReport) -> None:
    try:
        os.unlink(name, dir_fd=folder.fd)
    except FileNotFoundError:
        return
    report.removed.append(str(folder.path / name))


def _same_file(a: Folder, a_name: str, b: Folder, b_name: str) -> bool:
    sa, sb = a.lstat(a_name), b.lstat(b_name)
    return sa is not None and sb is not None and (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _identical_copy(a: Folder, a_name: str, b: Folder, b_name: str) -> bool:
    """True when `b_name` holds exactly the bytes of `a_name` (neither followed if a link)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        with open(os.open(a_name, flags, dir_fd=a.fd), "rb") as fa, \
                open(os.open(b_name, flags, dir_fd=b.fd), "rb") as fb:
            if os.fstat(fa.fileno()).st_size != os.fstat(fb.fileno()).st_size:
                return False
            while True:
                x, y = fa.read(COMPARE_CHUNK), fb.read(COMPARE_CHUNK)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False


#: Chunk size of the byte comparison of a copy with its original (bytes).
COMPARE_CHUNK = 1024 * 1024


def _finish(db: sessionmaker[Session], op_id: int, status: str, message: str) -> None:
    with transaction(db) as s:
        repo.finish_operation(s, op_id, status, message)


def _roll_forward(db: sessionmaker[Session], op: models.FileOperation, dst: Path,
                  st: os.stat_result) -> None:
    """Point the track at `dst` and mark the operation completed (one transaction)."""
    with transaction(db) as s:
        directory = (repo.get_directory(s, op.new_library_directory_id)
                     if op.new_library_directory_id else None)
        relative: str | None = None
        if directory is not None:
            try:
                relative = str(dst.relative_to(directory.path))
            except ValueError:
                relative = os.path.relpath(dst, directory.path)
        assert op.track_id is not None
        repo.set_track_location(
            s, op.track_id, file_path=str(dst),
            library_directory_id=directory.id if directory is not None else None,
            relative_path=relative,
            file_modified=datetime.fromtimestamp(st.st_mtime, UTC).replace(tzinfo=None),
            file_mtime_ns=st.st_mtime_ns)
        repo.finish_operation(s, op.id, "completed",
                              "completed at start-up after an interruption")
        repo.refresh_directory_counts(s, {op.old_library_directory_id,
                                          op.new_library_directory_id})


def _recover_move(db: sessionmaker[Session], op: models.FileOperation,
                  report: RecoveryReport) -> None:
    src, dst = Path(op.old_path or ""), Path(op.new_path or "")
    with db() as s:
        track = repo.get_track(s, op.track_id) if op.track_id else None
        stored = track.file_path if track is not None else None
        src_root = _root_of(s, op.old_library_directory_id, src)
        dst_root = _root_of(s, op.new_library_directory_id, dst)
    with ExitStack() as stack:
        refused: str | None = None
        unavailable: _Unavailable | None = None
        a = b = None
        try:
            a = _open_parent(stack, src_root, src,
                             follow_symlinks=bool(src_root and src_root.follow_symlinks))
            # a rename stays in the source's folder; a move's target is never a link
            b = _open_parent(stack, dst_root, dst, follow_symlinks=bool(
                op.operation_type == "rename" and dst_root and dst_root.follow_symlinks))
        except _LeftAsFound as exc:
            refused, a, b = str(exc), None, None
        except _Unavailable as exc:  # what needs no disk is done; the rest waits
            unavailable = exc
        if b is not None:
            for part in _hidden_names(dst.name, PART_SUFFIX, os.listdir(b.fd)):
                _unlink(b, part, report)
        if track is None:
            _finish(db, op.id, "failed", "interrupted; the track no longer exists")
            report.left.append(op.id)
            return
        if stored == str(dst):  # the database step had been made after all
            _finish(db, op.id, "completed", "completed before an interruption")
            report.completed.append(op.id)
            return
        if unavailable is not None:
            raise unavailable
        if refused is not None:
            _finish(db, op.id, "failed", f"interrupted; the files were left as found: {refused}")
            report.left.append(op.id)
            return
        has_src, has_dst = _exists(a, src.name), _exists(b, dst.name)
        if has_src and not has_dst:
            _finish(db, op.id, "failed",
                    "interrupted before the file was moved; nothing changed")
            report.undone.append(op.id)
        elif has_dst and not has_src:
            assert b is not None
            _roll_forward(db, op, dst, os.stat(dst.name, dir_fd=b.fd))
            report.completed.append(op.id)
        elif has_src and has_dst:
            assert a is not None and b is not None
            if _same_file(a, src.name, b, dst.name) or _identical_copy(a, src.name, b, dst.name):
                _unlink(b, dst.name, report)
                _finish(db, op.id, "failed", "interrupted; the file was put back")
                report.undone.append(op.id)
            else:
                _finish(db, op.id, "failed", f"interrupted; {dst} differs from the track's "
                        "file and was left alone")
                report.left.append(op.id)
        else:
            _finish(db, op.id, "failed", "interrupted; the file is at neither path")
            report.left.append(op.id)


def _recover_delete(db: sessionmaker[Session], op: models.FileOperation,
                    report: RecoveryReport) -> None:
    src = Path(op.old_path or "")
    with db() as s:
        track = repo.get_track(s, op.track_id) if op.track_id else None
        root = _root_of(s, op.old_library_directory_id, src)
    with ExitStack() as stack:
        refused: str | None = None
        unavailable: _Unavailable | None = None
        folder = None
        try:
            folder = _open_parent(stack, root, src,
                                  follow_symlinks=bool(root and root.follow_symlinks))
        except _LeftAsFound as exc:
            refused = str(exc)
        except _Unavailable as exc:  # what needs no disk is done; the rest waits
            unavailable = exc
        hidden = (_hidden_names(src.name, DELETE_SUFFIX, os.listdir(folder.fd))
                  if folder is not None else [])
        if track is None:  # the track row is gone: the delete had committed
            if folder is not None:
                for h in hidden:
                    _unlink(folder, h, report)
            _finish(db, op.id, "completed", "completed at start-up after an interruption")
            report.completed.append(op.id)
            return
        if unavailable is not None:
            raise unavailable
        if refused is not None:
            _finish(db, op.id, "failed", f"interrupted; the file was left as found: {refused}")
            report.left.append(op.id)
            return
        if folder is not None and not _exists(folder, src.name) and len(hidden) == 1:
            os.rename(hidden[0], src.name, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
            _finish(db, op.id, "failed", "interrupted; the file was restored")
            report.undone.append(op.id)
        elif _exists(folder, src.name) and not hidden:
            _finish(db, op.id, "failed",
                    "interrupted before the file was deleted; nothing changed")
            report.undone.append(op.id)
        else:
            _finish(db, op.id, "failed", "interrupted; the file was left as found")
            report.left.append(op.id)


def _remove_deleted_leftovers(db: sessionmaker[Session], report: RecoveryReport) -> None:
    """Unlink hidden files left beside the most recent completed deletes."""
    with db() as s:
        by_folder: dict[tuple[str | None, Path], list[Path]] = {}
        for raw, dir_id in repo.completed_deletes(s):
            path = Path(raw)
            by_folder.setdefault((dir_id, path.parent), []).append(path)
        roots = {key: _root_of(s, key[0], paths[0]) for key, paths in by_folder.items()}
    for key, paths in by_folder.items():  # one listing per folder
        root = roots[key]
        with ExitStack() as stack:
            try:
                folder = _open_parent(stack, root, paths[0], follow_symlinks=bool(
                    root and root.follow_symlinks))
                if folder is None:
                    continue
                names = os.listdir(folder.fd)
            except (_LeftAsFound, OSError):  # a link, or an unplugged drive: next start
                continue
            for path in paths:
                for h in _hidden_names(path.name, DELETE_SUFFIX, names):
                    try:
                        _unlink(folder, h, report)
                    except OSError as exc:
                        log.error("could not remove %s: %s", path.parent / h, exc)


def _recover_one(db: sessionmaker[Session], op: models.FileOperation,
                 report: RecoveryReport) -> None:
    try:
        if op.operation_type == "delete":
            _recover_delete(db, op, report)
        elif op.operation_type in ("move", "rename"):
            _recover_move(db, op, report)
        else:
            _finish(db, op.id, "failed", "interrupted")
            report.left.append(op.id)
    except (OSError, SQLAlchemyError) as exc:
        log.error("could not recover file operation %s (%s %s): %s", op.id,
                  op.operation_type, op.old_path, exc)


def recover_operations(db: sessionmaker[Session], locks: KeyLocks | None = None,
                       report: RecoveryReport | None = None) -> RecoveryReport:
    """Finish or undo every ``pending`` file operation, and remove what they left.

    Run by the leader process when it takes over (the module docstring lists
    each state and what is done about it). An operation holds the locks of its
    files from before it logs its row until the row is finished, so an
    operation whose locks are held belongs to a live process and is passed
    over; one whose locks are free (and whose row is still pending once they
    are taken) was cut by a process that died.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the opened (migrated) library database.
    locks : KeyLocks, optional
        The file-operation locks shared with the worker processes; without
        them every pending operation is taken as interrupted.
    report : RecoveryReport, optional
        Add to this report instead of a new one.

    Returns
    -------
    RecoveryReport
        The operations completed, undone or left, and the hidden files removed.

    Notes
    -----
    An operation whose recovery fails (a drive that is not plugged in, a
    permission error) is logged and stays ``pending``, to be tried again at the
    next start; it never stops the library from opening.
    """
    report = report if report is not None else RecoveryReport()
    with db() as s:
        pending = repo.pending_operations(s)
    for op in pending:
        keys = [lock_key(p) for p in (op.old_path, op.new_path) if p]
        try:
            with ExitStack() as held:
                if locks is not None:
                    held.enter_context(locks.hold(*keys, timeout=0))
                    with db() as s:  # it may have finished before the locks were ours
                        current = repo.get_operation(s, op.id)
                    if current is None or current.status != "pending":
                        continue
                _recover_one(db, op, report)
        except Busy:
            log.info("file operation %s is running in another process; not recovered",
                     op.id)
    _remove_deleted_leftovers(db, report)
    if report:
        log.warning("file operations recovered after an interruption: %d completed, "
                    "%d undone, %d left as found, %d hidden files removed",
                    len(report.completed), len(report.undone), len(report.left),
                    len(report.removed))
    return report
