"""Callbacks of the analysis server: one ``POST`` per stage to the job's ``callback_url``.

The body is ``{"job_id", "stage", "status", "timestamp", "data"}`` with the headers
``X-Mismo-Job-ID`` and ``X-Mismo-Stage`` (contract §3). A delivery that fails with
a connection error, a timeout, or a 408, 429 or 5xx answer (RFC 9110 §15.5.9,
RFC 6585 §4, §15.6: the ones a later attempt may cure) is tried again after an
exponential backoff (``backoff``, ``2 * backoff``, ... capped at
:data:`MAX_BACKOFF`); any other answer is final.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from taperoom import __version__
from taperoom.analysis.contract import JOB_ID_HEADER, STAGE_HEADER, json_safe
from taperoom.config import redact_url

__all__ = ["MAX_BACKOFF", "CallbackSender", "Delivery"]

log = logging.getLogger(__name__)

#: Longest wait between two attempts (s).
MAX_BACKOFF = 60.0
#: Answers worth another attempt (RFC 9110 §15.5.9 408, RFC 6585 §4 429, 5xx).
_RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Delivery:
    """How one callback went.

    Attributes
    ----------
    ok : bool
        A 2xx answer arrived.
    attempts : int
        Requests sent.
    error : str
        Why the last attempt failed (empty when ``ok``).
    """

    ok: bool
    attempts: int
    error: str = ""


class CallbackSender:
    """Posts callbacks with retries (thread-safe: one HTTP client, shared).

    Parameters
    ----------
    timeout : float
        Seconds one attempt may take (connect, send, answer).
    retries : int
        New attempts after a failed one.
    backoff : float
        Seconds before the first new attempt; doubled at each one.
    transport : httpx.BaseTransport, optional
        The HTTP transport (default: httpx's own).
    wait : callable(seconds, cancelled) -> None, optional
        How to wait between attempts; default waits on `cancelled`, so a
        cancelled job stops retrying at once.
    """

    def __init__(self, *, timeout: float, retries: int, backoff: float,
                 transport: httpx.BaseTransport | None = None,
                 wait: Callable[[float, threading.Event], None] | None = None) -> None:
        self.retries = retries
        self.backoff = backoff
        self._client = httpx.Client(timeout=timeout, transport=transport,
                                    follow_redirects=False,
                                    headers={"User-Agent": f"taperoom-analysis/{__version__}"})
        self._wait = wait or (lambda seconds, cancelled: cancelled.wait(seconds))

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def send(self, url: str, job_id: str, stage: str, status: str, data: dict[str, Any],
             cancelled: threading.Event | None = None, *, retry: bool = True) -> Delivery:
        """Post one callback, trying again on temporary failures.

        Parameters
        ----------
        url : str
            The job's ``callback_url`` (already checked: http/https).
        job_id, stage, status : str
            The callback's fields (``status``: ``completed``, ``failed`` or ``skipped``).
        data : dict
            The stage's payload.
        cancelled : threading.Event, optional
            Set when the job is cancelled: no further attempt is made.
        retry : bool, keyword-only
            False: one attempt only (notices whose loss costs nothing).

        Returns
        -------
        Delivery
        """
        stop = cancelled or threading.Event()
        shown = redact_url(url)  # a password in the URL stays out of the logs
        body = {"job_id": job_id, "stage": stage, "status": status,
                "timestamp": datetime.now(UTC).isoformat(), "data": json_safe(data)}
        headers = {JOB_ID_HEADER: job_id, STAGE_HEADER: stage}
        error = ""
        attempts = 0
        for attempt in range((self.retries if retry else 0) + 1):
            if attempt:
                delay = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF)
                self._wait(delay, stop)
            if stop.is_set():
                break
            attempts += 1
            try:
                answer = self._client.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                log.info("callback %s of job %s to %s failed: %s", stage, job_id, shown, error)
                continue
            if answer.is_success:
                return Delivery(True, attempts)
            error = f"HTTP {answer.status_code}"
            log.info("callback %s of job %s to %s answered %s", stage, job_id, shown,
                     answer.status_code)
            if answer.status_code < 500 and answer.status_code not in _RETRY_STATUSES:
                break
        log.warning("callback %s of job %s to %s not delivered: %s", stage, job_id, shown,
                    error or "cancelled")
        return Delivery(False, attempts, error or "cancelled")
