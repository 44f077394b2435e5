"""/api/schedules on a real server: CRUD, scheduler jobs, cron validation, daylight-saving
time in America/Denver, and schedules surviving a restart of the recorder."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

http = httpx.Client(timeout=30)
DENVER = ZoneInfo("America/Denver")
STATION = {"name": "KUVO Jazz", "stream_url": "http://127.0.0.1:9/stream", "artist": "KUVO",
           "album": "Jazz Nights", "album_artist": "KUVO 89.3"}


@pytest.fixture
def base(rec_server: Any) -> str:
    """Base URL of the server."""
    return rec_server.url


@pytest.fixture
def station(base: str) -> dict[str, Any]:
    """One station."""
    resp = http.post(f"{base}/api/streams", json=STATION)
    assert resp.status_code == 201
    return resp.json()


def make(base: str, station_id: int, **overrides: Any) -> dict[str, Any]:
    """POST a schedule of `station_id` (21:00 daily, one hour); asserts 201."""
    body = {"stream_config_id": station_id, "cron_expression": "0 21 * * *",
            "duration_minutes": 60, **overrides}
    resp = http.post(f"{base}/api/schedules", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def assert_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    """The response has `status` and the contract's error body."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status_code"] == status and "error" in body and "message" in body
    return body


def parse(value: str) -> datetime:
    """An ISO 8601 string with offset as an aware datetime."""
    dt = datetime.fromisoformat(value)
    assert dt.tzinfo is not None, value
    return dt


# --------------------------------------------------------------------------- CRUD and jobs


def test_create_makes_a_scheduler_job(base: str, station: dict[str, Any],
                                      rec_services: Any) -> None:
    """A created schedule has the contract's shape, a job, and the job's next run stored."""
    s = make(base, station["id"])
    assert set(s) >= {"id", "stream_config_id", "cron_expression", "duration_minutes",
                      "is_active", "next_run_time", "last_run_time", "retry_count",
                      "max_retries", "created_at", "updated_at"}
    assert s["is_active"] is True and s["max_retries"] == 3 and s["last_run_time"] is None
    job_next = rec_services.scheduler.next_run(s["id"])
    assert job_next is not None
    assert parse(s["next_run_time"]) == job_next
    local = job_next.astimezone(DENVER)
    assert (local.hour, local.minute) == (21, 0)
    assert http.get(f"{base}/api/schedules/{s['id']}").json() == s


def test_update_resyncs_the_job(base: str, station: dict[str, Any], rec_services: Any) -> None:
    """Changing the cron expression moves the job; the stored next run follows."""
    s = make(base, station["id"])
    resp = http.put(f"{base}/api/schedules/{s['id']}",
                    json={"cron_expression": "15  6 * * *", "duration_minutes": 30})
    assert resp.status_code == 200, resp.text
    u = resp.json()
    assert u["cron_expression"] == "15 6 * * *" and u["duration_minutes"] == 30
    local = rec_services.scheduler.next_run(s["id"]).astimezone(DENVER)
    assert (local.hour, local.minute) == (6, 15)
    assert parse(u["next_run_time"]) == rec_services.scheduler.next_run(s["id"])


def test_activate_deactivate_and_next_run(base: str, station: dict[str, Any],
                                          rec_services: Any) -> None:
    """Deactivating removes the job (next run null); activating brings it back."""
    s = make(base, station["id"])
    url = f"{base}/api/schedules/{s['id']}"
    nr = http.get(f"{url}/next-run").json()
    assert nr == {"schedule_id": s["id"], "next_run_time": s["next_run_time"],
                  "is_active": True, "cron_expression": "0 21 * * *"}

    body = http.post(f"{url}/deactivate").json()
    assert body["schedule_id"] == s["id"] and body["is_active"] is False
    assert body["message"] == "Schedule deactivated successfully"
    assert rec_services.scheduler.next_run(s["id"]) is None
    assert http.get(f"{url}/next-run").json()["next_run_time"] is None
    assert http.get(url).json()["next_run_time"] is None
    assert http.get(f"{base}/api/schedules", params={"active": "true"}).json() == []

    body = http.post(f"{url}/activate").json()
    assert body["is_active"] is True and body["message"] == "Schedule activated successfully"
    assert rec_services.scheduler.next_run(s["id"]) is not None
    assert http.get(f"{url}/next-run").json()["next_run_time"] == s["next_run_time"]


def test_inactive_schedule_has_no_job(base: str, station: dict[str, Any],
                                      rec_services: Any) -> None:
    """A schedule created inactive gets no job and no next run."""
    s = make(base, station["id"], is_active=False)
    assert s["next_run_time"] is None and rec_services.scheduler.next_run(s["id"]) is None


def test_delete_removes_the_job(base: str, station: dict[str, Any], rec_services: Any) -> None:
    """Deleting answers the contract's message and removes the job."""
    s = make(base, station["id"])
    resp = http.delete(f"{base}/api/schedules/{s['id']}")
    assert resp.json() == {"message": f"Recording schedule {s['id']} deleted successfully"}
    assert rec_services.scheduler.next_run(s["id"]) is None
    assert_error(http.get(f"{base}/api/schedules/{s['id']}"), 404)


def test_list_filters(base: str, station: dict[str, Any]) -> None:
    """active and stream_config_id filter the list; paging works."""
    other = http.post(f"{base}/api/streams", json={**STATION, "name": "Other"}).json()
    a = make(base, station["id"])
    b = make(base, station["id"], is_active=False)
    c = make(base, other["id"])
    ids = lambda **p: [x["id"] for x in http.get(f"{base}/api/schedules", params=p).json()]  # noqa: E731
    assert ids() == [a["id"], b["id"], c["id"]]
    assert ids(active="true") == [a["id"], c["id"]]
    assert ids(active="false") == [b["id"]]
    assert ids(stream_config_id=station["id"]) == [a["id"], b["id"]]
    assert ids(skip=1, limit=1) == [b["id"]]


# --------------------------------------------------------------------------- cron validation


def test_validate_cron_valid(base: str) -> None:
    """A valid expression answers five ISO next runs in TZ and a description."""
    resp = http.post(f"{base}/api/schedules/validate-cron",
                     json={"cron_expression": "30 6 * * 1-5"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["valid"] is True and body["cron_expression"] == "30 6 * * 1-5"
    runs = [parse(r) for r in body["next_runs"]]
    assert len(runs) == 5 and runs == sorted(runs)
    assert body["next_run_time"] == body["next_runs"][0]
    for r in runs:
        local = r.astimezone(DENVER)
        assert (local.hour, local.minute) == (6, 30) and local.weekday() < 5
        assert r.utcoffset() == local.utcoffset()  # rendered in TZ
    assert "06:30" in body["description"] and "Monday" in body["description"]


@pytest.mark.parametrize("expr", ["61 * * * *", "* * *", "0 21 * * * *", "a b c d e",
                                  "0 25 * * *", "0 0 32 * *", "0 0 * 13 *"])
def test_validate_cron_invalid(base: str, expr: str) -> None:
    """Invalid expressions answer 400 {valid: false, error: "Invalid cron expression format"}."""
    resp = http.post(f"{base}/api/schedules/validate-cron", json={"cron_expression": expr})
    assert resp.status_code == 400
    body = resp.json()
    assert body["valid"] is False and body["error"] == "Invalid cron expression format"


def test_dst_keeps_local_time(base: str) -> None:
    """"0 21 * * *" stays at 21:00 in Denver across 2026-03-08 and 2026-11-01."""
    spring = http.post(f"{base}/api/schedules/validate-cron",
                       params={"after": "2026-03-06T12:00:00-07:00"},
                       json={"cron_expression": "0 21 * * *"}).json()
    got = [parse(r) for r in spring["next_runs"]]
    assert [r.isoformat() for r in got[:4]] == [
        "2026-03-06T21:00:00-07:00", "2026-03-07T21:00:00-07:00",
        "2026-03-08T21:00:00-06:00", "2026-03-09T21:00:00-06:00"]
    assert got[2] - got[1] == timedelta(hours=23)  # the night the clocks go forward

    autumn = http.post(f"{base}/api/schedules/validate-cron",
                       params={"after": "2026-10-31T00:00:00"},  # naive = in TZ
                       json={"cron_expression": "0 21 * * *"}).json()
    got = [parse(r) for r in autumn["next_runs"]]
    assert [r.isoformat() for r in got[:3]] == [
        "2026-10-31T21:00:00-06:00", "2026-11-01T21:00:00-07:00",
        "2026-11-02T21:00:00-07:00"]
    assert got[1] - got[0] == timedelta(hours=25)


def test_scheduler_job_keeps_local_time_across_dst(base: str, station: dict[str, Any],
                                                   rec_services: Any) -> None:
    """The job's own trigger fires at 21:00 local on both sides of the March change."""
    s = make(base, station["id"])
    job = rec_services.scheduler._sched.get_job(f"schedule-{s['id']}")
    now = datetime(2026, 3, 7, 12, tzinfo=DENVER)
    fires, prev = [], None
    for _ in range(3):
        prev = job.trigger.get_next_fire_time(prev, now)
        fires.append(prev.isoformat())
        now = prev
    assert fires == ["2026-03-07T21:00:00-07:00", "2026-03-08T21:00:00-06:00",
                     "2026-03-09T21:00:00-06:00"]


# --------------------------------------------------------------------------- client errors


@pytest.mark.parametrize("body", [
    {},
    {"stream_config_id": 0, "cron_expression": "0 21 * * *", "duration_minutes": 60},
    {"stream_config_id": "{sid}", "cron_expression": "0 21 * * *", "duration_minutes": 0},
    {"stream_config_id": "{sid}", "cron_expression": "0 21 * * *", "duration_minutes": 1441},
    {"stream_config_id": "{sid}", "cron_expression": "0 21 * * *", "duration_minutes": 60,
     "max_retries": 11},
    {"stream_config_id": "{sid}", "cron_expression": "", "duration_minutes": 60},
    {"stream_config_id": "{sid}", "cron_expression": "0 21 * *", "duration_minutes": 60},
    {"stream_config_id": "{sid}", "cron_expression": "99 21 * * *", "duration_minutes": 60},
    {"stream_config_id": "{sid}", "cron_expression": "0 21 * * *", "duration_minutes": "x"},
])
def test_bad_schedule_bodies_are_400(base: str, station: dict[str, Any], rec_services: Any,
                                     body: dict[str, Any]) -> None:
    """Invalid schedule bodies are 400 and create no schedule or job."""
    body = {k: (station["id"] if v == "{sid}" else v) for k, v in body.items()}
    assert_error(http.post(f"{base}/api/schedules", json=body), 400)
    assert http.get(f"{base}/api/schedules").json() == []
    assert rec_services.scheduler.job_ids() == set()


@pytest.mark.parametrize("sid", [999, 2**63 - 1, 2**63, 10**30])
def test_unknown_station_is_404(base: str, sid: int) -> None:
    """A schedule of an unknown station (even an out-of-range id) is a 404."""
    assert_error(http.post(f"{base}/api/schedules",
                           json={"stream_config_id": sid, "cron_expression": "0 21 * * *",
                                 "duration_minutes": 60}), 404)


def test_bad_updates(base: str, station: dict[str, Any], rec_services: Any) -> None:
    """Bad updates are 400/404 and leave the schedule and its job unchanged."""
    s = make(base, station["id"])
    url = f"{base}/api/schedules/{s['id']}"
    assert_error(http.put(url, json={"cron_expression": "nope"}), 400)
    assert_error(http.put(url, json={"duration_minutes": 0}), 400)
    assert_error(http.put(url, json={"stream_config_id": 999}), 404)
    assert_error(http.put(url, content=b"[]", headers={"Content-Type": "application/json"}),
                 400)
    assert http.get(url).json() == s
    assert rec_services.scheduler.next_run(s["id"]) == parse(s["next_run_time"])


@pytest.mark.parametrize("path", ["999", "0", "99999999999999999999"])
def test_unknown_schedule_ids_are_404(base: str, path: str) -> None:
    """Every per-schedule route answers 404 for an unknown id."""
    url = f"{base}/api/schedules/{path}"
    assert_error(http.get(url), 404)
    assert_error(http.put(url, json={"duration_minutes": 5}), 404)
    assert_error(http.delete(url), 404)
    assert_error(http.post(f"{url}/activate"), 404)
    assert_error(http.post(f"{url}/deactivate"), 404)
    assert_error(http.get(f"{url}/next-run"), 404)
    assert_error(http.get(f"{base}/api/schedules/abc"), 404)


@pytest.mark.parametrize("params", [{"active": "maybe"}, {"stream_config_id": "x"},
                                    {"stream_config_id": 0}, {"limit": 0}, {"skip": -3}])
def test_bad_list_params_are_400(base: str, params: dict[str, Any]) -> None:
    """Malformed list filters are 400."""
    assert_error(http.get(f"{base}/api/schedules", params=params), 400)


def test_validate_cron_bad_bodies(base: str) -> None:
    """validate-cron without an expression, or with a bad ``after``, is a 400."""
    url = f"{base}/api/schedules/validate-cron"
    assert http.post(url, json={}).status_code == 400
    assert http.post(url, content=b"x", headers={"Content-Type": "application/json"}
                     ).status_code == 400
    assert http.post(url, params={"after": "yesterday"},
                     json={"cron_expression": "0 21 * * *"}).status_code == 400


# --------------------------------------------------------------------------- restart


def test_schedules_survive_a_restart(rec_settings: Any, live_server: Any) -> None:
    """A schedule's job is in the job store after close + reopen, with the same next run."""
    from taperoom.recorder.app import create_app
    from taperoom.recorder.context import build_services

    settings = rec_settings()
    services = build_services(settings)
    try:
        srv = live_server(create_app(services=services))
        st = http.post(f"{srv.url}/api/streams", json=STATION).json()
        s = make(srv.url, st["id"], cron_expression="45 5 * * 0")
        before = services.scheduler.next_run(s["id"])
        srv.__exit__()
    finally:
        services.close()

    services2 = build_services(settings)
    try:
        with services2.engine.connect() as conn:  # the job is stored, before anything reconciles
            stored = conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars().all()
        assert stored == [f"schedule-{s['id']}"]
        services2.start()
        assert services2.scheduler.next_run(s["id"]) == before
        local = before.astimezone(DENVER)
        assert (local.weekday(), local.hour, local.minute) == (6, 5, 45)
    finally:
        services2.close()


def test_max_retries_defaults_to_the_setting(rec_settings: Any, live_server: Any) -> None:
    """A schedule created without max_retries gets DEFAULT_MAX_RETRIES; one that names it
    keeps its own (0 included)."""
    from taperoom.recorder.app import create_app
    from taperoom.recorder.context import build_services

    services = build_services(rec_settings(default_max_retries=7))
    try:
        base = live_server(create_app(services=services)).url
        st = http.post(f"{base}/api/streams", json=STATION).json()
        assert make(base, st["id"])["max_retries"] == 7
        assert make(base, st["id"], max_retries=0)["max_retries"] == 0
    finally:
        services.close()
