"""``taperoom library serve --workers 3``: three real worker processes on one library.

Each test starts the server as a subprocess on 127.0.0.1 and talks to chosen
workers: uvicorn's workers share one listening socket, so a new connection
lands on whichever process accepts it first; a test opens connections until it
holds one to each process it needs (``GET /api/worker`` names the process of
an HTTP connection, the ``X-Taperoom-Worker`` header of the handshake that of
a WebSocket), and a kept-alive connection stays with its process.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import ServerProcess
from tests.library.test_scanner import copy_corpus
from tests.polling import wait_for

#: Seconds allowed for anything that should happen "soon" (generous: 2 shared cores).
DEADLINE = 60.0
WORKERS = 3
MP3 = "01 - Muldjord - Armygeddon.mp3"


class Cluster:
    """A library server with several worker processes, and connections pinned to them."""

    def __init__(self, server: ServerProcess, data: Path) -> None:
        self.server = server
        self.url = server.url
        self.data = data
        self.clients: dict[int, httpx.Client] = {}
        self._spare: list[httpx.Client] = []

    def whoami(self, client: httpx.Client) -> dict[str, Any]:
        r = client.get("/api/worker")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()["data"]
        return data

    def pin(self, count: int = WORKERS) -> dict[int, httpx.Client]:
        """One kept-alive client per worker process, for `count` processes."""

        def one_more() -> bool:
            client = httpx.Client(base_url=self.url, timeout=DEADLINE)
            try:
                pid = self.whoami(client)["pid"]
            except httpx.HTTPError:
                client.close()
                return False
            if pid in self.clients:
                self._spare.append(client)  # kept open: the next one goes elsewhere
            else:
                self.clients[pid] = client
            return len(self.clients) >= count

        if len(self.clients) < count:
            wait_for(one_more, DEADLINE, f"connections to {count} worker processes")
        return self.clients

    def leader(self) -> int:
        """Pid of the leading worker (asked through fresh connections until one says so)."""

        def leading() -> int | None:
            for client in list(self.clients.values()):
                try:
                    me = self.whoami(client)
                except httpx.HTTPError:
                    continue
                if me["leader"]:
                    return int(me["pid"])
            self.clients.clear()
            self.pin()
            return None

        return wait_for(leading, DEADLINE, "a worker that leads")

    def close(self) -> None:
        for client in [*self.clients.values(), *self._spare]:
            client.close()

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data / "library.db", timeout=30)

    def add_folder(self, path: Path) -> str:
        client = next(iter(self.clients.values()))
        r = client.post("/api/library/directories", json={"path": str(path)})
        assert r.status_code == 201, r.text
        return str(r.json()["data"]["id"])

    def wait_idle(self, directory_id: str) -> dict[str, Any]:
        def idle() -> dict[str, Any] | None:
            client = next(iter(self.clients.values()))
            body = client.get(f"/api/scan/library/{directory_id}/status").json()
            return None if body["data"]["scanning"] else dict(body["data"])

        return wait_for(idle, DEADLINE, f"the scan of folder {directory_id} to end")


@pytest.fixture
def cluster(server_process: Callable[[list[str], dict[str, str]], ServerProcess],
            tmp_path: Path) -> Iterator[Cluster]:
    """``taperoom library serve --workers 3`` on a fresh library in tmp_path."""
    data = tmp_path / "data"
    env = {"DATABASE_PATH": str(data / "library.db"), "DATABASE_URL": "",
           "DATA_DIR": str(data), "SCAN_ON_STARTUP": "false",
           "FILE_WATCHER_ENABLED": "false", "SCAN_WORKERS": "1", "LOG_LEVEL": "warning"}
    server = server_process(["library", "serve", "--workers", str(WORKERS)], env)
    c = Cluster(server, data)
    c.pin()
    try:
        yield c
    finally:
        c.close()


def scan_jobs(cluster: Cluster, did: str) -> list[tuple[str, str, str | None]]:
    """(state, created_at, finished_at) of every scan job of folder `did`, oldest first."""
    with cluster.db() as db:
        return db.execute("SELECT state, created_at, finished_at FROM library_jobs"
                          " WHERE kind = 'scan' AND subject = ? ORDER BY created_at",
                          (did,)).fetchall()


@pytest.mark.slow
def test_two_scans_of_one_folder_through_two_workers_run_once(cluster: Cluster,
                                                               corpus: Path,
                                                               tmp_path: Path) -> None:
    """Scan requests for one folder sent at once to two workers: one 202, one 409 with
    the running scan, and exactly one scan job ran.

    On a loaded machine one worker may take the request only after the other's scan
    has ended; both are then rightly accepted (a 409 is owed only while a scan is
    queued or running), which the test checks from the jobs' times before it tries
    again on a fresh folder.
    """
    a, b = list(cluster.clients.values())[:2]

    def race(did: str) -> list[httpx.Response]:
        barrier = threading.Barrier(2)
        answers: list[httpx.Response] = []

        def request(client: httpx.Client) -> None:
            barrier.wait()
            answers.append(client.post(f"/api/scan/library/{did}",
                                       json={"strategy": "full"}))

        threads = [threading.Thread(target=request, args=(c,)) for c in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE)
        return answers

    for attempt in range(3):
        did = cluster.add_folder(copy_corpus(corpus, tmp_path / f"lib{attempt}"))
        answers = race(did)
        codes = sorted(r.status_code for r in answers)
        if codes == [202, 409]:
            break
        assert codes == [202, 202], [r.text for r in answers]
        cluster.wait_idle(did)
        (_, _, first_ended), (_, second_queued, _) = scan_jobs(cluster, did)
        assert first_ended is not None and second_queued >= first_ended, \
            "two scans of one folder were queued or running at once"
    else:
        pytest.fail("in three tries the two requests never met a queued or running scan")
    refused = next(r for r in answers if r.status_code == 409).json()
    assert refused["error"] == "Scan already in progress"
    assert refused["data"]["scanning"] is True and refused["data"]["libraryDirectoryId"] == did
    status = cluster.wait_idle(did)
    assert status["lastResult"]["tracksAdded"] == 32
    assert [job[0] for job in scan_jobs(cluster, did)] == ["done"]
    with cluster.db() as db:
        tracks = db.execute("SELECT count(*), count(DISTINCT file_path) FROM tracks"
                            " WHERE library_directory_id = ?", (did,)).fetchone()
    assert tracks == (32, 32)


@pytest.mark.slow
def test_twenty_concurrent_moves_through_three_workers_stay_consistent(
        cluster: Cluster, corpus: Path, tmp_path: Path) -> None:
    """20 moves of one track sent at once through three workers run one after another
    (each from where the previous left the file): one file, where the database says."""
    root = tmp_path / "music"
    (root / "Artist").mkdir(parents=True)
    shutil.copyfile(corpus / "scanner" / "real_music_tagged" / MP3, root / "Artist" / MP3)
    original = (root / "Artist" / MP3).read_bytes()
    did = cluster.add_folder(root)
    first = next(iter(cluster.clients.values()))
    assert first.post(f"/api/scan/library/{did}").status_code == 202
    cluster.wait_idle(did)
    [track] = first.get("/api/tracks").json()["data"]
    clients = list(cluster.clients.values())
    barrier = threading.Barrier(20)
    answers: list[httpx.Response] = []

    def move(i: int) -> None:
        barrier.wait()
        answers.append(clients[i % len(clients)].post(
            f"/api/tracks/{track['id']}/move", json={"destination_path": f"Box {i:02d}"}))

    threads = [threading.Thread(target=move, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert [r.status_code for r in answers] == [200] * 20, [r.text for r in answers]
    with cluster.db() as db:
        ops = db.execute("SELECT old_path, new_path, status FROM file_operations ORDER BY id"
                         ).fetchall()
        [(path,)] = db.execute("SELECT file_path FROM tracks").fetchall()
    assert len(ops) == 20 and {status for _, _, status in ops} == {"completed"}
    assert ops[0][0] == str(root / "Artist" / MP3)
    for before, after in itertools.pairwise(ops):
        assert after[0] == before[1]  # each started where the previous one ended
    assert path == ops[-1][1]
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files == [Path(path)]  # no copy left behind, no file lost, no hidden leftover
    assert Path(path).read_bytes() == original


async def _ws_on(url: str, pid: int) -> Any:
    """A WebSocket connection served by worker `pid` (others are closed)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        ws = await websockets.connect(url)
        if int(ws.response.headers["x-taperoom-worker"]) == pid:
            return ws
        await ws.close()
        assert time.monotonic() < deadline, f"no WebSocket reached worker {pid}"


@pytest.mark.slow
def test_websocket_on_one_worker_sees_a_scan_started_through_another(
        cluster: Cluster, corpus: Path, tmp_path: Path) -> None:
    """The scan runs in the leader, is requested through a second worker and watched
    from a third: its client gets scan:started, scan:progress and scan:complete."""
    did = cluster.add_folder(copy_corpus(corpus, tmp_path / "lib"))
    leader = cluster.leader()
    others = [pid for pid in cluster.clients if pid != leader]
    watcher_pid, requester_pid = others[0], others[1]

    async def run() -> list[dict[str, Any]]:
        ws = await _ws_on(cluster.url.replace("http://", "ws://") + "/ws", watcher_pid)
        try:
            assert json.loads(await ws.recv())["event"] == "connected"
            r = await asyncio.to_thread(cluster.clients[requester_pid].post,
                                        f"/api/scan/library/{did}")
            assert r.status_code == 202, r.text
            seen: list[dict[str, Any]] = []
            while not any(m["event"] == "library:directory:scan:complete" for m in seen):
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), DEADLINE)))
            return seen
        finally:
            await ws.close()

    seen = asyncio.run(run())
    names = [m["event"] for m in seen]
    assert "library:directory:scan:started" in names
    progress = [m["data"] for m in seen if m["event"] == "library:directory:scan:progress"]
    assert progress and all(p["directoryId"] == did for p in progress)
    assert progress[-1]["phase"] == "done" and progress[-1]["percent"] == 100.0
    assert names.count("track:added") == 32
    complete = seen[-1]["data"]
    assert complete["directoryId"] == did and complete["result"]["tracksAdded"] == 32


@pytest.mark.slow
def test_killing_the_leader_hands_its_scan_and_duties_to_another_worker(
        cluster: Cluster, corpus: Path, tmp_path: Path) -> None:
    """The leader is killed in the middle of a scan: another worker takes the lead,
    finishes that scan, and runs new ones."""
    did = cluster.add_folder(copy_corpus(corpus, tmp_path / "lib"))
    leader = cluster.leader()
    client = next(c for pid, c in cluster.clients.items() if pid != leader)
    assert client.post(f"/api/scan/library/{did}", json={"strategy": "full"}
                       ).status_code == 202
    wait_for(lambda: client.get(f"/api/scan/library/{did}/status").json()["data"].get(
        "state") == "running", DEADLINE, "the scan to run")
    cluster.clients.pop(leader).close()
    os.kill(leader, signal.SIGKILL)
    status = cluster.wait_idle(did)
    assert status["lastResult"]["cancelled"] is False
    with cluster.db() as db:
        assert db.execute("SELECT count(*) FROM tracks").fetchone() == (32,)
    new_leader = cluster.leader()
    assert new_leader != leader
    other = copy_corpus(corpus, tmp_path / "other")
    second = cluster.add_folder(other)
    assert client.post(f"/api/scan/library/{second}").status_code == 202
    assert cluster.wait_idle(second)["lastResult"]["tracksAdded"] == 32
