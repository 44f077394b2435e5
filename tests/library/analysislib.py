"""Helpers of the analysis queue tests: short generated drum loops, a scanned library,
analysis services with their own settings, waiting for jobs."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import websockets

from taperoom.library import models
from tests.analysis.rhythm_signals import hat, kick, place
from tests.library.test_scanner import add_directory
from tests.polling import wait_for
from tests.wavgen import write_wav

RATE = 44100
#: Seconds a test waits for a job at most (generous: the machine is shared).
DEADLINE = 120.0


async def analysis_events(url: str, job_id: str, start: Callable[[], Any], *,
                          deadline: float = DEADLINE) -> list[dict[str, Any]]:
    """The analysis events of `job_id` a WebSocket client of the library at `url`
    receives after `start` (run in a thread once it is subscribed), up to
    ``analysis:complete`` (or ``analysis:failed``); each waited for `deadline` s at most."""
    got: list[dict[str, Any]] = []
    async with websockets.connect(url.replace("http://", "ws://") + "/ws") as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["event"] == "connected"
        await ws.send(json.dumps({"type": "subscribe", "events": ["analysis:*"]}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["event"] == "subscribed"
        await asyncio.to_thread(start)
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), deadline))
            if message["data"].get("jobId") != job_id:
                continue
            got.append(message)
            if message["event"] in ("analysis:complete", "analysis:failed"):
                return got


def drum_loop(path: Path, bpm: float, seconds: float = 8.0, *, root: float = 220.0
              ) -> Path:
    """A stereo 16-bit WAV: a kick on every beat, a hi-hat between beats and a quiet
    minor triad on `root` Hz (so that the key is defined)."""
    beat = 60.0 / bpm
    events: list[tuple[float, np.ndarray, float]] = []
    t = 0.1
    while t < seconds:
        events.append((t, kick(RATE), 0.8))
        events.append((t + beat / 2, hat(RATE), 0.5))
        t += beat
    y = place(events, seconds, RATE)
    times = np.arange(y.size) / RATE
    for ratio in (1.0, 1.2, 1.5):  # root, minor third, fifth
        y = y + 0.05 * np.sin(2 * np.pi * root * ratio * times)
    stereo = np.stack([y, y], axis=1) * 0.7
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_wav(path, stereo.astype(np.float64))


def scanned_library(ctx: Any, folder: Path) -> str:
    """Add `folder` as a library folder of `ctx` and scan it; returns the folder id."""
    did = add_directory(ctx, folder)
    ctx.scans.scan_sync(did, "full")
    return did


def track_by_name(ctx: Any, name: str) -> models.Track:
    """The track whose relative path is `name`, freshly read."""
    with ctx.db() as s:
        track = s.query(models.Track).filter(models.Track.relative_path == name).one()
        s.expunge(track)
        return track


def fresh(ctx: Any, track_id: str) -> models.Track:
    """The track row `track_id`, freshly read."""
    with ctx.db() as s:
        track = s.get(models.Track, track_id)
        assert track is not None
        s.expunge(track)
        return track


def job_status(ctx: Any, file_hash: str) -> str | None:
    """The status of the newest analysis job of `file_hash`."""
    with ctx.db() as s:
        row = (s.query(models.AnalysisJob).filter(models.AnalysisJob.job_id == file_hash)
               .order_by(models.AnalysisJob.id.desc()).first())
        return row.status if row is not None else None


def wait_job(ctx: Any, file_hash: str, *statuses: str) -> str:
    """Wait until the newest job of `file_hash` is in one of `statuses` (default: ended)."""
    wanted = statuses or ("completed", "failed", "cancelled")
    return str(wait_for(lambda: (st := job_status(ctx, file_hash)) in wanted and st,
                        DEADLINE, f"job {file_hash} to be {'/'.join(wanted)}"))


class Timeline:
    """Analysis events of a bus with the monotonic time each arrived."""

    def __init__(self, ctx: Any) -> None:
        self.items: list[tuple[float, str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        ctx.bus.subscribe(self._add)

    def _add(self, name: str, data: dict[str, Any]) -> None:
        if name.startswith("analysis:"):
            with self._lock:
                self.items.append((time.monotonic(), name, data))

    def of(self, name: str, job_id: str | None = None) -> list[tuple[float, dict[str, Any]]]:
        """(time, payload) of the events called `name` (of one job)."""
        with self._lock:
            return [(t, d) for t, n, d in self.items
                    if n == name and (job_id is None or d.get("jobId") == job_id)]

    def started_order(self) -> list[str]:
        """Job ids in the order their runs started (a job twice if it ran twice)."""
        return [d["jobId"] for _, d in self.of("analysis:started")]

    def most_at_once(self) -> int:
        """The most jobs that ran at the same time (started, not yet ended)."""
        with self._lock:
            items = list(self.items)
        running: set[str] = set()
        most = 0
        for _, name, data in items:
            if name == "analysis:started":
                running.add(data["jobId"])
                most = max(most, len(running))
            elif name in ("analysis:complete", "analysis:failed"):
                running.discard(data["jobId"])
            elif name == "analysis:progress" and data.get("stage") == "basic_features":
                running.discard(data["jobId"])  # a quick pass handed back to the queue
        return most


def copy_file(src: Path, dest: Path) -> Path:
    """Copy `src` to `dest` (folders made)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest
