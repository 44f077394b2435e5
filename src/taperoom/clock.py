"""One injectable source of time: the real clock, or a simulated one for tests.

Code that measures durations, reads the wall clock or waits (a recording's end time,
a reconnection backoff) takes a :class:`Clock` instead of calling :mod:`time`,
:mod:`datetime` or :meth:`threading.Event.wait` itself. Production passes
:class:`SystemClock`; a test passes :class:`SimulatedClock`, whose time moves only
when the code waits (at once, ``auto_advance=True``) or when the test calls
:meth:`SimulatedClock.advance`, so an hour of backoff and end-time waits takes no
real time, and the same run gives the same times every time.

What a clock does not cover: I/O. A read from a socket, a ``poll()`` or a queue
filled by an I/O thread waits in real time, whatever the clock; only the time
*read* around it (when the data came, how long a connection lived) comes from the
clock.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

#: Longest real wait (s) of a blocked :class:`SimulatedClock` before it looks again
#: at an event it cannot be told about (a :class:`threading.Event` set by another thread).
POLL_SECONDS = 0.01
#: Where a :class:`SimulatedClock`'s wall clock starts unless told otherwise.
SIMULATED_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    """What code that measures or waits asks of time.

    Every method may be called from any thread.
    """

    def monotonic(self) -> float:
        """Seconds of a clock that never goes back (for durations and deadlines).

        Returns
        -------
        float
            Seconds from an arbitrary origin (compare two readings, never one with
            a wall-clock time).
        """
        ...

    def now(self) -> datetime:
        """The current wall-clock time.

        Returns
        -------
        datetime
            Aware, in UTC.
        """
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time (nothing when `seconds` <= 0)."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait until `event` is set or `timeout` seconds of this clock's time passed.

        Parameters
        ----------
        event : threading.Event
            What ends the wait early (a stop request).
        timeout : float
            Longest wait in seconds; <= 0 only looks at `event`.

        Returns
        -------
        bool
            Whether `event` is set (as :meth:`threading.Event.wait`).
        """
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`datetime.now` in UTC, real waits."""

    def monotonic(self) -> float:
        """:func:`time.monotonic` (seconds)."""
        return time.monotonic()

    def now(self) -> datetime:
        """``datetime.now(UTC)``."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """:func:`time.sleep` for `seconds` (nothing when `seconds` <= 0)."""
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """``event.wait(timeout)`` (a timeout <= 0 only looks at `event`)."""
        return event.wait(max(0.0, timeout))

    def __repr__(self) -> str:
        return "SystemClock()"


class SimulatedClock:
    """Virtual time for tests: waits end in virtual time, at once or when the test says.

    The virtual time is ``rate`` x the real time since the clock was made, plus every
    :meth:`advance` and every wait skipped by ``auto_advance``. With ``rate=0`` (the
    default) it stands still between two waits: deterministic. With ``rate=1`` it runs
    with the real clock while the code does I/O (a connection to a real server lives
    as long in virtual as in real time), and only the waits are skipped.

    Parameters
    ----------
    start : datetime, optional
        Wall-clock time at virtual second 0 (aware; :data:`SIMULATED_EPOCH` by default).
    auto_advance : bool
        True: :meth:`sleep` and :meth:`wait` advance the virtual time by their length
        (or until the deadline, for a wait) and return at once, unless the event is set
        already. Each wait advances the clock by its own length, so this suits code
        where one thread waits (a capture's supervisor) and others only read the time.
        False: they block (in real time) until the virtual time reaches their end,
        through :meth:`advance` from another thread or through ``rate``.
    rate : float
        Virtual seconds that pass per real second on their own (>= 0).

    Attributes
    ----------
    waits : list of float
        Virtual seconds each :meth:`sleep` or :meth:`wait` lasted, in order (a wait
        ended early by its event counts the time it waited).

    Raises
    ------
    ValueError
        A negative `rate`, or a naive `start`.

    Notes
    -----
    With ``rate=0`` time does not pass while the code waits for I/O: a capture whose
    connection stays up never reaches its end time (nor a stall) until the test calls
    :meth:`advance`, and a connection that delivers audio in zero virtual time runs
    ahead of real time by all of it. Serve connections that drop soon (as a test of
    reconnection does), or use ``rate=1`` when the durations of the I/O matter (how
    long a connection lived, whether its audio came at the pace of real time).
    """

    def __init__(self, start: datetime = SIMULATED_EPOCH, *, auto_advance: bool = True,
                 rate: float = 0.0) -> None:
        if rate < 0:
            raise ValueError(f"rate must be >= 0, got {rate}")
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        self.start = start.astimezone(UTC)
        self.auto_advance = auto_advance
        self.rate = rate
        self.waits: list[float] = []
        self._skipped = 0.0
        self._real0 = time.monotonic()
        self._cond = threading.Condition()

    def _virtual(self) -> float:
        """The virtual time (caller holds the lock)."""
        return self._skipped + self.rate * (time.monotonic() - self._real0)

    def monotonic(self) -> float:
        """Virtual seconds since the clock was made."""
        with self._cond:
            return self._virtual()

    def now(self) -> datetime:
        """``start`` plus the virtual seconds (aware, UTC)."""
        return self.start + timedelta(seconds=self.monotonic())

    def advance(self, seconds: float) -> None:
        """Move the virtual time forward by `seconds` and wake the waits that ended.

        Raises
        ------
        ValueError
            A negative `seconds` (the clock never goes back).
        """
        if seconds < 0:
            raise ValueError(f"a clock never goes back ({seconds} s)")
        with self._cond:
            self._skipped += seconds
            self._cond.notify_all()

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of virtual time (see ``auto_advance``)."""
        self._wait(None, seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait until `event` is set or `timeout` virtual seconds passed (see
        ``auto_advance``); returns whether `event` is set."""
        return self._wait(event, timeout)

    def _wait(self, event: threading.Event | None, seconds: float) -> bool:
        if event is not None and event.is_set():
            return True
        if seconds <= 0:
            return event is not None and event.is_set()
        with self._cond:
            began = self._virtual()
            end = began + seconds
            if self.auto_advance:
                self._skipped += seconds
                self._cond.notify_all()
            else:
                while (left := end - self._virtual()) > 0 \
                        and not (event is not None and event.is_set()):
                    real = left / self.rate if self.rate else None
                    if event is not None:  # a set() cannot notify this condition
                        real = POLL_SECONDS if real is None else min(real, POLL_SECONDS)
                    self._cond.wait(real)
            self.waits.append(self._virtual() - began)
        return event is not None and event.is_set()

    def __repr__(self) -> str:
        return (f"SimulatedClock(t={self.monotonic():.3f} s, auto_advance={self.auto_advance}, "
                f"rate={self.rate:g})")
