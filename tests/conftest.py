"""Shared fixtures: settings on tmp_path, real servers on 127.0.0.1, the corpus."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from taperoom.ephemeral.settings import EphemeralSettings

# the shared headless Chromium, as fixtures of every test module
from tests.browser import (  # noqa: F401
    browser,
    browser_context,
    browser_context_args,
    chromium_session,
)
from tests.ci import missing
from tests.library.pgserver import PgServer, PgServerError, find_bindir
from tests.polling import stop_process, wait_for, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent
CORPUS = (ROOT.parent / "shared" / "corpus").resolve()


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared test corpus (see its README); fails clearly when missing."""
    if not (CORPUS / "README.md").is_file():
        pytest.fail(f"test corpus not found at {CORPUS}: tests need ../shared/corpus beside "
                    "the repository")
    return CORPUS


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def eph_settings(tmp_path: Path) -> Callable[..., EphemeralSettings]:
    """Factory of ephemeral settings on tmp_path (keyword overrides allowed)."""

    def make(**overrides: Any) -> EphemeralSettings:
        values: dict[str, Any] = {
            "audio_dir": tmp_path / "audio",
            "metadata_dir": tmp_path / "metadata",
            "fsync": False,
        }
        values.update(overrides)
        return EphemeralSettings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


class LiveServer:
    """A uvicorn server running an ASGI app in a thread (on 127.0.0.1 unless `host` says
    otherwise; ``.url`` names `host`, or 127.0.0.1 for a wildcard address)."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(lambda: self.server.started, 10, f"the server on {self.url} to start",
                 interval=0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_server() -> Iterator[Callable[[Any], LiveServer]]:
    """Start ASGI apps on real sockets; all are stopped at the end of the test."""
    started: list[LiveServer] = []

    def start(app: Any, host: str = "127.0.0.1") -> LiveServer:
        srv = LiveServer(app, host).__enter__()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.__exit__()


#: Dummy interface made for :func:`exposed_address` when the machine has no other
#: address (198.18.0.0/15 is the benchmarking range of RFC 2544, never routed).
#: Name and address of the dummy interface of one test process: each pytest-xdist worker
#: (``PYTEST_XDIST_WORKER`` = ``gw0``, ``gw1``, ...) makes and removes its own.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
DUMMY_LINK, DUMMY_ADDRESS = f"taperoom-t{_WORKER}", f"198.18.7.{1 + _WORKER % 250}"


def _non_loopback_ipv4() -> str | None:
    import ipaddress

    import psutil

    stats = psutil.net_if_stats()
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        if name in stats and not stats[name].isup:
            continue
        for a in addrs:
            if a.family == socket.AF_INET and not ipaddress.ip_address(a.address).is_loopback:
                return str(a.address)
    return None


@pytest.fixture(scope="session")
def exposed_address() -> Iterator[str]:
    """An IPv4 address of this machine that is not loopback (servers bound to it are
    reachable from the network).

    The first such address of an interface that is up; on a machine with none, a
    dummy interface holding :data:`DUMMY_ADDRESS` is created for the session
    (``ip link add ... type dummy``, which needs root) and removed afterwards. The
    tests that use it are skipped, saying why, only when neither works.
    """
    found = _non_loopback_ipv4()
    if found is not None:
        yield found
        return
    steps = [["ip", "link", "add", DUMMY_LINK, "type", "dummy"],
             ["ip", "addr", "add", f"{DUMMY_ADDRESS}/32", "dev", DUMMY_LINK],
             ["ip", "link", "set", DUMMY_LINK, "up"]]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=30)
        except OSError as exc:
            pytest.skip(f"no non-loopback address and `ip` cannot run ({exc})")
        if done.returncode != 0:
            subprocess.run(["ip", "link", "del", DUMMY_LINK], capture_output=True, timeout=30)
            pytest.skip("no non-loopback address, and no dummy interface could be made: "
                        + done.stderr.strip())
    try:
        yield DUMMY_ADDRESS
    finally:
        subprocess.run(["ip", "link", "del", DUMMY_LINK], capture_output=True, timeout=30)


class ServerProcess:
    """``taperoom <args>`` in a subprocess, listening on 127.0.0.1:port."""

    def __init__(self, args: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # a library server links to no audio engine unless the test starts one
        full_env = {**os.environ, "ENGINE_LINK_ENABLED": "false", **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "taperoom", *args], env=full_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_until_serving(self.url + "/", self.proc, 30)
        except AssertionError as exc:
            self.stop()
            out = self.proc.stdout.read().decode() if self.proc.stdout else ""
            raise RuntimeError(f"server did not start ({exc}): {out}") from None

    def stop(self) -> None:
        stop_process(self.proc, 15)


@pytest.fixture
def server_process() -> Iterator[Callable[[list[str], dict[str, str]], ServerProcess]]:
    """Start ``taperoom`` servers as real processes (stopped after the test).

    Call with the CLI arguments (without ``--port``) and extra environment.
    """
    procs: list[ServerProcess] = []

    def start(args: list[str], env: dict[str, str]) -> ServerProcess:
        port = free_port()
        p = ServerProcess([*args, "--host", "127.0.0.1", "--port", str(port)], env, port)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


class DatabaseTemplates:
    """SQLite databases migrated to head once per session, copied into each test.

    An Alembic upgrade from nothing costs about 100 ms per library database; a
    copy of a migrated file costs well under a millisecond, and the app's own
    migration at start then finds the copy at head and stops after one query.
    Tests of that migration itself are marked ``empty_database`` and get no copy.

    Parameters
    ----------
    folder : Path
        Where the templates are made (one file per app).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._made: dict[str, Path] = {}

    def template(self, app: str) -> Path:
        """The migrated template of `app` (``library`` or ``recorder``), made on first use."""
        if app not in self._made:
            from taperoom.db import make_engine, sqlite_url
            from taperoom.library import migrate as library_migrate
            from taperoom.recorder import migrate as recorder_migrate

            migrate = {"library": library_migrate, "recorder": recorder_migrate}[app]
            path = self.folder / f"{app}.db"
            engine = make_engine(sqlite_url(path))
            try:
                migrate.upgrade(engine)
                with engine.connect() as conn:  # everything into the main file
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                engine.dispose()
            wal = path.with_name(path.name + "-wal")
            assert not wal.exists() or wal.stat().st_size == 0, f"{wal} holds pages"
            self._made[app] = path
        return self._made[app]

    def copy(self, app: str, target: Path) -> None:
        """Copy the template of `app` to `target`, unless a database is already there."""
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.template(app), target)


@pytest.fixture(scope="session")
def db_templates(tmp_path_factory: pytest.TempPathFactory) -> DatabaseTemplates:
    """The session's migrated SQLite templates (:class:`DatabaseTemplates`)."""
    return DatabaseTemplates(tmp_path_factory.mktemp("db-templates"))


@pytest.fixture
def empty_database(request: pytest.FixtureRequest) -> bool:
    """True when the test is marked ``empty_database``: its database starts empty."""
    return request.node.get_closest_marker("empty_database") is not None


@pytest.fixture
def lib_database_url() -> str:
    """``DATABASE_URL`` of library tests: empty, i.e. SQLite at ``DATABASE_PATH``.

    ``tests/library/conftest.py`` overrides it for tests run on PostgreSQL.
    """
    return ""


@pytest.fixture
def lib_settings(tmp_path: Path, lib_database_url: str, db_templates: DatabaseTemplates,
                 empty_database: bool) -> Callable[..., Any]:
    """Factory of library settings on tmp_path (no startup scan, no watcher, no automatic
    analysis, no link to an audio engine by default).

    The database is a SQLite file in tmp_path, or the PostgreSQL database of
    `lib_database_url` when that is set. A SQLite file that does not exist yet
    starts as a copy of the migrated template (empty for tests marked
    ``empty_database``).
    """
    from taperoom.library.settings import LibrarySettings

    def make(**overrides: Any) -> LibrarySettings:
        values: dict[str, Any] = {
            "database_path": tmp_path / "data" / "library.db",
            "database_url": lib_database_url,
            "scan_on_startup": False,
            "file_watcher_enabled": False,
            "file_watcher_debounce": 200,
            "analyze_on_scan": False,
            "engine_link_enabled": False,  # no test talks to an engine it did not start
        }
        values.update(overrides)
        settings = LibrarySettings(_env_file=None, **values)  # type: ignore[call-arg]
        if not settings.database_url.get_secret_value() and not empty_database:
            db_templates.copy("library", Path(settings.database_path))
        return settings

    return make


@pytest.fixture
def lib_ctx(lib_settings: Callable[..., Any]) -> Iterator[Any]:
    """The library's services (:class:`~taperoom.library.context.LibraryServices`) on a
    fresh database at head (SQLite in tmp_path by default, a copy of the migrated
    template); closed after the test."""
    from taperoom.library.context import build_services

    services = build_services(lib_settings())
    yield services
    services.close()


@pytest.fixture
def lib_server(lib_ctx: Any, live_server: Callable[[Any], LiveServer]) -> LiveServer:
    """The library app on a real socket, with the `lib_ctx` services."""
    from taperoom.library.app import create_app

    return live_server(create_app(services=lib_ctx))


# -- PostgreSQL ---------------------------------------------------------------------------

#: Database of the session's server that every migrated test database is copied from.
PG_TEMPLATE_DB = "taperoom_template"


class PgTestServer:
    """The session's PostgreSQL server and its migrated template database."""

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self._template_ready = False

    def url(self, database: str) -> str:
        """``postgresql+psycopg://`` URL of a database of the server."""
        return self.server.url(database)

    def fresh_database(self, *, migrated: bool = True) -> str:
        """Create a new database; a copy of the migrated template when `migrated`."""
        if not migrated:
            return self.server.create_database()
        if not self._template_ready:
            from taperoom.db import make_engine
            from taperoom.library import migrate

            self.server.create_database(PG_TEMPLATE_DB)
            engine = make_engine(self.url(PG_TEMPLATE_DB))
            try:
                migrate.upgrade(engine)
            finally:
                engine.dispose()
            self._template_ready = True
        return self.server.create_database(template=PG_TEMPLATE_DB)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgTestServer]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 for the whole session.

    Skipped when PostgreSQL is not installed, except under ``CI=true`` where
    that is a failure; a server that is installed but does not start is always
    a failure.
    """
    bindir = find_bindir()
    if bindir is None:
        missing("PostgreSQL server programs not found under /usr/lib/postgresql/*/bin "
                "(run `make postgres` to install Debian's postgresql package)")
    server = PgServer(bindir)
    try:
        server.start()
        server.wait_ready()
    except PgServerError as exc:
        server.stop()
        pytest.fail(f"the PostgreSQL test server did not start: {exc}")
    try:
        yield PgTestServer(server)
    finally:
        server.stop()


@pytest.fixture
def pg_database(pg_server: PgTestServer) -> Iterator[str]:
    """URL of a fresh database, migrated to head, dropped after the test."""
    name = pg_server.fresh_database()
    yield pg_server.url(name)
    pg_server.server.drop_database(name)


@pytest.fixture
def pg_empty_database(pg_server: PgTestServer) -> Iterator[str]:
    """URL of a fresh, empty database (no tables), dropped after the test."""
    name = pg_server.fresh_database(migrated=False)
    yield pg_server.url(name)
    pg_server.server.drop_database(name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the session's PostgreSQL server are ``postgres`` tests, those that
    use the session's Chromium ``browser`` tests (the ``[postgresql]`` runs of the
    library's tests are marked where they are parametrised)."""
    for item in items:
        used = getattr(item, "fixturenames", ())
        if "pg_server" in used:
            item.add_marker(pytest.mark.postgres)
        if "chromium_session" in used:
            item.add_marker(pytest.mark.browser)
