"""Several worker processes wearing the same track: no lost play, no corruption."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.audio import wav
from taperoom.ephemeral.settings import EphemeralSettings
from taperoom.ephemeral.store import EphemeralStore
from tests.polling import wait_for
from tests.wavgen import LIST_INFO, tone, write_wav


def _worker(audio: str, meta: str, segment: int, n: int, queue: mp.Queue) -> None:
    store = EphemeralStore(EphemeralSettings(_env_file=None, audio_dir=Path(audio),  # type: ignore[call-arg]
                                             metadata_dir=Path(meta), fsync=False))
    counts = [store.degrade("t.wav", segment) for _ in range(n)]
    queue.put(counts)


def _run_processes(target: Callable[..., None], args: tuple[Any, ...], n: int = 4
                   ) -> list[int]:
    """Run `target(*args, queue)` in `n` spawned processes at once; every count they
    put on the queue, after checking that each exited cleanly."""
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    seen = [c for _ in procs for c in queue.get(timeout=120)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return seen


def test_processes_sharing_one_segment_lose_no_play(tmp_path: Path) -> None:
    """4 processes x 40 wears of one segment give exactly 160 plays, each count seen once."""
    audio, meta = tmp_path / "audio", tmp_path / "meta"
    audio.mkdir()
    write_wav(audio / "t.wav", tone(3.0, 44100, 2))
    seen = _run_processes(_worker, (str(audio), str(meta), 2, 40))
    assert sorted(seen) == list(range(1, 161))
    data = json.loads((meta / "tracks" / "t.wav.json").read_text())
    assert data["segment_play_counts"][2] == 160
    assert sum(data["segment_play_counts"]) == 160


def _mixed_worker(audio: str, meta: str, n: int, queue: mp.Queue) -> None:
    store = EphemeralStore(EphemeralSettings(_env_file=None, audio_dir=Path(audio),  # type: ignore[call-arg]
                                             metadata_dir=Path(meta), fsync=False))
    counts = []
    for i in range(n):
        counts.append(store.degrade("t.wav", i % 3))
        if i % 4 == 0:
            store.add_stream("t.wav")
    queue.put(counts)


def test_processes_converting_the_original_format_lose_no_play(tmp_path: Path) -> None:
    """4 processes start on the original's indent=2 <stem>.json at once, wearing 3 shared
    segments and counting streams: it is moved once to tracks/<name>.json, and every count
    and stream is kept and each count is seen once."""
    audio, meta = tmp_path / "audio", tmp_path / "meta"
    audio.mkdir()
    meta.mkdir()
    write_wav(audio / "t.wav", tone(2.0, 8000, 1), rate=8000)
    (meta / "t.json").write_text(json.dumps({
        "filename": "t.wav", "title": "t", "duration": 2.0, "segment_duration": 0.5,
        "total_segments": 4, "segment_play_counts": [5, 0, 2, 9],
        "created_at": "2025-11-09T12:00:00.123456Z", "total_streams": 3}, indent=2))
    seen = _run_processes(_mixed_worker, (str(audio), str(meta), 30))
    data = json.loads((meta / "tracks" / "t.wav.json").read_text())
    assert data["segment_play_counts"] == [5 + 40, 40, 2 + 40, 9]
    assert data["total_streams"] == 3 + 4 * 8
    assert data["created_at"] == "2025-11-09T12:00:00.123456Z"
    assert sorted(seen) == sorted([*range(6, 46), *range(1, 41), *range(3, 43)])
    assert not (meta / "t.json").exists()


def _worker_pids(pid: int) -> set[int]:
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.add(int(entry.name))
    return children


@pytest.mark.slow
def test_uvicorn_with_four_workers_counts_every_degrade(tmp_path: Path, server_process) -> None:
    """300 concurrent /degrade calls against `serve --workers 4` add exactly 300 plays."""
    audio = tmp_path / "audio"
    audio.mkdir()
    for name in ("a.wav", "b.wav"):
        write_wav(audio / name, tone(4.0, 44100, 2), before=[LIST_INFO])
    srv = server_process(["ephemeral", "serve", "--workers", "4"], {
        "AUDIO_DIR": str(audio), "METADATA_DIR": str(tmp_path / "meta"),
        "DEGRADE_RATE_LIMIT": "off", "LOG_LEVEL": "warning"})
    wait_for(lambda: len(_worker_pids(srv.proc.pid)) >= 4, 20, "four worker processes")
    size_before = (audio / "a.wav").stat().st_size
    jobs = [("a.wav", 3)] * 150 + [("b.wav", i % 8) for i in range(150)]
    random.Random(1).shuffle(jobs)

    def post(job: tuple[str, int]) -> int:
        # a fresh connection per call spreads the calls over the worker processes
        with httpx.Client(timeout=30) as client:
            r = client.post(f"{srv.url}/degrade/{job[0]}", json={"segment_index": job[1]})
            return r.status_code

    with ThreadPoolExecutor(24) as pool:
        codes = list(pool.map(post, jobs))
    assert codes.count(200) == 300
    a = httpx.get(f"{srv.url}/stats/a.wav").json()["segment_play_counts"]
    b = httpx.get(f"{srv.url}/stats/b.wav").json()["segment_play_counts"]
    assert a[3] == 150 and sum(a) == 150
    assert sum(b) == 150 and all(b[i] == 150 // 8 + (1 if i < 150 % 8 else 0) for i in range(8))
    assert (audio / "a.wav").stat().st_size == size_before
    assert wav.read_info(audio / "a.wav").n_frames == 4 * 44100


CRASH_LOOP = """
import sys
from pathlib import Path
from typing import Any
from taperoom.ephemeral.settings import EphemeralSettings
from taperoom.ephemeral.store import EphemeralStore
s = EphemeralSettings(_env_file=None, audio_dir=Path(sys.argv[1]), metadata_dir=Path(sys.argv[2]),
                      fsync=True, degradation_rate=20.0)
store = EphemeralStore(s)
print("ready", flush=True)
i = 0
while True:
    store.degrade("t.wav", i % 8)
    if i % 3 == 0:
        store.add_stream("t.wav")
    i += 1
"""


@pytest.mark.slow
def test_kill_9_at_any_instant_leaves_valid_wav_and_json(tmp_path: Path) -> None:
    """SIGKILL during continuous wear and stream counting, 15 times: header, trailing chunk
    and JSON stay valid, and no count goes back."""
    audio, meta = tmp_path / "audio", tmp_path / "meta"
    audio.mkdir()
    trailer = (b"LIST", b"INFOICMT\x08\x00\x00\x00trailer\x00")
    path = write_wav(audio / "t.wav", tone(4.0, 48000, 2), rate=48000, fmt="pcm24",
                     before=[LIST_INFO], after=[trailer])
    original = path.read_bytes()
    info = wav.read_info(path)
    rng = random.Random(7)
    last_total = last_streams = 0
    for _ in range(15):
        proc = subprocess.Popen([sys.executable, "-c", CRASH_LOOP, str(audio), str(meta)],
                                stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        now = path.read_bytes()
        assert len(now) == len(original)
        assert now[: info.data_offset] == original[: info.data_offset]
        end = info.data_offset + info.data_size
        assert now[end:] == original[end:]
        assert wav.read_info(path) == info
        data = json.loads((meta / "tracks" / "t.wav.json").read_text())
        assert data["total_segments"] == 8 and len(data["segment_play_counts"]) == 8
        total = sum(data["segment_play_counts"])
        assert total >= last_total
        assert data["total_streams"] >= last_streams
        last_total, last_streams = total, data["total_streams"]
    assert last_total > 0


def test_threads_of_one_process_lose_no_play(tmp_path: Path) -> None:
    """32 threads wearing 32 segments of one track 10 times each give exactly 10 plays each."""
    audio = tmp_path / "audio"
    audio.mkdir()
    write_wav(audio / "t.wav", tone(16.0, 8000, 2), rate=8000)
    store = EphemeralStore(EphemeralSettings(_env_file=None, audio_dir=audio,  # type: ignore[call-arg]
                                             metadata_dir=tmp_path / "meta", fsync=False))

    def play(segment: int) -> list[int]:
        return [store.degrade("t.wav", segment) for _ in range(10)]

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(play, range(32)))
    assert all(r == list(range(1, 11)) for r in results)
    data = json.loads((tmp_path / "meta" / "tracks" / "t.wav.json").read_text())
    assert data["segment_play_counts"] == [10] * 32
