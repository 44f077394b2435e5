"""The tests' polling helper: the first truthy value, or a failure that says what it awaited."""

from __future__ import annotations

import threading

import pytest

from tests.polling import wait_for


def test_returns_the_first_truthy_value() -> None:
    """The value the predicate returns once it is truthy comes back unchanged."""
    values = iter([None, 0, [], {"state": "done"}, {"state": "later"}])
    assert wait_for(lambda: next(values), 10, "a dict", interval=0.001) == {"state": "done"}


def test_sees_what_another_thread_does() -> None:
    """A change made by another thread ends the wait."""
    done = threading.Event()
    threading.Timer(0.1, done.set).start()
    assert wait_for(done.is_set, 30, "the timer") is True


def test_failure_names_what_and_the_last_value() -> None:
    """At the deadline the failure names what was awaited, the timeout and the last value
    (None at the first call, False at every later one)."""
    calls: list[int] = []

    def finished() -> bool | None:
        calls.append(1)
        return None if len(calls) == 1 else False

    with pytest.raises(AssertionError) as failure:
        wait_for(finished, 0.2, "the scan to finish", interval=0.01)
    message = str(failure.value)
    assert "the scan to finish" in message and "0.2 s" in message
    assert "last value: False" in message
    assert len(calls) >= 2  # it polled, not just tried once


def test_errors_of_the_predicate_propagate() -> None:
    """An exception raised by the predicate is not swallowed into a timeout."""
    def broken() -> bool:
        raise KeyError("gone")

    with pytest.raises(KeyError, match="gone"):
        wait_for(broken, 10, "anything")
