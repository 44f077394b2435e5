"""A throwaway ``redis-server`` on 127.0.0.1 for the tests of the shared job queue.

The server is Debian's ``redis-server`` program (``make redis`` installs it),
started on a free port in a temporary folder, without persistence
(``--save ''``, ``--appendonly no``), and stopped after the test. Without the
program the tests are skipped on a developer's machine and fail under
``CI=true``, as the PostgreSQL tests do.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci import missing
from tests.conftest import free_port
from tests.polling import stop_process, wait_for

#: Seconds the server has to answer its first PING.
START_TIMEOUT = 30.0


class RedisServer:
    """One ``redis-server`` process listening on 127.0.0.1:`port`.

    Parameters
    ----------
    program : str
        Path of ``redis-server``.
    folder : Path
        Its working folder (its log file goes there).
    """

    def __init__(self, program: str, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "redis.log"
        self.proc = subprocess.Popen(
            [program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(folder), "--logfile", str(self.log),
             "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        """Whether the server answers ``PING`` with ``+PONG`` (RESP, the Redis protocol)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def wait_ready(self) -> None:
        """Wait for the first answer; fails the test with the server's log if none comes."""
        def answered() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with status {self.proc.returncode}")
            return self.ping()

        try:
            wait_for(answered, START_TIMEOUT, "redis-server to answer PING")
        except AssertionError as exc:
            log = self.log.read_text() if self.log.exists() else ""
            self.stop()
            pytest.fail(f"redis-server did not start ({exc}): {log[-2000:]}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        stop_process(self.proc, 10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh ``redis-server`` for one test; skipped (failed under ``CI=true``) when
    the program is not installed."""
    program = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if program is None:
        missing("redis-server not found (run `make redis` to install Debian's "
                "redis-server package)")
    server = RedisServer(program, tmp_path / "redis")
    server.wait_ready()
    try:
        yield server
    finally:
        server.stop()
