"""Cleanup of missing tracks, and the JSON backup written before anything is deleted.

Cleanup deletes the rows of tracks missing since more than N days; tracks marked
missing without a date are never removed. The backup goes to ``backups/``
beside the database file and is written (atomically) before anything is deleted.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from taperoom.errors import TaperoomError
from taperoom.library.models import LibraryDirectory, PlaylistTrack, Track
from taperoom.library.repository import directories as repo
from taperoom.library.schemas import CleanupRequest, hot_cue_dict, iso, track_dict


def _entry_dict(entry: PlaylistTrack) -> dict[str, Any]:
    """Every stored field of a playlist entry (times as ISO strings)."""
    return {col.key: (iso(v) if isinstance(v := getattr(entry, col.key), datetime) else v)
            for col in PlaylistTrack.__table__.columns}


def backup_folder(database_path: Path) -> Path:
    """Where cleanup backups go: ``backups/`` beside the database file."""
    return Path(database_path).expanduser().resolve().parent / "backups"


def _b64(blob: bytes | None) -> str | None:
    return base64.b64encode(blob).decode("ascii") if blob is not None else None


def write_backup(folder: Path, session: Session, directory: LibraryDirectory,
                 tracks: list[Track], request: CleanupRequest, now: datetime) -> Path:
    """Write the JSON export of `tracks` (atomically) and return its path.

    The file (in `folder`) holds, per track, the full track object (binary beat
    data as base64), its hot cues and its playlist places.

    Raises
    ------
    TaperoomError
        The file could not be written (HTTP 500); nothing was written then.
    """
    ids = [t.id for t in tracks]
    cues = repo.hot_cues_of(session, ids)
    places = repo.memberships_of(session, ids)
    exported = []
    for track in tracks:
        item = track_dict(track)
        item["beats_data"] = _b64(track.beats_data)
        item["downbeats_data"] = _b64(track.downbeats_data)
        item["hot_cues"] = [hot_cue_dict(c) for c in cues.get(track.id, [])]
        item["playlists"] = [
            {"playlist_id": playlist.id, "playlist_name": playlist.name,
             "playlist_type": playlist.type, **_entry_dict(entry)}
            for entry, playlist in places.get(track.id, [])]
        exported.append(item)
    document = {
        "format": "taperoom.missing-tracks-backup", "version": 1,
        "created_at": iso(now),
        "library_directory": {"id": directory.id, "name": directory.name,
                              "path": directory.path},
        "criteria": request.model_dump(exclude={"backup_metadata"}),
        "track_count": len(exported), "tracks": exported,
    }
    target = folder / f"missing-tracks-{directory.id[:8]}-{now:%Y%m%dT%H%M%S%fZ}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".backup-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(document, fh, ensure_ascii=False, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise TaperoomError(f"Could not write the metadata backup in {folder}: "
                            f"{exc.strerror or exc}") from exc
    return target
