"""Move, rename and delete of track files through the real HTTP API."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from taperoom.audio.hashing import audio_hash
from taperoom.db import transaction
from taperoom.errors import Busy
from taperoom.fslock import KeyLocks
from taperoom.library import models
from taperoom.library.app import create_app
from taperoom.library.context import build_services
from taperoom.library.recovery import lock_key
from tests.library.busevents import Events

TAGGED = ("scanner", "real_music_tagged")
MP3 = "01 - Muldjord - Armygeddon.mp3"
OGG = "04 - Muldjord - Mutilated Mime.ogg"
UNICODE_MP3 = "09 - Maxstack - Aberrations.mp3"

pytestmark = pytest.mark.backends()


# --------------------------------------------------------------------------- helpers


def copy_in(corpus: Path, name: str, dest: Path) -> Path:
    """Copy a corpus file to `dest` (a file path), writable."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus.joinpath(*TAGGED, name), dest)
    os.chmod(dest, 0o644)
    return dest


def add_library(ctx: Any, path: Path, name: str | None = None) -> str:
    """Insert a library folder row; returns its id."""
    path.mkdir(parents=True, exist_ok=True)
    with transaction(ctx.db) as s:
        d = models.LibraryDirectory(path=str(path), name=name or path.name)
        s.add(d)
        s.flush()
        return d.id


def add_track(ctx: Any, path: Path, library_id: str | None, root: Path | None,
              **fields: Any) -> str:
    """Insert a track row for a real file, as a scan records it (size, mtime, audio hash)."""
    with transaction(ctx.db) as s:
        st = path.stat()
        t = models.Track(file_path=str(path), file_size=st.st_size,
                         file_mtime_ns=fields.pop("file_mtime_ns", st.st_mtime_ns),
                         file_hash=audio_hash(path), library_directory_id=library_id,
                         relative_path=str(path.relative_to(root)) if root else None,
                         title=fields.pop("title", path.stem), **fields)
        s.add(t)
        s.flush()
        return t.id


def get_track(ctx: Any, track_id: str) -> models.Track | None:
    with ctx.db() as s:
        return s.get(models.Track, track_id)


def operations(ctx: Any) -> list[models.FileOperation]:
    with ctx.db() as s:
        return list(s.scalars(select(models.FileOperation).order_by(models.FileOperation.id)))


def refuse(ctx: Any, name: str, when: str, message: str) -> None:
    """Make the database refuse a change of ``tracks`` with `message` (a real trigger).

    `when` is the trigger timing and event, e.g. ``"BEFORE DELETE"``.
    """
    with ctx.engine.begin() as conn:
        if ctx.engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"CREATE TRIGGER {name} {when} ON tracks "
                                 f"BEGIN SELECT RAISE(ABORT, '{message}'); END")
        else:
            conn.exec_driver_sql(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
                                 f"AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$")
            conn.exec_driver_sql(f"CREATE TRIGGER {name} {when} ON tracks FOR EACH ROW "
                                 f"EXECUTE FUNCTION {name}()")




@pytest.fixture
def api(lib_ctx: Any, live_server: Callable[[Any], Any]) -> Iterator[httpx.Client]:
    """HTTP client of the library app on a real socket."""
    with httpx.Client(base_url=str(live_server(create_app(services=lib_ctx)).url),
                      timeout=30) as client:
        yield client


@pytest.fixture
def lib(tmp_path: Path, lib_ctx: Any, corpus: Path) -> dict[str, Any]:
    """One library folder holding one real MP3 track in ``Artist/``."""
    root = tmp_path / "music"
    lib_id = add_library(lib_ctx, root)
    f = copy_in(corpus, MP3, root / "Artist" / MP3)
    tid = add_track(lib_ctx, f, lib_id, root)
    return {"root": root, "id": lib_id, "file": f, "track": tid}


# --------------------------------------------------------------------------- move


def test_move_into_subfolder_updates_disk_db_log_and_events(api: httpx.Client, lib_ctx: Any,
                                                            lib: dict[str, Any]) -> None:
    """A move into an existing subfolder renames on disk, updates the row and logs it."""
    events = Events(lib_ctx)
    (lib["root"] / "Sorted").mkdir()
    r = api.post(f"/api/tracks/{lib['track']}/move",
                   json={"destination_path": str(lib["root"] / "Sorted")})
    assert r.status_code == 200, r.text
    body = r.json()
    new = lib["root"] / "Sorted" / MP3
    assert body["success"] is True and body["message"] == "Track moved successfully"
    assert body["data"]["file_path"] == str(new)
    assert body["data"]["relative_path"] == f"Sorted/{MP3}"
    assert body["data"]["library_directory_id"] == lib["id"]
    assert new.is_file() and not lib["file"].exists()
    row = get_track(lib_ctx, lib["track"])
    assert row is not None and row.file_path == str(new)
    [op] = operations(lib_ctx)
    assert (op.operation_type, op.status, op.old_path, op.new_path) == (
        "move", "completed", str(lib["file"]), str(new))
    assert op.completed_at is not None and body["operation"]["id"] == op.id
    assert events.names() == ["file_operation:started", "file_operation:complete",
                              "track:moved"]
    assert events.of("track:moved")[0] == {"trackId": lib["track"], "oldPath": str(lib["file"]),
                                           "newPath": str(new), "libraryDirectoryId": lib["id"]}


def test_move_creates_missing_subfolders_from_relative_path(api: httpx.Client, lib_ctx: Any,
                                                            lib: dict[str, Any]) -> None:
    """A relative destination is taken inside the track's library folder; new folders are made."""
    r = api.post(f"/api/tracks/{lib['track']}/move",
                   json={"destination_path": "Genres/Metal/2007"})
    assert r.status_code == 200, r.text
    new = lib["root"] / "Genres" / "Metal" / "2007" / MP3
    assert new.is_file() and r.json()["data"]["relative_path"] == f"Genres/Metal/2007/{MP3}"


def test_move_to_full_file_path_renames_as_well(api: httpx.Client, lib_ctx: Any,
                                                lib: dict[str, Any]) -> None:
    """A destination ending in the track's extension is the new file path (original API)."""
    dest = lib["root"] / "New" / "armygeddon (copy).mp3"
    r = api.post(f"/api/tracks/{lib['track']}/move", json={"destination_path": str(dest)})
    assert r.status_code == 200, r.text
    assert dest.is_file() and r.json()["data"]["file_path"] == str(dest)
    r = api.post(f"/api/tracks/{lib['track']}/move",
                   json={"destination_path": str(lib["root"] / "x.flac")})
    assert r.status_code == 400 and "file type" in r.json()["error"]


def test_move_across_library_folders_updates_directory_and_counts(
        api: str, lib_ctx: Any, lib: dict[str, Any], tmp_path: Path) -> None:
    """Moving into another library folder changes library_directory_id and both folders' counts."""
    other = tmp_path / "usb"
    other_id = add_library(lib_ctx, other)
    r = api.post(f"/api/tracks/{lib['track']}/move",
                   json={"destination_path": "Crate", "library_directory_id": other_id})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["library_directory_id"] == other_id
    assert data["file_path"] == str(other / "Crate" / MP3)
    assert data["relative_path"] == f"Crate/{MP3}"
    with lib_ctx.db() as s:
        assert s.get(models.LibraryDirectory, other_id).total_tracks == 1
        assert s.get(models.LibraryDirectory, lib["id"]).total_tracks == 0
    [op] = operations(lib_ctx)
    assert (op.old_library_directory_id, op.new_library_directory_id) == (lib["id"], other_id)


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_move_across_filesystems_copies_verifies_and_removes_source(
        lib_settings: Callable[..., Any], live_server: Callable[[Any], Any], corpus: Path,
        tmp_path: Path) -> None:
    """A move to another filesystem copies, checks the size, then unlinks the source."""
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem at /dev/shm")
    other = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="taperoom-test-"))
    # /dev/shm is a system folder: only LIBRARY_ALLOWED_ROOTS lets it hold music
    lib_ctx = build_services(lib_settings(library_allowed_roots=str(other)))
    try:
        root = tmp_path / "music"
        lib = {"root": root, "file": copy_in(corpus, MP3, root / "Artist" / MP3)}
        lib["track"] = add_track(lib_ctx, lib["file"], add_library(lib_ctx, root), root)
        api = httpx.Client(base_url=str(live_server(create_app(services=lib_ctx)).url), timeout=30)
        other_id = add_library(lib_ctx, other)
        size = lib["file"].stat().st_size
        mtime = lib["file"].stat().st_mtime_ns
        r = api.post(f"/api/tracks/{lib['track']}/move",
                       json={"destination_path": str(other / "Gig")})
        assert r.status_code == 200, r.text
        new = other / "Gig" / MP3
        assert new.stat().st_size == size and new.stat().st_mtime_ns == mtime
        assert not lib["file"].exists()
        assert [p.name for p in (other / "Gig").iterdir()] == [MP3]  # no temporary left
        assert r.json()["data"]["library_directory_id"] == other_id
        assert audio_hash(new) == get_track(lib_ctx, lib["track"]).file_hash
        api.close()
    finally:
        lib_ctx.close()
        shutil.rmtree(other, ignore_errors=True)


def test_move_refuses_to_overwrite(api: httpx.Client, lib_ctx: Any, lib: dict[str, Any],
                                   corpus: Path) -> None:
    """An existing file at the target is a 409; nothing moves and nothing is logged."""
    blocker = copy_in(corpus, OGG, lib["root"] / "Sorted" / MP3)
    before = blocker.read_bytes()
    r = api.post(f"/api/tracks/{lib['track']}/move",
                   json={"destination_path": str(lib["root"] / "Sorted")})
    assert r.status_code == 409 and "already exists" in r.json()["error"]
    assert blocker.read_bytes() == before and lib["file"].is_file()
    assert get_track(lib_ctx, lib["track"]).file_path == str(lib["file"])
    assert operations(lib_ctx) == []


def test_move_refuses_path_of_another_track(api: httpx.Client, lib_ctx: Any, lib: dict[str, Any],
                                            corpus: Path) -> None:
    """A target path that another track row already has is a 409 even if no file is there."""
    other = copy_in(corpus, OGG, lib["root"] / OGG)
    other_id = add_track(lib_ctx, other, lib["id"], lib["root"])
    with transaction(lib_ctx.db) as s:
        s.get(models.Track, other_id).file_path = str(lib["root"] / "Sorted" / MP3)
    other.unlink()
    r = api.post(f"/api/tracks/{lib['track']}/move",
                   json={"destination_path": "Sorted"})
    assert r.status_code == 409 and "Another track" in r.json()["error"]
    assert lib["file"].is_file() and not (lib["root"] / "Sorted").exists()


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_move_refuses_escapes(api: httpx.Client, lib_ctx: Any, lib: dict[str, Any],
                              tmp_path: Path) -> None:
    """``..``, absolute paths outside every library folder and symlinks out are 400s."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (lib["root"] / "link").symlink_to(outside, target_is_directory=True)
    url = f"/api/tracks/{lib['track']}/move"
    for dest in ("../outside", str(lib["root"] / ".." / "outside"), str(outside),
                 "link", "link/deeper", "/etc"):
        r = api.post(url, json={"destination_path": dest})
        assert r.status_code == 400, (dest, r.text)
        assert r.json()["success"] is False
    r = api.post(url, json={"destination_path": str(outside),
                              "library_directory_id": lib["id"]})
    assert r.status_code == 400
    assert lib["file"].is_file() and list(outside.iterdir()) == []
    assert operations(lib_ctx) == []


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_move_refuses_a_system_folder_stored_as_a_library_folder(
        api: httpx.Client, lib_ctx: Any, lib: dict[str, Any]) -> None:
    """A library folder stored before the folder policy (here ``/dev``) takes no moves:
    a move into ``/dev/shm`` below it is a 400 and the file stays where it is."""
    add_library(lib_ctx, Path("/dev"), "dev")
    target = Path("/dev/shm") / f"taperoom-{uuid.uuid4().hex}"
    try:
        r = api.post(f"/api/tracks/{lib['track']}/move",
                     json={"destination_path": f"{target}/"})
        assert r.status_code == 400, r.text
        assert "system folder" in r.json()["error"]
        assert lib["file"].is_file() and not target.exists()
        assert operations(lib_ctx) == []
    finally:
        shutil.rmtree(target, ignore_errors=True)


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_move_bad_requests(api: httpx.Client, lib_ctx: Any, lib: dict[str, Any]) -> None:
    """Unknown ids are 404, malformed ids and bodies 400 (never 500)."""
    url = "/api/tracks"
    r = api.post(f"{url}/{uuid.uuid4()}/move", json={"destination_path": "x"})
    assert r.status_code == 404 and r.json()["error"] == "Track not found"
    r = api.post(f"{url}/{lib['track']}/move",
                   json={"destination_path": "x", "library_directory_id": str(uuid.uuid4())})
    assert r.status_code == 404 and r.json()["error"] == "Library directory not found"
    r = api.post(f"{url}/{lib['track']}/move",
                   json={"destination_path": "x", "library_directory_id": 2})
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "library_directory_id"
    r = api.post(f"{url}/not-a-uuid/move", json={"destination_path": "x"})
    assert r.status_code == 400
    r = api.post(f"{url}/{lib['track']}/move", json={})
    assert r.status_code == 400 and r.json()["error"] == "Validation failed"
    r = api.post(f"{url}/{lib['track']}/move", json={"destination_path": ""})
    assert r.status_code == 400


def test_move_rolls_back_when_database_update_fails(api: httpx.Client, lib_ctx: Any,
                                                    lib: dict[str, Any]) -> None:
    """If the row cannot be updated after the file moved, the file goes back and the log says so."""
    events = Events(lib_ctx)
    refuse(lib_ctx, "refuse_path", "AFTER UPDATE OF file_path", "path change refused")
    r = api.post(f"/api/tracks/{lib['track']}/move",
                   json={"destination_path": "Brand/New"})
    assert r.status_code == 409, r.text
    assert "put back" in r.json()["error"]
    assert lib["file"].is_file()
    assert not (lib["root"] / "Brand").exists()  # folders it made are removed again
    assert get_track(lib_ctx, lib["track"]).file_path == str(lib["file"])
    [op] = operations(lib_ctx)
    assert op.status == "failed" and "path change refused" in op.error_message
    assert op.completed_at is not None
    assert events.names() == ["file_operation:started", "file_operation:failed"]
    assert "put back" in events.of("file_operation:failed")[0]["error"]


# --------------------------------------------------------------------------- rename


def test_rename_keeps_extension_and_handles_unicode(api: httpx.Client, lib_ctx: Any,
                                                    lib: dict[str, Any]) -> None:
    """A new name without extension gets the track's; dots and non-ASCII characters are kept."""
    events = Events(lib_ctx)
    name = "Mr. Oizo – Flat Beat (ünïcödé ☆ 日本語)"
    r = api.post(f"/api/tracks/{lib['track']}/rename", json={"new_name": name})
    assert r.status_code == 200, r.text
    new = lib["root"] / "Artist" / f"{name}.mp3"
    assert r.json()["data"]["file_path"] == str(new)
    assert r.json()["data"]["relative_path"] == f"Artist/{name}.mp3"
    assert r.json()["message"] == "Track renamed successfully"
    assert new.is_file() and not lib["file"].exists()
    [op] = operations(lib_ctx)
    assert (op.operation_type, op.status, op.new_path) == ("rename", "completed", str(new))
    assert events.of("track:moved")[0]["newPath"] == str(new)
    r = api.post(f"/api/tracks/{lib['track']}/rename", json={"new_name": "plain.mp3"})
    assert r.status_code == 200 and r.json()["data"]["file_path"].endswith("/Artist/plain.mp3")


def test_rename_case_only(api: httpx.Client, lib_ctx: Any, lib: dict[str, Any]) -> None:
    """Changing only the letter case renames the file."""
    r = api.post(f"/api/tracks/{lib['track']}/rename",
                   json={"new_name": MP3.upper()[:-4]})
    assert r.status_code == 200, r.text
    names = os.listdir(lib["root"] / "Artist")
    assert names == [MP3.upper()[:-4] + ".mp3"]
    r = api.post(f"/api/tracks/{lib['track']}/rename",
                   json={"new_name": MP3.upper()[:-4] + ".mp3"})
    assert r.status_code == 200 and r.json()["operation"] is None  # same name: nothing to do
    assert r.json()["message"] == "Track already has this name"


def test_rename_rejects_bad_names_and_taken_names(api: httpx.Client, lib_ctx: Any,
                                                  lib: dict[str, Any], corpus: Path) -> None:
    """Separators, dot names, hidden names and another type are 400; a taken name is 409."""
    url = f"/api/tracks/{lib['track']}/rename"
    for bad in ("a/b", "..", ".", "   ", ".hidden", "x\\y", "song.flac", "n" * 300):
        r = api.post(url, json={"new_name": bad})
        assert r.status_code == 400, (bad, r.text)
    assert api.post(url, json={}).status_code == 400
    copy_in(corpus, OGG, lib["root"] / "Artist" / "taken.mp3")
    r = api.post(url, json={"new_name": "taken"})
    assert r.status_code == 409 and "already exists" in r.json()["error"]
    assert lib["file"].is_file() and operations(lib_ctx) == []
    r = api.post(f"/api/tracks/{uuid.uuid4()}/rename", json={"new_name": "x"})
    assert r.status_code == 404


# --------------------------------------------------------------------------- delete


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_delete_requires_confirmation(api: httpx.Client, lib_ctx: Any, lib: dict[str, Any]) -> None:
    """Without ``{"confirm": true}`` nothing is deleted (400)."""
    url = f"/api/tracks/{lib['track']}/file"
    for body in (None, {}, {"confirm": False}, {"confirm": "yes"}):
        r = api.request("DELETE", url, json=body)
        assert r.status_code == 400, (body, r.text)
    assert lib["file"].is_file() and get_track(lib_ctx, lib["track"]) is not None
    r = api.request("DELETE", f"/api/tracks/{uuid.uuid4()}/file", json={"confirm": True})
    assert r.status_code == 404


def test_delete_removes_file_row_playlist_entries_and_cues(api: httpx.Client, lib_ctx: Any,
                                                           lib: dict[str, Any],
                                                           corpus: Path) -> None:
    """Deleting removes the file and the track, closes playlist gaps and logs the operation."""
    events = Events(lib_ctx)
    others = [add_track(lib_ctx, copy_in(corpus, OGG, lib["root"] / f"o{i}.ogg"), lib["id"],
                        lib["root"]) for i in range(2)]
    with transaction(lib_ctx.db) as s:
        p = models.Playlist(name="Set")
        s.add(p)
        s.flush()
        for pos, tid in enumerate([others[0], lib["track"], others[1]]):
            s.add(models.PlaylistTrack(playlist_id=p.id, track_id=tid, position=pos))
        s.add(models.HotCue(track_id=lib["track"], cue_index=0, position=1.0))
        playlist_id = p.id
    r = api.request("DELETE", f"/api/tracks/{lib['track']}/file", json={"confirm": True})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert r.json()["message"] == "Track deleted successfully"
    assert data["fileDeleted"] is True and data["warning"] is None
    assert data["playlistEntriesRemoved"] == 1 and data["hotCuesRemoved"] == 1
    assert not lib["file"].exists() and os.listdir(lib["root"] / "Artist") == []
    assert get_track(lib_ctx, lib["track"]) is None
    with lib_ctx.db() as s:
        rows = s.execute(select(models.PlaylistTrack.track_id, models.PlaylistTrack.position)
                         .where(models.PlaylistTrack.playlist_id == playlist_id)
                         .order_by(models.PlaylistTrack.position)).all()
        assert [tuple(x) for x in rows] == [(others[0], 0), (others[1], 1)]
        assert s.scalar(select(models.HotCue.id)) is None
        assert s.get(models.LibraryDirectory, lib["id"]).total_tracks == 2
    [op] = operations(lib_ctx)
    assert (op.operation_type, op.status, op.old_path) == ("delete", "completed",
                                                           str(lib["file"]))
    assert op.id == data["operationId"]
    assert events.names() == ["file_operation:started", "file_operation:complete",
                              "track:deleted", "playlist:updated"]


def test_delete_of_missing_file_still_removes_track(api: httpx.Client, lib_ctx: Any,
                                                    lib: dict[str, Any]) -> None:
    """A file already gone is not an error: the track is removed, with a warning."""
    lib["file"].unlink()
    r = api.request("DELETE", f"/api/tracks/{lib['track']}/file", json={"confirm": True})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["fileDeleted"] is False
    assert "already missing" in r.json()["data"]["warning"]
    assert get_track(lib_ctx, lib["track"]) is None


def test_delete_rolls_back_when_database_fails(api: httpx.Client, lib_ctx: Any,
                                               lib: dict[str, Any]) -> None:
    """If the row cannot be deleted, the file is restored under its name."""
    refuse(lib_ctx, "keep_tracks", "BEFORE DELETE", "tracks are kept")
    r = api.request("DELETE", f"/api/tracks/{lib['track']}/file", json={"confirm": True})
    assert r.status_code == 409, r.text
    assert lib["file"].is_file() and os.listdir(lib["root"] / "Artist") == [MP3]
    [op] = operations(lib_ctx)
    assert op.status == "failed" and "tracks are kept" in op.error_message


# --------------------------------------------------------------------------- confinement

OPERATIONS = {
    "delete": ("DELETE", "file", {"confirm": True}),
    "rename": ("POST", "rename", {"new_name": "renamed"}),
    "move": ("POST", "move", {"destination_path": "Sorted"}),
}


def outside_copy(lib: dict[str, Any], tmp_path: Path) -> Path:
    """A copy of the track's file outside the library, same name, size and mtime."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / MP3
    shutil.copy2(lib["file"], victim)
    assert victim.stat().st_mtime_ns == lib["file"].stat().st_mtime_ns
    return victim


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
@pytest.mark.parametrize("swap", ["folder", "file"])
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_operations_refuse_symlinks_out_of_the_library(
        api: httpx.Client, lib_ctx: Any, lib: dict[str, Any], tmp_path: Path,
        operation: str, swap: str) -> None:
    """The track's folder (or file) replaced by a symlink to an outside folder (or file):
    delete, rename and move are 409 and leave the outside file where and as it was.

    The outside file is a byte-identical copy with the recorded size and mtime, so
    only the confinement can refuse it.
    """
    victim = outside_copy(lib, tmp_path)
    before = victim.read_bytes()
    if swap == "folder":
        shutil.rmtree(lib["root"] / "Artist")
        (lib["root"] / "Artist").symlink_to(victim.parent, target_is_directory=True)
    else:
        lib["file"].unlink()
        lib["file"].symlink_to(victim)
    method, route, body = OPERATIONS[operation]
    r = api.request(method, f"/api/tracks/{lib['track']}/{route}", json=body)
    assert r.status_code == 409, r.text
    assert "symbolic link" in r.json()["error"]
    assert os.listdir(victim.parent) == [MP3] and victim.read_bytes() == before
    assert os.path.islink(lib["root"] / "Artist" / MP3 if swap == "file"
                          else lib["root"] / "Artist")
    assert not (lib["root"] / "Sorted").exists()
    row = get_track(lib_ctx, lib["track"])
    assert row is not None and row.file_path == str(lib["file"])
    assert operations(lib_ctx) == []


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_symlink_deeper_in_the_path_is_refused_too(api: httpx.Client, lib_ctx: Any,
                                                   tmp_path: Path, corpus: Path) -> None:
    """A link two folders above the file is found as well as one right above it."""
    root = tmp_path / "music"
    lib_id = add_library(lib_ctx, root)
    f = copy_in(corpus, MP3, root / "A" / "B" / MP3)
    tid = add_track(lib_ctx, f, lib_id, root)
    outside = tmp_path / "outside"
    (outside / "B").mkdir(parents=True)
    shutil.copy2(f, outside / "B" / MP3)
    shutil.rmtree(root / "A")
    (root / "A").symlink_to(outside, target_is_directory=True)
    r = api.request("DELETE", f"/api/tracks/{tid}/file", json={"confirm": True})
    assert r.status_code == 409 and "symbolic link" in r.json()["error"], r.text
    assert (outside / "B" / MP3).is_file()


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_library_folder_that_follows_symlinks_lets_operations_follow_them(
        api: httpx.Client, lib_ctx: Any, tmp_path: Path, corpus: Path) -> None:
    """In a library folder set to follow symlinks, a track its scan found through a
    link is renamed and deleted through that link, as the scan sees it."""
    root = tmp_path / "music"
    lib_id = add_library(lib_ctx, root)
    with transaction(lib_ctx.db) as s:
        s.get(models.LibraryDirectory, lib_id).follow_symlinks = True
    elsewhere = tmp_path / "nas" / "Crate"
    f = copy_in(corpus, MP3, elsewhere / MP3)
    (root / "Crate").symlink_to(elsewhere, target_is_directory=True)
    tid = add_track(lib_ctx, root / "Crate" / MP3, lib_id, root)
    r = api.post(f"/api/tracks/{tid}/rename", json={"new_name": "linked"})
    assert r.status_code == 200, r.text
    assert os.listdir(elsewhere) == ["linked.mp3"] and not f.exists()
    r = api.request("DELETE", f"/api/tracks/{tid}/file", json={"confirm": True})
    assert r.status_code == 200, r.text
    assert os.listdir(elsewhere) == [] and get_track(lib_ctx, tid) is None


@pytest.mark.parametrize("swap", ["other file", "same bytes, later mtime"])
def test_delete_refuses_a_file_swapped_since_the_scan(api: httpx.Client, lib_ctx: Any,
                                                      lib: dict[str, Any], corpus: Path,
                                                      swap: str) -> None:
    """A file under the track's name that is not the file the scan recorded (another
    inode with another size or mtime) is not deleted: 409, nothing changed."""
    before = lib["file"].stat()
    replacement = lib["file"].with_name("replacement.tmp")
    if swap == "other file":
        copy_in(corpus, OGG, replacement)
    else:
        shutil.copyfile(lib["file"], replacement)
        os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns + 2_000_000_000))
    os.replace(replacement, lib["file"])
    after = lib["file"].stat()
    assert after.st_ino != before.st_ino
    content = lib["file"].read_bytes()
    r = api.request("DELETE", f"/api/tracks/{lib['track']}/file", json={"confirm": True})
    assert r.status_code == 409, r.text
    assert "changed since" in r.json()["error"]
    assert lib["file"].read_bytes() == content
    assert get_track(lib_ctx, lib["track"]) is not None and operations(lib_ctx) == []


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_file_names_with_control_characters_are_refused(api: httpx.Client, lib_ctx: Any,
                                                        lib: dict[str, Any]) -> None:
    """C0 controls, DEL and C1 controls in a new name or a destination folder are 400."""
    for bad in ("a\nb", "a\rb", "tab\there", "esc\x1b[31m", "nul\x00", "del\x7f",
                "c1\x85next", "csi\x9b"):
        r = api.post(f"/api/tracks/{lib['track']}/rename", json={"new_name": bad})
        assert r.status_code == 400, (bad, r.text)
        assert "control character" in r.json()["error"], r.text
        r = api.post(f"/api/tracks/{lib['track']}/move", json={"destination_path": bad})
        assert r.status_code == 400, (bad, r.text)
        assert "control character" in r.json()["error"], r.text
    assert os.listdir(lib["root"]) == ["Artist"] and lib["file"].is_file()
    assert operations(lib_ctx) == []


# --------------------------------------------------------------------------- queue


def test_concurrent_operations_on_one_file_are_serialised(api: httpx.Client, lib_ctx: Any,
                                                          lib: dict[str, Any]) -> None:
    """Parallel renames and moves of one track run one after another, each on the latest path."""
    names = [f"take {i}" for i in range(8)]
    results: list[httpx.Response] = []
    barrier = threading.Barrier(len(names) + 2)

    def call(route: str, body: dict[str, str]) -> None:
        with httpx.Client(base_url=api.base_url, timeout=30) as client:
            barrier.wait()
            results.append(client.post(f"/api/tracks/{lib['track']}/{route}", json=body))

    threads = [threading.Thread(target=call, args=("rename", {"new_name": n})) for n in names]
    threads += [threading.Thread(target=call, args=("move", {"destination_path": d}))
                for d in ("Box A", "Box B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status_code for r in results] == [200] * 10, [r.text for r in results]
    ops = operations(lib_ctx)
    assert len(ops) == 10 and all(op.status == "completed" for op in ops)
    chain = sorted(ops, key=lambda op: op.id)  # logged under the lock: ids give the order
    for before, after in itertools.pairwise(chain):
        assert after.old_path == before.new_path  # each started where the previous ended
    final = Path(get_track(lib_ctx, lib["track"]).file_path)
    assert final == Path(chain[-1].new_path) and final.is_file()
    audio = [p for p in lib["root"].rglob("*") if p.is_file()]
    assert audio == [final]
    assert len(lib_ctx.fileops.locks) == 0


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_path_locks_block_same_file_only(tmp_path: Path) -> None:
    """One key is held by one thread at a time; other keys are not blocked."""
    locks = KeyLocks(tmp_path / "files.lock")
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def holder() -> None:
        with locks.hold("a", "b"):
            inside.set()
            release.wait(5)
            order.append("first done")

    def same() -> None:
        with locks.hold("b"):
            order.append("second in")

    t1 = threading.Thread(target=holder)
    t1.start()
    assert inside.wait(5)
    t2 = threading.Thread(target=same)
    t2.start()
    with locks.hold("c"):  # an unrelated file is free while "b" is held
        order.append("other file")
    assert locks.busy("a") and locks.busy("b") and not locks.busy("c")
    time.sleep(0.1)
    assert order == ["other file"]
    release.set()
    t1.join(5)
    t2.join(5)
    assert order == ["other file", "first done", "second in"] and len(locks) == 0


@pytest.mark.backends("sqlite")  # files only: one backend is enough
def test_file_locks_hold_across_worker_processes(lib_settings: Callable[..., Any],
                                                 lib: dict[str, Any], lib_ctx: Any) -> None:
    """A second process on the same library (here: a second set of services, with its
    own lock file descriptors, as a worker process has) waits for a file another
    process is moving, and sees it as in progress."""
    other = build_services(lib_settings(), lead=False)
    try:
        key = lock_key(lib["file"])
        renamed = threading.Event()
        with lib_ctx.fileops.locks.hold(key):
            assert other.fileops.in_progress(lib["file"])

            def rename() -> None:
                other.fileops.rename(lib["track"], "second")
                renamed.set()

            t = threading.Thread(target=rename)
            t.start()
            assert not renamed.wait(0.5)  # blocked by the first process's lock
            assert lib["file"].is_file()
        assert renamed.wait(10)
        t.join(5)
        assert not other.fileops.in_progress(lib["file"])
        assert Path(get_track(lib_ctx, lib["track"]).file_path).name == "second.mp3"
    finally:
        other.close()


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_shutdown_refuses_new_operations(lib_ctx: Any, lib: dict[str, Any]) -> None:
    """After shutdown() a new operation is refused with Busy (503)."""
    lib_ctx.fileops.shutdown()
    with pytest.raises(Busy):
        lib_ctx.fileops.rename(lib["track"], "late")
    assert lib["file"].is_file()


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    hidden = [p for p in tmp_path.rglob(".*taperoom-*")]
    assert hidden == []
