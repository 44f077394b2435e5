"""taperoom.confined: folders opened inside a root without following links, on real files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from taperoom.confined import SymlinkRefused, open_folder, parts_inside


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """``root/a/b`` with a file; ``outside/b`` with a file of the same name."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    (outside / "b").mkdir(parents=True)
    (root / "a" / "b" / "x.mp3").write_bytes(b"inside")
    (outside / "b" / "x.mp3").write_bytes(b"outside")
    return {"root": root, "outside": outside}


def test_opens_the_folder_and_acts_by_name_inside_it(tree: dict[str, Path]) -> None:
    """The descriptor is the folder below the root; names are resolved inside it."""
    with open_folder(tree["root"], ["a", "b"]) as folder:
        assert folder.path == tree["root"] / "a" / "b"
        st = folder.lstat("x.mp3")
        assert st is not None and st.st_ino == (tree["root"] / "a" / "b" / "x.mp3").stat().st_ino
        assert folder.lstat("missing.mp3") is None
        with open(os.open("x.mp3", os.O_RDONLY, dir_fd=folder.fd), "rb") as f:
            assert f.read() == b"inside"


@pytest.mark.parametrize("link", ["a", "a/b"])
def test_a_link_on_the_way_is_refused(tree: dict[str, Path], link: str) -> None:
    """A folder replaced by a link, at any depth, is refused (and followed on request)."""
    target = tree["outside"] if link == "a" else tree["outside"] / "b"
    path = tree["root"].joinpath(*link.split("/"))
    shutil.rmtree(path)
    path.symlink_to(target, target_is_directory=True)
    with pytest.raises(SymlinkRefused) as refused:
        open_folder(tree["root"], ["a", "b"])
    assert refused.value.path == str(path) and refused.value.status == 409
    with open_folder(tree["root"], ["a", "b"], follow_symlinks=True) as folder:
        assert folder.lstat("x.mp3") is not None


def test_the_root_itself_may_be_a_link(tree: dict[str, Path], tmp_path: Path) -> None:
    """A root registered through a link is opened (the link is the user's own choice)."""
    alias = tmp_path / "alias"
    alias.symlink_to(tree["root"], target_is_directory=True)
    with open_folder(alias, ["a"]) as folder:
        assert folder.lstat("b") is not None


def test_missing_and_not_a_folder(tree: dict[str, Path]) -> None:
    """A missing folder is FileNotFoundError, a file on the way NotADirectoryError,
    a dangling link followed on request FileNotFoundError."""
    with pytest.raises(FileNotFoundError):
        open_folder(tree["root"], ["a", "nope"])
    with pytest.raises(NotADirectoryError):
        open_folder(tree["root"], ["a", "b", "x.mp3"])
    (tree["root"] / "dangling").symlink_to(tree["root"] / "gone")
    with pytest.raises(FileNotFoundError):
        open_folder(tree["root"], ["dangling"], follow_symlinks=True)
    with pytest.raises(SymlinkRefused):
        open_folder(tree["root"], ["dangling"])
    for bad in ("..", ".", "", "a/b"):
        with pytest.raises(ValueError):
            open_folder(tree["root"], [bad])


def test_create_makes_missing_folders_and_takes_them_away(tree: dict[str, Path]) -> None:
    """Missing folders are made (and listed); remove_created removes them, innermost first."""
    with open_folder(tree["root"], ["a", "new", "deeper"], create=True) as folder:
        assert folder.created == [tree["root"] / "a" / "new", tree["root"] / "a" / "new" / "deeper"]
        assert (tree["root"] / "a" / "new" / "deeper").is_dir()
        folder.remove_created()
    assert not (tree["root"] / "a" / "new").exists() and (tree["root"] / "a").is_dir()


def test_create_does_not_follow_a_link(tree: dict[str, Path]) -> None:
    """With create, an existing link is still refused and nothing is made behind it."""
    (tree["root"] / "out").symlink_to(tree["outside"], target_is_directory=True)
    with pytest.raises(SymlinkRefused):
        open_folder(tree["root"], ["out", "new"], create=True)
    assert sorted(os.listdir(tree["outside"])) == ["b"]


def test_parts_inside(tmp_path: Path) -> None:
    """Names from the root to a path below it, lexically; outside or the root is ValueError."""
    assert parts_inside("/music", "/music/A/x.mp3") == ["A", "x.mp3"]
    assert parts_inside("/music/", "/music/A/../B/x.mp3") == ["B", "x.mp3"]
    for bad in ("/music", "/musicx/a.mp3", "/music/../etc/passwd", "/etc/passwd"):
        with pytest.raises(ValueError):
            parts_inside("/music", bad)
