"""ORM models of the library database (contracts/library-schema.sql, UUID ids).

Differences from the original schema, on purpose:

* every id of a track, library directory, playlist and hot cue is a UUID set by
  the application (the original inserted NULL ids on fresh databases);
* ``tracks.file_hash`` may be NULL until a scan strategy that hashes has seen the
  file (``fast`` scans only stat), and ``quick_hash``, ``scan_error``,
  ``has_artwork``, ``codec``, ``key_tag`` and ``file_mtime_ns`` are added for the
  scanner;
* directory statistics are recomputed by the repository after each change batch
  instead of by per-row triggers (which cost O(n) per inserted row on big scans
  and do not port to PostgreSQL);
* the playlist and analysis-job columns of the original's later migrations
  (012, 013, 014) are part of the first revision, so a fresh database is complete.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from taperoom.db import Base
from taperoom.web.auth.tables import define_auth_tables


def new_id() -> str:
    """A new RFC 4122 version-4 UUID string."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Current time in UTC, without tzinfo (stored as UTC everywhere)."""
    return datetime.now(UTC).replace(tzinfo=None)


class LibraryDirectory(Base):
    """A library folder (possibly on a removable drive)."""

    __tablename__ = "library_directories"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    path: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    is_removable: Mapped[bool] = mapped_column(Boolean, default=False)
    is_available: Mapped[bool] = mapped_column(Boolean, default=True)
    last_scan: Mapped[datetime | None] = mapped_column(DateTime)
    scan_status: Mapped[str] = mapped_column(String(16), default="idle")
    total_files: Mapped[int] = mapped_column(Integer, default=0)
    total_tracks: Mapped[int] = mapped_column(Integer, default=0)
    total_missing: Mapped[int] = mapped_column(Integer, default=0)
    date_added: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    recursive_scan: Mapped[bool] = mapped_column(Boolean, default=True)
    max_depth: Mapped[int] = mapped_column(Integer, default=-1)
    scan_patterns: Mapped[list[str] | None] = mapped_column(JSON)
    exclude_patterns: Mapped[list[str] | None] = mapped_column(JSON)
    follow_symlinks: Mapped[bool] = mapped_column(Boolean, default=False)


class DuplicateGroup(Base):
    """Tracks sharing one audio-content hash."""

    __tablename__ = "duplicate_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_hash: Mapped[str] = mapped_column(String(64), unique=True)
    canonical_track_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("tracks.id", ondelete="SET NULL", use_alter=True))
    total_duplicates: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


#: Analysis fields a user may set himself (``PUT /api/tracks/:id``, ``POST
#: /api/tracks/:id/first-beat-offset``); their names go to ``tracks.user_fields``.
USER_FIELDS = ("bpm", "musical_key", "mode", "first_beat_offset", "energy_level")
#: Fields that go with a user-set one: a BPM or first beat the user corrected
#: locks the whole beat grid (as rekordbox's grid lock does), a key its mode.
_LOCKED_WITH = {
    "bpm": ("beats_data", "downbeats_data", "first_phrase_beat_no", "time_signature",
            "beat_consistency"),
    "first_beat_offset": ("beats_data", "downbeats_data", "first_phrase_beat_no"),
    "musical_key": ("mode", "key_strength"),
    "mode": ("musical_key", "key_strength"),
}


#: Track columns that hold the analysis of a track's audio (what an analysis stores,
#: by this process's analyzer or an external server, and its date). When the file's
#: audio changes (a new audio hash), the scanner clears them, except the fields the
#: user set and those that go with them (:func:`locked_fields`); ``analysis_version``
#: then goes back to 1, the original's value for a track not analysed.
ANALYSED_FIELDS = (
    "bpm", "musical_key", "mode", "key_strength", "tuning_frequency", "time_signature",
    "beats_data", "downbeats_data", "beat_consistency", "first_beat_offset",
    "first_phrase_beat_no", "audible_start_time", "audible_end_time", "stems_path",
    "danceability", "energy", "loudness", "valence", "arousal", "acousticness",
    "instrumentalness", "spectral_centroid", "spectral_rolloff", "spectral_bandwidth",
    "zero_crossing_rate", "true_peak", "replaygain_gain", "replaygain_peak",
    "loudness_range", "dynamic_complexity", "energy_level", "date_analyzed",
)


def locked_fields(user_fields: list[str] | None) -> set[str]:
    """Track columns that analysis results must not overwrite, given the names the
    user set (``tracks.user_fields``): those and the fields that go with them."""
    names = set(user_fields or ())
    for name in list(names):
        names.update(_LOCKED_WITH.get(name, ()))
    return names


class Track(Base):
    """One audio file of the library, with its tags and analysis."""

    __tablename__ = "tracks"
    __table_args__ = (
        CheckConstraint("rating >= 0 AND rating <= 5", name="rating_range"),
        CheckConstraint("energy_level >= 0 AND energy_level <= 10", name="energy_level_range"),
        Index("ix_tracks_dir_missing", "library_directory_id", "is_missing"),
        *(Index(f"ix_tracks_lower_{c}", func.lower(text(c)), "id")
          for c in ("artist", "title", "album", "genre")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    file_path: Mapped[str] = mapped_column(Text, unique=True)
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    file_modified: Mapped[datetime | None] = mapped_column(DateTime)
    file_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    file_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    quick_hash: Mapped[str | None] = mapped_column(String(32))
    library_directory_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("library_directories.id", ondelete="SET NULL"), index=True)
    relative_path: Mapped[str | None] = mapped_column(Text)
    is_missing: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    missing_since: Mapped[datetime | None] = mapped_column(DateTime)
    duplicate_group_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("duplicate_groups.id", ondelete="SET NULL"), index=True)
    scan_error: Mapped[str | None] = mapped_column(Text)

    title: Mapped[str | None] = mapped_column(Text)
    artist: Mapped[str | None] = mapped_column(Text, index=True)
    album: Mapped[str | None] = mapped_column(Text)
    album_artist: Mapped[str | None] = mapped_column(Text)
    genre: Mapped[str | None] = mapped_column(Text, index=True)
    year: Mapped[int | None] = mapped_column(Integer)
    track_number: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    key_tag: Mapped[str | None] = mapped_column(String(32))
    has_artwork: Mapped[bool] = mapped_column(Boolean, default=False)
    codec: Mapped[str | None] = mapped_column(String(32))

    duration_seconds: Mapped[float | None] = mapped_column(Float)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    bit_rate: Mapped[int | None] = mapped_column(Integer)
    channels: Mapped[int | None] = mapped_column(Integer)

    bpm: Mapped[float | None] = mapped_column(Float, index=True)
    musical_key: Mapped[int | None] = mapped_column(Integer, index=True)
    mode: Mapped[int | None] = mapped_column(Integer)
    time_signature: Mapped[int | None] = mapped_column(Integer)
    beats_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    downbeats_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    first_beat_offset: Mapped[float | None] = mapped_column(Float)
    first_phrase_beat_no: Mapped[int | None] = mapped_column(Integer)
    audible_start_time: Mapped[float | None] = mapped_column(Float)
    audible_end_time: Mapped[float | None] = mapped_column(Float)
    stems_path: Mapped[str | None] = mapped_column(Text)

    danceability: Mapped[float | None] = mapped_column(Float)
    energy: Mapped[float | None] = mapped_column(Float)
    loudness: Mapped[float | None] = mapped_column(Float)
    valence: Mapped[float | None] = mapped_column(Float)
    arousal: Mapped[float | None] = mapped_column(Float)
    acousticness: Mapped[float | None] = mapped_column(Float)
    instrumentalness: Mapped[float | None] = mapped_column(Float)
    spectral_centroid: Mapped[float | None] = mapped_column(Float)
    spectral_rolloff: Mapped[float | None] = mapped_column(Float)
    spectral_bandwidth: Mapped[float | None] = mapped_column(Float)
    zero_crossing_rate: Mapped[float | None] = mapped_column(Float)

    # analysis results beyond the original schema (revision 0006)
    key_strength: Mapped[float | None] = mapped_column(Float)
    beat_consistency: Mapped[float | None] = mapped_column(Float)
    tuning_frequency: Mapped[float | None] = mapped_column(Float)
    true_peak: Mapped[float | None] = mapped_column(Float)
    replaygain_gain: Mapped[float | None] = mapped_column(Float)
    replaygain_peak: Mapped[float | None] = mapped_column(Float)
    loudness_range: Mapped[float | None] = mapped_column(Float)
    dynamic_complexity: Mapped[float | None] = mapped_column(Float)
    #: Names of the analysis fields the user set himself (:data:`USER_FIELDS`):
    #: re-analysis leaves them alone (:func:`locked_fields`).
    user_fields: Mapped[list[str] | None] = mapped_column(JSON)

    date_added: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    date_analyzed: Mapped[datetime | None] = mapped_column(DateTime)
    analysis_version: Mapped[int] = mapped_column(Integer, default=1)
    last_played: Mapped[datetime | None] = mapped_column(DateTime)
    play_count: Mapped[int] = mapped_column(Integer, default=0, index=True)
    rating: Mapped[int] = mapped_column(Integer, default=0)
    color_tag: Mapped[str | None] = mapped_column(String(16))
    energy_level: Mapped[int | None] = mapped_column(Integer)


class HotCue(Base):
    """A hot cue (or loop) of a track, per source (user, rekordbox, serato, ...)."""

    __tablename__ = "hot_cues"
    __table_args__ = (
        UniqueConstraint("track_id", "cue_index", "source", name="uq_hot_cues_track_index_source"),
        CheckConstraint("cue_index >= 0 AND cue_index <= 7", name="cue_index_range"),
        CheckConstraint("position >= 0", name="position_positive"),
        CheckConstraint("loop_end IS NULL OR loop_end > position", name="loop_after_start"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    track_id: Mapped[str] = mapped_column(String(36), ForeignKey("tracks.id", ondelete="CASCADE"),
                                          index=True)
    cue_index: Mapped[int] = mapped_column(Integer)
    position: Mapped[float] = mapped_column(Float)
    name: Mapped[str | None] = mapped_column(Text)
    color: Mapped[str | None] = mapped_column(String(16))
    is_loop: Mapped[bool] = mapped_column(Boolean, default=False)
    loop_end: Mapped[float | None] = mapped_column(Float)
    auto_loop: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(32), default="user")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class PlaylistFolder(Base):
    """A folder of playlists (a crate), in a tree by ``parent_id`` (revision 0007)."""

    __tablename__ = "playlist_folders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("playlist_folders.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Playlist(Base):
    """A static, smart, session or temporary ("thinking") playlist.

    ``folder_id`` (revision 0007) files it in a :class:`PlaylistFolder` (NULL: at
    the top); at most one playlist has type ``temp`` (the thinking playlist).
    """

    __tablename__ = "playlists"
    __table_args__ = (
        Index("uq_playlists_thinking", "type", unique=True,
              sqlite_where=text("type = 'temp'"), postgresql_where=text("type = 'temp'")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(Text, index=True)
    description: Mapped[str | None] = mapped_column(Text)
    date_created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    date_modified: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    is_smart: Mapped[bool] = mapped_column(Boolean, default=False)
    smart_criteria: Mapped[str | None] = mapped_column(Text)
    color: Mapped[str | None] = mapped_column(String(16))
    icon: Mapped[str | None] = mapped_column(String(50))
    type: Mapped[str] = mapped_column(String(16), default="static")
    session_date: Mapped[int | None] = mapped_column(BigInteger)
    session_venue: Mapped[str | None] = mapped_column(Text)
    session_duration: Mapped[int | None] = mapped_column(Integer)
    is_temporary: Mapped[bool] = mapped_column(Boolean, default=False)
    is_readonly: Mapped[bool] = mapped_column(Boolean, default=False)
    is_favorite: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    last_accessed: Mapped[int | None] = mapped_column(BigInteger)
    folder_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("playlist_folders.id", ondelete="SET NULL"), index=True)


class PlaylistTrack(Base):
    """A track's place in a playlist.

    ``occurrence`` (revision 0007) numbers the entries of one track in one
    playlist: always 0 except in session playlists, where a track played again is
    logged again (1, 2, ...). Positions are 0..n-1 in playlist order.
    """

    __tablename__ = "playlist_tracks"
    __table_args__ = (Index("ix_playlist_tracks_position", "playlist_id", "position"),)

    playlist_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("playlists.id", ondelete="CASCADE"), primary_key=True)
    track_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True, index=True)
    occurrence: Mapped[int] = mapped_column(Integer, primary_key=True, default=0,
                                            server_default="0")
    position: Mapped[int] = mapped_column(Integer)
    date_added: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    played_at: Mapped[int | None] = mapped_column(BigInteger)
    play_duration: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    cue_in: Mapped[int | None] = mapped_column(Integer)
    cue_out: Mapped[int | None] = mapped_column(Integer)
    rating_in_context: Mapped[int | None] = mapped_column(Integer)


class Waveform(Base):
    """A waveform overview of a file's audio, keyed by its content hash."""

    __tablename__ = "waveforms"

    file_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    zoom_level: Mapped[int] = mapped_column(Integer, primary_key=True)
    is_stems: Mapped[bool] = mapped_column(Boolean, primary_key=True, default=False)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    samples_per_point: Mapped[int | None] = mapped_column(Integer)
    num_points: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class FileOperation(Base):
    """Log of a move, rename, delete or copy of a track's file."""

    __tablename__ = "file_operations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_type: Mapped[str] = mapped_column(String(16))
    track_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("tracks.id", ondelete="SET NULL"), index=True)
    old_path: Mapped[str | None] = mapped_column(Text)
    new_path: Mapped[str | None] = mapped_column(Text)
    old_library_directory_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("library_directories.id", ondelete="SET NULL"))
    new_library_directory_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("library_directories.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)


class Setting(Base):
    """A user setting (value stored as text, parsed by its type)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(8), default="string")
    category: Mapped[str | None] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)


class AnalysisJob(Base):
    """An analysis request and its progress, in the contract's shape (``analysis_jobs``).

    ``job_id`` is the audio hash of the track (two copies of one recording share
    one analysis); a row per request, the newest one answering for the hash.
    The queue itself is a ``library_jobs`` row of kind ``analysis`` (see
    :mod:`taperoom.library.analysis.service`). Added by revision 0006:
    ``next_attempt_at`` (a retry waits until then), ``remote_job_id`` (the job
    id an external analysis server gave) and ``callback_token`` (the secret
    its callbacks must carry).
    """

    __tablename__ = "analysis_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(64), index=True)
    track_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    file_path: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    options: Mapped[dict[str, object] | None] = mapped_column(JSON)
    stages_completed: Mapped[list[str] | None] = mapped_column(JSON)
    stages_total: Mapped[int] = mapped_column(Integer, default=0)
    progress_percent: Mapped[int] = mapped_column(Integer, default=0)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_updated: Mapped[datetime | None] = mapped_column(DateTime, onupdate=utcnow)
    callback_metadata: Mapped[dict[str, object] | None] = mapped_column(JSON)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    remote_job_id: Mapped[str | None] = mapped_column(String(128), index=True)
    callback_token: Mapped[str | None] = mapped_column(String(64))


class Job(Base):
    """A queued or running background job (a folder scan; analysis next) and its outcome.

    The row is what every worker process knows of a job: the routes answer from
    it, a cancel sets ``cancel_requested`` on it, and the process running the
    job writes ``progress`` and ``heartbeat_at`` to it (see
    :mod:`taperoom.library.jobqueue`). ``active_key`` is ``<kind>:<subject>``
    while the job is queued or running and NULL afterwards; its unique index
    lets at most one active job exist per subject, whichever process asks.
    """

    __tablename__ = "library_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))
    active_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    priority: Mapped[int] = mapped_column(Integer, default=20)
    params: Mapped[dict[str, object] | None] = mapped_column(JSON)
    progress: Mapped[dict[str, object] | None] = mapped_column(JSON)
    result: Mapped[dict[str, object] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)

    __table_args__ = (Index("ix_library_jobs_kind_subject", "kind", "subject"),)


class RelayedEvent(Base):
    """An event of one worker process, for the WebSocket clients of the others.

    See :mod:`taperoom.library.eventrelay`; rows are deleted after a few minutes.
    """

    __tablename__ = "library_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


#: Users and signed-in sessions (``library_users``, ``library_auth_sessions``).
AUTH_TABLES = define_auth_tables(Base.metadata, "library")
