"""Peak memory of the whole analysis of a long mix, against decoding it alone.

Issue 12 asks that a two-hour mix be analysed block by block in under 500 MB.
This script tiles a real track of the dev corpus (``../shared/corpus/dev``) into
stereo 44.1 kHz FLAC mixes of 10 minutes and of 2 hours, and runs, each in a
fresh process:

* the reference: decoding the mix block by block (:class:`AudioSource`), what
  any streaming reader of it needs;
* Taperoom's whole analysis (:func:`taperoom.analysis.analyzer.analyze_file`),
  with BLAS limited to one thread as in ``bench/analysis.py``.

Each process reports its own peak resident set size, ``VmHWM`` of
``/proc/self/status`` (``getrusage``'s ``ru_maxrss`` is not used: Linux keeps it
across ``execve``, so a child started by a big parent reports the parent's peak).
The table gives the peaks, the analysis' peak over the reference's, and the
growth from 10 minutes to 2 hours (what the analysis keeps per hour of audio);
``--write`` puts it in BENCHMARKS.md (section ``## analysis memory``).

Usage::

    PYTHONPATH=src .venv/bin/python bench/analysis_memory.py [--write] [--hours H]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

from common import measured_on, replace_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
CORPUS = ROOT.parent / "shared" / "corpus" / "dev"
SOURCE = "lmms_Jousboxx-BuzzerBeater.ogg"
TARGET_MB = 500

CHILD = """
import sys, time
t = time.process_time()
if sys.argv[1] == "decode":
    from taperoom.analysis.decode import AudioSource
    with AudioSource(sys.argv[2]) as src:
        frames = sum(block.shape[0] for block in src.blocks())
    out = f"{frames / 44100:.1f} -"
else:
    from taperoom.analysis.analyzer import analyze_file
    r = analyze_file(sys.argv[2])
    out = f"{r.duration:.1f} {r.rhythm.bpm}"
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(out, hwm // 1024, round(time.process_time() - t, 1))
"""


def tile_mix(source: Path, out: Path, seconds: float) -> None:
    """Write `source` tiled to `seconds` as stereo 44.1 kHz FLAC, block by block."""
    from taperoom.analysis.decode import AudioSource

    with AudioSource(source) as src:
        tile = np.concatenate(list(src.blocks()))
    frames = round(seconds * 44100)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("flac", rate=44100, layout="stereo")
        convert = av.AudioResampler(format="s16", layout="stereo", rate=44100)
        written = 0
        while written < frames:
            part = tile[: min(tile.shape[0], frames - written)]
            for i in range(0, part.shape[0], 65536):
                chunk = np.ascontiguousarray(part[i:i + 65536].T)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate = 44100
                for f in convert.resample(frame):
                    for packet in stream.encode(f):
                        container.mux(packet)
            written += part.shape[0]
        for packet in stream.encode(None):
            container.mux(packet)


def measure(kind: str, mix: Path) -> tuple[float, str, int, float]:
    """Run one fresh process: (duration s, BPM or "-", peak RSS MB, CPU s)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # one core, as bench/analysis.py
    done = subprocess.run([sys.executable, "-c", CHILD, kind, str(mix)], capture_output=True,
                          text=True, check=True, env=env, cwd=ROOT)
    duration, bpm, peak, cpu = done.stdout.split()
    return float(duration), bpm, int(peak), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0, help="length of the long mix")
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()
    source = CORPUS / SOURCE
    if not source.is_file():
        sys.exit(f"dev corpus track not found: {source}")
    load_start = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, seconds in (("10 min", 600.0), (f"{args.hours:g} h", args.hours * 3600)):
            mix = Path(tmp) / f"mix-{seconds:.0f}.flac"
            print(f"writing the {label} mix ...", flush=True)
            tile_mix(source, mix, seconds)
            decode = measure("decode", mix)
            analysis = measure("analysis", mix)
            print(f"  {label}: decode peak {decode[2]} MB, analysis peak {analysis[2]} MB "
                  f"(CPU {analysis[3]:.0f} s, BPM {analysis[1]})", flush=True)
            rows.append((label, seconds, decode, analysis))
    (_, short_s, _, short_an), (long_label, long_s, _, long_an) = rows
    per_hour = (long_an[2] - short_an[2]) / ((long_s - short_s) / 3600.0)
    lines = ["| mix | decode only: peak RSS (MB) | whole analysis: peak RSS (MB) | "
             "analysis / decode | analysis CPU (s) | × real time | BPM found |",
             "|---|---|---|---|---|---|---|"]
    for label, seconds, dec, an in rows:
        lines.append(f"| {label} | {dec[2]} | {an[2]} | {an[2] / dec[2]:.1f}× | {an[3]:.0f} | "
                     f"{seconds / an[3]:.0f} | {an[1]} |")
    verdict = "met" if long_an[2] < TARGET_MB else "**not met**"
    lines += ["", f"The analysis keeps {per_hour:.0f} MB per hour of audio beyond its fixed "
              f"cost (10 min to {long_label}). Target: a two-hour mix analysed in under "
              f"{TARGET_MB} MB: **{verdict}** ({long_an[2]} MB for {long_label})."]
    section = "\n".join(lines)
    print()
    print(section)
    if args.write:
        write(section, args.hours, (load_start, os.getloadavg()))


def write(section: str, hours: float, load: tuple[tuple[float, ...], ...]) -> None:
    """Replace (or add) the ``## analysis memory`` section of BENCHMARKS.md."""
    command = ".venv/bin/python bench/analysis_memory.py --write" + (
        "" if hours == 2.0 else f" --hours {hours:g}")
    block = (f"## analysis memory\n\n{measured_on(load)} with:\n\n```sh\n{command}\n```\n\n"
             f"`{SOURCE}` of the dev corpus tiled into stereo 44.1 kHz FLAC mixes; each figure "
             "is one fresh process's peak resident set size (`VmHWM`).\n\n" + section + "\n\n")
    replace_section("analysis memory", block)


if __name__ == "__main__":
    main()
