"""Who may change the recorder: origins, Host names and credentials, on real servers on
127.0.0.1 and on a non-loopback address of this machine (``exposed_address``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.access import (
    EVIL,
    FRONTEND,
    PASSWORD,
    meta_csrf,
    set_cookie_attributes,
    sign_in,
    ws_handshake,
    ws_handshake_raw,
)
from tests.conftest import free_port
from tests.polling import wait_until_serving

TOKEN = "recorder-token-" + "y" * 24
SESSION_COOKIE = "taperoom_recorder_session"
STATION = {"name": "KUVO Jazz", "stream_url": "http://127.0.0.1:9/stream", "artist": "KUVO",
           "album": "Jazz Nights", "album_artist": "KUVO 89.3",
           "scp_destination": "radio@127.0.0.1:/srv/recordings/"}


def station_and_schedule(base: str, headers: dict[str, str] | None = None) -> int:
    """Create a station and an active schedule through the API; the schedule's id."""
    st = httpx.post(f"{base}/api/streams", json=STATION, headers=headers)
    assert st.status_code == 201, st.text
    sc = httpx.post(f"{base}/api/schedules", headers=headers, json={
        "stream_config_id": st.json()["id"], "cron_expression": "0 21 * * *",
        "duration_minutes": 60})
    assert sc.status_code == 201, sc.text
    return int(sc.json()["id"])


def add_user(services: Any, name: str, password: str = PASSWORD) -> None:
    """Create a recorder user in the database of `services`."""
    from taperoom.recorder.users import user_store

    user_store(services.db).add_user(name, password)


@pytest.fixture
def exposed_services(rec_settings: Any, exposed_address: str) -> Any:
    """A recorder context listening on `exposed_address`, with the user ``dj``."""
    from taperoom.recorder.context import build_services

    services = build_services(rec_settings(host=exposed_address))
    add_user(services, "dj")
    try:
        yield services
    finally:
        services.close()


# -- loopback, no credentials --------------------------------------------------------------


def test_hostile_preflight_is_refused_and_the_post_changes_nothing(rec_server) -> None:
    """A page on another site gets no CORS grant to create a station (which would upload
    recordings to its server with our SSH key), and a POST sent anyway is 403; nothing
    is created. The dashboard's own origin and a loopback frontend may."""
    url = f"{rec_server.url}/api/streams"
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    r = httpx.options(url, headers={"Origin": EVIL, **preflight})
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    r = httpx.post(url, json={**STATION, "scp_destination": "x@evil.example:/loot/"},
                   headers={"Origin": EVIL})
    assert r.status_code == 403
    assert r.json() == {"error": "Forbidden", "status_code": 403, "message":
                        f"Origin {EVIL} is not allowed to change this server "
                        "(add it to CORS_ORIGIN)"}
    assert httpx.get(url).json() == []
    r = httpx.options(url, headers={"Origin": FRONTEND, **preflight})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == FRONTEND
    r = httpx.post(url, json=STATION, headers={"Origin": rec_server.url})
    assert r.status_code == 201


def test_form_post_from_another_site_changes_nothing(rec_server) -> None:
    """A preflight-free form post to a body-less action (deactivate a schedule) from
    another site is 403 and the schedule stays active; without Origin and Referer (curl)
    it works as before."""
    sid = station_and_schedule(rec_server.url)
    url = f"{rec_server.url}/api/schedules/{sid}/deactivate"
    for headers in ({"Origin": EVIL}, {"Referer": f"{EVIL}/radio.html"}):
        r = httpx.post(url, content=b"", headers={
            "Content-Type": "application/x-www-form-urlencoded", **headers})
        assert r.status_code == 403
        assert httpx.get(f"{rec_server.url}/api/schedules/{sid}").json()["is_active"] is True
    assert httpx.post(url).status_code == 200
    assert httpx.get(f"{rec_server.url}/api/schedules/{sid}").json()["is_active"] is False


async def test_rebinding_host_and_cross_site_websocket_are_refused(rec_server) -> None:
    """A rebinding Host is 400 for pages, API and WebSocket; a WebSocket from another
    site's page is 403; the dashboard's own WebSocket connects."""
    for path in ("/", "/api/streams", "/health"):
        r = httpx.get(rec_server.url + path, headers={"Host": "evil.example"})
        assert r.status_code == 400, path
    assert httpx.get(rec_server.url + "/", headers={"Host": f"localhost:{rec_server.port}"}
                     ).status_code == 200
    assert ws_handshake_raw(rec_server.url + "/ws", {"Host": "evil.example"}) == 400
    ws = rec_server.url.replace("http://", "ws://") + "/ws"
    assert await ws_handshake(ws, origin=EVIL) == 403
    assert await ws_handshake(ws, origin=rec_server.url) == 101


def test_loopback_pages_need_no_sign_in(rec_server) -> None:
    """Without credentials on loopback the dashboard opens directly and /login leads home."""
    assert httpx.get(rec_server.url + "/", headers={"Accept": "text/html"}).status_code == 200
    r = httpx.get(rec_server.url + "/login")
    assert r.status_code == 303 and r.headers["location"] == "/"


# -- exposed -------------------------------------------------------------------------------


def _serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATA_DIR": str(tmp_path / "data"),
            "RECORDINGS_DIR": str(tmp_path / "recordings"),
            "ARTWORK_DIR": str(tmp_path / "artwork"), "SSH_CONFIG_DIR": str(tmp_path / "config"),
            "LOG_DIR": str(tmp_path / "logs"), "TZ": "America/Denver",
            "MIN_FREE_DISK_MB": "1", **extra}


@pytest.mark.slow
def test_exposed_recorder_without_credentials_does_not_start(rec_settings, exposed_address,
                                                             tmp_path) -> None:
    """Bound beyond loopback (``--host`` or, as in the Docker image, WEB_HOST=0.0.0.0)
    with no user, no API_TOKEN and no TRUSTED_NETWORK: the app is not built and the
    command exits with 78 and one line; it never listens."""
    from taperoom.errors import Misconfigured
    from taperoom.recorder.app import create_app

    with pytest.raises(Misconfigured, match="taperoom recorder user add"):
        create_app(rec_settings(host=exposed_address))
    for args, env in ((["--host", exposed_address], {}), ([], {"WEB_HOST": "0.0.0.0"})):
        port = free_port()
        done = subprocess.run([sys.executable, "-m", "taperoom", "recorder", "serve",
                               "--port", str(port), *args], env=_serve_env(tmp_path, **env),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == Misconfigured.exit_code, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("error: the recorder listens on ") and "API_TOKEN" in last
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{exposed_address}:{port}/health", timeout=5)


@pytest.mark.slow
def test_docker_like_recorder_with_an_api_token(tmp_path, exposed_address) -> None:
    """WEB_HOST=0.0.0.0 with API_TOKEN (the Docker setup): it starts; the health check
    the image runs answers; the API wants the token."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "taperoom", "recorder", "serve", "--port",
                             str(port)], env=_serve_env(tmp_path, WEB_HOST="0.0.0.0",
                                                        API_TOKEN=TOKEN),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        try:
            health = wait_until_serving(f"http://127.0.0.1:{port}/health", proc, 60)
        except AssertionError as exc:
            proc.terminate()
            raise AssertionError(f"{exc}: {proc.stdout.read().decode() if proc.stdout else ''}"
                                 ) from None
        assert health.status_code == 200
        base = f"http://{exposed_address}:{port}"
        assert httpx.get(f"{base}/api/streams", timeout=5).status_code == 401
        r = httpx.get(f"{base}/api/streams", headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=5)
        assert r.status_code == 200 and r.json() == []
    finally:
        proc.terminate()
        proc.wait(30)


def test_exposed_dashboard_redirects_to_login_and_api_is_401(exposed_services, live_server,
                                                             exposed_address) -> None:
    """With a user: pages redirect to /login (keeping where the visitor wanted to go),
    API calls are 401 in the recorder's error shape, health and static files stay open."""
    from taperoom.recorder.app import create_app

    srv = live_server(create_app(services=exposed_services), host=exposed_address)
    html = {"Accept": "text/html,application/xhtml+xml"}
    r = httpx.get(srv.url + "/", headers=html)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
    r = httpx.get(srv.url + "/sessions?status=failed", headers=html)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/sessions%3Fstatus%3Dfailed"
    r = httpx.get(srv.url + "/api/streams")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.json() == {"error": "Unauthorized", "status_code": 401, "message":
                        "Sign in or send an API token (Authorization: Bearer)"}
    assert httpx.post(srv.url + "/api/streams", json=STATION).status_code == 401
    for path in ("/health", "/api/health", "/api/system/health", "/static/recorder.css"):
        assert httpx.get(srv.url + path).status_code == 200, path
    assert httpx.get(srv.url + "/api/system/status").status_code == 401
    assert ws_handshake_raw(srv.url + "/ws", {}) == 401


def test_exposed_dashboard_sign_in_and_csrf(exposed_services, live_server) -> None:
    """Signing in leads to `next`; the dashboard's pages carry the CSRF meta tag; API
    changes with the cookie but without X-CSRF-Token are 403 and create nothing; with it
    they work."""
    from taperoom.recorder.app import create_app

    srv = live_server(create_app(services=exposed_services), host=exposed_services.settings.host)
    c = httpx.Client(base_url=srv.url)
    assert sign_in(c, "dj", "guess-guess").status_code == 401
    r = sign_in(c, "dj", next_path="/streams")
    assert r.status_code == 303 and r.headers["location"] == "/streams"
    attrs = set_cookie_attributes(r, SESSION_COOKIE)
    assert {"httponly", "samesite=strict"} <= attrs and "secure" not in attrs
    page = c.get("/streams")
    assert page.status_code == 200 and "Sign out" in page.text
    csrf = meta_csrf(page.text)
    r = c.post("/api/streams", json=STATION)
    assert r.status_code == 403 and "CSRF" in r.json()["message"]
    assert c.get("/api/streams").json() == []
    r = c.post("/api/streams", json=STATION, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    assert [s["name"] for s in c.get("/api/streams").json()] == ["KUVO Jazz"]


def test_api_token_needs_no_csrf(rec_settings, live_server, exposed_address) -> None:
    """Programs with the API token change things without any CSRF token."""
    from taperoom.recorder.app import create_app

    srv = live_server(create_app(rec_settings(host=exposed_address, api_token=TOKEN)),
                      host=exposed_address)
    sid = station_and_schedule(srv.url, {"Authorization": f"Bearer {TOKEN}"})
    r = httpx.post(f"{srv.url}/api/schedules/{sid}/deactivate",
                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json()["is_active"] is False
