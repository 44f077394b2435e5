"""Test peer: a real SSH server (asyncssh) with SFTP and SCP on 127.0.0.1.

:class:`SshTestServer` listens on 127.0.0.1 on a free port, in its own thread
and event loop, with a freshly generated ed25519 host key. It accepts one user
(``recorder``) authenticated by a freshly generated ed25519 client key, whose
private half is written to ``config_dir/id_ed25519`` so that ``config_dir`` can
serve as the recorder's ``SSH_CONFIG_DIR``. SFTP (and SCP, which asyncssh
serves through the same file system) is rooted in ``root`` (a chroot: the remote
path ``/incoming/x.mp3`` is ``root / "incoming" / "x.mp3"``).

Use it through the ``sftp_server`` fixture (imported into
``tests/recorder/conftest.py`` for every recorder test module)::

    def test_upload(sftp_server):
        dest = sftp_server.destination("/incoming/")   # "recorder@127.0.0.1:PORT:/incoming/"
        creds = sftp_server.credentials()              # SshCredentials of config_dir
        ...
        assert (sftp_server.root / "incoming" / "x.mp3").is_file()

Knobs for failure tests (all take effect for the next connection or request):

* ``stop()`` / ``start()``: go down (connections refused, open ones dropped) and
  come back **on the same port**, e.g. to test the upload queue's retries.
* ``reject_auth = True``: every key is refused (``PermissionDenied``).
* ``rotate_host_key()``: a new host key (restarts the server if running), to
  test that a changed host key is refused after trust on first use.
* ``disk_full = True``: SFTP/SCP writes fail with "No space left on device".
* ``sftp_subsystem = False``: SCP only, the SFTP subsystem is refused.
* ``bytes_per_second = N``: SFTP writes are served one at a time at about N
  bytes/s (a slow link, so that a test can act during an upload); ``None`` again
  lifts the limit, also for writes already waiting.

``renames`` lists every SFTP rename the server performed, as ``(old, new)``
paths inside the chroot (how many times a file was put in place).

``logins`` counts successful authentications; ``host_key_fingerprint`` is the
SHA256 fingerprint of the current host key.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from asyncssh.sftp import MIN_SFTP_VERSION
from asyncssh.stream import SSHServerStreamSession

from taperoom.recorder.transfer import SshCredentials

USER = "recorder"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _SFTP(asyncssh.SFTPServer):
    """Chrooted SFTP file system that can pretend the disk is full, be slow and
    records its renames."""

    def __init__(self, chan: Any, peer: SshTestServer) -> None:
        super().__init__(chan, chroot=str(peer.root).encode())
        self._peer = peer

    def write(self, file_obj: object, offset: int, data: bytes) -> Any:
        if self._peer.disk_full:
            raise asyncssh.SFTPNoSpaceOnFilesystem("No space left on device")
        if self._peer.bytes_per_second:
            return self._slow_write(file_obj, offset, data)
        return super().write(file_obj, offset, data)

    async def _slow_write(self, file_obj: object, offset: int, data: bytes) -> Any:
        async with self._peer._write_lock():
            rate = self._peer.bytes_per_second
            if rate:
                await asyncio.sleep(len(data) / rate)
            return super().write(file_obj, offset, data)

    def _renamed(self, oldpath: bytes, newpath: bytes) -> None:
        self._peer.renames.append((oldpath.decode(), newpath.decode()))

    def rename(self, oldpath: bytes, newpath: bytes) -> Any:
        result = super().rename(oldpath, newpath)
        self._renamed(oldpath, newpath)
        return result

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> Any:
        result = super().posix_rename(oldpath, newpath)
        self._renamed(oldpath, newpath)
        return result


class _Session(SSHServerStreamSession):
    """A session offering SCP always and the SFTP subsystem unless switched off."""

    def __init__(self, peer: SshTestServer) -> None:
        super().__init__(None, lambda chan: _SFTP(chan, peer), MIN_SFTP_VERSION, True)
        self._peer = peer

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "sftp" and self._peer.sftp_subsystem


class _Server(asyncssh.SSHServer):
    def __init__(self, peer: SshTestServer) -> None:
        self._peer = peer
        self._conn: Any = None

    def connection_made(self, conn: Any) -> None:
        self._conn = conn
        self._peer._conns.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self._peer._conns.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        ok = (not self._peer.reject_auth and username == self._peer.user
              and key.public_data == self._peer.client_key.public_data)
        return ok

    def auth_completed(self) -> None:
        self._peer.logins += 1

    def session_requested(self) -> Any:
        return _Session(self._peer)


class SshTestServer:
    """A real SSH/SFTP/SCP server on 127.0.0.1 for tests (see the module docstring).

    Parameters
    ----------
    base_dir : Path
        Scratch folder: ``base_dir/remote`` is the SFTP root, ``base_dir/ssh``
        the client's ``SSH_CONFIG_DIR``.
    port : int or None
        Port to listen on (a free one by default); kept across stop/start.
    user : str
        The one accepted user name.
    """

    def __init__(self, base_dir: Path, *, port: int | None = None, user: str = USER) -> None:
        self.root = base_dir / "remote"
        self.config_dir = base_dir / "ssh"
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.port = port or _free_port()
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519", comment="recorder-test")
        key_file = self.config_dir / "id_ed25519"
        self.client_key.write_private_key(str(key_file))
        key_file.chmod(0o600)
        self.client_key.write_public_key(str(key_file) + ".pub")
        self.reject_auth = False
        self.disk_full = False
        self.sftp_subsystem = True
        self.bytes_per_second: float | None = None
        self.renames: list[tuple[str, str]] = []
        self._lock: asyncio.Lock | None = None
        self.logins = 0
        self._conns: set[Any] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: Any = None

    # ------------------------------------------------------------------ helpers for tests

    def _write_lock(self) -> asyncio.Lock:
        """The lock that serves slow writes one at a time (made in the server's loop)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def destination(self, path: str = "/incoming/") -> str:
        """``user@127.0.0.1:port:path`` for this server (path inside the chroot)."""
        return f"{self.user}@127.0.0.1:{self.port}:{path}"

    def credentials(self, *, accept_new_host_keys: bool = True) -> SshCredentials:
        """The recorder's credentials for this server (keys and known_hosts of config_dir)."""
        return SshCredentials.from_config_dir(self.config_dir,
                                              accept_new_host_keys=accept_new_host_keys)

    @property
    def host_key_fingerprint(self) -> str:
        """SHA256 fingerprint of the current host key."""
        return str(self.host_key.get_fingerprint())

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._acceptor is not None

    def rotate_host_key(self) -> None:
        """Switch to a new host key (restarting the server when it runs)."""
        was_running = self.running
        if was_running:
            self.stop()
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        if was_running:
            self.start()

    # ------------------------------------------------------------------ life cycle

    async def _listen(self) -> Any:
        return await asyncssh.listen(
            "127.0.0.1", self.port, server_host_keys=[self.host_key],
            server_factory=lambda: _Server(self), reuse_address=True,
            login_timeout=10)

    async def _close(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._acceptor.wait_closed(), 5)
        for conn in list(self._conns):
            conn.close()
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)
        self._conns.clear()

    def start(self) -> SshTestServer:
        """Listen on ``self.port`` (again); returns self."""
        if self.running:
            return self
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"ssh-peer-{self.port}",
                                  daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._acceptor = asyncio.run_coroutine_threadsafe(self._listen(), loop).result(10)
        except BaseException:
            self._stop_loop()
            raise
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections (the port is free afterwards)."""
        if self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(15)
        finally:
            self._acceptor = None
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._lock = None
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(10)
        loop.close()

    def __enter__(self) -> SshTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def sftp_server(tmp_path: Path) -> Iterator[SshTestServer]:
    """A running :class:`SshTestServer` in ``tmp_path/sshpeer`` (stopped after the test)."""
    with SshTestServer(tmp_path / "sshpeer") as server:
        yield server
