"""JSON shapes of the library API (contracts/library.md), separate from the ORM.

* **Answers** (``...Public``): every route declares one; the track object, the
  directory object and every other body name their fields explicitly, so a new
  database column reaches the wire only when a schema names it. Success answers
  are :class:`Envelope` ``{"success": true, "data": ..., "message"?, "count"?,
  "pagination"?}``; routes answer with ``response_model_exclude_unset``, so an
  answer carries exactly the keys its route gives (nulls included).
* **Errors**: ``{"success": false, "error": "...", "message"?, "details"?,
  "data"?}`` (:func:`error_envelope`, :class:`ErrorPublic`), rendered by the one
  mapping of :mod:`taperoom.web.errors`.
* **Requests**: the bodies and queries the routes accept (unknown fields are
  ignored, as the original's Joi ``stripUnknown``).

Conventions of the contract kept here: datetimes are ISO 8601 UTC strings with
milliseconds and ``Z``; booleans of tracks and hot cues are 0/1 (as the original
SQLite API sent them), those of library folders true/false.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from taperoom.analysis import contract
from taperoom.analysis.keynames import camelot, open_key
from taperoom.library import models
from taperoom.library.limits import MAX_INTEGER

#: Highest page number the list routes accept: offsets stay far inside the 64-bit
#: range of every database (1000 rows a page at most).
MAX_PAGE = 1_000_000_000
#: Most scan or exclude patterns a directory may have, and longest pattern.
MAX_PATTERNS = 100
MAX_PATTERN_LENGTH = 512

T = TypeVar("T")
#: A number the database or a sum may give as an integer or a float; kept as given.
Num = int | float


def not_null(value: Any) -> Any:
    """Pydantic "before" validator: refuse an explicit null for a field that may be
    left out but not cleared.

    Raises
    ------
    ValueError
        ``"must not be null"``.
    """
    if value is None:
        raise ValueError("must not be null")
    return value


def no_nul(value: str | None) -> str | None:
    """Pydantic validator: reject text holding a NUL character.

    PostgreSQL cannot store NUL in text columns (SQLite would, silently cutting
    the text in some functions), so such input is refused on every backend.

    Raises
    ------
    ValueError
        ``"must not contain a NUL character"``.
    """
    if value is not None and "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def iso(value: datetime | None) -> str | None:
    """ISO 8601 UTC with milliseconds and ``Z`` (``2025-10-31T12:00:00.000Z``), or None."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"  # 5x faster than strftime


class Public(BaseModel):
    """Base of the answer schemas: a field the schema does not name is an error."""

    model_config = ConfigDict(extra="forbid")


# =========================================================================== envelopes


class PaginationPublic(Public):
    """``{page, limit, total, totalPages}`` of a list answer (total always present)."""

    page: int
    limit: int
    total: int
    totalPages: int


class Envelope(Public, Generic[T]):
    """The success envelope ``{"success": true, "data"?, "message"?, "count"?,
    "pagination"?}``; each route gives the keys the contract lists for it."""

    success: bool = True
    data: T | None = None
    message: str | None = None
    count: int | None = None
    pagination: PaginationPublic | None = None


class FieldErrorPublic(Public):
    """One refused field of a request: ``{field, message}`` (``field`` dotted)."""

    field: str
    message: str


class ErrorPublic(Public):
    """An error answer of the library routes."""

    success: bool = False
    error: str
    message: str | None = None
    details: list[FieldErrorPublic] | None = None
    data: Any = None


#: Error answers every library route may give (documented in ``/openapi.json``).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorPublic, "description": text} for status, text in (
        (400, "Bad request: malformed input (``details`` lists the fields)"),
        (401, "Credentials are missing or wrong"),
        (403, "Not allowed"),
        (404, "Not found"),
        (409, "Conflicts with the current state"),
        (422, "A file cannot be read as audio"),
        (503, "Busy"),
    )
}


def ok(data: Any = None, **extra: Any) -> dict[str, Any]:
    """Success envelope ``{"success": true, "data": data, **extra}``."""
    body: dict[str, Any] = {"success": True}
    if data is not None or not extra:
        body["data"] = data
    body.update(extra)
    return body


def pagination(page: int, limit: int, total: int) -> dict[str, int]:
    """``{"page", "limit", "total", "totalPages"}``; total is always present."""
    return {"page": page, "limit": limit, "total": total,
            "totalPages": max(1, math.ceil(total / limit)) if limit else 1}


def error_envelope(status: int, message: str, details: list[dict[str, str]] | None = None
                   ) -> dict[str, Any]:
    """Error body of the library routes: ``{"success": false, "error", "details"?}``,
    each detail ``{field, message}`` as in the contract."""
    body: dict[str, Any] = {"success": False, "error": message}
    if details:
        body["details"] = [{"field": d["field"], "message": d["message"]} for d in details]
    return body


# =========================================================================== tracks


class TrackPublic(Public):
    """The track object (contracts/library.md §2 Tracks, plus the scanner's
    ``quick_hash``, ``scan_error``, ``key_tag``, ``has_artwork`` and ``codec``), then,
    beside the contract's fields, the analysis results it has no key for.

    Times are ISO strings; ``is_missing`` and ``has_artwork`` are 0/1; sizes in
    bytes, durations and positions in seconds, ``musical_key`` 0-11 (C=0),
    ``mode`` 1 major / 0 minor. Beat data are served by ``/:id/beats``.

    After the contract's fields (Taperoom's analysis, :mod:`taperoom.analysis`;
    null until analysed): ``key_strength`` (0-1, the key profile's correlation),
    ``camelot`` and ``open_key`` (the key's names on the Mixed In Key and Traktor
    wheels, ``"8A"``/``"1m"`` for A minor, derived from ``musical_key`` and
    ``mode``, see :mod:`taperoom.analysis.keynames`; null unless both are
    known), ``beat_consistency`` (0-1), ``tuning_frequency`` (Hz of the A above
    middle C), ``true_peak`` (dBTP, ITU-R BS.1770-4), ``replaygain_gain`` (dB,
    ReplayGain 2.0, reference -18 LUFS) and ``replaygain_peak`` (linear),
    ``loudness_range`` (LU, EBU Tech 3342), ``dynamic_complexity`` (dB) and
    ``user_fields``: the analysis fields the user set himself (names of
    ``bpm``, ``musical_key``, ``mode``, ``first_beat_offset``,
    ``energy_level``, sorted), which re-analysis and scans keep; null when none.
    """

    id: str
    file_path: str
    file_size: int | None
    file_modified: str | None
    file_hash: str | None
    quick_hash: str | None
    library_directory_id: str | None
    relative_path: str | None
    is_missing: int
    missing_since: str | None
    duplicate_group_id: int | None
    scan_error: str | None
    title: str | None
    artist: str | None
    album: str | None
    album_artist: str | None
    genre: str | None
    year: int | None
    track_number: int | None
    comment: str | None
    key_tag: str | None
    has_artwork: int
    codec: str | None
    duration_seconds: float | None
    sample_rate: int | None
    bit_rate: int | None
    channels: int | None
    bpm: float | None
    musical_key: int | None
    mode: int | None
    time_signature: int | None
    first_beat_offset: float | None
    first_phrase_beat_no: int | None
    audible_start_time: float | None
    audible_end_time: float | None
    stems_path: str | None
    danceability: float | None
    energy: float | None
    loudness: float | None
    valence: float | None
    arousal: float | None
    acousticness: float | None
    instrumentalness: float | None
    spectral_centroid: float | None
    spectral_rolloff: float | None
    spectral_bandwidth: float | None
    zero_crossing_rate: float | None
    date_added: str
    date_analyzed: str | None
    analysis_version: int | None
    last_played: str | None
    play_count: int
    rating: int
    color_tag: str | None
    energy_level: int | None
    # beside the contract: analysis results it has no key for
    key_strength: float | None
    camelot: str | None
    open_key: str | None
    beat_consistency: float | None
    tuning_frequency: float | None
    true_peak: float | None
    replaygain_gain: float | None
    replaygain_peak: float | None
    loudness_range: float | None
    dynamic_complexity: float | None
    user_fields: list[str] | None


#: Fields of the track object, in wire order (what list queries select).
TRACK_FIELDS: tuple[str, ...] = tuple(TrackPublic.model_fields)
#: Fields of the track object derived from other columns (the names of its key):
#: list queries compute them in SQL
#: (:data:`taperoom.library.repository.tracks.KEY_NAME_COLUMNS`), :func:`track_dict`
#: and :func:`track_object` in Python, both from :func:`key_names`.
TRACK_DERIVED = ("camelot", "open_key")
#: Track fields sent as 0/1, as the original (SQLite) API did.
TRACK_INT_BOOLS = ("is_missing", "has_artwork")
#: Track fields holding times (ISO strings on the wire).
TRACK_TIMES = ("file_modified", "missing_since", "date_added", "date_analyzed", "last_played")


def key_names(musical_key: Any, mode: Any) -> tuple[str | None, str | None]:
    """``(camelot, open_key)`` names of a key (:mod:`taperoom.analysis.keynames`), or
    ``(None, None)`` unless `musical_key` is 0-11 and `mode` 0 or 1."""
    if musical_key in range(12) and mode in (0, 1):
        return camelot(musical_key, mode), open_key(musical_key, mode)
    return None, None


def with_key_names(changes: dict[str, Any], musical_key: Any, mode: Any) -> dict[str, Any]:
    """The ``changes`` of a ``track:updated`` event with ``camelot`` and ``open_key`` beside
    ``musical_key`` or ``mode`` (when either is among them), as the track object has
    them; `musical_key` and `mode` are the track's values now (:func:`key_names`)."""
    if "musical_key" in changes or "mode" in changes:
        changes["camelot"], changes["open_key"] = key_names(musical_key, mode)
    return changes


def track_object(values: dict[str, Any]) -> dict[str, Any]:
    """Track object from column values (:data:`TRACK_FIELDS` in wire order; missing
    columns null, derived fields computed); times and booleans as given."""
    out = {name: values.get(name) for name in TRACK_FIELDS}
    out["camelot"], out["open_key"] = key_names(out["musical_key"], out["mode"])
    return out


def track_dict(track: models.Track) -> dict[str, Any]:
    """Track object of the contract from the ORM row (:data:`TRACK_FIELDS` only)."""
    out = {name: getattr(track, name, None) for name in TRACK_FIELDS}
    out["camelot"], out["open_key"] = key_names(track.musical_key, track.mode)
    for key in TRACK_TIMES:
        out[key] = iso(out[key])
    for key in TRACK_INT_BOOLS:
        out[key] = int(bool(out[key]))
    return out


def track_row_dict(row: Any) -> dict[str, Any]:
    """Track object of the contract from a row (mapping) of
    :data:`taperoom.library.repository.tracks.TRACK_API_COLUMNS`, whose values are
    the wire's already (every field; times as ISO text, flags as 0/1, derived ones
    computed by the database).

    Gives the same dict as :func:`track_dict` on the ORM object, without building
    one (list pages select plain columns: about half the time per row).
    """
    return dict(row)


def track_values_dict(values: Sequence[Any]) -> dict[str, Any]:
    """:func:`track_row_dict` of a positional row of
    :data:`taperoom.library.repository.tracks.TRACK_API_COLUMNS` (its values in
    the order of :data:`TRACK_FIELDS`): one ``zip``."""
    return dict(zip(TRACK_FIELDS, values, strict=True))


class HotCuePublic(Public):
    """A hot cue: ``is_loop``/``auto_loop`` as 0/1, ``position``/``loop_end`` in seconds."""

    id: str
    track_id: str
    cue_index: int
    position: float
    name: str | None
    color: str | None
    is_loop: int
    loop_end: float | None
    auto_loop: int
    source: str
    created_at: str | None
    updated_at: str | None


def hot_cue_dict(cue: models.HotCue) -> dict[str, Any]:
    """Hot-cue object of the contract."""
    return {"id": cue.id, "track_id": cue.track_id, "cue_index": cue.cue_index,
            "position": cue.position, "name": cue.name, "color": cue.color,
            "is_loop": int(bool(cue.is_loop)), "loop_end": cue.loop_end,
            "auto_loop": int(bool(cue.auto_loop)), "source": cue.source,
            "created_at": iso(cue.created_at), "updated_at": iso(cue.updated_at)}


class TrackDetailPublic(TrackPublic):
    """``GET /api/tracks/:id``: the track with every hot cue (by source, then index)."""

    hotCues: list[HotCuePublic]


class TrackStatsPublic(Public):
    """``GET /api/tracks/stats``: counts, ``total_size`` (bytes), ``avg_duration`` (s)."""

    total: int
    missing: int
    analyzed: int
    duplicates: int
    total_size: int
    avg_duration: Num


class VerifyPublic(Public):
    """``GET /api/tracks/:id/verify``: the file checked against the database."""

    track_id: str
    file_path: str
    exists: bool
    size_matches: bool | None
    mtime_matches: bool | None
    hash_matches: bool | None
    expected_size: int | None
    actual_size: int | None
    expected_hash: str | None
    actual_hash: str | None
    error: str | None
    valid: bool


class SuggestionPublic(Public):
    """``GET /api/tracks/:id/suggestions``: a track that mixes well after the playing one.

    ``score`` ranks the suggestions (lower is better, see
    :mod:`taperoom.library.suggestions`); ``key_move`` names the Camelot move
    (``same``, ``+1``, ``-1``, ``relative``, ``+2``, ``+7``; null when a key is
    unknown); ``reasons`` say why, e.g. ``"8A → 9A: +1 on the Camelot wheel"``,
    ``"126 → 128 BPM (+1.6 %)"``, ``"energy 6 → 7"``.
    """

    track: TrackPublic
    score: float
    key_move: str | None
    reasons: list[str]


#: Band arrays of a waveform (arrays or base64 strings, stored as given).
WAVEFORM_BANDS = ("low_freq_amplitude", "low_freq_intensity", "mid_freq_amplitude",
                  "mid_freq_intensity", "high_freq_amplitude", "high_freq_intensity")
#: Band arrays of a stem waveform.
STEM_BANDS = tuple(f"{stem}_{kind}" for stem in ("vocals", "drums", "bass", "other")
                   for kind in ("amplitude", "intensity"))


class WaveformPublic(Public):
    """A stored waveform: the header plus the band arrays its data holds (those it
    lacks are absent); ``data`` when the stored data is not an object."""

    data: Any = None
    low_freq_amplitude: Any = None
    low_freq_intensity: Any = None
    mid_freq_amplitude: Any = None
    mid_freq_intensity: Any = None
    high_freq_amplitude: Any = None
    high_freq_intensity: Any = None
    vocals_amplitude: Any = None
    vocals_intensity: Any = None
    drums_amplitude: Any = None
    drums_intensity: Any = None
    bass_amplitude: Any = None
    bass_intensity: Any = None
    other_amplitude: Any = None
    other_intensity: Any = None
    file_hash: str
    zoom_level: int
    sample_rate: int | None = None
    samples_per_pixel: int | None = None
    num_pixels: int | None = None


class WaveformListPublic(Public):
    """Every zoom level: ``{file_hash, waveforms}`` (``{waveforms}`` for stems)."""

    file_hash: str | None = None
    waveforms: list[WaveformPublic]


class BeatsPublic(Public):
    """``{track_id, beats|downbeats: [seconds], count}``."""

    track_id: str
    beats: list[float] | None = None
    downbeats: list[float] | None = None
    count: int


# =========================================================================== folders


class DirectoryPublic(Public):
    """The library-directory object (booleans as true/false)."""

    id: str
    path: str
    name: str | None
    is_active: bool
    is_removable: bool
    is_available: bool
    last_scan: str | None
    scan_status: str
    total_files: int | None
    total_tracks: int | None
    total_missing: int | None
    date_added: str | None
    priority: int
    recursive_scan: bool
    max_depth: int
    scan_patterns: list[str] | None
    exclude_patterns: list[str] | None
    follow_symlinks: bool


#: Fields of the directory object, in wire order.
DIRECTORY_FIELDS: tuple[str, ...] = tuple(DirectoryPublic.model_fields)


def directory_dict(directory: models.LibraryDirectory) -> dict[str, Any]:
    """Library-directory object of the contract (:data:`DIRECTORY_FIELDS`)."""
    out = {name: getattr(directory, name) for name in DIRECTORY_FIELDS}
    out["last_scan"] = iso(out["last_scan"])
    out["date_added"] = iso(out["date_added"])
    return out


class DirectoryDeletedPublic(Public):
    """``DELETE /:id``: what became of the folder's tracks."""

    id: str
    path: str
    tracks_deleted: int
    tracks_kept: int


class CrumbPublic(Public):
    """One step of a browse path (``path`` relative to the library folder)."""

    name: str
    path: str


class BrowseFolderPublic(Public):
    """A sub-folder in a browse listing; figures cover everything below it."""

    name: str
    relativePath: str
    trackCount: int
    totalSize: int
    missingCount: int
    hasSubfolders: bool
    available: bool


class BrowseStatsPublic(Public):
    """Figures of a browse listing."""

    totalTracks: int
    totalSize: int
    missingTracks: int
    folderCount: int
    trackCount: int


class BrowsePublic(Public):
    """``GET /:id/browse``: one level of a library folder."""

    libraryDirectoryId: str
    path: str
    absolutePath: str
    parentPath: str | None
    breadcrumbs: list[CrumbPublic]
    available: bool
    folders: list[BrowseFolderPublic]
    tracks: list[TrackPublic]
    stats: BrowseStatsPublic


class ServerFolderPublic(Public):
    """One sub-folder in ``GET /server-folders``."""

    name: str
    path: str
    refused: str | None = Field(description="Why it may not be a library folder, or null")


class ServerFoldersPublic(Public):
    """``GET /api/library/directories/server-folders``: one level of the server's folders."""

    path: str
    parent: str | None
    refused: str | None
    folders: list[ServerFolderPublic]
    truncated: bool


class CleanupPublic(Public):
    """``POST /:id/cleanup``: tracks removed and where their backup went."""

    removed: int
    kept_in_playlists: int
    candidates: int
    backup_path: str | None
    remove_missing_older_than_days: Num
    tracksRemoved: int
    metadataBackedUp: bool
    backupPath: str | None
    message: str


class RestorePublic(Public):
    """``POST /:id/restore``: missing tracks found again."""

    restored: int
    still_missing: int
    available: bool
    tracksRestored: int
    totalMissing: int
    message: str


class MissingStatsPublic(Public):
    """``GET /:id/missing/stats``: figures of the folder's missing tracks."""

    total_missing: int
    oldest_missing_since: str | None
    newest_missing_since: str | None
    total_size: int
    total_duration: Num
    missing_over_7_days: int
    missing_over_30_days: int
    missing_over_90_days: int
    oldest_missing: str | None
    is_available: bool


class FormatStatsPublic(Public):
    """Tracks of one file format (extension) in a folder."""

    format: str
    count: int
    total_size: int
    total_duration: Num


class DirectoryStatsPublic(Public):
    """``GET /:id/stats``: statistics of one library folder."""

    directory_id: str
    name: str | None
    path: str
    is_available: bool
    scan_status: str
    last_scan: str | None
    total_files: int | None
    total_tracks: int
    present_tracks: int
    missing_tracks: int
    total_size: int
    present_size: int
    total_duration: Num
    analyzed: int
    with_bpm: int
    with_key: int
    hashed: int
    with_artwork: int
    scan_errors: int
    oldest_track_date: str | None
    newest_track_date: str | None
    in_playlists: int
    with_hot_cues: int
    unanalyzed: int
    average_duration: Num
    formats: list[FormatStatsPublic]


# =========================================================================== scans


class ScanErrorPublic(Public):
    """A file or folder a scan could not read."""

    path: str
    error: str


class ScanResultPublic(Public):
    """What a finished scan did (``durationMs`` in ms)."""

    strategy: str
    filesFound: int
    filesProcessed: int
    tracksAdded: int
    tracksUpdated: int
    tracksMissing: int
    tracksMoved: int
    tracksRestored: int
    errors: list[ScanErrorPublic]
    durationMs: int
    cancelled: bool
    error: str | None = None


class ScanStartedPublic(Public):
    """``POST /api/scan/library/:id`` (202)."""

    libraryDirectoryId: str
    strategy: str


class ScanStatusPublic(Public):
    """A folder's scan: ``{scanning: false}`` (with ``lastResult`` once this process
    scanned it) or the queued or running scan (``startTime`` in ms since the epoch,
    ``state`` queued | running | cancelling, ``percent`` 0-100)."""

    scanning: bool
    libraryDirectoryId: str | None = None
    directory: DirectoryPublic | None = None
    strategy: str | None = None
    startTime: int | None = None
    filesFound: int | None = None
    filesProcessed: int | None = None
    tracksAdded: int | None = None
    tracksUpdated: int | None = None
    errors: list[ScanErrorPublic] | None = None
    state: str | None = None
    priority: str | None = None
    phase: str | None = None
    percent: float | None = None
    tracksMissing: int | None = None
    tracksMoved: int | None = None
    tracksRestored: int | None = None
    lastResult: ScanResultPublic | None = None


# =========================================================================== watcher


class WatchPublic(Public):
    """One watched folder (``uptime`` in ms; ``mode`` starting | inotify | polling |
    waiting | failed, ``message`` says why)."""

    directoryId: str
    directoryName: str | None
    directoryPath: str
    uptime: int
    startTime: str | None
    available: bool
    mode: str
    folders: int | None
    watches: int
    message: str | None


class RefusedFolderPublic(Public):
    """An active folder the folder policy refuses (not watched)."""

    directoryId: str
    directoryPath: str
    message: str


class WatcherStatusPublic(Public):
    """``GET /api/watcher/status``."""

    activeCount: int
    watchers: list[WatchPublic]
    refused: list[RefusedFolderPublic]
    availabilityPolling: bool
    pollSeconds: float
    debounceMs: int
    pendingChanges: int
    watchLimit: int
    watchesUsed: int
    fallbackPollSeconds: float


# =========================================================================== settings


class SettingPublic(Public):
    """A setting, its ``value`` parsed by its ``type``."""

    key: str
    value: Any
    type: str | None
    category: str | None
    description: str | None


# =========================================================================== file operations


class FileOperationPublic(Public):
    """A row of the file-operation log (``{id, status}`` only when it cannot be read)."""

    id: int
    operation_type: str | None = None
    track_id: str | None = None
    old_path: str | None = None
    new_path: str | None = None
    old_library_directory_id: str | None = None
    new_library_directory_id: str | None = None
    status: str
    error_message: str | None = None
    created_at: str | None = None
    completed_at: str | None = None


def operation_dict(op: models.FileOperation) -> dict[str, Any]:
    """File-operation object of the log."""
    return {"id": op.id, "operation_type": op.operation_type, "track_id": op.track_id,
            "old_path": op.old_path, "new_path": op.new_path,
            "old_library_directory_id": op.old_library_directory_id,
            "new_library_directory_id": op.new_library_directory_id, "status": op.status,
            "error_message": op.error_message, "created_at": iso(op.created_at),
            "completed_at": iso(op.completed_at)}


class FileOperationEnvelope(Envelope[T], Generic[T]):
    """Envelope of a move or rename: the track, plus the ``operation`` log row and a
    ``warning``."""

    operation: FileOperationPublic | None = None
    warning: str | None = None


class FileDeletedPublic(Public):
    """``DELETE /api/tracks/:id/file``."""

    trackId: str
    filePath: str
    fileDeleted: bool
    operationId: int
    playlistEntriesRemoved: int
    hotCuesRemoved: int
    warning: str | None


# =========================================================================== duplicates


class TrackInGroupPublic(TrackPublic):
    """A track of a duplicate group: ``is_canonical`` (0/1) and its folder's path."""

    is_canonical: int
    library_path: str | None


class DuplicateGroupPublic(Public):
    """A duplicate group with its tracks (canonical first); ``file_paths`` is the
    original's ``||``-joined list; ``wasted_bytes`` sums the non-canonical copies."""

    id: int
    file_hash: str
    canonical_track_id: str | None
    total_duplicates: int
    created_at: str | None
    updated_at: str | None
    track_count: int
    wasted_bytes: int
    file_paths: str
    tracks: list[TrackInGroupPublic]


def group_row_dict(group: models.DuplicateGroup) -> dict[str, Any]:
    """The stored fields of a duplicate group."""
    return {"id": group.id, "file_hash": group.file_hash,
            "canonical_track_id": group.canonical_track_id,
            "total_duplicates": group.total_duplicates, "created_at": iso(group.created_at),
            "updated_at": iso(group.updated_at)}


class FormatDuplicatesPublic(Public):
    """Duplicates of one file format."""

    groups: int
    tracks: int
    wasted_bytes: int


class DuplicateStatsPublic(Public):
    """``GET /api/duplicates/stats``."""

    total_groups: int
    total_duplicate_tracks: int
    redundant_tracks: int
    avg_duplicates_per_group: Num
    max_duplicates_in_group: int
    wasted_bytes: int
    wasted_space_bytes: int
    by_format: dict[str, FormatDuplicatesPublic]


class DuplicateScanPublic(Public):
    """``POST /api/duplicates/scan``."""

    groupsCreated: int
    tracksProcessed: int
    totalGroups: int
    groupsRemoved: int
    newGroupIds: list[int]
    duplicateHashes: int


class RankingPublic(Public):
    """A copy of a group with the facts its ranking used."""

    trackId: str
    filePath: str
    lossless: bool
    bit_rate: int | None
    tag_count: int
    in_preferred_directory: bool
    date_added: str | None
    play_count: int | None


class CopiedCuePublic(Public):
    """A hot cue the kept track took from a copy."""

    cueIndex: int
    source: str
    fromTrackId: str


class MergedPublic(Public):
    """What the kept track took from the other copies (``fields``: field -> copy id)."""

    fields: dict[str, str]
    playCount: int
    rating: int
    lastPlayed: str | None
    hotCuesCopied: list[CopiedCuePublic]


class PlaylistChangesPublic(Public):
    """Playlist entries of removed copies: repointed to the kept track, or removed."""

    repointed: int
    removed: int
    playlistIds: list[str]


class FailedCopyPublic(Public):
    """A copy whose file could not be deleted (it stays in the group)."""

    trackId: str
    filePath: str
    error: str


class ResolvePublic(Public):
    """``POST /api/duplicates/:id/resolve``."""

    groupId: int
    policy: str
    chosenBy: str
    canonicalTrackId: str | None
    kept: TrackPublic | None
    ranking: list[RankingPublic]
    merged: MergedPublic | None
    playlists: PlaylistChangesPublic
    removedTrackIds: list[str]
    duplicatesRemoved: int
    deletedFiles: list[str]
    filesDeleted: int
    failed: list[FailedCopyPublic]
    groupDissolved: bool


# =========================================================================== system


class HealthPublic(Public):
    """``GET /health`` (``uptime`` in seconds)."""

    status: str
    timestamp: str | None
    uptime: float
    environment: str


class WorkerPublic(Public):
    """``GET /api/worker``: the worker process that answered (``--workers N``).

    ``pid`` is its process id; ``leader`` tells whether it runs the watcher,
    the scans and the recovery of file operations (one process does).
    """

    pid: int
    leader: bool


# =========================================================================== requests


def _check_patterns(value: list[str] | None) -> list[str] | None:
    """Validate glob patterns (``*.mp3``, ``**/Samples/**``, ``[!.]*``)."""
    if value is None:
        return None
    if len(value) > MAX_PATTERNS:
        raise ValueError(f"at most {MAX_PATTERNS} patterns are allowed")
    out: list[str] = []
    for pattern in value:
        pattern = pattern.strip()
        if not pattern:
            raise ValueError("a pattern must not be empty")
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise ValueError(f"a pattern must be at most {MAX_PATTERN_LENGTH} characters")
        if any(ord(c) < 32 or ord(c) == 127 for c in pattern):
            raise ValueError(f"pattern {pattern!r} contains a control character")
        _check_brackets(pattern)
        if pattern not in out:
            out.append(pattern)
    return out


def _check_brackets(pattern: str) -> None:
    """Reject a ``[`` character class without its closing ``]`` (fnmatch syntax)."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "[":
            j = i + 1
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                raise ValueError(f"pattern {pattern!r} has an unclosed '['")
            i = j
        i += 1


def _check_path_text(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("path must not contain a NUL character")
    return value


class DirectoryCreate(BaseModel):
    """Body of ``POST /api/library/directories``.

    Unknown fields are ignored (as the original's ``stripUnknown``).
    ``is_removable`` omitted (or null) means: detect it
    (:func:`taperoom.library.media.detect_removable`).
    ``max_depth`` is -1 for unlimited, else the number of folder levels below the root.
    """

    model_config = ConfigDict(extra="ignore")

    path: str = Field(min_length=1, max_length=4096)
    name: str | None = Field(None, max_length=255)
    is_active: bool = True
    is_removable: bool | None = None
    recursive_scan: bool = True
    max_depth: int = Field(-1, ge=-1, le=1000)
    scan_patterns: list[str] | None = None
    exclude_patterns: list[str] | None = None
    follow_symlinks: bool = False
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)

    _patterns = field_validator("scan_patterns", "exclude_patterns")(_check_patterns)
    _path = field_validator("path")(_check_path_text)
    _name = field_validator("name")(no_nul)


#: Fields of a directory that ``PUT`` may change.
UPDATABLE = ("path", "name", "is_active", "is_removable", "recursive_scan", "max_depth",
             "scan_patterns", "exclude_patterns", "follow_symlinks", "priority")
_NOT_NULL = frozenset({"path", "is_active", "is_removable", "recursive_scan", "max_depth",
                       "follow_symlinks", "priority"})


class DirectoryUpdate(BaseModel):
    """Body of ``PUT /api/library/directories/:id``: any subset of :data:`UPDATABLE`.

    Read-only fields a client may echo back (``id``, ``is_available``, the
    counters, ...) are ignored. ``name: null`` resets the name to the folder's;
    ``scan_patterns``/``exclude_patterns: null`` clear them; other fields may not
    be null.
    """

    model_config = ConfigDict(extra="ignore")

    path: str | None = Field(None, min_length=1, max_length=4096)
    name: str | None = Field(None, max_length=255)
    is_active: bool | None = None
    is_removable: bool | None = None
    recursive_scan: bool | None = None
    max_depth: int | None = Field(None, ge=-1, le=1000)
    scan_patterns: list[str] | None = None
    exclude_patterns: list[str] | None = None
    follow_symlinks: bool | None = None
    priority: int | None = Field(None, ge=-1_000_000, le=1_000_000)

    _patterns = field_validator("scan_patterns", "exclude_patterns")(_check_patterns)
    _path = field_validator("path")(_check_path_text)
    _name = field_validator("name")(no_nul)

    @model_validator(mode="after")
    def _no_nulls(self) -> DirectoryUpdate:
        for name in sorted(self.model_fields_set & _NOT_NULL):
            if getattr(self, name) is None:
                raise ValueError(f"{name} must not be null")
        return self


class CleanupRequest(BaseModel):
    """Body of ``POST /:id/cleanup`` (all optional; an absent body means the defaults)."""

    model_config = ConfigDict(extra="ignore")

    remove_missing_older_than_days: float = Field(30, ge=0, le=36_500)
    keep_playlists_intact: bool = True
    backup_metadata: bool = True


#: Sources a hot cue can come from, in the order of preference used when one
#: cue per index is wanted (the engine link's rule: user > rekordbox > serato >
#: mixedInKey > virtual dj).
HOT_CUE_SOURCES = ("user", "rekordbox", "serato", "mixedInKey", "virtual dj")
HotCueSource = Literal["user", "mixedInKey", "rekordbox", "serato", "virtual dj"]
SortField = Literal["date_added", "artist", "title", "album", "bpm", "musical_key",
                    "play_count", "duration_seconds", "year", "genre", "rating",
                    "last_played", "energy", "energy_level", "date_analyzed"]
HEX_COLOR = r"^#[0-9A-Fa-f]{6}$"
#: ``color_tag``: ``#RRGGBB`` or a colour name such as ``red``.
COLOR_TAG = r"^(#[0-9A-Fa-f]{6}|[A-Za-z][A-Za-z ]{0,15})$"
#: Default colour of a new hot cue.
DEFAULT_CUE_COLOR = "#ff4444"

Text = Annotated[str, StringConstraints(max_length=1000), AfterValidator(no_nul)]
SearchText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                              max_length=200)]


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
    duplicate_group_id: int | None = Field(None, ge=1, le=MAX_INTEGER)
    year_min: int | None = Field(None, ge=0, le=9999)
    year_max: int | None = Field(None, ge=0, le=9999)
    rating_min: int | None = Field(None, ge=0, le=5)
    has_file_hash: bool | None = None
    is_analyzed: bool | None = None
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


class TrackSearchQuery(TrackListQuery):
    """Query of ``GET /api/tracks/search``: `q` (1-200 characters) plus the list's options."""

    q: SearchText


class SuggestionQuery(BaseModel):
    """Query of ``GET /api/tracks/:id/suggestions``: the energy direction (any when
    omitted), how many (1-100, default 20) and optionally one playlist's tracks only."""

    model_config = ConfigDict(extra="ignore")

    energy: Literal["up", "same", "down"] | None = None
    limit: int = Field(20, ge=1, le=100)
    playlist_id: uuid.UUID | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_to_none(value)

    @field_validator("energy", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


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
    sample_rate: int | None = Field(None, ge=1, le=MAX_INTEGER)
    bit_rate: int | None = Field(None, ge=0, le=MAX_INTEGER)
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

    _not_null = field_validator("position", "color", "is_loop", "auto_loop",
                                mode="before")(not_null)

    @model_validator(mode="after")
    def _not_empty(self) -> HotCueUpdate:
        if not self.model_fields_set:
            raise ValueError("at least one field to update is required")
        return self


SettingType = Literal["string", "int", "float", "bool", "json"]
#: Optional text of a setting (category, description), no NUL.
NoNul = AfterValidator(no_nul)


class SettingBody(BaseModel):
    """Body of ``PUT /api/settings/:key``; `value` is required (null allowed)."""

    model_config = ConfigDict(extra="ignore")

    value: Any = Field(...)
    type: SettingType | None = None
    category: Annotated[str | None, NoNul] = Field(None, max_length=32)
    description: Annotated[str | None, NoNul] = Field(None, max_length=1000)


class SettingItem(SettingBody):
    """One entry of ``PUT /api/settings``."""

    key: Annotated[str, NoNul] = Field(min_length=1, max_length=100)


class BulkSettingsBody(BaseModel):
    """Body of ``PUT /api/settings``: at least one setting."""

    settings: list[SettingItem] = Field(min_length=1, max_length=1000)


class ScanRequest(BaseModel):
    """Body of ``POST /api/scan/library/{id}`` (unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    strategy: Literal["hybrid", "fast", "full"] = "hybrid"
    priority: Literal["low", "normal", "high"] = "normal"


class MoveBody(BaseModel):
    """Body of ``POST /api/tracks/:id/move``."""

    model_config = ConfigDict(extra="ignore")

    destination_path: str = Field(min_length=1, max_length=4096)
    library_directory_id: uuid.UUID | None = None


class RenameBody(BaseModel):
    """Body of ``POST /api/tracks/:id/rename``."""

    model_config = ConfigDict(extra="ignore")

    new_name: str = Field(min_length=1, max_length=1024)


class DeleteFileBody(BaseModel):
    """Body of ``DELETE /api/tracks/:id/file``: ``{"confirm": true}``."""

    model_config = ConfigDict(extra="ignore")

    confirm: StrictBool


class ResolveBody(BaseModel):
    """Body of ``POST /api/duplicates/:id/resolve`` (every field optional)."""

    model_config = ConfigDict(extra="ignore")

    canonicalTrackId: uuid.UUID | None = None
    policy: Literal["quality", "location", "oldest", "newest", "most_played"] = "quality"
    preferredDirectoryId: uuid.UUID | None = None
    deleteFiles: StrictBool = False
    keepMetadata: StrictBool = True
    updatePlaylists: StrictBool = True


# =========================================================================== analysis


class AnalysisJobSummaryPublic(Public):
    """A job as ``POST /api/analysis/request`` answers it."""

    job_id: str
    track_id: str | None
    status: str
    priority: str
    progress_percent: int
    created_at: str | None


class AnalysisRequestedPublic(Public):
    """``{message: "Analysis requested successfully", job}``."""

    message: str
    job: AnalysisJobSummaryPublic


class ReanalyzeErrorPublic(Public):
    """A track that could not be queued again."""

    track_id: str
    error: str


class ReanalyzeSummaryPublic(Public):
    """Counts of ``POST /api/analysis/reanalyze``."""

    total_requested: int
    queued: int
    failed: int
    errors: list[ReanalyzeErrorPublic]


class ReanalyzePublic(Public):
    """``{message: "Re-analysis queued for N tracks", summary}``."""

    message: str
    summary: ReanalyzeSummaryPublic


class AnalysisJobPublic(Public):
    """An ``analysis_jobs`` row (contract §6): ``job_id`` is the audio hash; times ISO;
    ``status`` queued | processing | completed | failed | cancelled; ``priority`` low |
    normal | high."""

    id: int
    job_id: str
    track_id: str | None
    file_path: str | None
    status: str
    priority: str
    options: dict[str, Any]
    stages_completed: list[str]
    stages_total: int
    progress_percent: int
    retry_count: int
    max_retries: int
    last_error: str | None
    created_at: str | None
    started_at: str | None
    completed_at: str | None
    last_updated: str | None
    callback_metadata: dict[str, Any] | None


class AnalysisJobListPublic(Public):
    """``GET /api/analysis/jobs``: a page of jobs (each the newest row of its audio
    hash), newest first; ``total`` counts the rows of every page."""

    jobs: list[AnalysisJobPublic]
    total: int
    limit: int
    offset: int


class AnalysisJobAnswerPublic(Public):
    """``{job}``."""

    job: AnalysisJobPublic


class AnalysisCancelledPublic(Public):
    """``{message: "Job cancelled successfully", job_id}``."""

    message: str
    job_id: str


class AnalysisCountsPublic(Public):
    """Jobs per priority (``URGENT`` deck loads count as high)."""

    total: int
    high: int
    normal: int
    low: int


class AnalysisQueueStatePublic(Public):
    """The queue: whether its consumers run, how many jobs at once, how many now."""

    isProcessing: bool
    maxConcurrentJobs: int
    processingCount: int
    queuedCount: int
    paused: bool


class AnalysisQueueStatsPublic(Public):
    """Queued and processing jobs per priority."""

    queued: AnalysisCountsPublic
    processing: AnalysisCountsPublic


class AnalysisQueuePublic(Public):
    """``{queue, stats}`` of ``GET /api/analysis/queue``."""

    queue: AnalysisQueueStatePublic
    stats: AnalysisQueueStatsPublic


class AnalysisStatusPublic(Public):
    """``GET /api/analysis/status``: the analyzer runs in the library's leader process
    (``url`` and ``port`` null, ``pid`` that process's)."""

    url: str | None
    port: int | None
    isHealthy: bool
    isProcessRunning: bool
    isReady: bool
    autoStart: bool
    pid: int | None


class AnalysisControlPublic(Public):
    """``{message, status?}`` of start, stop and restart."""

    message: str
    status: AnalysisStatusPublic | None = None


class AnalysisHealthPublic(Public):
    """``{status: "healthy" | "unhealthy", message}`` (503 when unhealthy)."""

    status: str
    message: str


class CallbackAckPublic(Public):
    """``{message: "Callback acknowledged", job_id, stage}``."""

    message: str
    job_id: str
    stage: str


class AnalysisWaveformsPublic(Public):
    """``{track_id, waveforms}``: every zoom level stored (none before the analysis)."""

    track_id: str
    waveforms: list[WaveformPublic]


class AnalysisWaveformPublic(Public):
    """``{waveform}``: one zoom level."""

    waveform: WaveformPublic


class AnalysisOptions(contract.AnalysisOptions):
    """``options`` of a request: the contract's stages (``basic_features`` and
    ``characteristics`` default true, the others false). Genre, stems, segments and
    transitions need an external analysis server; asked of this process they are
    left out, as the original's server left them."""


class AnalysisRequestBody(BaseModel):
    """Body of ``POST /api/analysis/request``."""

    model_config = ConfigDict(extra="ignore")

    track_id: str = Field(min_length=1, max_length=64)
    options: AnalysisOptions = Field(default_factory=AnalysisOptions)
    priority: Literal["low", "normal", "high"] = "normal"
    force: bool = False


#: ``analysis_jobs.status`` values, in the order a job goes through them.
ANALYSIS_JOB_STATUSES = ("queued", "processing", "completed", "failed", "cancelled")
#: Jobs of one page of ``GET /api/analysis/jobs`` at most.
MAX_ANALYSIS_JOBS_PAGE = 200


class AnalysisJobsQuery(BaseModel):
    """Query of ``GET /api/analysis/jobs`` (read as text, checked by the service)."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["queued", "processing", "completed", "failed", "cancelled"] | None = None
    limit: int = Field(50, ge=1, le=MAX_ANALYSIS_JOBS_PAGE)
    offset: int = Field(0, ge=0, le=MAX_INTEGER)


class ReanalyzeBody(BaseModel):
    """Body of ``POST /api/analysis/reanalyze``: tracks by id, one library folder, or
    all; priority ``low`` by default for a folder or everything, ``normal`` for ids."""

    model_config = ConfigDict(extra="ignore")

    track_ids: list[str] | None = Field(None, max_length=100_000)
    library_id: str | None = Field(None, max_length=64)
    all: bool = False
    options: AnalysisOptions = Field(default_factory=AnalysisOptions)
    priority: Literal["low", "normal", "high"] | None = None


class CallbackBody(BaseModel):
    """Body of ``POST /api/analysis/callback`` (contract §3)."""

    model_config = ConfigDict(extra="ignore")

    job_id: str | None = Field(None, max_length=128)
    stage: str | None = Field(None, max_length=64)
    status: str | None = None
    timestamp: Any = None
    data: dict[str, Any] | None = None


# =========================================================================== playlists
# contracts/library.md "Playlists": bare JSON (no envelope); see taperoom.playlists.

PlaylistName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=200), AfterValidator(no_nul)]
PlaylistNotes = Annotated[str, StringConstraints(max_length=1000), AfterValidator(no_nul)]
#: Unix seconds (a session's date, a play's time).
UnixTime = Annotated[int, Field(ge=0, le=MAX_INTEGER)]


class PlaylistEntryPublic(Public):
    """A playlist-track item: the entry (``position`` 0-based, ``played_at`` unix s,
    ``play_duration`` s, ``cue_in``/``cue_out`` ms, ``rating_in_context`` 1-5) and the
    track object."""

    playlist_id: str
    track_id: str
    position: int
    date_added: str | None
    played_at: int | None
    play_duration: int | None
    notes: str | None
    cue_in: int | None
    cue_out: int | None
    rating_in_context: int | None
    track: TrackPublic


class PlaylistPublic(Public):
    """A playlist (contract row; booleans 0/1, ``session_date`` and ``last_accessed``
    unix s), ``folder_id`` beside the contract (its crate, null at the top), then
    ``criteria`` (smart), ``track_count`` (lists) and ``tracks`` (detail)."""

    id: str
    name: str
    description: str | None
    date_created: str | None
    date_modified: str | None
    is_smart: int
    smart_criteria: str | None
    color: str | None
    icon: str | None
    type: str
    session_date: int | None
    session_venue: str | None
    session_duration: int | None
    is_temporary: int
    is_readonly: int
    is_favorite: int
    created_at: str | None
    updated_at: str | None
    last_accessed: int | None
    folder_id: str | None
    criteria: Any = None
    track_count: int | None = None
    tracks: list[PlaylistEntryPublic] | None = None


class PlaylistListPublic(Public):
    """``{playlists, count}``."""

    playlists: list[PlaylistPublic]
    count: int


class SessionListPublic(Public):
    """``{sessions, count}`` (sessions not finalized)."""

    sessions: list[PlaylistPublic]
    count: int


class PlaylistMessagePublic(Public):
    """``{message}``."""

    message: str


class SmartRefreshPublic(Public):
    """``POST /api/playlists/:id/refresh``: the tracks that entered and left, in
    playlist order, and how many the playlist holds now."""

    added: list[str]
    removed: list[str]
    total: int
    addedCount: int
    removedCount: int


class SmartConvertedPublic(Public):
    """``{message: "Smart playlist converted to static", track_count}``."""

    message: str
    track_count: int


class SmartPreviewBody(BaseModel):
    """Body of ``POST /api/playlists/smart/preview``: criteria and how many tracks to show."""

    model_config = ConfigDict(extra="ignore")

    criteria: dict[str, Any]
    limit: int = Field(50, ge=1, le=200)


class SmartPreviewPublic(Public):
    """``{count, explanation, tracks}``: what criteria match now, without a playlist."""

    count: int
    explanation: str
    tracks: list[TrackPublic]


class SmartExplainPublic(Public):
    """``{explanation, criteria}``: the parsed criteria in words, and the stored
    criteria as the raw JSON string (``smart_criteria``)."""

    explanation: str
    criteria: str | None


class PlaylistDeletedPublic(Public):
    """``{message: "Playlist deleted successfully", id}``."""

    message: str
    id: str


class TracksAddedPublic(Public):
    """``{message: "Tracks added successfully", added_count}``."""

    message: str
    added_count: int


class KeyCountPublic(Public):
    """Tracks of one key (``musical_key`` 0-11)."""

    musical_key: int
    count: int


class GenreCountPublic(Public):
    """Tracks of one genre."""

    genre: str
    count: int


class PlaylistStatsPublic(Public):
    """Figures of a playlist's tracks (``total_duration`` s; averages null without
    values; the 10 most frequent genres)."""

    track_count: int
    total_duration: Num
    avg_bpm: Num | None
    min_bpm: Num | None
    max_bpm: Num | None
    avg_energy: Num | None
    avg_danceability: Num | None
    key_distribution: list[KeyCountPublic]
    genre_distribution: list[GenreCountPublic]


class SessionFinalizedPublic(Public):
    """``{message: "Session finalized", session_duration}`` (s)."""

    message: str
    session_duration: int


class PromotedPublic(Public):
    """``{promoted_playlist, new_thinking_playlist}``."""

    promoted_playlist: PlaylistPublic
    new_thinking_playlist: PlaylistPublic


class PlaylistFolderPublic(Public):
    """A folder of playlists (a crate) with its sub-folders and playlists."""

    id: str
    name: str
    parent_id: str | None
    created_at: str | None
    updated_at: str | None
    folders: list[PlaylistFolderPublic]
    playlists: list[PlaylistPublic]


class FolderTreePublic(Public):
    """``{folders: [top folders], playlists: [playlists in no folder], count}``
    (``count``: every folder)."""

    folders: list[PlaylistFolderPublic]
    playlists: list[PlaylistPublic]
    count: int


class FolderDeletedPublic(Public):
    """``{message, id, folders_deleted, playlists_deleted}``."""

    message: str
    id: str
    folders_deleted: int
    playlists_deleted: int


class PlaylistCreate(BaseModel):
    """Body of ``POST /api/playlists``; `criteria` is required iff ``type`` is
    ``smart`` (checked by the service)."""

    model_config = ConfigDict(extra="ignore")

    name: PlaylistName
    type: Literal["static", "smart", "session"] = "static"
    description: PlaylistNotes | None = None
    color: str | None = Field(None, pattern=HEX_COLOR)
    icon: Annotated[str, StringConstraints(max_length=50), AfterValidator(no_nul)] | None = None
    criteria: dict[str, Any] | None = None
    session_venue: Annotated[str, StringConstraints(max_length=200),
                             AfterValidator(no_nul)] | None = None
    session_date: UnixTime | None = None
    is_favorite: StrictBool = False
    folder_id: uuid.UUID | None = None


class PlaylistUpdate(BaseModel):
    """Body of ``PUT /api/playlists/:id`` (the fields given are set; ``folder_id``
    null moves the playlist to the top)."""

    model_config = ConfigDict(extra="ignore")

    name: PlaylistName | None = None
    description: PlaylistNotes | None = None
    color: str | None = Field(None, pattern=HEX_COLOR)
    icon: Annotated[str, StringConstraints(max_length=50), AfterValidator(no_nul)] | None = None
    is_favorite: StrictBool | None = None
    folder_id: uuid.UUID | None = None
    #: Beside the contract: new criteria of a smart playlist (evaluated at once).
    criteria: dict[str, Any] | None = None

    _not_null = field_validator("name", "is_favorite", "criteria", mode="before")(not_null)


class AddTracksBody(BaseModel):
    """Body of ``POST /api/playlists/:id/tracks``."""

    model_config = ConfigDict(extra="ignore")

    track_ids: list[uuid.UUID] = Field(min_length=1, max_length=10_000)
    position: Annotated[int, Field(ge=0, le=MAX_INTEGER)] | None = None
    notes: PlaylistNotes | None = None


class ReorderBody(BaseModel):
    """Body of ``PUT /api/playlists/:id/tracks/reorder``: every entry, in order."""

    model_config = ConfigDict(extra="ignore")

    track_ids: list[uuid.UUID] = Field(max_length=100_000)


class EntryUpdate(BaseModel):
    """Body of ``PUT /api/playlists/:id/tracks/:trackId`` (the fields given are set;
    null clears one)."""

    model_config = ConfigDict(extra="ignore")

    notes: PlaylistNotes | None = None
    cue_in: Annotated[int, Field(ge=0, le=MAX_INTEGER)] | None = None
    cue_out: Annotated[int, Field(ge=0, le=MAX_INTEGER)] | None = None
    rating_in_context: Annotated[int, Field(ge=1, le=5)] | None = None


class DuplicatePlaylistBody(BaseModel):
    """Body of ``POST /api/playlists/:id/duplicate`` (default name ``<name> (copy)``)."""

    model_config = ConfigDict(extra="ignore")

    name: PlaylistName | None = None


class PromoteBody(BaseModel):
    """Body of ``POST /api/playlists/thinking/promote``."""

    model_config = ConfigDict(extra="ignore")

    name: PlaylistName


class SessionStartBody(BaseModel):
    """Body of ``POST /api/playlists/sessions/start`` (``date`` unix s, default now)."""

    model_config = ConfigDict(extra="ignore")

    venue: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200),
                     AfterValidator(no_nul)] | None = None
    date: UnixTime | None = None


class SessionPlayBody(BaseModel):
    """Body of ``POST /api/playlists/sessions/:id/track`` (``played_at`` unix s,
    default now; ``duration`` s)."""

    model_config = ConfigDict(extra="ignore")

    track_id: uuid.UUID
    played_at: UnixTime | None = None
    duration: Annotated[int, Field(ge=0, le=MAX_INTEGER)] | None = None
    notes: PlaylistNotes | None = None


class FolderCreate(BaseModel):
    """Body of ``POST /api/playlists/folders``."""

    model_config = ConfigDict(extra="ignore")

    name: PlaylistName
    parent_id: uuid.UUID | None = None


class FolderUpdate(BaseModel):
    """Body of ``PUT /api/playlists/folders/:id``: ``name`` renames, ``parent_id``
    moves (null: to the top); at least one."""

    model_config = ConfigDict(extra="ignore")

    name: PlaylistName | None = None
    parent_id: uuid.UUID | None = None

    _not_null = field_validator("name", mode="before")(not_null)

    @model_validator(mode="after")
    def _not_empty(self) -> FolderUpdate:
        if not self.model_fields_set & {"name", "parent_id"}:
            raise ValueError("name or parent_id is required")
        return self


# =========================================================================== exchange


class ImportCountsPublic(Public):
    """What ``POST /api/import`` created: playlists, crate folders, playlist entries,
    hot cues and beatgrids."""

    playlists: int
    folders: int
    entries: int
    cues: int
    grids: int


class ImportedPlaylistPublic(Public):
    """A playlist an import created: ``{id, name, folder_id, entries}``."""

    id: str
    name: str
    folder_id: str | None
    entries: int


class UnmatchedPublic(Public):
    """An entry of an imported file that matches no library track (skipped)."""

    name: str
    path: str
    reason: str


class ImportPublic(Public):
    """Answer of ``POST /api/import``: ``imported`` counts, the ``created``
    playlists, the ``unmatched`` entries (at most 1,000; ``unmatched_count`` counts
    them all) and the ``problems`` met reading the file (one sentence each)."""

    imported: ImportCountsPublic
    created: list[ImportedPlaylistPublic]
    unmatched: list[UnmatchedPublic]
    unmatched_count: int
    problems: list[str]


# ============================================================================ engine link


class EngineDeckPublic(Public):
    """One deck of the audio engine as the live set follows it (``playedSeconds``: s
    of play of its track so far)."""

    trackId: str | None
    playing: bool
    playedSeconds: float


class EngineStatusPublic(Public):
    """``GET /api/engine/status``: the link to the audio engine (contract section 4).

    ``enabled`` (``ENGINE_LINK_ENABLED`` and a URL), ``running`` (the leader
    process runs the link), ``url``, ``connected``, ``connectedSince`` (ISO 8601
    UTC), ``lastError`` (why the last connection ended or failed),
    ``failedAttempts`` (in a row), ``reconnectDelay`` (s before the next attempt
    while the engine is away) and ``decks``.
    """

    enabled: bool
    running: bool
    url: str
    connected: bool
    connectedSince: str | None
    lastError: str | None
    failedAttempts: int
    reconnectDelay: float | None
    decks: dict[str, EngineDeckPublic]
