"""Browsing a library folder: its sub-folders and tracks, one level at a time.

Decisions: sub-folders on disk and those known from the database are listed (so
a disconnected drive can still be browsed), dot-folders (``.Trashes``,
``.Spotlight-V100``) are hidden, and the tracks at that level are listed sorted
by file name, missing ones included (``is_missing: 1``). Folder figures count
present tracks; ``missingCount`` counts the others. A sub-folder path is
confined to its library folder (``..``, absolute paths and links leading out are
``Invalid path``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.errors import InvalidInput, NotFound
from taperoom.library.models import LibraryDirectory
from taperoom.library.repository import directories as repo
from taperoom.library.schemas import track_dict

INVALID_PATH = "Invalid path"
_DRIVE = re.compile(r"^[A-Za-z]:")


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


def browse(db: sessionmaker[Session], directory: LibraryDirectory, raw_path: str | None
           ) -> dict[str, Any]:
    """Sub-folders and tracks at one level of a library folder.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    directory : LibraryDirectory
        The library folder (the caller has checked the folder policy).
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
        A sub-folder that is neither on disk nor known from the database (404).
    InvalidInput
        ``Invalid path``: traversal, absolute path, or a symlink leading outside
        the library folder (400).
    """
    rel = relative_folder(raw_path)
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

    with db() as session:
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
    crumbs = [{"name": directory.name or root.name or str(root), "path": ""}]
    so_far: list[str] = []
    for part in rel.split("/") if rel else []:
        so_far.append(part)
        crumbs.append({"name": part, "path": "/".join(so_far)})
    return {
        "libraryDirectoryId": directory.id, "path": rel, "absolutePath": str(target),
        "parentPath": None if not rel else rel.rpartition("/")[0],
        "breadcrumbs": crumbs, "available": on_disk, "folders": listing,
        "tracks": [track_dict(t) for t in tracks],
        "stats": {"totalTracks": total, "totalSize": size, "missingTracks": missing,
                  "folderCount": len(listing), "trackCount": len(tracks)},
    }


#: Most sub-folders one answer of :func:`server_folders` lists.
MAX_SERVER_FOLDERS = 2000


def server_folders(raw: str | None, refusal: Callable[[Path], str | None]) -> dict[str, Any]:
    """One level of the server's folders, for choosing a new library folder.

    Parameters
    ----------
    raw : str or None
        An absolute folder path (``~`` expanded); None or blank: the home folder of
        the user the server runs as.
    refusal : callable
        Why a folder may not be a library folder, or None
        (:meth:`~taperoom.library.folderpolicy.FolderPolicy.refusal`).

    Returns
    -------
    dict
        ``{path, parent, refused, folders: [{name, path, refused}], truncated}``:
        `path` resolved, `parent` None at ``/``, `refused` the policy's reason or
        None; dot-folders hidden; at most :data:`MAX_SERVER_FOLDERS` folders,
        sorted by name without case (`truncated` tells whether some were left out).

    Raises
    ------
    InvalidInput
        ``Invalid path``: a relative path or a NUL character (HTTP 400).
    NotFound
        ``Folder not found``: no such readable folder (HTTP 404).
    """
    text = (raw or "").strip() or "~"
    if "\x00" in text:
        raise InvalidInput(INVALID_PATH)
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise InvalidInput(INVALID_PATH)
    try:
        real = path.resolve(strict=True)
        with os.scandir(real) as entries:
            names = []
            for entry in entries:
                try:
                    if not entry.name.startswith(".") and entry.is_dir():
                        names.append(entry.name)
                except OSError:
                    continue
    except (OSError, RuntimeError) as exc:
        raise NotFound("Folder not found") from exc
    names.sort(key=lambda n: (n.casefold(), n))
    shown = names[:MAX_SERVER_FOLDERS]
    folders = [{"name": n, "path": str(real / n), "refused": refusal(real / n)} for n in shown]
    return {"path": str(real), "parent": str(real.parent) if real.parent != real else None,
            "refused": refusal(real), "folders": folders,
            "truncated": len(names) > len(shown)}
