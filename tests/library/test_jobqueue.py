"""The job layer and the leader across processes, with two sets of library services.

A second :func:`build_services` on the same library opens its own database
connections, Huey queue connections and lock file descriptors, as a second
worker process does; here it never leads (``lead=False``), so the first one
runs the jobs. The three-process server is tested in ``test_workers.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from taperoom.db import transaction
from taperoom.errors import InvalidInput
from taperoom.jobs import Priority
from taperoom.leader import FileLeaderLock, Leadership, PostgresLeaderLock
from taperoom.library.context import LibraryServices, build_services
from taperoom.library.models import Job, utcnow
from tests.library.test_scanner import add_directory, copy_corpus, tracks
from tests.polling import wait_for

DEADLINE = 30.0


@pytest.fixture
def follower(lib_settings: Callable[..., Any], lib_ctx: LibraryServices
             ) -> Iterator[LibraryServices]:
    """A second worker on the library of `lib_ctx`, which leads."""
    other = build_services(lib_settings(), lead=False)
    yield other
    other.close()


def test_priorities_have_names() -> None:
    """The contract's names map to ordered priorities; quick analysis goes above them."""
    assert [Priority.named(n) for n in ("low", "normal", "high", "URGENT")] == \
        sorted(Priority)
    with pytest.raises(InvalidInput):
        Priority.named("asap")


def test_scan_asked_of_a_follower_runs_in_the_leader_and_a_follower_cancels_it(
        lib_ctx: LibraryServices, follower: LibraryServices, corpus: Path,
        tmp_path: Path) -> None:
    """Queued through one process, run by the leader, seen and cancelled from the other."""
    assert lib_ctx.leadership.leading and not follower.leadership.leading
    did = add_directory(lib_ctx, copy_corpus(corpus, tmp_path / "lib"))
    with lib_ctx.scanner.locks.lock(did):  # the scan starts, then waits for its folder
        follower.scans.start(did, "full", "high")
        wait_for(lambda: follower.scans.status(did).get("state") == "running", DEADLINE,
                 "the scan to run")
        status = follower.scans.status(did)
        assert status["priority"] == "high" and status["strategy"] == "full"
        assert lib_ctx.jobs.running_here()  # the leader runs it
        with lib_ctx.db() as s:
            [job] = s.query(Job).all()
            assert job.owner == lib_ctx.process
        follower.scans.cancel(did)
        assert follower.scans.status(did)["state"] == "cancelling"
        # the leader reads the flag from the database within one poll
        run = next(iter(lib_ctx.jobs._running.values()))
        assert run.cancelled.wait(DEADLINE)
    result = follower.scans.wait(did, timeout=DEADLINE)
    assert result is not None and result["cancelled"] is True
    assert tracks(lib_ctx, did) == {}
    assert lib_ctx.scans.status(did) == {"scanning": False, "lastResult": result}


def test_a_follower_scan_command_is_refused_while_the_leader_scans(
        lib_ctx: LibraryServices, follower: LibraryServices, corpus: Path,
        tmp_path: Path) -> None:
    """``taperoom library scan`` (scan_sync in another process) is refused with the
    running scan's status while the server scans the folder, and the other way round."""
    from taperoom.library.scanner.manager import ScanInProgress

    did = add_directory(lib_ctx, copy_corpus(corpus, tmp_path / "lib"))
    with lib_ctx.scanner.locks.lock(did):
        lib_ctx.scans.start(did, "fast")
        with pytest.raises(ScanInProgress) as refused:
            follower.scans.scan_sync(did, "fast")
        assert refused.value.scan_status["libraryDirectoryId"] == did
    assert lib_ctx.scans.wait(did, timeout=DEADLINE) is not None
    assert follower.scans.scan_sync(did, "fast")["tracksUpdated"] == 0


def test_a_job_of_a_dead_process_is_queued_again_and_finished(
        lib_ctx: LibraryServices, corpus: Path, tmp_path: Path) -> None:
    """A scan left ``running`` by a process that died is run again by the leader."""
    did = add_directory(lib_ctx, copy_corpus(corpus, tmp_path / "lib"))
    with transaction(lib_ctx.db) as s:
        s.add(Job(kind="scan", subject=did, active_key=f"scan:{did}", state="running",
                  priority=int(Priority.NORMAL), params={"strategy": "fast"},
                  cancel_requested=False, owner="nowhere.invalid:1:dead",
                  created_at=utcnow(), started_at=utcnow(), heartbeat_at=utcnow()))
    assert lib_ctx.scans.is_scanning(did)
    lib_ctx.jobs.stale_after = 0.0  # its heartbeat is old at once
    assert lib_ctx.jobs.recover() == 1
    result = lib_ctx.scans.wait(did, timeout=DEADLINE)
    assert result is not None and result["tracksAdded"] == 32
    assert len(tracks(lib_ctx, did)) == 32


def test_file_leader_lock_passes_to_the_next_process(tmp_path: Path) -> None:
    """One of two leaderships on one lock file leads; when it stops, the other takes over
    and starts its duties."""
    started: list[str] = []
    first = Leadership(FileLeaderLock(tmp_path / "leader.lock"), name="one", poll=0.05)
    second = Leadership(FileLeaderLock(tmp_path / "leader.lock"), name="two", poll=0.05)
    first.add_duty("d", lambda: started.append("one"), lambda: started.append("one stopped"))
    second.add_duty("d", lambda: started.append("two"), lambda: None)
    first.start()
    second.start()
    try:
        assert first.leading and not second.leading and started == ["one"]
        first.stop()
        assert second.wait_leading(DEADLINE)
        assert started == ["one", "one stopped", "two"]
    finally:
        first.stop()
        second.stop()


@pytest.mark.backends("postgresql")
def test_postgres_leader_lock_is_released_with_its_connection(lib_ctx: LibraryServices,
                                                              lib_backend: str) -> None:
    """On PostgreSQL the leader is whoever holds the advisory lock; a broken connection
    releases it to the next process."""
    engine = lib_ctx.engine
    a, b = PostgresLeaderLock(engine, "test"), PostgresLeaderLock(engine, "test")
    try:
        assert a.try_acquire() and a.held()
        assert not b.try_acquire()
        a._conn.invalidate()  # the connection breaks; SQLAlchemy would reconnect it
        assert not a.held()
        assert b.try_acquire() and b.held()
        with engine.connect() as admin:  # b's session ends (as when its process dies)
            admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": b.backend_pid})
        assert not b.held()
        assert a.try_acquire()
    finally:
        a.release()
        b.release()


OPEN_LIBRARY = """
import sys
from pathlib import Path
from taperoom.library.context import build_services
from taperoom.library.settings import LibrarySettings
settings = LibrarySettings(_env_file=None, database_path=Path(sys.argv[1]), database_url="",
                           scan_on_startup=False, file_watcher_enabled=False)
build_services(settings, lead=False).close()
"""


@pytest.mark.slow
@pytest.mark.backends("sqlite")
def test_worker_processes_opening_a_new_library_at_once_all_start(tmp_path: Path) -> None:
    """Three processes that open (and so migrate) a new library at the same instant all
    succeed: the migrations run one process at a time."""
    import subprocess
    import sys

    for attempt in range(3):
        db = tmp_path / f"try{attempt}" / "library.db"
        procs = [subprocess.Popen([sys.executable, "-c", OPEN_LIBRARY, str(db)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(3)]
        errors = [p.communicate(timeout=120)[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors


def test_watcher_controls_of_a_follower_act_on_the_leaders_watcher(
        lib_ctx: LibraryServices, follower: LibraryServices, tmp_path: Path) -> None:
    """``/api/watcher`` through a worker that does not lead: the leader watches, the
    status is the leader's, and its refusals come back with their own class."""
    from taperoom.errors import InvalidInput, NotFound

    (tmp_path / "lib").mkdir()
    did = add_directory(lib_ctx, tmp_path / "lib")
    follower.watcher_controls.watch(did)
    assert lib_ctx.watcher.is_watching(did) and not follower.watcher.is_watching(did)
    status = follower.watcher_controls.status()
    assert [w["directoryId"] for w in status["watchers"]] == [did]
    with pytest.raises(InvalidInput, match="already being watched"):
        follower.watcher_controls.watch(did)
    follower.watcher_controls.unwatch(did)
    assert not lib_ctx.watcher.is_watching(did)
    with pytest.raises(NotFound):
        follower.watcher_controls.unwatch(did)
