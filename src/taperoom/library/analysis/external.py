"""External analysis server mode (``ANALYSIS_SERVER_URL``): jobs handed to a server that
speaks contract §3, results taken from its callbacks.

With ``ANALYSIS_SERVER_URL`` (or the contract's ``PYTHON_SERVER_URL``) set, an
analysis job of the queue is not analysed in process: its consumer thread
submits it to the server, in local mode (``POST /jobs`` JSON naming the file,
``stem_delivery_mode: path``) or, with ``ANALYSIS_SERVER_REMOTE=true``, in
remote mode (the file uploaded as multipart, ``stem_delivery_mode:
callback``), and waits for the job's row to end. The server posts each stage to
``POST /api/analysis/callback``, which stores it through the same road as this
process's own results
(:meth:`~taperoom.library.analysis.storage.ResultStore.store_stage`) and
ends the row. So ``MAX_CONCURRENT_ANALYSIS`` bounds the jobs the server has at
once, as it bounded the original backend's.

Callback secret: each job row gets a random ``callback_token``, sent as the
``token`` query parameter of its ``callback_url``
(``http://<CALLBACK_HOST or HOST>:<PORT>/api/analysis/callback?token=...``, or
``ANALYSIS_CALLBACK_URL`` behind a proxy): the servers of the contract echo
nothing of a job but its URL back. The callback route is open without sign-in
(the server has no session) and refuses a callback without its job's token
(403), so nobody else can write analysis results. A job sent again (a retry,
or after a restart) keeps its token.

Timeouts and retries: a job whose row has not ended ``ANALYSIS_TIMEOUT_MS``
after its submission is looked up with ``GET /jobs/{id}`` and its attempt
fails with what the server says (still running, failed, finished but its
callbacks lost, unknown, unreachable); a server that cannot be reached, answers
5xx, 408, 429 or something that is not the contract fails the attempt too. A
failed attempt is retried by the service (``ANALYSIS_MAX_RETRIES``, backoff
``ANALYSIS_RETRY_DELAY`` x 2^n; a job still running on the server is found
there again, the server answering the same job), and the job then fails with
``last_error``. A refusal (another 4xx: a file outside the server's folders, a
bad request) fails the job at once. A job cancelled here is cancelled on the
server (``DELETE /jobs/{id}``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.orm import Session, sessionmaker

from taperoom.analysis.remote import (
    AnalysisServerClient,
    AnalysisServerError,
    AnalysisServerRefused,
)
from taperoom.db import transaction
from taperoom.errors import InvalidInput
from taperoom.library.jobqueue import JobRun
from taperoom.library.repository import analysis as repo
from taperoom.library.stems.delivery import StemStore

__all__ = ["TOKEN_PARAM", "ExternalAnalysis", "ExternalOutcome"]

log = logging.getLogger(__name__)

#: Query parameter of the callback URL that carries the job's secret.
TOKEN_PARAM = "token"
#: Statuses of a refusal that a later attempt may cure (RFC 9110 §15.5.9, RFC 6585 §4).
_TRANSIENT = frozenset({408, 429})
#: Seconds the health check of ``/api/analysis/status`` may take at most.
HEALTH_TIMEOUT = 5.0


@dataclass(frozen=True)
class ExternalOutcome:
    """How one attempt of a job on the server went.

    Attributes
    ----------
    state : {"ended", "stopped", "retry", "failed"}
        ``ended``: the callbacks ended the row (``result`` is the job's result);
        ``stopped``: cancelled, or this process is stopping; ``retry``: the
        attempt failed and may be tried again; ``failed``: the server refused
        the job.
    error : str or None
        Why (``retry``, ``failed``).
    result : dict
        The job layer's result (``ended``).
    """

    state: Literal["ended", "stopped", "retry", "failed"]
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


class ExternalAnalysis:
    """Hands analysis jobs to an external server (see the module docstring).

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database (the ``analysis_jobs`` rows).
    client : AnalysisServerClient
        The server (``PYTHON_REQUEST_TIMEOUT_MS`` per request).
    health_client : AnalysisServerClient
        The same server with a short timeout, for ``GET /health``.
    stems : StemStore
        Converts the ``stems`` stage into the stem cache.
    callback_url : str
        Where the server posts callbacks (the token is added to it).
    remote : bool
        ``ANALYSIS_SERVER_REMOTE``: upload the files (multipart).
    timeout : float
        ``ANALYSIS_TIMEOUT_MS`` in seconds: longest wait for a job's end.
    poll : float
        Seconds between two looks at the job's row (a callback in this
        process wakes the wait at once).
    """

    def __init__(self, db: sessionmaker[Session], client: AnalysisServerClient, *,
                 health_client: AnalysisServerClient, stems: StemStore, callback_url: str,
                 remote: bool, timeout: float, poll: float = 0.5) -> None:
        self.db = db
        self.client = client
        self.health_client = health_client
        self.stems = stems
        self.callback_url = callback_url
        self.remote = remote
        self.timeout = timeout
        self.poll = poll
        self._changed = threading.Condition()

    # -- what the status routes show ---------------------------------------------------

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.client.base_url

    @property
    def port(self) -> int:
        """The server's port (80/443 when its URL names none)."""
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    def healthy(self) -> tuple[bool, str | None]:
        """(whether ``GET /health`` answers ``{"status": "ok"}``, why not)."""
        try:
            self.health_client.health()
        except AnalysisServerError as exc:
            return False, exc.message
        return True, None

    # -- callbacks -----------------------------------------------------------------------

    @staticmethod
    def new_token() -> str:
        """A fresh callback secret (256 random bits, URL-safe base64)."""
        return secrets.token_urlsafe(32)

    def callback_url_for(self, token: str) -> str:
        """The callback URL carrying `token` (other query parameters kept)."""
        parts = urlsplit(self.callback_url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                 if k != TOKEN_PARAM] + [(TOKEN_PARAM, token)]
        return urlunsplit(parts._replace(query=urlencode(query)))

    def changed(self) -> None:
        """A callback changed a job's row: wake the waits of this process."""
        with self._changed:
            self._changed.notify_all()

    # -- running -------------------------------------------------------------------------

    def run(self, run: JobRun, row_id: int, file_hash: str, path: str) -> ExternalOutcome:
        """Submit one job's attempt and wait until its row ends, it is cancelled, or the
        timeout.

        Parameters
        ----------
        run : JobRun
            The job being run (its cancel flag is watched).
        row_id : int
            Its ``analysis_jobs`` row (status ``processing``).
        file_hash : str
            The audio hash (the ``track_hash`` sent).
        path : str
            The audio file (named, or uploaded in remote mode).

        Returns
        -------
        ExternalOutcome
        """
        with transaction(self.db) as s:
            row = repo.get_job(s, row_id)
            if row is None:
                return ExternalOutcome("failed", "The analysis job's row is gone")
            token, options = row.callback_token, dict(row.options or {})
            if not token:  # stored before the server may call back
                token = self.new_token()
                repo.update_job(s, row_id, callback_token=token)
        callback_url = self.callback_url_for(token)
        send = self.client.upload if self.remote else self.client.submit
        try:
            submitted = send(path, track_hash=file_hash, options=options,
                             callback_url=callback_url)
        except AnalysisServerRefused as exc:
            if exc.status_code in _TRANSIENT:
                return ExternalOutcome("retry", exc.message)
            return ExternalOutcome("failed", exc.message)
        except AnalysisServerError as exc:
            return ExternalOutcome("retry", exc.message)
        except InvalidInput as exc:
            return ExternalOutcome("failed", f"Cannot send the job: {exc.message}")
        except OSError as exc:
            return ExternalOutcome("failed", f"Cannot upload {path}: "
                                   f"{exc.strerror or exc}")
        remote_id = submitted.job_id
        with transaction(self.db) as s:
            repo.update_job(s, row_id, remote_job_id=remote_id)
        log.info("analysis %s sent to %s as job %s (%s mode)", file_hash, self.url, remote_id,
                 "remote" if self.remote else "local")
        return self._wait(run, row_id, remote_id)

    def _wait(self, run: JobRun, row_id: int, remote_id: str) -> ExternalOutcome:
        deadline = time.monotonic() + self.timeout
        while True:
            with self.db() as s:
                row = repo.get_job(s, row_id)
                status = row.status if row is not None else "cancelled"
                error = row.last_error if row is not None else None
                stages = list(row.stages_completed or []) if row is not None else []
            if status == "completed":
                return ExternalOutcome("ended", result={"stages": stages,
                                                        "server_job": remote_id})
            if status == "failed":
                return ExternalOutcome("ended", result={"error": error or "failed"})
            if run.interrupted:  # this process stops: the server goes on, asked again later
                return ExternalOutcome("stopped")
            if status == "cancelled" or run.cancelled.is_set():
                self.abandon(remote_id)
                return ExternalOutcome("stopped")
            if time.monotonic() >= deadline:
                return self._timed_out(remote_id)
            with self._changed:
                self._changed.wait(self.poll)

    def _timed_out(self, remote_id: str) -> ExternalOutcome:
        waited = f"No result from the analysis server within {self.timeout:g} s"
        try:
            view = self.client.get(remote_id)
        except AnalysisServerError as exc:
            return ExternalOutcome("retry", f"{waited}, and its state is unknown: "
                                   f"{exc.message}")
        if view is None:
            return ExternalOutcome("retry", f"{waited}: it does not know job {remote_id}")
        status = view.get("status")
        shown = str(status)[:40] if status is not None else "none"
        if status == "failed":
            reason = view.get("error")
            return ExternalOutcome("retry", f"{waited}: job {remote_id} failed there" + (
                f": {str(reason)[:300]}" if reason else ""))
        if status == "completed":
            lost = view.get("last_callback_error")
            return ExternalOutcome("retry", f"{waited}: job {remote_id} completed there but "
                                   "its callbacks did not arrive" + (
                                       f" ({str(lost)[:300]})" if lost else ""))
        return ExternalOutcome("retry", f"{waited}: job {remote_id} is {shown} there")

    def abandon(self, remote_id: str | None) -> None:
        """Cancel a job on the server (``DELETE /jobs/{id}``); errors are only logged."""
        if not remote_id:
            return
        try:
            self.client.cancel(remote_id)
        except AnalysisServerError as exc:
            log.warning("could not cancel job %s on %s: %s", remote_id, self.url, exc.message)

    def abandon_row(self, row_id: int) -> None:
        """:meth:`abandon` the server's job of an ``analysis_jobs`` row (a job given up)."""
        with self.db() as s:
            row = repo.get_job(s, row_id)
            remote_id = row.remote_job_id if row is not None else None
        self.abandon(remote_id)

    def close(self) -> None:
        """Close the HTTP clients."""
        self.client.close()
        self.health_client.close()
