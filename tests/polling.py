"""The one way tests wait for something that happens in another thread or process."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

#: Seconds between two calls of the predicate.
INTERVAL = 0.05


def wait_for(predicate: Callable[[], T], timeout: float, what: str, *,
             interval: float = INTERVAL) -> T:
    """Call `predicate` until it returns a truthy value, and return that value.

    Deadlines should be generous (they only bound a failing test): a loaded
    machine must not make a correct program fail.

    Parameters
    ----------
    predicate : callable
        Called without arguments, at once and then every `interval` seconds.
        An exception it raises propagates at once.
    timeout : float
        Seconds after which the wait fails.
    what : str
        What is awaited, for the failure message ("the scan to finish").
    interval : float
        Seconds between calls.

    Returns
    -------
    T
        The predicate's first truthy value.

    Raises
    ------
    AssertionError
        When the deadline passes; the message names `what`, the timeout and the
        last value the predicate returned.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} "
                                 f"(last value: {value!r})")
        time.sleep(interval)


def wait_until_serving(url: str, proc: subprocess.Popen[Any], timeout: float
                       ) -> httpx.Response:
    """GET `url` until the server process `proc` answers it (with any status).

    Parameters
    ----------
    url : str
        A URL the server answers once it is up (its health route).
    proc : subprocess.Popen
        The server; its exit ends the wait at once.
    timeout : float
        Seconds the server may take to start.

    Returns
    -------
    httpx.Response
        The first answer.

    Raises
    ------
    AssertionError
        When `proc` exits first, or at the deadline (see :func:`wait_for`).
    """

    def answer() -> httpx.Response | None:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with status {proc.returncode} before "
                                 f"answering {url}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            return None

    return wait_for(answer, timeout, f"{url} to answer", interval=0.1)


def stop_process(proc: subprocess.Popen[Any], grace: float) -> None:
    """Stop a process a test started: SIGTERM if it still runs, SIGKILL when it has not
    ended `grace` seconds later; returns once it has ended.

    Parameters
    ----------
    proc : subprocess.Popen
        The process (nothing is done when it has already ended).
    grace : float
        Seconds it has to end after SIGTERM.
    """
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
