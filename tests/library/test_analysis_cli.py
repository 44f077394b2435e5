"""``taperoom library analyze``: a real process on the library a server has open."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.library.analysislib import (
    copy_file,
    drum_loop,
    fresh,
    scanned_library,
    track_by_name,
)


def _run(ctx: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_PATH": str(ctx.settings.database_path),
           "MAX_CONCURRENT_ANALYSIS": "2"}
    return subprocess.run([sys.executable, "-m", "taperoom", "library", "analyze", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_analyze_all_then_skip_then_force_and_fail(lib_ctx: Any, tmp_path: Path) -> None:
    """``--all`` analyses every track (copies of a recording once), a second run skips
    them, ``--force`` analyses given ids again, a broken file exits 1 naming the
    track, and a call without tracks is a usage error."""
    folder = tmp_path / "music"
    loop = drum_loop(folder / "loop.wav", 120.0)
    copy_file(loop, folder / "copy" / "loop.wav")
    drum_loop(folder / "other.wav", 128.0, root=196.0)
    scanned_library(lib_ctx, folder)
    a, b = track_by_name(lib_ctx, "loop.wav"), track_by_name(lib_ctx, "copy/loop.wav")
    other = track_by_name(lib_ctx, "other.wav")

    done = _run(lib_ctx, "--all")
    assert done.returncode == 0, done.stderr
    assert "3 analysed, 0 skipped (analysed already), 0 failed of 3 tracks" in done.stderr
    for t in (a, b, other):
        assert fresh(lib_ctx, t.id).bpm is not None
        assert fresh(lib_ctx, t.id).date_analyzed is not None
    with lib_ctx.db() as s:
        from taperoom.library.models import AnalysisJob

        assert sorted(r.job_id for r in s.query(AnalysisJob)) == sorted(
            [a.file_hash, other.file_hash])
    first = fresh(lib_ctx, other.id).date_analyzed

    again = _run(lib_ctx, "--all")
    assert again.returncode == 0, again.stderr
    assert "0 analysed, 3 skipped" in again.stderr

    forced = _run(lib_ctx, "--force", other.id)
    assert forced.returncode == 0, forced.stderr
    assert "1 analysed, 0 skipped" in forced.stderr
    later = fresh(lib_ctx, other.id).date_analyzed
    assert first is not None and later is not None and later > first

    Path(other.file_path).write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(2000))
    broken = _run(lib_ctx, "--force", other.id)
    assert broken.returncode == 1
    assert "0 analysed, 0 skipped (analysed already), 1 failed of 1 tracks" in broken.stderr
    assert other.id in broken.stderr and "Cannot analyse" in broken.stderr

    usage = _run(lib_ctx)
    assert usage.returncode == 2 and "--all" in usage.stderr
    unknown = _run(lib_ctx, "no-such-track")
    assert unknown.returncode == 4 and "no-such-track" in unknown.stderr
