"""Shared fixtures: settings on tmp_path, real servers on 127.0.0.1, the corpus."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from taperoom.ephemeral.settings import EphemeralSettings

ROOT = Path(__file__).resolve().parent.parent
CORPUS = (ROOT.parent / "shared" / "corpus").resolve()


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared test corpus (see its README); fails clearly when missing."""
    if not (CORPUS / "README.md").is_file():
        pytest.fail(f"test corpus not found at {CORPUS}: tests need ../shared/corpus beside "
                    "the repository")
    return CORPUS


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def eph_settings(tmp_path: Path) -> Callable[..., EphemeralSettings]:
    """Factory of ephemeral settings on tmp_path (keyword overrides allowed)."""

    def make(**overrides: Any) -> EphemeralSettings:
        values: dict[str, Any] = {
            "audio_dir": tmp_path / "audio",
            "metadata_dir": tmp_path / "metadata",
            "fsync": False,
        }
        values.update(overrides)
        return EphemeralSettings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


class LiveServer:
    """A uvicorn server running an ASGI app in a thread (on 127.0.0.1 unless `host` says
    otherwise; ``.url`` names `host`, or 127.0.0.1 for a wildcard address)."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_server() -> Iterator[Callable[[Any], LiveServer]]:
    """Start ASGI apps on real sockets; all are stopped at the end of the test."""
    started: list[LiveServer] = []

    def start(app: Any, host: str = "127.0.0.1") -> LiveServer:
        srv = LiveServer(app, host).__enter__()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.__exit__()


#: Dummy interface made for :func:`exposed_address` when the machine has no other
#: address (198.18.0.0/15 is the benchmarking range of RFC 2544, never routed).
DUMMY_LINK, DUMMY_ADDRESS = "taperoom-t0", "198.18.7.1"


def _non_loopback_ipv4() -> str | None:
    import ipaddress

    import psutil

    stats = psutil.net_if_stats()
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        if name in stats and not stats[name].isup:
            continue
        for a in addrs:
            if a.family == socket.AF_INET and not ipaddress.ip_address(a.address).is_loopback:
                return str(a.address)
    return None


@pytest.fixture(scope="session")
def exposed_address() -> Iterator[str]:
    """An IPv4 address of this machine that is not loopback (servers bound to it are
    reachable from the network).

    The first such address of an interface that is up; on a machine with none, a
    dummy interface holding :data:`DUMMY_ADDRESS` is created for the session
    (``ip link add ... type dummy``, which needs root) and removed afterwards. The
    tests that use it are skipped, saying why, only when neither works.
    """
    found = _non_loopback_ipv4()
    if found is not None:
        yield found
        return
    steps = [["ip", "link", "add", DUMMY_LINK, "type", "dummy"],
             ["ip", "addr", "add", f"{DUMMY_ADDRESS}/32", "dev", DUMMY_LINK],
             ["ip", "link", "set", DUMMY_LINK, "up"]]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=30)
        except OSError as exc:
            pytest.skip(f"no non-loopback address and `ip` cannot run ({exc})")
        if done.returncode != 0:
            subprocess.run(["ip", "link", "del", DUMMY_LINK], capture_output=True, timeout=30)
            pytest.skip("no non-loopback address, and no dummy interface could be made: "
                        + done.stderr.strip())
    try:
        yield DUMMY_ADDRESS
    finally:
        subprocess.run(["ip", "link", "del", DUMMY_LINK], capture_output=True, timeout=30)


class ServerProcess:
    """``taperoom <args>`` in a subprocess, listening on 127.0.0.1:port."""

    def __init__(self, args: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        full_env = {**os.environ, **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "taperoom", *args], env=full_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/", timeout=1)
                break
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                    self.stop()
                    raise RuntimeError(f"server did not start: {out}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server_process() -> Iterator[Callable[[list[str], dict[str, str]], ServerProcess]]:
    """Start ``taperoom`` servers as real processes (stopped after the test).

    Call with the CLI arguments (without ``--port``) and extra environment.
    """
    procs: list[ServerProcess] = []

    def start(args: list[str], env: dict[str, str]) -> ServerProcess:
        port = free_port()
        p = ServerProcess([*args, "--host", "127.0.0.1", "--port", str(port)], env, port)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


@pytest.fixture
def lib_database_url() -> str:
    """``DATABASE_URL`` of library tests: empty, i.e. SQLite at ``DATABASE_PATH``.

    ``tests/library/conftest.py`` overrides it for tests run on PostgreSQL.
    """
    return ""


@pytest.fixture
def lib_settings(tmp_path: Path, lib_database_url: str) -> Callable[..., Any]:
    """Factory of library settings on tmp_path (no startup scan, no watcher by default).

    The database is a SQLite file in tmp_path, or the PostgreSQL database of
    `lib_database_url` when that is set.
    """
    from taperoom.library.settings import LibrarySettings

    def make(**overrides: Any) -> LibrarySettings:
        values: dict[str, Any] = {
            "database_path": tmp_path / "data" / "library.db",
            "database_url": lib_database_url,
            "scan_on_startup": False,
            "file_watcher_enabled": False,
            "file_watcher_debounce": 200,
        }
        values.update(overrides)
        return LibrarySettings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def lib_ctx(lib_settings: Callable[..., Any]) -> Iterator[Any]:
    """The library's services (:class:`~taperoom.library.context.LibraryServices`) on a
    fresh, migrated database (SQLite in tmp_path by default); closed after the test."""
    from taperoom.library.context import build_services

    services = build_services(lib_settings())
    yield services
    services.close()


@pytest.fixture
def lib_server(lib_ctx: Any, live_server: Callable[[Any], LiveServer]) -> LiveServer:
    """The library app on a real socket, with the `lib_ctx` services."""
    from taperoom.library.app import create_app

    return live_server(create_app(services=lib_ctx))
