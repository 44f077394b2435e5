"""Library commands of the command line: ``taperoom library scan ...``.

The root CLI (:mod:`taperoom.cli`) mounts :data:`library_cli` and turns
:class:`~taperoom.errors.TaperoomError` into exit codes.
"""

from __future__ import annotations

import os
import uuid
from enum import StrEnum
from typing import Annotated, Any

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

from taperoom.errors import NotFound
from taperoom.library.context import LibraryServices, build_services
from taperoom.library.repository import scan as repo

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
    for err in result["errors"][:20]:
        console.print(f"  [yellow]{err['path']}[/yellow]: {err['error']}")
    if len(result["errors"]) > 20:
        console.print(f"  ... and {len(result['errors']) - 20} more")
