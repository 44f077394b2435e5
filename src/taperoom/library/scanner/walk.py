"""Phase 1 of a scan, **walk**: the audio files below a library folder.

:func:`walk` lists them with ``os.scandir`` and ``stat``, honouring the folder's
``recursive_scan``, ``max_depth``, ``scan_patterns``, ``exclude_patterns`` and
``follow_symlinks`` (:class:`WalkPolicy`); :func:`select_paths` applies the same
policy to the paths a file watcher reports.

Decisions: hidden files and folders (names starting with ``.``, including macOS
``._*`` resource forks) are skipped, as beets and Mixxx do; glob patterns
(:mod:`taperoom.library.scanner.globs`) are matched case-insensitively against
both the path relative to the folder and the bare name; a symbolic link is
skipped unless the folder has ``follow_symlinks``, and then every real directory
is entered once (loops are broken by ``(st_dev, st_ino)``); ``max_depth`` counts
folder levels below the root (0: only the root's own files, -1: unlimited), and
``recursive_scan=false`` means depth 0.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from taperoom.library import models
from taperoom.library.scanner.globs import matches, patterns_of
from taperoom.library.scanner.state import ScanCancelled


@dataclass(frozen=True, slots=True)
class FileStat:
    """An audio file found by the walk.

    Attributes
    ----------
    path : str
        Absolute path (below the library root, symlinks not resolved).
    rel : str
        Path relative to the library root, ``/``-separated.
    size : int
        Bytes.
    mtime_ns : int
        Modification time, ns since the epoch.
    """

    path: str
    rel: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class WalkPolicy:
    """Which files below a library root are part of the library.

    Attributes
    ----------
    root : str
        Absolute library folder.
    extensions : frozenset of str
        Lower-case extensions with their dot (``".flac"``); matched case-insensitively.
    max_depth : int
        Folder levels below the root to enter; 0 only the root, -1 unlimited.
    include, exclude : tuple of re.Pattern
        Compiled ``scan_patterns`` / ``exclude_patterns``
        (:mod:`taperoom.library.scanner.globs`);
        with includes, a file must match one; an excluded folder is not entered.
    follow_symlinks : bool
        Follow symbolic links to files and folders (each real folder entered once).
    skip_hidden : bool
        Skip names starting with ``.``.
    refusal : callable(Path) -> str or None, optional
        With `follow_symlinks`, says why a folder that a link leads to may not be
        entered (:meth:`FolderPolicy.refusal`: the filesystem root, system folders,
        pseudo filesystems); such a link is reported as an error and not followed.
    """

    root: str
    extensions: frozenset[str]
    max_depth: int = -1
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    follow_symlinks: bool = False
    skip_hidden: bool = True
    refusal: Callable[[Path], str | None] | None = None

    @classmethod
    def for_directory(cls, directory: models.LibraryDirectory, extensions: frozenset[str],
                      refusal: Callable[[Path], str | None] | None = None) -> WalkPolicy:
        """The policy of a library directory row (`refusal`: see the class)."""
        depth = directory.max_depth if directory.recursive_scan else 0
        if depth is None or depth < 0:
            depth = -1
        return cls(root=os.path.abspath(directory.path), extensions=extensions,
                   max_depth=depth, include=patterns_of(directory.scan_patterns),
                   exclude=patterns_of(directory.exclude_patterns),
                   follow_symlinks=bool(directory.follow_symlinks), refusal=refusal)

    def file_ok(self, rel: str, name: str) -> bool:
        """Whether a file at `rel` (relative path) named `name` belongs to the library."""
        if self.skip_hidden and name.startswith("."):
            return False
        if os.path.splitext(name)[1].lower() not in self.extensions:
            return False
        if matches(self.exclude, rel, name):
            return False
        return not self.include or matches(self.include, rel, name)

    def dir_ok(self, rel: str, name: str, depth: int) -> bool:
        """Whether to enter the folder `rel` at `depth` levels below the root."""
        if self.skip_hidden and name.startswith("."):
            return False
        if self.max_depth >= 0 and depth > self.max_depth:
            return False
        return not matches(self.exclude, rel, name)


def _printable(path: str) -> str:
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _valid_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def walk(policy: WalkPolicy, *, start: str = "", cancelled: Callable[[], bool] | None = None,
         found: Callable[[int], None] | None = None
         ) -> tuple[list[FileStat], list[dict[str, str]]]:
    """List the library's audio files below `policy.root` (or below its sub-folder `start`).

    Parameters
    ----------
    policy : WalkPolicy
    start : str
        Sub-folder relative to the root (``/``-separated) to walk instead of the
        root; the depth limit still counts from the root.
    cancelled : callable, optional
        Polled once per folder; when it returns True, :class:`ScanCancelled` is raised.
    found : callable(int), optional
        Called with the running number of files found, once per folder.

    Returns
    -------
    files : list of FileStat
        Sorted by relative path within each folder.
    errors : list of dict
        ``{"path", "error"}`` of folders and files that could not be read
        (permission denied, names that are not UTF-8); the walk goes on.
    """
    files: list[FileStat] = []
    errors: list[dict[str, str]] = []
    follow = policy.follow_symlinks
    start_abs = os.path.join(policy.root, *start.split("/")) if start else policy.root
    start_depth = len(start.split("/")) if start else 0
    seen: set[tuple[int, int]] = set()
    if follow:
        try:
            st = os.stat(start_abs)
            seen.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    stack = [(start_abs, start, start_depth)]
    while stack:
        if cancelled is not None and cancelled():
            raise ScanCancelled
        d_abs, d_rel, depth = stack.pop()
        try:
            with os.scandir(d_abs) as it:
                entries = sorted(it, key=lambda e: e.name, reverse=True)
        except OSError as exc:
            errors.append({"path": _printable(d_abs), "error": exc.strerror or str(exc)})
            continue
        for entry in entries:
            name = entry.name
            rel = f"{d_rel}/{name}" if d_rel else name
            try:
                if not follow and entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=follow):
                    if not policy.dir_ok(rel, name, depth + 1):
                        continue
                    if follow:
                        st = entry.stat(follow_symlinks=True)
                        key = (st.st_dev, st.st_ino)
                        if key in seen:
                            continue
                        seen.add(key)
                        why = (policy.refusal(Path(os.path.realpath(entry.path)))
                               if policy.refusal is not None and entry.is_symlink() else None)
                        if why is not None:
                            errors.append({"path": _printable(entry.path),
                                           "error": f"link not followed: {why}"})
                            continue
                    stack.append((entry.path, rel, depth + 1))
                elif entry.is_file(follow_symlinks=follow):
                    if not policy.file_ok(rel, name):
                        continue
                    if not _valid_name(rel):
                        errors.append({"path": _printable(entry.path),
                                       "error": "file name is not valid UTF-8"})
                        continue
                    st = entry.stat(follow_symlinks=follow)
                    files.append(FileStat(entry.path, rel, st.st_size, st.st_mtime_ns))
            except OSError as exc:
                errors.append({"path": _printable(entry.path), "error": exc.strerror or str(exc)})
        if found is not None:
            found(len(files))
    return files, errors


@dataclass
class PathSelection:
    """The part of a library selected by a list of changed paths (watcher).

    Attributes
    ----------
    files : list of FileStat
        Audio files found at or below the paths.
    file_paths, folder_paths : list of str
        Absolute paths whose rows to compare: rows at `file_paths`, and rows below
        `folder_paths` (a vanished path is in both lists).
    errors : list of dict
        As :func:`walk`.
    whole : bool
        A path was the root itself: the caller should scan the whole folder.
    """

    files: list[FileStat] = field(default_factory=list)
    file_paths: list[str] = field(default_factory=list)
    folder_paths: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    whole: bool = False


def select_paths(policy: WalkPolicy, paths: Iterable[str]) -> PathSelection:
    """Apply the walk policy to changed paths (files or folders, present or gone).

    Parameters
    ----------
    policy : WalkPolicy
    paths : iterable of str
        Absolute paths reported by the file watcher. Paths outside the root, or
        inside a folder the policy does not enter, are ignored.

    Returns
    -------
    PathSelection
    """
    sel = PathSelection()
    seen_files: set[str] = set()
    for raw in dict.fromkeys(paths):
        p = os.path.normpath(raw)
        rel = os.path.relpath(p, policy.root)
        if rel == ".":
            sel.whole = True
            return sel
        if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
            continue
        parts = rel.split(os.sep)
        rel = "/".join(parts)
        if not _ancestors_ok(policy, parts):
            continue
        name = parts[-1]
        depth = len(parts)
        is_link = os.path.islink(p)
        if is_link and not policy.follow_symlinks:
            sel.file_paths.append(p)
            sel.folder_paths.append(p)
            continue
        if os.path.isdir(p):
            sel.folder_paths.append(p)
            if policy.dir_ok(rel, name, depth):
                files, errors = walk(policy, start=rel)
                for f in files:
                    if f.path not in seen_files:
                        seen_files.add(f.path)
                        sel.files.append(f)
                sel.errors.extend(errors)
            continue
        if os.path.isfile(p):
            sel.file_paths.append(p)
            if policy.file_ok(rel, name) and p not in seen_files and _valid_name(rel):
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                seen_files.add(p)
                sel.files.append(FileStat(p, rel, st.st_size, st.st_mtime_ns))
            continue
        sel.file_paths.append(p)
        sel.folder_paths.append(p)
    return sel


def _ancestors_ok(policy: WalkPolicy, parts: list[str]) -> bool:
    for i, part in enumerate(parts[:-1]):
        rel = "/".join(parts[:i + 1])
        if not policy.dir_ok(rel, part, i + 1):
            return False
        if not policy.follow_symlinks and os.path.islink(os.path.join(policy.root, *parts[:i + 1])):
            return False
    return True


def root_available(path: str) -> bool:
    """Whether a library root is a readable, listable directory right now."""
    return os.path.isdir(path) and os.access(path, os.R_OK | os.X_OK)


