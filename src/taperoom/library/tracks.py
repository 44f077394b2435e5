"""Track service: listing, full-text search, CRUD, verification, analysis reads, hot cues.

Routers (``library/api/tracks.py``, ``library/api/hot_cues.py``) validate the
request with the pydantic models below and call :class:`TrackService`; the
service opens transactions, applies the rules of contracts/library.md §2 and
sends the ``track:*`` events. All SQL is in :mod:`taperoom.library.repository.tracks`.

Edits made here are database-only: ``PUT /api/tracks/:id`` never rewrites the
tags of the audio file (as Mixxx and rekordbox keep their own metadata).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from taperoom.audio.hashing import audio_hash, quick_hash
from taperoom.audio.tags import read_tags, title_from_filename
from taperoom.db import transaction
from taperoom.errors import Conflict, InvalidInput, MediaError, NotFound
from taperoom.events import Event
from taperoom.library import models
from taperoom.library.context import LibraryContext
from taperoom.library.repository import directories as dir_repo
from taperoom.library.repository import fileops as fileops_repo
from taperoom.library.repository import tracks as repo
from taperoom.library.scanner import tag_columns
from taperoom.library.schemas import (
    MAX_PAGE,
    hot_cue_dict,
    no_nul,
    track_dict,
    track_row_dict,
)

log = logging.getLogger(__name__)

#: Sources a hot cue can come from, in the order of preference used when one
#: cue per index is wanted (the engine link's rule: user > rekordbox > serato >
#: mixedInKey > virtual dj).
HOT_CUE_SOURCES = ("user", "rekordbox", "serato", "mixedInKey", "virtual dj")
HotCueSource = Literal["user", "mixedInKey", "rekordbox", "serato", "virtual dj"]
SortField = Literal["date_added", "artist", "title", "album", "bpm", "musical_key",
                    "play_count", "duration_seconds", "year", "genre", "rating",
                    "last_played"]
HEX_COLOR = r"^#[0-9A-Fa-f]{6}$"
#: ``color_tag``: ``#RRGGBB`` or a colour name such as ``red``.
COLOR_TAG = r"^(#[0-9A-Fa-f]{6}|[A-Za-z][A-Za-z ]{0,15})$"
#: Event the engine link listens to for first-beat-offset changes.
ENGINE_FIRST_BEAT_OFFSET = "engine:first_beat_offset"
#: Default colour of a new hot cue.
DEFAULT_CUE_COLOR = "#ff4444"

Text = Annotated[str, StringConstraints(max_length=1000), AfterValidator(no_nul)]
SearchText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                              max_length=200)]


class TrackNotFound(NotFound):
    """No track has this id (also for ids that are not UUIDs).

    Rendered as ``{"success": false, "error": "Track not found", "message":
    "Track with ID <id> does not exist"}`` by the tracks routers.
    """

    def __init__(self, track_id: str) -> None:
        super().__init__("Track not found")
        self.track_id = track_id
        self.detail = f"Track with ID {track_id} does not exist"


# --- request models -----------------------------------------------------------------


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class TrackListQuery(BaseModel):
    """Query of ``GET /api/tracks`` (unknown parameters are ignored, blank ones unset)."""

    model_config = ConfigDict(extra="ignore")

    page: int = Field(1, ge=1, le=MAX_PAGE)
    limit: int = Field(50, ge=1, le=1000)
    sort: SortField | None = None
    order: Literal["asc", "desc"] = "desc"
    artist: Text | None = None
    genre: Text | None = None
    album: Text | None = None
    bpm_min: float | None = Field(None, ge=0, allow_inf_nan=False)
    bpm_max: float | None = Field(None, ge=0, allow_inf_nan=False)
    key: int | None = Field(None, ge=0, le=11)
    mode: int | None = Field(None, ge=0, le=1)
    library_id: uuid.UUID | None = None
    is_missing: bool | None = None
    duplicate_group_id: int | None = Field(None, ge=1, le=models.MAX_INTEGER)
    year_min: int | None = Field(None, ge=0, le=9999)
    year_max: int | None = Field(None, ge=0, le=9999)
    rating_min: int | None = Field(None, ge=0, le=5)
    has_file_hash: bool | None = None
    search: Annotated[str, StringConstraints(max_length=200)] | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_to_none(value)

    @field_validator("sort", "order", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _ranges(self) -> TrackListQuery:
        if self.bpm_min is not None and self.bpm_max is not None and self.bpm_min > self.bpm_max:
            raise ValueError("bpm_min must not be greater than bpm_max")
        if (self.year_min is not None and self.year_max is not None
                and self.year_min > self.year_max):
            raise ValueError("year_min must not be greater than year_max")
        return self

    def filters(self) -> repo.TrackFilters:
        """The repository filters of this query."""
        return repo.TrackFilters(
            artist=self.artist, genre=self.genre, album=self.album, bpm_min=self.bpm_min,
            bpm_max=self.bpm_max, key=self.key, mode=self.mode,
            library_id=str(self.library_id) if self.library_id else None,
            is_missing=self.is_missing, duplicate_group_id=self.duplicate_group_id,
            year_min=self.year_min, year_max=self.year_max, rating_min=self.rating_min,
            has_file_hash=self.has_file_hash, search=self.search)


class TrackSearchQuery(TrackListQuery):
    """Query of ``GET /api/tracks/search``: `q` (1-200 characters) plus the list's options."""

    q: SearchText

    def filters(self) -> repo.TrackFilters:
        """The repository filters, searching for `q`."""
        return dataclasses.replace(super().filters(), search=self.q)


class TrackTagFields(BaseModel):
    """The tag fields a client may set on a track (shared by create and update)."""

    model_config = ConfigDict(extra="ignore")

    title: Text | None = None
    artist: Text | None = None
    album: Text | None = None
    album_artist: Text | None = None
    genre: Text | None = None
    year: int | None = Field(None, ge=1900, le=2100)
    track_number: int | None = Field(None, ge=0, le=9999)
    comment: Text | None = None


class TrackCreate(TrackTagFields):
    """Body of ``POST /api/tracks``; tags given here win over the file's own."""

    file_path: str = Field(min_length=1, max_length=4096)
    library_directory_id: uuid.UUID | None = None
    duration_seconds: float | None = Field(None, ge=0, allow_inf_nan=False)
    sample_rate: int | None = Field(None, ge=1, le=models.MAX_INTEGER)
    bit_rate: int | None = Field(None, ge=0, le=models.MAX_INTEGER)
    channels: int | None = Field(None, ge=1, le=8)


class TrackUpdate(TrackTagFields):
    """Body of ``PUT /api/tracks/:id``: at least one field; null clears a field (not rating)."""

    rating: int | None = Field(None, ge=0, le=5)
    color_tag: str | None = Field(None, pattern=COLOR_TAG)
    energy_level: int | None = Field(None, ge=0, le=10)
    bpm: float | None = Field(None, gt=0, le=999, allow_inf_nan=False)
    musical_key: int | None = Field(None, ge=0, le=11)
    mode: int | None = Field(None, ge=0, le=1)

    @field_validator("rating", mode="before")
    @classmethod
    def _rating_not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("rating must be a number from 0 to 5")
        return value

    @field_validator("color_tag", mode="before")
    @classmethod
    def _blank_color(cls, value: Any) -> Any:
        return _blank_to_none(value)

    @model_validator(mode="after")
    def _not_empty(self) -> TrackUpdate:
        if not self.model_fields_set:
            raise ValueError("at least one field to update is required")
        return self


class FirstBeatOffsetBody(BaseModel):
    """Body of ``POST /api/tracks/:id/first-beat-offset`` (seconds)."""

    first_beat_offset: float = Field(ge=0, allow_inf_nan=False)


class HotCueBody(BaseModel):
    """Body of ``POST /api/tracks/:id/hot-cues/:index`` (camelCase or snake_case keys).

    `loopEnd` is required, and after `position`, when `isLoop` is true; it is
    dropped for a plain cue.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    position: float = Field(ge=0, allow_inf_nan=False)
    name: Annotated[str, StringConstraints(max_length=200), AfterValidator(no_nul)] | None = None
    color: str = Field(DEFAULT_CUE_COLOR, pattern=HEX_COLOR)
    is_loop: bool = Field(False, alias="isLoop")
    loop_end: float | None = Field(None, alias="loopEnd", ge=0, allow_inf_nan=False)
    auto_loop: bool = Field(False, alias="autoLoop")
    source: HotCueSource = "user"

    @model_validator(mode="after")
    def _loop(self) -> HotCueBody:
        if self.is_loop and self.loop_end is None:
            raise ValueError("loopEnd is required when isLoop is true")
        if self.is_loop and self.loop_end is not None and self.loop_end <= self.position:
            raise ValueError("loopEnd must be greater than position")
        if not self.is_loop:
            self.loop_end = None
        return self


class HotCueUpdate(BaseModel):
    """Body of ``PUT /api/tracks/:id/hot-cues/:index``: at least one field."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    position: float | None = Field(None, ge=0, allow_inf_nan=False)
    name: Annotated[str, StringConstraints(max_length=200), AfterValidator(no_nul)] | None = None
    color: str | None = Field(None, pattern=HEX_COLOR)
    is_loop: bool | None = Field(None, alias="isLoop")
    loop_end: float | None = Field(None, alias="loopEnd", ge=0, allow_inf_nan=False)
    auto_loop: bool | None = Field(None, alias="autoLoop")

    @field_validator("position", "color", "is_loop", "auto_loop", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> HotCueUpdate:
        if not self.model_fields_set:
            raise ValueError("at least one field to update is required")
        return self


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


def waveform_dict(wf: models.Waveform) -> dict[str, Any]:
    """Waveform object of the contract: the stored header plus the band arrays of its data.

    ``samples_per_point``/``num_points`` columns go out as ``samples_per_pixel``/
    ``num_pixels``; the JSON object stored in ``data`` (``low_freq_amplitude`` ...,
    or ``vocals_amplitude`` ... for stems) is merged in as given (arrays or base64).
    """
    data = _decode_json_blob(wf.data)
    out: dict[str, Any] = dict(data) if isinstance(data, dict) else {"data": data}
    out.update({"file_hash": wf.file_hash, "zoom_level": wf.zoom_level,
                "sample_rate": wf.sample_rate if wf.sample_rate is not None
                else out.get("sample_rate"),
                "samples_per_pixel": wf.samples_per_point if wf.samples_per_point is not None
                else out.get("samples_per_pixel"),
                "num_pixels": wf.num_points if wf.num_points is not None
                else out.get("num_pixels")})
    return out


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
    ctx : LibraryContext
        Database sessions, settings (audio extensions) and the event bus.

    Raises
    ------
    TrackNotFound
        From every method taking a track id, when no such track exists.
    """

    def __init__(self, ctx: LibraryContext) -> None:
        self.ctx = ctx

    # -- helpers

    def _track(self, session: Session, track_id: str) -> models.Track:
        cid = canonical_id(track_id)
        track = repo.get_track(session, cid) if cid else None
        if track is None:
            raise TrackNotFound(track_id)
        return track

    def _send(self, name: Event | str, data: dict[str, Any]) -> None:
        self.ctx.bus.send(name, data)

    # -- listing and search

    def list_tracks(self, query: TrackListQuery) -> tuple[list[dict[str, Any]], int]:
        """One page of tracks and the total count (see :func:`repository.tracks.list_tracks`).

        Returns
        -------
        tracks : list of dict
            Track objects of the contract.
        total : int
        """
        with self.ctx.sessions() as s:
            rows, total = repo.list_tracks(
                s, query.filters(), sort=query.sort, descending=query.order == "desc",
                page=query.page, limit=query.limit)
            return [track_row_dict(r) for r in rows], total

    def stats(self) -> dict[str, Any]:
        """``{total, missing, analyzed, duplicates, total_size (bytes), avg_duration (s)}``."""
        with self.ctx.sessions() as s:
            return repo.track_stats(s)

    # -- one track

    def get(self, track_id: str) -> dict[str, Any]:
        """The track object with its ``hotCues`` (every source, by source then index)."""
        with self.ctx.sessions() as s:
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
        if real.suffix.lower() not in self.ctx.settings.extensions:
            raise InvalidInput(f"Unsupported audio file type: {real.suffix or '(none)'}")
        with self.ctx.sessions() as s:
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
            with transaction(self.ctx.sessions) as s:
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

        Sends ``track:updated {trackId, changes}`` with the fields given.
        """
        changes = body.model_dump(include=body.model_fields_set)
        if "color_tag" in changes and changes["color_tag"] is not None:
            changes["color_tag"] = changes["color_tag"].strip()
        with transaction(self.ctx.sessions) as s:
            track = self._track(s, track_id)
            for name, value in changes.items():
                setattr(track, name, value)
            s.flush()
            out = track_dict(track)
        self._send(Event.TRACK_UPDATED, {"trackId": out["id"], "changes": changes})
        return out

    def delete(self, track_id: str) -> None:
        """Remove a track from the database (its file stays); sends ``track:deleted``.

        Its hot cues and playlist entries go too (playlist positions close up), its
        duplicate group is recounted or dissolved and its folder's counts refreshed.
        """
        with transaction(self.ctx.sessions) as s:
            track = self._track(s, track_id)
            tid, path = track.id, track.file_path
            fileops_repo.remove_tracks(s, [tid])
        self._send(Event.TRACK_DELETED, {"trackId": tid, "path": path})

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
        with self.ctx.sessions() as s:
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
        with transaction(self.ctx.sessions) as s:
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
        with self.ctx.sessions() as s:
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
        with self.ctx.sessions() as s:
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
        with transaction(self.ctx.sessions) as s:
            track = self._track(s, track_id)
            track.first_beat_offset = offset
            s.flush()
            out = track_dict(track)
        self._send(Event.TRACK_UPDATED, {"trackId": out["id"],
                                         "changes": {"first_beat_offset": offset}})
        self._send(ENGINE_FIRST_BEAT_OFFSET, {"trackId": out["id"], "firstBeatOffset": offset})
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
        with self.ctx.sessions() as s:
            track = self._track(s, track_id)
            if source == "preferred":
                return [hot_cue_dict(c) for c in preferred_cues(
                    list(repo.list_hot_cues(s, track.id)))]
            return [hot_cue_dict(c) for c in repo.list_hot_cues(s, track.id, source)]

    def hot_cue(self, track_id: str, index: int, source: str = "user") -> dict[str, Any]:
        """One hot cue; NotFound ``Hot cue not found`` if the slot is empty."""
        with self.ctx.sessions() as s:
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
        with transaction(self.ctx.sessions) as s:
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
        with transaction(self.ctx.sessions) as s:
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
        with transaction(self.ctx.sessions) as s:
            track = self._track(s, track_id)
            if repo.delete_hot_cues(s, track.id, index=index, source=source) == 0:
                raise NotFound("Hot cue not found")
            event = self._cues_event(s, track.id)
        self._send(Event.TRACK_UPDATED, event)

    def clear_hot_cues(self, track_id: str, source: str | None = None) -> int:
        """Delete every cue of a track (of one source when given); returns how many."""
        with transaction(self.ctx.sessions) as s:
            track = self._track(s, track_id)
            count = repo.delete_hot_cues(s, track.id, source=source)
            event = self._cues_event(s, track.id)
        if count:
            self._send(Event.TRACK_UPDATED, event)
        return count


def _utc(timestamp: float) -> datetime:
    """A POSIX timestamp as a naive UTC datetime (how the database stores times)."""
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)
