"""Which folders may be library folders: the filesystem root, system folders and pseudo
filesystems are refused; removable-media mount roots and home folders are not."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from taperoom.errors import InvalidInput
from taperoom.library.folderpolicy import FolderPolicy, Mount, RefusedFolder

#: A plain mount table: one ext4 root (the policy must then decide on paths alone).
PLAIN = [Mount("/", "ext4")]


def refused(policy: FolderPolicy, path: str | Path) -> str | None:
    return policy.refusal(Path(path))


@pytest.mark.parametrize("path", ["/", "//", "/./", "/..", "/../..", "/.//.", "///etc/.."])
def test_the_filesystem_root_is_refused_however_it_is_spelt(path: str) -> None:
    reason = refused(FolderPolicy(mounts=lambda: PLAIN), path)
    assert reason is not None and "filesystem root" in reason


@pytest.mark.parametrize("path", [
    "/etc", "/etc/ssl", "/proc", "/proc/self", "/sys", "/sys/class", "/dev", "/dev/shm",
    "/root", "/root/Music", "/boot", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32",
    "/usr", "/usr/share", "/usr/share/sounds", "/usr/local/music", "/var", "/var/log",
    "/var/lib/docker", "/run", "/run/user/1000", "/run/lock", "/snap/core", "/lost+found",
    "/home", "/tmp", "/var/tmp",
])
def test_system_folders_are_refused(path: str) -> None:
    reason = refused(FolderPolicy(mounts=lambda: PLAIN), path)
    assert reason is not None and "system folder" in reason, reason


@pytest.mark.parametrize("path", [
    "/home/dj", "/home/dj/Music", "/media/dj/USBSTICK", "/media", "/mnt", "/mnt/nas/music",
    "/run/media/dj/USBSTICK", "/run/media", "/run/user/1000/gvfs/smb-share:server=nas,share=m",
    "/srv/music", "/opt/music", "/data/music", "/music", "/var/lib/mpd/music",
    "/var/lib/mpd/music/House", "/tmp/crate", "/Volumes/USB",
])
def test_user_and_removable_media_folders_are_allowed(path: str) -> None:
    assert refused(FolderPolicy(mounts=lambda: PLAIN), path) is None


def test_symlinks_are_resolved_before_the_check(tmp_path: Path) -> None:
    """A link to ``/`` is the root, a link to ``/etc`` is ``/etc``; a link to music is fine."""
    policy = FolderPolicy(mounts=lambda: PLAIN)
    (tmp_path / "to-root").symlink_to("/")
    (tmp_path / "to-etc").symlink_to("/etc")
    (tmp_path / "chain").symlink_to(tmp_path / "to-root")
    (tmp_path / "music").mkdir()
    (tmp_path / "to-music").symlink_to(tmp_path / "music")
    assert "filesystem root" in (refused(policy, tmp_path / "to-root") or "")
    assert "filesystem root" in (refused(policy, tmp_path / "chain") or "")
    assert "/etc" in (refused(policy, tmp_path / "to-etc") or "")
    assert "/etc" in (refused(policy, tmp_path / "to-etc" / "ssl") or "")
    assert refused(policy, tmp_path / "to-music") is None


def test_check_raises_a_400_error_naming_the_folder_and_the_setting() -> None:
    policy = FolderPolicy(mounts=lambda: PLAIN)
    with pytest.raises(RefusedFolder) as info:
        policy.check(Path("/etc"))
    assert isinstance(info.value, InvalidInput) and info.value.status == 400
    assert info.value.message.startswith("Refused as a library folder: /etc is a system folder")
    assert "LIBRARY_ALLOWED_ROOTS" in info.value.message
    policy.check(Path("/home/dj/Music"))  # allowed: no error


def test_pseudo_filesystems_are_refused_by_their_type_wherever_mounted() -> None:
    """The mount's filesystem type decides, not the name: sysfs under /mnt is refused."""
    table = [Mount("/", "ext4"), Mount("/mnt/odd", "sysfs"), Mount("/mnt/odd/inner", "ext4"),
             Mount("/mnt/kernel-debug", "debugfs"), Mount("/srv/cg", "cgroup2"),
             Mount("/mnt/ram", "tmpfs"), Mount("/mnt/usb", "vfat")]
    policy = FolderPolicy(mounts=lambda: table)
    assert "sysfs" in (refused(policy, "/mnt/odd") or "")
    assert "sysfs" in (refused(policy, "/mnt/odd/devices/x") or "")
    assert refused(policy, "/mnt/odd/inner/music") is None  # a real disk mounted inside
    assert "debugfs" in (refused(policy, "/mnt/kernel-debug/tracing") or "")
    assert "cgroup2" in (refused(policy, "/srv/cg") or "")
    assert refused(policy, "/mnt/ram/crate") is None  # a RAM disk of the user's own
    assert refused(policy, "/mnt/usb/Music") is None
    assert refused(policy, "/mnt/oddity") is None  # a name prefix is not a mount prefix


def test_allowed_roots_admit_system_folders_but_never_pseudo_filesystems() -> None:
    table = [Mount("/", "ext4"), Mount("/proc", "proc"), Mount("/sys", "sysfs")]
    policy = FolderPolicy(allowed_roots=[Path("/usr/share/sounds"), Path("/var/media")],
                          mounts=lambda: table)
    assert refused(policy, "/usr/share/sounds") is None
    assert refused(policy, "/usr/share/sounds/alsa") is None
    assert refused(policy, "/var/media/crate") is None
    assert refused(policy, "/usr/share") is not None  # only below the allowed roots
    assert refused(policy, "/var/medias") is not None
    everything = FolderPolicy(allowed_roots=[Path("/")], mounts=lambda: table)
    assert refused(everything, "/") is None and refused(everything, "/etc") is None
    assert "proc" in (refused(everything, "/proc/self") or "")
    assert "sysfs" in (refused(everything, "/sys") or "")


def test_allowed_roots_setting_is_a_colon_separated_list(lib_settings) -> None:
    settings = lib_settings(library_allowed_roots="/usr/share/sounds: /var/media/ ::")
    assert settings.allowed_roots == (Path("/usr/share/sounds"), Path("/var/media"))
    assert lib_settings().allowed_roots == ()


def test_the_real_mount_table_is_read() -> None:
    """Without an injected table the policy reads this machine's mounts (``/proc`` is proc)."""
    policy = FolderPolicy()
    if not Path("/proc/self").exists():
        pytest.skip("no /proc on this system")
    assert any(m.fstype == "proc" for m in policy.mounts())
    assert refused(policy, "/proc/self/fd") is not None


@pytest.fixture
def sysfs_mount(tmp_path: Path) -> Iterator[Path]:
    """A real sysfs mounted under tmp_path (needs CAP_SYS_ADMIN; skipped otherwise)."""
    target = tmp_path / "innocent-name"
    target.mkdir()
    done = subprocess.run(["mount", "-t", "sysfs", "sysfs", str(target)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a sysfs here: {done.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_real_sysfs_mounted_under_an_innocent_name_is_refused(sysfs_mount: Path) -> None:
    policy = FolderPolicy()
    assert "sysfs" in (refused(policy, sysfs_mount) or "")
    assert "sysfs" in (refused(policy, sysfs_mount / "class") or "")
    assert refused(policy, sysfs_mount.parent) is None
