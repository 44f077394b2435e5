"""The ``taperoom`` command line (Typer).

``taperoom serve`` runs every app, each on its own port; ``taperoom <app> ...``
holds each app's own commands. :class:`~taperoom.errors.TaperoomError` is mapped
to an exit code here, in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from taperoom.apps import APPS, AppSpec
from taperoom.config import setup_logging
from taperoom.ephemeral.context import EphemeralServices, build_services
from taperoom.ephemeral.settings import EphemeralSettings
from taperoom.errors import TaperoomError
from taperoom.web.heap import FREEZE_ENV

app = typer.Typer(help="Taperoom: self-hosted audio server for DJs and sound artists.",
                  no_args_is_help=True)
ephemeral_app = typer.Typer(help="WAV files that wear out as they are played.",
                            no_args_is_help=True)
app.add_typer(ephemeral_app, name="ephemeral")
library_app = typer.Typer(help="A DJ's music library backend.", no_args_is_help=True)
app.add_typer(library_app, name="library")
with contextlib.suppress(ImportError):  # the library commands need the 'library' extra
    from taperoom.library import cli as library_cli
    from taperoom.library.users import open_user_store as open_library_users
    from taperoom.web.auth.cli import build_user_cli

    library_app.command("scan")(library_cli.scan)
    library_app.command("analyze")(library_cli.analyze)
    library_app.command("worker")(library_cli.worker)
    library_app.add_typer(build_user_cli("library", open_library_users), name="user")
analysis_app = typer.Typer(help="Music analysis served to other programs.",
                            no_args_is_help=True)
app.add_typer(analysis_app, name="analysis")
with contextlib.suppress(ImportError):  # the analyzer needs the 'library' extra
    from taperoom.analysis import cli as analysis_cli

    app.command("analyze")(analysis_cli.analyze)
    analysis_app.command("serve")(analysis_cli.serve)
recorder_app = typer.Typer(help="Scheduled internet-radio recording.", no_args_is_help=True)
app.add_typer(recorder_app, name="recorder")
with contextlib.suppress(ImportError):  # the recorder commands need the 'recorder' extra
    from taperoom.recorder import cli as recorder_cli

    recorder_app.command("record")(recorder_cli.record)
    recorder_app.command("stations")(recorder_cli.stations)
    recorder_app.command("sessions")(recorder_cli.sessions)
    from taperoom.recorder.users import open_user_store as open_recorder_users
    from taperoom.web.auth.cli import build_user_cli

    recorder_app.add_typer(build_user_cli("recorder", open_recorder_users), name="user")
console = Console(stderr=True)

HostOpt = Annotated[str | None, typer.Option(help="Interface to listen on [env HOST].")]
PortOpt = Annotated[int | None, typer.Option(help="TCP port [env PORT].")]
WorkersOpt = Annotated[int, typer.Option(min=1, max=64,
                                         help="Worker processes (uvicorn --workers).")]


def _listen_on(host: str, specs: list[AppSpec]) -> None:
    """Tell the apps where they listen (their ``HOST``/``WEB_HOST`` setting decides the
    Host names they answer and whether they need credentials), then run their
    preflight checks, so that an app that must not start stops here with one line."""
    os.environ["HOST"] = host
    os.environ["WEB_HOST"] = host
    os.environ[FREEZE_ENV] = "1"  # a server process (see taperoom.web.heap)
    for spec in specs:
        spec.check()


def _run_uvicorn(spec: AppSpec, host: str, port: int, workers: int) -> None:
    setup_logging()
    _listen_on(host, [spec])
    if spec.name == "recorder":  # its scheduler and recordings live in one process
        workers = 1
    # the workers read it (the library relays its events between them when above 1)
    os.environ["WEB_CONCURRENCY"] = str(workers)
    uvicorn.run(spec.factory, factory=True, host=host, port=port, workers=workers,
                log_level=os.environ.get("LOG_LEVEL", "info").lower(), timeout_keep_alive=30,
                **spec.server)


def _usage(message: str) -> None:
    console.print(f"[red]usage error:[/red] {message}")
    raise typer.Exit(2)


def _host(host: str | None) -> str:
    return host or os.environ.get("HOST") or "127.0.0.1"


def _port(spec: AppSpec, port: int | None, alone: bool) -> int:
    if port is not None:
        return port
    env = os.environ.get(f"{spec.name.upper()}_PORT") or (os.environ.get("PORT") if alone else None)
    return int(env) if env else spec.default_port


@app.command()
def serve(
    host: HostOpt = None,
    port: Annotated[int | None, typer.Option(
        help="Port, only when a single app is selected with --app.")] = None,
    workers: WorkersOpt = 1,
    only: Annotated[list[str] | None, typer.Option(
        "--app", help="Run only these apps (repeatable); default: all.")] = None,
) -> None:
    """Run every app, each on its own port (<APP>_PORT or its default).

    With one worker, all apps share this process; with more, each app gets its own
    uvicorn supervisor process with N workers.
    """
    names = only or [n for n, spec in APPS.items() if spec.installed]
    unknown = [n for n in names if n not in APPS]
    if unknown:
        _usage(f"unknown app(s): {', '.join(unknown)}; known: {', '.join(APPS)}")
    if port is not None and len(names) != 1:
        _usage("--port needs exactly one --app; use <APP>_PORT variables")
    specs = [APPS[n] for n in names]
    h = _host(host)
    if len(specs) == 1:
        _run_uvicorn(specs[0], h, _port(specs[0], port, True), workers)
        return
    if workers == 1:
        setup_logging()
        _listen_on(h, specs)

        async def run_all() -> None:
            servers = [uvicorn.Server(uvicorn.Config(s.factory, factory=True, host=h,
                                                     port=_port(s, None, False), **s.server))
                       for s in specs]
            await asyncio.gather(*(srv.serve() for srv in servers))

        asyncio.run(run_all())
        return
    _listen_on(h, specs)
    procs = [subprocess.Popen([sys.executable, "-m", "taperoom", "serve", "--app", s.name,
                               "--host", h, "--port", str(_port(s, None, False)),
                               "--workers", str(workers)]) for s in specs]

    def stop(*_: object) -> None:
        for p in procs:
            p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = [p.wait() for p in procs]
    raise typer.Exit(max(codes))


@app.command("worker")
def worker(
    which: Annotated[str, typer.Option(
        "--app", help="Whose jobs: 'recorder' (uploads) or 'library' (analysis).")
    ] = "recorder",
    concurrency: Annotated[int, typer.Option(
        "--concurrency", "-c", min=0, max=64,
        help="library: analyses at once (0: MAX_CONCURRENT_ANALYSIS, at least 1).")
    ] = 0,
    name: Annotated[str | None, typer.Option(
        "--name", "-n", help="library: node name of this worker (default: the host name).")
    ] = None,
) -> None:
    """Run an app's queue consumer in the foreground: the recorder's uploads (the
    default, for a machine that uploads while another records), or with
    --app library the library's analysis jobs (``taperoom library worker``)."""
    if which == "library":
        from taperoom.library import cli as library_commands

        library_commands.worker(concurrency=concurrency, name=name)
    elif which == "recorder":
        if concurrency or name is not None:
            _usage("--concurrency and --name are options of the library worker")
        from taperoom.recorder import cli as recorder_commands

        recorder_commands.worker()
    else:
        _usage(f"--app must be 'recorder' or 'library', not {which!r}")


@ephemeral_app.command("serve")
def ephemeral_serve(host: HostOpt = None, port: PortOpt = None, workers: WorkersOpt = 1) -> None:
    """Serve the ephemeral API (default port 5000)."""
    spec = APPS["ephemeral"]
    _run_uvicorn(spec, _host(host), _port(spec, port, True), workers)


@library_app.command("serve")
def library_serve(host: HostOpt = None, port: PortOpt = None, workers: WorkersOpt = 1) -> None:
    """Serve the library API (default port 12047). Every worker process serves
    requests; one of them (the leader) runs the watcher and the scans, and another
    takes over if it dies."""
    spec = APPS["library"]
    _run_uvicorn(spec, _host(host), _port(spec, port, True), workers)


@recorder_app.command("serve")
def recorder_serve(host: HostOpt = None, port: PortOpt = None, workers: WorkersOpt = 1) -> None:
    """Serve the recorder API and dashboard (default port 8666). The scheduler and
    recordings run inside the server process, so it always runs one worker."""
    if workers > 1:
        console.print("[yellow]the recorder runs one worker process (its scheduler and "
                      "recordings live in it); ignoring --workers[/yellow]")
    spec = APPS["recorder"]
    _run_uvicorn(spec, _host(host) if host or not os.environ.get("WEB_HOST")
                 else os.environ["WEB_HOST"], _recorder_port(spec, port), 1)


def _recorder_port(spec: AppSpec, port: int | None) -> int:
    if port is None and os.environ.get("WEB_PORT"):
        return int(os.environ["WEB_PORT"])
    return _port(spec, port, True)


@contextlib.contextmanager
def _ephemeral() -> Iterator[EphemeralServices]:
    """The ephemeral services for one command, closed when it ends."""
    services = build_services(EphemeralSettings())
    try:
        yield services
    finally:
        services.close()


@ephemeral_app.command("scan")
def ephemeral_scan() -> None:
    """Convert new MP3/FLAC/Ogg/Opus/AIFF/M4A files to WAV, then create metadata and
    waveforms for every WAV file in AUDIO_DIR."""
    with _ephemeral() as services:
        for done in services.service.convert_new():
            console.print(f"converted {escape(done.source)} to {escape(done.wav)}")
        store = services.store
        names = store.list_filenames()
        ok = 0
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("scanning", total=len(names))
            for name in names:
                progress.update(task, description=name[:40])
                if store.try_info(name) is not None:
                    store.ensure_meta(name)
                    services.service.waveform(name)
                    ok += 1
                progress.advance(task)
    console.print(f"{ok} track(s) ready, {len(names) - ok} skipped")


@ephemeral_app.command("stats")
def ephemeral_stats(
    filename: Annotated[str | None, typer.Argument(help="One track; all when omitted.")] = None,
) -> None:
    """Show wear per track (or per segment of one track)."""
    out = Console()
    with _ephemeral() as services:
        if filename:
            s = services.service.stats(filename)
            out.print(f"{s.filename}: {s.duration:.2f} s, {s.total_segments} segments, "
                      f"{s.overall_degradation:.2f} % worn, {s.total_streams} streams")
            out.print("play counts: " + " ".join(str(c) for c in s.segment_play_counts))
            return
        table = Table("track", "duration (s)", "worn %", "streams")
        for t in services.service.tracks():
            table.add_row(t.filename, f"{t.duration:.2f}", f"{t.overall_degradation:.2f}",
                          str(t.total_streams))
    out.print(table)


@ephemeral_app.command("reset")
def ephemeral_reset(filename: str) -> None:
    """Restore a track from its pristine copy (KEEP_ORIGINALS) and zero its counts."""
    with _ephemeral() as services:
        s = services.service.reset(filename)
    console.print(f"{s.filename} restored; {s.total_segments} segments at 0 plays")


def main() -> None:
    """Entry point: run the CLI, turning Taperoom errors into messages and exit codes."""
    try:
        code = app(standalone_mode=False)
    except TaperoomError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
