"""The recorder served by the real command line: ``taperoom recorder serve --host/--port``
and ``taperoom serve`` (what ``make run`` starts), each as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.polling import stop_process, wait_until_serving


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Every folder of every app under tmp_path; the recorder in America/Denver."""
    return {**os.environ, "DATA_DIR": str(tmp_path / "data"),
            "RECORDINGS_DIR": str(tmp_path / "recordings"),
            "ARTWORK_DIR": str(tmp_path / "artwork"),
            "SSH_CONFIG_DIR": str(tmp_path / "config"), "LOG_DIR": str(tmp_path / "logs"),
            "AUDIO_DIR": str(tmp_path / "audio"), "METADATA_DIR": str(tmp_path / "meta"),
            "DATABASE_PATH": str(tmp_path / "data" / "library.db"),
            "SCAN_ON_STARTUP": "false", "FILE_WATCHER_ENABLED": "false",
            "TZ": "America/Denver", "MIN_FREE_DISK_MB": "1", **extra}


def _start(args: list[str], env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "taperoom", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(url + "/health", proc, 60)
    except AssertionError as exc:
        _stop(proc)
        out = proc.stdout.read().decode() if proc.stdout else ""
        raise AssertionError(f"server did not start ({exc}): {out}") from None
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc, 20)


@pytest.mark.slow
def test_recorder_serve_takes_host_and_port(tmp_path: Path) -> None:
    """`taperoom recorder serve --host 127.0.0.1 --port P` serves the API, the health
    routes and the dashboard there; --port wins over WEB_PORT/PORT."""
    port = free_port()
    env = _env(tmp_path, WEB_PORT=str(free_port()), PORT=str(free_port()))
    url = f"http://127.0.0.1:{port}"
    proc = _start(["recorder", "serve", "--host", "127.0.0.1", "--port", str(port)], env, url)
    try:
        for path in ("/health", "/api/health"):
            r = httpx.get(url + path, timeout=5)
            assert r.status_code == 200
            assert r.json()["service"] == "audio-stream-recorder"
        assert httpx.get(url + "/api/streams", timeout=5).json() == []
        page = httpx.get(url + "/", timeout=5)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    finally:
        _stop(proc)
    assert (tmp_path / "data" / "recorder.db").is_file()


@pytest.mark.slow
def test_serve_all_apps_includes_the_recorder(tmp_path: Path) -> None:
    """`taperoom serve` (the command of `make run`) serves the recorder beside the other
    apps, on RECORDER_PORT (8666 when unset), with its dashboard and API."""
    ports = {name: free_port() for name in ("EPHEMERAL_PORT", "LIBRARY_PORT", "RECORDER_PORT")}
    (tmp_path / "audio").mkdir()
    env = _env(tmp_path, **{k: str(v) for k, v in ports.items()})
    url = f"http://127.0.0.1:{ports['RECORDER_PORT']}"
    proc = _start(["serve", "--host", "127.0.0.1"], env, url)
    try:
        assert httpx.get(url + "/api/health", timeout=5).json()["status"] == "healthy"
        r = httpx.post(url + "/api/schedules/validate-cron",
                       json={"cron_expression": "0 21 * * *"}, timeout=5)
        assert r.status_code == 200 and r.json()["next_run_time"].startswith(
            r.json()["next_runs"][0][:10])
        assert "Taperoom" in httpx.get(url + "/", timeout=5).text
        other = httpx.get(f"http://127.0.0.1:{ports['EPHEMERAL_PORT']}/", timeout=5)
        assert other.status_code == 200
    finally:
        _stop(proc)
