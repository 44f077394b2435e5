"""``taperoom library|recorder user add|list|password|remove`` as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa


def _run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "taperoom", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("app", ["library", "recorder"])
def test_user_commands(app: str, tmp_path: Path) -> None:
    """add (password from stdin; stored as an Argon2id hash only), duplicate and short
    passwords refused with a one-line error, list, password, remove."""
    env = {**os.environ, "DATABASE_PATH": str(tmp_path / "library.db"),
           "DATA_DIR": str(tmp_path / "rec")}
    secret = "a long enough password"
    done = _run([app, "user", "add", "dj", "--password-stdin"], env, secret + "\n")
    assert done.returncode == 0, done.stderr
    assert "user 'dj' added" in done.stderr and "requires sign-in" in done.stderr
    db = tmp_path / ("library.db" if app == "library" else "rec/recorder.db")
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        [(name, stored)] = conn.execute(sa.text(f"SELECT name, password_hash FROM {app}_users"))
    engine.dispose()
    assert name == "dj" and stored.startswith("$argon2id$") and secret not in stored

    done = _run([app, "user", "add", "dj", "--password-stdin"], env, secret + "\n")
    assert done.returncode == 5 and done.stderr.strip() == "error: user 'dj' already exists"
    done = _run([app, "user", "add", "mc", "--password-stdin"], env, "short\n")
    assert done.returncode == 2 and "at least 8 characters" in done.stderr
    done = _run([app, "user", "add", "mc"], env, "another password\nanother password\n")
    assert done.returncode == 0, done.stderr
    listed = _run([app, "user", "list"], env)
    assert listed.returncode == 0 and "dj" in listed.stdout and "mc" in listed.stdout
    assert _run([app, "user", "password", "mc", "--password-stdin"], env,
                "yet another one\n").returncode == 0
    assert _run([app, "user", "remove", "mc"], env).returncode == 0
    done = _run([app, "user", "remove", "mc"], env)
    assert done.returncode == 4 and "no user 'mc'" in done.stderr
