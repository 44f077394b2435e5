"""/api/library/directories on a real server, real folders and a real database.

Tracks are inserted through the ORM (the scanner is not needed to exercise
folders, availability, browsing and missing-media handling).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.db import transaction
from taperoom.library.directories import detect_removable
from taperoom.library.models import (
    HotCue,
    LibraryDirectory,
    Playlist,
    PlaylistTrack,
    Track,
    new_id,
    utcnow,
)

pytestmark = pytest.mark.backends()

#: One connection pool for the whole module (a new client per request costs ~0.1 s).
http = httpx.Client(timeout=30)

CORPUS_FILES = (
    "01 - Muldjord - Armygeddon.mp3",
    "04 - Muldjord - Mutilated Mime.ogg",
    "05 - John Garner - Partita No. 1 in B minor: Double (BWV1002) (ünïcödé ☆ 日本語).opus",
    "09 - Maxstack - Aberrations.mp3",
    "12 - Maxstack - By-Product.ogg",
)


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def api(lib_server: Any) -> str:
    """Base URL of the directory routes."""
    return f"{lib_server.url}/api/library/directories"


@pytest.fixture
def events(lib_ctx: Any) -> Any:
    """Every (name, data) sent on the context's event bus during the test."""
    got: list[tuple[str, dict[str, Any]]] = []
    unsubscribe = lib_ctx.bus.subscribe(lambda name, data: got.append((name, data)))
    yield got
    unsubscribe()


def names(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The event names, in order."""
    return [name for name, _ in events]


def copy_music(corpus: Path, root: Path, layout: dict[str, int]) -> dict[str, Path]:
    """Copy corpus files to ``root/<rel>`` for each rel in `layout` (value = corpus index)."""
    src = corpus / "scanner" / "real_music_tagged"
    out = {}
    for rel, index in layout.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / CORPUS_FILES[index], target)
        out[rel] = target
    root.mkdir(parents=True, exist_ok=True)
    return out


def add_track(ctx: Any, directory_id: str, root: Path, rel: str, **fields: Any) -> str:
    """Insert a track row for ``root/rel`` (size from disk when the file exists)."""
    path = root / rel
    values: dict[str, Any] = {
        "id": new_id(), "file_path": str(path), "relative_path": rel,
        "library_directory_id": directory_id,
        "file_size": path.stat().st_size if path.exists() else 1000,
        "file_hash": uuid.uuid4().hex, "title": Path(rel).stem, "duration_seconds": 30.0,
    }
    values.update(fields)
    with transaction(ctx.db) as session:
        session.add(Track(**values))
    return str(values["id"])


def track(ctx: Any, track_id: str) -> Track | None:
    """The track row as stored now, or None."""
    with ctx.db() as session:
        return session.get(Track, track_id)


def create(api: str, path: Path | str, **body: Any) -> dict[str, Any]:
    """POST a folder and return the created directory object (asserting 201)."""
    r = http.post(api, json={"path": str(path), **body})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def assert_error(r: httpx.Response, status: int, error: str | None = None) -> dict[str, Any]:
    """Assert an error envelope with this status (and error text); return the body."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False
    if error is not None:
        assert body["error"] == error
    return body


# --------------------------------------------------------------------------- create / read


def test_create_normalises_path_and_applies_defaults(api, lib_ctx, events, tmp_path,
                                                     monkeypatch) -> None:
    """POST expands ~, strips the trailing slash, names the folder, sets the contract defaults."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "Music").mkdir()
    r = http.post(api, json={"path": "~/Music/"})
    assert r.status_code == 201
    body = r.json()
    assert body["success"] is True
    assert body["message"] == "Library directory created successfully"
    d = body["data"]
    assert str(uuid.UUID(d["id"])) == d["id"]
    assert d["path"] == str((tmp_path / "Music").resolve())
    assert d["name"] == "Music"
    assert (d["is_active"], d["is_removable"], d["is_available"]) == (True, False, True)
    assert (d["recursive_scan"], d["max_depth"], d["follow_symlinks"], d["priority"]) == (
        True, -1, False, 0)
    assert d["scan_patterns"] is None and d["exclude_patterns"] is None
    assert d["scan_status"] == "idle" and d["total_tracks"] == 0
    assert d["date_added"].endswith("Z")
    assert events == [("library:directory:added", {"directoryId": d["id"], "directory": d})]

    listed = http.get(api).json()
    assert listed["success"] is True and listed["count"] == 1 and listed["data"] == [d]
    assert http.get(api + "/").json()["data"] == [d]
    assert http.get(f"{api}/{d['id']}").json() == {"success": True, "data": d}
    assert http.get(f"{api}/{d['id'].upper()}").json()["data"]["id"] == d["id"]


def test_create_with_every_option(api, tmp_path) -> None:
    """All body fields are stored as given, patterns as JSON arrays, booleans as true/false."""
    (tmp_path / "usb").mkdir()
    d = create(api, tmp_path / "usb", name="  USB stick ", is_active=False, is_removable=True,
               recursive_scan=False, max_depth=2, scan_patterns=["*.mp3", "**/*.flac"],
               exclude_patterns=["Samples/**", "[!.]*tmp"], follow_symlinks=True, priority=5)
    assert d["name"] == "USB stick"
    assert (d["is_active"], d["is_removable"], d["recursive_scan"], d["follow_symlinks"]) == (
        False, True, False, True)
    assert (d["max_depth"], d["priority"]) == (2, 5)
    assert d["scan_patterns"] == ["*.mp3", "**/*.flac"]
    assert d["exclude_patterns"] == ["Samples/**", "[!.]*tmp"]


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_create_rejects_bad_input_with_400(api, tmp_path) -> None:
    """Missing/invalid paths and malformed bodies are 400 with a clear message, never 500."""
    assert_error(http.post(api, json={}), 400, "Validation failed")
    assert http.post(api, json={"name": "x"}).json()["details"][0]["message"] == "Field required"
    missing = tmp_path / "nope"
    body = assert_error(http.post(api, json={"path": str(missing)}), 400)
    assert body["error"] == f"Directory does not exist: {missing}"
    (tmp_path / "file.mp3").write_bytes(b"x")
    body = assert_error(http.post(api, json={"path": str(tmp_path / "file.mp3")}), 400)
    assert body["error"].startswith("Path is not a directory")
    assert_error(http.post(api, json={"path": "a\x00b"}), 400)
    assert_error(http.post(api, json={"path": ""}), 400, "Validation failed")
    for bad in ({"max_depth": -2}, {"max_depth": "deep"}, {"priority": "high"},
                {"scan_patterns": ["[abc"]}, {"scan_patterns": [""]},
                {"exclude_patterns": "*.mp3"}, {"scan_patterns": ["a\nb"]},
                {"is_active": "perhaps"}):
        r = http.post(api, json={"path": str(tmp_path), **bad})
        assert_error(r, 400, "Validation failed")
        assert r.json()["details"][0]["field"].split(".")[0] in bad
    r = http.post(api, content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 400, "Validation failed")
    assert http.get(api).json()["count"] == 0


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_root_and_system_folders_are_refused_with_400(api, tmp_path) -> None:
    """``/`` (however spelt, or through a link) and system folders cannot be added or moved to."""
    (tmp_path / "to-root").symlink_to("/")
    (tmp_path / "to-etc").symlink_to("/etc")
    for path in ("/", "//", "/./", "/..", "/../..", str(tmp_path / "to-root")):
        body = assert_error(http.post(api, json={"path": path}), 400)
        assert body["error"].startswith("Refused as a library folder: / is the filesystem root")
    for path, shown in (("/etc", "/etc"), ("/proc", "/proc"), ("/sys", "/sys"),
                        ("/dev", "/dev"), ("/root", "/root"), ("/usr/share", "/usr/share"),
                        (str(tmp_path / "to-etc"), "/etc"), ("/proc/self", None)):
        body = assert_error(http.post(api, json={"path": path}), 400)
        assert body["error"].startswith("Refused as a library folder: "), body
        if shown is not None:
            assert body["error"].startswith(f"Refused as a library folder: {shown} is "), body
        assert "LIBRARY_ALLOWED_ROOTS" in body["error"]
    assert http.get(api).json()["count"] == 0

    (tmp_path / "music").mkdir()
    d = create(api, tmp_path / "music")
    for path in ("/", "/etc", str(tmp_path / "to-root")):
        body = assert_error(http.put(f"{api}/{d['id']}", json={"path": path}), 400)
        assert body["error"].startswith("Refused as a library folder: ")
    assert http.get(f"{api}/{d['id']}").json()["data"]["path"] == d["path"]


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_allowed_roots_setting_admits_a_system_folder(lib_settings, live_server,
                                                      tmp_path) -> None:
    """``LIBRARY_ALLOWED_ROOTS`` lets a system folder in; the rest stays refused."""
    from taperoom.library.app import create_app
    from taperoom.library.context import build_services

    ctx = build_services(lib_settings(library_allowed_roots="/usr/share"))
    try:
        api = f"{live_server(create_app(services=ctx)).url}/api/library/directories"
        d = create(api, "/usr/share/doc")
        assert d["path"] == "/usr/share/doc"
        body = assert_error(http.post(api, json={"path": "/usr/lib"}), 400)
        assert body["error"].startswith("Refused as a library folder: /usr/lib is a system")
        assert_error(http.post(api, json={"path": "/"}), 400)
    finally:
        ctx.close()


def test_duplicates_and_nested_folders_are_409(api, tmp_path) -> None:
    """The same folder (also via a symlink or trailing slash) and nesting either way are 409."""
    (tmp_path / "music" / "House").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    d = create(api, tmp_path / "music")
    path = d["path"]
    for again in (path, path + "/", str(tmp_path / "music" / ".." / "music")):
        body = assert_error(http.post(api, json={"path": again}), 409)
        assert body["error"] == f"Directory already exists in library: {path}"
    (tmp_path / "link").symlink_to(tmp_path / "music")
    body = assert_error(http.post(api, json={"path": str(tmp_path / "link")}), 409)
    assert body["error"] == f"Directory already exists in library: {path}"

    body = assert_error(http.post(api, json={"path": str(tmp_path / "music" / "House")}), 409)
    assert "inside the library directory" in body["error"] and path in body["error"]
    body = assert_error(http.post(api, json={"path": str(tmp_path)}), 409)
    assert "contains the library directory" in body["error"] and path in body["error"]
    create(api, tmp_path / "other")
    assert http.get(api).json()["count"] == 2


def test_list_filters_parse_real_booleans(api, tmp_path) -> None:
    """is_active/is_available filter with true/false/1/0; other values are 400."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a = create(api, tmp_path / "a", priority=1)
    b = create(api, tmp_path / "b", is_active=False)
    ids = lambda q: [d["id"] for d in http.get(api, params=q).json()["data"]]  # noqa: E731
    assert ids({}) == [a["id"], b["id"]]
    assert ids({"is_active": "true"}) == [a["id"]]
    assert ids({"is_active": "false"}) == [b["id"]]
    assert ids({"is_active": "0"}) == [b["id"]]
    assert ids({"is_active": ""}) == [a["id"], b["id"]]
    assert ids({"is_available": "true", "is_active": "1"}) == [a["id"]]
    assert ids({"is_available": "false"}) == []
    assert_error(http.get(api, params={"is_active": "maybe"}), 400)


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_unknown_and_malformed_ids_are_404_everywhere(api, tmp_path) -> None:
    """Every /:id route answers 404 'Library directory not found' for unknown or non-UUID ids."""
    for bad in ("nope", "123", str(uuid.uuid4()), "%2e%2e"):
        base = f"{api}/{bad}"
        calls = [("GET", base, None), ("PUT", base, {"name": "x"}), ("DELETE", base, None),
                 ("POST", base + "/check-availability", None), ("GET", base + "/browse", None),
                 ("POST", base + "/cleanup", {}), ("POST", base + "/restore", None),
                 ("GET", base + "/missing", None), ("GET", base + "/missing/stats", None),
                 ("GET", base + "/stats", None)]
        for method, url, body in calls:
            r = http.request(method, url, json=body)
            assert_error(r, 404, "Library directory not found")


# --------------------------------------------------------------------------- update


def test_update_changes_known_fields_only(api, lib_ctx, events, tmp_path) -> None:
    """PUT applies known fields, ignores read-only ones, sends the changes; bad bodies are 400."""
    (tmp_path / "music").mkdir()
    d = create(api, tmp_path / "music")
    events.clear()
    echo = {**d, "name": "Crates", "priority": 3, "is_active": False,
            "scan_patterns": ["*.flac"], "total_tracks": 999, "is_available": False,
            "id": str(uuid.uuid4())}
    r = http.put(f"{api}/{d['id']}", json=echo)
    assert r.status_code == 200
    body = r.json()
    assert body["message"] == "Library directory updated successfully"
    new = body["data"]
    assert (new["id"], new["name"], new["priority"], new["is_active"]) == (
        d["id"], "Crates", 3, False)
    assert new["scan_patterns"] == ["*.flac"]
    assert new["total_tracks"] == 0 and new["is_available"] is True
    assert names(events) == ["library:directory:updated"]
    assert events[0][1]["changes"] == {"name": "Crates", "priority": 3, "is_active": False,
                                       "scan_patterns": ["*.flac"]}
    events.clear()
    assert http.put(f"{api}/{d['id']}", json={"name": "Crates"}).status_code == 200
    assert events == []
    new = http.put(f"{api}/{d['id']}", json={"name": None, "scan_patterns": None}).json()
    assert new["data"]["name"] == "music" and new["data"]["scan_patterns"] is None

    for bad in ({"is_active": None}, {"max_depth": "x"}, {"exclude_patterns": ["a[b"]},
                {"path": None}, {"priority": 10**9}):
        assert_error(http.put(f"{api}/{d['id']}", json=bad), 400, "Validation failed")
    assert_error(http.put(f"{api}/{d['id']}", content=b"[1, 2]",
                           headers={"content-type": "application/json"}), 400)
    body = assert_error(http.put(f"{api}/{d['id']}", json={"path": str(tmp_path / "gone")}),
                        400)
    assert body["error"] == f"Directory does not exist: {tmp_path / 'gone'}"


def test_update_path_revalidates_and_relocates_tracks(api, lib_ctx, corpus, tmp_path) -> None:
    """Moving a collection and PUTting the new path keeps the rows and rewrites file paths."""
    old = tmp_path / "old"
    files = copy_music(corpus, old, {"A/one.mp3": 0, "two.ogg": 1, "gone.mp3": 3})
    (tmp_path / "other" / "sub").mkdir(parents=True)
    d = create(api, old)
    other = create(api, tmp_path / "other" / "sub")
    ids = {rel: add_track(lib_ctx, d["id"], old, rel) for rel in files}
    with transaction(lib_ctx.db) as session:
        session.add(HotCue(track_id=ids["A/one.mp3"], cue_index=0, position=1.5))
    files["gone.mp3"].unlink()

    body = assert_error(http.put(f"{api}/{d['id']}", json={"path": other["path"]}), 409)
    assert body["error"] == f"Directory already exists in library: {other['path']}"
    body = assert_error(http.put(f"{api}/{d['id']}", json={"path": str(tmp_path / "other")}),
                        409)
    assert "contains the library directory" in body["error"]

    new = tmp_path / "new"
    old.rename(new)
    r = http.put(f"{api}/{d['id']}", json={"path": str(new) + "/"})
    assert r.status_code == 200, r.text
    moved = r.json()["data"]
    assert moved["path"] == str(new) and moved["name"] == "old"
    assert (moved["total_tracks"], moved["total_missing"]) == (2, 1)
    one = track(lib_ctx, ids["A/one.mp3"])
    assert one is not None and one.file_path == str(new / "A" / "one.mp3")
    assert one.is_missing is False
    gone = track(lib_ctx, ids["gone.mp3"])
    assert gone is not None and gone.is_missing is True and gone.missing_since is not None
    with lib_ctx.db() as session:
        assert session.query(HotCue).filter_by(track_id=ids["A/one.mp3"]).count() == 1


# --------------------------------------------------------------------------- delete


def test_delete_keeps_tracks_by_default_and_readding_reattaches(api, lib_ctx, events, corpus,
                                                                tmp_path) -> None:
    """DELETE (and delete_tracks=false/0/empty) keeps the rows detached; re-adding adopts them."""
    root = tmp_path / "music"
    files = copy_music(corpus, root, {"x/a.mp3": 0, "b.ogg": 1})
    d = create(api, root)
    ids = [add_track(lib_ctx, d["id"], root, rel) for rel in files]
    with transaction(lib_ctx.db) as session:
        session.add(HotCue(track_id=ids[0], cue_index=1, position=2.0))
    http.post(f"{api}/{d['id']}/check-availability")  # recounts the rows inserted above
    for flag in (None, "false", "0", ""):
        if flag is not None:
            d = create(api, root)
        assert http.get(f"{api}/{d['id']}").json()["data"]["total_tracks"] == 2
        events.clear()
        params = {} if flag is None else {"delete_tracks": flag}
        r = http.delete(f"{api}/{d['id']}", params=params)
        assert r.status_code == 200
        assert r.json()["message"] == "Library directory deleted successfully"
        assert r.json()["data"]["tracks_kept"] == 2 and r.json()["data"]["tracks_deleted"] == 0
        assert names(events) == ["library:directory:removed"]
        assert events[0][1]["directoryId"] == d["id"] and events[0][1]["tracksKept"] == 2
        assert_error(http.get(f"{api}/{d['id']}"), 404, "Library directory not found")
        for tid in ids:
            t = track(lib_ctx, tid)
            assert t is not None and t.library_directory_id is None and t.is_missing is False
        with lib_ctx.db() as session:
            assert session.query(HotCue).count() == 1
    again = create(api, root)
    assert again["total_tracks"] == 2
    t = track(lib_ctx, ids[0])
    assert t is not None and t.library_directory_id == again["id"]
    assert t.relative_path == "x/a.mp3"
    assert all(p.exists() for p in files.values())


def test_delete_tracks_true_deletes_rows_not_files(api, lib_ctx, corpus, tmp_path) -> None:
    """delete_tracks=true deletes the track rows (and their cues), the files stay on disk."""
    root = tmp_path / "music"
    files = copy_music(corpus, root, {"a.mp3": 0, "b/c.ogg": 1})
    d = create(api, root)
    ids = [add_track(lib_ctx, d["id"], root, rel) for rel in files]
    with transaction(lib_ctx.db) as session:
        session.add(HotCue(track_id=ids[0], cue_index=0, position=0.5))
    assert_error(http.delete(f"{api}/{d['id']}", params={"delete_tracks": "perhaps"}), 400)
    r = http.delete(f"{api}/{d['id']}", params={"delete_tracks": "true"})
    assert r.status_code == 200 and r.json()["data"]["tracks_deleted"] == 2
    assert all(track(lib_ctx, tid) is None for tid in ids)
    with lib_ctx.db() as session:
        assert session.query(HotCue).count() == 0
        assert session.query(LibraryDirectory).count() == 0
    assert all(p.is_file() for p in files.values())
    assert_error(http.delete(f"{api}/{d['id']}"), 404)


def test_scanning_directory_cannot_be_removed(api, lib_ctx, tmp_path) -> None:
    """A folder whose scan is running answers 409 to DELETE and to a path change."""
    (tmp_path / "m").mkdir()
    (tmp_path / "n").mkdir()
    d = create(api, tmp_path / "m")
    with transaction(lib_ctx.db) as session:
        session.get(LibraryDirectory, d["id"]).scan_status = "scanning"
    assert_error(http.delete(f"{api}/{d['id']}"), 409)
    assert_error(http.put(f"{api}/{d['id']}", json={"path": str(tmp_path / "n")}), 409)
    assert http.put(f"{api}/{d['id']}", json={"name": "still ok"}).status_code == 200


# --------------------------------------------------------------------------- availability


def test_availability_flips_when_folder_goes_away_and_back(api, lib_ctx, events, corpus,
                                                           tmp_path) -> None:
    """Renaming the folder away marks its tracks missing; renaming it back restores them."""
    root = tmp_path / "usb"
    files = copy_music(corpus, root, {"a.mp3": 0, "sub/b.ogg": 1, "lost.mp3": 3})
    d = create(api, root, is_removable=True)
    ids = {rel: add_track(lib_ctx, d["id"], root, rel) for rel in files}
    long_ago = utcnow() - timedelta(days=50)
    files["lost.mp3"].unlink()
    with transaction(lib_ctx.db) as session:
        lost = session.get(Track, ids["lost.mp3"])
        lost.is_missing, lost.missing_since = True, long_ago
    events.clear()

    same = http.post(f"{api}/{d['id']}/check-availability").json()
    assert same["success"] is True and same["data"]["is_available"] is True
    assert (same["data"]["total_tracks"], same["data"]["total_missing"]) == (2, 1)
    assert events == []

    root.rename(tmp_path / "usb-away")
    r = http.post(f"{api}/{d['id']}/check-availability")
    data = r.json()["data"]
    assert data["is_available"] is False
    assert (data["total_tracks"], data["total_missing"]) == (0, 3)
    assert names(events) == ["library:media:disconnected"]
    assert events[0][1]["tracksMarkedMissing"] == 2 and events[0][1]["directoryId"] == d["id"]
    t = track(lib_ctx, ids["lost.mp3"])
    assert t is not None and t.missing_since == long_ago
    unavailable = http.get(api, params={"is_available": "false"}).json()["data"]
    assert [x["id"] for x in unavailable] == [d["id"]]

    (tmp_path / "usb-away").rename(root)
    events.clear()
    listed = http.post(f"{api}/check-all-availability").json()
    assert listed["success"] is True and listed["count"] == 1
    data = listed["data"][0]
    assert data["is_available"] is True
    assert (data["total_tracks"], data["total_missing"]) == (2, 1)
    assert names(events) == ["library:media:connected"]
    assert events[0][1]["tracksRestored"] == 2
    a = track(lib_ctx, ids["a.mp3"])
    assert a is not None and a.is_missing is False and a.missing_since is None
    t = track(lib_ctx, ids["lost.mp3"])
    assert t is not None and t.is_missing is True


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_empty_mount_point_of_removable_drive_is_unavailable(api, lib_ctx, corpus,
                                                             tmp_path) -> None:
    """A removable folder that is still there but empty (drive unmounted) counts as gone."""
    root = tmp_path / "mnt-usb"
    files = copy_music(corpus, root, {"a.mp3": 0})
    d = create(api, root, is_removable=True)
    add_track(lib_ctx, d["id"], root, "a.mp3")
    http.post(f"{api}/{d['id']}/check-availability")
    files["a.mp3"].unlink()
    data = http.post(f"{api}/{d['id']}/check-availability").json()["data"]
    assert data["is_available"] is False and data["total_missing"] == 1
    copy_music(corpus, root, {"a.mp3": 0})
    data = http.post(f"{api}/{d['id']}/check-availability").json()["data"]
    assert data["is_available"] is True and data["total_missing"] == 0


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_removable_detection_and_override(api, tmp_path) -> None:
    """Mount roots and other devices count as removable; the client may override either way."""
    for path in ("/media/dj/USB", "/mnt/usb", "/run/media/dj/SD", "/Volumes/DJ"):
        assert detect_removable(Path(path)) is True
    assert detect_removable(Path("/mediafiles/x")) is False
    assert detect_removable(tmp_path, home=tmp_path) is False
    shm = Path("/dev/shm")
    if shm.is_dir() and shm.stat().st_dev not in (tmp_path.stat().st_dev,
                                                  Path("/").stat().st_dev):
        assert detect_removable(shm, home=tmp_path) is True
    assert detect_removable(tmp_path, home=tmp_path, roots=(tmp_path.parent,)) is True
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert create(api, tmp_path / "a", is_removable=True)["is_removable"] is True
    assert create(api, tmp_path / "b", is_removable=False)["is_removable"] is False


# --------------------------------------------------------------------------- browse


@pytest.fixture
def browse_lib(api, lib_ctx, corpus, tmp_path) -> dict[str, Any]:
    """A library: 'Artist A/Album/x.mp3', 'Artist A/y.ogg', 'z.opus', one missing, extra dirs."""
    root = tmp_path / "lib"
    files = copy_music(corpus, root, {"Artist A/Album/x.mp3": 0, "Artist A/y.ogg": 1,
                                      "z.opus": 2, "Artist B/w.mp3": 3})
    (root / "Empty").mkdir()
    (root / ".Trashes").mkdir()
    (tmp_path / "outside" / "secret").mkdir(parents=True)
    (root / "escape").symlink_to(tmp_path / "outside")
    d = create(api, root)
    ids = {rel: add_track(lib_ctx, d["id"], root, rel) for rel in files}
    ids["Artist B/gone.mp3"] = add_track(lib_ctx, d["id"], root, "Artist B/gone.mp3",
                                         is_missing=True, missing_since=utcnow())
    return {"dir": d, "root": root, "files": files, "ids": ids}


def test_browse_lists_folders_with_recursive_stats_and_tracks(api, browse_lib) -> None:
    """Browse lists visible sub-folders with recursive counts and sizes, and tracks at the level."""
    d, files, ids = browse_lib["dir"], browse_lib["files"], browse_lib["ids"]
    r = http.get(f"{api}/{d['id']}/browse")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["path"] == "" and data["parentPath"] is None and data["available"] is True
    assert data["libraryDirectoryId"] == d["id"] and data["absolutePath"] == d["path"]
    folders = {f["name"]: f for f in data["folders"]}
    assert list(folders) == ["Artist A", "Artist B", "Empty"]
    size = lambda *rels: sum(files[r].stat().st_size for r in rels)  # noqa: E731
    assert folders["Artist A"] == {
        "name": "Artist A", "relativePath": "Artist A", "trackCount": 2,
        "totalSize": size("Artist A/Album/x.mp3", "Artist A/y.ogg"), "missingCount": 0,
        "hasSubfolders": True, "available": True}
    assert folders["Artist B"]["trackCount"] == 1 and folders["Artist B"]["missingCount"] == 1
    assert folders["Empty"]["trackCount"] == 0 and folders["Empty"]["hasSubfolders"] is False
    assert [t["id"] for t in data["tracks"]] == [ids["z.opus"]]
    assert data["tracks"][0]["is_missing"] == 0
    assert data["stats"] == {"totalTracks": 4, "totalSize": size(*files), "missingTracks": 1,
                             "folderCount": 3, "trackCount": 1}

    data = http.get(f"{api}/{d['id']}/browse", params={"path": "Artist A/"}).json()["data"]
    assert data["path"] == "Artist A" and data["parentPath"] == ""
    assert data["breadcrumbs"] == [{"name": "lib", "path": ""},
                                   {"name": "Artist A", "path": "Artist A"}]
    assert [f["relativePath"] for f in data["folders"]] == ["Artist A/Album"]
    assert data["folders"][0]["hasSubfolders"] is False
    assert [t["id"] for t in data["tracks"]] == [ids["Artist A/y.ogg"]]
    data = http.get(f"{api}/{d['id']}/browse",
                     params={"path": "./Artist B//"}).json()["data"]
    assert [t["id"] for t in data["tracks"]] == [ids["Artist B/gone.mp3"],
                                                 ids["Artist B/w.mp3"]]
    assert [t["is_missing"] for t in data["tracks"]] == [1, 0]
    assert_error(http.get(f"{api}/{d['id']}/browse", params={"path": "Nope"}), 404)
    assert_error(http.get(f"{api}/{d['id']}/browse", params={"path": "z.opus"}), 404)


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_browse_rejects_paths_leaving_the_folder(api, lib_server, browse_lib) -> None:
    """'..', encoded '..', absolute paths and symlinks leading outside are 400 Invalid path."""
    d = browse_lib["dir"]
    base = f"{api}/{d['id']}/browse"
    for path in ("..", "../lib", "Artist A/../..", "Artist A/../../outside", "/etc",
                 "/", "escape", "escape/secret", "C:/Windows", "a\x00b"):
        r = http.get(base, params={"path": path})
        assert r.status_code == 400, path
        assert r.json() == {"success": False, "error": "Invalid path"}
    for raw in ("%2e%2e", "%2e%2e%2f%2e%2e%2fetc", "%2E%2E/outside", "%2Fetc"):
        r = http.get(httpx.URL(f"{base}?path={raw}"))
        assert r.status_code == 400, raw
        assert r.json() == {"success": False, "error": "Invalid path"}
    names_ = [f["name"] for f in http.get(base).json()["data"]["folders"]]
    assert "escape" not in names_ and ".Trashes" not in names_


def test_browse_disconnected_drive_from_database(api, browse_lib, tmp_path) -> None:
    """With the drive gone, browsing still shows the folders and tracks known to the library."""
    d, root, ids = browse_lib["dir"], browse_lib["root"], browse_lib["ids"]
    root.rename(tmp_path / "away")
    http.post(f"{api}/{d['id']}/check-availability")
    data = http.get(f"{api}/{d['id']}/browse").json()["data"]
    assert data["available"] is False
    assert [(f["name"], f["available"], f["missingCount"]) for f in data["folders"]] == [
        ("Artist A", False, 2), ("Artist B", False, 2)]
    data = http.get(f"{api}/{d['id']}/browse", params={"path": "Artist A"}).json()["data"]
    assert [t["id"] for t in data["tracks"]] == [ids["Artist A/y.ogg"]]
    assert data["tracks"][0]["is_missing"] == 1


# --------------------------------------------------------------------------- missing media


def test_missing_list_is_paginated_with_total_and_stats(api, lib_ctx, tmp_path) -> None:
    """GET /missing pages oldest-missing first with pagination.total; /missing/stats sums them."""
    root = tmp_path / "m"
    root.mkdir()
    d = create(api, root)
    now = utcnow()
    ages = {"old.mp3": 100, "mid.mp3": 40, "new.mp3": 1}
    ids = {rel: add_track(lib_ctx, d["id"], root, rel, is_missing=True, file_size=1000 + days,
                          missing_since=now - timedelta(days=days))
           for rel, days in ages.items()}
    add_track(lib_ctx, d["id"], root, "here.mp3")
    r = http.get(f"{api}/{d['id']}/missing", params={"page": 1, "limit": 2})
    body = r.json()
    assert body["success"] is True
    assert [t["id"] for t in body["data"]] == [ids["old.mp3"], ids["mid.mp3"]]
    assert body["pagination"] == {"page": 1, "limit": 2, "total": 3, "totalPages": 2}
    assert all(t["is_missing"] == 1 for t in body["data"])
    body = http.get(f"{api}/{d['id']}/missing", params={"page": 2, "limit": 2}).json()
    assert [t["id"] for t in body["data"]] == [ids["new.mp3"]]
    body = http.get(f"{api}/{d['id']}/missing").json()
    assert body["pagination"] == {"page": 1, "limit": 50, "total": 3, "totalPages": 1}
    for bad in ({"page": 0}, {"limit": 0}, {"limit": 5000}, {"page": "x"}):
        assert_error(http.get(f"{api}/{d['id']}/missing", params=bad), 400,
                     "Validation failed")

    stats = http.get(f"{api}/{d['id']}/missing/stats").json()["data"]
    assert stats["total_missing"] == 3
    assert (stats["missing_over_7_days"], stats["missing_over_30_days"],
            stats["missing_over_90_days"]) == (2, 2, 1)
    assert stats["total_size"] == 1000 * 3 + 141
    assert stats["oldest_missing_since"] == stats["oldest_missing"]
    assert stats["oldest_missing_since"] < stats["newest_missing_since"]
    assert stats["oldest_missing_since"].endswith("Z") and stats["is_available"] is True


def _playlist_with(ctx: Any, track_id: str) -> str:
    """Create a playlist holding `track_id` at position 0; return its id."""
    with transaction(ctx.db) as session:
        playlist = Playlist(id=new_id(), name="Warm-up")
        session.add(playlist)
        session.flush()
        session.add(PlaylistTrack(playlist_id=playlist.id, track_id=track_id, position=0,
                                  notes="opener"))
        return playlist.id


def test_cleanup_protects_playlists_and_writes_backup(api, lib_ctx, events, tmp_path) -> None:
    """Cleanup deletes old missing rows, keeps playlist tracks, and backs up what it removed."""
    root = tmp_path / "m"
    root.mkdir()
    d = create(api, root)
    now = utcnow()
    old = {rel: add_track(lib_ctx, d["id"], root, rel, is_missing=True, artist="DJ",
                          missing_since=now - timedelta(days=40), beats_data=b"[0.5, 1.0]")
           for rel in ("a.mp3", "b.mp3", "listed.mp3")}
    recent = add_track(lib_ctx, d["id"], root, "recent.mp3", is_missing=True,
                       missing_since=now - timedelta(days=2))
    undated = add_track(lib_ctx, d["id"], root, "undated.mp3", is_missing=True)
    present = add_track(lib_ctx, d["id"], root, "present.mp3", file_path=str(tmp_path / "p"))
    playlist_id = _playlist_with(lib_ctx, old["listed.mp3"])
    with transaction(lib_ctx.db) as session:
        session.add(HotCue(track_id=old["a.mp3"], cue_index=2, position=12.5, name="drop"))
    events.clear()

    r = http.post(f"{api}/{d['id']}/cleanup")
    assert r.status_code == 200
    data = r.json()["data"]
    assert (data["removed"], data["kept_in_playlists"], data["candidates"]) == (2, 1, 3)
    assert data["tracksRemoved"] == 2 and data["metadataBackedUp"] is True
    backup = Path(data["backup_path"])
    assert backup.parent == (tmp_path / "data" / "backups").resolve()
    assert data["backupPath"] == str(backup)
    doc = json.loads(backup.read_text(encoding="utf-8"))
    assert doc["library_directory"] == {"id": d["id"], "name": "m", "path": d["path"]}
    assert doc["track_count"] == 2
    by_id = {t["id"]: t for t in doc["tracks"]}
    assert set(by_id) == {old["a.mp3"], old["b.mp3"]}
    a = by_id[old["a.mp3"]]
    assert a["artist"] == "DJ" and a["relative_path"] == "a.mp3" and a["is_missing"] == 1
    assert a["beats_data"] == "WzAuNSwgMS4wXQ=="
    assert [(c["cue_index"], c["position"], c["name"]) for c in a["hot_cues"]] == [
        (2, 12.5, "drop")]
    assert a["playlists"] == []
    assert track(lib_ctx, old["a.mp3"]) is None and track(lib_ctx, old["b.mp3"]) is None
    for kept in (old["listed.mp3"], recent, undated, present):
        assert track(lib_ctx, kept) is not None
    with lib_ctx.db() as session:
        assert session.query(HotCue).count() == 0
    assert names(events) == ["library:directory:updated"]
    assert http.get(f"{api}/{d['id']}").json()["data"]["total_missing"] == 3

    r = http.post(f"{api}/{d['id']}/cleanup",
                   json={"remove_missing_older_than_days": 10, "keep_playlists_intact": False,
                         "backup_metadata": True})
    data = r.json()["data"]
    assert data["removed"] == 1 and data["kept_in_playlists"] == 0
    doc = json.loads(Path(data["backup_path"]).read_text(encoding="utf-8"))
    [listed] = doc["tracks"]
    assert listed["id"] == old["listed.mp3"]
    assert [(p["playlist_id"], p["playlist_name"], p["position"], p["notes"])
            for p in listed["playlists"]] == [(playlist_id, "Warm-up", 0, "opener")]
    with lib_ctx.db() as session:
        assert session.query(PlaylistTrack).count() == 0
        assert session.get(Playlist, playlist_id) is not None

    r = http.post(f"{api}/{d['id']}/cleanup",
                   json={"remove_missing_older_than_days": 0, "backup_metadata": False})
    data = r.json()["data"]
    assert data["removed"] == 1 and data["backup_path"] is None
    assert track(lib_ctx, recent) is None and track(lib_ctx, undated) is not None
    data = http.post(f"{api}/{d['id']}/cleanup", json={}).json()["data"]
    assert data["removed"] == 0 and data["message"] == "No tracks to cleanup"
    for bad in ({"remove_missing_older_than_days": -1},
                {"remove_missing_older_than_days": "soon"}, {"backup_metadata": "perhaps"}):
        assert_error(http.post(f"{api}/{d['id']}/cleanup", json=bad), 400,
                     "Validation failed")
    assert len(list((tmp_path / "data" / "backups").iterdir())) == 2


def test_restore_finds_files_that_came_back(api, lib_ctx, events, corpus, tmp_path) -> None:
    """POST /restore restores missing tracks whose files exist again and counts the rest."""
    root = tmp_path / "m"
    files = copy_music(corpus, root, {"back.mp3": 0, "deep/back.ogg": 1})
    d = create(api, root)
    gone_since = utcnow() - timedelta(days=3)
    ids = {rel: add_track(lib_ctx, d["id"], root, rel, is_missing=True,
                          missing_since=gone_since) for rel in files}
    still = add_track(lib_ctx, d["id"], root, "never.mp3", is_missing=True,
                      missing_since=gone_since)
    events.clear()
    r = http.post(f"{api}/{d['id']}/restore")
    assert r.status_code == 200
    data = r.json()["data"]
    assert (data["restored"], data["still_missing"], data["available"]) == (2, 1, True)
    assert data["tracksRestored"] == 2 and data["totalMissing"] == 3
    for tid in ids.values():
        t = track(lib_ctx, tid)
        assert t is not None and t.is_missing is False and t.missing_since is None
    t = track(lib_ctx, still)
    assert t is not None and t.is_missing is True
    assert names(events) == ["library:directory:updated"]
    again = http.post(f"{api}/{d['id']}/restore").json()["data"]
    assert (again["restored"], again["still_missing"]) == (0, 1)


# --------------------------------------------------------------------------- statistics


def test_directory_stats(api, lib_ctx, corpus, tmp_path) -> None:
    """GET /:id/stats sums tracks, sizes, durations, analysis and formats of the folder."""
    root = tmp_path / "m"
    files = copy_music(corpus, root, {"a.mp3": 0, "b.mp3": 3, "c.ogg": 1})
    d = create(api, root)
    add_track(lib_ctx, d["id"], root, "a.mp3", bpm=128.0, musical_key=9,
              date_analyzed=utcnow(), has_artwork=True)
    add_track(lib_ctx, d["id"], root, "b.mp3", duration_seconds=60.0)
    add_track(lib_ctx, d["id"], root, "c.ogg", is_missing=True, missing_since=utcnow())
    (tmp_path / "empty").mkdir()
    empty = http.get(f"{api}/{create(api, tmp_path / 'empty')['id']}/stats").json()["data"]
    assert empty["total_tracks"] == 0 and empty["formats"] == []
    assert empty["average_duration"] == 0.0
    s = http.get(f"{api}/{d['id']}/stats").json()["data"]
    assert s["directory_id"] == d["id"] and s["path"] == d["path"]
    assert (s["total_tracks"], s["present_tracks"], s["missing_tracks"]) == (3, 2, 1)
    assert s["total_size"] == sum(p.stat().st_size for p in files.values())
    assert s["present_size"] == files["a.mp3"].stat().st_size + files["b.mp3"].stat().st_size
    assert s["total_duration"] == 120.0 and s["average_duration"] == 40.0
    assert (s["analyzed"], s["unanalyzed"], s["with_bpm"], s["with_key"]) == (1, 2, 1, 1)
    assert (s["hashed"], s["with_artwork"], s["in_playlists"], s["with_hot_cues"]) == (
        3, 1, 0, 0)
    assert s["formats"] == [
        {"format": "mp3", "count": 2, "total_size": s["present_size"], "total_duration": 90.0},
        {"format": "ogg", "count": 1, "total_size": files["c.ogg"].stat().st_size,
         "total_duration": 30.0}]
    assert s["oldest_track_date"].endswith("Z") and s["is_available"] is True


@pytest.mark.backends("sqlite")  # validation or files only: one backend is enough
def test_readable_folder_check_uses_permissions(api, tmp_path) -> None:
    """A folder the server cannot read is refused with 400 (skipped when running as root)."""
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        body = assert_error(http.post(api, json={"path": str(locked)}), 400)
        assert "not readable" in body["error"]
    finally:
        locked.chmod(0o755)


@pytest.fixture
def watching_ctx(lib_settings: Any) -> Any:
    """Library services with file watching enabled."""
    from taperoom.library.context import build_services

    ctx = build_services(lib_settings(file_watcher_enabled=True))
    yield ctx
    ctx.close()


def test_watcher_follows_added_changed_and_removed_folders(watching_ctx, live_server,
                                                           tmp_path) -> None:
    """With watching enabled, a new folder is watched, deactivation and removal unwatch it."""
    from taperoom.library.app import create_app

    api = f"{live_server(create_app(services=watching_ctx)).url}/api/library/directories"
    (tmp_path / "m").mkdir()
    d = create(api, tmp_path / "m")
    assert watching_ctx.watcher.is_watching(d["id"])
    assert http.put(f"{api}/{d['id']}", json={"is_active": False}).status_code == 200
    assert not watching_ctx.watcher.is_watching(d["id"])
    assert http.put(f"{api}/{d['id']}", json={"is_active": True}).status_code == 200
    assert watching_ctx.watcher.is_watching(d["id"])
    assert http.delete(f"{api}/{d['id']}").status_code == 200
    assert not watching_ctx.watcher.is_watching(d["id"])
