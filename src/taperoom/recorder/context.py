"""The recorder app's shared state: settings, database, bus, scheduler, queue, services.

One :class:`RecorderContext` is built per app (or per CLI command) by
:func:`open_context`; routers receive it and call the services on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import make_engine, make_sessionmaker
from taperoom.events import EventBus
from taperoom.recorder import migrate
from taperoom.recorder.settings import RecorderSettings

if TYPE_CHECKING:
    from huey import Huey

    from taperoom.jobs import EmbeddedConsumer
    from taperoom.recorder.scheduler import RecorderScheduler
    from taperoom.recorder.service import RecordingService
    from taperoom.recorder.uploads import UploadQueue

log = logging.getLogger(__name__)


@dataclass
class RecorderContext:
    """Everything a recorder request handler needs.

    Attributes
    ----------
    settings : RecorderSettings
    engine : Engine
        Engine of the recorder database (migrated to head).
    sessions : sessionmaker
        Session factory; use :func:`taperoom.db.transaction` for writes.
    bus : EventBus
        ``recording:*``, ``transfer:status``, ``station:changed`` and
        ``schedule:changed`` events (the dashboard's WebSocket listens).
    scheduler : RecorderScheduler
        Cron jobs of the active schedules.
    recordings : RecordingService
        Starts, tracks and stops recordings; processing and upload hand-off.
    huey : Huey
        The upload queue's engine (SQLite file in ``DATA_DIR`` or Redis).
    uploads : UploadQueue
        Persistent SFTP/SCP upload queue with retries.
    consumer : EmbeddedConsumer or None
        The queue consumer running inside this process (``EMBEDDED_WORKER``).
    extras : dict
        Room for later services.
    """

    settings: RecorderSettings
    engine: Engine
    sessions: sessionmaker[Session]
    bus: EventBus
    scheduler: RecorderScheduler = field(init=False)
    recordings: RecordingService = field(init=False)
    huey: Huey = field(init=False)
    uploads: UploadQueue = field(init=False)
    consumer: EmbeddedConsumer | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    started: bool = False

    def start(self) -> None:
        """Start the background parts: recover interrupted sessions, the upload
        consumer and the scheduler (with its jobs reconciled to the schedules table)."""
        if self.started:
            return
        self.recordings.recover()
        if self.consumer is not None:
            self.consumer.start()
        self.scheduler.start()
        self.recordings.reconcile_schedules()
        self.started = True

    def close(self) -> None:
        """Stop recordings (keeping what was captured), the scheduler and the consumer."""
        if hasattr(self, "scheduler"):
            self.scheduler.shutdown()
        if hasattr(self, "recordings"):
            self.recordings.shutdown()
        if self.consumer is not None:
            self.consumer.stop()
        self.engine.dispose()
        self.started = False


def open_context(settings: RecorderSettings | None = None) -> RecorderContext:
    """Open the database (migrating it to the newest revision) and build the services.

    Nothing runs in the background until :meth:`RecorderContext.start`.
    """
    from taperoom.jobs import EmbeddedConsumer, make_huey
    from taperoom.recorder.scheduler import RecorderScheduler
    from taperoom.recorder.service import RecordingService
    from taperoom.recorder.uploads import UploadQueue

    settings = settings or RecorderSettings()
    settings.ensure_dirs()
    engine = make_engine(settings.url)
    migrate.upgrade(engine)
    ctx = RecorderContext(settings, engine, make_sessionmaker(engine), EventBus())
    ctx.recordings = RecordingService(ctx)
    ctx.scheduler = RecorderScheduler(engine, settings.zone, ctx.recordings.fire_schedule,
                                      misfire_grace_seconds=settings.misfire_grace_seconds)
    ctx.huey = make_huey("recorder", data_dir=settings.data_dir,
                         queue_url=settings.queue_url.get_secret_value())
    ctx.uploads = UploadQueue(
        ctx.huey, reporter_factory=ctx.recordings.transfer_reporter,
        creds_factory=ctx.recordings.ssh_credentials,
        max_attempts=settings.transfer_max_attempts, retry_delay=settings.retry_delay_seconds,
        backoff_max=settings.transfer_backoff_max_seconds,
        cleanup_after_transfer=settings.cleanup_after_transfer,
        protocol=settings.transfer_protocol)
    if settings.embedded_worker:
        ctx.consumer = EmbeddedConsumer(ctx.huey)
    return ctx
