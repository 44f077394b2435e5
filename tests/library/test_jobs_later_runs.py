"""The job layer's later runs, priorities raised in the queue, lost tasks and paused kinds.

Each test runs a :class:`~taperoom.library.jobqueue.JobQueue` on a real, migrated
SQLite library database and a real SQLite Huey queue in ``tmp_path``, with its
own consumers, and a kind of job whose handler the test controls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from taperoom.db import make_engine, make_sessionmaker, transaction
from taperoom.jobs import Priority, make_huey
from taperoom.library import migrate
from taperoom.library.jobqueue import JobQueue, JobRun, RunAgain
from taperoom.library.models import Job, utcnow

DEADLINE = 30.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.fixture
def queue(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[JobQueue]:
    """A job queue on a fresh library database, not consuming yet; its heartbeat every
    50 ms, or every ``@pytest.mark.parametrize("queue", [poll], indirect=True)``."""
    engine = make_engine(f"sqlite:///{tmp_path / 'library.db'}")
    migrate.upgrade(engine)
    q = JobQueue(make_sessionmaker(engine),
                 huey_for=lambda kind: make_huey(f"library-{kind}", data_dir=tmp_path,
                                                 priority=True, store="library"),
                 owner="test:1:main", poll=getattr(request, "param", 0.05))
    yield q
    q.close()
    engine.dispose()


def _row(q: JobQueue, job_id: int) -> Job:
    with q.db() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def test_run_again_queues_the_job_after_its_delay_at_its_new_priority(
        queue: JobQueue) -> None:
    """A handler raising RunAgain(delay, priority) runs again no sooner than the delay,
    at the new priority, and its job then ends ``done`` with the second result."""
    runs: list[tuple[float, int]] = []

    def handler(run: JobRun) -> dict[str, Any]:
        runs.append((time.monotonic(), _row(queue, run.id).priority))
        if len(runs) == 1:
            raise RunAgain(1.0, priority=Priority.HIGH, reason="first pass done")
        return {"passes": len(runs)}

    queue.register("work", handler, concurrency=1, cancelled_result=lambda j: {})
    queue.start_consumers()
    info = queue.submit("work", "s1", priority=Priority.LOW, params={})
    assert queue.wait("work", "s1", DEADLINE)
    job = _row(queue, info.id)
    assert (job.state, job.result, job.priority) == ("done", {"passes": 2}, Priority.HIGH)
    assert [p for _, p in runs] == [Priority.LOW, Priority.HIGH]
    assert runs[1][0] - runs[0][0] >= 1.0


def test_promote_moves_a_queued_job_ahead(queue: JobQueue) -> None:
    """With one consumer busy, a LOW job promoted to URGENT runs before a NORMAL one
    queued before it; promoting never lowers a priority."""
    gate = threading.Event()
    order: list[str] = []

    def handler(run: JobRun) -> dict[str, Any]:
        if run.info.subject == "blocker":
            gate.wait(DEADLINE)
        order.append(run.info.subject)
        return {}

    queue.register("work", handler, concurrency=1, cancelled_result=lambda j: {})
    queue.start_consumers()
    queue.submit("work", "blocker", priority=Priority.NORMAL, params={})
    wait_for(lambda: queue.running_here() != set(), "the blocker runs")
    queue.submit("work", "normal", priority=Priority.NORMAL, params={})
    queue.submit("work", "late", priority=Priority.LOW, params={})
    promoted = queue.promote("work", "late", Priority.URGENT)
    assert promoted is not None and promoted.priority == Priority.URGENT
    again = queue.promote("work", "late", Priority.LOW)
    assert again is not None and again.priority == Priority.URGENT
    assert queue.promote("work", "nothing", Priority.HIGH) is None
    gate.set()
    for subject in ("blocker", "normal", "late"):
        assert queue.wait("work", subject, DEADLINE)
    assert order == ["blocker", "late", "normal"]


def test_reconcile_queues_again_a_job_whose_task_was_lost(queue: JobQueue) -> None:
    """A ``queued`` row without a task in the queue (lost between a dequeue and the claim)
    gets a task again and runs; a job whose task is there is left alone."""
    ran: list[str] = []

    def handler(run: JobRun) -> dict[str, Any]:
        ran.append(run.info.subject)
        return {}

    queue.register("work", handler, concurrency=1, cancelled_result=lambda j: {})
    queue.submit("work", "with-task", priority=Priority.NORMAL, params={})
    with transaction(queue.db) as s:
        s.add(Job(kind="work", subject="lost", active_key="work:lost", state="queued",
                  priority=int(Priority.NORMAL), params={}, cancel_requested=False,
                  created_at=utcnow()))
    assert queue.reconcile() == 1
    assert queue.reconcile() == 0  # both have their task now
    queue.start_workers(["work"])
    assert queue.wait("work", "lost", DEADLINE)
    assert queue.wait("work", "with-task", DEADLINE)
    assert sorted(ran) == ["lost", "with-task"]


def test_stop_kind_requeues_the_running_job_and_resume_kind_finishes_it(
        queue: JobQueue) -> None:
    """Pausing a kind interrupts its running job, which goes back to the queue (not
    failed, not cancelled); resuming runs it to the end."""
    starts: list[int] = []

    def handler(run: JobRun) -> dict[str, Any]:
        starts.append(run.id)
        if len(starts) == 1:
            run.cancelled.wait(DEADLINE)
            return {"cancelled": True}
        return {"ok": True}

    queue.register("work", handler, concurrency=1, cancelled_result=lambda j: {})
    queue.start_consumers()
    info = queue.submit("work", "s1", priority=Priority.NORMAL, params={})
    wait_for(lambda: starts != [], "the job starts")
    queue.stop_kind("work")
    assert not queue.consuming("work")
    assert _row(queue, info.id).state == "queued"
    queue.resume_kind("work")
    assert queue.consuming("work")
    assert queue.wait("work", "s1", DEADLINE)
    assert (_row(queue, info.id).state, _row(queue, info.id).result) == ("done", {"ok": True})
    assert starts == [info.id, info.id]


def test_take_runs_a_queued_job_here_and_its_task_then_runs_nothing(
        queue: JobQueue) -> None:
    """A command takes a job waiting for consumers that do not run and runs it in its own
    thread; the task left in the queue finds it done; a running or absent job is not
    taken."""
    threads: list[str] = []

    def handler(run: JobRun) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return {"by": run.info.subject}

    queue.register("work", handler, concurrency=1, cancelled_result=lambda j: {})
    info = queue.submit("work", "s1", priority=Priority.NORMAL, params={})
    assert queue.take("work", "s1", handler=handler) == {"by": "s1"}
    assert threads == [threading.current_thread().name]
    assert _row(queue, info.id).state == "done"
    assert queue.take("work", "s1", handler=handler) is None
    queue.start_consumers()
    queue.submit("work", "s2", priority=Priority.NORMAL, params={})
    assert queue.wait("work", "s2", DEADLINE)
    assert len(threads) == 2  # s2 by the consumer; s1's old task ran nothing


@pytest.mark.parametrize("queue", [0.001], indirect=True)
def test_jobs_that_end_while_the_heartbeat_runs_are_not_taken_for_lost(
        queue: JobQueue, caplog: pytest.LogCaptureFixture) -> None:
    """The heartbeat (every 1 ms here) that meets a job just ended by its own process,
    done or queued again by RunAgain, leaves it alone: no "queued again while this
    process ran it" warning, every job ends ``done``."""
    passes: dict[str, int] = {}

    def handler(run: JobRun) -> dict[str, Any]:
        passes[run.info.subject] = passes.get(run.info.subject, 0) + 1
        time.sleep(0.01)
        if passes[run.info.subject] == 1 and run.info.subject.endswith(("0", "5")):
            raise RunAgain(0.0, reason="second pass")
        return {"passes": passes[run.info.subject]}

    queue.register("work", handler, concurrency=2, cancelled_result=lambda j: {})
    queue.start_consumers()
    subjects = [f"s{i}" for i in range(60)]
    infos = [queue.submit("work", s, priority=Priority.NORMAL, params={}) for s in subjects]
    for s in subjects:
        assert queue.wait("work", s, DEADLINE)
    assert [_row(queue, i.id).state for i in infos] == ["done"] * len(infos)
    assert not [r.getMessage() for r in caplog.records
                if "while this process ran it" in r.getMessage()
                or "taken from this process" in r.getMessage()]
