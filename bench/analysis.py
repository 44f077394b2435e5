"""Analysis benchmark on the dev corpus: Taperoom's analyzer against the references.

For every track of ``../shared/corpus/dev`` (see its README), in one run:

* Taperoom: :func:`taperoom.analysis.analyzer.analyze_file` on the file (the WHOLE
  analysis: decoding, tempo, beats, downbeats, key, loudness, characteristics,
  waveforms), its CPU time measured with ``time.process_time`` in this process
  with BLAS limited to one thread, so the speed is x real time per core (after
  one untimed warm-up analysis, so one-time initialisation is not charged to the
  first track);
* the references, on the same mono 44.1 kHz signal (decoded once by essentia's
  MonoLoader, not timed): essentia ``RhythmExtractor2013`` (``multifeature``
  and ``degara``), essentia ``KeyExtractor`` (``edma`` and ``shaath``
  profiles), librosa ``beat.beat_track``. References without a downbeat tracker
  get the DJ-software default, a bar of four beats from the first beat.

Measures (mir_eval): tempo Acc1 (within 4 % of the annotated beat-unit tempo) and
Acc2 (also x2, x3, x1/2, x1/3), beat F-measure (+-70 ms, first 5 s trimmed),
downbeat F-measure (same), key MIREX weighted score on the unambiguous key tracks,
and speed. Prints the table of issue 12 (each measure's best reference in this run,
Taperoom, the target), every method's figures, the per-group figures and
Taperoom's speed per group (and its slowest track), and writes them to
BENCHMARKS.md (section ``## analysis``, with the date, the commit and the command).

Usage::

    PYTHONPATH=src .venv/bin/python bench/analysis.py [--no-refs] [--no-write] [ID...]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: set before numpy loads its BLAS

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import mir_eval  # noqa: E402
import numpy as np  # noqa: E402

from common import measured_on, replace_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
CORPUS = ROOT.parent / "shared" / "corpus" / "dev"
RATE = 44100
GROUPS = ("fof_muldjord", "bachviolin", "lmms", "hydrogen", "m21")
TARGETS = {"Acc1": 85.0, "Acc2": 97.0, "beat F": 80.0, "downbeat F": 65.0, "key": 0.90,
           "speed": 50.0}


def group_of(track_id: str) -> str:
    return next(g for g in GROUPS if track_id.startswith(g))


def load_truth(row: dict[str, str]) -> dict[str, object]:
    """Reference tempo, beats, downbeats and key of a manifest row."""
    beats, downbeats = [], []
    beats_file = CORPUS / f"{row['id']}.beats"
    if beats_file.is_file():
        for line in beats_file.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                beats.append(float(parts[0]))
                if parts[1].split(".")[0] == "1":
                    downbeats.append(float(parts[0]))
    key = row["key"] or None
    if key:
        key = key[0].upper() + key[1:]
    return {"bpm": float(row["bpm"]), "beats": np.array(beats), "downbeats": np.array(downbeats),
            "key": key, "key_ambiguous": row["key_ambiguous"] == "True"}


def tempo_acc(est: float | None, ref: float) -> tuple[float, float]:
    """(Acc1, Acc2) of one estimate: 1.0 or 0.0 each."""
    if not est:
        return 0.0, 0.0
    acc1 = abs(est - ref) <= 0.04 * ref
    acc2 = any(abs(est - ref * m) <= 0.04 * ref * m for m in (1, 2, 3, 1 / 2, 1 / 3))
    return float(acc1), float(acc2)


def beat_f(ref: np.ndarray, est: np.ndarray) -> float | None:
    if ref.size == 0:
        return None
    return float(mir_eval.beat.f_measure(mir_eval.beat.trim_beats(ref),
                                         mir_eval.beat.trim_beats(np.asarray(est, float))))


def bars_of_four(beats: np.ndarray) -> np.ndarray:
    return np.asarray(beats, float)[::4]


class Method:
    """One method's per-track figures."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: list[dict[str, object]] = []
        self.cpu = 0.0
        self.audio = 0.0

    def add(self, track: str, truth: dict[str, object], *, bpm: float | None,
            beats: np.ndarray | None, downbeats: np.ndarray | None, key: str | None,
            cpu: float, seconds: float) -> None:
        a1, a2 = tempo_acc(bpm, float(truth["bpm"]))  # type: ignore[arg-type]
        row: dict[str, object] = {"track": track, "group": group_of(track), "Acc1": a1,
                                  "Acc2": a2, "bpm": bpm}
        if beats is not None:
            row["beat F"] = beat_f(truth["beats"], beats)  # type: ignore[arg-type]
        if downbeats is not None:
            row["downbeat F"] = beat_f(truth["downbeats"], downbeats)  # type: ignore[arg-type]
        if key is not None and truth["key"] and not truth["key_ambiguous"]:
            row["key"] = float(mir_eval.key.weighted_score(truth["key"], key))
            row["key est"] = key
        row["cpu"] = cpu
        row["seconds"] = seconds
        self.rows.append(row)
        self.cpu += cpu
        self.audio += seconds

    def mean(self, field: str, group: str | None = None) -> float | None:
        vals = [float(r[field]) for r in self.rows  # type: ignore[arg-type]
                if r.get(field) is not None and (group is None or r["group"] == group)]
        if not vals:
            return None
        return float(np.mean(vals)) * (1.0 if field == "key" else 100.0)

    @property
    def speed(self) -> float | None:
        return self.audio / self.cpu if self.cpu > 0 else None

    def group_speed(self, group: str) -> tuple[float | None, float | None]:
        """(x real time of the group's tracks together, of its slowest track)."""
        rows = [r for r in self.rows if r["group"] == group]
        cpu = sum(float(r["cpu"]) for r in rows)  # type: ignore[arg-type]
        audio = sum(float(r["seconds"]) for r in rows)  # type: ignore[arg-type]
        slowest = min((float(r["seconds"]) / float(r["cpu"])  # type: ignore[arg-type]
                       for r in rows if float(r["cpu"]) > 0), default=None)  # type: ignore[arg-type]
        return (audio / cpu if cpu > 0 else None), slowest


def fmt(x: float | None, key: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:.3f}" if key else f"{x:.1f}"


def run(ids: list[str], refs: bool) -> list[Method]:
    from taperoom.analysis.analyzer import analyze_file

    with open(CORPUS / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if not ids or r["id"] in ids]
    ours = Method("Taperoom (whole analysis)")
    methods = [ours]
    ref_fns: dict[str, Callable[[np.ndarray], dict[str, object]]] = {}
    if refs:
        import essentia.standard as es
        import librosa

        def rhythm2013(method: str) -> Callable[[np.ndarray], dict[str, object]]:
            algo = es.RhythmExtractor2013(method=method)

            def f(y: np.ndarray) -> dict[str, object]:
                bpm, beats, *_ = algo(y)
                return {"bpm": float(bpm), "beats": np.asarray(beats),
                        "downbeats": bars_of_four(np.asarray(beats))}
            return f

        def key_extractor(profile: str) -> Callable[[np.ndarray], dict[str, object]]:
            algo = es.KeyExtractor(profileType=profile)

            def f(y: np.ndarray) -> dict[str, object]:
                k, scale, _ = algo(y)
                return {"key": f"{k} {scale}"}
            return f

        def beat_track(y: np.ndarray) -> dict[str, object]:
            tempo, beats = librosa.beat.beat_track(y=y, sr=RATE, units="time")
            return {"bpm": float(np.atleast_1d(tempo)[0]), "beats": np.asarray(beats),
                    "downbeats": bars_of_four(np.asarray(beats))}

        ref_fns = {
            "essentia RhythmExtractor2013 multifeature": rhythm2013("multifeature"),
            "essentia RhythmExtractor2013 degara": rhythm2013("degara"),
            "essentia KeyExtractor edma": key_extractor("edma"),
            "essentia KeyExtractor shaath": key_extractor("shaath"),
            "librosa beat_track": beat_track,
        }
        methods += [Method(name) for name in ref_fns]
    # one untimed analysis first: one-time initialisation (lazy imports, FFT plans,
    # filter designs) is not charged to whichever track comes first
    analyze_file(CORPUS / "smoke" / "madmom_sample.wav")
    for row in rows:
        truth = load_truth(row)
        path = CORPUS / row["file"]
        t0 = time.process_time()
        result = analyze_file(path)
        cpu = time.process_time() - t0
        basic = result.basic_features()
        key = None if basic["key"] is None else f"{basic['key_name']} {basic['mode_name']}"
        ours.add(row["id"], truth, bpm=basic["tempo"], beats=result.rhythm.beats,
                 downbeats=result.rhythm.downbeats, key=key, cpu=cpu,
                 seconds=result.duration)
        print(f"{row['id'][:40]:40s} bpm {basic['tempo']} (ref {row['bpm']}) key {key} "
              f"(ref {row['key'] or '-'}) {result.duration / cpu:.0f}x", flush=True)
        if refs:
            import essentia.standard as es
            y = es.MonoLoader(filename=str(path), sampleRate=RATE)()
            for method in methods[1:]:
                t0 = time.process_time()
                out = ref_fns[method.name](y)
                cpu = time.process_time() - t0
                method.add(row["id"], truth, bpm=out.get("bpm"),  # type: ignore[arg-type]
                           beats=out.get("beats"), downbeats=out.get("downbeats"),  # type: ignore[arg-type]
                           key=out.get("key"), cpu=cpu, seconds=y.size / RATE)  # type: ignore[arg-type]
    return methods


MEASURES = (("tempo Acc1 (±4 %)", "Acc1", False),
            ("tempo Acc2 (octave errors allowed)", "Acc2", False),
            ("beat F-measure (±70 ms)", "beat F", False),
            ("downbeat F-measure", "downbeat F", False),
            ("key, MIREX weighted score (unambiguous tracks)", "key", True))


def issue_table(methods: list[Method]) -> str:
    """The issue's table: each measure's best reference, Taperoom and the target."""
    ours, refs = methods[0], methods[1:]
    lines = ["| measure | best reference in this run | Taperoom | target | met |",
             "|---|---|---|---|---|"]
    for label, field, is_key in MEASURES:
        cands = [(m.mean(field), m.name) for m in refs if m.mean(field) is not None]
        best = max(cands, default=None)
        mine = ours.mean(field)
        target = TARGETS[field]
        met = "yes" if mine is not None and mine >= target else "no"
        ref_cell = f"{fmt(best[0], is_key)} ({best[1]})" if best else "—"
        goal = f"{target:.2f}" if is_key else f"{target:.0f}"
        lines.append(f"| {label} | {ref_cell} | {fmt(mine, is_key)} | ≥ {goal} | {met} |")
    speeds = [ours.group_speed(g) for g in GROUPS if any(r["group"] == g for r in ours.rows)]
    slowest = min((s for _, s in speeds if s is not None), default=None)
    lines.append(f"| whole analysis speed (× real time per core; slowest track) | — | "
                 f"{fmt(ours.speed)} ({fmt(slowest)}) | ≥ {TARGETS['speed']:.0f} | "
                 f"{'yes' if slowest is not None and slowest >= TARGETS['speed'] else 'no'} |")
    return "\n".join(lines)


def tables(methods: list[Method]) -> str:
    lines = [issue_table(methods), "", "Every method:", "",
             "| method | tempo Acc1 (±4 %) | tempo Acc2 | beat F (±70 ms) | downbeat F | "
             "key weighted (unambiguous) | speed (× real time per core) |",
             "|---|---|---|---|---|---|---|"]
    for m in methods:
        rhythm = any("beat F" in r for r in m.rows)
        keyed = any("key" in r for r in m.rows)
        lines.append(
            f"| {m.name} | {fmt(m.mean('Acc1')) if rhythm else '—'} | "
            f"{fmt(m.mean('Acc2')) if rhythm else '—'} | {fmt(m.mean('beat F'))} | "
            f"{fmt(m.mean('downbeat F'))} | {fmt(m.mean('key'), True) if keyed else '—'} | "
            f"{fmt(m.speed)} |")
    lines.append(f"| target | ≥ {TARGETS['Acc1']:.0f} | ≥ {TARGETS['Acc2']:.0f} | "
                 f"≥ {TARGETS['beat F']:.0f} | ≥ {TARGETS['downbeat F']:.0f} | "
                 f"≥ {TARGETS['key']:.2f} | ≥ {TARGETS['speed']:.0f} |")
    lines += ["", "Per group (tempo Acc1 / Acc2 / beat F / downbeat F, key weighted where the "
              "group has unambiguous keys; Taperoom's speed as × real time per core of the "
              "group, and of its slowest track):", "",
              "| method | " + " | ".join(GROUPS) + " |", "|---|" + "---|" * len(GROUPS)]
    for m in methods:
        cells = []
        for g in GROUPS:
            parts = []
            if any("beat F" in r for r in m.rows):
                parts.append("/".join(fmt(m.mean(f, g)) for f in
                                      ("Acc1", "Acc2", "beat F", "downbeat F")))
            k = m.mean("key", g)
            if k is not None:
                parts.append(f"key {k:.3f}")
            cells.append(", ".join(parts) or "—")
        lines.append(f"| {m.name} | " + " | ".join(cells) + " |")
    ours = methods[0]
    cells = []
    for g in GROUPS:
        speed, slowest = ours.group_speed(g)
        cells.append(f"{fmt(speed)} ({fmt(slowest)})")
    lines.append(f"| {ours.name}: speed | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(section: str, n_tracks: int, minutes: float, refs: bool,
          load: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
    command = ("nice -n 10 .venv/bin/python bench/analysis.py" + ("" if refs else " --no-refs"))
    cores = "2 shared cores: CPU times grow with the machine's load"
    head = (f"## analysis\n\n{measured_on(load, cores)} with:\n\n"
            f"```sh\n{command}\n```\n\n"
            f"`bench/analysis.py` on the dev corpus ({n_tracks} tracks, "
            f"{minutes:.0f} min; `../shared/corpus/dev`), mir_eval, every method in the same "
            "run. Taperoom's speed is the CPU time of the whole analysis of each file "
            "(decoding, tempo, beats, downbeats, key, loudness, characteristics, waveforms) "
            "in one process with BLAS limited to one thread, after one untimed warm-up "
            "analysis of the smoke sample; the references are timed on the already-decoded "
            "signal. The key score counts the 10 tracks with an "
            "unambiguous key (3 solo violin, 7 rendered scores).\n\n")
    replace_section("analysis", head + section + "\n\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="track ids (default: all)")
    parser.add_argument("--no-refs", action="store_true", help="skip the references")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args()
    if not (CORPUS / "manifest.csv").is_file():
        sys.exit(f"dev corpus not found at {CORPUS}")
    load_start = os.getloadavg()
    methods = run(args.ids, not args.no_refs)
    load = (load_start, os.getloadavg())
    section = tables(methods)
    print()
    print(section)
    if not args.no_write and not args.ids:
        write(section, len(methods[0].rows), methods[0].audio / 60.0, not args.no_refs, load)


if __name__ == "__main__":
    main()
