"""Which folders may be library folders.

A library folder is walked by every scan, watched with one inotify watch per
sub-folder and written to by file operations (move, rename, delete). A folder
that holds the operating system rather than music must not become one: adding
``/`` made the watcher take 74,000 inotify watches and a core, and let a track
be moved into ``/etc``. :class:`FolderPolicy` refuses

* the **filesystem root** ``/`` (however it is spelt: ``//``, ``/./``, ``/..``,
  or a symbolic link to it; paths are resolved first);
* the **system's own folders** of the Filesystem Hierarchy Standard 3.0
  (https://refspecs.linuxfoundation.org/FHS_3.0/fhs-3.0.html): ``/bin``,
  ``/boot``, ``/dev``, ``/etc``, ``/lib*``, ``/proc``, ``/root``, ``/run``,
  ``/sbin``, ``/sys``, ``/usr``, ``/var``, plus ``/snap`` and ``/lost+found``,
  and everything below them; ``/home`` and ``/tmp`` themselves (their
  sub-folders are fine);
* folders on a **pseudo filesystem** that exposes kernel state rather than
  files (``proc``, ``sysfs``, ``devtmpfs``, ``cgroup``, ``debugfs``, ...),
  recognised by the filesystem type of the mount that holds the folder
  (``/proc/self/mounts`` through :func:`psutil.disk_partitions`), wherever it
  is mounted.

Decisions where the issue was silent
------------------------------------
* Where users keep media below a system folder, the folder stays allowed:
  ``/run/media`` (udisks2 mounts removable drives there, as ``/media``),
  ``/run/user/<uid>/gvfs`` (network shares opened in GNOME's file manager) and
  ``/var/lib/mpd/music`` (the music folder of Debian's MPD package). There is
  no such convention below ``/usr`` (``/usr/share/sounds`` holds desktop
  sounds), so ``/usr`` is refused whole.
* ``/home`` itself is refused (it holds every user's home; on a shared machine
  that is everyone's files), a home folder such as ``/home/dj`` is allowed;
  ``/root`` is the administrator's home and is refused with ``/root/Music``.
* ``LIBRARY_ALLOWED_ROOTS`` (:attr:`LibrarySettings.allowed_roots`) lists folders
  that are allowed, with everything below them, even though the lists above
  refuse them (``/`` included, when listed exactly). Pseudo filesystems stay
  refused whatever the setting says: they hold no files to play.
* A tmpfs is not a pseudo filesystem here: a RAM disk can hold music; the tmpfs
  of ``/run`` and ``/dev/shm`` are refused by their system folders.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from taperoom.errors import InvalidInput

log = logging.getLogger(__name__)

#: Name of the setting that allows refused folders (for messages).
SETTING = "LIBRARY_ALLOWED_ROOTS"
PREFIX = "Refused as a library folder: "

#: Filesystem types that expose kernel or process state, not stored files: the
#: ``nodev`` entries of Linux's ``/proc/filesystems`` of that kind (proc(5),
#: sysfs(5), cgroups(7), Documentation/filesystems/ of the kernel), and the BSD
#: and macOS equivalents (``devfs``, ``fdescfs``, ``procfs``, ``linprocfs``).
PSEUDO_FILESYSTEMS = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
    "securityfs", "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs",
    "binfmt_misc", "efivarfs", "selinuxfs", "smackfs", "rpc_pipefs", "nfsd", "nsfs",
    "autofs", "devfs", "fdescfs", "procfs", "linprocfs", "linsysfs",
})

#: System folders refused with everything below them, with what they hold (FHS 3.0).
SYSTEM_TREES: dict[str, str] = {
    "/bin": "essential programs",
    "/boot": "the boot loader and kernels",
    "/dev": "device files",
    "/etc": "the system configuration",
    "/lib": "system libraries",
    "/lib32": "system libraries",
    "/lib64": "system libraries",
    "/libx32": "system libraries",
    "/lost+found": "files recovered by fsck",
    "/proc": "kernel and process information",
    "/root": "the administrator's home folder",
    "/run": "run-time state of programs",
    "/sbin": "system programs",
    "/snap": "snap packages",
    "/sys": "kernel objects",
    "/usr": "installed software",
    "/var": "logs, caches, spools and databases of programs",
}
#: System folders refused themselves; their sub-folders are allowed.
SYSTEM_FOLDERS: dict[str, str] = {
    "/home": "it holds every user's home folder; add your own, e.g. /home/<user>/Music",
    "/tmp": "temporary files of every program",
}
#: Folders below :data:`SYSTEM_TREES` where users keep media (``fnmatch`` patterns
#: matched per path component); allowed with everything below them.
MEDIA_EXCEPTIONS: tuple[str, ...] = (
    "/run/media",            # udisks2 mounts of removable drives
    "/run/user/*/gvfs",      # GNOME (gvfs) network shares
    "/var/lib/mpd/music",    # Debian's MPD music folder
)


@dataclass(frozen=True)
class Mount:
    """One line of the mount table.

    Attributes
    ----------
    mountpoint : str
        Absolute path where the filesystem is mounted.
    fstype : str
        Filesystem type as the kernel names it (``ext4``, ``proc``, ``tmpfs``...).
    """

    mountpoint: str
    fstype: str


def system_mounts() -> list[Mount]:
    """This machine's mount table, every filesystem included (``psutil.disk_partitions``).

    Returns
    -------
    list of Mount
        In mount order (a later mount on the same point hides an earlier one); empty
        when the table cannot be read.
    """
    import psutil

    try:
        parts = psutil.disk_partitions(all=True)
    except (OSError, RuntimeError) as exc:  # no /proc (a chroot), or a platform without it
        log.warning("cannot read the mount table: %s", exc)
        return []
    return [Mount(p.mountpoint, p.fstype) for p in parts]


class RefusedFolder(InvalidInput):
    """A path that may not be a library folder (HTTP 400, as other unusable paths).

    The message starts with ``Refused as a library folder:`` and says why.
    """


def _under(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _resolved(path: Path) -> Path:
    """`path` absolute, with ``~``, ``.``, ``..``, doubled slashes and symlinks resolved."""
    real = Path(os.path.realpath(os.path.expanduser(os.fspath(path))))
    return Path("/") if not str(real).strip("/") else real


class FolderPolicy:
    """Decides whether a folder may be a library folder (see the module notes).

    Parameters
    ----------
    allowed_roots : iterable of Path
        Folders allowed, with everything below them, although the system-folder
        rules refuse them (``LIBRARY_ALLOWED_ROOTS``); symlinks in them are resolved.
    mounts : callable() -> sequence of Mount, optional
        The mount table, read on every check (default :func:`system_mounts`).
    """

    def __init__(self, allowed_roots: Iterable[Path] = (),
                 mounts: Callable[[], Sequence[Mount]] | None = None) -> None:
        self.allowed_roots = tuple(_resolved(Path(r)) for r in allowed_roots)
        self._mounts = mounts or system_mounts

    def mounts(self) -> list[Mount]:
        """The current mount table (see the `mounts` parameter)."""
        return list(self._mounts())

    def _filesystem(self, path: Path) -> str | None:
        """Type of the filesystem mounted at the deepest mount point holding `path`."""
        best: tuple[int, str] | None = None
        for mount in self.mounts():
            point = Path(mount.mountpoint)
            if point.is_absolute() and _under(path, point):
                depth = len(point.parts)
                if best is None or depth >= best[0]:  # a later mount hides an earlier one
                    best = (depth, mount.fstype)
        return best[1] if best else None

    @staticmethod
    def _system(path: Path) -> str | None:
        """What the system folder holding `path` is for; None when it is not one."""
        text = str(path)
        for pattern in MEDIA_EXCEPTIONS:
            want = Path(pattern).parts
            have = path.parts[:len(want)]
            if len(have) == len(want) and all(
                    fnmatch.fnmatchcase(a, b) for a, b in zip(have, want, strict=True)):
                return None
        if text in SYSTEM_FOLDERS:
            return SYSTEM_FOLDERS[text]
        for root, what in SYSTEM_TREES.items():
            if _under(path, Path(root)):
                return f"{what}, {root}" if text != root else what
        return None

    def refusal(self, path: Path) -> str | None:
        """Why `path` may not be a library folder, or None when it may.

        Parameters
        ----------
        path : Path
            The folder as the client sent it; it is resolved first (``~``, ``..``,
            symlinks), so a link to ``/`` is refused as ``/``. It need not exist.

        Returns
        -------
        str or None
            ``"Refused as a library folder: <resolved path> is ..."`` with the reason
            and what to do instead.
        """
        real = _resolved(path)
        fstype = self._filesystem(real)
        pseudo = fstype if fstype in PSEUDO_FILESYSTEMS else None
        allowed = any(_under(real, root) for root in self.allowed_roots)
        if pseudo is not None:
            return (f"{PREFIX}{real} is on a {pseudo} pseudo filesystem, which holds kernel "
                    f"state rather than files (not even {SETTING} allows it)")
        if allowed:
            return None
        if real == Path("/"):
            return (f"{PREFIX}/ is the filesystem root; add the folder that holds your music "
                    f"(or list / in {SETTING} to allow it anyway)")
        why = self._system(real)
        if why is not None:
            return (f"{PREFIX}{real} is a system folder ({why}); add the folder that holds "
                    f"your music, or list the folder in {SETTING} to allow it anyway")
        return None

    def check(self, path: Path) -> None:
        """Raise :class:`RefusedFolder` (HTTP 400) when `path` may not be a library folder.

        Raises
        ------
        RefusedFolder
            With the message of :meth:`refusal`.
        """
        reason = self.refusal(path)
        if reason is not None:
            raise RefusedFolder(reason)
