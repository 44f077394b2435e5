"""A throwaway PostgreSQL cluster for tests: initdb, pg_ctl start on 127.0.0.1, databases.

The cluster lives in a temporary folder outside pytest's ``tmp_path`` (which
other users cannot enter): PostgreSQL refuses to run as root, so when the tests
run as root the folder belongs to the ``postgres`` system user and every server
program runs through ``runuser -u postgres --``. The server listens on a free
TCP port of 127.0.0.1 only, with its unix socket inside the folder, trusts local
connections (nobody else can reach it) and runs without fsync: it holds nothing
worth keeping, and :meth:`PgServer.stop` removes it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.polling import wait_for

#: Where Debian's ``postgresql-NN`` packages put the server programs.
BIN_GLOB = "/usr/lib/postgresql/*/bin"
#: The cluster's superuser (also the system user the server runs as under root).
SUPERUSER = "postgres"


class PgServerError(RuntimeError):
    """The PostgreSQL test server could not be found, initialised or started."""


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb``, or None.

    ``PG_BINDIR`` in the environment overrides the search (any folder with
    ``initdb`` and ``pg_ctl``).
    """
    override = os.environ.get("PG_BINDIR")
    if override:
        return Path(override) if (Path(override) / "initdb").is_file() else None
    found = [Path(p) for p in glob.glob(BIN_GLOB) if (Path(p) / "initdb").is_file()]

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in p.parent.name.split(".") if x.isdigit())

    return max(found, key=version) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """A PostgreSQL cluster in a temporary folder, serving 127.0.0.1:`port`.

    Parameters
    ----------
    bindir : Path
        Folder of ``initdb`` and ``pg_ctl``.

    Attributes
    ----------
    port : int
        TCP port on 127.0.0.1 (chosen free at start).
    base : Path
        The temporary folder: ``data/`` (the cluster), ``sock/`` (unix socket),
        ``server.log``.
    """

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = 0
        self.base = Path(tempfile.mkdtemp(prefix="taperoom-pg-"))
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "server.log"
        self._prefix: list[str] = []
        self._started = False

    # -- running the server programs ------------------------------------------------

    def _run(self, *args: str, timeout: float = 120) -> str:
        cmd = [*self._prefix, *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PgServerError(f"{' '.join(cmd)}: {exc}") from exc
        if proc.returncode != 0:
            raise PgServerError(f"{' '.join(cmd)} exited {proc.returncode}:\n"
                                f"{proc.stdout}\n{proc.stderr}\n{self._log_tail()}")
        return proc.stdout

    def _log_tail(self) -> str:
        try:
            return "server log:\n" + self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def _own(self) -> None:
        """As root: hand the folder to the ``postgres`` user and run programs as it."""
        if os.geteuid() != 0:
            return
        try:
            user = pwd.getpwnam(SUPERUSER)
        except KeyError as exc:
            raise PgServerError("running as root, but there is no 'postgres' system user to "
                                "run the server as (install Debian's postgresql package)"
                                ) from exc
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PgServerError("running as root, but runuser(1) is missing")
        os.chown(self.base, user.pw_uid, user.pw_gid)
        self._prefix = [runuser, "-u", SUPERUSER, "--"]

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> PgServer:
        """initdb, then ``pg_ctl start`` and wait until the server accepts connections.

        Raises
        ------
        PgServerError
            With the programs' output and the server log, if anything fails.
        """
        self._own()
        self._run("mkdir", "-p", str(self.sock))
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                  "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        for attempt in range(3):
            self.port = _free_port()
            opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                    "-c max_connections=200 -c shared_buffers=32MB")
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                          str(self.log), "-o", opts, "-w", "-t", "60", "start")
            except PgServerError:
                if attempt == 2:
                    raise
                continue  # the port was taken in the meantime: try another
            self._started = True
            return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove the folder."""
        if self._started:
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                          "-w", "stop", timeout=60)
            except PgServerError:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m",
                          "immediate", "-w", "stop", timeout=60)
            self._started = False
        shutil.rmtree(self.base, ignore_errors=True)

    # -- databases ------------------------------------------------------------------------

    def url(self, database: str = "postgres", *, driver: str = "postgresql+psycopg") -> str:
        """SQLAlchemy URL of `database` on this server (user ``postgres``, no password)."""
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                             dbname="postgres", autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create a database (a copy of `template` when given); returns its name."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        sql = f'CREATE DATABASE "{name}"'
        if template:
            sql += f' TEMPLATE "{template}"'
        self._admin(sql)
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, closing its remaining connections."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def wait_ready(self, timeout: float = 30) -> None:
        """Block until the server accepts a connection (after a start)."""
        import psycopg

        refused: list[psycopg.OperationalError] = []

        def accepts() -> bool:
            try:
                psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                                dbname="postgres", connect_timeout=2).close()
                return True
            except psycopg.OperationalError as exc:
                refused[:] = [exc]
                return False

        try:
            wait_for(accepts, timeout, "the server to accept a connection", interval=0.1)
        except AssertionError as exc:
            raise PgServerError(f"server not ready: {exc}: {refused}\n{self._log_tail()}"
                                ) from None
