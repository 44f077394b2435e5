"""The persistent upload queue: a real SqliteHuey file, the embedded consumer and a real
asyncssh SFTP server on 127.0.0.1 that goes down and comes back."""

from __future__ import annotations

import importlib.util
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from taperoom.errors import InvalidInput
from taperoom.jobs import EmbeddedConsumer, make_huey, queue_path
from taperoom.recorder.tagging import write_cue_sheet
from taperoom.recorder.transfer import SshCredentials, UploadResult
from taperoom.recorder.uploads import UploadQueue, retry_delay_for
from tests.recorder.sshserver import SshTestServer
from tests.recorder.test_tagging import make_mp3


class Reporter:
    """A TransferReporter that keeps every report (thread-safe) and can wait for one."""

    def __init__(self, *, broken_started: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self.progress_calls = 0
        self.last_progress: tuple[int, int] | None = None
        self.broken_started = broken_started
        self._cond = threading.Condition()

    def _add(self, kind: str, **fields: Any) -> None:
        with self._cond:
            self.events.append({"kind": kind, "at": datetime.now(UTC), **fields})
            self._cond.notify_all()

    def started(self, session_id: int, attempt: int) -> None:
        self._add("started", session=session_id, attempt=attempt)
        if self.broken_started:
            raise RuntimeError("reporter database is gone")

    def progress(self, session_id: int, sent: int, total: int) -> None:
        with self._cond:
            self.progress_calls += 1
            self.last_progress = (sent, total)
            self._cond.notify_all()

    def succeeded(self, session_id: int, result: UploadResult) -> None:
        self._add("succeeded", session=session_id, result=result)

    def failed(self, session_id: int, error: str, *, attempt: int, will_retry: bool,
               next_attempt_at: datetime | None) -> None:
        self._add("failed", session=session_id, error=error, attempt=attempt,
                  will_retry=will_retry, next_at=next_attempt_at)

    def kinds(self) -> list[str]:
        with self._cond:
            return [e["kind"] for e in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e["kind"] == kind]

    def wait(self, predicate: Callable[[Reporter], bool], timeout: float = 20.0) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(self), timeout)
        assert ok, f"timed out; reports so far: {self.events}"


class Rig:
    """A queue, its consumer and a reporter on one SQLite queue file (re-openable)."""

    def __init__(self, data_dir: Path, creds: Callable[[], SshCredentials],
                 reporter: Reporter, **options: Any) -> None:
        self.data_dir = data_dir
        self.creds = creds
        self.reporter = reporter
        self.options = {"retry_delay": 0.3, "max_attempts": 5, "timeout": 5.0, **options}
        self.huey: Any = None
        self.queue: UploadQueue | None = None
        self.consumer: EmbeddedConsumer | None = None

    def open(self, *, start: bool = True) -> UploadQueue:
        self.huey = make_huey("recorder", data_dir=self.data_dir)
        self.queue = UploadQueue(self.huey, reporter_factory=lambda: self.reporter,
                                 creds_factory=self.creds, **self.options)
        self.consumer = EmbeddedConsumer(self.huey)
        if start:
            self.consumer.start()
        return self.queue

    def close(self) -> None:
        """Stop the consumer and drop the instances, as a server shutdown does."""
        if self.consumer is not None:
            self.consumer.stop(timeout=10)
        if self.queue is not None:
            self.queue.close()
        self.huey = self.queue = self.consumer = None


@pytest.fixture
def rig(tmp_path: Path, sftp_server: SshTestServer) -> Iterator[Callable[..., Rig]]:
    """Factory of rigs on tmp_path/data using the test server's credentials."""
    made: list[Rig] = []

    def make(reporter: Reporter | None = None, **options: Any) -> Rig:
        r = Rig(tmp_path / "data", sftp_server.credentials, reporter or Reporter(), **options)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """A real MP3 in tmp_path/recordings."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    return make_mp3(folder / "2025-10-03_KUVO Jazz.mp3", seconds=1.0)


def test_retry_delay_formula() -> None:
    """Backoff is retry_delay * 2**(attempt-1), capped at backoff_max."""
    assert [retry_delay_for(a, base=60, cap=3600) for a in (1, 2, 3, 6, 7, 20)] == [
        60, 120, 240, 1920, 3600, 3600]


def test_make_huey_files_and_urls(tmp_path: Path) -> None:
    """The default queue is a SQLite file in the data dir; unknown URLs are refused."""
    huey = make_huey("recorder", data_dir=tmp_path / "d")
    assert huey.storage.filename == str(queue_path("recorder", tmp_path / "d"))
    assert (tmp_path / "d").is_dir()
    other = make_huey("recorder", data_dir=tmp_path, queue_url=f"sqlite:///{tmp_path}/q.db")
    assert other.storage.filename == f"{tmp_path}/q.db"
    with pytest.raises(InvalidInput, match="not supported"):
        make_huey("recorder", data_dir=tmp_path, queue_url="amqp://x")
    if importlib.util.find_spec("redis") is None:
        with pytest.raises(InvalidInput, match="redis"):
            make_huey("recorder", data_dir=tmp_path, queue_url="redis://127.0.0.1:6379/0")


def test_upload_with_cue_succeeds_and_cleans_up(rig: Callable[..., Rig], recording: Path,
                                                sftp_server: SshTestServer,
                                                tmp_path: Path) -> None:
    """A queued recording and its cue sheet are uploaded, verified, then deleted locally."""
    cue = write_cue_sheet(recording, [], performer="KUVO", title="2025-10-03 KUVO Jazz")
    keep = tmp_path / "copy.mp3"
    shutil.copy(recording, keep)
    r = rig()
    queue = r.open()
    queue.enqueue(7, recording, sftp_server.destination("/radio/kuvo/"))
    r.reporter.wait(lambda rep: bool(rep.of("succeeded")))
    assert r.reporter.kinds() == ["started", "succeeded"]
    assert r.reporter.of("started")[0]["attempt"] == 1
    result = r.reporter.of("succeeded")[0]["result"]
    assert result.remote_path == "/radio/kuvo/2025-10-03_KUVO Jazz.mp3" and result.verified
    remote = sftp_server.root / "radio/kuvo"
    assert (remote / recording.name).read_bytes() == keep.read_bytes()
    assert (remote / cue.name).read_text(encoding="utf-8").startswith('PERFORMER "KUVO"')
    assert not recording.exists() and not cue.exists()
    assert r.reporter.last_progress == (keep.stat().st_size, keep.stat().st_size)
    assert queue.pending() == 0


def test_down_server_retries_with_backoff_then_succeeds(rig: Callable[..., Rig],
                                                        recording: Path,
                                                        sftp_server: SshTestServer) -> None:
    """While the server is down each attempt fails and the next one waits twice as long;
    once the server is back the upload succeeds."""
    sftp_server.stop()
    r = rig(retry_delay=0.3, max_attempts=6)
    queue = r.open()
    queue.enqueue(1, recording, sftp_server.destination("/in/"))
    r.reporter.wait(lambda rep: len(rep.of("failed")) >= 2)
    fails = r.reporter.of("failed")[:2]
    for n, fail in enumerate(fails, start=1):
        assert fail["attempt"] == n and fail["will_retry"]
        assert "connection refused" in fail["error"]
        waited = (fail["next_at"] - fail["at"]).total_seconds()
        assert waited == pytest.approx(0.3 * 2 ** (n - 1), abs=0.1)
    starts = r.reporter.of("started")
    assert starts[1]["at"] >= fails[0]["next_at"]
    assert queue.pending() == 1 or r.reporter.of("started")[-1]["attempt"] == 3
    sftp_server.start()
    r.reporter.wait(lambda rep: bool(rep.of("succeeded")))
    last_start = r.reporter.of("started")[-1]
    assert last_start["attempt"] >= 3
    assert (sftp_server.root / "in" / recording.name).is_file()
    assert not recording.exists()


def test_max_attempts_reports_final_failure(rig: Callable[..., Rig], recording: Path,
                                            sftp_server: SshTestServer) -> None:
    """After max_attempts failures the upload is reported failed for good; the file stays."""
    sftp_server.disk_full = True
    r = rig(retry_delay=0.2, max_attempts=2)
    queue = r.open()
    queue.enqueue(3, recording, sftp_server.destination("/in/"))
    r.reporter.wait(lambda rep: any(not f["will_retry"] for f in rep.of("failed")))
    fails = r.reporter.of("failed")
    assert [(f["attempt"], f["will_retry"]) for f in fails] == [(1, True), (2, False)]
    assert "disk is full" in fails[-1]["error"] and "gave up after 2 attempts" in fails[-1]["error"]
    assert fails[-1]["next_at"] is None
    assert recording.is_file()
    assert not any(p.is_file() for p in sftp_server.root.rglob("*"))
    time.sleep(1.2)  # nothing else is scheduled
    assert queue.pending() == 0 and len(r.reporter.of("started")) == 2


@pytest.mark.parametrize("case", ["cleanup-off", "unverified"])
def test_local_file_kept_unless_verified_with_cleanup(rig: Callable[..., Rig], recording: Path,
                                                      sftp_server: SshTestServer,
                                                      case: str) -> None:
    """The local file is kept when cleanup is off, or when the upload could not be verified
    (SCP-only server)."""
    if case == "unverified":
        sftp_server.sftp_subsystem = False
        (sftp_server.root / "in").mkdir()
        r = rig(protocol="scp")
    else:
        r = rig(cleanup_after_transfer=False)
    r.open().enqueue(4, recording, sftp_server.destination("/in/"))
    r.reporter.wait(lambda rep: bool(rep.of("succeeded")))
    assert r.reporter.of("succeeded")[0]["result"].verified == (case != "unverified")
    assert recording.is_file()
    assert (sftp_server.root / "in" / recording.name).read_bytes() == recording.read_bytes()


def test_bad_destination_and_missing_file_fail_without_retry(rig: Callable[..., Rig],
                                                             recording: Path,
                                                             tmp_path: Path) -> None:
    """A destination that does not parse, or a vanished local file, fail at once for good."""
    r = rig()
    queue = r.open()
    queue.enqueue(5, recording, "no-user-here:/in/")
    queue.enqueue(6, tmp_path / "gone.mp3", "recorder@127.0.0.1:1:/in/")
    r.reporter.wait(lambda rep: len(rep.of("failed")) == 2)
    fails = {f["session"]: f for f in r.reporter.of("failed")}
    assert "must name the user" in fails[5]["error"] and not fails[5]["will_retry"]
    assert "no longer exists" in fails[6]["error"] and not fails[6]["will_retry"]
    assert r.reporter.of("started") == []
    assert recording.is_file()


def test_failures_inside_the_task_do_not_stop_the_consumer(rig: Callable[..., Rig],
                                                           recording: Path,
                                                           sftp_server: SshTestServer,
                                                           tmp_path: Path) -> None:
    """A crashing reporter and a crashing credentials factory are logged and reported;
    the consumer goes on to finish this upload and the next."""
    calls = {"n": 0}

    def creds() -> SshCredentials:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("config folder unreadable")
        return sftp_server.credentials()

    r = Rig(tmp_path / "data", creds, Reporter(broken_started=True), retry_delay=0.2)
    try:
        queue = r.open()
        queue.enqueue(8, recording, sftp_server.destination("/in/"))
        r.reporter.wait(lambda rep: bool(rep.of("succeeded")))
        (fail,) = r.reporter.of("failed")
        assert "config folder unreadable" in fail["error"] and fail["will_retry"]
        second = make_mp3(tmp_path / "second.mp3", seconds=0.5)
        queue.enqueue(9, second, sftp_server.destination("/in/"))
        r.reporter.wait(lambda rep: len(rep.of("succeeded")) == 2)
        assert sorted(p.name for p in (sftp_server.root / "in").iterdir()) == [
            recording.name, "second.mp3"]
    finally:
        r.close()


def test_queue_survives_restart(rig: Callable[..., Rig], recording: Path,
                                sftp_server: SshTestServer) -> None:
    """Queued uploads and a pending delayed retry are kept in the SQLite file across a
    consumer and queue restart, and run after it."""
    sftp_server.stop()
    first = rig(retry_delay=1.0)
    queue = first.open()
    queue.enqueue(10, recording, sftp_server.destination("/in/"))
    first.reporter.wait(lambda rep: bool(rep.of("failed")))
    first.close()  # the retry is now only in the queue file
    assert queue_path("recorder", first.data_dir).is_file()

    second = rig(retry_delay=1.0)
    queue2 = second.open(start=False)
    (waiting,) = queue2.entries()
    assert (waiting.session_id, waiting.attempt) == (10, 2) and waiting.eta is not None
    queue2.enqueue(11, make_mp3(recording.with_name("later.mp3"), seconds=0.5),
                   sftp_server.destination("/in/"))
    assert queue2.pending() == 2
    second.close()

    sftp_server.start()
    third = rig(retry_delay=1.0)
    third.open()
    third.reporter.wait(lambda rep: len(rep.of("succeeded")) == 2)
    attempts = {e["session"]: e["attempt"] for e in third.reporter.of("started")}
    assert attempts == {10: 2, 11: 1}
    assert sorted(p.name for p in (sftp_server.root / "in").iterdir()) == [
        recording.name, "later.mp3"]


def test_stop_interrupts_running_upload_and_requeues(rig: Callable[..., Rig], tmp_path: Path,
                                                     sftp_server: SshTestServer) -> None:
    """Stopping the consumer mid-upload aborts it, leaves no remote file and queues the same
    attempt again, which completes after the restart."""
    big = tmp_path / "long.mp3"
    with big.open("wb") as f:
        f.write(b"\xff\xfb\x90\x64" * (40 * 2**20 // 4))
    r = rig()
    r.open().enqueue(12, big, sftp_server.destination("/in/"))
    r.reporter.wait(lambda rep: rep.progress_calls > 0)
    assert r.consumer is not None and r.consumer.stop(timeout=10)
    (fail,) = r.reporter.of("failed")
    assert "interrupted" in fail["error"] and fail["will_retry"] and fail["attempt"] == 1
    assert not any(p.is_file() for p in sftp_server.root.rglob("*"))  # no final, no .part
    assert r.queue is not None and r.queue.pending() == 1
    r.close()
    again = rig(reporter=r.reporter)
    again.open()
    r.reporter.wait(lambda rep: bool(rep.of("succeeded")), timeout=40)
    assert [e["attempt"] for e in r.reporter.of("started")] == [1, 1]
    assert (sftp_server.root / "in" / big.name).stat().st_size == 40 * 2**20


def test_consumer_starts_off_the_main_thread(rig: Callable[..., Rig], recording: Path,
                                             sftp_server: SshTestServer) -> None:
    """The embedded consumer can be started from a worker thread (no signal handlers)."""
    r = rig()
    r.open(start=False)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            assert r.consumer is not None
            r.consumer.start()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=start)
    t.start()
    t.join(10)
    assert errors == [] and r.consumer is not None and r.consumer.running
    assert r.queue is not None
    r.queue.enqueue(13, recording, sftp_server.destination("/in/"))
    r.reporter.wait(lambda rep: bool(rep.of("succeeded")))


def test_immediate_queue_uploads_at_once(recording: Path, sftp_server: SshTestServer,
                                         tmp_path: Path) -> None:
    """An immediate-mode queue runs the upload inside enqueue (no consumer needed)."""
    reporter = Reporter()
    huey = make_huey("recorder", data_dir=tmp_path / "data", immediate=True)
    queue = UploadQueue(huey, reporter_factory=lambda: reporter,
                        creds_factory=sftp_server.credentials)
    try:
        queue.enqueue(14, recording, sftp_server.destination("/now/"))
        assert reporter.kinds() == ["started", "succeeded"]
        assert (sftp_server.root / "now" / recording.name).is_file()
        with pytest.raises(InvalidInput):
            EmbeddedConsumer(huey)
    finally:
        queue.close()
