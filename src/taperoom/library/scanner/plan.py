"""Phase 2 of a scan, **plan** (the diff): what to do with each file found.

:func:`diff` compares ``(size, mtime_ns)`` of every file with the rows of the
folder, loaded in one query: new, changed, unchanged, reappeared and gone files.
An unchanged file costs one ``stat`` and nothing else. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from taperoom.library.repository.scan import TrackRow
from taperoom.library.scanner.walk import FileStat


@dataclass(slots=True)
class WorkItem:
    """A file the upsert phase writes.

    Attributes
    ----------
    file : FileStat
    row : TrackRow or None
        Existing row at this path; None for a new file.
    read : bool
        Read tags and hashes (phase 3).
    stat : bool
        Store the new size and mtime (False for ``fast`` scans of changed files,
        so that the next ``hybrid`` scan still sees them as changed).
    """

    file: FileStat
    row: TrackRow | None
    read: bool
    stat: bool = True


@dataclass
class Plan:
    """Result of the diff phase.

    Attributes
    ----------
    work : list of WorkItem
        New files, changed files, files to re-read, rows to adopt or restore with changes.
    restore : list of TrackRow
        Unchanged rows marked missing whose file is back.
    gone : list of TrackRow
        Rows whose file was not found (missing or moved).
    unchanged : int
        Files needing nothing.
    """

    work: list[WorkItem] = field(default_factory=list)
    restore: list[TrackRow] = field(default_factory=list)
    gone: list[TrackRow] = field(default_factory=list)
    unchanged: int = 0


def diff(files: Sequence[FileStat], rows: dict[str, TrackRow], *, strategy: str,
         directory_id: str) -> Plan:
    """Compare found files with the database rows (phase 2; pure, no I/O).

    Parameters
    ----------
    files : sequence of FileStat
        Files found by the walk.
    rows : dict of str to TrackRow
        Rows by ``file_path``: the folder's rows, plus rows of other owners at
        paths of found files (those are adopted into this folder).
    strategy : {"fast", "hybrid", "full"}
    directory_id : str

    Returns
    -------
    Plan
    """
    plan = Plan()
    seen: set[str] = set()
    for f in files:
        row = rows.get(f.path)
        if row is None:
            plan.work.append(WorkItem(f, None, read=strategy != "fast"))
            continue
        seen.add(f.path)
        changed = row.file_size != f.size or row.file_mtime_ns != f.mtime_ns
        adopt = row.library_directory_id != directory_id
        unread = row.file_hash is None and row.scan_error is None
        if strategy == "full" or (strategy == "hybrid" and (changed or unread)):
            plan.work.append(WorkItem(f, row, read=True))
        elif adopt or (changed and row.is_missing):
            plan.work.append(WorkItem(f, row, read=False, stat=False))
        elif row.is_missing:
            plan.restore.append(row)
        else:
            plan.unchanged += 1
    plan.gone = [r for p, r in rows.items() if p not in seen
                 and r.library_directory_id == directory_id]
    return plan


