"""Folders opened inside a root folder without following symbolic links.

A path that a file operation acts on (a track's file, the target of a move) is
a string; between the moment it is checked and the moment it is used, any
folder on it may be replaced by a symbolic link to somewhere else, and
``os.path.realpath`` followed by a prefix comparison does not close that window.
:func:`open_folder` instead opens the root, then each folder below it relative
to the previous one (``openat(2)``) with ``O_NOFOLLOW | O_DIRECTORY``. The
descriptor it returns is a folder that was inside the root when it was opened,
whatever happens to the names later, and the caller acts on names inside it
with ``dir_fd=`` (``unlinkat``, ``renameat``, ``linkat``, ``fstatat``), which
never leave that folder. This is what Linux's ``openat2(RESOLVE_NO_SYMLINKS)``
(Linux >= 5.6) does in one call, done one component at a time so that it works
on every POSIX system.

The root itself is opened by its path, following links: it is the folder the
user registered, and a library folder that is a link (``~/Music`` on another
drive) is common.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path, PurePath
from types import TracebackType

from taperoom.errors import Conflict

__all__ = ["Folder", "SymlinkRefused", "open_folder", "parts_inside"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


class SymlinkRefused(Conflict):
    """A folder on the path (or the file itself) is a symbolic link (HTTP 409).

    Attributes
    ----------
    path : str
        The link.
    """

    def __init__(self, path: str | os.PathLike[str], root: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        super().__init__(f"{self.path} is a symbolic link; file operations do not follow "
                         f"links out of the folder {os.fspath(root)}, so nothing was changed")


def parts_inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> list[str]:
    """The names leading from `root` to `path`, both taken lexically (nothing resolved).

    Parameters
    ----------
    root, path : str or PathLike
        Absolute paths; `path` is normalised (``os.path.abspath``) first.

    Returns
    -------
    list of str
        Non-empty; the last element is the name of `path` itself.

    Raises
    ------
    ValueError
        `path` is `root` itself or not below it.
    """
    rel = PurePath(os.path.abspath(path)).relative_to(os.path.abspath(root))
    parts = list(rel.parts)
    if not parts:
        raise ValueError(f"{os.fspath(path)} is the folder {os.fspath(root)} itself")
    return parts


class Folder:
    """A folder opened by :func:`open_folder`; close it (or use ``with``) when done.

    Attributes
    ----------
    path : Path
        The (lexical) path it was opened by, for messages.
    fd : int
        Its descriptor, for the ``dir_fd`` arguments of :mod:`os` functions.
    root : Path
        The root it was opened from.
    """

    def __init__(self, root: Path, path: Path, fds: list[int], names: list[str],
                 created: list[int]) -> None:
        self.root = root
        self.path = path
        self._fds = fds          # the root's first, this folder's last
        self._names = names      # names[i] is the folder of fds[i + 1] inside fds[i]
        self._created = created  # indexes into names of the folders open_folder made

    @property
    def fd(self) -> int:
        """Descriptor of the folder."""
        return self._fds[-1]

    @property
    def created(self) -> list[Path]:
        """Folders that :func:`open_folder` made (outermost first)."""
        return [self.root.joinpath(*self._names[:i + 1]) for i in self._created]

    def lstat(self, name: str) -> os.stat_result | None:
        """``lstat`` of the entry `name` in the folder, or None when there is none."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def sync(self) -> None:
        """Flush the folder's entries to disk (best effort, as ``fslock.fsync_dir``)."""
        with contextlib.suppress(OSError):
            os.fsync(self.fd)

    def remove_created(self) -> None:
        """Remove the folders :func:`open_folder` made, innermost first, while empty."""
        for i in reversed(self._created):
            try:
                os.rmdir(self._names[i], dir_fd=self._fds[i])
            except OSError:
                break
        self._created = []

    def close(self) -> None:
        """Close every descriptor (idempotent)."""
        fds, self._fds = self._fds, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _refusal(fd: int, name: str, shown: Path, root: Path, exc: OSError,
             follow_symlinks: bool) -> OSError | Conflict:
    """Why ``openat(fd, name, O_DIRECTORY | O_NOFOLLOW)`` failed, as the error to raise."""
    if follow_symlinks:  # ENOENT (a dangling link too), ENOTDIR, EACCES: as they are
        exc.filename = str(shown)
        return exc
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return FileNotFoundError(errno.ENOENT, "No such file or directory", str(shown))
    except OSError:
        return exc
    if stat.S_ISLNK(st.st_mode):
        return SymlinkRefused(shown, root)
    if not stat.S_ISDIR(st.st_mode):
        return NotADirectoryError(errno.ENOTDIR, "Not a directory", str(shown))
    exc.filename = str(shown)
    return exc


def open_folder(root: str | os.PathLike[str], names: Sequence[str], *,
                follow_symlinks: bool = False, create: bool = False) -> Folder:
    """Open the folder ``root/names[0]/names[1]/...`` without leaving `root`.

    Parameters
    ----------
    root : str or PathLike
        The folder to stay in (opened by its path; links in it are followed).
    names : sequence of str
        Folder names below `root`, outermost first (empty: `root` itself). ``.``,
        ``..``, empty names and names holding ``/`` or NUL are refused.
    follow_symlinks : bool
        Follow links on the way down (a library folder set to follow links,
        as its scan does); by default a link is refused.
    create : bool
        Make missing folders (mode 0o777 less the umask); they are listed in
        :attr:`Folder.created`, and :meth:`Folder.remove_created` takes them away.

    Returns
    -------
    Folder
        Open; the caller closes it.

    Raises
    ------
    SymlinkRefused
        A name on the way is a symbolic link (and `follow_symlinks` is False).
    FileNotFoundError
        `root` or a folder is missing (and `create` is False).
    NotADirectoryError
        A name on the way is not a folder.
    ValueError
        A name is not a single path component.
    OSError
        Any other failure (permission denied...).
    """
    root_path = Path(os.path.abspath(root))
    for name in names:
        if name in ("", ".", "..") or "/" in name or "\x00" in name:
            raise ValueError(f"not a folder name: {name!r}")
    flags = _DIR_FLAGS | (0 if follow_symlinks else os.O_NOFOLLOW)
    fds = [os.open(root_path, _DIR_FLAGS)]
    created: list[int] = []
    try:
        for i, name in enumerate(names):
            shown = root_path.joinpath(*names[:i + 1])
            try:
                fd = os.open(name, flags, dir_fd=fds[-1])
            except OSError as exc:
                refusal = _refusal(fds[-1], name, shown, root_path, exc, follow_symlinks)
                if not (create and isinstance(refusal, FileNotFoundError)):
                    raise refusal from None
                try:
                    os.mkdir(name, dir_fd=fds[-1])
                    created.append(i)
                except FileExistsError:  # made at the same time by someone else
                    pass
                try:
                    fd = os.open(name, flags, dir_fd=fds[-1])
                except OSError as again:
                    raise _refusal(fds[-1], name, shown, root_path, again,
                                   follow_symlinks) from None
            fds.append(fd)
    except BaseException:
        folder = Folder(root_path, root_path.joinpath(*names), fds, list(names), created)
        folder.remove_created()
        folder.close()
        raise
    return Folder(root_path, root_path.joinpath(*names), fds, list(names), created)
