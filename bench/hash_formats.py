"""Per-format cost of ``audio_hash``: container walk against PyAV demuxing.

Times, on the same files and in the same run, :func:`audio_hash_method` (the
container walkers of :mod:`taperoom.audio.containers`, demuxing only what they
refuse), :func:`audio_hash_demuxed` (PyAV, the reference) and :func:`raw_hash`
(XXH3-128 over every byte, the floor), and checks that the two audio hashes
agree. Each file is read once before (page cache warm); the three functions run
in turn on one file, ``--repeat`` times, and the median per file is kept. One
thread.

The files: the audio files of ``--corpus`` (default: the shared corpus's
``scanner/real_music_tagged``, recursively) and, with ``--library DIR``, a
random sample of ``--sample`` files of a library such as the one
``bench/library_scan.py --library DIR --keep`` builds.

Usage::

    .venv/bin/python bench/hash_formats.py [--library /tmp/hashlib] [--sample 300]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from taperoom.audio.hashing import (  # noqa: E402
    audio_hash_demuxed,
    audio_hash_method,
    raw_hash,
)
from taperoom.errors import MediaError  # noqa: E402

CORPUS = (ROOT.parent / "shared" / "corpus" / "scanner" / "real_music_tagged").resolve()
AUDIO_SUFFIXES = {".mp3", ".m4a", ".ogg", ".opus", ".flac", ".wav", ".aiff", ".aif"}


def audio_files(folder: Path) -> list[Path]:
    """Audio files under `folder` (by suffix), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower()
                  in AUDIO_SUFFIXES)


def timed(fn: Callable[[Path], object], path: Path) -> float:
    """Seconds one call of `fn(path)` takes (MediaError counts as a result)."""
    start = time.perf_counter()
    with contextlib.suppress(MediaError):
        fn(path)
    return time.perf_counter() - start


def measure(paths: list[Path], repeat: int) -> dict[str, dict[str, list[float]]]:
    """Per-format lists of per-file medians (ms) and sizes (MB); prints mismatches."""
    stats: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass
        try:
            fast, method = audio_hash_method(path)
            ref = audio_hash_demuxed(path)
        except MediaError:
            fast, method, ref = "error", "error", "error"
        fmt = {"aif": "aiff"}.get(path.suffix.lower()[1:], path.suffix.lower()[1:])
        row = stats[fmt]
        row["mb"].append(path.stat().st_size / 1e6)
        row["walked"].append(float(method not in ("demux", "error")))
        row["equal"].append(float(fast == ref))
        if fast != ref:
            print(f"  MISMATCH {path}: {fast} != {ref}", flush=True)
        samples: dict[str, list[float]] = defaultdict(list)
        for _ in range(repeat):
            samples["fast"].append(timed(audio_hash_method, path))
            samples["demux"].append(timed(audio_hash_demuxed, path))
            samples["raw"].append(timed(raw_hash, path))
        for key, values in samples.items():
            row[key].append(statistics.median(values) * 1000)
    return stats


def report(title: str, stats: dict[str, dict[str, list[float]]]) -> None:
    """Print one Markdown table of `stats`."""
    print(f"\n### {title}\n")
    print("| format | files | MB per file | walked | fast ms/file | PyAV ms/file "
          "| PyAV / fast | raw_hash ms/file | equal digests |")
    print("|---|---|---|---|---|---|---|---|---|")
    everything: dict[str, list[float]] = defaultdict(list)
    for fmt in sorted(stats, key=lambda f: -len(stats[f]["mb"])):
        row = stats[fmt]
        for key, values in row.items():
            everything[key].extend(values)
        _line(fmt, row)
    _line("**all**", everything)


def _line(name: str, row: dict[str, list[float]]) -> None:
    n = len(row["mb"])
    fast, demux = statistics.fmean(row["fast"]), statistics.fmean(row["demux"])
    print(f"| {name} | {n} | {statistics.fmean(row['mb']):.2f} | {sum(row['walked']):.0f}/{n} "
          f"| {fast:.2f} | {demux:.2f} | {demux / fast:.1f}× | "
          f"{statistics.fmean(row['raw']):.2f} | {sum(row['equal']):.0f}/{n} |")


def main(argv: list[str] | None = None) -> None:
    """Measure and print the tables."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=CORPUS, help="folder of corpus files")
    p.add_argument("--library", type=Path, default=None,
                   help="library folder (e.g. one built by bench/library_scan.py --keep)")
    p.add_argument("--sample", type=int, default=300, help="library files to sample")
    p.add_argument("--repeat", type=int, default=5, help="timed calls per file and function")
    p.add_argument("--seed", type=int, default=1, help="seed of the library sample")
    args = p.parse_args(argv)
    corpus = audio_files(args.corpus)
    print(f"corpus: {len(corpus)} files from {args.corpus}", flush=True)
    report(f"Corpus ({args.corpus.name}, {len(corpus)} files)", measure(corpus, args.repeat))
    if args.library:
        files = audio_files(args.library)
        sample = random.Random(args.seed).sample(files, min(args.sample, len(files)))
        print(f"\nlibrary: {len(sample)} of {len(files)} files from {args.library}", flush=True)
        report(f"Library sample ({len(sample)} files)", measure(sample, args.repeat))


if __name__ == "__main__":
    main()
