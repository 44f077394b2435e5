"""Rhythm evaluation on the dev corpus: taperoom.analysis.rhythm against the references.

Decodes every track of ``../shared/corpus/dev`` once (PyAV, mono 44.1 kHz float32,
block by block), feeds the blocks to :class:`~taperoom.analysis.rhythm.RhythmAccumulator`
and gives the same signal to the references: essentia ``RhythmExtractor2013``
(``multifeature`` and ``degara``) and librosa ``beat.beat_track``. Measures, with
mir_eval:

* tempo Acc1 (within 4 % of the annotated ``bpm``, the beat unit of the time signature)
  and Acc2 (also at x2, x3, x1/2, x1/3);
* beat F-measure (±70 ms, the first 5 s trimmed as ``mir_eval.beat.evaluate`` does);
* downbeat F-measure (±70 ms, same trimming) — the references have no downbeat tracker;
  they are given the usual DJ-software default, a bar of four beats from the first beat;
* speed: CPU seconds of the rhythm analysis (accumulator + estimation, decoding
  excluded) per second of audio, as x real time per core.

``--logo`` checks that the analyzer's few chosen constants generalise (the width of
the tempo prior's tails outside the DJ range and the weight of the high-frequency
content in the novelty, :mod:`taperoom.analysis.tempo`; the grid's share of the onset
strength, :mod:`taperoom.analysis.beats`; the first-audible-beat and four-beats-per-bar
bonuses and the half-beat margin of :mod:`taperoom.analysis.downbeats`): each is varied
over a few values, the others kept as shipped, on every track's features; then, for
each group of the corpus held out in turn (fof_muldjord, bachviolin, lmms, hydrogen,
m21), each constant takes the value with the best mean of Acc1, Acc2, beat F and
downbeat F on the other groups and the held-out group is scored with them. It prints
the figures of every value, the held-out figures and the shipped (in-sample) ones.

Usage::

    PYTHONPATH=src .venv/bin/python bench/rhythm_eval.py [--no-refs] [--cache DIR] [--logo] [ID...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import av
import mir_eval
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "dev"
RATE = 44100
BLOCK = 65536


def decode(path: Path) -> np.ndarray:
    """Mono float32 PCM at 44.1 kHz (PyAV, FFmpeg's resampler)."""
    parts: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            parts.append(out.to_ndarray().reshape(-1))
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def load_truth(stem: str) -> tuple[dict, np.ndarray, np.ndarray]:
    meta = json.loads((CORPUS / f"{stem}.json").read_text())
    table = np.loadtxt(CORPUS / f"{stem}.beats", ndmin=2)
    return meta, table[:, 0], table[table[:, 1] == 1, 0]


def tempo_ok(est: float | None, ref: float) -> tuple[bool, bool]:
    if est is None:
        return False, False
    acc1 = abs(est - ref) <= 0.04 * ref
    acc2 = any(abs(est - ref * f) <= 0.04 * ref * f for f in (1, 2, 3, 1 / 2, 1 / 3))
    return acc1, acc2


def fmeasure(ref: np.ndarray, est: np.ndarray) -> float:
    ref = mir_eval.beat.trim_beats(np.asarray(ref, float))
    est = mir_eval.beat.trim_beats(np.asarray(est, float))
    if ref.size == 0:
        return float("nan")
    return float(mir_eval.beat.f_measure(ref, est, f_measure_threshold=0.07))


def run_ours(pcm: np.ndarray, bpm_range: tuple[float, float]) -> tuple[dict, float]:
    from taperoom.analysis.rhythm import RhythmAccumulator, estimate_rhythm
    t0 = time.process_time()
    acc = RhythmAccumulator(RATE)
    for i in range(0, pcm.size, BLOCK):
        acc.feed(pcm[i:i + BLOCK])
    res = estimate_rhythm(acc.finish(), bpm_range=bpm_range)
    cpu = time.process_time() - t0
    return {"bpm": res.bpm, "beats": res.beats.tolist(), "downbeats": res.downbeats.tolist(),
            "constant": res.constant_tempo, "per_bar": res.beats_per_bar,
            "consistency": res.beat_consistency, "phrase": res.first_phrase_beat_no}, cpu


GROUPS = ("fof_muldjord", "bachviolin", "lmms", "hydrogen", "m21")
#: The analyzer's chosen constants (module, name) and the values tried for each.
LOGO_GRID: dict[tuple[str, str], tuple[float, ...]] = {
    ("tempo", "PRIOR_TAIL_OCTAVES"): (0.05, 0.075, 0.1, 0.15, 0.2),
    ("tempo", "HFC_WEIGHT"): (1.0, 0.7, 0.5, 0.35),
    ("beats", "GRID_SUPPORT"): (0.5, 0.6, 0.7, 0.8, float("inf")),
    ("downbeats", "START_BONUS"): (0.0, 0.25, 0.5, 1.0),
    ("downbeats", "FOUR_BONUS"): (0.0, 0.1, 0.2, 0.3),
    # "never" first: where no other group has music in three, ties keep the tempo
    ("downbeats", "HALF_BEAT_MARGIN"): (float("inf"), 1.5, 1.25),
}


def leave_one_group_out(features: dict, truth: dict, bpm_range: tuple[float, float]) -> None:
    """Print in-sample and leave-one-group-out figures for the constants of :data:`LOGO_GRID`.

    One constant at a time is varied over its values, the others kept at the shipped
    setting (a full grid would take hours). For each held-out group, every constant
    takes the value with the best mean of Acc1, Acc2, beat F and downbeat F on the
    other groups; the held-out group is then scored with those values together.
    """
    import importlib

    from taperoom.analysis import rhythm

    mods = {m: importlib.import_module(f"taperoom.analysis.{m}") for m, _ in LOGO_GRID}
    shipped = {key: getattr(mods[key[0]], key[1]) for key in LOGO_GRID}

    def measures(stem: str, res: object) -> np.ndarray:
        meta, ref_beats, ref_down = truth[stem]
        a1, a2 = tempo_ok(res.bpm, float(meta["bpm"]))  # type: ignore[attr-defined]
        return np.array([a1, a2, fmeasure(ref_beats, res.beats),  # type: ignore[attr-defined]
                         fmeasure(ref_down, res.downbeats)], float)  # type: ignore[attr-defined]

    def run(setting: dict[tuple[str, str], float], stems: list[str]) -> dict[str, np.ndarray]:
        try:
            for (m, name), v in setting.items():
                setattr(mods[m], name, v)
            return {s: measures(s, rhythm.estimate_rhythm(features[s], bpm_range=bpm_range))
                    for s in stems}
        finally:
            for (m, name), v in shipped.items():
                setattr(mods[m], name, v)

    def mean(rows: dict[str, np.ndarray], keep: object) -> np.ndarray:
        sel = [v for s, v in rows.items() if keep(s)]  # type: ignore[operator]
        return np.nanmean(np.array(sel), axis=0) if sel else np.full(4, np.nan)

    def line(name: str, rows: dict[str, np.ndarray]) -> None:
        cells = [f"{name:24s}"]
        for g in ("ALL", *GROUPS):
            m = mean(rows, lambda s, g=g: g == "ALL" or s.startswith(g)) * 100
            cells.append(f"{g[:6]} " + "/".join(f"{x:.1f}" for x in m))
        print("  ".join(cells))

    stems = list(features)
    base = run({}, stems)
    table = {(key, v): (base if v == shipped[key] else run({key: v}, stems))
             for key, values in LOGO_GRID.items() for v in values}
    print("\n(Acc1/Acc2/beat F/downbeat F per group)")
    for (key, v), rows in table.items():
        line(f"{key[1]}={v}", rows)
    held: dict[str, np.ndarray] = {}
    for g in GROUPS:
        pick = {key: max(values, key=lambda v, key=key, g=g: float(np.nanmean(
                    mean(table[(key, v)], lambda s, g=g: not s.startswith(g)))))
                for key, values in LOGO_GRID.items()}
        print(f"held out {g:13s}: chosen on the rest "
              + ", ".join(f"{k[1]}={v}" for k, v in pick.items()))
        held.update(run(pick, [s for s in stems if s.startswith(g)]))
    line("leave-one-group-out", held)
    line("shipped", base)


def run_refs(pcm: np.ndarray) -> dict:
    import essentia.standard as es
    import librosa
    out = {}
    for method in ("multifeature", "degara"):
        t0 = time.process_time()
        bpm, beats, *_ = es.RhythmExtractor2013(method=method)(pcm)
        out[method] = {"bpm": float(bpm), "beats": [float(b) for b in beats],
                       "cpu": time.process_time() - t0}
    t0 = time.process_time()
    y = librosa.resample(pcm, orig_sr=RATE, target_sr=22050)
    tempo, beats = librosa.beat.beat_track(y=y, sr=22050, units="time")
    out["librosa"] = {"bpm": float(np.atleast_1d(tempo)[0]), "beats": [float(b) for b in beats],
                      "cpu": time.process_time() - t0}
    for r in out.values():
        r["downbeats"] = r["beats"][::4]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("ids", nargs="*", help="track ids (default: every annotated track)")
    ap.add_argument("--no-refs", action="store_true", help="skip the reference trackers")
    ap.add_argument("--cache", type=Path,
                    help="directory caching decoded PCM and reference results")
    ap.add_argument("--bpm-range", type=float, nargs=2, default=(70.0, 180.0))
    ap.add_argument("--json", type=Path, help="write per-track results here")
    ap.add_argument("--quiet", action="store_true", help="no per-track lines")
    ap.add_argument("--logo", action="store_true",
                    help="also run the leave-one-group-out check of the chosen constants")
    args = ap.parse_args(argv)
    if not CORPUS.is_dir():
        print(f"corpus not found: {CORPUS}", file=sys.stderr)
        return 2
    stems = args.ids or sorted(p.stem for p in CORPUS.glob("*.json"))
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    systems = ["taperoom"] + ([] if args.no_refs else ["multifeature", "degara", "librosa"])
    rows: dict[str, dict[str, dict]] = {}
    feats: dict = {}
    truths: dict = {}
    audio_s = cpu_s = 0.0
    for stem in stems:
        meta, ref_beats, ref_down = load_truth(stem)
        pcm_file = args.cache / f"{stem}.npy" if args.cache else None
        if pcm_file and pcm_file.exists():
            pcm = np.load(pcm_file)
        else:
            pcm = decode(CORPUS / meta["file"])
            if pcm_file:
                np.save(pcm_file, pcm)
        ours, cpu = run_ours(pcm, tuple(args.bpm_range))
        if args.logo:
            from taperoom.analysis.rhythm import RhythmAccumulator
            acc = RhythmAccumulator(RATE)
            for i in range(0, pcm.size, BLOCK):
                acc.feed(pcm[i:i + BLOCK])
            feats[stem] = acc.finish()
            truths[stem] = (meta, ref_beats, ref_down)
        audio_s += pcm.size / RATE
        cpu_s += cpu
        results = {"taperoom": ours}
        if not args.no_refs:
            ref_file = args.cache / f"{stem}.refs.json" if args.cache else None
            if ref_file and ref_file.exists():
                refs = json.loads(ref_file.read_text())
            else:
                refs = run_refs(pcm)
                if ref_file:
                    ref_file.write_text(json.dumps(refs))
            results.update(refs)
        rows[stem] = {}
        for name, r in results.items():
            a1, a2 = tempo_ok(r["bpm"], float(meta["bpm"]))
            rows[stem][name] = {"acc1": a1, "acc2": a2, "beat_f": fmeasure(ref_beats, r["beats"]),
                                "down_f": fmeasure(ref_down, r["downbeats"]), "bpm": r["bpm"]}
        if not args.quiet:
            o = rows[stem]["taperoom"]
            extra = (f" const={ours['constant']!s:5} bar={ours['per_bar']} "
                     f"cons={ours['consistency']}")
            refs_txt = "  ".join(
                f"{n[:5]} {rows[stem][n]['bpm']:6.1f}/{rows[stem][n]['beat_f']:.2f}"
                for n in systems[1:])
            print(f"{stem[:34]:34s} ref {float(meta['bpm']):6.1f}  ours {o['bpm'] or 0:7.2f} "
                  f"F {o['beat_f']:.2f} DF {o['down_f']:.2f}{extra}  {refs_txt}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    groups: dict[str, list[str]] = defaultdict(list)
    for stem in rows:
        groups[stem.split("_")[0]].append(stem)
    print()
    print(f"{'system':14s} {'group':12s} {'n':>3s} {'Acc1':>6s} {'Acc2':>6s} "
          f"{'beat F':>7s} {'down F':>7s}")
    for name in systems:
        for g, members in [("ALL", list(rows)), *sorted(groups.items())]:
            vals = np.array([[rows[s][name][k] for k in ("acc1", "acc2", "beat_f", "down_f")]
                             for s in members], float)
            m = np.nanmean(vals, axis=0) * 100
            print(f"{name:14s} {g:12s} {len(members):3d} {m[0]:6.1f} {m[1]:6.1f} "
                  f"{m[2]:7.1f} {m[3]:7.1f}")
    if args.logo:
        leave_one_group_out(feats, truths, tuple(args.bpm_range))
    print(f"\nspeed: rhythm analysis {audio_s / max(cpu_s, 1e-9):.0f}x real time per core "
          f"({cpu_s:.1f} CPU s for {audio_s / 60:.1f} min of audio; decoding excluded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
