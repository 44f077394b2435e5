"""Track service: listing, full-text search, CRUD, verification, analysis reads, hot cues.

Routers (``library/api/tracks.py``, ``library/api/hot_cues.py``) validate the
request with the models of :mod:`taperoom.library.schemas` and call :class:`TrackService`; the
service opens transactions, applies the rules of contracts/library.md §2 and
sends the ``track:*`` events. All SQL is in :mod:`taperoom.library.repository.tracks`.

Edits made here are database-only: ``PUT /api/tracks/:id`` never rewrites the
tags of the audio file (as Mixxx and rekordbox keep their own metadata).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from taperoom.audio.hashing import audio_hash, quick_hash
from taperoom.audio.tags import read_tags, title_from_filename
from taperoom.db import transaction
from taperoom.errors import Conflict, InvalidInput, MediaError, NotFound
from taperoom.events import Event, EventBus, send_playlist_updates
from taperoom.library import models
from taperoom.library.playback import media_type, playable_file
from taperoom.library.repository import directories as dir_repo
from taperoom.library.repository import fileops as fileops_repo
from taperoom.library.repository import tracks as repo
from taperoom.library.scanner.read import tag_columns
from taperoom.library.schemas import (
    HOT_CUE_SOURCES,
    STEM_BANDS,
    WAVEFORM_BANDS,
    HotCueBody,
    HotCueUpdate,
    TrackCreate,
    TrackListQuery,
    TrackSearchQuery,
    TrackUpdate,
    hot_cue_dict,
    track_dict,
    track_values_dict,
    with_key_names,
)

log = logging.getLogger(__name__)

class TrackNotFound(NotFound):
    """No track has this id (also for ids that are not UUIDs).

    Answered as ``{"success": false, "error": "Track not found", "message":
    "Track with ID <id> does not exist"}`` (404; :meth:`extra` gives the
    ``message``).
    """

    def __init__(self, track_id: str) -> None:
        super().__init__("Track not found")
        self.track_id = track_id
        self.detail = f"Track with ID {track_id} does not exist"

    def extra(self) -> dict[str, Any]:
        """``{"message": "Track with ID <id> does not exist"}``."""
        return {"message": self.detail}


def track_filters(query: TrackListQuery) -> repo.TrackFilters:
    """The repository filters of a list or search query (`q` of a search wins over
    ``search``)."""
    search = query.q if isinstance(query, TrackSearchQuery) else query.search
    return repo.TrackFilters(
        artist=query.artist, genre=query.genre, album=query.album, bpm_min=query.bpm_min,
        bpm_max=query.bpm_max, key=query.key, mode=query.mode,
        library_id=str(query.library_id) if query.library_id else None,
        is_missing=query.is_missing, duplicate_group_id=query.duplicate_group_id,
        year_min=query.year_min, year_max=query.year_max, rating_min=query.rating_min,
        has_file_hash=query.has_file_hash, is_analyzed=query.is_analyzed, search=search)


# --- service ------------------------------------------------------------------------


def canonical_id(value: str) -> str | None:
    """The canonical lower-case form of a UUID string, or None if it is not a UUID."""
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        return None


def _decode_json_blob(blob: bytes | str | None) -> Any:
    if blob is None:
        return None
    try:
        return json.loads(blob)
    except (ValueError, UnicodeDecodeError):
        return None


#: Keys of a stored waveform's data that go out (the header is taken from its columns).
_WAVEFORM_KEYS = (*WAVEFORM_BANDS, *STEM_BANDS, "sample_rate", "samples_per_pixel",
                  "num_pixels")


def waveform_dict(wf: models.Waveform) -> dict[str, Any]:
    """Waveform object of the contract: the stored header plus the band arrays of its data.

    The data is the analyzer's compact binary form
    (:func:`taperoom.analysis.waveform.encode_waveforms`, bands as lists of 0-1
    values) or, for waveforms of the original backend, a JSON object.
    ``samples_per_point``/``num_points`` columns go out as ``samples_per_pixel``/
    ``num_pixels``; the band arrays of the JSON object stored in ``data``
    (``low_freq_amplitude`` ..., or ``vocals_amplitude`` ... for stems,
    :data:`~taperoom.library.schemas.WAVEFORM_BANDS` and ``STEM_BANDS``) go out as
    given (arrays or base64); other keys of the stored object do not.
    """
    blob = wf.data
    if isinstance(blob, bytes | memoryview) and bytes(blob[:4]) == b"TRWF":
        # the analyzer's compact form (one level per row), served in the contract's shape
        from taperoom.analysis.waveform import decode_waveforms

        try:
            data: Any = decode_waveforms(bytes(blob))[0].to_contract()
        except (ValueError, IndexError):
            log.warning("damaged waveform of %s, zoom level %s", wf.file_hash, wf.zoom_level)
            data = None
    else:
        data = _decode_json_blob(blob)
    out: dict[str, Any] = ({k: data[k] for k in _WAVEFORM_KEYS if k in data}
                           if isinstance(data, dict) else {"data": data})
    out.update({"file_hash": wf.file_hash, "zoom_level": wf.zoom_level,
                "sample_rate": wf.sample_rate if wf.sample_rate is not None
                else out.get("sample_rate"),
                "samples_per_pixel": wf.samples_per_point if wf.samples_per_point is not None
                else out.get("samples_per_pixel"),
                "num_pixels": wf.num_points if wf.num_points is not None
                else out.get("num_pixels")})
    return out


def _mark_user_fields(track: models.Track, changes: dict[str, Any]) -> None:
    """Record in ``user_fields`` the analysis fields of `changes` the user set (a
    null hands the field back to the analysis)."""
    names = set(track.user_fields or ())
    for name in models.USER_FIELDS:
        if name in changes:
            if changes[name] is None:
                names.discard(name)
            else:
                names.add(name)
    if names != set(track.user_fields or ()):
        track.user_fields = sorted(names) or None  # null: none (as on the wire)


def preferred_cues(cues: list[models.HotCue]) -> list[models.HotCue]:
    """One hot cue per index, preferring sources in :data:`HOT_CUE_SOURCES` order."""
    rank = {s: i for i, s in enumerate(HOT_CUE_SOURCES)}
    best: dict[int, models.HotCue] = {}
    for cue in cues:
        held = best.get(cue.cue_index)
        if held is None or rank.get(cue.source, 99) < rank.get(held.source, 99):
            best[cue.cue_index] = cue
    return [best[i] for i in sorted(best)]


class TrackService:
    """Operations on tracks and their hot cues.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``track:*`` and ``engine:first_beat_offset`` events.
    extensions : frozenset of str
        Audio file extensions (lower case, with their dot).

    Raises
    ------
    TrackNotFound
        From every method taking a track id, when no such track exists.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, *,
                 extensions: frozenset[str]) -> None:
        self.db = db
        self.bus = bus
        self.extensions = extensions

    # -- helpers

    def _track(self, session: Session, track_id: str) -> models.Track:
        cid = canonical_id(track_id)
        track = repo.get_track(session, cid) if cid else None
        if track is None:
            raise TrackNotFound(track_id)
        return track

    def _send(self, name: Event | str, data: dict[str, Any]) -> None:
        self.bus.send(name, data)

    # -- listing and search

    def list_tracks(self, query: TrackListQuery) -> tuple[list[dict[str, Any]], int]:
        """One page of tracks and the total count (see :func:`repository.tracks.list_tracks`).

        Returns
        -------
        tracks : list of dict
            Track objects of the contract.
        total : int
        """
        with self.db() as s:
            rows, total = repo.list_tracks(
                s, track_filters(query), sort=query.sort, descending=query.order == "desc",
                page=query.page, limit=query.limit)
            return [track_values_dict(r) for r in rows], total

    def audio_file(self, track_id: str) -> tuple[Path, str]:
        """The file to play for a track and its media type (``GET .../audio``).

        Returns
        -------
        path : Path
            Resolved, inside the track's library folder (see
            :func:`~taperoom.library.playback.playable_file`).
        media_type : str

        Raises
        ------
        TrackNotFound
        NotFound
            ``Track file missing``: the file is gone, not audio, or outside its folder.
        """
        with self.db() as s:
            track = self._track(s, track_id)
            if track.library_directory_id is not None:
                directory = repo.get_directory(s, track.library_directory_id)
                roots = [directory.path] if directory is not None else []
            else:
                roots = [d.path for d in repo.all_directories(s)]
            file_path = track.file_path
        path = playable_file(file_path, roots, extensions=self.extensions)
        return path, media_type(path)

    def stats(self) -> dict[str, Any]:
        """``{total, missing, analyzed, duplicates, total_size (bytes), avg_duration (s)}``."""
        with self.db() as s:
            return repo.track_stats(s)

    # -- one track

    def get(self, track_id: str) -> dict[str, Any]:
        """The track object with its ``hotCues`` (every source, by source then index)."""
        with self.db() as s:
            track = self._track(s, track_id)
            out = track_dict(track)
            out["hotCues"] = [hot_cue_dict(c) for c in repo.list_hot_cues(s, track.id)]
            return out

    def create(self, body: TrackCreate) -> dict[str, Any]:
        """Add one audio file of a library folder as a track.

        The file must exist, have an audio extension and lie inside a library
        directory (the given one, else the innermost one containing it); its
        tags, audio properties and content hash are read as a scan reads them
        (:func:`taperoom.library.scanner.tag_columns`), and fields of `body`
        override the tags.

        Raises
        ------
        InvalidInput
            ``Invalid file path`` (missing, relative or not a file), unsupported
            extension, or the file is outside the library directories.
        NotFound
            `library_directory_id` names no library directory.
        Conflict
            A track already has this path.
        MediaError
            The file cannot be read as audio (HTTP 422).
        """
        raw = Path(body.file_path).expanduser()
        if not raw.is_absolute() or not raw.is_file():
            raise InvalidInput("Invalid file path")
        real = raw.resolve()
        if real.suffix.lower() not in self.extensions:
            raise InvalidInput(f"Unsupported audio file type: {real.suffix or '(none)'}")
        with self.db() as s:
            directory, relative = self._locate(s, real, body.library_directory_id)
            file_path = os.path.join(directory.path, relative)
            if repo.get_track_by_path(s, file_path) is not None:
                raise Conflict(f"Track already exists for file: {file_path}")
            dir_id = directory.id
        track = self._track_from_file(real, body)
        track.file_path = file_path
        track.relative_path = relative
        track.library_directory_id = dir_id
        try:
            with transaction(self.db) as s:
                s.add(track)
                s.flush()
                dir_repo.refresh_stats(s, [dir_id])
                out = track_dict(track)
        except IntegrityError as exc:
            raise Conflict(f"Track already exists for file: {file_path}") from exc
        self._send(Event.TRACK_ADDED, {"trackId": out["id"], "track": out})
        return out

    def _locate(self, s: Session, real: Path, directory_id: uuid.UUID | None
                ) -> tuple[models.LibraryDirectory, str]:
        if directory_id is not None:
            directory = repo.get_directory(s, str(directory_id))
            if directory is None:
                raise NotFound("Library directory not found")
            candidates = [directory]
        else:
            candidates = list(repo.all_directories(s))
        for directory in candidates:
            root = Path(directory.path).expanduser().resolve()
            if real.is_relative_to(root) and real != root:
                return directory, real.relative_to(root).as_posix()
        if directory_id is not None:
            raise InvalidInput(f"File is not inside library directory {candidates[0].path}")
        raise InvalidInput("File is not inside any library directory")

    def _track_from_file(self, real: Path, body: TrackCreate) -> models.Track:
        st = real.stat()
        columns = tag_columns(read_tags(real))
        if not columns["title"]:
            columns["title"] = title_from_filename(real.stem)[1]
        track = models.Track(
            file_size=st.st_size, file_modified=_utc(st.st_mtime),
            file_mtime_ns=st.st_mtime_ns, file_hash=audio_hash(real),
            quick_hash=quick_hash(real), is_missing=False, play_count=0, rating=0,
            analysis_version=1, date_added=models.utcnow(), **columns)
        for name, value in body.model_dump(exclude={"file_path", "library_directory_id"},
                                           exclude_none=True).items():
            setattr(track, name, value)
        return track

    def update(self, track_id: str, body: TrackUpdate) -> dict[str, Any]:
        """Change a track's metadata in the database (never the file's tags).

        Sends ``track:updated {trackId, changes}`` with the fields given. An
        analysis field the user sets (:data:`~taperoom.library.models.USER_FIELDS`)
        is marked his in ``user_fields``, so that re-analysis keeps it; setting
        it to null hands it back to the analysis.
        """
        changes = body.model_dump(include=body.model_fields_set)
        if "color_tag" in changes and changes["color_tag"] is not None:
            changes["color_tag"] = changes["color_tag"].strip()
        with transaction(self.db) as s:
            track = self._track(s, track_id)
            for name, value in changes.items():
                setattr(track, name, value)
            _mark_user_fields(track, changes)
            s.flush()
            out = track_dict(track)
        self._send(Event.TRACK_UPDATED, {"trackId": out["id"], "changes": with_key_names(
            changes, out["musical_key"], out["mode"])})
        return out

    def delete(self, track_id: str) -> None:
        """Remove a track from the database (its file stays); sends ``track:deleted``.

        Its hot cues and playlist entries go too (playlist positions close up), its
        duplicate group is recounted or dissolved and its folder's counts refreshed.
        """
        with transaction(self.db) as s:
            track = self._track(s, track_id)
            tid, path = track.id, track.file_path
            touched = fileops_repo.remove_tracks(s, [tid])["playlistIds"]
        self._send(Event.TRACK_DELETED, {"trackId": tid, "path": path})
        send_playlist_updates(self.bus, touched, "track:deleted")

    def verify(self, track_id: str) -> dict[str, Any]:
        """Check a track's file against the database.

        Returns
        -------
        dict
            ``track_id``, ``file_path``, ``exists``, ``size_matches`` (None if no
            size is stored), ``mtime_matches`` (within 1 s; None if unknown),
            ``hash_matches`` (audio hash recomputed with
            :func:`taperoom.audio.hashing.audio_hash`; None if no hash is stored),
            ``expected_size``, ``actual_size`` (bytes), ``expected_hash``,
            ``actual_hash``, ``error`` (why the audio could not be hashed) and
            ``valid`` (exists and nothing known to differ).
        """
        with self.db() as s:
            track = self._track(s, track_id)
            tid, file_path = track.id, track.file_path
            size, mtime_ns, modified = track.file_size, track.file_mtime_ns, track.file_modified
            expected_hash = track.file_hash
        out: dict[str, Any] = {
            "track_id": tid, "file_path": file_path, "exists": False,
            "size_matches": False, "mtime_matches": False, "hash_matches": False,
            "expected_size": size, "actual_size": None, "expected_hash": expected_hash,
            "actual_hash": None, "error": None, "valid": False}
        path = Path(file_path)
        try:
            st = path.stat()
        except OSError as exc:
            out["error"] = exc.strerror or "file not found"
            return out
        if not path.is_file():
            out["error"] = "not a regular file"
            return out
        out["exists"] = True
        out["actual_size"] = st.st_size
        out["size_matches"] = None if size is None else size == st.st_size
        if mtime_ns is not None:
            out["mtime_matches"] = abs(mtime_ns - st.st_mtime_ns) < 1_000_000_000
        elif modified is not None:
            out["mtime_matches"] = abs(_utc(st.st_mtime) - modified).total_seconds() < 1
        else:
            out["mtime_matches"] = None
        try:
            out["actual_hash"] = audio_hash(path)
        except MediaError as exc:
            out["error"] = exc.reason
        if expected_hash is None:
            out["hash_matches"] = None
        else:
            out["hash_matches"] = out["actual_hash"] == expected_hash
        out["valid"] = (out["size_matches"] is not False and out["hash_matches"] is not False
                        and out["error"] is None)
        return out

    def set_missing(self, track_id: str, missing: bool) -> dict[str, Any]:
        """Mark a track missing (``track:missing``) or found again (``track:restored``)."""
        with transaction(self.db) as s:
            track = self._track(s, track_id)
            if bool(track.is_missing) != missing:
                track.is_missing = missing
                track.missing_since = models.utcnow() if missing else None
                s.flush()
                if track.library_directory_id:
                    dir_repo.refresh_stats(s, [track.library_directory_id])
            out = track_dict(track)
        if missing:
            self._send(Event.TRACK_MISSING, {"trackId": out["id"], "path": out["file_path"],
                                             "directoryId": out["library_directory_id"]})
        else:
            self._send(Event.TRACK_RESTORED, {"trackId": out["id"], "track": out})
        return out

    # -- analysis results

    def waveforms(self, track_id: str, zoom: int | None, *, stems: bool = False) -> Any:
        """Stored waveform(s) of a track's audio.

        Returns
        -------
        dict
            With `zoom`: one waveform object. Without: ``{"file_hash",
            "waveforms": [...]}`` (``{"waveforms": [...]}`` for stems).

        Raises
        ------
        NotFound
            ``Waveform not found`` when nothing is stored yet (analysis fills it).
        """
        with self.db() as s:
            track = self._track(s, track_id)
            rows = (repo.get_waveforms(s, track.file_hash, stems=stems, zoom=zoom)
                    if track.file_hash else [])
            if not rows:
                raise NotFound("Stem waveform not found" if stems else "Waveform not found")
            if zoom is not None:
                return waveform_dict(rows[0])
            waves = [waveform_dict(w) for w in rows]
            if stems:
                return {"waveforms": waves}
            return {"file_hash": track.file_hash, "waveforms": waves}

    def beats(self, track_id: str, kind: Literal["beats", "downbeats"]) -> dict[str, Any]:
        """``{track_id, beats|downbeats: [seconds], count}`` from the analysis blob.

        Raises
        ------
        NotFound
            ``Beats data not found`` / ``Downbeats data not found``.
        """
        with self.db() as s:
            track = self._track(s, track_id)
            blob = track.beats_data if kind == "beats" else track.downbeats_data
            tid = track.id
        values = _decode_json_blob(blob)
        if isinstance(values, dict):
            values = values.get(kind)
        if not isinstance(values, list):
            if blob is not None:
                log.warning("track %s: %s blob is not a JSON list", tid, kind)
            raise NotFound("Beats data not found" if kind == "beats"
                           else "Downbeats data not found")
        return {"track_id": tid, kind: values, "count": len(values)}

    def set_first_beat_offset(self, track_id: str, offset: float) -> dict[str, Any]:
        """Store the first beat's time (seconds) and tell frontends and the audio engine.

        Sends ``track:updated {trackId, changes: {first_beat_offset}}`` and
        ``engine:first_beat_offset {trackId, firstBeatOffset}``; the engine link
        subscribes to the latter and forwards ``updateFirstBeatOffset``.
        """
        with transaction(self.db) as s:
            track = self._track(s, track_id)
            track.first_beat_offset = offset
            _mark_user_fields(track, {"first_beat_offset": offset})
            s.flush()
            out = track_dict(track)
        self._send(Event.TRACK_UPDATED, {"trackId": out["id"],
                                         "changes": {"first_beat_offset": offset}})
        self._send(Event.ENGINE_FIRST_BEAT_OFFSET,
                   {"trackId": out["id"], "firstBeatOffset": offset})
        return out

    # -- hot cues

    @staticmethod
    def _cues_event(s: Session, track_id: str) -> dict[str, Any]:
        cues = [hot_cue_dict(c) for c in repo.list_hot_cues(s, track_id)]
        return {"trackId": track_id, "changes": {"hotCues": cues}}

    def hot_cues(self, track_id: str, source: str | None = None) -> list[dict[str, Any]]:
        """A track's hot cues by source then index.

        `source` ``None`` lists every source; ``"preferred"`` lists one cue per
        index, chosen by :func:`preferred_cues`.
        """
        with self.db() as s:
            track = self._track(s, track_id)
            if source == "preferred":
                return [hot_cue_dict(c) for c in preferred_cues(
                    list(repo.list_hot_cues(s, track.id)))]
            return [hot_cue_dict(c) for c in repo.list_hot_cues(s, track.id, source)]

    def hot_cue(self, track_id: str, index: int, source: str = "user") -> dict[str, Any]:
        """One hot cue; NotFound ``Hot cue not found`` if the slot is empty."""
        with self.db() as s:
            track = self._track(s, track_id)
            cue = repo.get_hot_cue(s, track.id, index, source)
            if cue is None:
                raise NotFound("Hot cue not found")
            return hot_cue_dict(cue)

    def save_hot_cue(self, track_id: str, index: int, body: HotCueBody) -> dict[str, Any]:
        """Create or replace the cue at (`index`, ``body.source``); sends ``track:updated``."""
        values = {"position": body.position, "name": body.name, "color": body.color,
                  "is_loop": body.is_loop, "loop_end": body.loop_end,
                  "auto_loop": body.auto_loop}
        with transaction(self.db) as s:
            track = self._track(s, track_id)
            cue = repo.save_hot_cue(s, track.id, index, body.source, values)
            out = hot_cue_dict(cue)
            event = self._cues_event(s, track.id)
        self._send(Event.TRACK_UPDATED, event)
        return out

    def update_hot_cue(self, track_id: str, index: int, body: HotCueUpdate,
                       source: str = "user") -> dict[str, Any]:
        """Change some fields of an existing cue; the loop rule is checked on the result.

        Raises
        ------
        NotFound
            ``Hot cue not found``.
        InvalidInput
            The cue would be a loop without an end after its position.
        """
        changes = body.model_dump(include=body.model_fields_set)
        with transaction(self.db) as s:
            track = self._track(s, track_id)
            cue = repo.get_hot_cue(s, track.id, index, source)
            if cue is None:
                raise NotFound("Hot cue not found")
            position = changes.get("position", cue.position)
            is_loop = changes.get("is_loop", bool(cue.is_loop))
            loop_end = changes.get("loop_end", cue.loop_end)
            if is_loop:
                if loop_end is None:
                    raise InvalidInput("loopEnd is required when isLoop is true")
                if loop_end <= position:
                    raise InvalidInput("loopEnd must be greater than position")
            else:
                loop_end = None
            changes.update(position=position, is_loop=is_loop, loop_end=loop_end)
            cue = repo.save_hot_cue(s, track.id, index, source, changes)
            out = hot_cue_dict(cue)
            event = self._cues_event(s, track.id)
        self._send(Event.TRACK_UPDATED, event)
        return out

    def delete_hot_cue(self, track_id: str, index: int, source: str = "user") -> None:
        """Delete one cue; NotFound ``Hot cue not found`` if the slot is empty."""
        with transaction(self.db) as s:
            track = self._track(s, track_id)
            if repo.delete_hot_cues(s, track.id, index=index, source=source) == 0:
                raise NotFound("Hot cue not found")
            event = self._cues_event(s, track.id)
        self._send(Event.TRACK_UPDATED, event)

    def clear_hot_cues(self, track_id: str, source: str | None = None) -> int:
        """Delete every cue of a track (of one source when given); returns how many."""
        with transaction(self.db) as s:
            track = self._track(s, track_id)
            count = repo.delete_hot_cues(s, track.id, source=source)
            event = self._cues_event(s, track.id)
        if count:
            self._send(Event.TRACK_UPDATED, event)
        return count


def _utc(timestamp: float) -> datetime:
    """A POSIX timestamp as a naive UTC datetime (how the database stores times)."""
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)
