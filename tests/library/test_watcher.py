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
from taperoom.library.context import LibraryServices, build_services
from tests.library.test_scanner import (
    SMALL,
    TAGGED,
    Recorder,
    add_directory,
    copy_corpus,
    directory,
    tracks,
)
from tests.polling import wait_for

DEADLINE = 15.0


@pytest.fixture
def watch_ctx(lib_settings: Callable[..., Any]) -> Iterator[LibraryServices]:
    """A context with the watcher enabled, 200 ms debounce and 0.2 s availability polling."""
    ctx = build_services(lib_settings(file_watcher_enabled=True, file_watcher_debounce=200,
                                    availability_poll_seconds=0.2))
    yield ctx
    ctx.close()


def test_watcher_applies_add_modify_move_delete(watch_ctx: LibraryServices, corpus: Path,
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
    added = wait_for(lambda: tracks(ctx, did).get(name), DEADLINE, "the copied file's track")
    assert added.title == "Mutilated Mime" and added.bpm == 180.0 and added.file_hash
    wait_for(lambda: [e["trackId"] for e in rec.named(Event.TRACK_ADDED)] == [added.id],
             DEADLINE, "track:added")

    # modify: re-tag in place
    audio = mutagen.File(root / name)
    audio["title"] = "Mutilated Mime (VIP)"
    audio.save()
    changed = wait_for(lambda: (t := tracks(ctx, did).get(name))
                       and t.title == "Mutilated Mime (VIP)" and t, DEADLINE, "the new title")
    assert changed.id == added.id and changed.file_hash == added.file_hash

    # move/rename into a new sub-folder: same id
    (root / "sets").mkdir()
    (root / name).rename(root / "sets" / "mime.ogg")
    moved = wait_for(lambda: tracks(ctx, did).get("sets/mime.ogg"), DEADLINE,
                     "the moved track")
    assert moved.id == added.id and name not in tracks(ctx, did)
    # the event follows the commit: wait for it as for the row
    wait_for(lambda: [e["trackId"] for e in rec.named(Event.TRACK_MOVED)][-1:] == [added.id],
             DEADLINE, "track:moved")

    # a whole folder moved in at once
    crate = tmp_path / "crate"
    crate.mkdir()
    shutil.copyfile(corpus / SMALL, crate / "one.mp3")
    shutil.copyfile(corpus / TAGGED / "09 - Maxstack - Aberrations.mp3", crate / "two.mp3")
    crate.rename(root / "crate")
    wait_for(lambda: {"crate/one.mp3", "crate/two.mp3"} <= set(tracks(ctx, did)), DEADLINE,
             "the tracks of the folder moved in")

    # delete: missing, not deleted
    (root / "sets" / "mime.ogg").unlink()
    gone = wait_for(lambda: (t := tracks(ctx, did).get("sets/mime.ogg")) and t.is_missing and t,
                    DEADLINE, "the deleted file's track to be missing")
    assert gone.id == added.id and gone.missing_since is not None
    wait_for(lambda: [e["trackId"] for e in rec.named(Event.TRACK_MISSING)][-1:] == [added.id],
             DEADLINE, "track:missing")
    wait_for(lambda: directory(ctx, did).total_missing == 1, DEADLINE, "one missing track")

    # non-audio files are ignored
    (root / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    time.sleep(0.6)
    assert set(tracks(ctx, did)) == {"sets/mime.ogg", "crate/one.mp3", "crate/two.mp3"}
    status = ctx.watcher.status()
    assert status["activeCount"] == 1 and status["availabilityPolling"] is True
    assert status["watchers"][0]["directoryId"] == did and status["watchers"][0]["available"]


def test_burst_of_changes_is_coalesced(watch_ctx: LibraryServices, corpus: Path,
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
    wait_for(lambda: len(tracks(ctx, did)) == 40, DEADLINE, "40 tracks")
    time.sleep(0.5)
    assert len(rec.named(Event.TRACK_ADDED)) == 40
    assert not rec.named(Event.SCAN_STARTED)  # watcher updates are not scans


def test_removable_drive_disconnect_and_reconnect(watch_ctx: LibraryServices, corpus: Path,
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
    wait_for(lambda: not directory(ctx, did).is_available, DEADLINE, "the folder to be unavailable")
    rows = tracks(ctx, did)
    assert all(t.is_missing and t.missing_since is not None for t in rows.values())
    d = directory(ctx, did)
    assert (d.total_tracks, d.total_missing) == (0, 32)
    # the event follows the commit that marked the folder unavailable
    disc = wait_for(lambda: rec.named(Event.MEDIA_DISCONNECTED), DEADLINE,
                    "the disconnected event")
    assert len(disc) == 1
    assert {k: disc[0][k] for k in ("directoryId", "path", "name", "tracksMissing")} == {
        "directoryId": did, "path": str(root), "name": "USBSTICK", "tracksMissing": 32}
    assert ctx.watcher.status()["activeCount"] == 0  # nothing to watch while unplugged

    (tmp_path / "unplugged").rename(root)
    wait_for(lambda: directory(ctx, did).is_available, DEADLINE, "the folder to be available")
    wait_for(lambda: directory(ctx, did).total_missing == 0, DEADLINE, "no missing track")
    ctx.scans.wait(did, timeout=DEADLINE)
    rows = tracks(ctx, did)
    assert {k: t.id for k, t in rows.items()} == ids  # same tracks, same ids
    assert not any(t.is_missing for t in rows.values())
    conn = wait_for(lambda: rec.named(Event.MEDIA_CONNECTED), DEADLINE, "the connected event")
    assert [(c["directoryId"], c["path"]) for c in conn] == [(did, str(root))]
    complete = wait_for(lambda: rec.named(Event.SCAN_COMPLETE), DEADLINE,
                        "the scan complete event")
    result = complete[-1]["result"]
    assert result["strategy"] == "hybrid" and result["filesFound"] == 32
    assert result["tracksAdded"] == 0 and result["tracksUpdated"] == 0
    assert result["tracksMissing"] == 0
    # the watch resumed: a new file on the drive is picked up again
    wait_for(lambda: ctx.watcher.status()["activeCount"] == 1, DEADLINE, "one active watch")
    shutil.copyfile(corpus / SMALL, root / "after replug.mp3")
    wait_for(lambda: "after replug.mp3" in tracks(ctx, did), DEADLINE, "the new file's track")


def test_check_availability_on_demand(watch_ctx: LibraryServices, corpus: Path,
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
    with ctx.db() as session:
        d = session.get(models.LibraryDirectory, did)
        assert d is not None and d.is_available is False
    # scanning an unavailable folder is refused instead of marking anything
    with pytest.raises(Conflict, match="not available"):
        ctx.scans.start(did)


def test_refresh_follows_a_relocated_folder(watch_ctx: LibraryServices, corpus: Path,
                                            tmp_path: Path) -> None:
    """After a folder's path changes, refresh() watches the new path and drops the old one."""
    ctx = watch_ctx
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    did = add_directory(ctx, old)
    ctx.watcher.watch(did)
    with transaction(ctx.db) as session:
        d = session.get(models.LibraryDirectory, did)
        assert d is not None
        d.path = str(new)
    ctx.watcher.refresh(did)
    assert ctx.watcher.status()["watchers"][0]["directoryPath"] == str(new)
    shutil.copyfile(corpus / SMALL, old / "ignored.mp3")
    shutil.copyfile(corpus / SMALL, new / "seen.mp3")
    wait_for(lambda: "seen.mp3" in tracks(ctx, did), DEADLINE, "the new folder's track")
    time.sleep(0.5)
    assert set(tracks(ctx, did)) == {"seen.mp3"}


# --------------------------------------------------------------------------- folder policy


def test_refused_folder_from_an_older_database_is_listed_not_watched_nor_scanned(
        watch_ctx: LibraryServices, tmp_path: Path) -> None:
    """A row for ``/etc`` (accepted by an older version) loads, but is never watched or scanned."""
    ctx = watch_ctx
    etc = add_directory(ctx, Path("/etc"))
    music = tmp_path / "music"
    music.mkdir()
    good = add_directory(ctx, music)
    assert ctx.watcher.start_all() == 1
    status = ctx.watcher.status()
    assert [w["directoryId"] for w in status["watchers"]] == [good]
    assert not ctx.watcher.is_watching(etc)
    [entry] = status["refused"]
    assert (entry["directoryId"], entry["directoryPath"]) == (etc, "/etc")
    assert entry["message"].startswith("Refused as a library folder: /etc is a system folder")
    with pytest.raises(Conflict, match=r"^Refused as a library folder: /etc"):
        ctx.watcher.watch(etc)
    with pytest.raises(Conflict, match=r"^Refused as a library folder: /etc"):
        ctx.scans.start(etc)
    with pytest.raises(Conflict, match=r"^Refused as a library folder: /etc"):
        ctx.directories.browse(etc, None)
    assert [d.id for d in ctx.directories.list_directories() if d.id == etc] == [etc]
    ctx.directories.delete_directory(etc)  # the way out: remove it (or move it, or allow it)
    assert ctx.watcher.status()["refused"] == []


# --------------------------------------------------------------------------- watch cap


def make_tree(root: Path, folders: int, per_folder: int = 10) -> None:
    """`folders` real sub-folders below `root`, `per_folder` to a parent folder."""
    for i in range(folders):
        (root / f"a{i // per_folder:03d}" / f"b{i % per_folder:03d}").mkdir(parents=True)


def test_folder_over_the_watch_cap_falls_back_to_polling(lib_settings: Callable[..., Any],
                                                        corpus: Path, tmp_path: Path) -> None:
    """Past FILE_WATCHER_MAX_WATCHES a folder is polled (and says so); smaller ones use inotify."""
    ctx = build_services(lib_settings(file_watcher_enabled=True, file_watcher_debounce=200,
                                    availability_poll_seconds=0.2, file_watcher_max_watches=12,
                                    file_watcher_poll_seconds=0.3))
    try:
        big, small = tmp_path / "big", tmp_path / "small"
        make_tree(big, 40)  # 40 + 4 parents + the root = 45 folders
        make_tree(small, 3)  # 3 + 1 + 1 = 5 folders
        big_id, small_id = add_directory(ctx, big), add_directory(ctx, small)
        ctx.watcher.watch(small_id)  # one after the other: the small one takes 5 watches first
        ctx.watcher.watch(big_id)
        by_id = {w["directoryId"]: w for w in ctx.watcher.status()["watchers"]}
        assert by_id[small_id]["mode"] == "inotify" and by_id[small_id]["watches"] == 5
        assert by_id[small_id]["message"] is None and by_id[small_id]["available"] is True
        polled = by_id[big_id]
        assert polled["mode"] == "polling" and polled["available"] is True
        assert polled["watches"] == 0 and polled["folders"] == 8  # counting stopped there
        assert "more folders than the 7 inotify watches left" in polled["message"]
        assert "FILE_WATCHER_MAX_WATCHES" in polled["message"]
        assert "every 0.3 s" in polled["message"]
        status = ctx.watcher.status()
        assert (status["watchLimit"], status["watchesUsed"]) == (12, 5)

        # the polled folder still picks up changes, deep down; so does the watched one
        shutil.copyfile(corpus / SMALL, big / "a003" / "b007" / "deep.mp3")
        shutil.copyfile(corpus / SMALL, small / "top.mp3")
        wait_for(lambda: "a003/b007/deep.mp3" in tracks(ctx, big_id), DEADLINE,
                 "the deep file in the polled folder")
        wait_for(lambda: "top.mp3" in tracks(ctx, small_id), DEADLINE,
                 "the file in the watched folder")
        (big / "a003" / "b007" / "deep.mp3").unlink()
        wait_for(lambda: tracks(ctx, big_id)["a003/b007/deep.mp3"].is_missing, DEADLINE,
                 "the deleted deep file to be missing")

        # unwatching the small folder frees its watches
        ctx.watcher.unwatch(small_id)
        assert ctx.watcher.status()["watchesUsed"] == 0
    finally:
        ctx.close()


def test_watch_cap_never_exceeds_the_kernel_limit(lib_settings: Callable[..., Any]) -> None:
    """Whatever the setting says, a margin of the kernel's max_user_watches stays free."""
    kernel = int(Path("/proc/sys/fs/inotify/max_user_watches").read_text())
    ctx = build_services(lib_settings(file_watcher_max_watches=10**9))
    try:
        limit = ctx.watcher.status()["watchLimit"]
        assert 0 < limit <= kernel - 1024
    finally:
        ctx.close()


# --------------------------------------------------------------------------- responsiveness

#: Seconds any route, and a SIGTERM, may take whatever the watcher is doing.
BOUND = 10.0


def fan_out(root: Path, levels: int) -> None:
    """A chain of `levels` real folders, each reachable from its parent by name and two links.

    A walk that follows links sees 3**levels folders, as a walk of ``/`` sees a
    huge tree; there are only `levels` real ones (so few inotify watches).
    """
    here = root
    here.mkdir(parents=True)
    for i in range(levels):
        nxt = here / f"l{i:02d}"
        nxt.mkdir()
        (here / f"x{i:02d}").symlink_to(nxt.name)
        (here / f"y{i:02d}").symlink_to(nxt.name)
        here = nxt


@pytest.mark.slow
def test_routes_and_sigterm_answer_in_seconds_while_huge_watches_are_set_up(
        tmp_path: Path, corpus: Path, server_process: Callable[..., Any]) -> None:
    """A real server: adding, watching, unwatching and removing folders whose link-following
    walk never ends, or that hold more folders than the watch cap, answers within seconds;
    so does SIGTERM, and a restart with those folders in the database."""
    import signal

    import httpx

    crate, loop = tmp_path / "crate", tmp_path / "loop"
    fan_out(crate / "links", 24)
    make_tree(crate / "shelves", 1500)  # more folders than the cap: polled
    fan_out(loop, 24)  # few real folders: watched by inotify, links not followed
    env = {"DATABASE_PATH": str(tmp_path / "data" / "library.db"),
           "FILE_WATCHER_ENABLED": "true", "SCAN_ON_STARTUP": "false",
           "FILE_WATCHER_MAX_WATCHES": "1000", "FILE_WATCHER_POLL_SECONDS": "2",
           "AVAILABILITY_POLL_SECONDS": "1"}

    def timed(client: httpx.Client, method: str, url: str, **kw: Any) -> httpx.Response:
        start = time.monotonic()
        r = client.request(method, url, **kw)
        took = time.monotonic() - start
        assert took < BOUND, f"{method} {url} took {took:.1f} s"
        assert r.status_code < 300, r.text
        return r

    def modes(client: httpx.Client) -> dict[str, str]:
        status = timed(client, "GET", "/api/watcher/status").json()["data"]
        return {w["directoryPath"]: w["mode"] for w in status["watchers"]}

    def sigterm(srv: Any) -> None:
        start = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(BOUND)  # raises TimeoutExpired when the server does not stop
        assert time.monotonic() - start < BOUND

    srv = server_process(["library", "serve"], env)
    with httpx.Client(base_url=srv.url, timeout=BOUND) as client:
        ids = {}
        for path in (crate, loop):
            r = timed(client, "POST", "/api/library/directories",
                      json={"path": str(path), "follow_symlinks": True})
            ids[path] = r.json()["data"]["id"]
        wait_for(lambda: modes(client) == {str(crate): "polling", str(loop): "inotify"},
                 DEADLINE, "polling for the crate, inotify for the loop")
        status = timed(client, "GET", "/api/watcher/status").json()["data"]
        by_path = {w["directoryPath"]: w for w in status["watchers"]}
        assert "symbolic link" in by_path[str(loop)]["message"]
        assert by_path[str(loop)]["watches"] == 25
        for did in ids.values():
            timed(client, "POST", f"/api/watcher/stop/{did}")
            timed(client, "POST", f"/api/watcher/start/{did}")
        timed(client, "POST", "/api/watcher/stop-all")
        assert timed(client, "POST", "/api/watcher/start-all").json()["count"] == 2
        timed(client, "DELETE", f"/api/library/directories/{ids[crate]}")
        r = timed(client, "POST", "/api/library/directories",
                  json={"path": str(crate), "follow_symlinks": True})
        timed(client, "GET", "/api/watcher/status")
    sigterm(srv)

    # a restart with both folders in the database starts, watches them and stops again
    srv = server_process(["library", "serve"], env)
    with httpx.Client(base_url=srv.url, timeout=BOUND) as client:
        wait_for(lambda: modes(client) == {str(crate): "polling", str(loop): "inotify"},
                 DEADLINE, "polling for the crate, inotify for the loop")
        sigterm(srv)
