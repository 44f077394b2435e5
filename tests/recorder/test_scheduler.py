"""Cron parsing, next runs across daylight-saving changes, and the job store."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import inspect

from taperoom.db import make_engine, sqlite_url
from taperoom.errors import InvalidInput
from taperoom.recorder import migrate
from taperoom.recorder.scheduler import RecorderScheduler, describe, next_runs, parse_cron

DENVER = ZoneInfo("America/Denver")
BERLIN = ZoneInfo("Europe/Berlin")


def test_show_stays_at_21_local_across_spring_forward() -> None:
    """A 0 21 * * * show fires at 21:00 Denver time before and after 2026-03-08."""
    runs = next_runs("0 21 * * *", DENVER, 4, datetime(2026, 3, 6, 12, tzinfo=DENVER))
    assert [r.strftime("%Y-%m-%d %H:%M") for r in runs] == [
        "2026-03-06 21:00", "2026-03-07 21:00", "2026-03-08 21:00", "2026-03-09 21:00"]
    assert [r.utcoffset().total_seconds() / 3600 for r in runs] == [-7, -7, -6, -6]


def test_show_stays_at_21_local_across_fall_back() -> None:
    """Across 2026-11-01 the UTC hour moves by one and the local hour does not."""
    runs = next_runs("0 21 * * *", DENVER, 3, datetime(2026, 10, 31, 12, tzinfo=DENVER))
    assert {r.hour for r in runs} == {21}
    utc_hours = [r.astimezone(ZoneInfo("UTC")).hour for r in runs]
    assert utc_hours == [3, 4, 4]


def test_skipped_local_time_fires_once_an_hour_later() -> None:
    """02:30 does not exist in Berlin on 2026-03-29: the show fires once, at 03:30 CEST."""
    runs = next_runs("30 2 * * *", BERLIN, 3, datetime(2026, 3, 28, 12, tzinfo=BERLIN))
    local = [r.astimezone(UTC).astimezone(BERLIN).strftime("%Y-%m-%d %H:%M %z") for r in runs]
    assert local == ["2026-03-29 03:30 +0200", "2026-03-30 02:30 +0200",
                     "2026-03-31 02:30 +0200"]


def test_repeated_local_time_fires_once() -> None:
    """02:30 happens twice in Berlin on 2026-10-25: the show is listed (and run) once."""
    runs = next_runs("30 2 * * *", BERLIN, 3, datetime(2026, 10, 24, 12, tzinfo=BERLIN))
    local = [r.astimezone(UTC).astimezone(BERLIN).strftime("%Y-%m-%d %H:%M %z") for r in runs]
    assert local == ["2026-10-25 02:30 +0200", "2026-10-26 02:30 +0100",
                     "2026-10-27 02:30 +0100"]


@pytest.mark.parametrize("expr", ["", "* * * *", "* * * * * *", "61 * * * *", "* 25 * * *",
                                  "* * 32 * *", "* * * 13 *", "a b c d e", "*/0 * * * *"])
def test_bad_cron_is_invalid_input(expr: str) -> None:
    """Wrong field counts and out-of-range fields raise InvalidInput (HTTP 400)."""
    with pytest.raises(InvalidInput):
        parse_cron(expr, DENVER)


def test_names_and_steps_are_accepted() -> None:
    """Day names, ranges and steps parse: weekdays at 21:00 skip the weekend."""
    runs = next_runs("0 21 * * mon-fri", DENVER, 5, datetime(2026, 11, 20, 22, tzinfo=DENVER))
    assert [r.strftime("%a") for r in runs] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert len(next_runs("*/15 * * * *", DENVER, 4)) == 4


@pytest.mark.parametrize(("expr", "days"), [
    ("0 21 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon", "Tue"]),
    ("0 21 * * 0", ["Sun"] * 7),
    ("0 21 * * 7", ["Sun"] * 7),
    ("0 21 * * 5-7", ["Sun", "Fri", "Sat", "Sun", "Fri", "Sat", "Sun"]),
    ("0 21 * * */3", ["Sun", "Wed", "Sat", "Sun", "Wed", "Sat", "Sun"]),
    ("0 21 * * sat,1", ["Mon", "Sat", "Mon", "Sat", "Mon", "Sat", "Mon"]),
])
def test_day_of_week_numbers_follow_crontab(expr: str, days: list[str]) -> None:
    """Weekday numbers mean what crontab(5) says: 0 and 7 are Sunday, 1-5 Monday to Friday."""
    runs = next_runs(expr, DENVER, 7, datetime(2026, 11, 21, 22, tzinfo=DENVER))  # a Saturday
    assert [r.strftime("%a") for r in runs] == days


@pytest.mark.parametrize("expr", ["0 21 * * 8", "0 21 * * 5-1", "0 21 * * */0", "0 21 * * xyz"])
def test_bad_day_of_week_is_invalid(expr: str) -> None:
    """Days above 7, backwards ranges, zero steps and unknown names are refused."""
    with pytest.raises(InvalidInput):
        parse_cron(expr, DENVER)


def test_description_is_human_readable() -> None:
    """cron-descriptor gives an English description with a 24-hour time."""
    assert describe("0 21 * * 1-5") == "At 21:00, Monday through Friday"


def test_jobs_persist_in_the_database(tmp_path) -> None:
    """A job added by one scheduler is found by a new one on the same database."""
    url = sqlite_url(tmp_path / "r.db")
    engine = make_engine(url)
    migrate.upgrade(engine)
    fired: list[int] = []
    s1 = RecorderScheduler(engine, DENVER, fired.append)
    s1.start()
    nxt = s1.sync(7, "0 21 * * *", True)
    assert nxt is not None and nxt.hour == 21
    s1.shutdown()
    engine.dispose()
    engine2 = make_engine(url)
    assert "apscheduler_jobs" in inspect(engine2).get_table_names()
    s2 = RecorderScheduler(engine2, DENVER, fired.append)
    s2.start()
    try:
        assert s2.job_ids() == {7}
        assert s2.next_run(7) == nxt
        s2.reconcile([(7, "0 21 * * *", False)])
        assert s2.job_ids() == set()
    finally:
        s2.shutdown()
        engine2.dispose()
