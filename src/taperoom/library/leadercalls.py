"""Calls that run in the leader process, from any worker: the watcher's controls.

The file watcher lives in the leader (:mod:`taperoom.leader`), but ``/api/watcher``
requests reach whichever worker the client is connected to. :class:`LeaderCalls`
runs a registered function in the leader: directly when this process leads,
otherwise as a task on the ``library-leader`` Huey queue, whose consumer only
the leader runs, waiting for its result (Huey's result store) and raising the
error it raised there (same class and message, so the answer is the same
whichever worker was asked). :class:`LeaderWatcher` gives the routes the
watcher's controls through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from huey import Huey
from huey.exceptions import HueyException

from taperoom import errors
from taperoom.errors import Busy, TaperoomError
from taperoom.jobs import EmbeddedConsumer, Priority

log = logging.getLogger(__name__)

#: Errors given back by name to the caller (others become a plain TaperoomError).
_ERRORS: dict[str, type[TaperoomError]] = {
    cls.__name__: cls for cls in (errors.InvalidInput, errors.NotFound, errors.Conflict,
                                  errors.Busy, errors.Forbidden, errors.Unprocessable)}


class Leading(Protocol):
    """Whether this process leads (:class:`taperoom.leader.Leadership`)."""

    @property
    def leading(self) -> bool: ...


class LeaderCalls:
    """Run registered functions in the leader process.

    Parameters
    ----------
    huey : huey.Huey
        The ``library-leader`` queue (results on).
    leadership : Leading
        This process's leadership.
    timeout : float
        Seconds a caller waits for the leader; then :class:`~taperoom.errors.Busy`
        (503), and the call is dropped if it has not started.
    """

    def __init__(self, huey: Huey, leadership: Leading, *, timeout: float = 15.0) -> None:
        self.huey = huey
        self.leadership = leadership
        self.timeout = timeout
        self._functions: dict[str, Callable[..., Any]] = {}
        self._task = huey.task(name="library.leader_call")(self._serve)
        self._consumer: EmbeddedConsumer | None = None

    def register(self, name: str, fn: Callable[..., Any]) -> None:
        """Make `fn` callable as `name` (its arguments and result must pickle)."""
        self._functions[name] = fn

    def _serve(self, name: str, args: list[Any]) -> dict[str, Any]:
        fn = self._functions.get(name)
        if fn is None:
            return {"error": "TaperoomError", "message": f"no leader call {name!r}"}
        try:
            return {"result": fn(*args)}
        except TaperoomError as exc:
            return {"error": type(exc).__name__, "message": exc.message}
        except Exception as exc:
            log.exception("leader call %s failed", name)
            return {"error": "TaperoomError", "message": f"{name} failed: {exc}"}

    def call(self, name: str, *args: Any) -> Any:
        """Run `name` with `args` in the leader and return its result.

        Raises
        ------
        TaperoomError
            What the function raised there (same class for the common ones).
        Busy
            No leader answered within :attr:`timeout` seconds.
        """
        if self.leadership.leading:
            return self._functions[name](*args)
        result = self.huey.enqueue(self._task.s(name, list(args), priority=int(Priority.URGENT),
                                                expires=self.timeout))
        try:
            answer = result.get(blocking=True, timeout=self.timeout, max_delay=0.1)
        except HueyException:
            raise Busy("The library's leader process did not answer in time; "
                       "try again") from None
        if "error" in answer:
            cls = _ERRORS.get(answer["error"], TaperoomError)
            raise cls(answer["message"])
        return answer["result"]

    def start_consumer(self) -> None:
        """Serve the calls of the other workers (a leader duty)."""
        if self._consumer is None:
            self._consumer = EmbeddedConsumer(self.huey, workers=1, max_poll_delay=0.1)
        self._consumer.start()

    def stop_consumer(self) -> None:
        """Stop serving calls."""
        if self._consumer is not None:
            self._consumer.stop(5)


class WatcherControls(Protocol):
    """The watcher's controls the ``/api/watcher`` routes use."""

    def status(self) -> dict[str, Any]: ...

    def start_all(self) -> int: ...

    def stop_all(self) -> int: ...

    def watch(self, directory_id: str) -> None: ...

    def unwatch(self, directory_id: str) -> None: ...


class LeaderWatcher:
    """The leader's watcher, controlled from any worker process (see the module).

    Parameters
    ----------
    calls : LeaderCalls
    watcher : WatcherControls
        This process's watcher (used when this process leads).
    """

    def __init__(self, calls: LeaderCalls, watcher: WatcherControls) -> None:
        self.calls = calls
        for name in ("status", "start_all", "stop_all", "watch", "unwatch"):
            calls.register(f"watcher.{name}", getattr(watcher, name))

    def status(self) -> dict[str, Any]:
        """The watcher's status (see :meth:`~taperoom.library.watcher.LibraryWatcher.status`)."""
        result: dict[str, Any] = self.calls.call("watcher.status")
        return result

    def start_all(self) -> int:
        """Watch every active, available folder; returns how many are watched."""
        return int(self.calls.call("watcher.start_all"))

    def stop_all(self) -> int:
        """Stop every watch; returns how many were stopped."""
        return int(self.calls.call("watcher.stop_all"))

    def watch(self, directory_id: str) -> None:
        """Watch one folder (errors as :meth:`LibraryWatcher.watch`)."""
        self.calls.call("watcher.watch", directory_id)

    def unwatch(self, directory_id: str) -> None:
        """Stop watching one folder (404 when it is not watched)."""
        self.calls.call("watcher.unwatch", directory_id)
