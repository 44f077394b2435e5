"""Cost of each ephemeral wear model on one 0.5 s stereo 48 kHz segment (in-process).

Each model wears the same segment of a real recording (from ``../shared/corpus``)
at half and at full strength (play counts 50 and 100 at ``DEGRADATION_RATE`` 1 %),
with the seeded generator the store uses; a numpy copy of the segment and the
``dropout`` model are the references measured in the same run. Target: < 5 ms per
segment for every model.

    .venv/bin/python bench/wear_models.py [--runs N] [--write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import av
import numpy as np

from common import loadavg, md_table, pct, replace_section
from taperoom.ephemeral.wear import WEAR_MODELS, rng_for

ROOT = Path(__file__).resolve().parents[1]

RATE = 48_000
TARGET_MS = 5.0
MUSIC = "scanner/real_music_tagged/04 - Muldjord - Mutilated Mime.ogg"


def segment() -> tuple[np.ndarray, str]:
    """0.5 s of stereo music at 48 kHz, from 10 s into a corpus recording."""
    path = ROOT.parent / "shared" / "corpus" / MUSIC
    if not path.is_file():
        sys.exit(f"corpus recording not found: {path}")
    rs = av.AudioResampler(format="flt", layout="stereo", rate=RATE)
    parts: list[np.ndarray] = []
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1, 2) for f in rs.resample(frame)]
            if sum(map(len, parts)) > 11 * RATE:
                break
    y = np.concatenate(parts)[10 * RATE:10 * RATE + RATE // 2].astype(np.float64)
    return y, path.name


def timings(fn: object, runs: int) -> tuple[list[float], list[float]]:
    """CPU time of this thread and wall time of each of `runs` calls of `fn` (seconds).

    CPU time is the figure compared with the target: on a shared machine the wall
    time also counts the time other programs held the core.
    """
    call = fn  # type: ignore[assignment]
    for _ in range(5):
        call()  # type: ignore[operator]
    cpu, wall = [], []
    for _ in range(runs):
        c, t = time.thread_time(), time.perf_counter()
        call()  # type: ignore[operator]
        wall.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    return cpu, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--write", action="store_true", help="write the BENCHMARKS.md section")
    args = ap.parse_args()
    y, name = segment()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = loadavg()
    t0 = time.perf_counter()
    ref, ref_wall = timings(lambda: np.array(y, copy=True), args.runs)
    ref_p50 = pct(ref, 50)
    rows = [["numpy copy (reference)", "-", f"{ref_p50 * 1e3:.3f}", f"{pct(ref, 90) * 1e3:.3f}",
             f"{pct(ref_wall, 50) * 1e3:.3f}", "1", "-"]]
    worst = 0.0
    for model in WEAR_MODELS.values():
        for plays in (50, 100):
            rng = rng_for("bench.wav", 7, plays)
            state = rng.bit_generator.state

            def run(model: object = model, plays: int = plays, rng: np.random.Generator = rng,
                    state: dict[str, object] = state) -> None:
                rng.bit_generator.state = state  # the same draws every run
                model.apply(y, play_count=plays, rate_percent=1.0,  # type: ignore[attr-defined]
                            rng=rng, sample_rate=RATE)

            t, wall = timings(run, args.runs)
            p50, p90 = pct(t, 50), pct(t, 90)
            worst = max(worst, p50)
            rows.append([f"`{model.name}`", f"{plays} ({min(plays, 100)} %)",
                         f"{p50 * 1e3:.3f}", f"{p90 * 1e3:.3f}", f"{pct(wall, 50) * 1e3:.3f}",
                         f"{p50 / ref_p50:.0f}",
                         "yes" if p50 * 1e3 < TARGET_MS else "**no**"])
    took = time.perf_counter() - t0
    table = md_table(["model", "plays before (strength)", "CPU p50 ms", "CPU p90 ms",
                      "wall p50 ms", "CPU p50 / copy", f"CPU p50 < {TARGET_MS:g} ms"], rows)
    print(table)
    print(f"worst CPU p50 {worst * 1e3:.2f} ms; {args.runs} runs each; load average {load}")
    if args.write:
        block = (f"## ephemeral wear models\n\nMeasured on {started} ({took:.0f} s, load average "
                 f"{load} at the start) with:\n\n```sh\n.venv/bin/python bench/wear_models.py "
                 f"--write\n```\n\nOne model call (`WearModel.apply`, in-process, one thread) on "
                 f"a 0.5 s segment of 48 kHz stereo float64 samples ({RATE // 2} frames; real "
                 f"recording `{name}` from 10 s), {args.runs} runs after 5 warm-up calls, with the "
                 f"same seeded random draws each run; `DEGRADATION_RATE` 1 %. The reference is "
                 f"a numpy copy of the segment, timed in the same run. Times are the CPU time "
                 f"of the calling thread (`time.thread_time`), with the wall time beside it "
                 f"(which also counts the time other programs held the core). Target: CPU "
                 f"p50 < {TARGET_MS:g} ms per segment (the store adds the PCM decode and encode "
                 f"around every model but `dropout`).\n\n{table}\n")
        replace_section("ephemeral wear models", block)


if __name__ == "__main__":
    main()
