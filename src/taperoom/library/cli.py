"""Library commands of the command line: ``taperoom library scan ...``,
``taperoom library analyze ...``.

The root CLI (:mod:`taperoom.cli`) mounts :data:`library_cli` and turns
:class:`~taperoom.errors.TaperoomError` into exit codes.
"""

from __future__ import annotations

import os
import uuid
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from taperoom.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from taperoom.library.context import LibraryServices

# The app itself (taperoom.library.context and what it builds) is imported by each
# command when it runs, so that ``taperoom --help`` and the other apps' commands
# start without importing the library's services.

#: Seconds between two ``analysis:worker`` events of ``taperoom library worker``.
ANNOUNCE_SECONDS = 2.0

library_cli = typer.Typer(help="Library maintenance commands.", no_args_is_help=True)
console = Console(stderr=True)


@library_cli.callback()
def _group() -> None:
    """Library maintenance commands."""


class Strategy(StrEnum):
    """Scan strategies (see :mod:`taperoom.library.scanner`)."""

    fast = "fast"
    hybrid = "hybrid"
    full = "full"


def _print_errors(errors: list[dict[str, Any]], subject: str) -> None:
    """The first 20 errors of a command's result, each as ``<errors[subject]>: error``,
    then how many more there were."""
    for err in errors[:20]:
        console.print(f"  [yellow]{err[subject]}[/yellow]: {err['error']}")
    if len(errors) > 20:
        console.print(f"  ... and {len(errors) - 20} more")


def resolve_directory(services: LibraryServices, target: str) -> tuple[str, str]:
    """Find a library folder by id or by path.

    Parameters
    ----------
    target : str
        A library directory UUID, or the folder's path (absolute, relative or
        through symlinks; compared as given, absolute, and fully resolved).

    Returns
    -------
    (id, path) : tuple of str

    Raises
    ------
    NotFound
        No library folder has that id or path.
    """
    from taperoom.library.repository import scan as repo

    with services.db() as session:
        try:
            directory = repo.get_directory(session, str(uuid.UUID(target)))
        except ValueError:
            directory = None
        if directory is None:
            candidates = [target, os.path.abspath(target), os.path.realpath(target)]
            candidates += [c.rstrip("/") for c in candidates if len(c) > 1]
            directory = repo.directory_by_path(session, candidates)
        if directory is None:
            raise NotFound(f"no library folder with id or path {target!r}; "
                           "add it first (POST /api/library/directories)")
        return directory.id, directory.path


@library_cli.command("scan")
def scan(
    target: Annotated[str, typer.Argument(metavar="DIRECTORY_ID_OR_PATH",
                                          help="Library folder id or path.")],
    strategy: Annotated[Strategy, typer.Option(
        "--strategy", "-s",
        help="fast: stat only; hybrid: read new and changed files; full: read every file.")
    ] = Strategy.hybrid,
) -> None:
    """Scan one library folder now, with a progress bar (uses DATABASE_PATH/DATABASE_URL)."""
    from taperoom.library.context import build_services

    services = build_services(lead=False)  # a running server keeps its watcher and jobs
    try:
        directory_id, path = resolve_directory(services, target)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("+{task.fields[added]} ~{task.fields[updated]}"),
                      TimeElapsedColumn(), console=console) as bar:
            task: TaskID = bar.add_task(f"walk {path}", total=None, added=0, updated=0)

            def progress(p: dict[str, Any]) -> None:
                total = p["filesFound"] if p["phase"] != "walk" else None
                bar.update(task, description=p["phase"], total=total,
                           completed=p["filesProcessed"] if total else p["filesFound"],
                           added=p["tracksAdded"], updated=p["tracksUpdated"])

            result = services.scans.scan_sync(directory_id, strategy.value,
                                              progress=progress)
    finally:
        services.close()
    state = "cancelled" if result.get("cancelled") else "done"
    console.print(
        f"{state}: {result['filesFound']} files, {result['tracksAdded']} added, "
        f"{result['tracksUpdated']} updated, {result['tracksMoved']} moved, "
        f"{result['tracksMissing']} missing, {result['tracksRestored']} restored, "
        f"{len(result['errors'])} errors in {result['durationMs'] / 1000:.1f} s")
    _print_errors(result["errors"], "path")


@library_cli.command("analyze")
def analyze(
    track_ids: Annotated[list[str] | None, typer.Argument(
        metavar="[TRACK_ID]...", help="Tracks to analyse (ids).")] = None,
    all_tracks: Annotated[bool, typer.Option(
        "--all", help="Every track of the library that is not missing.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Analyse tracks that have an analysis already, too.")] = False,
) -> None:
    """Analyse tracks now in this process, with a progress bar (tempo, beat grid, key,
    loudness, characteristics, waveforms; uses DATABASE_PATH/DATABASE_URL).

    Without --force, tracks whose tempo, key and analysis date are known are
    skipped. Each recording is analysed once (copies share the results);
    MAX_CONCURRENT_ANALYSIS recordings at a time. A recording a running server is
    analysing is waited for; one waiting in its queue is analysed here. Exits 1
    when an analysis failed.
    """
    if bool(track_ids) == all_tracks:
        raise InvalidInput("give TRACK_ID... or --all (not both)")
    from taperoom.library.context import build_services

    services = build_services(lead=False)  # a running server keeps its jobs
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar:
            overall: TaskID = bar.add_task("analyse", total=None)
            running: dict[str, TaskID] = {}

            def planned(count: int) -> None:
                bar.update(overall, total=count)

            def progress(file_hash: str, stage: str, percent: int) -> None:
                task = running.get(file_hash)
                if stage in ("done", "failed"):
                    if task is not None:
                        bar.remove_task(task)
                        running.pop(file_hash, None)
                    bar.advance(overall)
                    return
                if task is None:
                    task = running[file_hash] = bar.add_task(
                        f"  {file_hash[:12]}", total=100)
                bar.update(task, completed=percent, description=f"  {file_hash[:12]} {stage}")

            result = services.analysis.analyze_here(
                None if all_tracks else track_ids, force=force, progress=progress,
                planned=planned, workers=max(1, services.settings.max_concurrent_analysis))
    finally:
        services.close()
    console.print(f"{result['analysed']} analysed, {result['skipped']} skipped "
                  f"(analysed already), {result['failed']} failed "
                  f"of {result['requested']} tracks")
    _print_errors(result["errors"], "track_id")
    if result["failed"]:
        raise typer.Exit(1)


def worker(
    concurrency: Annotated[int, typer.Option(
        "--concurrency", "-c", min=0, max=64,
        help="Analyses run at once in this process (0: MAX_CONCURRENT_ANALYSIS, at "
             "least 1).")] = 0,
    name: Annotated[str | None, typer.Option(
        "--name", "-n", help="Node name of this worker in the job rows (default: the "
                             "host name); give each worker machine its own.")] = None,
) -> None:
    """Run library analysis jobs in the foreground, taken from the library's queue.

    With REDIS_URL (or QUEUE_URL=redis://...) and a PostgreSQL DATABASE_URL,
    workers on other machines share the server's queue and database; each reads
    the audio file at the path its track has in the library, so the library
    folders must be mounted at the same paths on every worker machine (a file
    that is not there fails its job with a last_error naming the machine).
    SIGTERM or Ctrl+C hands the running jobs back to the queue; a worker that
    dies is noticed by its silent heartbeat (JOB_STALE_SECONDS) and its job is
    run by another.
    """
    import signal
    import threading

    from taperoom.config import setup_logging
    from taperoom.library.analysis import KIND
    from taperoom.library.context import build_services
    from taperoom.library.settings import LibrarySettings

    if name is not None and (not name.strip() or ":" in name):
        raise InvalidInput(f"--name must be non-empty and without ':' (got {name!r})")
    settings = LibrarySettings()
    if settings.shared_queue and settings.url.startswith("sqlite"):
        console.print("[yellow]the queue is on Redis but the database is a SQLite file: "
                      "only workers on this machine can share it (set DATABASE_URL to "
                      "PostgreSQL for workers on other machines)[/yellow]")
    setup_logging()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    services = build_services(settings, lead=False, worker=True, node=name)
    try:
        services.analysis.analyzer()  # refuses here when the analyzer cannot load
        workers = concurrency or max(1, settings.max_concurrent_analysis)
        services.jobs.start_workers([KIND], concurrency=workers)
        console.print(f"library analysis worker {services.process} running "
                      f"{workers} job(s) at once; Ctrl+C stops it", soft_wrap=True)
        node = services.process.partition(":")[0]
        services.analysis.announce(node, workers)
        while not stop.wait(ANNOUNCE_SECONDS):  # the server's status and health show it
            services.analysis.announce(node, workers)
        console.print("stopping: running jobs go back to the queue")
    finally:
        services.close()
