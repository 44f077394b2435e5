"""Positions stay 0..n-1 and ordered under concurrent requests (real server, threads)."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.library.playlistkit import add, assert_dense, create, entries, make_tracks

pytestmark = pytest.mark.backends()

THREADS = 8


def run_all(jobs: list[Callable[[httpx.Client], int]], url: str) -> list[int]:
    """Run `jobs` on `THREADS` threads, each with its own client; their status codes."""
    clients = [httpx.Client(base_url=url, timeout=60) for _ in range(THREADS)]
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(job, clients[i % THREADS]) for i, job in enumerate(jobs)]
            return [f.result() for f in futures]
    finally:
        for client in clients:
            client.close()


def test_concurrent_adds_removes_and_reorders(lib_server: Any, lib_ctx: Any, corpus: Path,
                                              tmp_path: Path) -> None:
    """Adds (at positions), removes and reorders from 8 threads at once: every answer is
    200, 404 (already removed) or 409 (already there; a reorder of a stale list), and
    the playlist ends dense, each track once, as the last GET shows it."""
    tracks = make_tracks(lib_ctx, corpus, tmp_path / "music", 30)
    rng = random.Random(13)
    with httpx.Client(base_url=lib_server.url, timeout=30) as api:
        pid = create(api)["id"]
        add(api, pid, tracks[:10])

    def adder(track_id: str, position: int | None) -> Callable[[httpx.Client], int]:
        extra = {} if position is None else {"position": position}
        return lambda c: add(c, pid, [track_id], **extra).status_code

    def remover(track_id: str) -> Callable[[httpx.Client], int]:
        return lambda c: c.delete(f"/api/playlists/{pid}/tracks/{track_id}").status_code

    def reorderer(seed: int) -> Callable[[httpx.Client], int]:
        def job(c: httpx.Client) -> int:
            order = [e["track_id"] for e in c.get(f"/api/playlists/{pid}").json()["tracks"]]
            random.Random(seed).shuffle(order)
            return c.put(f"/api/playlists/{pid}/tracks/reorder",
                         json={"track_ids": order}).status_code
        return job

    jobs: list[Callable[[httpx.Client], int]] = []
    for i in range(60):
        kind = i % 3
        if kind == 0:
            jobs.append(adder(rng.choice(tracks), rng.choice([None, 0, 3, 7])))
        elif kind == 1:
            jobs.append(remover(rng.choice(tracks)))
        else:
            jobs.append(reorderer(i))
    statuses = run_all(jobs, lib_server.url)
    assert set(statuses) <= {200, 404, 409}, statuses
    assert statuses.count(200) >= 10
    order = assert_dense(lib_ctx, pid)
    assert len(order) == len(set(order))
    with httpx.Client(base_url=lib_server.url, timeout=30) as api:
        shown = api.get(f"/api/playlists/{pid}").json()["tracks"]
    assert [e["track_id"] for e in shown] == order
    assert [e["position"] for e in shown] == list(range(len(order)))


def test_concurrent_adds_of_one_track_and_session_plays(lib_server: Any, lib_ctx: Any,
                                                        corpus: Path, tmp_path: Path) -> None:
    """The same track added by 8 clients at once: one 200, the others 409. The same
    track logged 8 times at once in a session: 8 plays, occurrences 0-7, dense."""
    tracks = make_tracks(lib_ctx, corpus, tmp_path / "music", 2)
    with httpx.Client(base_url=lib_server.url, timeout=30) as api:
        pid = create(api)["id"]
        sid = api.post("/api/playlists/sessions/start", json={}).json()["id"]
    statuses = run_all([lambda c: add(c, pid, [tracks[0]]).status_code] * THREADS,
                       lib_server.url)
    assert sorted(statuses) == [200] + [409] * (THREADS - 1)
    assert entries(lib_ctx, pid) == [(tracks[0], 0, 0)]

    def log(c: httpx.Client) -> int:
        return c.post(f"/api/playlists/sessions/{sid}/track",
                      json={"track_id": tracks[1]}).status_code

    assert run_all([log] * THREADS, lib_server.url) == [200] * THREADS
    rows = entries(lib_ctx, sid)
    assert sorted(r[1] for r in rows) == list(range(THREADS))
    assert [r[2] for r in rows] == list(range(THREADS))


def test_concurrent_thinking_requests_make_one_playlist(lib_server: Any) -> None:
    """Clients asking for the thinking playlist at once all get the same one."""
    def ask(c: httpx.Client) -> int:
        r = c.get("/api/playlists/thinking")
        assert r.status_code == 200, r.text
        return 200
    run_all([ask] * THREADS, lib_server.url)
    with httpx.Client(base_url=lib_server.url, timeout=30) as api:
        temps = api.get("/api/playlists", params={"type": "temp"}).json()
    assert temps["count"] == 1
