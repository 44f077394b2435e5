"""Command line of the analyzer: ``taperoom analyze PATH...`` and ``taperoom analysis serve``.

Registered in :mod:`taperoom.cli`, which maps :class:`~taperoom.errors.TaperoomError`
to exit codes. The analyzer itself is imported when a command runs, so that
``taperoom --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from taperoom.analysis.contract import json_safe
from taperoom.errors import InvalidInput, MediaError, TaperoomError

__all__ = ["analyze", "parse_bpm_range", "serve"]

#: Share of a file's progress that decoding stands for; the other stages share the rest.
_DECODE_SHARE = 0.8
_STAGE_DONE = {"rhythm": 0.85, "key": 0.88, "waveforms": 0.91, "loudness": 0.94,
               "characteristics": 0.97}
_RANGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*[-:,]\s*(\d+(?:\.\d+)?)\s*")

err = Console(stderr=True)


def parse_bpm_range(text: str) -> tuple[float, float]:
    """``"70-180"`` as ``(70.0, 180.0)``.

    Raises
    ------
    InvalidInput
        Not two tempi ``LOW-HIGH`` with 20 <= LOW < HIGH <= 400 BPM.
    """
    match = _RANGE.fullmatch(text)
    if match is None:
        raise InvalidInput(f"--bpm-range must look like 70-180, not {text!r}")
    low, high = float(match.group(1)), float(match.group(2))
    if not 20 <= low < high <= 400:
        raise InvalidInput("--bpm-range needs 20 <= LOW < HIGH <= 400 BPM")
    return low, high


def file_record(path: str, result: Any, *, waveforms: bool) -> dict[str, Any]:
    """The JSON object of one analysed file: ``path`` (as given), the contract's
    ``basic_features`` keys, then the ``characteristics`` keys (absent in quick mode).

    Parameters
    ----------
    path : str
        The path as the user typed it.
    result : AnalysisResult
    waveforms : bool
        Keep the ``waveforms`` key (21,000 pixels of 6 bands; left out by default).
    """
    basic = result.basic_features()
    if not waveforms:
        basic.pop("waveforms", None)
    return json_safe({"path": path, **basic, **(result.characteristics() or {})})


def analyze(
    paths: Annotated[list[str], typer.Argument(help="Audio files to analyse.",
                                               show_default=False)],
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object per file and line (path, basic_features, "
                       "characteristics).")] = False,
    quick: Annotated[bool, typer.Option(
        help="Only tempo, beat grid, downbeats, key and waveforms (what a deck needs).")
    ] = False,
    bpm_range: Annotated[str, typer.Option(
        "--bpm-range", help="DJ tempo range LOW-HIGH the tempo estimator prefers "
                            "(a prior, not a fold).")] = "70-180",
    waveforms: Annotated[bool, typer.Option(
        help="With --json, include the 3-band waveforms (large).")] = False,
) -> None:
    """Analyse audio files without a library: tempo, beats, downbeats, key, loudness,
    energy... Exit 0 when every file was analysed, 1 when some failed (one error line
    per failed file on stderr)."""
    tempo_range = parse_bpm_range(bpm_range)
    from taperoom.analysis.analyzer import analyze_file

    failed = 0
    rows: list[tuple[str, Any]] = []

    def run(path: str, progress: Callable[[str, float], None] | None) -> Any:
        return analyze_file(path, quick=quick, bpm_range=tempo_range, progress=progress)

    def report(path: str, exc: Exception) -> None:
        nonlocal failed
        failed += 1
        err.print(f"[red]error:[/red] {escape(path)}: {escape(_why(exc))}", soft_wrap=True,
                  highlight=False)

    if json_output:
        for path in paths:
            try:
                result = run(path, None)
            except (TaperoomError, OSError) as exc:
                report(path, exc)
                continue
            line = json.dumps(file_record(path, result, waveforms=waveforms),
                              ensure_ascii=False, allow_nan=False)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    else:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as bar:
            task = bar.add_task("analysing", total=len(paths))
            for n, path in enumerate(paths):
                name = os.path.basename(path) or path
                bar.update(task, description=escape(name[:40]), completed=n)

                def progress(stage: str, fraction: float, n: int = n) -> None:
                    share = (fraction * _DECODE_SHARE if stage == "decode"
                             else _STAGE_DONE.get(stage, 1.0))
                    bar.update(task, completed=n + share)

                try:
                    rows.append((path, run(path, progress)))
                except (TaperoomError, OSError) as exc:
                    report(path, exc)
            bar.update(task, completed=len(paths))
        if rows:
            Console().print(_table(rows))
    if failed:
        if not json_output:
            err.print(f"{failed} of {len(paths)} file(s) could not be analysed")
        raise typer.Exit(1)


def _why(exc: Exception) -> str:
    """What went wrong, without repeating the file name a MediaError starts with."""
    return exc.reason if isinstance(exc, MediaError) else str(exc)


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _table(rows: list[tuple[str, Any]]) -> Table:
    table = Table("file", "BPM", "key", "Camelot", "strength", "beats", "LUFS", "energy",
                  "dance", "duration")
    for path, result in rows:
        b = result.basic_features()
        c = result.characteristics() or {}
        key = (f"{b['key_name']}{'m' if b.get('mode') == 0 else ''}" if b.get("key_name")
               else "-")
        minutes, seconds = divmod(b.get("duration") or 0.0, 60)
        table.add_row(escape(os.path.basename(path) or path), _num(b.get("tempo"), ".2f"),
                      key, b.get("camelot") or "-", _num(b.get("key_strength"), ".2f"),
                      str(b.get("num_beats", 0)), _num(c.get("loudness"), ".1f"),
                      _num(c.get("energy"), ".1f"), _num(c.get("danceability"), ".2f"),
                      f"{int(minutes)}:{seconds:04.1f}")
    return table


HostOpt = Annotated[str | None, typer.Option(
    help="Interface to listen on [env ANALYSIS_SERVER_HOST, default 127.0.0.1].")]
PortOpt = Annotated[int | None, typer.Option(
    help="TCP port [env ANALYSIS_SERVER_PORT, default 8000].")]


def serve(host: HostOpt = None, port: PortOpt = None) -> None:
    """Serve Taperoom's analyzer as an analysis server (contract §3: POST /jobs, GET and
    DELETE /jobs/{id}, GET /health, GET /stats, a callback for every stage), for the
    library's ANALYSIS_SERVER_URL or the original Node.js backend's PYTHON_SERVER_URL.
    One process: its jobs live in memory (ANALYSIS_SERVER_CONCURRENCY at once)."""
    import uvicorn

    from taperoom.analysis.server.app import check_access
    from taperoom.analysis.server.settings import AnalysisServerSettings
    from taperoom.config import setup_logging

    setup_logging()
    if host is not None:
        os.environ["ANALYSIS_SERVER_HOST"] = host
    if port is not None:
        os.environ["ANALYSIS_SERVER_PORT"] = str(port)
    settings = AnalysisServerSettings()
    check_access()
    uvicorn.run("taperoom.analysis.server.app:app_from_env", factory=True,
                host=settings.host, port=settings.port, workers=1,
                log_level=os.environ.get("LOG_LEVEL", "info").lower(), timeout_keep_alive=30)
