"""SFTP/SCP uploads against a real asyncssh server on 127.0.0.1 (tests/recorder/sshserver.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from taperoom.errors import InvalidInput, NotFound, TaperoomError
from taperoom.recorder.transfer import (
    Destination,
    SshCredentials,
    TransferError,
    check_destination,
    upload,
    upload_sync,
)
from tests.recorder.sshserver import SshTestServer


def payload(path: Path, size: int = 700_000) -> Path:
    """A file of `size` random bytes."""
    path.write_bytes(os.urandom(size))
    return path


def remote_files(server: SshTestServer) -> list[str]:
    """Every file under the server's root, as chroot paths."""
    return sorted("/" + str(p.relative_to(server.root)) for p in server.root.rglob("*")
                  if p.is_file())


# --------------------------------------------------------------------------- destinations


@pytest.mark.parametrize(("text", "expected"), [
    ("rec@nas.local:/srv/radio/", ("rec", "nas.local", 22, "/srv/radio/", "")),
    ("rec@nas.local:2222:/srv/radio/", ("rec", "nas.local", 2222, "/srv/radio/", "")),
    ("rec@10.0.0.5:uploads", ("rec", "10.0.0.5", 22, "uploads", "")),
    ("rec@host:", ("rec", "host", 22, "", "")),
    ("rec@[::1]:2200:/in/", ("rec", "::1", 2200, "/in/", "")),
    ("  rec@host:/with space/  ", ("rec", "host", 22, "/with space/", "")),
    ("sftp://rec@nas:2022/srv/radio/", ("rec", "nas", 2022, "/srv/radio/", "sftp")),
    ("SCP://rec@nas/srv/a%20b/", ("rec", "nas", 22, "/srv/a b/", "scp")),
    ("sftp://rec@nas/~/radio/", ("rec", "nas", 22, "radio/", "sftp")),
])
def test_destination_parse_good_forms(text: str, expected: tuple[object, ...]) -> None:
    """scp-style and sftp/scp URL destinations parse into user, host, port, path, scheme."""
    d = Destination.parse(text)
    assert (d.user, d.host, d.port, d.path, d.scheme) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("nas.local:/srv", "must name the user"),
    ("rec@nas:70000:/srv", "outside 1-65535"),
    ("rec@nas:2222", "ambiguous"),
    ("http://rec@nas/srv", "only sftp:// and scp://"),
    ("sftp://nas/srv", "must name the user"),
    ("sftp://rec:secret@nas/srv", "passwords"),
    ("rec@nas\n:/srv", "control characters"),
    ("rec@:/srv", "not of the form"),
])
def test_destination_parse_bad_forms(text: str, message: str) -> None:
    """Malformed destinations raise InvalidInput with a message saying what is wrong."""
    with pytest.raises(InvalidInput, match=message):
        Destination.parse(text)


def test_remote_path_for() -> None:
    """A path ending in '/' (or empty) gets the local name appended; others are file names."""
    local = Path("/rec/2025-10-03_KUVO.mp3")
    assert Destination.parse("u@h:/in/").remote_path_for(local) == "/in/2025-10-03_KUVO.mp3"
    assert Destination.parse("u@h:/in/show.mp3").remote_path_for(local) == "/in/show.mp3"
    assert Destination.parse("u@h:").remote_path_for(local) == "2025-10-03_KUVO.mp3"
    assert str(Destination.parse("sftp://u@h:2022/in/")) == "u@h:2022:/in/"


def test_credentials_from_config_dir(tmp_path: Path) -> None:
    """Default key names come first, then other key files; public keys and config are skipped."""
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----\n"
    for name in ("id_rsa", "id_ed25519", "site.pem", "backup.key", "recorder_key"):
        (tmp_path / name).write_text(pem)
    for name in ("id_ed25519.pub", "known_hosts", "config", "authorized_keys", "notes.txt"):
        (tmp_path / name).write_text("ssh-ed25519 AAAA x\n")
    creds = SshCredentials.from_config_dir(tmp_path)
    assert [p.name for p in creds.key_paths] == [
        "id_ed25519", "id_rsa", "backup.key", "recorder_key", "site.pem"]
    assert creds.known_hosts == tmp_path / "known_hosts"
    assert creds.accept_new_host_keys
    assert SshCredentials.from_config_dir(tmp_path / "missing").key_paths == []


def test_transfer_error_is_taperoom_and_os_error() -> None:
    """TransferError maps to HTTP 502 and is caught as OSError too."""
    err = TransferError("x")
    assert isinstance(err, TaperoomError) and isinstance(err, OSError)
    assert err.status == 502


# --------------------------------------------------------------------------- uploads


@pytest.mark.parametrize("protocol", ["sftp", "scp"])
def test_upload_creates_dirs_and_verifies(sftp_server: SshTestServer, tmp_path: Path,
                                          protocol: str) -> None:
    """SFTP and SCP uploads create remote folders, verify the size and leave no temp file."""
    local = payload(tmp_path / "2025-10-03_KUVO Jazz.mp3")
    seen: list[tuple[int, int]] = []
    dest = Destination.parse(sftp_server.destination(f"/radio/{protocol}/nested dir/"))
    result = upload_sync(local, dest, sftp_server.credentials(), protocol=protocol,
                         progress=lambda sent, total: seen.append((sent, total)))
    remote = f"/radio/{protocol}/nested dir/2025-10-03_KUVO Jazz.mp3"
    assert result.remote_path == remote
    assert result.verified and result.bytes == local.stat().st_size
    assert remote_files(sftp_server) == [remote]
    assert (sftp_server.root / remote[1:]).read_bytes() == local.read_bytes()
    assert seen and seen[-1] == (result.bytes, result.bytes)


def test_upload_into_existing_directory_and_overwrite(sftp_server: SshTestServer,
                                                      tmp_path: Path) -> None:
    """A path naming an existing remote folder receives the file inside it (scp rule),
    and a second upload replaces the remote file."""
    (sftp_server.root / "in").mkdir()
    local = payload(tmp_path / "show.mp3", 50_000)
    dest = Destination.parse(sftp_server.destination("/in"))
    assert upload_sync(local, dest, sftp_server.credentials()).remote_path == "/in/show.mp3"
    payload(local, 60_000)
    result = upload_sync(local, dest, sftp_server.credentials())
    assert result.verified and (sftp_server.root / "in/show.mp3").stat().st_size == 60_000
    assert remote_files(sftp_server) == ["/in/show.mp3"]


def test_scp_only_server_uploads_unverified(sftp_server: SshTestServer, tmp_path: Path) -> None:
    """Without an SFTP subsystem, SCP still delivers the file but cannot verify it."""
    sftp_server.sftp_subsystem = False
    (sftp_server.root / "in").mkdir()
    local = payload(tmp_path / "a.mp3", 30_000)
    result = upload_sync(local, Destination.parse(sftp_server.destination("/in/")),
                         sftp_server.credentials(), protocol="scp")
    assert result.remote_path == "/in/a.mp3" and not result.verified
    assert (sftp_server.root / "in/a.mp3").read_bytes() == local.read_bytes()
    with pytest.raises(TransferError, match=r"no SFTP subsystem.*use the scp protocol"):
        upload_sync(local, Destination.parse(sftp_server.destination("/in/")),
                    sftp_server.credentials(), protocol="sftp")


def test_missing_local_file_and_bad_protocol(sftp_server: SshTestServer, tmp_path: Path) -> None:
    """A missing local file raises NotFound; an unknown protocol InvalidInput."""
    dest = Destination.parse(sftp_server.destination())
    with pytest.raises(NotFound):
        upload_sync(tmp_path / "nope.mp3", dest, sftp_server.credentials())
    with pytest.raises(InvalidInput, match="ftp"):
        upload_sync(payload(tmp_path / "a.mp3", 10), dest, sftp_server.credentials(),
                    protocol="ftp")


async def test_async_upload_progress_abort_leaves_nothing(sftp_server: SshTestServer,
                                                          tmp_path: Path) -> None:
    """An exception from the progress callback aborts the upload and removes the temp file."""
    local = payload(tmp_path / "big.mp3", 3_000_000)

    def stop(sent: int, total: int) -> None:
        if sent > 0:
            raise RuntimeError("stop now")

    with pytest.raises(RuntimeError, match="stop now"):
        await upload(local, Destination.parse(sftp_server.destination("/in/")),
                     sftp_server.credentials(), progress=stop)
    assert remote_files(sftp_server) == []


# --------------------------------------------------------------------------- host keys and auth


def test_host_key_trust_on_first_use_then_changed_key_refused(sftp_server: SshTestServer,
                                                              tmp_path: Path) -> None:
    """The first connection records the host key; a changed key is refused afterwards."""
    local = payload(tmp_path / "a.mp3", 1000)
    dest = Destination.parse(sftp_server.destination("/in/"))
    known = sftp_server.config_dir / "known_hosts"
    assert not known.exists()
    upload_sync(local, dest, sftp_server.credentials())
    line = known.read_text()
    assert line.startswith(f"[127.0.0.1]:{sftp_server.port} ssh-ed25519 ")
    upload_sync(local, dest, sftp_server.credentials())
    assert known.read_text() == line  # nothing added for a known key

    sftp_server.rotate_host_key()
    with pytest.raises(TransferError, match="CHANGED") as info:
        upload_sync(local, dest, sftp_server.credentials())
    assert str(known) in str(info.value) and sftp_server.host_key_fingerprint in str(info.value)
    assert known.read_text() == line
    known.write_text("")  # the user removes the stale line: the new key is learnt
    assert upload_sync(local, dest, sftp_server.credentials()).verified


def test_unknown_host_refused_without_accept_new(sftp_server: SshTestServer,
                                                 tmp_path: Path) -> None:
    """With accept-new off, a host missing from known_hosts is refused and not recorded."""
    creds = sftp_server.credentials(accept_new_host_keys=False)
    with pytest.raises(TransferError, match="not trusted"):
        upload_sync(payload(tmp_path / "a.mp3", 100),
                    Destination.parse(sftp_server.destination()), creds)
    assert not (sftp_server.config_dir / "known_hosts").exists()
    assert sftp_server.logins == 0


def test_wrong_key_refused(sftp_server: SshTestServer, tmp_path: Path) -> None:
    """A refused key gives a TransferError naming the user and the key file."""
    sftp_server.reject_auth = True
    with pytest.raises(TransferError, match="authentication failed") as info:
        upload_sync(payload(tmp_path / "a.mp3", 100),
                    Destination.parse(sftp_server.destination()), sftp_server.credentials())
    assert "id_ed25519" in str(info.value) and "'recorder'" in str(info.value)


def test_no_key_in_config_dir(sftp_server: SshTestServer, tmp_path: Path) -> None:
    """An SSH_CONFIG_DIR without a usable key fails before connecting, saying so."""
    empty = tmp_path / "empty-config"
    empty.mkdir()
    (empty / "id_rsa").write_text("not a key")
    with pytest.raises(TransferError, match="no usable private key"):
        upload_sync(payload(tmp_path / "a.mp3", 100),
                    Destination.parse(sftp_server.destination()),
                    SshCredentials.from_config_dir(empty))
    assert sftp_server.logins == 0


def test_server_down_and_disk_full(sftp_server: SshTestServer, tmp_path: Path) -> None:
    """A stopped server and a full remote disk give clear TransferErrors and no partial file."""
    local = payload(tmp_path / "a.mp3", 200_000)
    dest = Destination.parse(sftp_server.destination("/in/"))
    sftp_server.disk_full = True
    with pytest.raises(TransferError, match="disk is full"):
        upload_sync(local, dest, sftp_server.credentials())
    assert remote_files(sftp_server) == []
    sftp_server.stop()
    with pytest.raises(TransferError, match="connection refused"):
        upload_sync(local, dest, sftp_server.credentials(), timeout=5)
    sftp_server.disk_full = False
    sftp_server.start()
    assert upload_sync(local, dest, sftp_server.credentials()).verified


# --------------------------------------------------------------------------- connection test


async def test_check_destination(sftp_server: SshTestServer) -> None:
    """The connection test reports writable, not-yet-existing and refused destinations."""
    (sftp_server.root / "in").mkdir()
    creds = sftp_server.credentials()
    ok = await check_destination(Destination.parse(sftp_server.destination("/in/")), creds)
    assert ok["success"] and ok["writable"] and ok["directory"] == "/in"
    assert list((sftp_server.root / "in").iterdir()) == []  # the probe file is gone
    new = await check_destination(Destination.parse(sftp_server.destination("/new/x.mp3")),
                                  creds)
    assert new["success"] and new["exists"] is False and "will be created" in new["message"]
    sftp_server.reject_auth = True
    bad = await check_destination(Destination.parse(sftp_server.destination("/in/")), creds)
    assert not bad["success"] and "authentication failed" in bad["message"]


def test_importing_the_uploader_prints_no_library_warnings() -> None:
    """A fresh process importing the SFTP uploader (as every recorder start does) with
    Python's default warning filters prints nothing: asyncssh's import names
    cryptography's deprecated DSA classes, which printed five warnings before."""
    done = subprocess.run([sys.executable, "-W", "default", "-c",
                           "import taperoom.recorder.transfer"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
