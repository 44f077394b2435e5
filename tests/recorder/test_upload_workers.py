"""Uploads on several machines: a Redis queue, the recorder's state on PostgreSQL and
``taperoom worker`` processes.

Each test starts a real ``redis-server`` and uses a fresh, empty database of the
session's PostgreSQL server (the recorder's own migrations build it). The
recorder services of the test process queue uploads (they run no consumer:
``EMBEDDED_WORKER=false``), and ``taperoom worker`` processes deliver them to the
real SFTP server of :mod:`tests.recorder.sshserver`, slowed down so that a worker
can be killed in the middle of an upload.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from taperoom.recorder import repository as repo
from taperoom.recorder.context import RecorderServices, build_services
from taperoom.recorder.models import RecordingSession, utcnow
from taperoom.recorder.schemas import ScheduleCreate, StationCreate
from taperoom.recorder.settings import RecorderSettings
from tests.library.redisserver import RedisServer, redis_server  # noqa: F401 (fixture)
from tests.polling import stop_process, wait_for
from tests.recorder.sshserver import SshTestServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: UPLOAD_STALE_SECONDS of these tests: a worker silent this long loses its upload.
STALE = 3.0
#: Seconds a test waits for anything at most (generous: two shared cores).
DEADLINE = 90.0
#: Size of the recording (bytes) and the SFTP server's speed while it is slowed
#: (bytes/s): about 30 s of upload, far longer than the test needs to act in it.
SIZE = 4 * 1024 * 1024
SLOW = 128 * 1024
#: Variables of the test's environment that would take precedence over
#: DATABASE_URL and REDIS_URL in the workers.
_OVERRIDING = ("RECORDER_DATABASE_URL", "QUEUE_URL")


class Worker:
    """``taperoom worker`` (the recorder's uploads) in a subprocess, output in a file."""

    def __init__(self, name: str, env: dict[str, str], folder: Path) -> None:
        self.name = name
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "worker.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "taperoom", "worker"],
                env={**{k: v for k, v in os.environ.items() if k not in _OVERRIDING},
                     **env, "DATA_DIR": str(folder / "data"),
                     "LOG_DIR": str(folder / "logs"), "RECORDINGS_DIR": str(folder / "rec"),
                     "ARTWORK_DIR": str(folder / "art")},
                stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        """What the worker printed so far."""
        return self.log.read_text(errors="replace")

    def wait_running(self) -> None:
        """Wait until the worker says that it takes uploads."""
        def ready() -> bool:
            assert self.proc.poll() is None, f"worker {self.name} ended:\n{self.output()}"
            return "upload worker running" in self.output()

        wait_for(ready, DEADLINE, f"worker {self.name} to start")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a machine that loses power."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL when it does not end within 30 s."""
        stop_process(self.proc, 30)


Cluster = tuple[RecorderServices, Callable[[str], Worker]]


@pytest.fixture
def cluster(tmp_path: Path, pg_empty_database: str, redis_server: RedisServer,  # noqa: F811
            sftp_server: SshTestServer, rec_settings: Callable[..., RecorderSettings]
            ) -> Iterator[Cluster]:
    """The test's recorder services (queueing only, on PostgreSQL and Redis) and a
    factory of ``taperoom worker`` processes on the same database and queue."""
    settings = rec_settings(database_url=pg_empty_database, redis_url=redis_server.url,
                            embedded_worker=False, upload_stale_seconds=STALE,
                            ssh_config_dir=sftp_server.config_dir,
                            cleanup_after_transfer=False, retry_delay_seconds=1.0)
    services = build_services(settings)
    env = {"DATABASE_URL": pg_empty_database, "REDIS_URL": redis_server.url,
           "UPLOAD_STALE_SECONDS": str(STALE), "SSH_CONFIG_DIR": str(sftp_server.config_dir),
           "CLEANUP_AFTER_TRANSFER": "false", "RETRY_DELAY_SECONDS": "1",
           "TZ": "America/Denver", "LOG_LEVEL": "INFO"}
    workers: list[Worker] = []

    def start(name: str) -> Worker:
        worker = Worker(name, env, tmp_path / name)
        workers.append(worker)
        return worker

    try:
        yield services, start
    finally:
        sftp_server.bytes_per_second = None
        for worker in workers:
            worker.stop()
        services.close()


def _completed_session(services: RecorderServices, local: Path, dest: str) -> int:
    """A station uploading to `dest` and a completed session whose file is `local`."""
    with services.db() as db, db.begin():
        station = repo.create_station(db, {
            "name": "KUVO Jazz", "stream_url": "http://127.0.0.1:9/live", "artist": "KUVO",
            "album": "Jazz", "album_artist": "KUVO", "scp_destination": dest})
        row = repo.create_session(db, {
            "station_id": station.id, "station_name": station.name, "trigger": "manual",
            "start_time": utcnow() - timedelta(hours=1), "end_time": utcnow(),
            "status": "completed", "output_file_path": str(local),
            "file_size_bytes": local.stat().st_size, "transfer_status": "pending"})
        return row.id


def _row(services: RecorderServices, session_id: int) -> RecordingSession:
    with services.db() as db:
        return repo.get_session(db, session_id)


def test_killed_worker_upload_is_delivered_once_by_another(
        cluster: Cluster, sftp_server: SshTestServer, tmp_path: Path) -> None:
    """Worker A is SIGKILLed in the middle of an upload; worker B, which left A's
    live upload alone while A's heartbeat went on, takes it once A falls silent and
    delivers it: one complete remote file, renamed into place once, no temp file."""
    services, start = cluster
    local = tmp_path / "recordings" / "2025-10-03_KUVO Jazz.mp3"
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(os.urandom(SIZE))
    remote_dir = sftp_server.root / "incoming"
    sid = _completed_session(services, local, sftp_server.destination("/incoming/"))
    sftp_server.bytes_per_second = SLOW

    a = start("machine-a")
    a.wait_running()
    services.uploads.enqueue(sid, local, sftp_server.destination("/incoming/"))
    part = remote_dir / f".{local.name}.part"
    wait_for(lambda: part.is_file() and part.stat().st_size >= 64 * 1024, DEADLINE,
             "worker A to be part-way through the upload")
    row = _row(services, sid)
    assert (row.transfer_status, row.transfer_attempts) == ("in_progress", 1)

    b = start("machine-b")
    b.wait_running()
    b_up = utcnow()
    # A is alive and uploading: B's watcher must leave the upload to it for longer
    # than a silent worker would keep it.
    renewed = wait_for(lambda: (r := _row(services, sid)).updated_at > b_up + timedelta(
        seconds=STALE) and r, DEADLINE, "worker A's heartbeat past the stale time")
    assert (renewed.transfer_status, renewed.transfer_attempts) == ("in_progress", 1)
    assert part.stat().st_size < SIZE

    a.kill()
    sftp_server.bytes_per_second = None
    done = wait_for(lambda: (r := _row(services, sid)).transfer_status == "completed" and r,
                    DEADLINE, "worker B to deliver the upload")

    final = remote_dir / local.name
    assert final.read_bytes() == local.read_bytes()
    assert done.remote_path == f"/incoming/{local.name}"
    assert done.transfer_attempts == 2
    assert [new for _, new in sftp_server.renames] == [f"/incoming/{local.name}"]
    assert sorted(p.name for p in remote_dir.iterdir()) == [local.name]
    assert services.uploads.entries() == []


def test_two_workers_deliver_each_upload_once(
        cluster: Cluster, sftp_server: SshTestServer, tmp_path: Path) -> None:
    """Several uploads queued on Redis with two live workers: each recording is
    uploaded complete, and put in place exactly once."""
    services, start = cluster
    folder = tmp_path / "recordings"
    folder.mkdir(parents=True, exist_ok=True)
    dest = sftp_server.destination("/incoming/")
    files = []
    for i in range(4):
        path = folder / f"2025-10-0{i + 1}_show.mp3"
        path.write_bytes(os.urandom(200_000 + i))
        files.append(path)
    workers = [start("machine-a"), start("machine-b")]
    for w in workers:
        w.wait_running()
    with services.db() as db, db.begin():
        station = repo.create_station(db, {
            "name": "Show", "stream_url": "http://127.0.0.1:9/live", "artist": "A",
            "album": "B", "album_artist": "A", "scp_destination": dest})
        ids = [repo.create_session(db, {
            "station_id": station.id, "station_name": "Show", "trigger": "manual",
            "start_time": utcnow(), "status": "completed", "output_file_path": str(p),
            "transfer_status": "pending"}).id for p in files]
    for sid, path in zip(ids, files, strict=True):
        services.uploads.enqueue(sid, path, dest)
        services.uploads.enqueue(sid, path, dest)  # queued twice: still run once

    def all_done() -> bool:
        return all(_row(services, sid).transfer_status == "completed" for sid in ids)

    wait_for(all_done, DEADLINE, "every upload to be delivered")
    for path in files:
        assert (sftp_server.root / "incoming" / path.name).read_bytes() == path.read_bytes()
    targets = sorted(new for _, new in sftp_server.renames)
    assert targets == sorted(f"/incoming/{p.name}" for p in files)
    assert all(_row(services, sid).transfer_attempts == 1 for sid in ids)
    # each delivery is in the log of the worker that made it, and in one log only
    logs = "".join(w.output() for w in workers)
    for path in files:
        assert logs.count(f"uploaded {path.name} to ") == 1, logs


def test_recorder_state_on_postgresql(cluster: Cluster) -> None:
    """The recorder's migrations build its tables on PostgreSQL (beside APScheduler's
    job table), and stations, schedules and their scheduler jobs live there."""
    services, _ = cluster
    assert services.engine.dialect.name == "postgresql"
    names = set(inspect(services.engine).get_table_names())
    assert {"stream_configurations", "recording_schedules", "recording_sessions",
            "recorder_alembic_version"} <= names
    station = services.stations.create(StationCreate(
        name="KUVO Jazz", stream_url="http://127.0.0.1:9/live", artist="KUVO", album="Jazz",
        album_artist="KUVO"))
    services.scheduler.start()
    try:
        schedule = services.schedules.create(ScheduleCreate.model_validate({
            "stream_config_id": station["id"], "cron_expression": "0 21 * * *",
            "duration_minutes": 60}))
        nxt = services.schedules.next_run(schedule["id"])
        assert nxt["next_run_time"] is not None and "T21:00:00" in nxt["next_run_time"]
        with services.engine.connect() as conn:
            jobs = conn.execute(text("SELECT count(*) FROM apscheduler_jobs")
                                ).scalar_one()
        assert jobs == 1
    finally:
        services.scheduler.shutdown()
