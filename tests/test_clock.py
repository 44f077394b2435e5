"""The injectable clock (taperoom.clock): the real one, and virtual time for tests."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from taperoom.clock import SIMULATED_EPOCH, Clock, SimulatedClock, SystemClock


def test_system_clock_is_the_real_clock() -> None:
    """SystemClock reads time.monotonic and the UTC wall clock, and really waits."""
    clock: Clock = SystemClock()
    before = time.monotonic()
    assert before <= clock.monotonic() <= time.monotonic()
    now = clock.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert abs((now - datetime.now(UTC)).total_seconds()) < 1.0
    t0 = time.monotonic()
    clock.sleep(0.05)
    stop = threading.Event()
    assert not clock.wait(stop, 0.05)
    assert time.monotonic() - t0 >= 0.1
    stop.set()
    assert clock.wait(stop, 10.0)  # at once
    clock.sleep(-1.0)
    assert not SystemClock().wait(threading.Event(), -1.0)


def test_auto_advancing_clock_skips_every_wait_at_once() -> None:
    """An hour of sleeps and waits takes no real time; the virtual time, the wall
    clock and the record of the waits all move by exactly what was waited."""
    clock = SimulatedClock()
    assert clock.monotonic() == 0.0 and clock.now() == SIMULATED_EPOCH
    stop = threading.Event()
    t0 = time.monotonic()
    for _ in range(60):
        clock.sleep(30.0)
        assert not clock.wait(stop, 30.0)
    assert time.monotonic() - t0 < 0.5
    assert clock.monotonic() == 3600.0
    assert clock.now() == SIMULATED_EPOCH + timedelta(hours=1)
    assert clock.waits == [30.0] * 120
    stop.set()
    assert clock.wait(stop, 30.0)  # a set event: no time passes
    clock.sleep(0.0)
    assert clock.monotonic() == 3600.0 and len(clock.waits) == 120
    clock.advance(1.5)
    assert clock.monotonic() == 3601.5


def test_the_virtual_time_stands_still_between_waits() -> None:
    """With rate 0 real time does not move the clock; with rate 1 it does, and a
    wait still passes at once."""
    frozen = SimulatedClock(datetime(2030, 6, 1, 12, tzinfo=UTC))
    running = SimulatedClock(rate=1.0)
    time.sleep(0.05)
    assert frozen.monotonic() == 0.0
    assert frozen.now() == datetime(2030, 6, 1, 12, tzinfo=UTC)
    assert 0.05 <= running.monotonic() < 5.0
    t0 = time.monotonic()
    running.sleep(600.0)
    assert time.monotonic() - t0 < 0.5
    assert 600.05 <= running.monotonic() < 605.0


def test_a_blocking_clock_waits_until_the_test_advances_it() -> None:
    """With ``auto_advance=False`` a sleep ends when another thread advances the clock
    past its end, and a wait also when its event is set."""
    clock = SimulatedClock(auto_advance=False)
    woke: list[float] = []

    def sleeper() -> None:
        clock.sleep(10.0)
        woke.append(clock.monotonic())

    thread = threading.Thread(target=sleeper)
    thread.start()
    clock.advance(4.0)
    thread.join(0.2)
    assert thread.is_alive() and not woke  # 6 s of virtual time are left
    clock.advance(6.0)
    thread.join(5.0)
    assert woke == [10.0]

    stop = threading.Event()
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(clock.wait(stop, 3600.0)))
    waiter.start()
    waiter.join(0.1)
    assert waiter.is_alive()
    stop.set()
    waiter.join(5.0)
    assert result == [True] and clock.monotonic() == 10.0
    assert clock.waits == [10.0, 0.0]


def test_a_blocking_clock_with_a_rate_follows_real_time() -> None:
    """A blocking clock at 10 virtual seconds per real second ends a 1 s sleep after
    about 0.1 s of real time."""
    clock = SimulatedClock(auto_advance=False, rate=10.0)
    t0 = time.monotonic()
    clock.sleep(1.0)
    assert 0.09 <= time.monotonic() - t0 < 2.0
    assert clock.monotonic() >= 1.0


def test_bad_arguments_are_refused() -> None:
    """A negative rate, a naive start or going back in time raise ValueError."""
    with pytest.raises(ValueError, match="rate"):
        SimulatedClock(rate=-1.0)
    with pytest.raises(ValueError, match="aware"):
        SimulatedClock(datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="never goes back"):
        SimulatedClock().advance(-1.0)
