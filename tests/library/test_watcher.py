"""The file watcher (real inotify events) and removable-drive availability polling."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mutagen
import pytest

from taperoom.db import transaction
from taperoom.errors import Conflict
from taperoom.events import Event
from taperoom.library import models
from taperoom.library.context import LibraryContext, open_context
from tests.library.test_scanner import (
    SMALL,
    TAGGED,
    Recorder,
    add_directory,
    copy_corpus,
    directory,
    tracks,
)

DEADLINE = 15.0


def eventually(check: Callable[[], Any], timeout: float = DEADLINE) -> Any:
    """Poll `check` until it returns a truthy value (or fail after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def watch_ctx(lib_settings: Callable[..., Any]) -> Iterator[LibraryContext]:
    """A context with the watcher enabled, 200 ms debounce and 0.2 s availability polling."""
    ctx = open_context(lib_settings(file_watcher_enabled=True, file_watcher_debounce=200,
                                    availability_poll_seconds=0.2))
    yield ctx
    ctx.close()


def test_watcher_applies_add_modify_move_delete(watch_ctx: LibraryContext, corpus: Path,
                                               tmp_path: Path) -> None:
    """Added, re-tagged, renamed and deleted files reach the database within seconds."""
    ctx = watch_ctx
    root = tmp_path / "lib"
    root.mkdir()
    did = add_directory(ctx, root)
    assert ctx.watcher.start_all() == 1
    rec = Recorder(ctx)

    # add: a real tagged file copied in
    name = "04 - Muldjord - Mutilated Mime.ogg"
    shutil.copyfile(corpus / TAGGED / name, root / name)
    added = eventually(lambda: tracks(ctx, did).get(name))
    assert added.title == "Mutilated Mime" and added.bpm == 180.0 and added.file_hash
    assert [e["trackId"] for e in rec.named(Event.TRACK_ADDED)] == [added.id]

    # modify: re-tag in place
    audio = mutagen.File(root / name)
    audio["title"] = "Mutilated Mime (VIP)"
    audio.save()
    changed = eventually(lambda: (t := tracks(ctx, did).get(name))
                         and t.title == "Mutilated Mime (VIP)" and t)
    assert changed.id == added.id and changed.file_hash == added.file_hash

    # move/rename into a new sub-folder: same id
    (root / "sets").mkdir()
    (root / name).rename(root / "sets" / "mime.ogg")
    moved = eventually(lambda: tracks(ctx, did).get("sets/mime.ogg"))
    assert moved.id == added.id and name not in tracks(ctx, did)
    assert rec.named(Event.TRACK_MOVED)[-1]["trackId"] == added.id

    # a whole folder moved in at once
    crate = tmp_path / "crate"
    crate.mkdir()
    shutil.copyfile(corpus / SMALL, crate / "one.mp3")
    shutil.copyfile(corpus / TAGGED / "09 - Maxstack - Aberrations.mp3", crate / "two.mp3")
    crate.rename(root / "crate")
    eventually(lambda: {"crate/one.mp3", "crate/two.mp3"} <= set(tracks(ctx, did)))

    # delete: missing, not deleted
    (root / "sets" / "mime.ogg").unlink()
    gone = eventually(lambda: (t := tracks(ctx, did).get("sets/mime.ogg")) and t.is_missing and t)
    assert gone.id == added.id and gone.missing_since is not None
    assert rec.named(Event.TRACK_MISSING)[-1]["trackId"] == added.id
    eventually(lambda: directory(ctx, did).total_missing == 1)

    # non-audio files are ignored
    (root / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    time.sleep(0.6)
    assert set(tracks(ctx, did)) == {"sets/mime.ogg", "crate/one.mp3", "crate/two.mp3"}
    status = ctx.watcher.status()
    assert status["activeCount"] == 1 and status["availabilityPolling"] is True
    assert status["watchers"][0]["directoryId"] == did and status["watchers"][0]["available"]


def test_burst_of_changes_is_coalesced(watch_ctx: LibraryContext, corpus: Path,
                                       tmp_path: Path) -> None:
    """Many files written in a burst are applied together: every track added exactly once."""
    ctx = watch_ctx
    root = tmp_path / "lib"
    root.mkdir()
    did = add_directory(ctx, root)
    ctx.watcher.watch(did)
    rec = Recorder(ctx)
    for i in range(40):
        shutil.copyfile(corpus / SMALL, root / f"burst {i:02d}.mp3")
    eventually(lambda: len(tracks(ctx, did)) == 40)
    time.sleep(0.5)
    assert len(rec.named(Event.TRACK_ADDED)) == 40
    assert not rec.named(Event.SCAN_STARTED)  # watcher updates are not scans


def test_removable_drive_disconnect_and_reconnect(watch_ctx: LibraryContext, corpus: Path,
                                                  tmp_path: Path) -> None:
    """Unplugging marks the folder unavailable and its tracks missing; replugging restores them."""
    ctx = watch_ctx
    root = copy_corpus(corpus, tmp_path / "USBSTICK")
    did = add_directory(ctx, root, is_removable=True)
    ctx.scans.scan_sync(did, "hybrid")
    ids = {k: t.id for k, t in tracks(ctx, did).items()}
    assert len(ids) == 32
    ctx.watcher.start_all()
    rec = Recorder(ctx)

    root.rename(tmp_path / "unplugged")  # what unplugging looks like to the path
    eventually(lambda: not directory(ctx, did).is_available)
    rows = tracks(ctx, did)
    assert all(t.is_missing and t.missing_since is not None for t in rows.values())
    d = directory(ctx, did)
    assert (d.total_tracks, d.total_missing) == (0, 32)
    # the event follows the commit that marked the folder unavailable
    disc = eventually(lambda: rec.named(Event.MEDIA_DISCONNECTED))
    assert len(disc) == 1
    assert {k: disc[0][k] for k in ("directoryId", "path", "name", "tracksMissing")} == {
        "directoryId": did, "path": str(root), "name": "USBSTICK", "tracksMissing": 32}
    assert ctx.watcher.status()["activeCount"] == 0  # nothing to watch while unplugged

    (tmp_path / "unplugged").rename(root)
    eventually(lambda: directory(ctx, did).is_available)
    eventually(lambda: directory(ctx, did).total_missing == 0)
    ctx.scans.wait(did, timeout=DEADLINE)
    rows = tracks(ctx, did)
    assert {k: t.id for k, t in rows.items()} == ids  # same tracks, same ids
    assert not any(t.is_missing for t in rows.values())
    conn = eventually(lambda: rec.named(Event.MEDIA_CONNECTED))
    assert [(c["directoryId"], c["path"]) for c in conn] == [(did, str(root))]
    complete = eventually(lambda: rec.named(Event.SCAN_COMPLETE))
    result = complete[-1]["result"]
    assert result["strategy"] == "hybrid" and result["filesFound"] == 32
    assert result["tracksAdded"] == 0 and result["tracksUpdated"] == 0
    assert result["tracksMissing"] == 0
    # the watch resumed: a new file on the drive is picked up again
    eventually(lambda: ctx.watcher.status()["activeCount"] == 1)
    shutil.copyfile(corpus / SMALL, root / "after replug.mp3")
    eventually(lambda: "after replug.mp3" in tracks(ctx, did))


def test_check_availability_on_demand(watch_ctx: LibraryContext, corpus: Path,
                                      tmp_path: Path) -> None:
    """check_availability reports and applies a change for one folder without the poller."""
    ctx = watch_ctx
    root = tmp_path / "share"
    root.mkdir()
    shutil.copyfile(corpus / SMALL, root / "a.mp3")
    did = add_directory(ctx, root)
    ctx.scans.scan_sync(did, "fast")
    assert ctx.watcher.check_availability(did) == []
    shutil.rmtree(root)
    assert ctx.watcher.check_availability(did) == [
        {"directoryId": did, "available": False, "tracksMissing": 1}]
    with ctx.sessions() as session:
        d = session.get(models.LibraryDirectory, did)
        assert d is not None and d.is_available is False
    # scanning an unavailable folder is refused instead of marking anything
    with pytest.raises(Conflict, match="not available"):
        ctx.scans.start(did)


def test_refresh_follows_a_relocated_folder(watch_ctx: LibraryContext, corpus: Path,
                                            tmp_path: Path) -> None:
    """After a folder's path changes, refresh() watches the new path and drops the old one."""
    ctx = watch_ctx
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    did = add_directory(ctx, old)
    ctx.watcher.watch(did)
    with transaction(ctx.sessions) as session:
        d = session.get(models.LibraryDirectory, did)
        assert d is not None
        d.path = str(new)
    ctx.watcher.refresh(did)
    assert ctx.watcher.status()["watchers"][0]["directoryPath"] == str(new)
    shutil.copyfile(corpus / SMALL, old / "ignored.mp3")
    shutil.copyfile(corpus / SMALL, new / "seen.mp3")
    eventually(lambda: "seen.mp3" in tracks(ctx, did))
    time.sleep(0.5)
    assert set(tracks(ctx, did)) == {"seen.mp3"}
