"""Recordings for the feed tests, made as the recorder makes them: bare MP3 frames of a
corpus recording (the test stream's material, as a stream copy keeps them), ID3 tags
by the recorder's tagger, a cue sheet of ICY titles by its cue writer, and a completed
session row in the real SQLite database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from taperoom.db import transaction
from taperoom.recorder import repository as repo
from taperoom.recorder.tagging import tag_recording, write_cue_sheet
from tests.recorder.streamserver import StreamMedia


@dataclass(frozen=True)
class Cue:
    """An ICY title change, as the capture reports it."""

    offset_seconds: float
    title: str


def make_recording(services: Any, media: StreamMedia, station: dict[str, Any], *,
                   start: datetime, seconds: float,
                   titles: list[tuple[float, str]] | None = None,
                   **row: Any) -> int:
    """Write a tagged MP3 of `seconds` (and a cue sheet of `titles`) into
    ``RECORDINGS_DIR`` and insert its completed session; the session's id.

    `row` overrides columns of the session (``status``, ``local_deleted``...).
    """
    settings = services.settings
    frames = media.mp3_frames
    count = round(seconds / media.mp3_frame_seconds)
    local = start.astimezone(settings.zone)
    path = Path(settings.recordings_dir) / f"{local:%Y-%m-%d_%H%M%S}_{station['name']}.mp3"
    path.write_bytes(b"".join(frames[i % len(frames)] for i in range(count)))
    tag_recording(path, station_name=station["name"], artist=station["artist"],
                  album=station["album"], album_artist=station["album_artist"],
                  started_at=local, artwork=None,
                  max_artwork_bytes=settings.max_artwork_bytes)
    cue = None
    if titles:
        cue = write_cue_sheet(path, [Cue(o, t) for o, t in titles],
                              performer=station["artist"],
                              title=f"{local:%Y-%m-%d} {station['name']}")
    naive = start.astimezone(UTC).replace(tzinfo=None)
    values: dict[str, Any] = {
        "station_id": station["id"], "station_name": station["name"], "trigger": "manual",
        "start_time": naive, "end_time": naive + timedelta(seconds=seconds + 1),
        "planned_duration_seconds": seconds, "status": "completed",
        "output_file_path": str(path), "file_size_bytes": path.stat().st_size,
        "duration_seconds": round(count * media.mp3_frame_seconds, 3),
        "cue_sheet_path": str(cue) if cue else None, "stream_copy": True,
        "source_codec": "mp3", "transfer_status": "skipped"}
    values.update(row)
    with transaction(services.db) as db:
        return int(repo.create_session(db, values).id)
