"""What ``getTrackInfo`` answers about a track, read from the library database."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.enginelink import protocol
from taperoom.library.repository import tracks as repo
from taperoom.library.tracks import canonical_id, preferred_cues


class TrackInfoError(Exception):
    """A ``getTrackInfo`` that fails with one of the contract's error strings.

    Parameters
    ----------
    error : str
        ``Track not found``, ``Library directory not found`` or ``Track file missing``.
    """

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class TrackInfo:
    """A track as the engine receives it.

    Attributes
    ----------
    track_id : str
    file_path : str
        The library folder's path joined with the track's relative path (as the
        original built it), absolute.
    analysed : bool
        Whether the track has a tempo, a key and a mode; the engine needs them
        (the original only looked at the tempo, which left ``"key":"null"``).
    bpm, key, mode, first_beat_offset, first_phrase_beat_no
        Columns of the track (None when unset).
    hot_cues : list of dict
        One cue per index, of the preferred source (user > rekordbox > serato >
        mixedInKey > virtual dj), as :func:`protocol.hot_cue` builds them.
    """

    track_id: str
    file_path: str
    analysed: bool
    bpm: float | None
    key: int | None
    mode: int | None
    first_beat_offset: float | None
    first_phrase_beat_no: int | None
    hot_cues: list[dict[str, Any]]

    def reply(self, request_id: Any, track_id: Any = None) -> dict[str, Any]:
        """The success reply of ``getTrackInfo`` (:func:`protocol.track_info_reply`),
        naming the track as the request did (`track_id`, default its own id)."""
        return protocol.track_info_reply(
            request_id, self.track_id if track_id is None else track_id,
            file_path=self.file_path, bpm=self.bpm, key=self.key, mode=self.mode,
            first_beat_offset=self.first_beat_offset,
            first_phrase_beat_no=self.first_phrase_beat_no, hot_cues=self.hot_cues)


class TrackInfoReader:
    """Reads :class:`TrackInfo` of tracks.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    """

    def __init__(self, db: sessionmaker[Session]) -> None:
        self.db = db

    def read(self, track_id: str) -> TrackInfo:
        """The track `track_id` as the engine receives it.

        Raises
        ------
        TrackInfoError
            ``Track not found`` (no such track, or not a UUID), ``Library directory
            not found`` (the track belongs to no folder, or its folder is gone),
            ``Track file missing`` (marked missing, or not a file on disk now).
        """
        cid = canonical_id(track_id)
        with self.db() as s:
            track = repo.get_track(s, cid) if cid else None
            if track is None:
                raise TrackInfoError(protocol.TRACK_NOT_FOUND)
            folder = (repo.get_directory(s, track.library_directory_id)
                      if track.library_directory_id else None)
            if folder is None:
                raise TrackInfoError(protocol.DIRECTORY_NOT_FOUND)
            path = (os.path.join(folder.path, track.relative_path) if track.relative_path
                    else track.file_path)
            if track.is_missing or not os.path.isfile(path):
                raise TrackInfoError(protocol.FILE_MISSING)
            cues = [protocol.hot_cue(c.cue_index, c.position, bool(c.is_loop), c.loop_end)
                    for c in preferred_cues(list(repo.list_hot_cues(s, track.id)))]
            return TrackInfo(
                track_id=track.id, file_path=path,
                analysed=bool(track.bpm) and track.musical_key is not None
                and track.mode is not None,
                bpm=track.bpm, key=track.musical_key, mode=track.mode,
                first_beat_offset=track.first_beat_offset,
                first_phrase_beat_no=track.first_phrase_beat_no, hot_cues=cues)

    def track_of(self, track_id: str) -> str | None:
        """The canonical id of track `track_id` when it exists, else None."""
        cid = canonical_id(track_id)
        if cid is None:
            return None
        with self.db() as s:
            return cid if repo.get_track(s, cid) is not None else None
