"""Removable media: which library folders live on them, and whether a folder is reachable.

Decisions (as DJ software does it):

* **Removable** (``is_removable``), when the client does not say: a folder below
  ``/media``, ``/mnt``, ``/run/media`` (Linux mount roots) or ``/Volumes``
  (macOS), or on another device (``st_dev``) than both the user's home and the
  file-system root, counts as removable. The client may always override it.
* **Available**: a folder is available when it is a readable, listable
  directory; a removable folder that exists but is empty while the database knows
  tracks in it is an unmounted mount point, so it is unavailable.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from taperoom.library.models import LibraryDirectory

#: Mount roots of removable and network media: udisks (``/media``, ``/run/media``),
#: the traditional ``/mnt``, and macOS (``/Volumes``).
REMOVABLE_ROOTS: tuple[Path, ...] = (Path("/media"), Path("/mnt"), Path("/run/media"),
                                     Path("/Volumes"))


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
