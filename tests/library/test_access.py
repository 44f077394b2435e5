"""Who may change the library: origins, Host names and credentials, on real servers on
127.0.0.1 and on a non-loopback address of this machine (``exposed_address``)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from taperoom.db import transaction
from taperoom.library import models
from tests.access import (
    EVIL,
    FRONTEND,
    PASSWORD,
    form_csrf,
    meta_csrf,
    set_cookie_attributes,
    sign_in,
    ws_handshake,
    ws_handshake_raw,
)
from tests.conftest import free_port

TOKEN = "library-token-" + "x" * 24
SESSION_COOKIE = "taperoom_library_session"
FORM_COOKIE = "taperoom_library_login"


def add_track(ctx: Any, path: Path) -> str:
    """Insert one track row; its id."""
    with transaction(ctx.db) as s:
        track = models.Track(file_path=str(path), title="Armygeddon")
        s.add(track)
    return track.id


def track_state(ctx: Any, track_id: str) -> tuple[bool, int] | None:
    """(exists, is_missing) of a track, None when it is gone."""
    with ctx.db() as s:
        track = s.get(models.Track, track_id)
        return None if track is None else (True, int(track.is_missing))


def add_user(ctx: Any, name: str, password: str = PASSWORD) -> None:
    """Create a library user in the database of `ctx`."""
    from taperoom.library.users import user_store

    user_store(ctx.db).add_user(name, password)


# -- origins -------------------------------------------------------------------------------


def test_hostile_preflight_is_refused_and_the_delete_changes_nothing(lib_server, lib_ctx,
                                                                     tmp_path) -> None:
    """A page on another site gets no CORS grant for DELETE, and a DELETE sent anyway
    (as a browser ignoring the answer would) is 403; the track is still there. The DJ
    frontend on a loopback origin keeps its grant."""
    tid = add_track(lib_ctx, tmp_path / "a.mp3")
    url = f"{lib_server.url}/api/tracks/{tid}"
    preflight = {"Access-Control-Request-Method": "DELETE",
                 "Access-Control-Request-Headers": "content-type"}
    r = httpx.options(url, headers={"Origin": EVIL, **preflight})
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers
    r = httpx.delete(url, headers={"Origin": EVIL})
    assert r.status_code == 403
    assert r.json() == {"success": False, "error": f"Origin {EVIL} is not allowed to change "
                        "this server (add it to CORS_ORIGIN)"}
    assert track_state(lib_ctx, tid) == (True, 0)

    r = httpx.options(url, headers={"Origin": FRONTEND, **preflight})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == FRONTEND
    assert "DELETE" in r.headers["access-control-allow-methods"]
    r = httpx.get(f"{lib_server.url}/api/tracks", headers={"Origin": EVIL})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    page = httpx.get(f"{lib_server.url}/login")  # nothing to sign in to, and no loop
    assert page.status_code == 200 and "No sign-in is needed" in page.text


def test_form_post_from_another_site_changes_nothing(lib_server, lib_ctx, tmp_path) -> None:
    """A preflight-free form post (Origin, or only a Referer, of another site, or
    ``Origin: null``) is 403 and leaves the track as it was; a request with neither
    header (curl, the audio engine) still works."""
    tid = add_track(lib_ctx, tmp_path / "a.mp3")
    url = f"{lib_server.url}/api/tracks/{tid}/mark-missing"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for headers in ({"Origin": EVIL}, {"Referer": f"{EVIL}/page.html"}, {"Origin": "null"},
                    {"Origin": "http://localhost.evil.example"}):
        r = httpx.post(url, content=b"x=1", headers={**form, **headers})
        assert r.status_code == 403, headers
        assert r.json()["success"] is False
        assert track_state(lib_ctx, tid) == (True, 0)
    r = httpx.post(url, content=b"x=1", headers={**form, "Referer": f"{FRONTEND}/tracks"})
    assert r.status_code == 200 and track_state(lib_ctx, tid) == (True, 1)
    r = httpx.post(f"{lib_server.url}/api/tracks/{tid}/mark-found")
    assert r.status_code == 200 and track_state(lib_ctx, tid) == (True, 0)


def test_extra_origins_come_from_cors_origin(lib_settings, live_server, lib_ctx,
                                             tmp_path) -> None:
    """CORS_ORIGIN adds origins (comma-separated) beside the loopback ones."""
    from taperoom.library.app import create_app
    from taperoom.library.context import build_services

    ctx = build_services(lib_settings(cors_origin="https://dj.example.org, http://192.0.2.9:3000"))
    try:
        srv = live_server(create_app(services=ctx))
        tid = add_track(ctx, tmp_path / "a.mp3")
        url = f"{srv.url}/api/tracks/{tid}/mark-missing"
        r = httpx.post(url, headers={"Origin": "https://dj.example.org"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://dj.example.org"
        assert httpx.post(url, headers={"Origin": "https://dj.example.org.evil.example"}
                          ).status_code == 403
        assert httpx.post(url, headers={"Origin": FRONTEND}).status_code == 200
    finally:
        ctx.close()


# -- hosts ---------------------------------------------------------------------------------


async def test_rebinding_host_is_400(lib_server) -> None:
    """A Host that is not a loopback name or the bound address (DNS rebinding) is 400,
    for the API and for the WebSocket; loopback names work."""
    port = lib_server.port
    async with httpx.AsyncClient() as client:
        for host in ("evil.example", f"evil.example:{port}", f"192.0.2.77:{port}"):
            r = await client.get(f"{lib_server.url}/api/tracks", headers={"Host": host})
            assert r.status_code == 400, host
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}",
                     f"frontend.localhost:{port}"):
            r = await client.get(f"{lib_server.url}/api/tracks", headers={"Host": host})
            assert r.status_code == 200, host
    ws = lib_server.url + "/ws"
    assert ws_handshake_raw(ws, {"Host": "evil.example"}) == 400
    assert ws_handshake_raw(ws, {}) == 101


async def test_cross_site_websocket_is_refused(lib_server) -> None:
    """A hostile page cannot read live events: its WebSocket handshake is 403; loopback
    origins and clients without an Origin (the engine, scripts) connect."""
    ws = lib_server.url.replace("http://", "ws://") + "/ws"
    assert await ws_handshake(ws, origin=EVIL) == 403
    assert await ws_handshake(ws, origin=FRONTEND) == 101
    assert await ws_handshake(ws) == 101


def test_allowed_hosts_setting_adds_names(lib_settings, live_server) -> None:
    """ALLOWED_HOSTS adds names (``*.example.org`` patterns too)."""
    from taperoom.library.app import create_app
    from taperoom.library.context import build_services

    ctx = build_services(lib_settings(allowed_hosts="dj.example.org, *.studio.example"))
    try:
        srv = live_server(create_app(services=ctx))
        for host, status in (("dj.example.org", 200), ("deck.studio.example", 200),
                             ("example.org", 400)):
            assert httpx.get(f"{srv.url}/health", headers={"Host": host}).status_code == status
    finally:
        ctx.close()


# -- exposed -------------------------------------------------------------------------------


def _serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_PATH": str(tmp_path / "data" / "library.db"),
            "SCAN_ON_STARTUP": "false", "FILE_WATCHER_ENABLED": "false", **extra}


@pytest.mark.slow
def test_exposed_library_without_credentials_does_not_start(lib_settings, exposed_address,
                                                            tmp_path) -> None:
    """Bound beyond loopback with no user, no API_TOKEN and no TRUSTED_NETWORK, the app
    is not built and ``taperoom library serve`` exits non-zero with one line saying
    what to do, without ever listening."""
    from taperoom.errors import Misconfigured
    from taperoom.library.app import create_app

    with pytest.raises(Misconfigured, match="API_TOKEN"):
        create_app(lib_settings(host=exposed_address))
    port = free_port()
    done = subprocess.run([sys.executable, "-m", "taperoom", "library", "serve", "--host",
                           exposed_address, "--port", str(port)], env=_serve_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == Misconfigured.exit_code
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the library listens on " + exposed_address)
    assert "taperoom library user add" in last and "TRUSTED_NETWORK" in last
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{exposed_address}:{port}/health", timeout=5)


def test_exposed_library_on_a_trusted_network_needs_no_credentials(
        lib_settings, live_server, exposed_address) -> None:
    """TRUSTED_NETWORK=true lets the library listen beyond loopback without credentials."""
    from taperoom.library.app import create_app

    srv = live_server(create_app(lib_settings(host=exposed_address, trusted_network=True)),
                      host=exposed_address)
    assert httpx.get(f"{srv.url}/api/tracks").status_code == 200


async def test_exposed_library_needs_the_api_token(lib_settings, live_server,
                                                   exposed_address, tmp_path) -> None:
    """With API_TOKEN, on a non-loopback address: API calls and the WebSocket without the
    token (or with a wrong one) are 401, with it they work; /health stays open; the
    Host check and the origin check still apply to token holders."""
    from taperoom.library.app import create_app
    from taperoom.library.context import build_services

    ctx = build_services(lib_settings(host=exposed_address, api_token=TOKEN))
    try:
        srv = live_server(create_app(services=ctx), host=exposed_address)
        tid = add_track(ctx, tmp_path / "a.mp3")
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        r = httpx.get(f"{srv.url}/api/tracks")
        assert r.status_code == 401
        assert r.json() == {"success": False, "error": "Sign in or send an API token "
                            "(Authorization: Bearer)"}
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert httpx.get(f"{srv.url}/api/tracks",
                         headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(f"{srv.url}/api/tracks/{tid}/mark-missing").status_code == 401
        assert track_state(ctx, tid) == (True, 0)
        assert httpx.get(f"{srv.url}/api/tracks", headers=bearer).status_code == 200
        assert httpx.get(f"{srv.url}/health").status_code == 200
        r = httpx.post(f"{srv.url}/api/tracks/{tid}/mark-missing",
                       headers={**bearer, "Origin": EVIL})
        assert r.status_code == 403 and track_state(ctx, tid) == (True, 0)
        r = httpx.post(f"{srv.url}/api/tracks/{tid}/mark-missing", headers=bearer)
        assert r.status_code == 200 and track_state(ctx, tid) == (True, 1)
        assert httpx.get(f"{srv.url}/health", headers={"Host": "evil.example"}
                         ).status_code == 400
        ws = srv.url.replace("http://", "ws://") + "/ws"
        assert await ws_handshake(ws) == 401
        assert await ws_handshake(ws, additional_headers=bearer) == 101
    finally:
        ctx.close()


def test_exposed_library_sign_in_and_csrf(lib_settings, live_server, exposed_address,
                                          tmp_path) -> None:
    """With a user, on a non-loopback address: the login form needs its CSRF token, a
    wrong password is 401, the right one sets an HttpOnly, SameSite=Strict session
    cookie (not Secure over plain HTTP); calls with the cookie work, but changes
    without the X-CSRF-Token header are 403 and change nothing; logout ends the
    session on the server."""
    from taperoom.library.app import create_app
    from taperoom.library.context import build_services

    ctx = build_services(lib_settings(host=exposed_address))
    add_user(ctx, "dj")
    try:
        srv = live_server(create_app(services=ctx), host=exposed_address)
        tid = add_track(ctx, tmp_path / "a.mp3")
        c = httpx.Client(base_url=srv.url)
        assert c.get("/api/tracks").status_code == 401
        page = c.get("/login")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        token = form_csrf(page.text)
        r = c.post("/login", data={"username": "dj", "password": PASSWORD})
        assert r.status_code == 403 and SESSION_COOKIE not in c.cookies
        r = c.post("/login", data={"username": "dj", "password": PASSWORD,
                                   "csrf_token": token + "x"})
        assert r.status_code == 403 and SESSION_COOKIE not in c.cookies
        r = sign_in(c, "dj", "wrong password")
        assert r.status_code == 401 and "Wrong user name or password" in r.text
        assert SESSION_COOKIE not in c.cookies
        r = sign_in(c, "dj")
        assert r.status_code == 303 and r.headers["location"] == "/login"
        attrs = set_cookie_attributes(r, SESSION_COOKIE)
        assert {"httponly", "samesite=strict", "path"} <= attrs and "secure" not in attrs
        session = c.cookies[SESSION_COOKIE]
        assert c.get("/api/tracks").status_code == 200
        signed_in = c.get("/login")
        assert "Signed in as" in signed_in.text and "dj" in signed_in.text
        csrf = meta_csrf(signed_in.text)

        r = c.post(f"/api/tracks/{tid}/mark-missing")
        assert r.status_code == 403
        assert r.json()["error"] == "Missing or wrong CSRF token (X-CSRF-Token header)"
        assert c.post(f"/api/tracks/{tid}/mark-missing",
                      headers={"X-CSRF-Token": "forged"}).status_code == 403
        assert track_state(ctx, tid) == (True, 0)
        r = c.post(f"/api/tracks/{tid}/mark-missing", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and track_state(ctx, tid) == (True, 1)

        assert c.post("/logout").status_code == 403
        assert c.get("/api/tracks").status_code == 200
        r = c.post("/logout", data={"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        with ctx.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM library_auth_sessions")
                                ).scalar() == 0
        stale = httpx.Client(base_url=srv.url, cookies={SESSION_COOKIE: session})
        assert stale.get("/api/tracks").status_code == 401
    finally:
        ctx.close()


def test_failed_logins_are_rate_limited(lib_settings, live_server, exposed_address,
                                        caplog) -> None:
    """After LOGIN_RATE_LIMIT failures, logins are 429 (with Retry-After) per client
    address and per user name, even with the right password; passwords never reach
    the log."""
    from taperoom.library.app import create_app
    from taperoom.library.context import build_services

    caplog.set_level(logging.DEBUG)
    ctx = build_services(lib_settings(host="0.0.0.0", login_rate_limit="3/minute"))
    add_user(ctx, "dj")
    add_user(ctx, "guest")
    try:
        srv = live_server(create_app(services=ctx), host="0.0.0.0")
        here = httpx.Client(base_url=srv.url)
        there = httpx.Client(base_url=f"http://{exposed_address}:{srv.port}")
        for _ in range(3):
            assert sign_in(here, "dj", "not-the-password-1").status_code == 401
        r = sign_in(here, "dj")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert sign_in(here, "guest").status_code == 429  # same address
        assert sign_in(there, "dj").status_code == 429  # same user name
        assert sign_in(there, "guest").status_code == 303
    finally:
        ctx.close()
    assert "not-the-password-1" not in caplog.text and PASSWORD not in caplog.text
    assert "failed sign-in" in caplog.text


def test_session_cookie_is_secure_behind_a_trusted_https_proxy(lib_settings, live_server,
                                                               exposed_address) -> None:
    """X-Forwarded-Proto: https from a trusted proxy (127.0.0.1, uvicorn's
    FORWARDED_ALLOW_IPS) makes the cookie Secure; from any other client it is ignored."""
    from taperoom.library.app import create_app
    from taperoom.library.context import build_services

    ctx = build_services(lib_settings(host="0.0.0.0"))
    add_user(ctx, "dj")
    try:
        srv = live_server(create_app(services=ctx), host="0.0.0.0")
        proxied = {"X-Forwarded-Proto": "https"}
        via_proxy = httpx.Client(base_url=srv.url, headers=proxied)
        page = via_proxy.get("/login")
        assert "secure" in set_cookie_attributes(page, FORM_COOKIE)
        # the browser behind the proxy sends its Secure cookie back (httpx would not: it
        # talks plain HTTP to the server)
        r = via_proxy.post("/login", data={"username": "dj", "password": PASSWORD,
                                           "csrf_token": form_csrf(page.text)},
                           headers={"Cookie": f"{FORM_COOKIE}={page.cookies[FORM_COOKIE]}"})
        assert r.status_code == 303 and "secure" in set_cookie_attributes(r, SESSION_COOKIE)
        direct = httpx.Client(base_url=f"http://{exposed_address}:{srv.port}", headers=proxied)
        r = sign_in(direct, "dj")
        assert r.status_code == 303
        assert "secure" not in set_cookie_attributes(r, SESSION_COOKIE)
    finally:
        ctx.close()


def test_open_library_reached_from_the_network_is_refused(lib_settings, live_server,
                                                        exposed_address) -> None:
    """A library believed to listen on loopback only (HOST=127.0.0.1, no credentials)
    but served on every address (e.g. by ``uvicorn --host 0.0.0.0``) refuses the
    requests that arrive on a non-loopback address, and serves the loopback ones."""
    from taperoom.library.app import create_app

    srv = live_server(create_app(lib_settings()), host="0.0.0.0")
    assert httpx.get(f"{srv.url}/api/tracks").status_code == 200
    r = httpx.get(f"http://{exposed_address}:{srv.port}/api/tracks",
                  headers={"Host": f"localhost:{srv.port}"})
    assert r.status_code == 403 and "TRUSTED_NETWORK" in r.json()["error"]


def test_loopback_library_with_a_user_requires_sign_in(lib_settings, live_server) -> None:
    """Credentials, once set up, apply on loopback too (e.g. behind a reverse proxy on
    the same machine); without any the loopback library stays open (other tests)."""
    from taperoom.library.app import create_app
    from taperoom.library.context import build_services

    ctx = build_services(lib_settings())
    add_user(ctx, "dj")
    try:
        srv = live_server(create_app(services=ctx))
        assert httpx.get(f"{srv.url}/api/tracks").status_code == 401
        c = httpx.Client(base_url=srv.url)
        assert sign_in(c, "dj").status_code == 303
        assert c.get("/api/tracks").status_code == 200
    finally:
        ctx.close()
