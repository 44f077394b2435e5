"""Background job queues on Huey, shared by the apps (DESIGN.md, "background jobs").

:func:`make_huey` builds an app's queue: a ``SqliteHuey`` file
``DATA_DIR/<name>-queue.db`` by default (tasks and delayed retries survive a
restart), or a ``RedisHuey`` when ``QUEUE_URL`` is ``redis://...`` so that
workers on other machines share it. :class:`EmbeddedConsumer` runs Huey's own
consumer (worker threads plus its scheduler thread, which moves delayed tasks
onto the queue when due) inside a server process; ``taperoom worker`` runs the
same consumer in the foreground of a process of its own.

Tasks are registered on a Huey instance by the service that owns them (Huey
looks a task up by ``module.name`` in the registry of the instance that runs
it), so a worker process registers them by building the same services.

:class:`Priority` names the priorities of queued jobs, shared by every kind of
job (library scans now, analysis next): Huey takes the highest first, and
first come first served within one priority.
"""

from __future__ import annotations

import logging
import threading
import weakref
from enum import IntEnum
from pathlib import Path

from huey import Huey, MemoryHuey, PriorityRedisHuey, RedisHuey, SqliteHuey
from huey.constants import WORKER_THREAD
from huey.consumer import Consumer
from huey.exceptions import ConfigurationError

from taperoom.config import redact_url
from taperoom.errors import InvalidInput

log = logging.getLogger(__name__)

#: Longest pause (s) between two polls of an idle SQLite queue by a worker thread.
#: Huey's default (10 s) would delay a freshly queued upload by up to 10 s.
DEFAULT_MAX_POLL_DELAY = 1.0



class Priority(IntEnum):
    """Named priorities of queued jobs; Huey runs a higher value first.

    The library's API names the first three (``low``, ``normal``, ``high``, as
    the contract's scan and analysis requests do); :attr:`URGENT` is above
    anything a client can ask for, for work a person is waiting on right now.

    Attributes
    ----------
    LOW
        Background work: the scan of every folder at start-up, re-analysis of
        the whole library.
    NORMAL
        The default of a request.
    HIGH
        A request a user made explicitly, or a rescan of a drive just plugged in.
    URGENT
        The quick analysis of a track a DJ just loaded onto a deck.
    """

    LOW = 10
    NORMAL = 20
    HIGH = 30
    URGENT = 40

    @classmethod
    def named(cls, name: str) -> Priority:
        """The priority called `name` (case-insensitive, e.g. ``"high"``).

        Raises
        ------
        InvalidInput
            No priority has that name.
        """
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise InvalidInput("priority must be one of "
                               + ", ".join(p.name.lower() for p in cls)) from None


_stopping: weakref.WeakKeyDictionary[Huey, threading.Event] = weakref.WeakKeyDictionary()


def queue_path(name: str, data_dir: Path) -> Path:
    """File of the SQLite queue `name` in `data_dir`: ``<data_dir>/<name>-queue.db``."""
    return Path(data_dir) / f"{name}-queue.db"


def make_huey(name: str, *, data_dir: Path, queue_url: str = "",
              immediate: bool = False, priority: bool = False,
              store: str | None = None) -> Huey:
    """The Huey instance of one app's queue.

    Parameters
    ----------
    name : str
        Queue name (``"recorder"``, ``"library"``); it names the SQLite file and
        the Redis keys.
    data_dir : Path
        The app's data folder (created if missing) for the SQLite file.
    queue_url : str
        ``QUEUE_URL``: empty for the SQLite file :func:`queue_path`,
        ``sqlite:///path/to/file.db`` for another SQLite file, or
        ``redis://[:password@]host:port/db`` / ``rediss://...`` for Redis
        (needs the ``redis`` package).
    immediate : bool
        Run each task synchronously when it is queued, in memory (tests and
        one-shot CLI commands without a consumer).
    priority : bool
        Tasks carry a :class:`Priority`. SQLite queues always honour it; on
        Redis this picks Huey's sorted-set queue (``PriorityRedisHuey``, Redis
        >= 5), whose keys differ from a plain queue's, so a queue keeps one
        choice for its whole life.
    store : str, optional
        Name of the SQLite file (``<store>-queue.db``) when it is not `name`:
        several named queues can share one file.

    Returns
    -------
    huey.Huey

    Raises
    ------
    InvalidInput
        `queue_url` has an unknown scheme, or Redis is asked for without the
        ``redis`` package (the message names the URL without its password).
    """
    url = (queue_url or "").strip()
    if immediate:
        return MemoryHuey(name, immediate=True)
    if not url or url.startswith("sqlite:///"):
        path = (Path(url[len("sqlite:///"):]) if url
                else queue_path(store or name, data_dir))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path))
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            if priority:
                return PriorityRedisHuey(name, url=url)
            return RedisHuey(name, url=url)
        except ConfigurationError as exc:
            raise InvalidInput(f"QUEUE_URL={redact_url(url)!r} needs the 'redis' package "
                               f"(pip install redis): {exc}") from exc
    raise InvalidInput(f"QUEUE_URL={redact_url(url)!r} is not supported: leave it empty for "
                       "a SQLite file in DATA_DIR, or use redis://host:port/db")


def stop_requested(huey: Huey) -> bool:
    """Whether the embedded consumer running `huey`'s tasks is shutting down.

    Long tasks poll this (e.g. from a progress callback) to stop early and
    queue themselves again instead of holding up the shutdown.
    """
    event = _stopping.get(huey)
    return event is not None and event.is_set()


class _HostedConsumer(Consumer):
    """Huey's consumer without its signal handlers: the host process owns its signals
    (uvicorn's, or ``taperoom worker``'s), and ``signal.signal`` fails off the main thread."""

    def _set_signal_handlers(self) -> None:
        return None


class EmbeddedConsumer:
    """Huey's consumer (thread workers and scheduler) running inside this process.

    Parameters
    ----------
    huey : huey.Huey
        The queue whose tasks to run (not in immediate mode).
    workers : int
        Worker threads, i.e. tasks run at once.
    max_poll_delay : float
        Longest pause between polls of an idle queue, s (Huey backs off from
        0.1 s by x1.15 per empty poll up to this).
    scheduler_interval : int
        Seconds between checks for delayed tasks that became due (1-60, a
        divisor of 60, Huey's rule); delays are honoured to this precision.
    health_check_interval : float
        Seconds between checks that restart a worker or scheduler thread that
        died, as ``huey_consumer`` does.

    Notes
    -----
    A task that raises is logged by Huey and the worker goes on; it never
    stops the consumer. :meth:`stop` waits for running tasks up to a timeout.
    A task interrupted by the end of the process is lost from the queue (Huey
    removes a task when it starts it), so services re-queue work they find
    unfinished at start-up.
    """

    def __init__(self, huey: Huey, *, workers: int = 2,
                 max_poll_delay: float = DEFAULT_MAX_POLL_DELAY, scheduler_interval: int = 1,
                 health_check_interval: float = 10.0) -> None:
        if huey.immediate:
            raise InvalidInput("an immediate-mode queue runs its tasks itself: no consumer")
        self.huey = huey
        self.workers = workers
        self.max_poll_delay = max_poll_delay
        self.scheduler_interval = scheduler_interval
        self.health_check_interval = health_check_interval
        self._consumer: _HostedConsumer | None = None
        self._monitor: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the consumer threads have been started and not stopped."""
        return self._consumer is not None

    def start(self) -> None:
        """Start the worker and scheduler threads (again, after :meth:`stop`)."""
        with self._lock:
            if self._consumer is not None:
                return
            consumer = _HostedConsumer(
                self.huey, workers=self.workers, periodic=True, initial_delay=0.1,
                backoff=1.15, max_delay=self.max_poll_delay,
                scheduler_interval=self.scheduler_interval, worker_type=WORKER_THREAD,
                check_worker_health=True, health_check_interval=self.health_check_interval)
            _stopping[self.huey] = threading.Event()
            consumer.start()
            self._consumer = consumer
            self._monitor = threading.Thread(target=self._watch, args=(consumer,),
                                             name=f"huey-{self.huey.name}-health", daemon=True)
            self._monitor.start()
            log.info("queue %r: consumer started with %d worker thread(s)", self.huey.name,
                     self.workers)

    def _watch(self, consumer: _HostedConsumer) -> None:
        while not consumer.stop_flag.wait(self.health_check_interval):
            try:
                consumer.check_worker_health()
            except Exception:  # keep watching whatever happens
                log.exception("queue %r: health check failed", self.huey.name)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop taking tasks and wait for the running ones.

        Parameters
        ----------
        timeout : float
            Seconds to wait for running tasks; the threads are daemons, so a
            task still running afterwards does not keep the process alive.

        Returns
        -------
        bool
            True when every thread stopped within `timeout`.
        """
        with self._lock:
            consumer, self._consumer = self._consumer, None
            if consumer is None:
                return True
            event = _stopping.get(self.huey)
            if event is not None:
                event.set()
            consumer.shutdown_timeout = timeout
            consumer.stop(graceful=True)
            threads = [t for _, t in consumer.worker_threads] + [consumer.scheduler]
            clean = not any(t.is_alive() for t in threads)
            self.huey.notify_interrupted_tasks()
            if self._monitor is not None:
                self._monitor.join(1.0)
                self._monitor = None
            if not clean:
                log.warning("queue %r: a task was still running %.0f s after the stop request",
                            self.huey.name, timeout)
            return clean
