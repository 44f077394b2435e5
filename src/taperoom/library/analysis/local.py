"""Analysis in this process, for the command line (``taperoom library analyze``): each
recording once, several at a time, through the job layer so that the server sees
the jobs (and a recording the server analyses now is waited for)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.library.analysis.errors import AnalysisNotFound, Stopped
from taperoom.library.analysis.naming import KIND, LOCAL_STAGES
from taperoom.library.analysis.runs import JobRunner
from taperoom.library.jobqueue import JobExists, JobQueue, JobRun
from taperoom.library.repository import analysis as repo

__all__ = ["LocalAnalysis"]


class LocalAnalysis:
    """Analyses tracks in the calling process.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    jobs : JobQueue
        The job layer (the jobs run here are rows every process sees).
    runner : JobRunner
        Runs one job.
    """

    def __init__(self, db: sessionmaker[Session], jobs: JobQueue, runner: JobRunner) -> None:
        self.db = db
        self.jobs = jobs
        self.runner = runner

    def analyze_here(self, track_ids: Iterable[str] | None, *, force: bool,
                     progress: Callable[[str, str, int], None] | None = None,
                     planned: Callable[[int], None] | None = None,
                     workers: int = 1) -> dict[str, Any]:
        """Analyse tracks in this process (``taperoom library analyze``), each recording
        once, `workers` at a time; a recording the server is analysing is waited for.

        Parameters
        ----------
        track_ids : iterable of str or None
            The tracks; None for every present track.
        force : bool
            Analyse tracks that have an analysis already too.
        progress : callable(file_hash, stage, percent), optional
            Called during each analysis (``stage`` ``"done"``/``"failed"`` at its end).
        planned : callable(int), optional
            Told how many recordings will be analysed, before the first starts.
        workers : int
            Analyses at once (threads).

        Returns
        -------
        dict
            ``{"requested", "analysed", "skipped", "failed", "errors": [{track_id,
            error}]}``, counted in tracks (``skipped``: analysed already).

        Raises
        ------
        AnalysisNotFound
            An id names no track.
        """
        with self.db() as s:
            ids = list(dict.fromkeys(track_ids)) if track_ids is not None else None
            chosen = repo.track_hashes(s, track_ids=ids, present=ids is None)
            if ids is not None:
                missing = sorted(set(ids) - {t for t, _ in chosen})
                if missing:
                    raise AnalysisNotFound("Track not found",
                                           f"No track with ID {', '.join(missing)}")
            todo = chosen if force else repo.track_hashes(
                s, track_ids=[t for t, _ in chosen], unanalysed=True, present=False)
        per_hash: dict[str, list[str]] = {}
        errors: list[dict[str, str]] = []
        for track_id, file_hash in todo:
            if not file_hash:
                errors.append({"track_id": track_id, "error": "The track has no audio hash"})
            else:
                per_hash.setdefault(file_hash, []).append(track_id)
        outcome = {"analysed": 0}
        lock = threading.Lock()
        if planned is not None:
            planned(len(per_hash))

        stop = threading.Event()

        def one(item: tuple[str, list[str]]) -> None:
            file_hash, ids = item
            if stop.is_set():
                return
            error = self._analyse_one(file_hash, ids[0], progress, stop)
            with lock:
                if error is None:
                    outcome["analysed"] += len(ids)
                else:
                    errors.extend({"track_id": t, "error": error} for t in ids)

        pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="analyze")
        try:
            for future in [pool.submit(one, item) for item in per_hash.items()]:
                future.result()
        except BaseException:  # Ctrl-C: the running analyses end as cancelled
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        requested = len(chosen)
        return {"requested": requested, "analysed": outcome["analysed"],
                "skipped": requested - len(todo), "failed": len(errors),
                "errors": errors}

    def _analyse_one(self, file_hash: str, track_id: str,
                     progress: Callable[[str, str, int], None] | None,
                     stop: threading.Event) -> str | None:
        """Analyse one recording in this thread (or take its job from the queue, where it
        waits for the server); its error, or None. A job the server runs now is
        waited for."""

        def report(stage: str, percent: int) -> None:
            if stop.is_set():
                raise Stopped()
            if progress is not None:
                progress(file_hash, stage, percent)

        def handler(run: JobRun) -> dict[str, Any]:
            return self.runner.analyse(run, retries=False, progress=report)

        params = {"track_id": track_id, "stages": list(LOCAL_STAGES), "quick": False,
                  "force": True, "source": "command"}
        result: dict[str, Any] | None
        try:
            result = self.jobs.run_here(KIND, file_hash, params=params, handler=handler)
        except JobExists:
            result = self.jobs.take(KIND, file_hash, handler=handler)
        if result is None:  # the server runs it: wait for its end
            report("waiting", 0)
            self.jobs.wait(KIND, file_hash)
            with self.db() as s:
                last = repo.latest_job(s, file_hash)
                status, error = (last.status, last.last_error) if last else ("failed", None)
            report("done" if status == "completed" else "failed", 100)
            return None if status == "completed" else (error or f"job {status}")
        error = result.get("error")
        report("failed" if error else "done", 100)
        if result.get("cancelled"):
            return "cancelled"
        return str(error) if error else None
