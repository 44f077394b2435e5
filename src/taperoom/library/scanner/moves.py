"""Phase 4 of a scan, **moves**: new files that are moved copies of gone tracks.

A new file whose content matches a track whose file is gone (same audio hash,
or same size and quick hash) is a move: the existing row gets the new path and
keeps its id, analysis, hot cues and playlist entries. :class:`GoneIndex` holds
the rows whose file is gone, indexed for that matching; each row matches once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session, sessionmaker

from taperoom.library.repository import scan as repo
from taperoom.library.repository.scan import TrackRow
from taperoom.library.scanner.read import FileRead
from taperoom.library.scanner.walk import FileStat


class GoneIndex:
    """Rows whose file is gone, indexed for move matching; each row matches once."""

    def __init__(self, rows: list[TrackRow]) -> None:
        self._local = rows
        self._taken: set[str] = set()
        self._by_hash: dict[str, list[TrackRow]] = {}
        self._by_size: dict[int, list[TrackRow]] = {}
        self._known: set[str] = set()
        self._present: set[str] = set()
        for r in rows:
            self._index(r)

    def _index(self, r: TrackRow) -> None:
        if r.id in self._known:
            return
        self._known.add(r.id)
        if r.file_hash:
            self._by_hash.setdefault(r.file_hash, []).append(r)
        if r.quick_hash and r.file_size is not None:
            self._by_size.setdefault(r.file_size, []).append(r)

    def add_outside(self, rows: Iterable[TrackRow]) -> None:
        """Add rows of other owners whose file is really gone from its path."""
        for r in rows:
            if r.id in self._known or r.id in self._present:
                continue
            if os.path.lexists(r.file_path):
                self._present.add(r.id)  # still there: a copy, not a move
            else:
                self._index(r)

    def any(self) -> bool:
        return bool(self._by_hash or self._by_size)

    def has_size(self, size: int) -> bool:
        return any(r.id not in self._taken for r in self._by_size.get(size, ()))

    def _take(self, rows: list[TrackRow], ok: Callable[[TrackRow], bool]) -> TrackRow | None:
        for r in rows:
            if r.id not in self._taken and ok(r):
                self._taken.add(r.id)
                return r
        return None

    def take_hash(self, h: str) -> TrackRow | None:
        return self._take(self._by_hash.get(h, []), lambda r: True)

    def take_quick(self, size: int, qh: str) -> TrackRow | None:
        return self._take(self._by_size.get(size, []), lambda r: r.quick_hash == qh)

    def remaining(self) -> list[TrackRow]:
        """Rows of the scanned folder that were not matched as moved."""
        return [r for r in self._local if r.id not in self._taken]


def match_moves(db: sessionmaker[Session], new_files: list[tuple[FileStat, FileRead | None]],
                quick: dict[str, str | None], gone: GoneIndex, *,
                exclude_directory: str | None) -> dict[str, TrackRow]:
    """Find the new files of a batch that are moved copies of gone tracks.

    Parameters
    ----------
    db : sessionmaker
        Session factory (rows of other folders whose file is gone are looked up).
    new_files : list of (FileStat, FileRead or None)
        The batch's new files and what the read phase found (None: not read).
    quick : dict of str to str or None
        Quick hashes of the new files that were not read (``fast`` scans).
    gone : GoneIndex
        Gone rows of the scanned folder; rows of other owners are added to it.
    exclude_directory : str or None
        The scanned folder when it is scanned whole (its own rows are in `gone`).

    Returns
    -------
    dict of str to TrackRow
        New file path -> the gone row that takes it over.
    """
    hashes = [r.file_hash for _, r in new_files if r is not None and r.file_hash]
    sizes = [f.size for f, _ in new_files]
    with db() as session:
        outside = repo.move_candidates(session, hashes=hashes, sizes=sizes,
                                       exclude_directory=exclude_directory)
    gone.add_outside(outside)
    if not gone.any():
        return {}
    moves: dict[str, TrackRow] = {}
    for f, r in new_files:
        row = gone.take_hash(r.file_hash) if r is not None and r.file_hash else None
        if row is None and gone.has_size(f.size):
            qh = r.quick_hash if r is not None else quick.get(f.path)
            if qh:
                row = gone.take_quick(f.size, qh)
        if row is not None:
            moves[f.path] = row
    return moves
