"""The ``taperoom`` command line, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.wavgen import tone, write_wav


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "taperoom", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"AUDIO_DIR": str(tmp_path / "audio"), "METADATA_DIR": str(tmp_path / "meta"),
            "FSYNC": "false", **extra}


def test_scan_creates_metadata_and_waveforms_and_skips_bad_files(tmp_path: Path) -> None:
    """`ephemeral scan` prepares every good WAV, skips a corrupt one and says so."""
    (tmp_path / "audio").mkdir()
    write_wav(tmp_path / "audio" / "a.wav", tone(2.0, 44100, 2))
    (tmp_path / "audio" / "bad.wav").write_bytes(b"RIFF....WAVEjunk")
    res = run(["ephemeral", "scan"], _env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "1 track(s) ready, 1 skipped" in res.stderr
    meta = json.loads((tmp_path / "meta" / "tracks" / "a.wav.json").read_text())
    assert meta["total_segments"] == 4
    assert (tmp_path / "meta" / "waveforms" / "a.wav.json").is_file()
    assert not (tmp_path / "meta" / "tracks" / "bad.wav.json").exists()


@pytest.mark.slow
def test_stats_lists_tracks_and_segments(tmp_path: Path) -> None:
    """`ephemeral stats` prints each track, and one track's play counts."""
    (tmp_path / "audio").mkdir()
    write_wav(tmp_path / "audio" / "a.wav", tone(1.0, 44100, 1))
    res = run(["ephemeral", "stats"], _env(tmp_path))
    assert res.returncode == 0 and "a.wav" in res.stdout
    res = run(["ephemeral", "stats", "a.wav"], _env(tmp_path))
    assert res.returncode == 0 and "play counts: 0 0" in res.stdout


@pytest.mark.slow
def test_reset_restores_pristine_audio(tmp_path: Path) -> None:
    """`ephemeral reset` puts back the bytes kept at first sight and zeroes the counts."""
    (tmp_path / "audio").mkdir()
    path = write_wav(tmp_path / "audio" / "a.wav", tone(2.0, 44100, 2))
    pristine = path.read_bytes()
    env = _env(tmp_path, KEEP_ORIGINALS="true", DEGRADATION_RATE="100")
    code = ("from taperoom.ephemeral.context import build_services;"
            "from taperoom.ephemeral.settings import EphemeralSettings;"
            "s = build_services(EphemeralSettings()).service;"
            "[s.degrade('a.wav', 1) for _ in range(2)]")
    subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, **env},
                   check=True, timeout=60)
    assert path.read_bytes() != pristine
    res = run(["ephemeral", "reset", "a.wav"], env)
    assert res.returncode == 0, res.stderr
    assert path.read_bytes() == pristine
    meta = json.loads((tmp_path / "meta" / "tracks" / "a.wav.json").read_text())
    assert meta["segment_play_counts"] == [0] * 4


@pytest.mark.slow
def test_errors_map_to_exit_codes(tmp_path: Path) -> None:
    """An unknown track exits 4 (not found) with a one-line message, no traceback."""
    (tmp_path / "audio").mkdir()
    res = run(["ephemeral", "reset", "nope.wav"], _env(tmp_path))
    assert res.returncode == 4
    assert "error:" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_serve_all_apps_runs_ephemeral_on_its_port(tmp_path: Path, server_process) -> None:
    """`taperoom serve --app ephemeral --port P` answers the contract's GET /."""
    (tmp_path / "audio").mkdir()
    srv = server_process(["serve", "--app", "ephemeral"], _env(tmp_path))
    body = httpx.get(srv.url + "/").json()
    assert body["service"] == "Ephemeral Audio Decay System"


def test_serve_rejects_unknown_app(tmp_path: Path) -> None:
    """An unknown app name is a usage error (exit 2)."""
    res = run(["serve", "--app", "nope"], _env(tmp_path))
    assert res.returncode == 2 and "unknown app" in (res.stderr + res.stdout)


def test_a_server_process_freezes_its_start_up_heap_and_an_app_in_a_test_does_not(
        tmp_path: Path, server_process, eph_settings, live_server) -> None:
    """`taperoom serve` leaves the objects of its start-up out of garbage collection
    (it says how many); an app started in this process (as tests and commands do) does
    not, since frozen objects are never collected."""
    import gc

    from taperoom.ephemeral.app import create_app

    (tmp_path / "audio").mkdir()
    srv = server_process(["serve", "--app", "ephemeral"], _env(tmp_path))
    assert httpx.get(srv.url + "/").status_code == 200
    srv.stop()
    out = srv.proc.stdout.read().decode() if srv.proc.stdout else ""
    frozen = [line for line in out.splitlines() if "start-up heap frozen" in line]
    assert len(frozen) == 1, out
    assert int(frozen[0].split("frozen: ")[1].split()[0]) > 10_000
    before = gc.get_freeze_count()
    in_process = live_server(create_app(eph_settings()))
    assert httpx.get(in_process.url + "/").status_code == 200
    in_process.__exit__()
    assert gc.get_freeze_count() == before
