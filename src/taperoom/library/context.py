"""The library's composition root: every service, built once with its collaborators.

:func:`build_services` opens the database (migrating it to the newest revision)
and builds each service in dependency order, handing it exactly what it uses
(the session factory ``db``, the event bus, a few settings, other services
behind small protocols), as Mopidy's ``Core`` hands each controller its
backends and Navidrome builds its scanner from a datastore and a broker.
:meth:`LibraryServices.close` closes them in reverse order. No service imports
this module; services that react to each other do so through the event bus
(the watcher watches a folder the directory service added, the scan manager
cancels the scan of a folder whose drive went away).

Several worker processes may open the same library (``--workers N``). Each
builds every service and serves reads and writes; the work that must happen
once runs in the one process that holds the leader lock (:mod:`taperoom.leader`):
the recovery of interrupted file operations, the job consumers (scans), the
file watcher, the refresh of smart playlists after track changes and the calls
the other workers forward to it (the watcher's controls). The locks of files and folders are
:class:`~taperoom.fslock.KeyLocks` files in ``DATA_DIR``, which hold across
processes, and with ``WEB_CONCURRENCY`` > 1 the event relay carries every
process's events to the others' buses (also with a shared queue, or with
``MAX_CONCURRENT_ANALYSIS=0``, when ``taperoom library worker`` processes run
the analyses and the server's clients wait for their events).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from huey import Huey
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from taperoom.analysis.remote import AnalysisServerClient
from taperoom.db import make_engine, make_sessionmaker
from taperoom.enginelink.client import EngineLink
from taperoom.enginelink.handlers import EngineHandlers
from taperoom.enginelink.liveset import LiveSet
from taperoom.enginelink.outbox import Outbox
from taperoom.enginelink.status import EngineStatus
from taperoom.enginelink.stems import StemsProvider
from taperoom.enginelink.trackinfo import TrackInfoReader
from taperoom.errors import Misconfigured
from taperoom.events import EventBus
from taperoom.fslock import KeyLocks, file_lock
from taperoom.jobs import make_huey
from taperoom.leader import FileLeaderLock, LeaderLock, Leadership, PostgresLeaderLock, process_id
from taperoom.library import migrate
from taperoom.library.analysis import AnalysisService
from taperoom.library.analysis.external import HEALTH_TIMEOUT, ExternalAnalysis
from taperoom.library.cleanup import backup_folder
from taperoom.library.directories import DirectoryService
from taperoom.library.duplicates import DuplicateService
from taperoom.library.eventrelay import EventRelay
from taperoom.library.fileops import FileOperations
from taperoom.library.folderpolicy import FolderPolicy
from taperoom.library.jobqueue import JobQueue
from taperoom.library.leadercalls import LeaderCalls, LeaderWatcher
from taperoom.library.recovery import RecoveryReport, recover_operations
from taperoom.library.scanner.manager import ScanManager, ScanQueue
from taperoom.library.scanner.runner import Scanner
from taperoom.library.scanner.state import FolderLocks
from taperoom.library.settings import LibrarySettings
from taperoom.library.settings_service import SettingsService
from taperoom.library.stems.cache import StemCache
from taperoom.library.stems.delivery import StemStore
from taperoom.library.stems.service import StemsService
from taperoom.library.suggestions import SuggestionService
from taperoom.library.tracks import TrackService
from taperoom.library.users import user_store
from taperoom.library.watcher import LibraryWatcher
from taperoom.playlists.crates import CrateService
from taperoom.playlists.exporter import PlaylistExporter
from taperoom.playlists.importer import PlaylistImporter
from taperoom.playlists.keeper import SmartPlaylistKeeper
from taperoom.playlists.service import PlaylistService
from taperoom.playlists.sessions import SessionService
from taperoom.playlists.smartlists import SmartPlaylists
from taperoom.playlists.thinking import ThinkingPlaylist
from taperoom.web.auth import AuthStore

#: Seconds a process waits for another one's migration of the database.
MIGRATE_WAIT = 600.0


@dataclass(frozen=True)
class LibraryServices:
    """Every service of the library, fully built (see :func:`build_services`).

    Attributes
    ----------
    settings : LibrarySettings
    engine : Engine
        SQLAlchemy engine of the library database (migrated to head).
    db : sessionmaker
        Session factory; use :func:`taperoom.db.transaction` for writes.
    bus : EventBus
        ``track:*``, ``library:*``, ``duplicate:*`` and ``file_operation:*`` events.
    folders : FolderPolicy
        Which folders may be library folders (``LIBRARY_ALLOWED_ROOTS``).
    process : str
        This process's name among the workers (:func:`taperoom.leader.process_id`).
    leadership : Leadership
        Whether this process leads (runs the watcher, the jobs, the recovery).
    relay : EventRelay or None
        Carries events between worker processes (``WEB_CONCURRENCY`` > 1).
    recovery : RecoveryReport
        File operations a crash had interrupted, finished or undone when this
        process took the lead.
    users : AuthStore
        Users and sign-in sessions (the access layer).
    settings_store : SettingsService
        The user settings of ``/api/settings``.
    tracks : TrackService
    suggestions : SuggestionService
        Harmonic next-track suggestions (``/api/tracks/:id/suggestions``).
    fileops : FileOperations
        Serialised move/rename/delete of track files (in any process).
    jobs : JobQueue
        The job layer (Huey queues and ``library_jobs``) that scans run on.
    duplicates : DuplicateService
    scanner : Scanner
        Runs the phases of one scan.
    scans : ScanQueue
        Starts, tracks and cancels scans (:class:`~taperoom.library.scanner.manager.ScanManager`).
    directories : DirectoryService
    watcher : LibraryWatcher
        Watches library folders and removable drives (in the leader).
    watcher_controls : LeaderWatcher
        The leader's watcher, controlled from this process (``/api/watcher``).
    analysis : AnalysisService
        The analysis queue (``/api/analysis``; its jobs run in the leader).
    playlists : PlaylistService
        Playlists and their tracks (``/api/playlists``).
    sessions : SessionService
        DJ session playlists.
    thinking : ThinkingPlaylist
        The thinking playlist.
    crates : CrateService
        Folders of playlists.
    smart : SmartPlaylists
        Refresh, conversion and explanation of smart playlists.
    smart_keeper : SmartPlaylistKeeper
        Refreshes the smart playlists that changes of tracks affect (in the leader).
    exporter : PlaylistExporter
        M3U8 and rekordbox XML exports of playlists and of the collection.
    importer : PlaylistImporter
        Imports of M3U/M3U8 playlists and rekordbox XML (``/api/import``).
    engine_link : EngineLink
        The WebSocket link to the audio engine (runs in the leader when
        ``ENGINE_LINK_ENABLED``), with its live set.
    engine_status : EngineStatus
        The link's status from any worker (``/api/engine/status``).
    stems : StemsService
        Stems for the audio engine, from the stem cache or the analysis server.
    fresh : bool
        The database is new: this process took the marker that its creation left
        (:func:`taperoom.library.migrate.upgrade_new`), whether it created it or the
        start-up checks did.
    """

    settings: LibrarySettings
    engine: Engine
    db: sessionmaker[Session]
    bus: EventBus
    process: str
    leadership: Leadership
    relay: EventRelay | None
    folders: FolderPolicy
    recovery: RecoveryReport
    users: AuthStore
    settings_store: SettingsService
    tracks: TrackService
    suggestions: SuggestionService
    fileops: FileOperations
    jobs: JobQueue
    duplicates: DuplicateService
    scanner: Scanner
    scans: ScanQueue
    directories: DirectoryService
    watcher: LibraryWatcher
    watcher_controls: LeaderWatcher
    analysis: AnalysisService
    playlists: PlaylistService
    sessions: SessionService
    thinking: ThinkingPlaylist
    crates: CrateService
    smart: SmartPlaylists
    smart_keeper: SmartPlaylistKeeper
    exporter: PlaylistExporter
    importer: PlaylistImporter
    engine_link: EngineLink
    engine_status: EngineStatus
    stems: StemsService
    _closer: ExitStack = field(repr=False, compare=False)
    fresh: bool = False

    def close(self) -> None:
        """Step down as leader (stopping the watcher and the job consumers), stop the
        other background services in the reverse order of their building, and
        dispose of the engine."""
        self._closer.close()


def leader_lock(engine: Engine, data_dir: Path) -> LeaderLock:
    """The library's leader lock: a PostgreSQL advisory lock when the database is
    PostgreSQL (processes on several machines), else a file lock in `data_dir`."""
    if engine.dialect.name == "postgresql":
        return PostgresLeaderLock(engine, "library")
    return FileLeaderLock(data_dir / "library-leader.lock")


def _queue(settings: LibrarySettings, name: str) -> Huey:
    """The Huey queue `library-<name>` (``DATA_DIR/library-queue.db`` or ``QUEUE_URL``)."""
    return make_huey(f"library-{name}", data_dir=settings.data_path,
                     queue_url=settings.queue, priority=True,
                     store="library")


def external_analysis(settings: LibrarySettings, db: sessionmaker[Session],
                      stem_cache: StemCache) -> ExternalAnalysis | None:
    """The external analysis server of ``ANALYSIS_SERVER_URL``, or None without one.

    Raises
    ------
    Misconfigured
        ``ANALYSIS_SERVER_URL`` is not an http(s) URL.
    """
    url = settings.analysis_server_url.strip()
    if not url:
        return None
    token = settings.analysis_server_api_token.get_secret_value().strip()
    timeout_ms = settings.python_request_timeout_ms
    try:
        client = AnalysisServerClient(url, timeout_ms=timeout_ms, api_token=token)
    except ValueError as exc:
        raise Misconfigured(f"ANALYSIS_SERVER_URL: {exc}") from None
    health = AnalysisServerClient(url, timeout_ms=min(timeout_ms, int(HEALTH_TIMEOUT * 1000)),
                                  api_token=token)
    stems = StemStore(stem_cache, roots=settings.stem_roots,
                      server_host=httpx.URL(client.base_url).host,
                      max_bytes=int(settings.analysis_stem_max_mb * 1_000_000),
                      timeout=timeout_ms / 1000,
                      headers={"Authorization": f"Bearer {token}"} if token else None)
    return ExternalAnalysis(db, client, health_client=health, stems=stems,
                            callback_url=settings.callback_url,
                            remote=settings.analysis_server_remote,
                            timeout=settings.analysis_timeout_ms / 1000)


def engine_link_of(settings: LibrarySettings, db: sessionmaker[Session], bus: EventBus,
                   tracks: TrackService, analysis: AnalysisService, sessions: SessionService,
                   stems: StemsProvider | None = None) -> EngineLink:
    """The link to the audio engine of ``AUDIO_SERVER_WS_URL`` with its handlers and live
    set (not started: the leader starts it when ``ENGINE_LINK_ENABLED``)."""
    outbox = Outbox()
    live = LiveSet(sessions, bus, min_play_seconds=settings.live_set_min_play_seconds)
    handlers = EngineHandlers(bus, TrackInfoReader(db), tracks, analysis, live, outbox,
                              stems=stems)
    return EngineLink(handlers, outbox, url=settings.audio_server_ws_url.strip(),
                      reconnect_delay=settings.audio_server_reconnect_delay / 1000,
                      reconnect_max=settings.audio_server_reconnect_max / 1000,
                      ping_interval=settings.audio_server_ping_interval / 1000)


def build_services(settings: LibrarySettings | None = None, *,
                   lead: bool = True, worker: bool = False,
                   node: str | None = None) -> LibraryServices:
    """Open the database (migrating it to the newest revision) and build every service.

    Parameters
    ----------
    settings : LibrarySettings, optional
        Read from the environment when omitted.
    lead : bool
        Campaign for the leader lock (a server). When this process gets it (at
        once when no other process holds it), the file operations a crash had
        interrupted are recovered before its job consumers and watcher start
        (:func:`~taperoom.library.recovery.recover_operations`). One-shot
        commands (``taperoom library scan``) pass False: they never lead.
    worker : bool
        A ``taperoom library worker`` process (never leads): it does not react to
        the events of scans (the leader queues their analysis), and its events
        reach the server's WebSocket clients through the event relay.
    node : str, optional
        The node name in this process's name (:func:`taperoom.leader.process_id`;
        default: the machine's host name).

    Returns
    -------
    LibraryServices
        Close it with :meth:`LibraryServices.close`.
    """
    settings = settings or LibrarySettings()
    with ExitStack() as stack:
        data = settings.data_path
        data.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.url)
        stack.callback(engine.dispose)
        # worker processes start together: one migrates, the others then find it done
        with file_lock(data / "library-migrate.lock", timeout=MIGRATE_WAIT):
            new_marker = data / migrate.NEW_MARKER
            migrate.upgrade_new(engine, new_marker)
            fresh = migrate.take_new_marker(new_marker)
        db = make_sessionmaker(engine)
        bus = EventBus()
        process = process_id(node)
        file_locks = KeyLocks(data / "locks" / "files.lock")
        stack.callback(file_locks.close)
        folder_locks = KeyLocks(data / "locks" / "folders.lock")
        stack.callback(folder_locks.close)
        relay = (EventRelay(db, bus, origin=process)
                 if worker or settings.web_concurrency > 1 or settings.shared_queue
                 or settings.max_concurrent_analysis == 0 else None)
        if relay is not None:
            stack.callback(relay.close)
        leadership = Leadership(leader_lock(engine, data), name="library")
        folders = FolderPolicy(settings.allowed_roots)
        tracks = TrackService(db, bus, extensions=settings.extensions)
        suggestions = SuggestionService(db, bpm_percent=settings.suggestion_bpm_percent)
        fileops = FileOperations(db, bus, refusal=folders.refusal,
                                 extensions=settings.extensions, locks=file_locks)
        stack.callback(fileops.shutdown)
        duplicates = DuplicateService(db, bus, fileops)
        jobs = JobQueue(db, huey_for=lambda kind: _queue(settings, kind), owner=process,
                        stale_after=settings.job_stale_seconds)
        stack.callback(jobs.close)
        scanner = Scanner(db, bus, extensions=settings.extensions, refusal=folders.refusal,
                          workers=settings.scan_workers, locks=FolderLocks(folder_locks))
        scans = ScanManager(db, bus, scanner, jobs, refusal=folders.refusal,
                            max_concurrent=settings.max_concurrent_scans)
        stack.callback(scans.shutdown)
        directories = DirectoryService(db, bus, folders, scans,
                                       backup_dir=backup_folder(Path(settings.database_path)))
        watcher = LibraryWatcher(db, bus, settings, refusal=folders.refusal, scanner=scanner,
                                 scans=scans, directories=directories)
        stack.callback(watcher.stop)
        calls = LeaderCalls(_queue(settings, "leader"), leadership)
        watcher_controls = LeaderWatcher(calls, watcher)
        stem_cache = StemCache(data / "stem_cache", max_bytes=settings.stem_cache_max_bytes)
        stem_cache.tidy()
        external = external_analysis(settings, db, stem_cache)
        if external is not None:
            stack.callback(external.close)
        analysis = AnalysisService(
            db, bus, jobs, calls, max_concurrent=settings.max_concurrent_analysis,
            max_retries=settings.analysis_max_retries,
            retry_delay=settings.analysis_retry_delay, bpm_range=settings.bpm_range,
            analyze_on_scan=settings.analyze_on_scan,
            reacts=lambda: not worker and (lead is False or leadership.leading),
            worker_node=(process.partition(":")[0] if worker else None),
            worker_timeout=settings.job_stale_seconds,
            keep_days=settings.analysis_jobs_keep_days, external=external)
        stack.callback(analysis.close)
        stems = StemsService(db, bus, stem_cache, jobs=analysis, server=external,
                             retry_interval=settings.stems_retry_seconds,
                             max_wait=settings.stems_wait_seconds)
        stack.callback(stems.close)
        smart = SmartPlaylists(db, bus)
        smart_keeper = SmartPlaylistKeeper(bus, smart.refresh_affected)
        stack.callback(smart_keeper.stop)
        sessions = SessionService(db, bus)
        engine_link = engine_link_of(settings, db, bus, tracks, analysis, sessions,
                                     stems=stems if external is not None else None)
        stack.callback(engine_link.stop)
        engine_status = EngineStatus(calls, engine_link, enabled=settings.engine_link)
        recovery = RecoveryReport()
        # the leader's duties, started in this order when this process takes the lead
        leadership.add_duty("file operation recovery",
                            lambda: recover_operations(db, file_locks, recovery), _nothing)
        leadership.add_duty("scan states", scans.reset_stale_status, _nothing)
        leadership.add_duty("watcher", watcher.follow_events, watcher.stop)
        leadership.add_duty("job consumers", jobs.start_consumers, jobs.stop_consumers)
        leadership.add_duty("analysis states", analysis.reset_stale_rows, _nothing)
        leadership.add_duty("analysis job pruning", analysis.start_pruning,
                            analysis.stop_pruning)
        leadership.add_duty("smart playlists", smart_keeper.start, smart_keeper.stop)
        leadership.add_duty("leader calls", calls.start_consumer, calls.stop_consumer)
        if settings.engine_link:
            leadership.add_duty("audio engine link", engine_link.start, engine_link.stop)
        if lead:
            leadership.start()
        stack.callback(leadership.stop)  # first to run at close: steps down
        services = LibraryServices(
            settings=settings, engine=engine, db=db, bus=bus, process=process,
            leadership=leadership, relay=relay, folders=folders,
            recovery=recovery, users=user_store(db), settings_store=SettingsService(db),
            tracks=tracks, suggestions=suggestions, fileops=fileops, jobs=jobs,
            duplicates=duplicates,
            scanner=scanner, scans=scans, directories=directories, watcher=watcher,
            watcher_controls=watcher_controls, analysis=analysis,
            playlists=PlaylistService(db, bus, smart), sessions=sessions,
            thinking=ThinkingPlaylist(db, bus), crates=CrateService(db, bus),
            smart=smart, smart_keeper=smart_keeper,
            exporter=PlaylistExporter(db),
            importer=PlaylistImporter(db, bus, refusal=folders.refusal,
                                      extensions=settings.extensions),
            engine_link=engine_link, engine_status=engine_status, stems=stems,
            _closer=stack.pop_all(), fresh=fresh)
    return services


def _nothing() -> None:
    """A duty with nothing to stop."""
