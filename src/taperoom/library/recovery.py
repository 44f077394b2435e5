"""Finish or undo file operations that a crash interrupted, when the library opens.

:class:`taperoom.library.fileops.FileOperations` logs every move, rename and
delete as a ``pending`` row in ``file_operations`` before it touches the disk,
and marks it ``completed`` in the same transaction that updates the track. A
process killed in between (``kill -9``, a power cut) leaves a pending row, and
the disk may then be one step ahead of the database. :func:`recover_operations`
runs when the library context opens, before the watcher and scans start, and
brings the two back together, as a journaling filesystem replays its journal:

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
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from taperoom.audio.hashing import raw_hash
from taperoom.db import transaction
from taperoom.library import models
from taperoom.library.repository import fileops as repo

if TYPE_CHECKING:
    from taperoom.library.context import LibraryContext

log = logging.getLogger(__name__)

__all__ = ["DELETE_SUFFIX", "PART_SUFFIX", "RecoveryReport", "hidden_siblings",
           "recover_operations"]

#: Suffix of the hidden partial copy a cross-drive move writes beside its target
#: (hidden files and non-audio extensions are skipped by the scanner).
PART_SUFFIX = ".taperoom-part"
#: Suffix of the hidden name a delete gives a file until its track row is gone.
DELETE_SUFFIX = ".taperoom-delete"


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
    prefix = f".{path.name}."
    if names is None:
        try:
            names = os.listdir(path.parent)
        except OSError:
            return []
    return sorted(path.parent / n for n in names
                  if n.startswith(prefix) and n.endswith(suffix)
                  and len(n) > len(prefix) + len(suffix))


def _unlink(path: Path, report: RecoveryReport) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    report.removed.append(str(path))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _identical_copy(src: Path, copy: Path) -> bool:
    """True when `copy` is a different file with exactly the bytes of `src`."""
    try:
        if os.path.getsize(src) != os.path.getsize(copy):
            return False
        return raw_hash(src) == raw_hash(copy)
    except OSError:
        return False


def _finish(ctx: LibraryContext, op_id: int, status: str, message: str) -> None:
    with transaction(ctx.sessions) as s:
        repo.finish_operation(s, op_id, status, message)


def _roll_forward(ctx: LibraryContext, op: models.FileOperation, dst: Path) -> None:
    """Point the track at `dst` and mark the operation completed (one transaction)."""
    st = os.stat(dst)
    with transaction(ctx.sessions) as s:
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


def _recover_move(ctx: LibraryContext, op: models.FileOperation,
                  report: RecoveryReport) -> None:
    src, dst = Path(op.old_path or ""), Path(op.new_path or "")
    for part in hidden_siblings(dst, PART_SUFFIX):
        _unlink(part, report)
    with ctx.sessions() as s:
        track = repo.get_track(s, op.track_id) if op.track_id else None
        stored = track.file_path if track is not None else None
    if track is None:
        _finish(ctx, op.id, "failed", "interrupted; the track no longer exists")
        report.left.append(op.id)
        return
    if stored == str(dst):  # the database step had been made after all
        _finish(ctx, op.id, "completed", "completed before an interruption")
        report.completed.append(op.id)
        return
    has_src, has_dst = os.path.lexists(src), os.path.lexists(dst)
    if has_src and not has_dst:
        _finish(ctx, op.id, "failed", "interrupted before the file was moved; nothing changed")
        report.undone.append(op.id)
    elif has_dst and not has_src:
        _roll_forward(ctx, op, dst)
        report.completed.append(op.id)
    elif has_src and has_dst:
        if _same_file(src, dst) or _identical_copy(src, dst):
            _unlink(dst, report)
            _finish(ctx, op.id, "failed", "interrupted; the file was put back")
            report.undone.append(op.id)
        else:
            _finish(ctx, op.id, "failed", f"interrupted; {dst} differs from the track's "
                    "file and was left alone")
            report.left.append(op.id)
    else:
        _finish(ctx, op.id, "failed", "interrupted; the file is at neither path")
        report.left.append(op.id)


def _recover_delete(ctx: LibraryContext, op: models.FileOperation,
                    report: RecoveryReport) -> None:
    src = Path(op.old_path or "")
    hidden = hidden_siblings(src, DELETE_SUFFIX)
    with ctx.sessions() as s:
        track = repo.get_track(s, op.track_id) if op.track_id else None
    if track is None:  # the track row is gone: the delete had committed
        for h in hidden:
            _unlink(h, report)
        _finish(ctx, op.id, "completed", "completed at start-up after an interruption")
        report.completed.append(op.id)
        return
    if not os.path.lexists(src) and len(hidden) == 1:
        os.rename(hidden[0], src)
        _finish(ctx, op.id, "failed", "interrupted; the file was restored")
        report.undone.append(op.id)
    elif os.path.lexists(src) and not hidden:
        _finish(ctx, op.id, "failed", "interrupted before the file was deleted; nothing changed")
        report.undone.append(op.id)
    else:
        _finish(ctx, op.id, "failed", "interrupted; the file was left as found")
        report.left.append(op.id)


def recover_operations(ctx: LibraryContext) -> RecoveryReport:
    """Finish or undo every ``pending`` file operation, and remove what they left.

    Run once when the library opens, before anything else touches its files
    (the module docstring lists each state and what is done about it).

    Parameters
    ----------
    ctx : LibraryContext
        The opened library (database sessions).

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
    report = RecoveryReport()
    with ctx.sessions() as s:
        pending = repo.pending_operations(s)
        deleted_paths = repo.completed_delete_paths(s)
    for op in pending:
        try:
            if op.operation_type == "delete":
                _recover_delete(ctx, op, report)
            elif op.operation_type in ("move", "rename"):
                _recover_move(ctx, op, report)
            else:
                _finish(ctx, op.id, "failed", "interrupted")
                report.left.append(op.id)
        except (OSError, SQLAlchemyError) as exc:
            log.error("could not recover file operation %s (%s %s): %s", op.id,
                      op.operation_type, op.old_path, exc)
    by_folder: dict[Path, list[Path]] = {}
    for path in map(Path, deleted_paths):
        by_folder.setdefault(path.parent, []).append(path)
    for folder, paths in by_folder.items():  # one listing per folder
        try:
            names = os.listdir(folder)
        except OSError:  # an unplugged drive: looked at again at the next start
            continue
        for path in paths:
            for h in hidden_siblings(path, DELETE_SUFFIX, names):
                try:
                    _unlink(h, report)
                except OSError as exc:
                    log.error("could not remove %s: %s", h, exc)
    if report:
        log.warning("file operations recovered after an interruption: %d completed, "
                    "%d undone, %d left as found, %d hidden files removed",
                    len(report.completed), len(report.undone), len(report.left),
                    len(report.removed))
    return report
