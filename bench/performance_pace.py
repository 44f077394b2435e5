"""Pace of the solo-violin performances of the dev corpus: annotated beats, played notes, our beats.

The tempo annotations of the Bach violin recordings (``bachviolin_*``, silver: an
automatic score-to-audio alignment) count the beats of the score; a performer hurries
the running notes and takes time at the ends of phrases. This script checks, per
window of 10 s, three counts against each other:

* the annotated beats;
* the notes played, from a pitch track (pYIN: Mauch & Dixon 2014, "pYIN: a fundamental
  frequency estimator using probabilistic threshold distributions", ICASSP; librosa's
  ``pyin``, 22.05 kHz, hop 256): a note is a run of at least 4 voiced frames (46 ms)
  on one equal-tempered semitone, so repeated notes count once and the counts are a
  little low;
* the beats of Taperoom's rhythm analysis (:mod:`taperoom.analysis.rhythm`).

It prints per track the mean notes per annotated beat and their spread over the
windows (steady when the annotation counts what is played), the annotated and our beat
counts over the annotated span, the annotation's mean tempo (beats over time) and its
median-interval tempo (the corpus's ``bpm``), the mean note rate over that span and
the note rate of the runs (60 over the mean interval between note onsets near their
median, which the running notes dominate), and the periodicity of the note onsets: the
tempo Taperoom's salience (:func:`taperoom.analysis.tempo.choose_tempo`) picks for the
onsets as a novelty, with 140-200 per minute (two notes of the runs) as its range. Runs
faster than the mean mean time taken between them.

As a control of that salience, it also picks a tempo, within 20 % of the annotated one,
for the annotated beats themselves and for the note onsets, each as a novelty: the same
estimator finds the annotated tempo in the annotated beats, so a faster tempo in the
notes lies in how they are played, not in the estimator.

Usage::

    PYTHONPATH=src .venv/bin/python bench/performance_pace.py [--window 10] [--write]

``--write`` replaces the "performance pace (solo violin)" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from common import measured_on, replace_section
from rhythm_eval import CORPUS, RATE, decode, run_ours

SECTION = "performance pace (solo violin)"

#: Pitch track: sample rate (Hz), hop (samples), frequency range (Hz) of the violin's
#: fundamentals (G3 = 196 Hz up), shortest note (frames).
PYIN_RATE = 22050
PYIN_HOP = 256
PYIN_RANGE = (180.0, 2000.0)
MIN_NOTE_FRAMES = 4


def note_onsets(pcm: np.ndarray) -> np.ndarray:
    """Onset times (s) of the notes of a monophonic pitch track of `pcm` (44.1 kHz)."""
    import librosa

    y = librosa.resample(pcm, orig_sr=RATE, target_sr=PYIN_RATE)
    f0, voiced, _ = librosa.pyin(y, fmin=PYIN_RANGE[0], fmax=PYIN_RANGE[1], sr=PYIN_RATE,
                                 hop_length=PYIN_HOP, frame_length=2048)
    semis = np.where(voiced, np.round(69 + 12 * np.log2(np.nan_to_num(f0, nan=440.0) / 440.0)),
                     -1).astype(int)
    edges = np.flatnonzero(np.diff(np.concatenate([[-2], semis, [-2]])))
    starts, ends = edges[:-1], edges[1:]
    keep = (semis[starts] >= 0) & (ends - starts >= MIN_NOTE_FRAMES)
    return starts[keep] * PYIN_HOP / PYIN_RATE


def run_pace(onsets: np.ndarray, t0: float, t1: float) -> float | None:
    """Note rate of the runs (notes per minute) from `t0` to `t1` (s): 60 over the mean
    of the intervals between consecutive note onsets that lie within a third of an
    octave of their median (the running notes; the mean resolves what the 11.6 ms
    frames of the pitch track quantise)."""
    ioi = np.diff(onsets[(onsets >= t0) & (onsets <= t1)])
    if ioi.size == 0:
        return None
    med = np.median(ioi)
    runs = ioi[(ioi >= med * 2 ** -(1 / 3)) & (ioi <= med * 2 ** (1 / 3))]
    return float(60.0 / runs.mean())


def onset_periodicity(onsets: np.ndarray, duration: float,
                      bpm_range: tuple[float, float] = (140.0, 200.0)) -> float | None:
    """Tempo (per minute) of event times as a novelty function (unit impulses smoothed
    by a Gaussian of 2 frames, 100 frames per second), chosen by Taperoom's salience
    with `bpm_range` as the range of its prior."""
    from scipy.ndimage import gaussian_filter1d

    from taperoom.analysis.tempo import choose_tempo, tempo_salience

    rate = 100.0
    x = np.zeros(int(duration * rate) + 1)
    x[np.clip(np.round(onsets * rate).astype(int), 0, x.size - 1)] = 1.0
    x = gaussian_filter1d(x, 2.0)
    return choose_tempo(tempo_salience(x / x.std(), rate), bpm_range)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--window", type=float, default=10.0, help="window length (s)")
    ap.add_argument("--write", action="store_true", help=f'replace "{SECTION}" in BENCHMARKS.md')
    args = ap.parse_args(argv)
    load_start = os.getloadavg()
    rows = []
    for meta_path in sorted(CORPUS.glob("bachviolin_*.json")):
        meta = json.loads(meta_path.read_text())
        stem = meta_path.stem
        audio = CORPUS / meta["file"]
        beats = np.loadtxt(CORPUS / f"{stem}.beats", ndmin=2)[:, 0]
        pcm = decode(audio)
        onsets = note_onsets(pcm)
        ours = np.asarray(run_ours(pcm, (70.0, 180.0))[0]["beats"])
        t0, t1 = float(beats[0]), float(beats[-1])
        per_window = []
        for s in np.arange(0.0, t1, args.window):
            n_ann = int(((beats >= s) & (beats < s + args.window)).sum())
            n_notes = int(((onsets >= s) & (onsets < s + args.window)).sum())
            n_ours = int(((ours >= s) & (ours < s + args.window)).sum())
            if n_ann >= 4:
                per_window.append((s, n_ann, n_notes, n_ours))
        ratios = np.array([n / a for _, a, n, _ in per_window])
        in_span = onsets[(onsets >= t0) & (onsets <= t1)]
        near = (meta["bpm"] / 1.2, meta["bpm"] * 1.2)
        notes_per_beat = in_span.size / (beats.size - 1)
        ours_in = int(((ours >= t0) & (ours <= t1)).sum())
        row = {
            "track": stem, "metre": meta.get("time_signature"),
            "annotated bpm (median interval)": meta["bpm"],
            "annotated mean tempo": 60.0 * (beats.size - 1) / (t1 - t0),
            "annotated beats": int(beats.size), "our beats in that span": ours_in,
            "notes per annotated beat": notes_per_beat,
            "per window min": float(ratios.min()), "per window max": float(ratios.max()),
            "mean note rate": 60.0 * in_span.size / (t1 - t0),
            "note rate of the runs": run_pace(onsets, t0, t1),
            "onset periodicity": onset_periodicity(onsets, pcm.size / RATE),
            "beats' salience tempo": onset_periodicity(beats, pcm.size / RATE, near),
            "notes' salience tempo": onset_periodicity(onsets, pcm.size / RATE, near),
        }
        rows.append(row)
        print(f"\n{stem} ({row['metre']}): window, annotated beats, notes, our beats")
        for s, a, n, o in per_window:
            print(f"  {s:5.0f} s  {a:3d}  {n:3d}  {o:3d}")
    table = table_lines(rows)
    print()
    print("\n".join(table))
    if args.write:
        write(table, rows, args.window, (load_start, os.getloadavg()))
    return 0


def _bpm(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def table_lines(rows: list[dict]) -> list[str]:
    """The summary table (Markdown) of the tracks' rows."""
    lines = ["| track | metre | annotated bpm (median interval) | annotated mean tempo | "
             "notes per minute: mean / runs | note-onset periodicity (two notes per minute) | "
             "notes per annotated beat (window min-max) | annotated beats | "
             "our beats in that span | salience tempo (within 20 %): annotated beats / notes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        runs = r["note rate of the runs"]
        pace = f"{r['mean note rate']:.0f} / " + (f"{runs:.0f}" if runs else "—")
        control = (_bpm(r["beats' salience tempo"]) + " / "
                   + _bpm(r["notes' salience tempo"]))
        lines.append(
            f"| {r['track'].removeprefix('bachviolin_john-garner_')} | {r['metre']} | "
            f"{r['annotated bpm (median interval)']:.2f} | {r['annotated mean tempo']:.2f} | "
            f"{pace} | {r['onset periodicity'] or float('nan'):.1f} | "
            f"{r['notes per annotated beat']:.2f} ({r['per window min']:.2f}-"
            f"{r['per window max']:.2f}) | {r['annotated beats']} | "
            f"{r['our beats in that span']} | {control} |")
    return lines


def write(table: list[str], rows: list[dict], window: float,
          load: tuple[tuple[float, ...], ...]) -> None:
    """Replace (or add) the section :data:`SECTION` of BENCHMARKS.md."""
    command = "PYTHONPATH=src .venv/bin/python bench/performance_pace.py --write" + (
        "" if window == 10.0 else f" --window {window:g}")
    per_track = []
    for r in rows:
        runs = r["note rate of the runs"]
        faster = (f"the runs go {100.0 * (runs / r['mean note rate'] - 1.0):.1f} % faster "
                  "than the mean note rate" if runs else "no runs")
        per_track.append(
            f"- {r['track'].removeprefix('bachviolin_john-garner_')}: {faster}; Taperoom "
            f"has {r['our beats in that span']} beats where the annotation has "
            f"{r['annotated beats']} ({r['notes per annotated beat']:.2f} notes per "
            "annotated beat).")
    block = (
        f"## {SECTION}\n\n{measured_on(load)} with:\n\n```sh\n{command}\n```\n\n"
        "Per window of "
        f"{window:g} s, the annotated beats of the solo-violin recordings of the dev corpus "
        "(silver: an automatic score-to-audio alignment), the notes played (a pYIN pitch "
        "track; a note is 46 ms or more on one semitone, so repeated notes count once) and "
        "Taperoom's beats. Steady notes per annotated beat in every window mean that the "
        "annotation counts what is played, so its mean tempo is right; runs faster than "
        "the mean mean that the performer takes time between them (where a movement "
        "mixes note values, the runs are its shortest notes and the mean also counts the "
        "longer ones). \"Runs\" is 60 over "
        "the mean interval between notes near the median interval; the note-onset "
        "periodicity is the tempo Taperoom's salience picks for the note onsets as a "
        "novelty, in pairs of notes per minute (140-200). The last column is a control of "
        "that salience: the tempo it picks, within 20 % of the annotated tempo, for the "
        "annotated beats and for the note onsets.\n\n"
        + "\n".join(table) + "\n\n" + "\n".join(per_track) + "\n\n")
    replace_section(SECTION, block)

if __name__ == "__main__":
    raise SystemExit(main())
