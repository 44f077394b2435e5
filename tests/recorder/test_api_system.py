"""/api/system on a real server: status and health of the real components, metrics
sampled by the running sampler, and the structured logs the server itself wrote."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from taperoom.recorder import monitor
from tests.allowprobe import assert_405s_list_the_documented_methods
from tests.polling import wait_for

http = httpx.Client(timeout=30)
COMPONENTS = {"database", "scheduler", "upload_queue", "disk"}


@pytest.fixture
def api(rec_server: Any) -> str:
    """Base URL of the system routes."""
    return f"{rec_server.url}/api/system"


def assert_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    """The response has `status` and the contract's error body."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status_code"] == status and "error" in body and "message" in body
    return body


def test_status_shape_and_values(api: str, rec_services: Any) -> None:
    """status has every contract field, real disk figures of RECORDINGS_DIR, healthy parts."""
    body = http.get(api + "/status").json()
    fields = {"status", "message", "timestamp", "uptime_seconds", "active_recordings",
              "total_recordings", "cpu_percent", "memory_percent", "memory_used_mb",
              "memory_total_mb", "disk_percent", "disk_used_gb", "disk_total_gb",
              "disk_free_gb", "components"}
    assert fields <= set(body)
    assert set(body["components"]) == COMPONENTS
    assert body["status"] == "healthy", body
    assert body["components"]["scheduler"]["running"] is True
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() is not None
    assert body["uptime_seconds"] > 0
    assert 0 <= body["cpu_percent"] <= 100 and 0 < body["memory_percent"] < 100
    assert body["memory_used_mb"] < body["memory_total_mb"]
    import shutil

    usage = shutil.disk_usage(rec_services.settings.recordings_dir)
    assert abs(body["disk_total_gb"] - usage.total / 2**30) < 0.02
    assert abs(body["disk_free_gb"] - usage.free / 2**30) < 1.0
    assert body["active_recordings"] == 0 and body["total_recordings"] == 0


def test_health_shape(api: str) -> None:
    """health answers {status, message, timestamp, components} with per-part statuses."""
    body = http.get(api + "/health").json()
    assert set(body) == {"status", "message", "timestamp", "components"}
    assert body["status"] == "healthy" and body["message"] == "All systems operational"
    for part in body["components"].values():
        assert part["status"] in ("healthy", "degraded", "unhealthy") and part["message"]


def test_disk_below_threshold_is_unhealthy(rec_settings: Any, live_server: Any) -> None:
    """With MIN_FREE_DISK_MB above the free space, health is unhealthy and names the disk."""
    from taperoom.recorder.app import create_app
    from taperoom.recorder.context import build_services

    services = build_services(rec_settings(min_free_disk_mb=1e12))
    try:
        srv = live_server(create_app(services=services))
        body = http.get(srv.url + "/api/system/health").json()
        assert body["status"] == "unhealthy"
        assert body["components"]["disk"]["status"] == "unhealthy"
        assert "disk" in body["message"]
        assert http.get(srv.url + "/api/system/status").json()["status"] == "unhealthy"
    finally:
        services.close()


def test_overall_status_is_the_worst_part() -> None:
    """The overall status is the worst component status, and the message names it."""
    parts = {"a": {"status": "healthy", "message": "ok"},
             "b": {"status": "degraded", "message": "slow"}}
    assert monitor.overall(parts) == ("degraded", "b: slow")
    parts["c"] = {"status": "unhealthy", "message": "down"}
    assert monitor.overall(parts)[0] == "unhealthy"


def test_metrics_history_and_summary(api: str) -> None:
    """The running sampler (0.5 s here) fills the history; summary aggregates it."""
    body: dict[str, Any] = wait_for(
        lambda: (lambda b: b if b["count"] >= 3 else None)(http.get(api + "/metrics").json()),
        10, "three metrics samples")
    assert body["hours"] == 1.0 and body["count"] == len(body["metrics"]) >= 3
    sample = body["metrics"][-1]
    for key in ("timestamp", "cpu_percent", "memory_percent", "disk_percent",
                "process_rss_mb", "active_recordings"):
        assert key in sample
    times = [datetime.fromisoformat(m["timestamp"]) for m in body["metrics"]]
    assert times == sorted(times) and times[-1] - times[0] < timedelta(seconds=60)

    summary = http.get(api + "/metrics", params={"summary": "true", "hours": 2}).json()
    assert summary["hours"] == 2.0 and summary["count"] >= 3
    cpu = summary["cpu_percent"]
    assert cpu["min"] <= cpu["avg"] <= cpu["max"] <= 100
    assert summary["process_rss_mb"]["min"] > 0


def test_metrics_current_and_detailed(api: str) -> None:
    """current is a fresh sample; detailed adds per-CPU, load, folders and the process."""
    now = datetime.now(UTC)
    cur = http.get(api + "/metrics/current").json()
    assert abs(datetime.fromisoformat(cur["timestamp"]) - now) < timedelta(seconds=10)
    assert 0 <= cur["cpu_percent"] <= 100
    det = http.get(api + "/metrics/detailed").json()
    assert len(det["per_cpu_percent"]) == det["cpu_count"]
    assert set(det["folders"]) == {"data", "recordings", "artwork", "logs"}
    assert det["process"]["rss_mb"] > 0 and len(det["load_average"]) == 3


@pytest.mark.parametrize("params", [{"hours": 0}, {"hours": 25}, {"hours": "x"},
                                    {"summary": "perhaps"}])
def test_bad_metrics_params_are_400(api: str, params: dict[str, Any]) -> None:
    """hours outside (0, 24] or a non-boolean summary are 400."""
    assert_error(http.get(api + "/metrics", params=params), 400)


def test_logs_of_the_servers_own_operations(api: str, rec_server: Any) -> None:
    """Changes made through the API appear in /logs, filtered by operation type."""
    base = rec_server.url
    st = http.post(f"{base}/api/streams", json={
        "name": "Log FM", "stream_url": "http://127.0.0.1:9/x", "artist": "a", "album": "b",
        "album_artist": "c"}).json()
    http.post(f"{base}/api/schedules", json={"stream_config_id": st["id"],
                                             "cron_expression": "0 21 * * *",
                                             "duration_minutes": 60})
    body = http.get(api + "/logs", params={"operation_type": "scheduling"}).json()
    assert set(body) == {"logs", "count", "operation_type", "limit"}
    assert body["operation_type"] == "scheduling" and body["limit"] == 100
    assert body["count"] == len(body["logs"]) >= 1
    assert all(e["operation_type"] == "scheduling" for e in body["logs"])
    assert any("schedule" in e["message"] and "created" in e["message"] for e in body["logs"])
    conf = http.get(api + "/logs", params={"operation_type": "configuration"}).json()
    assert any("Log FM" in e["message"] for e in conf["logs"])
    everything = http.get(api + "/logs", params={"limit": 1}).json()
    assert everything["count"] == 1 and everything["operation_type"] is None
    first = everything["logs"][0]
    assert datetime.fromisoformat(first["timestamp"]).utcoffset() is not None


@pytest.mark.parametrize("params", [{"operation_type": "bogus"}, {"limit": 0},
                                    {"limit": 100000}, {"level": "LOUD"},
                                    {"since": "tomorrow"}, {"session_id": "x"}])
def test_bad_log_params_are_400(api: str, params: dict[str, Any]) -> None:
    """Unknown operation types or levels and malformed filters are 400."""
    assert_error(http.get(api + "/logs", params=params), 400)


def _message(resp: httpx.Response) -> str:
    """The ``message`` of a JSON error body ('' when there is none)."""
    try:
        body = resp.json()
    except ValueError:
        return ""
    return str(body.get("message") or "") if isinstance(body, dict) else ""


JUNK_BODIES: list[bytes | None] = [
    None, b"", b"{", b"[]", b"null", b'"text"', b"123", b'{"a": 1}',
    b'{"name": null, "stream_config_id": "x", "backup_filename": 5}',
    b'{"stream_config_id": 1e400, "cron_expression": "0 0 * * *", "duration_minutes": 5}',
    b'{"stream_config_id": 100000000000000000000000, "cron_expression": "0 0 * * *", '
    b'"duration_minutes": 5}',
    b'{"duration_seconds": NaN, "cron_expression": "\\u0000", "backup_filename": "\\u0000.zip"}',
    b'{"streams": [{"id": [1]}], "schedules": [{"stream_config_id": {"a": 1}}]}',
    '{"name": "\u2603\ud83d\ude00", "cron_expression": "* * * * * * *"}'.encode("utf-8",
                                                                          "surrogatepass"),
]
JUNK_IDS = ["1", "0", "99999999999999999999", "abc", "%00", "..%2F..%2Fetc"]
JUNK_QUERIES = [{}, {"limit": "-1", "skip": "x"}, {"hours": "nan"}, {"recent_days": "inf"},
                {"status": "\x00"}, {"after": "0001-01-01T00:00:00"},
                {"after": "9999-12-31T23:59:59"}, {"since": "9999-12-31T23:59:59"},
                {"operation_type": "error", "level": "critical", "session_id": "1"},
                {"active": "2"}, {"stream_config_id": "99999999999999999999"}]


@pytest.mark.slow
def test_no_route_answers_500_to_junk(rec_server: Any) -> None:
    """Every /api route, fed junk ids, bodies and query strings, answers below 500, and
    every refusal is a 4xx the contract knows (400, 404, 405, 409, 413, 422) with a JSON
    body whose ``message`` says what is wrong."""
    spec = http.get(rec_server.url + "/openapi.json").json()
    failures = []
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method in ops:
            urls = ([path.replace("{" + p + "}", i) for p in
                     ("stream_id", "schedule_id", "session_id") for i in JUNK_IDS
                     if "{" + p + "}" in path] or [path])
            for url in urls:
                cases: list[tuple[dict[str, Any], bytes | None]] = (
                    [(q, None) for q in JUNK_QUERIES] if method == "get"
                    else [({}, b) for b in JUNK_BODIES] + [(q, b"{}") for q in JUNK_QUERIES])
                for query, body in cases:
                    resp = http.request(method.upper(), rec_server.url + url, params=query,
                                        content=body,
                                        headers={"Content-Type": "application/json"})
                    if resp.status_code >= 500 or (resp.status_code >= 400 and (
                            resp.status_code not in (400, 404, 405, 409, 413, 422)
                            or not _message(resp))):
                        failures.append((method, url, query, body, resp.status_code,
                                         resp.text[:200]))
    assert not failures, failures[:5]


# --------------------------------------------------------------------------- OpenAPI document


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or what its ``$ref`` (``#/components/...``) points to."""
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def test_openapi_declares_the_multipart_artwork_upload(rec_server: Any) -> None:
    """The artwork upload reads its multipart form itself; /openapi.json still declares
    that body (required, ``multipart/form-data``, one binary part ``artwork``) instead
    of none, and the part it names is the one the route takes."""
    from PIL import Image

    spec = http.get(rec_server.url + "/openapi.json").json()
    op = spec["paths"]["/api/streams/{stream_id}/artwork"]["post"]
    body = op.get("requestBody")
    assert body is not None and body.get("required") is True, op
    assert list(body["content"]) == ["multipart/form-data"]
    schema = _resolve(spec, body["content"]["multipart/form-data"]["schema"])
    assert schema["type"] == "object" and schema["required"] == ["artwork"]
    (field, part), = schema["properties"].items()
    assert part["type"] == "string" and part["format"] == "binary"
    assert list(op["responses"]["200"]["content"]) == ["application/json"]

    st = http.post(rec_server.url + "/api/streams", json={
        "name": "Art FM", "stream_url": "http://127.0.0.1:9/s", "artist": "a", "album": "b",
        "album_artist": "c"}).json()
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(buf, format="PNG")
    resp = http.post(f"{rec_server.url}/api/streams/{st['id']}/artwork",
                     files={field: ("cover.png", buf.getvalue(), "image/png")})
    assert resp.status_code == 200, resp.text


def test_every_documented_read_answers_a_documented_media_type(rec_server: Any,
                                                                rec_services: Any) -> None:
    """Each GET route of /openapi.json, called with real ids, answers with a media type
    that its document lists for that status (no file or audio answer documented as
    ``application/json``)."""
    from taperoom.db import transaction
    from taperoom.recorder import repository as repo
    from taperoom.recorder.models import utcnow

    base = rec_server.url
    st = http.post(base + "/api/streams", json={
        "name": "Doc FM", "stream_url": "http://127.0.0.1:9/s", "artist": "a", "album": "b",
        "album_artist": "c"}).json()
    sched = http.post(base + "/api/schedules", json={
        "stream_config_id": st["id"], "cron_expression": "0 21 * * *",
        "duration_minutes": 60, "is_active": False}).json()
    with transaction(rec_services.db) as db:
        session_id = repo.create_session(db, {
            "station_id": st["id"], "station_name": "Doc FM", "trigger": "manual",
            "start_time": utcnow(), "planned_duration_seconds": 60.0, "status": "failed",
            "transfer_status": "skipped"}).id
    ids = {"stream_id": st["id"], "station_id": st["id"], "schedule_id": sched["id"],
           "session_id": session_id, "ext": "png"}
    spec = http.get(base + "/openapi.json").json()
    checked = 0
    for path, ops in spec["paths"].items():
        if "get" not in ops:
            continue
        resp = http.get(base + path.format(**ids))
        documented = ops["get"]["responses"].get(str(resp.status_code), {}).get("content", {})
        media = resp.headers.get("content-type", "").split(";")[0].strip()
        assert media in documented, (path, resp.status_code, media, list(documented))
        checked += 1
    assert checked >= 15


def test_every_path_lists_all_its_methods(rec_server: Any) -> None:
    """Each documented path's 405 lists every documented method of the path."""
    with httpx.Client(base_url=rec_server.url, timeout=10) as c:
        assert assert_405s_list_the_documented_methods(c) > 20
