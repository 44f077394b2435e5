"""A scheduled recording through the recorder's services in simulated time: the clock
given to ``build_services`` reaches the capture and the session's times."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from taperoom.clock import SimulatedClock
from taperoom.recorder.context import build_services
from taperoom.recorder.schemas import ScheduleCreate, StationCreate
from taperoom.recorder.settings import RecorderSettings
from tests.polling import wait_for
from tests.recorder.streamserver import Plan, StreamServer


def test_an_hour_long_scheduled_recording_of_a_dropping_stream(
        rec_settings: Callable[..., RecorderSettings], stream_server: StreamServer) -> None:
    """A schedule of a 60-minute show fires at 20:00 (simulated); its stream drops every
    connection after 0.1 s. The recording retries through the whole hour (at once, then
    after 1, 2 ... 256 s, then every RECONNECT_BACKOFF_MAX_SECONDS = 300 s), and the
    session, completed after a couple of seconds of real time, starts at 20:00 and ends
    at 21:00 of the simulated clock, with 20 reconnects and 21 gaps that fill the hour."""
    stream_server.mount("/live.mp3", default=Plan(drop_after=0.1))
    start = datetime(2030, 3, 1, 20, 0, tzinfo=UTC)
    clock = SimulatedClock(start)
    settings = rec_settings(reconnect_backoff_max_seconds=300.0, no_audio_timeout_seconds=0,
                            stall_timeout_seconds=2.0, tz="UTC")
    services: Any = build_services(settings, clock=clock)
    try:
        station = services.stations.create(StationCreate(
            name="Night FM", stream_url=stream_server.url("/live.mp3"), artist="Night FM",
            album="Shows", album_artist="Night FM"))
        schedule = services.schedules.create(ScheduleCreate.model_validate(
            {"stream_config_id": station["id"], "cron_expression": "0 20 * * *",
             "duration_minutes": 60}))
        t0 = time.monotonic()
        services.recordings.fire_schedule(schedule["id"])  # what the cron job calls
        sessions = services.sessions.list()
        assert len(sessions) == 1
        sid = sessions[0]["id"]
        wait_for(lambda: not services.recordings.is_running(sid), 60, "the recording to end")
        real = time.monotonic() - t0
        row = services.sessions.get(sid)
    finally:
        services.close()
    assert row["status"] == "completed", row
    assert row["trigger"] == "schedule" and row["schedule_id"] == schedule["id"]
    utc = ZoneInfo("UTC")
    assert datetime.fromisoformat(row["start_time"]).astimezone(utc) == start
    assert datetime.fromisoformat(row["end_time"]).astimezone(utc) == start + timedelta(hours=1)
    waits = [2.0 ** i for i in range(9)] + [300.0] * 10 + [89.0]
    assert clock.waits == waits and clock.monotonic() == 3600.0
    assert row["reconnects"] == 20 and len(stream_server.requests_for("/live.mp3")) == 21
    assert [g["length_seconds"] for g in row["gaps"]] == [0.0, *waits]
    assert {g["reason"] for g in row["gaps"]} == {"dropped"}
    assert datetime.fromisoformat(row["gaps"][-1]["started_at"]).astimezone(utc) \
        == start + timedelta(seconds=3600 - 89)
    assert 21 * 0.08 < row["duration_seconds"] < 21 * 0.5
    assert row["stream_copy"] is True and row["error_message"] is None
    assert real < 20.0, real  # about 2 s of real time for the hour
