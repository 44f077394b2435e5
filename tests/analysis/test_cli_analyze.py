"""``taperoom analyze PATH... [--json]`` and ``taperoom analysis serve``, run as real
processes on real corpus audio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.analysis.serverkit import BASIC_KEYS, CHARACTERISTICS_KEYS, NOT_AUDIO, SHORT, SHORT2
from tests.conftest import free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _taperoom(*args: str, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "taperoom", *args], capture_output=True,
                          text=True, cwd=cwd, env=full_env, timeout=600)


def test_json_lines_one_per_file_path_as_given(corpus: Path) -> None:
    done = _taperoom("analyze", SHORT, str(corpus / SHORT2), "--json", cwd=corpus)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["path"] == SHORT  # as given, relative
    assert second["path"] == str(corpus / SHORT2)
    keys = list(first)
    assert keys[0] == "path"
    expected = [k for k in BASIC_KEYS if k != "waveforms"]
    assert [k for k in keys if k in expected] == expected
    assert keys.index("firstBeatOffset") < keys.index("danceability")  # basic, then chars
    for key in CHARACTERISTICS_KEYS:
        assert key in first
    assert "waveforms" not in first
    assert 60 < first["tempo"] < 200 and first["num_beats"] == len(first["beats"])
    assert first["valence"] is None
    assert done.stderr == ""


def test_failed_files_exit_1_with_one_error_line_each(corpus: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.flac")
    done = _taperoom("analyze", str(corpus / NOT_AUDIO), str(corpus / SHORT), missing,
                     "--json")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert [json.loads(line)["path"] for line in lines] == [str(corpus / SHORT)]
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {corpus / NOT_AUDIO}: ")
    assert errors[1].startswith(f"error: {missing}: ")


def test_quick_and_waveforms_options(corpus: Path) -> None:
    done = _taperoom("analyze", str(corpus / SHORT), "--json", "--quick", "--waveforms",
                     "--bpm-range", "60-120")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert "danceability" not in record  # quick: no characteristics
    assert record["audibleStartTime"] is None
    assert [w["num_pixels"] for w in record["waveforms"]] == [1000, 4000, 16000]
    assert record["tempo"] > 0


def test_bad_bpm_range_is_a_usage_error(corpus: Path) -> None:
    for bad in ("180-70", "fast", "10-500"):
        done = _taperoom("analyze", str(corpus / SHORT), "--json", "--bpm-range", bad)
        assert done.returncode == 2, (bad, done.stderr)
        assert "--bpm-range" in done.stderr
        assert done.stdout == ""


def test_table_without_json(corpus: Path, tmp_path: Path) -> None:
    done = _taperoom("analyze", str(corpus / SHORT), str(corpus / SHORT2))
    assert done.returncode == 0, done.stderr
    assert "BPM" in done.stdout and "Camelot" in done.stdout
    assert Path(SHORT).name in done.stdout and Path(SHORT2).name in done.stdout
    failed = _taperoom("analyze", str(corpus / SHORT), str(tmp_path / "nope.mp3"))
    assert failed.returncode == 1
    assert "nope.mp3" in failed.stderr and "1 of 2" in failed.stderr


def test_analysis_serve_runs_the_server(
        server_process: Callable[[list[str], dict[str, str]], Any]) -> None:
    srv = server_process(["analysis", "serve"], {"PYTHONPATH": SRC})
    health = httpx.get(f"{srv.url}/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_analysis_serve_refuses_the_network_without_token() -> None:
    done = _taperoom("analysis", "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert done.returncode == 78
    assert "ANALYSIS_SERVER_API_TOKEN" in done.stderr
