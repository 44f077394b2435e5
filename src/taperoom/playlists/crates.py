"""Crates: a tree of playlist folders (as rekordbox's and Serato's), under
``/api/playlists/folders``.

A folder has a ``name`` and a ``parent_id`` (None: at the top); a playlist is
filed in one by its ``folder_id``. Moving a folder under itself or one of its
own sub-folders is 409. Deleting a folder that holds sub-folders or playlists
is 409 unless ``recursive``, which deletes the sub-folders and their playlists
too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.events import EventBus, send_playlist_updates
from taperoom.library import models
from taperoom.library.repository import playlists as repo
from taperoom.playlists.errors import PlaylistConflict, folder_not_found
from taperoom.playlists.views import folder_dict, playlist_dict


class CrateService:
    """Playlist folders.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``playlist:updated`` (``deleted``) for playlists a recursive delete
        removes.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus) -> None:
        self.db = db
        self.bus = bus

    def tree(self) -> dict[str, Any]:
        """``{folders: [folder node], playlists: [playlists at the top], count}``: each
        node is a folder with ``folders`` (its sub-folders) and ``playlists`` (with
        ``track_count``); ``count`` is the number of folders."""
        with self.db() as s:
            folders = repo.all_folders(s)
            playlists = repo.list_playlists(s)
            nodes = _nodes(folders, playlists)
            top = [n for f, n in zip(folders, nodes.values(), strict=True)
                   if f.parent_id is None or f.parent_id not in nodes]
            loose = [playlist_dict(p, track_count=n) for p, n in playlists
                     if p.folder_id is None or p.folder_id not in nodes]
            return {"folders": top, "playlists": loose, "count": len(folders)}

    def get(self, folder_id: str) -> dict[str, Any]:
        """A folder node with its sub-tree; PlaylistNotFound ``Folder not found`` (404)."""
        with self.db() as s:
            if repo.get_folder(s, folder_id) is None:
                raise folder_not_found(folder_id)
            nodes = _nodes(repo.all_folders(s), repo.list_playlists(s))
            return nodes[folder_id]

    def create(self, name: str, parent_id: str | None = None) -> dict[str, Any]:
        """A new folder (under `parent_id`); PlaylistNotFound (404) for an unknown parent."""
        with transaction(self.db) as s:
            if parent_id is not None and repo.lock_folder(s, parent_id) is None:
                raise folder_not_found(parent_id)
            folder = repo.create_folder(s, name, parent_id)
            return {**folder_dict(folder), "folders": [], "playlists": []}

    def update(self, folder_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Rename (``name``) or move (``parent_id``, None: to the top) a folder.

        Raises
        ------
        PlaylistNotFound
            No such folder or parent (404).
        PlaylistConflict
            The new parent is the folder itself or inside it (409).
        """
        with transaction(self.db) as s:
            if repo.lock_folder(s, folder_id) is None:
                raise folder_not_found(folder_id)
            if "parent_id" in changes and changes["parent_id"] is not None:
                parent_id = changes["parent_id"]
                if repo.get_folder(s, parent_id) is None:
                    raise folder_not_found(parent_id)
                parents = {f.id: f.parent_id for f in repo.all_folders(s)}
                step: str | None = parent_id
                while step is not None:
                    if step == folder_id:
                        raise PlaylistConflict(
                            "Folder cycle", "A folder cannot be moved into itself or into "
                                            "one of its own sub-folders")
                    step = parents.get(step)
            repo.update_folder(s, folder_id, changes)
        return self.get(folder_id)

    def delete(self, folder_id: str, *, recursive: bool = False) -> dict[str, Any]:
        """Delete a folder; with `recursive`, its sub-folders and every playlist in them.

        Returns
        -------
        dict
            ``{message, id, folders_deleted, playlists_deleted}``.

        Raises
        ------
        PlaylistNotFound
            No such folder (404).
        PlaylistConflict
            Not empty and not `recursive` (409).
        """
        with transaction(self.db) as s:
            if repo.lock_folder(s, folder_id) is None:
                raise folder_not_found(folder_id)
            children: dict[str | None, list[str]] = {}
            for f in repo.all_folders(s):
                children.setdefault(f.parent_id, []).append(f.id)
            subtree, todo = [], [folder_id]
            while todo:
                current = todo.pop()
                subtree.append(current)
                todo.extend(children.get(current, []))
            playlist_ids = repo.playlists_in_folders(s, subtree)
            if (len(subtree) > 1 or playlist_ids) and not recursive:
                raise PlaylistConflict(
                    "Folder not empty",
                    f"The folder holds {len(subtree) - 1} folder(s) and {len(playlist_ids)} "
                    "playlist(s); delete with recursive=true to delete them too")
            repo.delete_playlists(s, playlist_ids)
            repo.delete_folders(s, list(reversed(subtree)))
        send_playlist_updates(self.bus, sorted(playlist_ids), "deleted")
        return {"message": "Folder deleted successfully", "id": folder_id,
                "folders_deleted": len(subtree), "playlists_deleted": len(playlist_ids)}


def _nodes(folders: list[models.PlaylistFolder],
           playlists: list[tuple[models.Playlist, int]]) -> dict[str, dict[str, Any]]:
    """Every folder's node (``folders`` and ``playlists`` filled), by id, in the
    order of `folders`."""
    nodes = {f.id: {**folder_dict(f), "folders": [], "playlists": []} for f in folders}
    for f in folders:
        if f.parent_id is not None and f.parent_id in nodes:
            nodes[f.parent_id]["folders"].append(nodes[f.id])
    for p, n in playlists:
        if p.folder_id is not None and p.folder_id in nodes:
            nodes[p.folder_id]["playlists"].append(playlist_dict(p, track_count=n))
    return nodes
