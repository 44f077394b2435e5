"""ORM models of the recorder database (contracts/recorder.md "Data model").

Differences from the original, on purpose:

* statuses are stored as their lower-case values (``completed``), as the API
  sends them, not as enum names;
* a session may have no schedule (``record now``) and keeps the station's id and
  name, so history survives the deletion of a schedule or a station;
* sessions carry what the capture learnt: audio duration, reconnects, the gaps
  (JSON list of ``{at_seconds, started_at, length_seconds, reason}``), the cue
  sheet path, whether the stream was copied or re-encoded, and the upload's
  attempts, remote path and time;
* stations have an optional bit rate and a ``split_tracks`` flag, and the secret
  token of their podcast feed (the feed of all stations has its token in
  ``recorder_feed_tokens``);
* every datetime is stored as naive UTC; the API renders it in ``TZ`` with its offset.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from taperoom.db import NAMING_CONVENTION
from taperoom.web.auth.tables import define_auth_tables


def utcnow() -> datetime:
    """Current time in UTC, naive (the stored form)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_feed_token() -> str:
    """A fresh secret of a podcast feed's URLs: 32 random URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


class RecorderBase(DeclarativeBase):
    """Declarative base of the recorder's tables (its own metadata)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SessionStatus(StrEnum):
    """Life cycle of a recording session (contract values)."""

    SCHEDULED = "scheduled"
    RECORDING = "recording"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class TransferStatus(StrEnum):
    """Upload state of a session's file (contract values, plus ``skipped``
    when the station has no destination)."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


ACTIVE_STATUSES = (SessionStatus.SCHEDULED, SessionStatus.RECORDING, SessionStatus.PROCESSING)


class Station(RecorderBase):
    """A radio station: where to record from, how to tag and where to upload.

    Its table keeps the original's name, ``stream_configurations`` (and the API
    its route, ``/api/streams``); in the code a station is a station.
    """

    __tablename__ = "stream_configurations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    stream_url: Mapped[str] = mapped_column(Text)
    artist: Mapped[str] = mapped_column(String(255))
    album: Mapped[str] = mapped_column(String(255))
    album_artist: Mapped[str] = mapped_column(String(255))
    artwork_path: Mapped[str | None] = mapped_column(String(500))
    output_filename_pattern: Mapped[str] = mapped_column(String(500),
                                                         default="{date}_{name}.mp3")
    scp_destination: Mapped[str] = mapped_column(Text, default="")
    bitrate_kbps: Mapped[int | None] = mapped_column(Integer)
    split_tracks: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Secret of the station's podcast feed URLs (None only on rows older than it).
    feed_token: Mapped[str | None] = mapped_column(String(64), index=True, unique=True,
                                                   default=new_feed_token)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class RecordingSchedule(RecorderBase):
    """A cron schedule of one station."""

    __tablename__ = "recording_schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Column ``stream_config_id`` (the contract's name).
    station_id: Mapped[int] = mapped_column(
        "stream_config_id", ForeignKey("stream_configurations.id", ondelete="CASCADE"),
        index=True)
    cron_expression: Mapped[str] = mapped_column(String(100))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_time: Mapped[datetime | None] = mapped_column(DateTime)
    last_run_time: Mapped[datetime | None] = mapped_column(DateTime)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class RecordingSession(RecorderBase):
    """One recording, from capture to upload."""

    __tablename__ = "recording_sessions"
    __table_args__ = (
        Index("ix_recording_sessions_status", "status"),
        Index("ix_recording_sessions_start_time", "start_time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("recording_schedules.id", ondelete="SET NULL"), index=True)
    #: Column ``stream_config_id`` (the contract's name).
    station_id: Mapped[int | None] = mapped_column(
        "stream_config_id", ForeignKey("stream_configurations.id", ondelete="SET NULL"),
        index=True)
    station_name: Mapped[str] = mapped_column(String(255), default="")
    trigger: Mapped[str] = mapped_column(String(16), default="schedule")
    start_time: Mapped[datetime] = mapped_column(DateTime)
    end_time: Mapped[datetime | None] = mapped_column(DateTime)
    planned_duration_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16), default=SessionStatus.SCHEDULED.value)
    output_file_path: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    file_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    reconnects: Mapped[int] = mapped_column(Integer, default=0)
    gaps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    cue_sheet_path: Mapped[str | None] = mapped_column(Text)
    stream_copy: Mapped[bool | None] = mapped_column(Boolean)
    source_codec: Mapped[str | None] = mapped_column(String(32))
    transfer_status: Mapped[str] = mapped_column(String(16),
                                                 default=TransferStatus.PENDING.value)
    transfer_error_message: Mapped[str | None] = mapped_column(Text)
    transfer_attempts: Mapped[int] = mapped_column(Integer, default=0)
    remote_path: Mapped[str | None] = mapped_column(Text)
    transferred_at: Mapped[datetime | None] = mapped_column(DateTime)
    local_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class FeedToken(RecorderBase):
    """Secret of a podcast feed that belongs to no station (``feed = "all"``)."""

    __tablename__ = "recorder_feed_tokens"

    feed: Mapped[str] = mapped_column(String(32), primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, default=new_feed_token)
    rotated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


#: Users and signed-in sessions (``recorder_users``, ``recorder_auth_sessions``).
AUTH_TABLES = define_auth_tables(RecorderBase.metadata, "recorder")
