"""What a test does when a program it needs (Chromium, PostgreSQL) is not installed."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True when running in CI (``CI`` set to ``1``, ``true`` or ``yes``), where nothing
    may be skipped."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(message: str) -> NoReturn:
    """A program the test needs is not installed: skip on a developer's machine, fail
    under CI (:func:`in_ci`), where every test must run.

    Parameters
    ----------
    message : str
        What is missing and how to install it.
    """
    if in_ci():
        pytest.fail(f"{message} (CI is set: tests that need it must run)")
    pytest.skip(message)
