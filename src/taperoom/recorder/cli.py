"""Recorder commands of the command line: ``taperoom recorder record|stations|sessions``.

The root CLI (:mod:`taperoom.cli`) mounts these and turns
:class:`~taperoom.errors.TaperoomError` into exit codes. Each command builds the
recorder's services (:func:`taperoom.recorder.context.build_services`) when it
runs; they are imported then, so that starting ``taperoom`` for any other command
does not load the recorder's stack (APScheduler, Huey, asyncssh).
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from taperoom.events import Event

if TYPE_CHECKING:
    from taperoom.recorder.context import RecorderServices

console = Console(stderr=True)
#: Upload states after which ``record`` stops waiting.
_TRANSFER_DONE = {"completed", "failed", "skipped"}


def record(
    station: Annotated[str, typer.Argument(help="Station id or name.")],
    duration: Annotated[float, typer.Option("--duration", "-d", min=1,
                                            help="Length in seconds.")],
    wait_upload: Annotated[float, typer.Option(
        help="Seconds to wait for the upload after recording (0: leave it to the queue).")
    ] = 600.0,
) -> None:
    """Record a station now, through the same pipeline as a scheduled recording
    (MP3, tags, cover art, cue sheet, upload), with a progress bar."""
    from taperoom.recorder.context import build_services

    services = build_services()
    done = threading.Event()
    state: dict[str, Any] = {}

    def on_event(name: str, data: dict[str, Any]) -> None:
        sid = data.get("session_id", data.get("id"))
        if sid != state.get("id"):
            return
        if name == Event.RECORDING_PROGRESS:
            state["progress"] = data
        elif name == Event.RECORDING_STATUS:
            state["session"] = data
            if data["status"] in ("completed", "failed"):
                done.set()

    services.bus.subscribe(on_event)
    if services.consumer is not None:
        services.consumer.start()
    previous = signal.getsignal(signal.SIGINT)
    try:
        station_id, name = services.stations.find(station)
        session = services.recordings.record(station_id, duration, trigger="manual")
        state["id"] = session["id"]
        signal.signal(signal.SIGINT, lambda *_: services.recordings.stop(session["id"]))
        with Progress(TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                      console=console) as bar:
            task = bar.add_task(f"recording {name}", total=duration, info="connecting")
            while not done.wait(0.25):
                p = state.get("progress") or {}
                info = (f"{p.get('audio_seconds', 0):.0f} s audio, "
                        f"{p.get('bytes_written', 0) / 1e6:.1f} MB, "
                        f"{p.get('reconnects', 0)} reconnects"
                        + (f" — {p['title']}" if p.get("title") else ""))
                bar.update(task, completed=min(duration, p.get("elapsed_seconds", 0.0)),
                           info=info)
            bar.update(task, completed=duration)
        signal.signal(signal.SIGINT, previous)
        final = state["session"]
        if final["status"] == "failed":
            console.print(f"[red]failed:[/red] {final['error_message']}")
            raise typer.Exit(1)
        console.print(f"recorded {final['output_file_path']} "
                      f"({final['duration_seconds']:.1f} s, {len(final['gaps'])} gaps)")
        _wait_upload(services, session["id"], wait_upload)
    finally:
        signal.signal(signal.SIGINT, previous)
        services.close()


def _wait_upload(services: RecorderServices, session_id: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = ""
    while True:
        row = services.sessions.get(session_id)
        status, remote = row["transfer_status"], row["remote_path"]
        err = row["transfer_error_message"]
        if status in _TRANSFER_DONE or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    if status == "completed":
        console.print(f"uploaded to {remote}")
    elif status == "skipped":
        console.print("no upload destination: kept locally")
    elif status == "failed":
        console.print(f"[red]upload failed:[/red] {err}")
    else:
        console.print(f"upload {status}; the queue keeps retrying ({err or 'no error yet'})")


def stations() -> None:
    """List the stations."""
    from taperoom.recorder.context import build_services

    services = build_services()
    try:
        table = Table("id", "name", "stream URL", "destination")
        for st in services.stations.list(limit=10_000):
            table.add_row(str(st["id"]), st["name"], st["stream_url"],
                          st["scp_destination"] or "-")
        Console().print(table)
    finally:
        services.close()


def sessions(limit: Annotated[int, typer.Option(min=1, max=1000)] = 20) -> None:
    """List the most recent recording sessions (start times in ``TZ``)."""
    from taperoom.recorder.context import build_services

    services = build_services()
    try:
        table = Table("id", "station", "start", "status", "seconds", "gaps", "upload")
        for s in services.sessions.list(limit=limit):
            start = datetime.fromisoformat(s["start_time"]).isoformat(" ", "seconds")
            table.add_row(str(s["id"]), s["station_name"], start, s["status"],
                          f"{s['duration_seconds'] or 0:.0f}", str(len(s["gaps"])),
                          s["transfer_status"])
        Console().print(table)
    finally:
        services.close()


def worker() -> None:
    """Run the recorder's upload queue consumer in the foreground (for a machine
    that uploads while another records; QUEUE_URL or REDIS_URL must name the same
    Redis queue, and DATABASE_URL the same database, as the recorder's). Logs go to
    standard error at ``LOG_LEVEL`` (default INFO)."""
    from taperoom.config import setup_logging
    from taperoom.recorder.context import build_services
    from taperoom.recorder.settings import RecorderSettings

    setup_logging()
    settings = RecorderSettings().model_copy(update={"embedded_worker": True})
    services = build_services(settings)
    consumer = services.consumer
    if consumer is None:  # not with EMBEDDED_WORKER on; said plainly if it ever were
        services.close()
        raise RuntimeError("the recorder services were built without a queue consumer")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    services.start_uploads()
    console.print("upload worker running; Ctrl+C stops it")
    try:
        stop.wait()
    finally:
        services.close()
