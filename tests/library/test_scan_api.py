"""The /api/scan and /api/watcher routes on a real server: shapes and status codes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.library import models
from taperoom.library.context import LibraryServices
from tests.library.test_scanner import add_directory, copy_corpus, tracks
from tests.polling import wait_for

pytestmark = pytest.mark.backends()


def wait_idle(url: str, directory_id: str, timeout: float = 30) -> dict[str, Any]:
    """Poll the status route until the folder's scan is over; returns the last status."""

    def idle() -> dict[str, Any] | None:
        body = httpx.get(f"{url}/api/scan/library/{directory_id}/status").json()
        assert body["success"] is True
        return None if body["data"]["scanning"] else dict(body["data"])

    return wait_for(idle, timeout, f"the scan of folder {directory_id} to end")


def test_start_scan_202_then_status(lib_server: Any, lib_ctx: LibraryServices, corpus: Path,
                                    tmp_path: Path) -> None:
    """POST answers 202 with the contract body; the scan runs in the background and finishes."""
    did = add_directory(lib_ctx, copy_corpus(corpus, tmp_path / "lib"))
    r = httpx.post(f"{lib_server.url}/api/scan/library/{did}", json={"strategy": "hybrid"})
    assert r.status_code == 202
    assert r.json() == {"success": True, "message": "Scan started",
                        "data": {"libraryDirectoryId": did, "strategy": "hybrid"}}
    status = wait_idle(lib_server.url, did)
    assert status["scanning"] is False
    assert status["lastResult"]["tracksAdded"] == 32
    assert len(tracks(lib_ctx, did)) == 32
    # no body at all means hybrid/normal
    r = httpx.post(f"{lib_server.url}/api/scan/library/{did}")
    assert r.status_code == 202 and r.json()["data"]["strategy"] == "hybrid"
    assert wait_idle(lib_server.url, did)["lastResult"]["tracksUpdated"] == 0


def test_scan_errors_404_400_409(lib_server: Any, lib_ctx: LibraryServices, tmp_path: Path
                                 ) -> None:
    """Unknown folder 404, malformed id or body 400, inactive or unavailable folder 409."""
    url = lib_server.url
    r = httpx.post(f"{url}/api/scan/library/{uuid.uuid4()}", json={})
    assert r.status_code == 404 and r.json() == {"success": False,
                                                  "error": "Library directory not found"}
    r = httpx.post(f"{url}/api/scan/library/not-a-uuid", json={})
    assert r.status_code == 400 and r.json()["error"] == "Validation failed"
    assert r.json()["details"][0]["field"] == "id"
    (tmp_path / "lib").mkdir()
    did = add_directory(lib_ctx, tmp_path / "lib")
    r = httpx.post(f"{url}/api/scan/library/{did}", json={"strategy": "thorough"})
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "strategy"
    r = httpx.post(f"{url}/api/scan/library/{did}", json={"priority": "urgent"})
    assert r.status_code == 400
    inactive = add_directory(lib_ctx, tmp_path / "off", is_active=False)
    r = httpx.post(f"{url}/api/scan/library/{inactive}", json={})
    assert r.status_code == 409 and r.json()["error"] == "Library directory is not active"
    gone = add_directory(lib_ctx, tmp_path / "usb", is_available=False, is_removable=True)
    r = httpx.post(f"{url}/api/scan/library/{gone}", json={})
    assert r.status_code == 409 and r.json()["error"] == "Library directory is not available"
    r = httpx.delete(f"{url}/api/scan/library/{did}")
    assert r.status_code == 404 and r.json() == {"success": False, "error": "No active scan found"}
    r = httpx.get(f"{url}/api/scan/library/{did}/status")
    assert r.json() == {"success": True, "data": {"scanning": False}}


def allowed(response: httpx.Response) -> set[str]:
    """The methods of a response's ``Allow`` header."""
    return {m.strip() for m in response.headers["allow"].split(",")}


@pytest.mark.backends("sqlite")  # routing only: one backend is enough
def test_405_allow_lists_every_method_of_the_path(lib_server: Any, tmp_path: Path) -> None:
    """``/api/scan/library/{id}`` has POST and DELETE (two routes): a 405 names both."""
    url = f"{lib_server.url}/api/scan/library/{uuid.uuid4()}"
    for method in ("GET", "PUT", "PATCH"):
        r = httpx.request(method, url)
        assert r.status_code == 405, (method, r.text)
        assert allowed(r) == {"POST", "DELETE"}, method
        assert r.json() == {"success": False, "error": "Method Not Allowed"}
    r = httpx.post(f"{url}/status")
    assert r.status_code == 405 and allowed(r) == {"GET"}
    r = httpx.post(f"{lib_server.url}/api/watcher/status")
    assert r.status_code == 405 and allowed(r) == {"GET"}


def test_already_scanning_409_active_and_cancel(lib_server: Any, lib_ctx: LibraryServices,
                                                corpus: Path, tmp_path: Path) -> None:
    """A second POST while scanning is 409 with the status; /active lists it; DELETE cancels it."""
    url = lib_server.url
    did = add_directory(lib_ctx, copy_corpus(corpus, tmp_path / "lib"))
    with lib_ctx.scanner.locks.lock(did):  # the scan starts and waits for the folder
        assert httpx.post(f"{url}/api/scan/library/{did}", json={"strategy": "full"}
                          ).status_code == 202
        r = httpx.post(f"{url}/api/scan/library/{did}", json={"strategy": "fast"})
        assert r.status_code == 409
        body = r.json()
        assert body["success"] is False and body["error"] == "Scan already in progress"
        data = body["data"]
        assert data["scanning"] is True and data["libraryDirectoryId"] == did
        assert data["strategy"] == "full" and data["directory"]["id"] == did
        assert data["directory"]["is_active"] is True
        assert isinstance(data["startTime"], int) and data["errors"] == []
        for key in ("filesFound", "filesProcessed", "tracksAdded", "tracksUpdated"):
            assert data[key] == 0
        status = httpx.get(f"{url}/api/scan/library/{did}/status").json()["data"]
        assert status["scanning"] is True and status["libraryDirectoryId"] == did
        active = httpx.get(f"{url}/api/scan/active").json()
        assert active["success"] is True and active["count"] == 1
        assert active["data"][0]["libraryDirectoryId"] == did
        r = httpx.delete(f"{url}/api/scan/library/{did}")
        assert r.status_code == 200 and r.json() == {"success": True, "message": "Scan cancelled"}
    status = wait_idle(url, did)
    assert status["lastResult"]["cancelled"] is True
    assert tracks(lib_ctx, did) == {}
    assert httpx.get(f"{url}/api/scan/active").json() == {"success": True, "count": 0, "data": []}
    with lib_ctx.db() as session:
        d = session.get(models.LibraryDirectory, did)
        assert d is not None and d.scan_status == "idle"


def test_watcher_routes(lib_server: Any, lib_ctx: LibraryServices, tmp_path: Path) -> None:
    """Watcher start/stop per folder and for all, with the contract's messages and codes."""
    url = lib_server.url
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = add_directory(lib_ctx, tmp_path / "a")
    b = add_directory(lib_ctx, tmp_path / "b")
    off = add_directory(lib_ctx, tmp_path / "off", is_active=False)
    status = httpx.get(f"{url}/api/watcher/status").json()
    assert status["success"] is True and status["data"]["activeCount"] == 0
    r = httpx.post(f"{url}/api/watcher/start/{a}")
    assert r.json() == {"success": True, "message": f"Started watching directory {a}"}
    r = httpx.post(f"{url}/api/watcher/start/{a}")
    assert r.status_code == 400 and r.json() == {
        "success": False, "error": f"Directory {a} is already being watched"}
    assert httpx.post(f"{url}/api/watcher/start/{uuid.uuid4()}").status_code == 404
    assert httpx.post(f"{url}/api/watcher/start/{off}").status_code == 404
    assert httpx.post(f"{url}/api/watcher/start/xyz").status_code == 400
    data = httpx.get(f"{url}/api/watcher/status").json()["data"]
    assert data["activeCount"] == 1
    w = data["watchers"][0]
    assert (w["directoryId"], w["directoryName"], w["directoryPath"]) == (a, "a",
                                                                          str(tmp_path / "a"))
    assert w["startTime"].endswith("Z") and w["uptime"] >= 0
    r = httpx.post(f"{url}/api/watcher/stop/{a}")
    assert r.json() == {"success": True, "message": f"Stopped watching directory {a}"}
    r = httpx.post(f"{url}/api/watcher/stop/{a}")
    assert r.status_code == 404 and r.json()["error"] == f"Directory {a} is not being watched"
    r = httpx.post(f"{url}/api/watcher/start-all")
    assert r.json() == {"success": True, "message": "Started watching 2 directories", "count": 2}
    ids = {w["directoryId"] for w in httpx.get(f"{url}/api/watcher/status").json()["data"][
        "watchers"]}
    assert ids == {a, b}
    r = httpx.post(f"{url}/api/watcher/stop-all")
    assert r.json() == {"success": True, "message": "Stopped watching 2 directories", "count": 2}
    assert httpx.get(f"{url}/api/watcher/status").json()["data"]["activeCount"] == 0
