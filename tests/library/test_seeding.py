"""First run: ``SEED_FOLDER`` is added as a library folder and scanned when the server
starts on a database it has just created, and only then."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.library.app import create_app
from taperoom.library.context import build_services
from tests.polling import wait_for

TAGGED = "scanner/real_music_tagged"
FILES = ("01 - Muldjord - Armygeddon.mp3", "12 - Maxstack - By-Product.ogg")

pytestmark = pytest.mark.empty_database


@pytest.fixture
def seed(tmp_path: Path, corpus: Path) -> Path:
    """A folder of two real recordings."""
    root = tmp_path / "seed"
    root.mkdir()
    for name in FILES:
        shutil.copyfile(corpus / TAGGED / name, root / name)
    return root


def _serve(lib_settings: Any, live_server: Any, **overrides: Any) -> tuple[Any, str]:
    svc = build_services(lib_settings(**overrides))
    srv = live_server(create_app(services=svc))
    return svc, srv.url


def test_new_database_gets_the_folder_scanned(lib_settings: Any, live_server: Any,
                                              seed: Path) -> None:
    """On a new database the folder is added and its scan fills the library."""
    svc, url = _serve(lib_settings, live_server, seed_folder=str(seed))
    try:
        assert svc.fresh
        dirs = httpx.get(f"{url}/api/library/directories").json()["data"]
        assert [d["path"] for d in dirs] == [str(seed)]

        def scanned() -> bool:
            body = httpx.get(f"{url}/api/tracks").json()
            return body["pagination"]["total"] == len(FILES)

        wait_for(scanned, 60, "the seed folder's scan")
    finally:
        svc.close()


def test_existing_database_is_left_alone(lib_settings: Any, live_server: Any,
                                         seed: Path) -> None:
    """A folder the user removed does not come back at the next start."""
    svc, url = _serve(lib_settings, live_server, seed_folder=str(seed))
    try:
        dir_id = httpx.get(f"{url}/api/library/directories").json()["data"][0]["id"]
        svc.scans.wait(dir_id, timeout=60)
        assert httpx.delete(f"{url}/api/library/directories/{dir_id}").status_code == 200
    finally:
        svc.close()
    again, url = _serve(lib_settings, live_server, seed_folder=str(seed))
    try:
        assert not again.fresh
        assert httpx.get(f"{url}/api/library/directories").json()["data"] == []
    finally:
        again.close()


def test_no_seed_without_the_setting_or_the_folder(lib_settings: Any, live_server: Any,
                                                    tmp_path: Path) -> None:
    """SEED_FOLDER empty (the default) adds nothing; a folder that does not exist is
    logged and the server starts all the same."""
    svc, url = _serve(lib_settings, live_server)
    try:
        assert svc.fresh
        assert httpx.get(f"{url}/api/library/directories").json()["data"] == []
    finally:
        svc.close()


def test_missing_seed_folder_does_not_stop_the_server(lib_settings: Any, live_server: Any,
                                                      tmp_path: Path) -> None:
    """A seed folder that does not exist is skipped (logged), the server answers."""
    svc, url = _serve(lib_settings, live_server, seed_folder=str(tmp_path / "nowhere"))
    try:
        assert httpx.get(f"{url}/health").status_code == 200
        assert httpx.get(f"{url}/api/library/directories").json()["data"] == []
    finally:
        svc.close()


def test_the_command_line_server_seeds_the_database_its_start_up_checks_created(
        tmp_path: Path, seed: Path, server_process: Any) -> None:
    """``taperoom library serve`` (as ``make run`` starts it) on a new data folder: the
    start-up checks create the database before the app starts, and the folder is still
    added and scanned; a second start on that database adds nothing."""
    env = {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": "",
           "DATABASE_PATH": str(tmp_path / "data" / "library.db"),
           "SEED_FOLDER": str(seed), "ENGINE_LINK_ENABLED": "false",
           "FILE_WATCHER_ENABLED": "false", "ANALYZE_ON_SCAN": "false"}
    srv = server_process(["library", "serve"], env)
    tracks = wait_for(lambda: (r := httpx.get(f"{srv.url}/api/tracks", timeout=30).json())
                      and r["pagination"]["total"] == len(FILES) and r, 60,
                      "the seeded folder's tracks")
    assert {Path(t["file_path"]).name for t in tracks["data"]} == set(FILES)
    srv.stop()
    again = server_process(["library", "serve"], {**env, "SEED_FOLDER": str(tmp_path)})
    dirs = httpx.get(f"{again.url}/api/library/directories", timeout=30).json()["data"]
    assert [Path(d["path"]) for d in dirs] == [seed]
