"""File operations cut short by a crash are finished or undone when the library reopens.

Each state a crash can leave is made by running the real steps of
:class:`taperoom.library.fileops.FileOperations` up to that point on a real
database and real files, then opening the library again; a last test kills a
process that moves files with ``SIGKILL`` at random instants.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from taperoom.confined import open_folder
from taperoom.library.context import build_services
from taperoom.library.recovery import DELETE_SUFFIX, PART_SUFFIX, hidden_siblings
from tests.library.test_fileops import (
    MP3,
    OGG,
    add_library,
    add_track,
    copy_in,
    get_track,
    operations,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def reopen(lib_settings: Callable[..., Any]) -> Iterator[Callable[[Any], Any]]:
    """Close a library context and open the same database again (a restart)."""
    opened: list[Any] = []

    def again(ctx: Any) -> Any:
        ctx.close()
        new = build_services(lib_settings())
        opened.append(new)
        return new

    yield again
    for ctx in opened:
        ctx.close()


@pytest.fixture
def ctx(lib_settings: Callable[..., Any]) -> Any:
    """A library context the test closes itself (through `reopen`)."""
    return build_services(lib_settings())


@pytest.fixture
def one(tmp_path: Path, ctx: Any, corpus: Path) -> dict[str, Any]:
    """A library folder with one real MP3 track and an empty ``Sorted`` folder."""
    root = tmp_path / "music"
    lib_id = add_library(ctx, root)
    f = copy_in(corpus, MP3, root / "Artist" / MP3)
    (root / "Sorted").mkdir()
    return {"root": root, "id": lib_id, "file": f, "track": add_track(ctx, f, lib_id, root),
            "dst": root / "Sorted" / MP3}


def start(ctx: Any, one: dict[str, Any], kind: str = "move") -> int:
    """Log the operation as the real code does before it touches the disk."""
    new = None if kind == "delete" else str(one["dst"])
    op_id, _ = ctx.fileops._log_start(kind, one["track"], str(one["file"]), new, one["id"],
                                      None if kind == "delete" else one["id"])
    return int(op_id)


def relocate(ctx: Any, one: dict[str, Any]) -> None:
    """The disk step of the real move or rename, from the track's file to ``one["dst"]``."""
    root = one["root"]
    src, dst = one["file"], one["dst"]
    with open_folder(root, src.parent.relative_to(root).parts) as a, \
            open_folder(root, dst.parent.relative_to(root).parts) as b:
        ctx.fileops._relocate(a, src.name, b, dst.name, {})


def status(ctx: Any, op_id: int) -> str:
    [op] = [o for o in operations(ctx) if o.id == op_id]
    return str(op.status)


def test_move_logged_but_not_started_is_marked_failed(ctx: Any, one: dict[str, Any],
                                                      reopen: Callable[[Any], Any]) -> None:
    """Killed after logging, before the disk changed: nothing moves, the row fails."""
    op_id = start(ctx, one)
    ctx = reopen(ctx)
    assert ctx.recovery.undone == [op_id]
    assert status(ctx, op_id) == "failed"
    assert one["file"].is_file() and not one["dst"].exists()
    assert get_track(ctx, one["track"]).file_path == str(one["file"])


def test_move_done_on_disk_is_finished_in_the_database(ctx: Any, one: dict[str, Any],
                                                       reopen: Callable[[Any], Any]) -> None:
    """Killed after the rename, before the database step: the track follows its file."""
    op_id = start(ctx, one)
    relocate(ctx, one)
    ctx = reopen(ctx)
    assert ctx.recovery.completed == [op_id]
    assert status(ctx, op_id) == "completed"
    row = get_track(ctx, one["track"])
    assert row.file_path == str(one["dst"])
    assert row.relative_path == f"Sorted/{MP3}"
    assert row.library_directory_id == one["id"] and not row.is_missing
    assert one["dst"].is_file() and not one["file"].exists()


def test_move_cut_between_link_and_unlink_is_undone(ctx: Any, one: dict[str, Any],
                                                    reopen: Callable[[Any], Any]) -> None:
    """Killed with both names on one file (hard link made, source not unlinked)."""
    op_id = start(ctx, one)
    os.link(one["file"], one["dst"])
    ctx = reopen(ctx)
    assert ctx.recovery.undone == [op_id]
    assert ctx.recovery.removed == [str(one["dst"])]
    assert one["file"].is_file() and not one["dst"].exists()
    assert get_track(ctx, one["track"]).file_path == str(one["file"])


def test_cross_drive_copy_and_partial_copy_are_removed(ctx: Any, one: dict[str, Any],
                                                       reopen: Callable[[Any], Any]) -> None:
    """Killed after a cross-drive copy was published (and with a partial copy left)."""
    op_id = start(ctx, one)
    shutil.copy2(one["file"], one["dst"])
    part = one["dst"].with_name(f".{MP3}.1a2b3c4d{PART_SUFFIX}")
    part.write_bytes(one["file"].read_bytes()[:1000])
    ctx = reopen(ctx)
    assert ctx.recovery.undone == [op_id]
    assert sorted(ctx.recovery.removed) == sorted([str(one["dst"]), str(part)])
    assert one["file"].is_file() and not one["dst"].exists() and not part.exists()
    assert get_track(ctx, one["track"]).file_path == str(one["file"])


def test_differing_file_at_the_target_is_left_alone(ctx: Any, one: dict[str, Any],
                                                    corpus: Path,
                                                    reopen: Callable[[Any], Any]) -> None:
    """A file at the target that is not a copy of the track is never deleted."""
    op_id = start(ctx, one)
    copy_in(corpus, OGG, one["dst"])
    before = one["dst"].read_bytes()
    ctx = reopen(ctx)
    assert ctx.recovery.left == [op_id] and ctx.recovery.removed == []
    assert status(ctx, op_id) == "failed"
    assert one["dst"].read_bytes() == before and one["file"].is_file()


def test_rename_done_on_disk_is_finished(ctx: Any, one: dict[str, Any],
                                         reopen: Callable[[Any], Any]) -> None:
    """A rename is recovered like a move."""
    one["dst"] = one["file"].with_name("Renamed.mp3")
    op_id = start(ctx, one, "rename")
    relocate(ctx, one)
    ctx = reopen(ctx)
    assert ctx.recovery.completed == [op_id]
    assert get_track(ctx, one["track"]).file_path == str(one["dst"])


def test_delete_cut_after_hiding_the_file_gives_it_back(ctx: Any, one: dict[str, Any],
                                                        reopen: Callable[[Any], Any]) -> None:
    """Killed after the file got its hidden name, before the track row was removed."""
    op_id = start(ctx, one, "delete")
    hidden = one["file"].with_name(f".{MP3}.0badf00d{DELETE_SUFFIX}")
    os.rename(one["file"], hidden)
    ctx = reopen(ctx)
    assert ctx.recovery.undone == [op_id]
    assert one["file"].is_file() and not hidden.exists()
    assert get_track(ctx, one["track"]) is not None
    assert status(ctx, op_id) == "failed"


def test_committed_delete_leaves_no_hidden_file(ctx: Any, one: dict[str, Any],
                                                reopen: Callable[[Any], Any]) -> None:
    """Killed after the delete committed, before the hidden file was unlinked."""
    data = one["file"].read_bytes()
    result = ctx.fileops.delete(one["track"], confirm=True)
    hidden = one["file"].with_name(f".{MP3}.0badf00d{DELETE_SUFFIX}")
    hidden.write_bytes(data)  # what the cut left: the file under its hidden name
    ctx = reopen(ctx)
    assert ctx.recovery.removed == [str(hidden)]
    assert not hidden.exists() and not one["file"].exists()
    assert status(ctx, result["operationId"]) == "completed"
    assert get_track(ctx, one["track"]) is None


def swap_for_link(folder: Path, outside: Path) -> None:
    """Replace a library folder by a symbolic link to `outside`."""
    shutil.rmtree(folder)
    folder.symlink_to(outside, target_is_directory=True)


@pytest.mark.backends("sqlite")  # files only: one backend is enough
def test_recovery_does_not_follow_a_target_folder_turned_symlink(
        ctx: Any, one: dict[str, Any], tmp_path: Path, reopen: Callable[[Any], Any]) -> None:
    """A pending move whose target folder became a link to an outside folder holding a
    copy of the track (and a file named like a partial copy): both stay, the row fails."""
    op_id = start(ctx, one)
    outside = tmp_path / "backup"
    outside.mkdir()
    shutil.copy2(one["file"], outside / MP3)
    part = outside / f".{MP3}.1a2b3c4d{PART_SUFFIX}"
    part.write_bytes(b"not ours")
    swap_for_link(one["root"] / "Sorted", outside)
    ctx = reopen(ctx)
    assert ctx.recovery.left == [op_id] and ctx.recovery.removed == []
    assert status(ctx, op_id) == "failed"
    assert sorted(os.listdir(outside)) == sorted([MP3, part.name])
    assert one["file"].is_file()
    assert get_track(ctx, one["track"]).file_path == str(one["file"])


@pytest.mark.backends("sqlite")  # files only: one backend is enough
def test_recovery_does_not_follow_a_source_folder_turned_symlink(
        ctx: Any, one: dict[str, Any], tmp_path: Path, reopen: Callable[[Any], Any]) -> None:
    """A pending delete whose folder became a link: the file named like its hidden
    file in the outside folder is neither renamed nor removed."""
    op_id = start(ctx, one, "delete")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    hidden = outside / f".{MP3}.0badf00d{DELETE_SUFFIX}"
    hidden.write_bytes(b"someone else's")
    swap_for_link(one["root"] / "Artist", outside)
    ctx = reopen(ctx)
    assert ctx.recovery.left == [op_id] and ctx.recovery.removed == []
    assert os.listdir(outside) == [hidden.name]


@pytest.mark.backends("sqlite")  # files only: one backend is enough
def test_cleanup_of_committed_deletes_does_not_follow_symlinks(
        ctx: Any, one: dict[str, Any], tmp_path: Path, reopen: Callable[[Any], Any]) -> None:
    """Hidden files are looked for beside recent deletes only inside the library folder."""
    ctx.fileops.delete(one["track"], confirm=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    hidden = outside / f".{MP3}.0badf00d{DELETE_SUFFIX}"
    hidden.write_bytes(b"someone else's")
    swap_for_link(one["root"] / "Artist", outside)
    ctx = reopen(ctx)
    assert ctx.recovery.removed == [] and os.listdir(outside) == [hidden.name]


@pytest.mark.backends("sqlite")  # files only: one backend is enough
def test_operation_on_an_unplugged_drive_waits_for_it(
        ctx: Any, one: dict[str, Any], tmp_path: Path, reopen: Callable[[Any], Any]) -> None:
    """A pending move whose library folder is missing stays pending (nothing is decided
    about files that cannot be seen), and is recovered once the folder is back."""
    op_id = start(ctx, one)
    away = tmp_path / "unplugged"
    one["root"].rename(away)
    ctx = reopen(ctx)
    assert not ctx.recovery and status(ctx, op_id) == "pending"
    away.rename(one["root"])
    ctx = reopen(ctx)
    assert ctx.recovery.undone == [op_id] and status(ctx, op_id) == "failed"
    assert one["file"].is_file()


def test_hidden_siblings_match_only_their_own_file(tmp_path: Path) -> None:
    """Only ``.<name>.<id><suffix>`` of that exact name is found, glob characters and all."""
    target = tmp_path / "a [1]*.mp3"
    mine = tmp_path / f".a [1]*.mp3.abcd{PART_SUFFIX}"
    for p in (mine, tmp_path / f".a [1]*.mp3x.abcd{PART_SUFFIX}",
              tmp_path / f".a [1]*.mp3.{PART_SUFFIX}", tmp_path / f".b.mp3.abcd{PART_SUFFIX}"):
        p.write_bytes(b"x")
    assert hidden_siblings(target, PART_SUFFIX) == [mine]
    assert hidden_siblings(tmp_path / "gone" / "x.mp3", PART_SUFFIX) == []


# ----------------------------------------------------------------------- kill -9

CHILD = textwrap.dedent("""
    import os, sys
    from taperoom.library.context import build_services
    from taperoom.library.settings import LibrarySettings
    settings = LibrarySettings(_env_file=None, database_path=sys.argv[1],
                               scan_on_startup=False, file_watcher_enabled=False)
    ctx = build_services(settings)
    ids, folders = sys.argv[2].split(","), sys.argv[3].split(",")
    # one operation is logged before the kill can come, however slow the machine
    ctx.fileops.rename(ids[0], f"started {os.getpid()}.mp3")
    print("ready", flush=True)
    i = 0
    while True:
        for n, tid in enumerate(ids):
            if (i + n) % 3 == 2:
                t = ctx.fileops.rename(tid, f"take {i} of {n}.mp3")
            else:
                t = ctx.fileops.move(tid, folders[(i + n) % len(folders)])
        i += 1
""")


@pytest.mark.slow
def test_kill_at_random_instants_leaves_disk_and_database_agreeing(
        tmp_path: Path, lib_settings: Callable[..., Any], corpus: Path) -> None:
    """A process moving and renaming files is killed 12 times; after each restart
    every track's file is where the database says, and nothing else is left."""
    settings = lib_settings()
    ctx = build_services(settings)
    root = tmp_path / "music"
    lib_id = add_library(ctx, root)
    folders = [root / "A", root / "B", root / "C"]
    for f in folders:
        f.mkdir()
    ids = [add_track(ctx, copy_in(corpus, MP3, folders[0] / f"{n}.mp3"), lib_id, root)
           for n in range(3)]
    ctx.close()
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    recovered = 0
    for _ in range(12):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(settings.database_path), ",".join(ids),
             ",".join(map(str, folders))], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.communicate()[1]
        time.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        ctx = build_services(settings)
        try:
            recovered += bool(ctx.recovery)
            ops = operations(ctx)
            assert ops and all(o.status in ("completed", "failed") for o in ops)
            paths = {get_track(ctx, t).file_path for t in ids}
            on_disk = {str(p) for p in root.rglob("*") if p.is_file()}
            assert on_disk == paths, (on_disk ^ paths, ctx.recovery)
            for t in ids:
                assert Path(get_track(ctx, t).file_path).stat().st_size > 0
        finally:
            ctx.close()
    print(f"restarts that had something to recover: {recovered} of 12")
