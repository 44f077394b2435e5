"""Headless Chromium for page tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

One browser for the whole session and a fresh context (cookies, storage, viewport)
for each test: ``browser_context`` (its options come from the ``browser_context_args``
fixture, which a test module may override). Tests that use the browser are marked
``browser`` by ``tests/conftest.py`` (``pytest -m "not browser"`` leaves them out).
Without Chromium they are skipped on a developer's machine and fail under CI
(:func:`tests.ci.missing`); a Chromium that is installed but does not start is
always a failure.

Playwright's sync API marks its event loop as the thread's running loop while it
is in use; between browser tests the mark is lifted, so that the asyncio tests and
``asyncio.run`` calls of the rest of the suite can run their own loops.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Error, Page, Playwright, sync_playwright

from tests.ci import missing

CHROMIUM = Path("/usr/bin/chromium")
#: Headless, no sandbox (containers run as root), nothing fetched from the network;
#: media may play without a click (the ephemeral player's tests).
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
#: Milliseconds Chromium may take to start.
LAUNCH_TIMEOUT = 30_000


class ChromiumSession:
    """The session's Playwright driver and Chromium, used by one test at a time.

    Parameters
    ----------
    playwright : Playwright
        The started sync API.
    browser : Browser
        Chromium launched through it.
    """

    def __init__(self, playwright: Playwright, browser: Browser) -> None:
        self.playwright = playwright
        self.browser = browser
        self._loop: asyncio.AbstractEventLoop | None = None

    def park(self) -> None:
        """Lift Playwright's running-loop mark from the thread (between browser tests)."""
        self._loop = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(None)

    def resume(self) -> None:
        """Restore the mark before the browser is used again."""
        if self._loop is not None:
            asyncio.events._set_running_loop(self._loop)

    def close(self) -> None:
        """Close Chromium and stop the driver."""
        self.resume()
        try:
            self.browser.close()
        finally:
            self.playwright.stop()


def launch() -> ChromiumSession:
    """Start Playwright and launch :data:`CHROMIUM` with :data:`CHROMIUM_ARGS`.

    Skips (fails under CI) when Chromium is not installed; fails when it does not start.
    """
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        missing(f"Chromium is not installed at {CHROMIUM} (`make browser` installs "
                "Debian's chromium package)")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             timeout=LAUNCH_TIMEOUT)
    except Error as exc:
        playwright.stop()
        pytest.fail(f"could not start {CHROMIUM}: {exc}")
    return ChromiumSession(playwright, browser)


@pytest.fixture(scope="session")
def chromium_session() -> Iterator[ChromiumSession]:
    """The session's Chromium (launched when the first browser test needs it)."""
    session = launch()
    session.park()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def browser(chromium_session: ChromiumSession) -> Iterator[Browser]:
    """The session's headless Chromium, for the duration of one test."""
    chromium_session.resume()
    try:
        yield chromium_session.browser
    finally:
        chromium_session.park()


@pytest.fixture
def browser_context_args() -> dict[str, Any]:
    """Keyword arguments of ``Browser.new_context`` for each test (override per module)."""
    return {}


@pytest.fixture
def browser_context(browser: Browser, browser_context_args: dict[str, Any]
                    ) -> Iterator[BrowserContext]:
    """A fresh browser context (no cookies, no storage) for the test; closed after it."""
    context = browser.new_context(**browser_context_args)
    try:
        yield context
    finally:
        context.close()


def page_errors(page: Page) -> list[str]:
    """The list into which `page`'s uncaught script errors go from now on (a test
    asserts it empty)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors
