"""Log lines at the default level: what the person running the servers reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations" / "library"

#: A new library database migrated and one huey task run, after the apps' logging setup.
_PROGRAM = """
import logging, sys
from pathlib import Path
from huey import MemoryHuey
from taperoom.config import setup_logging
from taperoom.db import make_engine, sqlite_url, upgrade_schema

setup_logging()
upgrade_schema(make_engine(sqlite_url(sys.argv[1])), Path(sys.argv[2]))
huey = MemoryHuey("log-test", immediate=True)

@huey.task()
def add(a, b):
    return a + b

assert add(1, 2).get() == 3
logging.getLogger("huey.consumer").info("consumer started")
logging.getLogger("huey").warning("a task warning")
logging.getLogger("taperoom.jobs").info("queue 'q': consumer started with 1 worker thread(s)")
"""


def _stderr(tmp_path: Path, **env: str) -> str:
    run_env = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"} | env
    done = subprocess.run([sys.executable, "-c", _PROGRAM, str(tmp_path / "library.db"),
                           str(MIGRATIONS)], env=run_env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_default_log_shows_migrations_and_warnings_but_no_line_per_task(
        tmp_path: Path) -> None:
    """At INFO, a first start logs each migration it applies, the job layer's queue
    starts and huey's warnings, but no huey line per task run or consumer detail, no
    Alembic plugin list and no Alembic line per database connection."""
    err = _stderr(tmp_path)
    assert "Running upgrade  -> 0001" in err
    assert "queue 'q': consumer started" in err and "a task warning" in err
    assert "Executing" not in err and "executed in" not in err
    assert "huey.consumer" not in err
    assert "setup plugin" not in err
    assert "Context impl" not in err and "Will assume" not in err


@pytest.mark.parametrize("level", ["DEBUG", "debug"])
def test_debug_log_keeps_every_library_line(tmp_path: Path, level: str) -> None:
    """``LOG_LEVEL=DEBUG`` shows huey's and Alembic's lines again."""
    err = _stderr(tmp_path, LOG_LEVEL=level)
    assert "Executing" in err and "executed in" in err
    assert "huey.consumer: consumer started" in err and "Context impl" in err
