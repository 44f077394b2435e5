"""The shared Chromium fixtures of tests/browser.py, tried in pytest runs of their own.

Each test writes a small test suite that uses the fixtures and runs pytest on it in
a subprocess: without Chromium its tests skip, or fail under CI; with Chromium, the
session's browser leaves asyncio free for the tests that run between browser tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.browser import ChromiumSession
from tests.conftest import ROOT

FIXTURES = """
from pathlib import Path

import tests.browser
from tests.browser import browser, browser_context, browser_context_args, chromium_session
"""
#: Chromium at a path where nothing is installed.
NO_CHROMIUM = FIXTURES + 'tests.browser.CHROMIUM = Path("/nonexistent/chromium")\n'

PAGE_TEST = """
def test_page(browser_context):
    page = browser_context.new_page()
    page.set_content("<p>hi</p>")
    assert page.text_content("p") == "hi"
"""

MIXED_TESTS = PAGE_TEST + """

import asyncio


async def test_asyncio_test_after_a_browser_test():
    await asyncio.sleep(0.01)


def test_asyncio_run_after_a_browser_test():
    assert asyncio.run(asyncio.sleep(0.01, "ran")) == "ran"


def test_page_again(browser_context):
    test_page(browser_context)
"""


def _pytest(folder: Path, conftest: str, tests: str, *, ci: bool
            ) -> subprocess.CompletedProcess[str]:
    (folder / "conftest.py").write_text(conftest)
    (folder / "test_pages.py").write_text(tests)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *sys.path])
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsfE", "-p", "no:cacheprovider",
         "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
         "--rootdir", str(folder), str(folder)],
        cwd=folder, env=env, capture_output=True, text=True, timeout=240)


def test_without_chromium_the_browser_tests_skip(tmp_path: Path) -> None:
    """On a developer's machine without Chromium, a browser test is skipped, saying how
    to install it."""
    run = _pytest(tmp_path, NO_CHROMIUM, PAGE_TEST, ci=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout
    assert "Chromium is not installed at /nonexistent/chromium" in run.stdout
    assert "make browser" in run.stdout


def test_without_chromium_the_browser_tests_fail_under_ci(tmp_path: Path) -> None:
    """Under CI a missing Chromium fails the browser tests, with the same message."""
    run = _pytest(tmp_path, NO_CHROMIUM, PAGE_TEST, ci=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 error" in run.stdout and "skipped" not in run.stdout
    assert "Chromium is not installed at /nonexistent/chromium" in run.stdout
    assert "CI is set" in run.stdout


def test_asyncio_runs_between_browser_tests(chromium_session: ChromiumSession,
                                            tmp_path: Path) -> None:
    """One Chromium for the session: an asyncio test and ``asyncio.run`` between two
    browser tests run their own event loops, and the second browser test still works
    (Playwright's sync API marks its loop as running while it is in use)."""
    run = _pytest(tmp_path, FIXTURES, MIXED_TESTS, ci=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout
