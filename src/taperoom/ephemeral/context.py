"""Composition root of the ephemeral app: every service built once, closed in reverse.

:func:`build_services` is the one place where the app's objects are made and
given their collaborators (as mopidy's ``Core`` hands each controller its
backends). The HTTP app (:func:`taperoom.ephemeral.app.create_app`) and the
command line take what they need from the :class:`EphemeralServices` it returns;
no service imports this module.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

from taperoom.ephemeral.admin.curator import Curator
from taperoom.ephemeral.admin.session import AdminSessions
from taperoom.ephemeral.analytics.recorder import PlayRecorder
from taperoom.ephemeral.analytics.repository import PlayEventRepository
from taperoom.ephemeral.analytics.service import AnalyticsService
from taperoom.ephemeral.intake import Intake
from taperoom.ephemeral.live.doorbell import Doorbells
from taperoom.ephemeral.live.hub import LiveWearHub
from taperoom.ephemeral.live.publisher import WearPublisher
from taperoom.ephemeral.live.wearlog import WearLog
from taperoom.ephemeral.service import EphemeralService
from taperoom.ephemeral.settings import EphemeralSettings
from taperoom.ephemeral.store import EphemeralStore
from taperoom.events import Event, EventBus
from taperoom.web.ratelimit import ClientRateLimit


@dataclass(frozen=True)
class EphemeralServices:
    """The ephemeral app's services, fully built.

    Attributes
    ----------
    settings : EphemeralSettings
        The settings everything was built from.
    store : EphemeralStore
        Tracks, metadata, locks on disk.
    service : EphemeralService
        The use cases of the routes and commands, over `store`.
    degrade_limit : ClientRateLimit
        ``DEGRADE_RATE_LIMIT`` per client address, shared by the ``/degrade`` hot
        path and its route.
    wear_threads : ThreadPoolExecutor
        ``THREADS`` worker threads in which the ``/degrade`` hot path wears
        segments (blocking file I/O and ``fdatasync``).
    live : LiveWearHub
        This process's live wear subscribers (started and stopped by the app).
    analytics : AnalyticsService
        Plays and degradation over time, from the play events that every worker
        process records (``METADATA_DIR/analytics/plays.sqlite``).
    curator : Curator or None
        The curator's page operations; None without ``ADMIN_TOKEN``.
    admin_sessions : AdminSessions or None
        The curator's sign-ins; None without ``ADMIN_TOKEN``.
    """

    settings: EphemeralSettings
    store: EphemeralStore
    service: EphemeralService
    degrade_limit: ClientRateLimit
    wear_threads: ThreadPoolExecutor
    live: LiveWearHub
    analytics: AnalyticsService
    curator: Curator | None
    admin_sessions: AdminSessions | None
    _closing: ExitStack = field(repr=False, compare=False)

    def close(self) -> None:
        """Release everything, last built first: wait for the wears in progress and
        refuse new ones, then close the store's metadata files. Idempotent."""
        self._closing.close()


def build_services(settings: EphemeralSettings) -> EphemeralServices:
    """Build the ephemeral app's services from `settings`, in dependency order.

    Parameters
    ----------
    settings : EphemeralSettings
        Read by the caller (from the environment, or made by a test).

    Returns
    -------
    EphemeralServices
        To be closed with :meth:`EphemeralServices.close`.

    Raises
    ------
    OSError
        ``AUDIO_DIR`` or ``METADATA_DIR`` cannot be created.
    """
    closing = ExitStack()  # what is built so far, closed if a later step fails
    try:
        store = EphemeralStore(settings)
        closing.callback(store.close)
        intake = Intake(settings.audio_dir, settings.metadata_dir, fsync=settings.fsync)
        bus = EventBus()
        service = EphemeralService(settings, store, intake, bus)
        # each play is recorded before it is pushed: a push's reader finds it in the analytics
        play_events = PlayEventRepository(store.metadata_dir / "analytics" / "plays.sqlite",
                                          busy_timeout=settings.lock_timeout)
        closing.callback(play_events.close)
        recorder = PlayRecorder(play_events, service.stats)
        closing.callback(bus.on(Event.WEAR_PLAYED, recorder.on_play))
        analytics = AnalyticsService(play_events, service.stats)
        live_dir = store.metadata_dir / ".live"
        wear_log = WearLog(live_dir / "wear.sqlite", busy_timeout=settings.lock_timeout)
        closing.callback(wear_log.close)
        bells = Doorbells(live_dir / "bells")
        closing.callback(bells.close)
        publisher = WearPublisher(wear_log, bells, service.stats)
        closing.callback(bus.on(Event.WEAR_PLAYED, publisher.on_play))
        live = LiveWearHub(wear_log, bells)
        degrade_limit = ClientRateLimit(settings.degrade_rate_limit, "degrade")
        wear_threads = ThreadPoolExecutor(settings.threads, thread_name_prefix="wear")
        # a wear in progress writes through the store's open files: let it finish first
        closing.callback(wear_threads.shutdown, wait=True, cancel_futures=True)
        curator, sessions = None, None
        token = settings.admin_token.get_secret_value()
        if token:
            curator = Curator(service, store, intake)
            sessions = AdminSessions(token, lifetime_seconds=settings.admin_session_minutes * 60,
                                     revoked_dir=curator.work_dir / "revoked",
                                     login_limit=settings.admin_login_rate_limit)
        return EphemeralServices(settings=settings, store=store, service=service,
                                 degrade_limit=degrade_limit, wear_threads=wear_threads,
                                 live=live, analytics=analytics, curator=curator,
                                 admin_sessions=sessions, _closing=closing)
    except BaseException:
        closing.close()
        raise
