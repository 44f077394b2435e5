"""System health and resource metrics of the recorder (``/api/system/*``).

:func:`status` and :func:`health` check the parts a recording depends on --
the database, the scheduler, the upload queue and free disk space in
``RECORDINGS_DIR`` -- and report ``healthy``, ``degraded`` or ``unhealthy``:

* disk: ``unhealthy`` below ``MIN_FREE_DISK_MB`` (no recording can start),
  ``degraded`` below twice that or above 90 % use;
* database: ``unhealthy`` when ``SELECT 1`` fails;
* scheduler: ``unhealthy`` when its thread is not running (in a server);
* upload queue: ``degraded`` when the embedded consumer is not running or the
  queue cannot be read.

:class:`SystemMonitor` answers ``/api/system/status`` and ``/api/system/health``;
:class:`MetricsSampler` takes a psutil sample every ``METRICS_INTERVAL_SECONDS``
(10 s) into a ring buffer holding about 24 hours, for ``GET
/api/system/metrics?hours=&summary=``.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psutil
from huey import Huey
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from taperoom.recorder import repository as repo
from taperoom.recorder.scheduler import CronJobs
from taperoom.recorder.schemas import iso
from taperoom.recorder.settings import RecorderSettings

log = logging.getLogger(__name__)

#: Time span the ring buffer of samples covers (s).
HISTORY_SECONDS = 24 * 3600
#: Upper bound of samples kept, whatever the interval.
MAX_SAMPLES = 100_000
#: Disk use (percent) above which the disk is reported degraded.
DISK_DEGRADED_PERCENT = 90.0
_MB = 1024 * 1024
_GB = 1024 * 1024 * 1024
_RANK = {"healthy": 0, "degraded": 1, "unhealthy": 2}


def uptime_seconds() -> float:
    """Seconds since this process started (psutil ``create_time``)."""
    return max(0.0, time.time() - psutil.Process().create_time())


def _component(status: str, message: str, **details: Any) -> dict[str, Any]:
    return {"status": status, "message": message, **details}


def _consumer_running(consumer: Any) -> bool | None:
    for attr in ("running", "is_running", "alive", "is_alive"):
        value = getattr(consumer, attr, None)
        if value is None:
            continue
        try:
            return bool(value() if callable(value) else value)
        except Exception:  # an odd consumer object: unknown
            return None
    return None


def overall(parts: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """Worst status of `parts` and a message naming the parts that are not healthy."""
    worst = max((p["status"] for p in parts.values()), key=lambda s: _RANK.get(s, 2),
                default="healthy")
    bad = [f"{name}: {p['message']}" for name, p in parts.items() if p["status"] != "healthy"]
    return worst, ("All systems operational" if not bad else "; ".join(bad))


def disk_figures(path: Path) -> dict[str, float]:
    """``{disk_percent, disk_used_gb, disk_total_gb, disk_free_gb}`` of the file system
    holding `path` (GB = 2**30 bytes); zeros when it cannot be read."""
    try:
        u = shutil.disk_usage(path)
    except OSError:
        return {"disk_percent": 0.0, "disk_used_gb": 0.0, "disk_total_gb": 0.0,
                "disk_free_gb": 0.0}
    return {"disk_percent": round(100.0 * u.used / u.total, 1) if u.total else 0.0,
            "disk_used_gb": round(u.used / _GB, 2), "disk_total_gb": round(u.total / _GB, 2),
            "disk_free_gb": round(u.free / _GB, 2)}


_SUMMARY_KEYS = ("cpu_percent", "memory_percent", "disk_percent", "process_rss_mb",
                 "active_recordings")


def summarize(samples: list[dict[str, Any]], hours: float) -> dict[str, Any]:
    """``{hours, count, from, to, <metric>: {avg, min, max, latest}}`` of `samples`
    for cpu, memory and disk percent, the process's RSS and active recordings."""
    out: dict[str, Any] = {"hours": hours, "count": len(samples),
                           "from": samples[0]["timestamp"] if samples else None,
                           "to": samples[-1]["timestamp"] if samples else None}
    for key in _SUMMARY_KEYS:
        values = [float(s[key]) for s in samples if s.get(key) is not None]
        out[key] = ({"avg": round(sum(values) / len(values), 2), "min": min(values),
                     "max": max(values), "latest": values[-1]} if values else None)
    return out


class MetricsSampler:
    """Samples resource metrics in a background thread into a ~24 h ring buffer.

    The app's lifespan calls :meth:`start` and :meth:`stop`.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the recorder database (active recordings of a sample).
    settings : RecorderSettings
        ``TZ``, ``RECORDINGS_DIR`` (disk figures), the folders of
        :meth:`detailed`, ``METRICS_INTERVAL_SECONDS``.
    interval : float, optional
        Seconds between samples (default ``METRICS_INTERVAL_SECONDS``).
    """

    def __init__(self, db: sessionmaker[Session], settings: RecorderSettings,
                 interval: float | None = None) -> None:
        self.db = db
        self.settings = settings
        self.interval = float(interval or settings.metrics_interval_seconds)
        size = min(MAX_SAMPLES, math.ceil(HISTORY_SECONDS / self.interval) + 1)
        self._samples: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def capacity(self) -> int:
        """Most samples kept."""
        return int(self._samples.maxlen or 0)

    def start(self) -> None:
        """Start sampling (no-op when already running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        psutil.cpu_percent(interval=None)  # prime psutil's "since last call" counters
        psutil.Process().cpu_percent(interval=None)
        self._thread = threading.Thread(target=self._loop, name="recorder-metrics",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sampling and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        """True while the sampling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def sample(self, *, cpu_interval: float | None = None) -> dict[str, Any]:
        """One metrics sample (not kept in the buffer).

        Parameters
        ----------
        cpu_interval : float, optional
            Seconds over which CPU use is measured; None = since the previous call
            (psutil's non-blocking mode; the sampler's calls are one interval apart).

        Returns
        -------
        dict
            ``{timestamp (ISO), epoch (s), cpu_percent, memory_percent, memory_used_mb,
            memory_total_mb, disk_percent, disk_used_gb, disk_total_gb, disk_free_gb,
            process_rss_mb, process_cpu_percent, threads, active_recordings}``.
        """
        now = time.time()
        proc = psutil.Process()
        mem = psutil.virtual_memory()
        with proc.oneshot():
            rss = proc.memory_info().rss
            threads = proc.num_threads()
            pcpu = proc.cpu_percent(interval=None)
        try:
            with self.db() as db:
                active = repo.session_statistics(db)["active"]
        except Exception:  # a sample never fails for the database
            active = None
        return {
            "timestamp": iso(datetime.fromtimestamp(now, UTC), self.settings.zone),
            "epoch": now,
            "cpu_percent": round(float(psutil.cpu_percent(interval=cpu_interval)), 1),
            "memory_percent": round(float(mem.percent), 1),
            "memory_used_mb": round((mem.total - mem.available) / _MB, 1),
            "memory_total_mb": round(mem.total / _MB, 1),
            **disk_figures(self.settings.recordings_dir),
            "process_rss_mb": round(rss / _MB, 1), "process_cpu_percent": round(pcpu, 1),
            "threads": threads, "active_recordings": active,
        }

    def detailed(self) -> dict[str, Any]:
        """A fresh sample plus per-CPU use, load average, network and disk I/O counters,
        the process's details and the size of every recorder folder's file system."""
        s = self.settings
        sample = self.sample(cpu_interval=0.1)
        proc = psutil.Process()
        with proc.oneshot():
            cpu_times = proc.cpu_times()
            process = {"pid": proc.pid, "rss_mb": round(proc.memory_info().rss / _MB, 1),
                       "threads": proc.num_threads(),
                       "cpu_user_seconds": round(cpu_times.user, 2),
                       "cpu_system_seconds": round(cpu_times.system, 2),
                       "open_files": len(proc.open_files()),
                       "started_at": iso(datetime.fromtimestamp(proc.create_time(), UTC),
                                         s.zone)}
        net = psutil.net_io_counters()
        io = psutil.disk_io_counters()
        folders = {}
        for name, path in (("data", s.data_dir), ("recordings", s.recordings_dir),
                           ("artwork", s.artwork_dir), ("logs", s.log_dir)):
            try:
                u = shutil.disk_usage(path)
                folders[name] = {"path": str(path), "free_gb": round(u.free / _GB, 2),
                                 "total_gb": round(u.total / _GB, 2)}
            except OSError as exc:
                folders[name] = {"path": str(path), "error": str(exc)}
        return {
            **sample, "cpu_count": psutil.cpu_count(),
            "per_cpu_percent": psutil.cpu_percent(interval=None, percpu=True),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "swap_percent": psutil.swap_memory().percent,
            "network": None if net is None else {"bytes_sent": net.bytes_sent,
                                                 "bytes_recv": net.bytes_recv},
            "disk_io": None if io is None else {"read_bytes": io.read_bytes,
                                                "write_bytes": io.write_bytes},
            "folders": folders, "process": process,
            "uptime_seconds": round(uptime_seconds(), 1),
            "boot_time": iso(datetime.fromtimestamp(psutil.boot_time(), UTC), s.zone),
        }

    def sample_now(self) -> dict[str, Any]:
        """Take one sample, add it to the buffer and return it."""
        sample = self.sample()
        with self._lock:
            self._samples.append(sample)
        return sample

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample_now()
            except Exception:  # a failed sample must not end the sampler
                log.exception("metrics sample failed")

    def latest(self) -> dict[str, Any] | None:
        """The newest sample, if any."""
        with self._lock:
            return dict(self._samples[-1]) if self._samples else None

    def history(self, hours: float = 1.0) -> list[dict[str, Any]]:
        """Samples of the last `hours` hours, oldest first."""
        cutoff = time.time() - hours * 3600
        with self._lock:
            return [dict(s) for s in self._samples if s["epoch"] >= cutoff]


class QueueState(Protocol):
    """What the monitor reads of the upload queue's consumer
    (:class:`taperoom.jobs.EmbeddedConsumer`)."""

    @property
    def running(self) -> bool:
        """Whether the consumer threads run."""


class SystemMonitor:
    """Health of what a recording depends on, and the contract's system status.

    Parameters
    ----------
    engine : Engine
        Engine of the recorder database (``SELECT 1``).
    db : sessionmaker
        Session factory (session counts).
    settings : RecorderSettings
        ``TZ``, ``RECORDINGS_DIR`` and ``MIN_FREE_DISK_MB``.
    jobs : CronJobs
        The scheduler.
    huey : huey.Huey
        The upload queue's storage.
    consumer : QueueState or None
        The upload consumer running in this process, None when workers run elsewhere.
    sampler : MetricsSampler
        Its latest sample gives the CPU figure without waiting.
    started : threading.Event
        Set while the recorder's background parts run (a stopped scheduler or
        consumer is then unhealthy, not just idle as in a command-line process).
    """

    def __init__(self, engine: Engine, db: sessionmaker[Session], settings: RecorderSettings,
                 jobs: CronJobs, huey: Huey, consumer: QueueState | None,
                 sampler: MetricsSampler, started: threading.Event) -> None:
        self.engine = engine
        self.db = db
        self.settings = settings
        self.jobs = jobs
        self.huey = huey
        self.consumer = consumer
        self.sampler = sampler
        self.started = started

    def _now_iso(self) -> str:
        return str(iso(datetime.now(UTC), self.settings.zone))

    def check_database(self) -> dict[str, Any]:
        """``{status, message, response_ms}`` of a ``SELECT 1`` on the recorder database."""
        t0 = time.perf_counter()
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means the database is unusable
            return _component("unhealthy", f"database error: {exc}")
        return _component("healthy", "Database connection OK",
                          response_ms=round(1000 * (time.perf_counter() - t0), 2))

    def check_scheduler(self) -> dict[str, Any]:
        """``{status, message, running, jobs}`` of the cron scheduler."""
        running = bool(self.jobs.running)
        try:
            jobs = len(self.jobs.job_ids())
        except Exception as exc:  # job store unreadable
            return _component("unhealthy", f"scheduler job store error: {exc}",
                              running=running, jobs=None)
        if not running:
            status = "unhealthy" if self.started.is_set() else "degraded"
            return _component(status, "Scheduler is not running", running=False, jobs=jobs)
        return _component("healthy", f"Scheduler running with {jobs} jobs", running=True,
                          jobs=jobs)

    def check_upload_queue(self) -> dict[str, Any]:
        """``{status, message, pending, consumer_running}`` of the upload queue."""
        try:
            pending = int(self.huey.pending_count())
        except Exception as exc:  # queue storage unreadable (Redis down, file locked)
            return _component("degraded", f"upload queue unreadable: {exc}", pending=None,
                              consumer_running=None)
        if self.consumer is None:
            return _component("healthy", f"{pending} uploads queued (external workers)",
                              pending=pending, consumer_running=None)
        running = _consumer_running(self.consumer)
        if running is False and self.started.is_set():
            return _component("degraded", f"upload worker is not running; {pending} queued",
                              pending=pending, consumer_running=False)
        return _component("healthy", f"{pending} uploads queued", pending=pending,
                          consumer_running=running)

    def check_disk(self) -> dict[str, Any]:
        """``{status, message, path, free_gb, total_gb, percent, min_free_mb}`` of
        ``RECORDINGS_DIR``'s file system (thresholds in the module docstring)."""
        path = self.settings.recordings_dir
        try:
            usage = shutil.disk_usage(path)
        except OSError as exc:
            return _component("unhealthy", f"recordings folder unavailable: {exc}",
                              path=str(path))
        percent = 100.0 * usage.used / usage.total if usage.total else 0.0
        min_free = self.settings.min_free_disk_mb * _MB
        details = {"path": str(path), "free_gb": round(usage.free / _GB, 2),
                   "total_gb": round(usage.total / _GB, 2), "percent": round(percent, 1),
                   "min_free_mb": self.settings.min_free_disk_mb}
        if usage.free < min_free:
            return _component("unhealthy", f"only {usage.free / _MB:.0f} MB free; "
                              "recordings cannot start", **details)
        if usage.free < 2 * min_free or percent > DISK_DEGRADED_PERCENT:
            return _component("degraded", f"disk {percent:.1f}% full, "
                              f"{usage.free / _GB:.2f} GB free", **details)
        return _component("healthy", f"{usage.free / _GB:.2f} GB free", **details)

    def components(self) -> dict[str, dict[str, Any]]:
        """Health of every component: ``{database, scheduler, upload_queue, disk}``."""
        return {"database": self.check_database(), "scheduler": self.check_scheduler(),
                "upload_queue": self.check_upload_queue(), "disk": self.check_disk()}

    def health(self) -> dict[str, Any]:
        """``{status: healthy|degraded|unhealthy, message, timestamp, components}``."""
        parts = self.components()
        status, message = overall(parts)
        return {"status": status, "message": message, "timestamp": self._now_iso(),
                "components": parts}

    def _cpu_percent(self) -> float:
        latest = self.sampler.latest()
        if latest is not None and time.time() - latest["epoch"] < 60:
            return float(latest["cpu_percent"])
        return float(psutil.cpu_percent(interval=0.1))

    def status(self) -> dict[str, Any]:
        """The contract's ``/api/system/status``.

        Returns
        -------
        dict
            ``{status, message, timestamp, uptime_seconds, active_recordings,
            total_recordings, cpu_percent, memory_percent, memory_used_mb,
            memory_total_mb, disk_percent, disk_used_gb, disk_total_gb, disk_free_gb,
            components}``; disk figures are of ``RECORDINGS_DIR``, memory of the machine.
        """
        parts = self.components()
        state, message = overall(parts)
        with self.db() as db:
            counts = repo.session_statistics(db)
        mem = psutil.virtual_memory()
        disk = disk_figures(self.settings.recordings_dir)
        return {
            "status": state, "message": message, "timestamp": self._now_iso(),
            "uptime_seconds": round(uptime_seconds(), 1),
            "active_recordings": counts["active"], "total_recordings": counts["total"],
            "cpu_percent": round(self._cpu_percent(), 1),
            "memory_percent": round(float(mem.percent), 1),
            "memory_used_mb": round((mem.total - mem.available) / _MB, 1),
            "memory_total_mb": round(mem.total / _MB, 1),
            **disk, "components": parts,
        }
