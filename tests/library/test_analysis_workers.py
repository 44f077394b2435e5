"""Analysis on several machines: a Redis queue, a PostgreSQL library and two
``taperoom library worker`` processes.

Each test starts a real ``redis-server`` and uses a fresh database of the
session's PostgreSQL server; the library services of the test process queue the
analysis of short generated drum loops (they run no job themselves:
``MAX_CONCURRENT_ANALYSIS=0``, never leading), and two worker processes, given the
node names of two machines, run them. A node name that is not this machine's
makes each worker judge the other by its heartbeat only, as it would across
machines. What each worker did is read from the database: the job rows and the
``analysis:*`` events the workers relay through ``library_events``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from taperoom.library import models
from taperoom.library.context import LibraryServices, build_services
from tests.library.analysislib import drum_loop, scanned_library, track_by_name
from tests.library.redisserver import RedisServer, redis_server  # noqa: F401 (fixture)
from tests.polling import stop_process, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: Seconds of silent heartbeat after which a worker is taken for dead (JOB_STALE_SECONDS).
STALE = 5.0
#: Seconds a test waits for anything at most (generous: two shared cores).
DEADLINE = 90.0
#: Seconds of audio of the job a worker is stopped or killed in: long enough (seconds of
#: analysis) that the job is still running when the signal arrives, whatever the load.
LONG = 240.0


class Worker:
    """``taperoom library worker --name <node>`` in a subprocess, its output in a file
    (``taperoom worker --app library`` for node ``machine-b``: both forms run it)."""

    def __init__(self, node: str, env: dict[str, str], folder: Path,
                 concurrency: int = 1) -> None:
        self.node = node
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "worker.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "taperoom",
                 *(["worker", "--app", "library"] if node == "machine-b"
                   else ["library", "worker"]),
                 "--concurrency", str(concurrency), "--name", node],
                env={**os.environ, **env, "DATA_DIR": str(folder)},
                stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        """What the worker printed so far."""
        return self.log.read_text(errors="replace")

    def wait_running(self) -> None:
        """Wait until the worker says that it takes jobs."""
        def ready() -> bool:
            assert self.proc.poll() is None, f"worker {self.node} ended:\n{self.output()}"
            return "library analysis worker" in self.output()

        wait_for(ready, DEADLINE, f"worker {self.node} to start")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL when it does not end within 30 s."""
        stop_process(self.proc, 30)


@pytest.fixture
def cluster(tmp_path: Path, pg_database: str, redis_server: RedisServer,  # noqa: F811
            lib_settings: Callable[..., Any]
            ) -> Iterator[tuple[LibraryServices, Callable[[str], Worker]]]:
    """The test's library services (queueing only) and a factory of worker processes
    on the same PostgreSQL database and Redis queue; all stopped after the test."""
    settings = lib_settings(database_url=pg_database, redis_url=redis_server.url,
                            max_concurrent_analysis=0, job_stale_seconds=STALE)
    ctx = build_services(settings, lead=False)
    env = {"DATABASE_URL": pg_database, "REDIS_URL": redis_server.url,
           "JOB_STALE_SECONDS": str(STALE), "LOG_LEVEL": "INFO",
           "ANALYZE_ON_SCAN": "false", "FILE_WATCHER_ENABLED": "false",
           "SCAN_ON_STARTUP": "false"}
    workers: list[Worker] = []

    def start(node: str) -> Worker:
        worker = Worker(node, env, tmp_path / node)
        workers.append(worker)
        return worker

    try:
        yield ctx, start
    finally:
        for worker in workers:
            worker.stop()
        ctx.close()


def _library(ctx: LibraryServices, folder: Path, count: int, seconds: float | list[float]
             ) -> list[models.Track]:
    """`count` drum loops of `seconds` each (or of each length of a list; other tempi and
    keys), scanned."""
    lengths = seconds if isinstance(seconds, list) else [seconds] * count
    names = []
    for i in range(count):
        name = f"loop{i}.wav"
        drum_loop(folder / name, 96.0 + 11 * i, lengths[i], root=196.0 + 20 * i)
        names.append(name)
    scanned_library(ctx, folder)
    return [track_by_name(ctx, name) for name in names]


def _events(ctx: LibraryServices, name: str) -> list[tuple[str, dict[str, Any]]]:
    """(origin, payload) of the relayed events called `name`, in order."""
    with ctx.db() as s:
        rows = s.scalars(select(models.RelayedEvent).where(models.RelayedEvent.name == name)
                         .order_by(models.RelayedEvent.id)).all()
        return [(r.origin, json.loads(r.data)) for r in rows]


def _per_job(ctx: LibraryServices, name: str) -> Counter[str]:
    return Counter(str(d["jobId"]) for _, d in _events(ctx, name))


def _jobs(ctx: LibraryServices) -> list[models.Job]:
    with ctx.db() as s:
        rows = list(s.scalars(select(models.Job).where(models.Job.kind == "analysis")))
        for row in rows:
            s.expunge(row)
        return rows


def _analysis_rows(ctx: LibraryServices) -> list[models.AnalysisJob]:
    with ctx.db() as s:
        rows = list(s.scalars(select(models.AnalysisJob)))
        for row in rows:
            s.expunge(row)
        return rows


def _runs(ctx: LibraryServices, file_hash: str, node: str) -> bool:
    """Whether the job row of `file_hash` says that `node` runs it now."""
    return any(j.subject == file_hash and j.state == "running"
               and (j.owner or "").startswith(f"{node}:") for j in _jobs(ctx))


def _long_job_on_a(ctx: LibraryServices, start: Callable[[str], Worker],
                   track: models.Track) -> Worker:
    """Start machine-a alone and give it the analysis of `track` (a :data:`LONG` one);
    returns the worker once the job's row says that machine-a runs it."""
    a = start("machine-a")
    a.wait_running()
    ctx.analysis.request({"track_id": track.id})
    # its row says so, and its start event has been relayed (a worker's events reach the
    # table in batches: one killed before its batch is written would take it along)
    wait_for(lambda: _runs(ctx, track.file_hash, "machine-a")
             and any(o.startswith("machine-a:") and d["jobId"] == track.file_hash
                     for o, d in _events(ctx, "analysis:started")),
             DEADLINE, "machine-a to run the long job")
    return a


def _health(ctx: LibraryServices) -> str | None:
    """The message of ``GET /api/analysis/health`` when healthy, else None."""
    healthy, answer = ctx.analysis.health()
    return str(answer["message"]) if healthy else None


def _all_done(ctx: LibraryServices, hashes: set[str]) -> bool:
    rows = _analysis_rows(ctx)
    return {r.job_id for r in rows if r.status == "completed"} >= hashes


def _assert_each_analysed_once(ctx: LibraryServices, tracks: list[models.Track]) -> None:
    """One job row (done) and one completed analysis row per recording, one
    ``analysis:complete`` event each, and the results on every track."""
    hashes = {t.file_hash for t in tracks}
    jobs = _jobs(ctx)
    assert sorted(j.subject for j in jobs) == sorted(hashes), "one job row per recording"
    assert {j.state for j in jobs} == {"done"}, [(j.subject, j.state, j.error) for j in jobs]
    rows = _analysis_rows(ctx)
    assert sorted(r.job_id for r in rows) == sorted(hashes)
    assert {r.status for r in rows} == {"completed"}
    assert _per_job(ctx, "analysis:complete") == Counter({h: 1 for h in hashes})
    with ctx.db() as s:
        for track in tracks:
            row = s.get(models.Track, track.id)
            assert row is not None and row.bpm is not None and row.musical_key is not None
            assert row.date_analyzed is not None
            levels = s.scalars(select(models.Waveform.zoom_level)
                               .where(models.Waveform.file_hash == track.file_hash)).all()
            assert sorted(levels) == [0, 1, 2]


def test_two_workers_share_the_queue_and_run_each_job_once(
        cluster: tuple[LibraryServices, Callable[[str], Worker]], tmp_path: Path) -> None:
    ctx, start = cluster
    tracks = _library(ctx, tmp_path / "music", 4, 8.0)
    healthy, answer = ctx.analysis.health()
    assert not healthy and "No analysis worker is running" in answer["message"]
    a, b = start("machine-a"), start("machine-b")
    a.wait_running()
    b.wait_running()
    wait_for(lambda: _health(ctx) == "Analysis is running in 2 worker process(es) on "
             "machine-a, machine-b", DEADLINE, "the server to hear from both workers")
    assert [(w["node"], w["slots"]) for w in ctx.analysis.workers()] == [
        ("machine-a", 1), ("machine-b", 1)]
    for track in tracks:
        ctx.analysis.request({"track_id": track.id})
    hashes = {t.file_hash for t in tracks}
    wait_for(lambda: _all_done(ctx, hashes), DEADLINE, "every analysis to complete")
    wait_for(lambda: sum(_per_job(ctx, "analysis:complete").values()) >= len(hashes), DEADLINE,
             "the workers' events")
    _assert_each_analysed_once(ctx, tracks)
    started = _events(ctx, "analysis:started")
    assert Counter(str(d["jobId"]) for _, d in started) == Counter({h: 1 for h in hashes})
    nodes = {origin.partition(":")[0] for origin, _ in started}
    assert nodes == {"machine-a", "machine-b"}, "both workers took jobs"


def test_a_killed_workers_job_is_finished_by_the_other_one(
        cluster: tuple[LibraryServices, Callable[[str], Worker]], tmp_path: Path) -> None:
    ctx, start = cluster
    tracks = _library(ctx, tmp_path / "music", 3, [LONG, 30.0, 30.0])
    a = _long_job_on_a(ctx, start, tracks[0])
    victim = tracks[0].file_hash
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(30)
    assert _runs(ctx, victim, "machine-a"), "the job was still running when its worker died"
    b = start("machine-b")
    b.wait_running()
    for track in tracks[1:]:
        ctx.analysis.request({"track_id": track.id})
    wait_for(lambda: _health(ctx) == "Analysis is running in 1 worker process(es) on "
             "machine-b", DEADLINE, "the server to take the killed worker for gone")
    hashes = {t.file_hash for t in tracks}
    wait_for(lambda: _all_done(ctx, hashes), DEADLINE, "every analysis to complete")
    wait_for(lambda: sum(_per_job(ctx, "analysis:complete").values()) >= len(hashes), DEADLINE,
             "the workers' events")
    _assert_each_analysed_once(ctx, tracks)
    completed = {str(d["jobId"]): origin for origin, d in _events(ctx, "analysis:complete")}
    assert completed[victim].startswith("machine-b:")
    started = _events(ctx, "analysis:started")
    runs = Counter(str(d["jobId"]) for _, d in started)
    assert runs == Counter({h: 2 if h == victim else 1 for h in hashes}), \
        "only the killed worker's job ran again"
    assert b.proc.poll() is None, b.output()


def test_a_stopped_worker_hands_its_job_back(
        cluster: tuple[LibraryServices, Callable[[str], Worker]], tmp_path: Path) -> None:
    ctx, start = cluster
    tracks = _library(ctx, tmp_path / "music", 1, LONG)
    a = _long_job_on_a(ctx, start, tracks[0])
    file_hash = tracks[0].file_hash
    a.proc.send_signal(signal.SIGTERM)
    assert a.proc.wait(60) == 0, a.output()
    job = next(j for j in _jobs(ctx) if j.subject == file_hash)
    assert job.state == "queued" and job.owner is None, "handed back, not left running"
    b = start("machine-b")
    b.wait_running()
    wait_for(lambda: _all_done(ctx, {file_hash}), DEADLINE, "the analysis to complete")
    wait_for(lambda: _per_job(ctx, "analysis:complete")[file_hash], DEADLINE, "the complete event")
    _assert_each_analysed_once(ctx, tracks)
    origins = [o.partition(":")[0] for o, _ in _events(ctx, "analysis:started")]
    assert origins == ["machine-a", "machine-b"]


def test_a_worker_without_the_file_fails_the_job_naming_the_machine(
        cluster: tuple[LibraryServices, Callable[[str], Worker]], tmp_path: Path) -> None:
    ctx, start = cluster
    tracks = _library(ctx, tmp_path / "music", 1, 4.0)
    Path(tracks[0].file_path).unlink()  # as on a machine where the folder is not mounted
    a = start("machine-a")
    a.wait_running()
    ctx.analysis.request({"track_id": tracks[0].id})
    file_hash = tracks[0].file_hash
    wait_for(lambda: any(r.status == "failed" for r in _analysis_rows(ctx)), DEADLINE,
             "the job to fail")
    row = next(r for r in _analysis_rows(ctx) if r.job_id == file_hash)
    assert row.last_error == (f"File not found: {tracks[0].file_path} on worker machine-a "
                              "(mount the library folders at the same paths on every "
                              "worker machine)")
    assert a.proc.poll() is None, a.output()


def test_a_worker_silent_too_long_gives_its_job_up_to_the_one_that_took_it(
        cluster: tuple[LibraryServices, Callable[[str], Worker]], tmp_path: Path) -> None:
    """A paused machine (SIGSTOP) is taken for dead; when it wakes up it must not end
    the job that the other worker runs now, nor store or announce its results."""
    ctx, start = cluster
    tracks = _library(ctx, tmp_path / "music", 2, [LONG, 30.0])
    a = _long_job_on_a(ctx, start, tracks[0])
    victim = tracks[0].file_hash
    a.proc.send_signal(signal.SIGSTOP)
    try:
        b = start("machine-b")
        b.wait_running()
        ctx.analysis.request({"track_id": tracks[1].id})
        wait_for(lambda: _runs(ctx, victim, "machine-b"), DEADLINE,
                 "machine-b to take the silent worker's job")
    finally:
        a.proc.send_signal(signal.SIGCONT)

    def a_done_with_it() -> bool:  # it gave the job up, or (wrongly) ended it itself
        ended = [*_events(ctx, "analysis:complete"), *_events(ctx, "analysis:failed")]
        return ("taken over by another process" in a.output()
                or any(o.startswith("machine-a:") and d["jobId"] == victim
                       for o, d in ended))

    wait_for(a_done_with_it, DEADLINE, "machine-a to be done with the job it lost")
    hashes = {t.file_hash for t in tracks}
    wait_for(lambda: _all_done(ctx, hashes), DEADLINE, "every analysis to complete")
    wait_for(lambda: sum(_per_job(ctx, "analysis:complete").values()) >= len(hashes), DEADLINE,
             "the workers' events")
    _assert_each_analysed_once(ctx, tracks)
    completed = [(o, str(d["jobId"])) for o, d in _events(ctx, "analysis:complete")]
    assert [o.partition(":")[0] for o, h in completed if h == victim] == ["machine-b"]
    failed = _events(ctx, "analysis:failed")
    assert failed == [], "the silent worker announced nothing of the job it lost"
    assert a.proc.poll() is None, a.output()
