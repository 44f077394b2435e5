"""SFTP/SCP upload of recordings with asyncssh.

A station's destination is written as scp does, ``user@host:/path`` or, with a
port, ``user@host:port:/path`` (contract ``recorder.md``); URLs
``sftp://user@host[:port]/path`` and ``scp://...`` are accepted too. The path
follows scp: one ending in ``/``, or naming an existing remote directory,
receives the file under its local name; any other path is the remote file
name. Missing remote directories are created.

Authentication is by key only: the private keys in ``SSH_CONFIG_DIR``
(``id_ed25519``, ``id_ecdsa``, ``id_rsa``, then any ``*.pem``, ``*.key`` or
other PEM/OpenSSH private key file). Host keys are checked against
``SSH_CONFIG_DIR/known_hosts`` with trust on first use, as OpenSSH's
``StrictHostKeyChecking=accept-new``: the key of a host seen for the first time
is recorded there; a host whose key differs from the recorded one is refused
until its line is removed by hand.

An upload never leaves a partial file under the final name: the data goes to
``.<name>.part`` in the target directory, its size is compared with the local
file, and only then is it renamed (``posix-rename@openssh.com`` when the server
has it, as OpenSSH's ``sftp`` does). Every failure is a :class:`TransferError`
whose message names the destination and what to do.

References: T. Ylonen, S. Lehtinen, *SSH File Transfer Protocol*
(draft-ietf-secsh-filexfer-02, version 3 as served by OpenSSH); OpenSSH
``PROTOCOL`` (``posix-rename@openssh.com``), ``ssh_config(5)``
(``StrictHostKeyChecking``) and ``sshd(8)`` (``known_hosts`` format).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import re
import shlex
import socket
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

with warnings.catch_warnings():
    # asyncssh (2.24) names cryptography's DSA classes at import, which cryptography
    # 48+ deprecates with a warning per name: five lines on every server start, about
    # a library's import, that a user can do nothing about
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    import asyncssh

from taperoom.errors import InvalidInput, NotFound, TaperoomError
from taperoom.fslock import file_lock

log = logging.getLogger(__name__)

#: Default SSH port.
SSH_PORT = 22
#: Key files looked for first in ``SSH_CONFIG_DIR``, in this order (OpenSSH's
#: default identity files, ``ssh_config(5)`` ``IdentityFile``).
DEFAULT_KEY_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa")
#: Name of the host key file in ``SSH_CONFIG_DIR``.
KNOWN_HOSTS_NAME = "known_hosts"
PROTOCOLS = ("sftp", "scp")
#: Bytes per SFTP write request: OpenSSH's ``sftp-server`` limit (256 KiB), so that
#: progress (and the upload queue's checks made on it) comes at least that often;
#: asyncssh would otherwise use up to 4 MiB against a server that allows it.
SFTP_BLOCK_SIZE = 256 * 1024
_T = TypeVar("_T")

_SCP_FORM = re.compile(
    r"^(?P<user>[^@\s:/]+)@(?P<host>\[[0-9A-Fa-f:.%\w]+\]|[^\s:@/\[\]]+)"
    r":(?:(?P<port>\d{1,5}):)?(?P<path>.*)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_KEYS = {KNOWN_HOSTS_NAME, "known_hosts.old", "authorized_keys", "config",
             "known_hosts.lock"}


class TransferError(TaperoomError, OSError):
    """An upload failed: authentication, host key, network or remote disk (HTTP 502)."""

    status = 502


# --------------------------------------------------------------------------- destination


@dataclass(frozen=True)
class Destination:
    """Where a recording goes: ``user@host[:port]:path``.

    Attributes
    ----------
    user : str
        Remote account.
    host : str
        Host name or address (IPv6 without brackets).
    port : int
        TCP port, 22 unless given.
    path : str
        Remote path; empty means the login directory. A path ending with ``/``
        is a directory that receives the file under its local name.
    scheme : str
        ``"sftp"`` or ``"scp"`` when the destination was written as a URL (it
        then chooses the protocol), else empty.
    """

    user: str
    host: str
    port: int = SSH_PORT
    path: str = ""
    scheme: str = ""

    @classmethod
    def parse(cls, text: str) -> Destination:
        """Parse ``user@host:/path``, ``user@host:port:/path`` or an sftp/scp URL.

        Parameters
        ----------
        text : str
            The station's ``scp_destination``. IPv6 addresses go in brackets
            (``user@[::1]:2222:/in/``). In URLs the path is absolute; ``/~/x``
            means ``x`` in the login directory.

        Returns
        -------
        Destination

        Raises
        ------
        InvalidInput
            The text has no user, no host, a port outside 1-65535, control
            characters, or a bare number as path (``user@host:2222``, which
            would be a file named ``2222``: write ``user@host:2222:/path``).
        """
        raw = (text or "").strip()
        if not raw:
            raise InvalidInput("upload destination is empty: expected user@host:/path")
        if _CONTROL.search(raw):
            raise InvalidInput("upload destination contains control characters")
        low = raw.lower()
        if low.startswith(("sftp://", "scp://")):
            return cls._parse_url(raw)
        if "://" in raw:
            raise InvalidInput(f"unsupported upload destination {raw!r}: only sftp:// and "
                               "scp:// URLs, or user@host:/path")
        m = _SCP_FORM.match(raw)
        if m is None:
            if "@" not in raw:
                raise InvalidInput(f"upload destination {raw!r} must name the user: "
                                   "user@host:/path or user@host:port:/path")
            raise InvalidInput(f"upload destination {raw!r} is not of the form "
                               "user@host:/path or user@host:port:/path")
        host = m["host"].strip("[]")
        path = m["path"]
        if m["port"] is None and path.isdigit():
            raise InvalidInput(f"upload destination {raw!r} is ambiguous: write "
                               f"user@host:{path}:/path for port {path}")
        port = int(m["port"]) if m["port"] is not None else SSH_PORT
        return cls(user=m["user"], host=host, port=_check_port(port, raw), path=path)

    @classmethod
    def _parse_url(cls, raw: str) -> Destination:
        try:
            parts = urlsplit(raw)
            port = parts.port
        except ValueError as exc:
            raise InvalidInput(f"upload destination {raw!r} has a bad port: {exc}") from exc
        if not parts.username:
            raise InvalidInput(f"upload destination {raw!r} must name the user: "
                               f"{parts.scheme}://user@host/path")
        if not parts.hostname:
            raise InvalidInput(f"upload destination {raw!r} has no host")
        if parts.password is not None:
            raise InvalidInput("passwords in upload destinations are not supported: "
                               "put a private key in SSH_CONFIG_DIR")
        path = unquote(parts.path)
        if path.startswith("/~/"):
            path = path[3:]
        elif path == "/~":
            path = ""
        port = _check_port(port if port is not None else SSH_PORT, raw)
        return cls(user=unquote(parts.username), host=parts.hostname, port=port, path=path,
                   scheme=parts.scheme.lower())

    def remote_path_for(self, local: Path) -> str:
        """The remote file path of `local` (without asking the server).

        Returns
        -------
        str
            ``path + basename`` when the path is empty or ends with ``/``, else
            the path itself. (:func:`upload` also appends the basename when the
            path names an existing remote directory.)
        """
        name = Path(local).name
        if not self.path:
            return name
        if self.path.endswith("/"):
            return self.path + name
        return self.path

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port != SSH_PORT else ""
        return f"{self.user}@{host}{port}:{self.path}"


def _check_port(port: int, raw: str) -> int:
    if not 1 <= port <= 65535:
        raise InvalidInput(f"upload destination {raw!r}: port {port} is outside 1-65535")
    return port


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class SshCredentials:
    """Private keys and host key policy used for uploads.

    Attributes
    ----------
    key_paths : list of Path
        Private key files, tried in order.
    known_hosts : Path or None
        OpenSSH ``known_hosts`` file. None disables host key checking (only for
        a caller that checks some other way).
    accept_new_host_keys : bool
        Record the key of a host not yet in `known_hosts` (trust on first use,
        OpenSSH ``StrictHostKeyChecking=accept-new``); False refuses it.
    """

    key_paths: list[Path] = field(default_factory=list)
    known_hosts: Path | None = None
    accept_new_host_keys: bool = True

    @classmethod
    def from_config_dir(cls, ssh_config_dir: Path, *,
                        accept_new_host_keys: bool = True) -> SshCredentials:
        """Credentials from ``SSH_CONFIG_DIR``.

        Parameters
        ----------
        ssh_config_dir : Path
            Folder of the private key(s) and ``known_hosts``. Keys:
            ``id_ed25519``, ``id_ecdsa``, ``id_rsa`` first, then, by name, every
            other ``id_*``, ``*.pem`` or ``*.key`` file and any file that starts
            like a PEM/OpenSSH private key (``.pub`` files, ``known_hosts``,
            ``config`` and ``authorized_keys`` are skipped). A missing folder
            gives no keys (the upload then fails with a clear message).
        accept_new_host_keys : bool
            See the class attributes.

        Returns
        -------
        SshCredentials
        """
        folder = Path(ssh_config_dir)
        keys: list[Path] = [folder / n for n in DEFAULT_KEY_NAMES if (folder / n).is_file()]
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                if (p in keys or not p.is_file() or p.name in _NOT_KEYS
                        or p.suffix == ".pub" or p.name.startswith(".")):
                    continue
                if (p.name.startswith("id_") or p.suffix in (".pem", ".key")
                        or _looks_like_private_key(p)):
                    keys.append(p)
        return cls(key_paths=keys, known_hosts=folder / KNOWN_HOSTS_NAME,
                   accept_new_host_keys=accept_new_host_keys)


def _looks_like_private_key(path: Path) -> bool:
    try:
        if path.stat().st_size > 64 * 1024:
            return False
        with path.open("rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return head.startswith(b"-----BEGIN") and b"PRIVATE KEY" in head


def _load_keys(creds: SshCredentials) -> list[asyncssh.SSHKeyPair]:
    pairs: list[asyncssh.SSHKeyPair] = []
    for path in creds.key_paths:
        try:
            pairs.extend(asyncssh.load_keypairs([str(path)]))
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, OSError,
                ValueError) as exc:
            log.warning("SSH key %s skipped: %s", path, exc)
    return pairs


# --------------------------------------------------------------------------- host keys


def _host_pattern(host: str, port: int) -> str:
    """``known_hosts`` host field: ``host``, or ``[host]:port`` off port 22 (sshd(8))."""
    return host if port == SSH_PORT else f"[{host}]:{port}"


class _HostKeys:
    """Trust-on-first-use over one ``known_hosts`` file."""

    def __init__(self, path: Path, accept_new: bool) -> None:
        self.path = path
        self.accept_new = accept_new
        self.changed = False
        self.offered: str = ""
        self.host_known = False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.path.with_name(self.path.name + ".lock"), timeout=10.0):
            yield

    def _read(self) -> asyncssh.SSHKnownHosts:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        return asyncssh.import_known_hosts(text)

    def trusted(self, host: str, port: int) -> asyncssh.SSHKnownHosts:
        """The known hosts now on file; notes whether `host` has a recorded key."""
        known = self._read()
        keys = asyncssh.match_known_hosts(known, host, "", port if port != SSH_PORT else None)
        self.host_known = bool(keys[0] or keys[1])
        return known

    def unknown_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        """Called by asyncssh for a host key that matches no recorded key."""
        self.offered = key.get_fingerprint()
        with self._locked():
            known = self._read()
            p = port if port != SSH_PORT else None
            trusted = asyncssh.match_known_hosts(known, host, addr, p)
            if key in trusted[0]:
                return True  # recorded meanwhile by another upload
            if trusted[0] or trusted[1]:
                self.changed = True
                return False
            if not self.accept_new:
                return False
            alg_b64 = key.export_public_key("openssh").decode().split()[:2]
            line = f"{_host_pattern(host, port)} {' '.join(alg_b64)}\n"
            prefix = ""
            if self.path.is_file() and self.path.stat().st_size:
                with self.path.open("rb") as f:
                    f.seek(-1, 2)
                    prefix = "" if f.read(1) == b"\n" else "\n"
            with self.path.open("a", encoding="utf-8") as f:
                f.write(prefix + line)
            with contextlib.suppress(OSError):
                self.path.chmod(0o600)
        log.warning("recorded the host key of %s (%s) in %s (first connection)",
                    _host_pattern(host, port), self.offered, self.path)
        return True


class _Client(asyncssh.SSHClient):
    def __init__(self, host_keys: _HostKeys | None) -> None:
        self._host_keys = host_keys

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        if self._host_keys is None:
            return False
        try:
            return self._host_keys.unknown_key(host, addr, port, key)
        except Exception:  # a broken known_hosts must refuse, never crash the handshake
            log.exception("host key check of %s failed", host)
            return False


# --------------------------------------------------------------------------- results and errors


@dataclass(frozen=True)
class UploadResult:
    """Outcome of one upload.

    Attributes
    ----------
    remote_path : str
        Final remote path of the file.
    bytes : int
        Size of the local file, bytes.
    seconds : float
        Wall time of the transfer including connecting, s.
    verified : bool
        The remote size equals the local size after the rename (False only for
        an SCP-only server, where the size cannot be read back).
    """

    remote_path: str
    bytes: int
    seconds: float
    verified: bool


def _sftp_reason(exc: asyncssh.SFTPError, dest: Destination) -> str:
    reason = str(exc.reason or "").lower()
    # SFTPv3 has no "no space" status: servers send FAILURE with strerror(ENOSPC).
    if isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded) or (
            "no space" in reason or "quota" in reason):
        return f"{dest}: the remote disk is full ({exc.reason})"
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return f"{dest}: permission denied on the server ({exc.reason})"
    if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
        return f"{dest}: no such remote file or directory ({exc.reason})"
    return f"{dest}: the server refused the file operation ({exc.reason or exc})"


def _as_transfer_error(exc: BaseException, dest: Destination, host_keys: _HostKeys | None,
                       creds: SshCredentials, timeout: float) -> TransferError:
    where = f"{dest.host}:{dest.port}"
    if isinstance(exc, TransferError):
        return exc
    if isinstance(exc, asyncssh.PermissionDenied):
        keys = ", ".join(p.name for p in creds.key_paths) or "none"
        return TransferError(f"{dest}: authentication failed: {where} did not accept the "
                             f"key(s) in SSH_CONFIG_DIR ({keys}) for user {dest.user!r}; "
                             "add the public key to the server's authorized_keys")
    if host_keys is not None and (
            host_keys.changed
            or (isinstance(exc, asyncssh.KeyExchangeFailed) and host_keys.host_known)):
        offered = f" (it now offers {host_keys.offered})" if host_keys.offered else ""
        return TransferError(f"{dest}: the host key of {where} has CHANGED{offered} and no "
                             f"longer matches {host_keys.path}; refusing to connect. If the "
                             "server was reinstalled, delete its line from that file")
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        path = host_keys.path if host_keys is not None else "known_hosts"
        return TransferError(f"{dest}: the host key of {where} is not trusted (not in "
                             f"{path} and new host keys are not accepted)")
    if isinstance(exc, asyncssh.SFTPError):
        return TransferError(_sftp_reason(exc, dest))
    if isinstance(exc, asyncssh.ConnectionLost):
        return TransferError(f"{dest}: connection to {where} lost ({exc.reason or exc})")
    if isinstance(exc, asyncssh.DisconnectError):
        return TransferError(f"{dest}: {where} closed the connection ({exc.reason or exc})")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return TransferError(f"{dest}: {where} refused the session ({exc.reason or exc})")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return TransferError(f"{dest}: no answer from {where} within {timeout:g} s")
    if isinstance(exc, ConnectionRefusedError):
        return TransferError(f"{dest}: connection refused by {where} (is the SSH server "
                             "running on that port?)")
    if isinstance(exc, socket.gaierror):
        return TransferError(f"{dest}: unknown host {dest.host!r} ({exc.strerror or exc})")
    if isinstance(exc, OSError):
        return TransferError(f"{dest}: network error with {where}: {exc.strerror or exc}")
    if isinstance(exc, asyncssh.Error):
        return TransferError(f"{dest}: SSH error: {exc.reason or exc}")
    return TransferError(f"{dest}: {exc}")


_TRANSPORT_ERRORS = (asyncssh.Error, OSError, asyncio.TimeoutError, asyncssh.SFTPError)


# --------------------------------------------------------------------------- connection


@contextlib.asynccontextmanager
async def _connect(dest: Destination, creds: SshCredentials, timeout: float,
                   host_keys: _HostKeys | None) -> Any:
    keys = _load_keys(creds)
    if not keys:
        folder = (creds.key_paths[0].parent if creds.key_paths else
                  creds.known_hosts.parent if creds.known_hosts is not None else None)
        where = f"SSH_CONFIG_DIR ({folder})" if folder is not None else "SSH_CONFIG_DIR"
        raise TransferError(f"{dest}: no usable private key in {where}: put id_ed25519, "
                            "id_ecdsa, id_rsa or a *.pem key there")
    known: Any = None
    if host_keys is not None:
        known = host_keys.trusted(dest.host, dest.port)
    conn = await asyncssh.connect(
        dest.host, dest.port, username=dest.user, client_keys=keys, known_hosts=known,
        client_factory=lambda: _Client(host_keys), config=None, agent_path=None,
        preferred_auth="publickey", password=None, connect_timeout=timeout,
        login_timeout=timeout, keepalive_interval=max(1.0, timeout / 3),
        keepalive_count_max=3)
    try:
        yield conn
    finally:
        conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.wait_closed(), 5)


async def _op(aw: Awaitable[_T], timeout: float) -> _T:
    return await asyncio.wait_for(aw, timeout)


async def _resolve(sftp: asyncssh.SFTPClient, dest: Destination, local: Path,
                   timeout: float) -> str:
    """The final remote path: scp semantics for an existing remote directory."""
    remote = dest.remote_path_for(local)
    if dest.path and not dest.path.endswith("/") and await _op(sftp.isdir(dest.path), timeout):
        remote = posixpath.join(dest.path, local.name)
    return remote


async def _finish(sftp: asyncssh.SFTPClient, tmp: str, remote: str, size: int,
                  dest: Destination, timeout: float) -> bool:
    """Check the temp file's size, rename it over `remote`, check again."""
    got = (await _op(sftp.stat(tmp), timeout)).size
    if got != size:
        raise TransferError(f"{dest}: size check failed after upload: sent {size} bytes, "
                            f"the server stored {got}")
    try:
        await _op(sftp.posix_rename(tmp, remote), timeout)
    except asyncssh.SFTPOpUnsupported:  # plain SFTPv3 rename refuses an existing target
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await _op(sftp.remove(remote), timeout)
        await _op(sftp.rename(tmp, remote), timeout)
    return (await _op(sftp.stat(remote), timeout)).size == size


def _temp_name(remote: str) -> str:
    folder, name = posixpath.split(remote)
    return posixpath.join(folder, f".{name}.part")


async def upload(local: Path, dest: Destination, creds: SshCredentials, *,
                 protocol: str = "sftp", progress: Callable[[int, int], None] | None = None,
                 timeout: float = 30.0) -> UploadResult:
    """Upload `local` to `dest` and verify the remote size.

    Parameters
    ----------
    local : Path
        File to send.
    dest : Destination
        Where to (see :meth:`Destination.parse`).
    creds : SshCredentials
        Keys and ``known_hosts`` (trust on first use).
    protocol : {"sftp", "scp"}
        ``sftp``: SFTP throughout. ``scp``: the data goes over SCP; directories,
        the size check and the rename use the SFTP subsystem when the server
        has one, else the file is written directly under its final name and
        the result is not verified.
    progress : callable(sent, total) or None
        Called with bytes sent so far and the file size (bytes). An exception
        it raises aborts the upload (the temp file is removed) and propagates.
    timeout : float
        Seconds allowed to connect and log in and for each file operation; a
        silent connection is dropped after about ``timeout`` s of unanswered
        keepalives (the data transfer itself has no overall limit).

    Returns
    -------
    UploadResult

    Raises
    ------
    NotFound
        `local` does not exist.
    InvalidInput
        Unknown `protocol`.
    TransferError
        Authentication refused, host key unknown or changed, network failure,
        remote permission or disk errors, or a size mismatch.
    """
    if protocol not in PROTOCOLS:
        raise InvalidInput(f"unknown transfer protocol {protocol!r}: use sftp or scp")
    local = Path(local)
    try:
        size = local.stat().st_size
    except FileNotFoundError as exc:
        raise NotFound(f"local file {local} not found") from exc
    host_keys = (_HostKeys(creds.known_hosts, creds.accept_new_host_keys)
                 if creds.known_hosts is not None else None)
    t0 = time.monotonic()

    def handler(_src: bytes, _dst: bytes, sent: int, total: int) -> None:
        if progress is not None:
            progress(sent, total)

    try:
        async with _connect(dest, creds, timeout, host_keys) as conn:
            if protocol == "sftp":
                remote, verified = await _upload_sftp(conn, local, dest, size, handler, timeout)
            else:
                remote, verified = await _upload_scp(conn, local, dest, size, handler, timeout)
    except TransferError:
        raise
    except _TRANSPORT_ERRORS as exc:
        raise _as_transfer_error(exc, dest, host_keys, creds, timeout) from exc
    seconds = time.monotonic() - t0
    log.info("uploaded %s to %s (%d bytes in %.1f s, %s)", local.name,
             replace(dest, path=remote), size, seconds,
             "verified" if verified else "not verified")
    return UploadResult(remote_path=remote, bytes=size, seconds=seconds, verified=verified)


def _start_sftp(conn: asyncssh.SSHClientConnection, dest: Destination) -> Any:
    """``conn.start_sftp_client()``, with a clear error when the server has no SFTP."""

    @contextlib.asynccontextmanager
    async def cm() -> Any:
        try:
            client = await conn.start_sftp_client()
        except asyncssh.ChannelOpenError as exc:
            raise TransferError(f"{dest}: the server offers no SFTP subsystem ({exc.reason}); "
                                "use the scp protocol (TRANSFER_PROTOCOL=scp or an scp:// "
                                "destination)") from exc
        try:
            yield client
        finally:
            client.exit()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.wait_closed(), 5)

    return cm()


async def _upload_sftp(conn: asyncssh.SSHClientConnection, local: Path, dest: Destination,
                       size: int, handler: Any, timeout: float) -> tuple[str, bool]:
    async with _start_sftp(conn, dest) as sftp:
        remote = await _resolve(sftp, dest, local, timeout)
        folder = posixpath.dirname(remote)
        if folder:
            await _op(sftp.makedirs(folder, exist_ok=True), timeout)
        tmp = _temp_name(remote)
        try:
            await sftp.put(str(local), tmp, progress_handler=handler,
                           block_size=SFTP_BLOCK_SIZE)
            verified = await _finish(sftp, tmp, remote, size, dest, timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                await _op(sftp.remove(tmp), min(timeout, 5))
            raise
    return remote, verified


async def _upload_scp(conn: asyncssh.SSHClientConnection, local: Path, dest: Destination,
                      size: int, handler: Any, timeout: float) -> tuple[str, bool]:
    try:
        sftp = await _op(conn.start_sftp_client(), timeout)
    except (asyncssh.ChannelOpenError, asyncssh.SFTPError) as exc:
        log.info("%s has no SFTP subsystem (%s): plain SCP, size not verified", dest, exc)
        remote = dest.remote_path_for(local)
        await asyncssh.scp(str(local), (conn, shlex.quote(remote)), progress_handler=handler)
        return remote, False
    try:
        remote = await _resolve(sftp, dest, local, timeout)
        folder = posixpath.dirname(remote)
        if folder:
            await _op(sftp.makedirs(folder, exist_ok=True), timeout)
        tmp = _temp_name(remote)
        try:
            await asyncssh.scp(str(local), (conn, shlex.quote(tmp)), progress_handler=handler)
            verified = await _finish(sftp, tmp, remote, size, dest, timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                await _op(sftp.remove(tmp), min(timeout, 5))
            raise
    finally:
        sftp.exit()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sftp.wait_closed(), 5)
    return remote, verified


def upload_sync(local: Path, dest: Destination, creds: SshCredentials, *,
                protocol: str = "sftp", progress: Callable[[int, int], None] | None = None,
                timeout: float = 30.0) -> UploadResult:
    """:func:`upload` for a thread without a running event loop (queue workers).

    Same parameters, result and errors as :func:`upload`.
    """
    return asyncio.run(upload(local, dest, creds, protocol=protocol, progress=progress,
                              timeout=timeout))


# --------------------------------------------------------------------------- connection test


async def check_destination(dest: Destination, creds: SshCredentials, *,
                            timeout: float = 10.0) -> dict[str, Any]:
    """Connect, log in and look at the destination ("test connection").

    The target directory is looked up; when it exists, a small temporary file
    is created and removed in it to prove that uploads can be written.

    Parameters
    ----------
    dest : Destination
    creds : SshCredentials
    timeout : float
        Seconds for connecting and each operation.

    Returns
    -------
    dict
        ``success`` (bool), ``message`` (str), ``destination`` (str),
        ``directory`` (remote folder that receives uploads), ``exists`` (bool
        or None), ``writable`` (bool or None). Failures are reported in the
        dict, never raised.
    """
    host_keys = (_HostKeys(creds.known_hosts, creds.accept_new_host_keys)
                 if creds.known_hosts is not None else None)
    out: dict[str, Any] = {"success": False, "message": "", "destination": str(dest),
                           "directory": None, "exists": None, "writable": None}
    try:
        async with _connect(dest, creds, timeout, host_keys) as conn, \
                _start_sftp(conn, dest) as sftp:
            if not dest.path or dest.path.endswith("/"):
                folder = dest.path.rstrip("/") or ("/" if dest.path else ".")
            elif await _op(sftp.isdir(dest.path), timeout):
                folder = dest.path
            else:
                folder = posixpath.dirname(dest.path) or "."
            out["directory"] = folder
            out["exists"] = await _op(sftp.isdir(folder), timeout)
            if out["exists"]:
                probe = posixpath.join(folder, f".taperoom-test-{uuid.uuid4().hex[:8]}")
                try:
                    async with sftp.open(probe, "wb") as f:
                        await _op(f.write(b"ok"), timeout)
                    await _op(sftp.remove(probe), timeout)
                    out["writable"] = True
                except asyncssh.SFTPError as exc:
                    out["writable"] = False
                    out["message"] = f"connected to {dest}, but {folder} is not writable: " \
                                     f"{exc.reason}"
                    return out
                out["message"] = f"connected to {dest}; {folder} exists and is writable"
            else:
                out["message"] = (f"connected to {dest}; {folder} does not exist yet and "
                                  "will be created by the first upload")
            out["success"] = True
    except _TRANSPORT_ERRORS as exc:
        out["message"] = str(_as_transfer_error(exc, dest, host_keys, creds, timeout))
    except TransferError as exc:
        out["message"] = str(exc)
    return out


def check_destination_sync(dest: Destination, creds: SshCredentials, *,
                           timeout: float = 10.0) -> dict[str, Any]:
    """:func:`check_destination` for synchronous callers (no running event loop)."""
    return asyncio.run(check_destination(dest, creds, timeout=timeout))
