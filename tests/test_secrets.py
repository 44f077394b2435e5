"""Secrets in settings (tokens, database and queue passwords) never reach logs, pages or
answers, in any app: the settings hold them as ``SecretStr``, and every app is started
with recognisable secrets and exercised (startup, pages and routes that show
configuration, errors) while its answers and logs are searched for them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.config import redact_url
from taperoom.ephemeral.app import create_app
from taperoom.ephemeral.settings import EphemeralSettings
from taperoom.errors import InvalidInput
from taperoom.jobs import make_huey
from taperoom.library.settings import LibrarySettings
from taperoom.recorder.settings import RecorderSettings
from taperoom.web.auth.policy import decide_access
from taperoom.web.auth.settings import AccessSettings
from tests.conftest import PgTestServer, free_port
from tests.library.pgserver import PgServer
from tests.polling import stop_process, wait_until_serving
from tests.wavgen import tone, write_wav

#: Recognisable secrets, each long enough for API_TOKEN.
TOKEN = "tok-Kx7pQ2vN9sL4mW8rT3yB6zH1"
PASSWORD = "pw-Hq5jR8wE2nC7vX4kM9pZ3tL6"
ADMIN = "adm-Vb3nM6qW9eR2tY5uI8oP1aS4"


def _clean(text: str, *secrets: str) -> list[str]:
    return [s for s in secrets if s in text]


# -- settings objects ------------------------------------------------------------


def test_settings_hold_secrets_as_secret_str(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each app's settings and the shared access settings keep API_TOKEN, ADMIN_TOKEN,
    database and queue URLs out of their repr, str and JSON dump, yet give them to the
    code that connects; the access rule built from them hides the token too."""
    env = {"ADMIN_TOKEN": ADMIN, "API_TOKEN": TOKEN,
           "DATABASE_URL": f"postgresql://dj:{PASSWORD}@db.example/library",
           "RECORDER_DATABASE_URL": f"postgresql://rec:{PASSWORD}@db.example/recorder",
           "QUEUE_URL": f"redis://:{PASSWORD}@queue.example:6379/0"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    every = [EphemeralSettings(_env_file=None),  # type: ignore[call-arg]
             LibrarySettings(_env_file=None),  # type: ignore[call-arg]
             RecorderSettings(_env_file=None),  # type: ignore[call-arg]
             AccessSettings(_env_file=None)]  # type: ignore[call-arg]
    for settings in every:
        for text in (repr(settings), str(settings), settings.model_dump_json(),
                     repr(settings.model_dump())):
            assert not _clean(text, TOKEN, PASSWORD, ADMIN), type(settings).__name__
    eph, lib, rec, _ = every
    assert isinstance(eph, EphemeralSettings) and isinstance(lib, LibrarySettings)
    assert isinstance(rec, RecorderSettings)
    assert eph.admin_token.get_secret_value() == ADMIN
    assert lib.url == f"postgresql+psycopg://dj:{PASSWORD}@db.example/library"
    assert rec.url == f"postgresql://rec:{PASSWORD}@db.example/recorder"
    assert rec.queue_url.get_secret_value() == env["QUEUE_URL"]
    assert lib.queue_url.get_secret_value() == env["QUEUE_URL"]
    access = decide_access("library", "127.0.0.1", api_token=TOKEN, has_users=False,
                           trusted_network=False)
    assert TOKEN not in repr(access) and access.api_token == TOKEN


def test_redact_url_hides_passwords_and_secret_parameters() -> None:
    """The password of the user information and secret-named query values become ***;
    hosts, ports, users and other parameters stay readable."""
    cases = {
        "postgresql://rec:hunter2@db.example:5432/recorder":
            "postgresql://rec:***@db.example:5432/recorder",
        "redis://:s3cret@[::1]:6379/0": "redis://:***@[::1]:6379/0",
        "postgresql://u@h/db?sslmode=require&password=s3cret":
            "postgresql://u@h/db?sslmode=require&password=***",
        "postgresql://h/db?sslpassword=a&api_key=b&token=c":
            "postgresql://h/db?sslpassword=***&api_key=***&token=***",
        "http://example.org/x": "http://example.org/x",
        "": "",
        "http://u:p@h:notaport/": "***",
    }
    for given, shown in cases.items():
        assert redact_url(given) == shown, given


def test_queue_url_errors_hide_its_password(tmp_path: Path) -> None:
    """A QUEUE_URL that cannot be used is named in the error without its password."""
    for url in (f"amqp://user:{PASSWORD}@mq.example/", f"amqps://mq.example/?password={PASSWORD}"):
        with pytest.raises(InvalidInput) as err:
            make_huey("recorder", data_dir=tmp_path, queue_url=url)
        assert PASSWORD not in str(err.value), url
        assert "QUEUE_URL=" in str(err.value) and "***" in str(err.value)


# -- the ephemeral app -------------------------------------------------------------


def test_ephemeral_admin_token_stays_out_of_answers_and_logs(
        eph_settings: Callable[..., EphemeralSettings], live_server: Callable[[Any], Any],
        caplog: pytest.LogCaptureFixture) -> None:
    """With ADMIN_TOKEN set, startup, the status and documentation routes, admin calls
    with a wrong and the right token, errors and shutdown show the token nowhere."""
    caplog.set_level(logging.DEBUG)
    settings = eph_settings(admin_token=ADMIN, keep_originals=True, degrade_rate_limit="1/hour")
    settings.audio_dir.mkdir(parents=True)
    write_wav(settings.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)
    srv = live_server(create_app(settings))
    seen: list[str] = []
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        for method, path, headers in (
                ("GET", "/", {}), ("GET", "/tracks", {}), ("GET", "/openapi.json", {}),
                ("GET", "/docs", {}), ("GET", "/player", {}), ("GET", "/stats/a.wav", {}),
                ("GET", "/stats/nope.wav", {}), ("PUT", "/tracks", {}),
                ("POST", "/reset/a.wav", {}),
                ("POST", "/reset/a.wav", {"Authorization": "Bearer wrong"}),
                ("POST", "/reset/a.wav", {"Authorization": f"Bearer {ADMIN}x"}),
                ("POST", "/reset/nope.wav", {"Authorization": f"Bearer {ADMIN}"}),
                ("POST", "/reset/a.wav", {"Authorization": f"Bearer {ADMIN}"})):
            r = c.request(method, path, headers=headers)
            assert r.status_code < 500, (method, path, r.text)
            seen.append(f"{r.status_code} {r.headers} {r.text}")
        for _ in range(2):  # the second is over DEGRADE_RATE_LIMIT: 429
            r = c.post("/degrade/a.wav", json={"segment_index": 0})
            seen.append(f"{r.status_code} {r.headers} {r.text}")
    srv.__exit__()
    assert "429" in seen[-1] and "401" in seen[-2 - 5]
    assert not _clean("\n".join(seen), ADMIN)
    assert caplog.records and not _clean(caplog.text, ADMIN)


# -- the library and the recorder, as real processes ----------------------------------


@pytest.fixture
def pg(pg_server: PgTestServer) -> PgServer:
    """The session's PostgreSQL server (it trusts local connections, so a password in a
    URL is sent nowhere and ignored); skipped without PostgreSQL except in CI."""
    return pg_server.server


class App:
    """``taperoom <app> serve`` as a process; its output (logs at DEBUG) kept."""

    def __init__(self, args: list[str], env: dict[str, str], health: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "taperoom", *args, "--host", "127.0.0.1", "--port",
             str(self.port)], env={**os.environ, "LOG_LEVEL": "DEBUG", **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(self.url + health, self.proc, 60)
        except AssertionError as exc:
            raise AssertionError(f"server did not start ({exc}): {self.stop()}") from None

    def stop(self) -> str:
        """Stop the server; everything it printed."""
        stop_process(self.proc, 30)
        return self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""


def _exercise(app: App, requests: list[tuple[str, str, dict[str, str]]]) -> list[str]:
    out = []
    with httpx.Client(base_url=app.url, timeout=20) as c:
        for method, path, headers in requests:
            r = c.request(method, path, headers=headers)
            assert r.status_code < 500, (method, path, r.text[:300])
            out.append(f"{method} {path} {r.status_code} {r.headers} {r.text}")
    return out


@pytest.mark.slow
def test_library_secrets_stay_out_of_answers_and_logs(pg: PgServer, tmp_path: Path) -> None:
    """The library on PostgreSQL with a password in DATABASE_URL and an API_TOKEN: its
    startup (migrations), health, settings, tracks and documentation routes, a wrong
    token, bad input and missing things show neither secret."""
    name = pg.create_database()
    env = {"DATABASE_URL": f"postgresql://postgres:{PASSWORD}@127.0.0.1:{pg.port}/{name}",
           "API_TOKEN": TOKEN, "DATABASE_PATH": str(tmp_path / "library.db"),
           "SCAN_ON_STARTUP": "false", "FILE_WATCHER_ENABLED": "false"}
    app = App(["library", "serve"], env, "/api/health")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        seen = _exercise(app, [
            ("GET", "/api/health", {}), ("GET", "/api/settings", auth),
            ("GET", "/api/tracks", auth), ("GET", "/api/tracks/999999", auth),
            ("GET", "/api/tracks?limit=abc", auth), ("GET", "/openapi.json", auth),
            ("GET", "/login", {}), ("GET", "/api/settings", {}),
            ("GET", "/api/settings", {"Authorization": "Bearer wrong-token-wrong-token"}),
            ("GET", "/api/settings", {"Authorization": f"Bearer {TOKEN}x"})])
    finally:
        logs = app.stop()
    assert any(" 200 " in s for s in seen) and any(" 401 " in s for s in seen)
    assert "DEBUG" in logs
    assert not _clean("\n".join(seen), TOKEN, PASSWORD)
    assert not _clean(logs, TOKEN, PASSWORD)


@pytest.mark.slow
def test_recorder_secrets_stay_out_of_pages_answers_and_logs(pg: PgServer,
                                                             tmp_path: Path) -> None:
    """The recorder on PostgreSQL with a password in RECORDER_DATABASE_URL's query and an
    API_TOKEN: the dashboard's settings page shows the database (host and port) without
    the password; status, logs, errors and its log files show neither secret; a QUEUE_URL
    it cannot use stops it with a message that names it without its password."""
    name = pg.create_database()
    folders = {k: str(tmp_path / k.lower()) for k in (
        "DATA_DIR", "RECORDINGS_DIR", "ARTWORK_DIR", "SSH_CONFIG_DIR", "LOG_DIR")}
    env = {**folders, "API_TOKEN": TOKEN, "MIN_FREE_DISK_MB": "1",
           "RECORDER_DATABASE_URL":
               f"postgresql://postgres@127.0.0.1:{pg.port}/{name}?password={PASSWORD}"}
    app = App(["recorder", "serve"], env, "/health")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        seen = _exercise(app, [
            ("GET", "/health", {}), ("GET", "/settings", auth), ("GET", "/api/status", auth),
            ("GET", "/api/streams/999999", auth), ("GET", "/api/streams/abc", auth),
            ("GET", "/logs", auth), ("GET", "/api/logs", auth), ("GET", "/openapi.json", auth),
            ("GET", "/settings", {"Authorization": "Bearer wrong-token-wrong-token"}),
            ("GET", "/login", {})])
    finally:
        logs = app.stop()
    settings_page = seen[1]
    assert " 200 " in settings_page and f"127.0.0.1:{pg.port}" in settings_page
    assert not _clean("\n".join(seen), TOKEN, PASSWORD)
    files = "\n".join(p.read_text(errors="replace")
                      for p in (tmp_path / "log_dir").rglob("*") if p.is_file())
    assert not _clean(logs + files, TOKEN, PASSWORD)

    port = free_port()
    bad_queue = subprocess.run(
        [sys.executable, "-m", "taperoom", "recorder", "serve", "--host", "127.0.0.1",
         "--port", str(port)], capture_output=True, text=True, timeout=120,
        env={**os.environ, **env, "LOG_LEVEL": "DEBUG",
             "QUEUE_URL": f"amqp://rec:{PASSWORD}@mq.example/"})
    output = bad_queue.stdout + bad_queue.stderr
    assert bad_queue.returncode != 0
    assert "QUEUE_URL" in output and "amqp://rec:***@mq.example/" in output
    assert not _clean(output, PASSWORD, TOKEN)


def test_access_log_lines_show_no_secret_query_values() -> None:
    """A request target with ``?token=`` is logged with the value as ``***`` by the
    ``uvicorn.access`` logger once the apps set up logging (uvicorn's own format and
    arguments)."""
    import logging

    from taperoom.config import setup_logging

    setup_logging()
    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/api/analysis/callback?token=s3cret&x=1", "1.1", 200),
        None)
    for f in logging.getLogger("uvicorn.access").filters:
        f.filter(record)
    line = record.getMessage()
    assert "s3cret" not in line
    assert line == '127.0.0.1:5000 - "POST /api/analysis/callback?token=***&x=1 HTTP/1.1" 200'
