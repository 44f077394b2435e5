"""The recorder's HTML pages over a real server (httpx): every page renders with the
nav on an empty database, unknown ids are HTML 404 pages, rows created through the
API and the repository show up (escaped, in the configured zone), filters work,
secrets never appear; plus the page module's pure formatting helpers."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from PIL import Image

from taperoom.db import transaction
from taperoom.recorder import repository as repo
from taperoom.recorder.api.pages import (
    NAV,
    effective_settings,
    format_bytes,
    format_duration,
    format_time,
    gap_summary,
    parse_id,
    redact_url,
)
from taperoom.recorder.models import utcnow

http = httpx.Client(timeout=30)
DENVER = ZoneInfo("America/Denver")
PAGES = ["/", "/streams", "/streams/new", "/schedules", "/schedules/new", "/sessions",
         "/logs", "/settings", "/backup"]
STATION = {"name": "KUVO Jazz", "stream_url": "http://127.0.0.1:9/stream", "artist": "KUVO",
           "album": "Jazz Nights", "album_artist": "KUVO 89.3",
           "scp_destination": "radio@127.0.0.1:/srv/recordings/"}


def get_html(url: str, status: int = 200) -> str:
    """GET `url`; asserts the status and an HTML body with the full nav and the zone footer."""
    resp = http.get(url)
    assert resp.status_code == status, (url, resp.status_code, resp.text[:500])
    assert resp.headers["content-type"].startswith("text/html"), url
    html = resp.text
    assert html.lstrip().lower().startswith("<!doctype html>")
    for _key, href, label in NAV:
        assert f'href="{href}"' in html and label in html, (url, href)
    assert "America/Denver" in html, "the footer names the configured zone"
    return html


def create_station(base: str, **overrides: Any) -> dict[str, Any]:
    """POST /api/streams; asserts 201."""
    resp = http.post(f"{base}/api/streams", json={**STATION, **overrides})
    assert resp.status_code == 201, resp.text
    return resp.json()


def add_session(services: Any, station: dict[str, Any], **values: Any) -> int:
    """Insert a finished session of `station` through the repository; its id."""
    start = values.pop("start_time", utcnow() - timedelta(hours=2))
    with transaction(services.db) as db:
        row = repo.create_session(db, {
            "station_id": station["id"], "station_name": station["name"],
            "trigger": "schedule", "start_time": start, "end_time": start + timedelta(hours=1),
            "planned_duration_seconds": 3600.0, "status": "completed",
            "transfer_status": "completed", **values})
        return int(row.id)


# --------------------------------------------------------------------------- rendering


def test_every_page_renders_on_an_empty_database(rec_server: Any) -> None:
    """Every page answers 200 HTML with the nav, the zone footer and its own active entry."""
    for path in PAGES:
        html = get_html(rec_server.url + path)
        assert "Traceback" not in html
        expected = {"/streams/new": "/streams", "/schedules/new": "/schedules"}.get(path, path)
        active = re.findall(r'<a href="([^"]+)" aria-current="page">', html)
        assert active == [expected], path
    dash = get_html(rec_server.url + "/")
    assert "Nothing is recording right now." in dash
    assert "No stations yet." in dash
    assert 'id="live-row-template"' in dash


def test_static_assets_are_served(rec_server: Any) -> None:
    """The stylesheet and scripts the layout links are served from /static."""
    html = get_html(rec_server.url + "/")
    assets = re.findall(r'(?:src|href)="(/static/[^"?]+)', html)
    assert "/static/recorder.css" in assets and "/static/app.js" in assets
    assert "/static/dashboard.js" in assets
    for a in assets:
        resp = http.get(rec_server.url + a)
        assert resp.status_code == 200 and len(resp.content) > 500, a
    for page, script in (("/streams/new", "station-form.js"),
                         ("/schedules/new", "schedule-form.js"), ("/logs", "logs.js"),
                         ("/backup", "backup.js"), ("/settings", "settings.js"),
                         ("/sessions", "sessions.js")):
        assert f"/static/{script}" in get_html(rec_server.url + page), page
        assert http.get(f"{rec_server.url}/static/{script}").status_code == 200


def test_unknown_or_malformed_ids_are_html_404_pages(rec_server: Any) -> None:
    """Unknown, zero, negative and non-numeric ids answer the 404 page, never JSON or 500."""
    for path in ("/streams/999/edit", "/streams/0/edit", "/streams/abc/edit",
                 "/streams/-1/edit", "/streams/99999999999999999999999/edit",
                 "/schedules/999/edit", "/schedules/x/edit", "/streams/999/artwork"):
        html = get_html(rec_server.url + path, status=404)
        assert "404" in html and "Not found" in html, path
    station = create_station(rec_server.url)
    html = get_html(f"{rec_server.url}/streams/{station['id']}/artwork", status=404)
    assert "no artwork" in html


def test_pages_show_stations_and_schedules_escaped_and_in_the_zone(rec_server: Any) -> None:
    """API-made stations/schedules show escaped, next run in Denver time, forms prefilled."""
    base = rec_server.url
    st = create_station(base, name='Jazz <b>&"Blues"', bitrate_kbps=256, split_tracks=True)
    resp = http.post(f"{base}/api/schedules", json={
        "stream_config_id": st["id"], "cron_expression": "0 21 * * 1-5",
        "duration_minutes": 90, "max_retries": 2})
    assert resp.status_code == 201, resp.text
    sched = resp.json()
    nxt = http.get(f"{base}/api/schedules/{sched['id']}/next-run").json()["next_run_time"]
    local = datetime.fromisoformat(nxt).astimezone(DENVER)
    assert local.hour == 21
    shown = local.strftime("%Y-%m-%d %H:%M")

    for path in ("/", "/streams", "/schedules"):
        html = get_html(base + path)
        assert "Jazz &lt;b&gt;&amp;&#34;Blues&#34;" in html, path
        assert "<b>&" not in html, path
    dash = get_html(base + "/")
    assert shown in dash and "90 min" in dash
    schedules = get_html(base + "/schedules")
    assert shown in schedules and "0 21 * * 1-5" in schedules
    assert "Monday through Friday" in schedules and "21:00" in schedules

    form = get_html(f"{base}/streams/{st['id']}/edit")
    assert 'value="256"' in form
    assert 'id="split_tracks" name="split_tracks" type="checkbox" checked' in form
    assert 'value="radio@127.0.0.1:/srv/recordings/"' in form
    assert f'data-station-id="{st["id"]}"' in form
    for label in ("Name", "Stream URL", "Artist", "Album", "Album artist", "Artwork",
                  "File name pattern", "Destination"):
        assert f">{label}</label>" in form, label
    sform = get_html(f"{base}/schedules/{sched['id']}/edit")
    assert 'value="0 21 * * 1-5"' in sform and 'value="90"' in sform and 'value="2"' in sform
    assert f'<option value="{st["id"]}" selected>' in sform
    for label in ("Station", "Cron expression", "Duration (minutes)", "Max retries", "Active"):
        assert f">{label}</label>" in sform, label
    new = get_html(f"{base}/schedules/new?station={st['id']}")
    assert f'<option value="{st["id"]}" selected>' in new and "weekdays 21:00" in new


def test_artwork_route_serves_the_stored_image(rec_server: Any) -> None:
    """/streams/<id>/artwork returns exactly the image uploaded through the API."""
    base = rec_server.url
    st = create_station(base)
    img = Image.new("RGB", (40, 30), (10, 120, 200))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    resp = http.post(f"{base}/api/streams/{st['id']}/artwork",
                     files={"artwork": ("cover.png", buf.getvalue(), "image/png")})
    assert resp.status_code == 200, resp.text
    got = http.get(f"{base}/streams/{st['id']}/artwork")
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(got.content)).size == (40, 30)
    assert f'src="/streams/{st["id"]}/artwork?v=' in get_html(f"{base}/streams/{st['id']}/edit")


def test_sessions_page_filters_gaps_and_actions(rec_server: Any, rec_services: Any) -> None:
    """/sessions orders, filters, sums gaps; Retry/Stop only where they apply."""
    base = rec_server.url
    a = create_station(base, name="Alpha FM")
    b = create_station(base, name="Beta Radio")
    ok = add_session(rec_services, a, output_file_path="/tmp/x/2025-01-01_Alpha FM.mp3",
                     file_size_bytes=3 * 2**20, duration_seconds=3590.0, reconnects=2,
                     gaps=[{"at_seconds": 61.0, "length_seconds": 2.5, "reason": "dropped"},
                           {"at_seconds": 600.0, "length_seconds": 1.0, "reason": "stalled"}])
    failed_upload = add_session(rec_services, a, transfer_status="failed",
                                transfer_error_message="connection refused",
                                start_time=utcnow() - timedelta(hours=1))
    bad = add_session(rec_services, b, status="failed", error_message="capture failed: 404",
                      transfer_status="skipped", start_time=utcnow() - timedelta(minutes=30))
    live = add_session(rec_services, b, status="recording", transfer_status="pending",
                       end_time=None, start_time=utcnow() - timedelta(minutes=1))

    html = get_html(base + "/sessions")
    ids = [int(x) for x in re.findall(r'<tr data-session-id="(\d+)"', html)]
    assert ids == [live, bad, failed_upload, ok]
    assert "2 gaps · 3.5 s" in html and "2 reconnects" in html
    assert "3.0 MiB" in html and "connection refused" in html and "capture failed: 404" in html
    assert html.count('data-action="retry-upload"') == 1
    assert f'data-action="retry-upload" data-session="{failed_upload}"' in html
    assert html.count('data-action="stop"') == 1
    assert f'data-action="stop" data-session="{live}"' in html

    failed = get_html(base + "/sessions?status=failed")
    assert [int(x) for x in re.findall(r'<tr data-session-id="(\d+)"', failed)] == [bad]
    beta = get_html(f"{base}/sessions?station={b['id']}")
    assert [int(x) for x in re.findall(r'<tr data-session-id="(\d+)"', beta)] == [live, bad]
    both = get_html(f"{base}/sessions?station={a['id']}&status=completed")
    assert [int(x) for x in re.findall(r'<tr data-session-id="(\d+)"', both)] == [
        failed_upload, ok]
    junk = get_html(f"{base}/sessions?status=bogus&station=x&page=-3")
    assert len(re.findall(r'<tr data-session-id="(\d+)"', junk)) == 4
    none = get_html(f"{base}/sessions?station=424242")
    assert "No sessions match these filters." in none

    dash = get_html(base + "/")
    assert f'<tr data-session-id="{live}"' in dash  # a live row (status recording)
    assert "Recording now" in dash


def test_settings_page_shows_health_and_hides_secrets(rec_server: Any, rec_services: Any) -> None:
    """/settings shows settings and health, names the SSH key but never its contents."""
    key_dir: Path = rec_services.settings.ssh_config_dir
    (key_dir / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nSECRETBYTES\n")
    (key_dir / "id_ed25519.pub").write_text("ssh-ed25519 AAAA public")
    html = get_html(rec_server.url + "/settings")
    assert "id_ed25519" in html and "SECRETBYTES" not in html
    assert "id_ed25519.pub" not in html
    for env in ("RECORDINGS_DIR", "MAX_CONCURRENT_RECORDINGS", "MIN_FREE_DISK_MB", "TZ"):
        assert f"<code>{env}</code>" in html, env
    assert str(rec_services.settings.recordings_dir.resolve()) in html
    assert "Memory" in html and "CPU" in html and "Disk · Recordings" in html
    assert re.search(r"\d+(\.\d)? (GiB|TiB|MiB) free of", html)


# --------------------------------------------------------------------------- helpers


def test_effective_settings_redacts_passwords(rec_settings: Any) -> None:
    """URL passwords and secret-named values never reach the settings table."""
    s = rec_settings(database_url="postgresql://rec:hunter2@db.example:5432/recorder",
                     queue_url="redis://:s3cret@127.0.0.1:6379/0")
    rows = {r["name"]: r for r in effective_settings(s)}
    assert rows["database_url"]["value"] == "postgresql://rec:***@db.example:5432/recorder"
    assert rows["database_url"]["env"] == "RECORDER_DATABASE_URL"
    assert rows["queue_url"]["value"] == "redis://:***@127.0.0.1:6379/0"
    assert rows["port"]["env"] == "WEB_PORT" and rows["tz"]["value"] == "America/Denver"
    assert "hunter2" not in repr(rows) and "s3cret" not in repr(rows)
    assert redact_url("http://example.org/x") == "http://example.org/x"


def test_times_follow_the_zone_across_daylight_saving() -> None:
    """Stored naive-UTC instants show as 21:00 Denver time on both sides of the DST change."""
    before = datetime(2025, 3, 8, 4, 0)  # 2025-03-07 21:00 MST (UTC-7)
    after = datetime(2025, 3, 11, 3, 0)  # 2025-03-10 21:00 MDT (UTC-6)
    assert format_time(before, DENVER) == "2025-03-07 21:00"
    assert format_time(after, DENVER) == "2025-03-10 21:00"
    assert format_time("2025-03-10T21:00:05-06:00", DENVER, seconds=True) == \
        "2025-03-10 21:00:05"
    assert format_time(None, DENVER) == "—" and format_time("garbage", DENVER) == "—"


def test_formatting_helpers() -> None:
    """Sizes, lengths, gap totals and id parsing give the documented results."""
    assert format_bytes(None) == "—" and format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(3 * 2**30) == "3.0 GiB"
    assert format_duration(None) == "—" and format_duration(59.6) == "1:00"
    assert format_duration(3725) == "1:02:05" and format_duration(-4) == "0:00"
    g = gap_summary([{"length_seconds": 1.25}, {"length_seconds": 2}, {}])
    assert g["count"] == 3 and g["total_seconds"] == 3.25
    assert gap_summary(None)["count"] == 0
    assert parse_id("42") == 42
    for bad in ("0", "-1", "x", "", "1e3", "9" * 19):
        with pytest.raises(LookupError):
            parse_id(bad)
