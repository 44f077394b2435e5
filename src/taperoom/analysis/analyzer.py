"""Analyse an audio file in one decoding pass: :func:`analyze_file`.

The file is decoded block by block (:class:`~taperoom.analysis.decode.AudioSource`);
every block goes to each accumulator (rhythm, tonal, waveform, and unless
``quick`` also loudness and characteristics), which keep only compact frame
features; the estimators then turn those into an :class:`AnalysisResult`.
Memory depends on the track's length only through those features (about
95 MB for a two-hour mix, 60 of them the rhythm's onset features), never through
its samples; each stage then frees its accumulator before the next one starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from taperoom.analysis.decode import SAMPLE_RATE, AudioSource, downmix
from taperoom.analysis.features import FeatureAccumulator, characteristics
from taperoom.analysis.key import estimate_key
from taperoom.analysis.loudness import LoudnessAccumulator, loudness
from taperoom.analysis.result import AnalysisResult, RhythmFields
from taperoom.analysis.rhythm import RhythmAccumulator, estimate_rhythm
from taperoom.analysis.tonal import TonalAccumulator
from taperoom.analysis.waveform import WaveformAccumulator, waveforms

__all__ = ["STAGES", "Progress", "analyze_file"]

#: Progress callback: ``progress(stage, fraction)`` with fraction in 0-1.
Progress = Callable[[str, float], None]

#: Stages reported to the progress callback, in order (quick mode skips
#: ``loudness`` and ``characteristics``).
STAGES = ("decode", "rhythm", "key", "waveforms", "loudness", "characteristics")


def analyze_file(path: str | Path, *, quick: bool = False,
                 bpm_range: tuple[float, float] = (70.0, 180.0),
                 progress: Progress | None = None) -> AnalysisResult:
    """Analyse one audio file.

    Parameters
    ----------
    path : str or Path
        Any file FFmpeg decodes.
    quick : bool, keyword-only
        Compute only tempo, beat grid, downbeats, key and waveforms (what a deck
        needs to play a track), skipping loudness and characteristics.
    bpm_range : (float, float), keyword-only
        The DJ tempo range (BPM) the tempo estimator prefers (a prior, not a fold).
    progress : callable, keyword-only
        Called as ``progress(stage, fraction)``: ``"decode"`` with the share of
        the file decoded (from the duration the container declares, below 1
        until decoding is over) after every block, then each stage of
        :data:`STAGES` exactly once with 1.0 when it is done.

    Returns
    -------
    AnalysisResult

    Raises
    ------
    MediaError
        The file cannot be opened or decoded, or holds no audio.
    ValueError
        `bpm_range` is not an increasing pair of positive tempi.
    """
    lo, hi = bpm_range
    if not 0 < lo < hi:
        raise ValueError(f"bpm_range must be an increasing pair of positive tempi: {bpm_range}")
    started = time.process_time()

    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, min(max(fraction, 0.0), 1.0))

    rhythm_acc = RhythmAccumulator(SAMPLE_RATE)
    tonal_acc = TonalAccumulator(SAMPLE_RATE)
    wave_acc = WaveformAccumulator(SAMPLE_RATE)
    feature_acc = None if quick else FeatureAccumulator(SAMPLE_RATE)
    with AudioSource(path) as src:
        info = src.info
        loud_acc = None if quick else LoudnessAccumulator(SAMPLE_RATE, info.channel_names)
        report("decode", 0.0)
        for block in src.blocks():
            mono = downmix(block)
            rhythm_acc.feed(mono)
            tonal_acc.feed(mono)
            wave_acc.feed(mono)
            if feature_acc is not None and loud_acc is not None:
                feature_acc.feed(mono)
                loud_acc.feed(block)
            if info.duration:  # 1.0 only once decoding is over
                report("decode", min(src.seconds_out / info.duration, 0.999))
        duration = src.seconds_out
    report("decode", 1.0)

    # Each stage finishes its accumulator, estimates, and lets go of both before
    # the next one, so only one stage's features and temporaries are alive at a time.
    rhythm_features = rhythm_acc.finish()
    del rhythm_acc
    rhythm = estimate_rhythm(rhythm_features, bpm_range=bpm_range, quick=quick)
    del rhythm_features
    report("rhythm", 1.0)
    key = estimate_key(tonal_acc.finish())
    del tonal_acc
    report("key", 1.0)
    levels = waveforms(wave_acc.finish())
    del wave_acc
    report("waveforms", 1.0)
    loud = chars = None
    if feature_acc is not None and loud_acc is not None:
        loud = loudness(loud_acc.finish())
        del loud_acc
        report("loudness", 1.0)
        chars = characteristics(feature_acc.finish(), lufs=loud.integrated_lufs)
        del feature_acc
        report("characteristics", 1.0)
    fields = RhythmFields(
        bpm=rhythm.bpm, beats=rhythm.beats, downbeats=rhythm.downbeats,
        first_beat_offset=rhythm.first_beat_offset,
        beat_consistency=rhythm.beat_consistency, constant_tempo=rhythm.constant_tempo,
        first_phrase_beat_no=rhythm.first_phrase_beat_no,
        beats_per_bar=rhythm.beats_per_bar)
    return AnalysisResult(duration=duration, sample_rate=info.sample_rate,
                          channels=info.channels, rhythm=fields, key=key, waveforms=levels,
                          loudness=loud, features=chars, quick=quick,
                          processing_time=time.process_time() - started)
