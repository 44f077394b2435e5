"""The recorder's composition root: every service, built once, with its collaborators.

:func:`build_services` opens the database (migrating it to the newest revision)
and builds each service with exactly the collaborators it uses, in dependency
order; :meth:`RecorderServices.close` closes them in reverse. Nothing here is
looked up by name and no service imports this module: a service gets its
collaborators in its constructor, and the one reaction across services -- a
schedule fires, a recording starts -- goes through the typed event bus
(``schedule:fired``, :class:`taperoom.events.ScheduleFired`).

Dependency order::

    settings -> engine, db (session factory), bus
             -> huey -> scheduler -> upload leases -> upload queue
             (+ consumer and stale-upload watcher)
             -> artwork -> stations, schedules -> exports -> backups
             -> recordings -> sessions -> metrics sampler -> monitor
             -> users -> feeds

Nothing runs in the background until :meth:`RecorderServices.start` (the
server's lifespan calls it; command-line commands mostly do not).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass

from huey import Huey
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from taperoom.clock import Clock, SystemClock
from taperoom.db import make_engine, make_sessionmaker
from taperoom.events import Event, EventBus, ScheduleFired
from taperoom.jobs import EmbeddedConsumer, make_huey
from taperoom.recorder import migrate
from taperoom.recorder.artwork import ArtworkFolder
from taperoom.recorder.backup import BackupService
from taperoom.recorder.exports import ExportService
from taperoom.recorder.feeds.service import FeedService
from taperoom.recorder.monitor import MetricsSampler, SystemMonitor
from taperoom.recorder.scheduler import RecorderScheduler
from taperoom.recorder.schedules import ScheduleService
from taperoom.recorder.service import RecordingService
from taperoom.recorder.sessions import SessionService
from taperoom.recorder.settings import RecorderSettings
from taperoom.recorder.stations import StationService
from taperoom.recorder.transfer import SshCredentials
from taperoom.recorder.upload_leases import SessionUploadLeases, StaleUploadWatcher
from taperoom.recorder.upload_status import SessionUploadReporter
from taperoom.recorder.uploads import UploadQueue
from taperoom.recorder.users import user_store
from taperoom.web.auth import AuthStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecorderServices:
    """Every service of the recorder, fully built (see :func:`build_services`).

    Attributes
    ----------
    settings : RecorderSettings
    engine : Engine
        Engine of the recorder database (migrated to head).
    db : sessionmaker
        Session factory; use :func:`taperoom.db.transaction` for writes.
    bus : EventBus
        ``recording:*``, ``transfer:status``, ``station:changed``,
        ``schedule:changed`` and ``schedule:fired`` (the dashboard's WebSocket listens).
    huey : huey.Huey
        The upload queue's engine (SQLite file in ``DATA_DIR`` or Redis).
    scheduler : RecorderScheduler
        Cron jobs of the active schedules; a fire is sent as ``schedule:fired``.
    uploads : UploadQueue
        Persistent SFTP/SCP upload queue with retries.
    consumer : EmbeddedConsumer or None
        The queue consumer running inside this process (``EMBEDDED_WORKER``).
    watcher : StaleUploadWatcher or None
        Beside the consumer: queues again the uploads of silent workers.
    artwork : ArtworkFolder
        Cover art files.
    stations : StationService
    schedules : ScheduleService
    exports : ExportService
        Export and import of the configuration document.
    backups : BackupService
    recordings : RecordingService
        Starts, tracks and stops recordings; processing and upload hand-off.
    sessions : SessionService
        The history of recording sessions.
    sampler : MetricsSampler
        Resource metrics (its thread runs while the server runs).
    monitor : SystemMonitor
        Health and system status.
    users : AuthStore
        Users and signed-in sessions of the access layer.
    feeds : FeedService
        Podcast feeds of the recordings, their tokens and files.
    started : threading.Event
        Set while the background parts run (:meth:`start` .. :meth:`close`).
    """

    settings: RecorderSettings
    engine: Engine
    db: sessionmaker[Session]
    bus: EventBus
    huey: Huey
    scheduler: RecorderScheduler
    uploads: UploadQueue
    consumer: EmbeddedConsumer | None
    watcher: StaleUploadWatcher | None
    artwork: ArtworkFolder
    stations: StationService
    schedules: ScheduleService
    exports: ExportService
    backups: BackupService
    recordings: RecordingService
    sessions: SessionService
    sampler: MetricsSampler
    monitor: SystemMonitor
    users: AuthStore
    feeds: FeedService
    started: threading.Event
    closer: contextlib.ExitStack

    def start(self) -> None:
        """Start the background parts: the upload consumer, the recording service
        (recovers interrupted sessions, then listens for fired schedules) and the
        scheduler (its jobs reconciled with the schedules table). Their stops are
        put on the closing stack, so :meth:`close` stops the scheduler first."""
        if self.started.is_set():
            return
        self.start_uploads()
        self.recordings.start()
        self.closer.callback(self.recordings.shutdown)
        self.scheduler.start()
        self.closer.callback(self.scheduler.shutdown)
        self.recordings.reconcile_schedules()
        self.started.set()
        self.closer.callback(self.started.clear)

    def start_uploads(self) -> None:
        """Start the upload consumer and its stale-upload watcher (``taperoom worker``
        starts only these); stopped by :meth:`close`."""
        if self.consumer is not None and not self.consumer.running:
            self.consumer.start()
            self.closer.callback(self.consumer.stop)
        if self.watcher is not None:
            self.watcher.start()
            self.closer.callback(self.watcher.stop)

    def close(self) -> None:
        """Stop what runs (the scheduler, then the recordings, which keep what they
        captured, then the consumer) and close every service in reverse order of
        construction."""
        self.closer.close()


def build_services(settings: RecorderSettings | None = None, *,
                   clock: Clock | None = None) -> RecorderServices:
    """Open the database (migrating it to the newest revision) and build the services.

    Parameters
    ----------
    settings : RecorderSettings, optional
        Read from the environment when omitted.
    clock : Clock, optional
        The recordings' clock (captures, session times):
        :class:`~taperoom.clock.SystemClock` unless a test passes a
        :class:`~taperoom.clock.SimulatedClock`.

    Returns
    -------
    RecorderServices
        Not started (see :meth:`RecorderServices.start`); close it when done.
    """
    settings = settings or RecorderSettings()
    settings.ensure_dirs()
    with contextlib.ExitStack() as stack:
        engine = make_engine(settings.url)
        stack.callback(engine.dispose)
        migrate.upgrade(engine)
        db = make_sessionmaker(engine)
        bus = EventBus()

        def fired(schedule_id: int) -> None:
            bus.send(Event.SCHEDULE_FIRED, dict(ScheduleFired(schedule_id=schedule_id)))

        huey = make_huey("recorder", data_dir=settings.data_dir,
                         queue_url=settings.queue)
        scheduler = RecorderScheduler(engine, settings.zone, fired,
                                      misfire_grace_seconds=settings.misfire_grace_seconds)
        stack.callback(scheduler.shutdown)
        leases = SessionUploadLeases(db, stale_after=settings.upload_stale_seconds)
        uploads = UploadQueue(
            huey, reporter_factory=lambda: SessionUploadReporter(db, bus),
            creds_factory=lambda: SshCredentials.from_config_dir(settings.ssh_config_dir),
            max_attempts=settings.transfer_max_attempts,
            retry_delay=settings.retry_delay_seconds,
            backoff_max=settings.transfer_backoff_max_seconds,
            cleanup_after_transfer=settings.cleanup_after_transfer,
            protocol=settings.transfer_protocol, leases=leases)
        stack.callback(uploads.close)
        consumer = EmbeddedConsumer(huey) if settings.embedded_worker else None
        watcher = None
        if consumer is not None:
            stack.callback(consumer.stop)
            watcher = StaleUploadWatcher(db, uploads,
                                         stale_after=settings.upload_stale_seconds)
            stack.callback(watcher.stop)
        artwork = ArtworkFolder(settings)
        stations = StationService(db, bus, settings, artwork, scheduler)
        schedules = ScheduleService(db, bus, settings, scheduler)
        exports = ExportService(db, bus, settings, schedules)
        backups = BackupService(db, bus, settings, exports, stations, schedules, artwork)
        recordings = RecordingService(db, bus, settings, scheduler, uploads,
                                      clock=clock if clock is not None else SystemClock())
        stack.callback(recordings.shutdown)
        sessions = SessionService(db, settings, recordings)
        sampler = MetricsSampler(db, settings)
        stack.callback(sampler.stop)
        started = threading.Event()
        monitor = SystemMonitor(engine, db, settings, scheduler, huey, consumer, sampler,
                                started)
        users = user_store(db)
        feeds = FeedService(db, settings, artwork)
        services = RecorderServices(
            settings=settings, engine=engine, db=db, bus=bus, huey=huey, scheduler=scheduler,
            uploads=uploads, consumer=consumer, watcher=watcher, artwork=artwork, stations=stations,
            schedules=schedules, exports=exports, backups=backups, recordings=recordings,
            sessions=sessions, sampler=sampler, monitor=monitor, users=users, feeds=feeds,
            started=started, closer=stack.pop_all())
    return services
