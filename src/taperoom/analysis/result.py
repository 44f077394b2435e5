"""The result of analysing one track, and its two contract dicts.

:class:`AnalysisResult` gathers what the estimators found;
:meth:`AnalysisResult.basic_features` and :meth:`AnalysisResult.characteristics`
give the two callback payloads of the analysis-server contract
(``shared/contracts/library.md`` §3: stages ``basic_features`` and
``characteristics``), with the contract's keys first and Taperoom's extra
fields after them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from taperoom.analysis.features import Characteristics
from taperoom.analysis.key import KeyResult
from taperoom.analysis.loudness import LoudnessResult
from taperoom.analysis.waveform import WaveformLevel

__all__ = ["AnalysisResult", "RhythmFields"]


@dataclass(frozen=True)
class RhythmFields:
    """Tempo, beat grid and downbeats as the result carries them.

    Attributes
    ----------
    bpm : float or None
        Tempo (BPM, 2 decimals); None when no beat was found.
    beats, downbeats : np.ndarray, shape=(n,), float64
        Beat and downbeat times (s).
    first_beat_offset : float or None
        Time of the first beat of the grid (s).
    beat_consistency : float or None
        0-1, how steady the beats are.
    constant_tempo : bool
        True when the beats are a constant-tempo grid.
    first_phrase_beat_no : int or None
        Number of the beat that starts the first phrase.
    beats_per_bar : int or None
        Time-signature numerator.
    """

    bpm: float | None
    beats: np.ndarray
    downbeats: np.ndarray
    first_beat_offset: float | None
    beat_consistency: float | None
    constant_tempo: bool
    first_phrase_beat_no: int | None
    beats_per_bar: int | None


def _times(x: np.ndarray) -> list[float]:
    return [round(float(t), 3) for t in np.asarray(x, dtype=np.float64)]


@dataclass(frozen=True)
class AnalysisResult:
    """Everything the analyzer found about a track.

    Attributes
    ----------
    duration : float
        Decoded length (s).
    sample_rate : int
        The file's own sample rate (Hz).
    channels : int
        The file's channel count.
    rhythm : RhythmFields
    key : KeyResult
    waveforms : list of WaveformLevel
        Zoom levels 0, 1, 2.
    loudness : LoudnessResult or None
        None in quick mode.
    features : Characteristics or None
        None in quick mode.
    quick : bool
        True when only tempo, beat grid, key and waveforms were computed.
    processing_time : float
        CPU seconds the analysis took.
    """

    duration: float
    sample_rate: int
    channels: int
    rhythm: RhythmFields
    key: KeyResult
    waveforms: list[WaveformLevel] = field(repr=False)
    loudness: LoudnessResult | None
    features: Characteristics | None
    quick: bool
    processing_time: float

    def basic_features(self) -> dict[str, Any]:
        """The ``basic_features`` callback payload (contract §3).

        Keys: ``key`` (0-11, C=0), ``key_name``, ``mode`` (1 major / 0 minor),
        ``mode_name``, ``key_strength``, ``tempo``, ``beats``, ``downbeats``
        (seconds, 3 decimals), ``beat_consistency``, ``num_beats``,
        ``num_downbeats``, ``firstBeatOffset``, ``firstPhraseBeatNo``,
        ``audibleStartTime``, ``audibleEndTime``, ``waveforms`` (contract
        shape); then ``camelot``, ``open_key``, ``key_scale`` (= ``mode_name``),
        ``tuning_frequency`` (Hz), ``beats_per_bar``, ``constant_tempo``,
        ``duration``. Unknown values are None.
        """
        r, k, f = self.rhythm, self.key, self.features
        return {
            "key": k.key,
            "key_name": k.key_name,
            "mode": k.mode,
            "mode_name": k.mode_name,
            "key_strength": k.strength,
            "tempo": r.bpm,
            "beats": _times(r.beats),
            "downbeats": _times(r.downbeats),
            "beat_consistency": r.beat_consistency,
            "num_beats": len(r.beats),
            "num_downbeats": len(r.downbeats),
            "firstBeatOffset": r.first_beat_offset,
            "firstPhraseBeatNo": r.first_phrase_beat_no,
            "audibleStartTime": None if f is None else f.audible_start,
            "audibleEndTime": None if f is None else f.audible_end,
            "waveforms": [lv.to_contract() for lv in self.waveforms],
            "camelot": k.camelot,
            "open_key": k.open_key,
            "key_scale": k.mode_name,
            "tuning_frequency": k.tuning_frequency,
            "beats_per_bar": r.beats_per_bar,
            "constant_tempo": r.constant_tempo,
            "duration": round(self.duration, 3),
        }

    def characteristics(self) -> dict[str, Any] | None:
        """The ``characteristics`` callback payload (contract §3), None in quick mode.

        Contract keys: ``danceability`` (0-1), ``valence``, ``arousal``,
        ``energy`` (1-10, see :func:`taperoom.analysis.features.energy_score`),
        ``loudness`` (integrated LUFS), ``acousticness``, ``instrumentalness``,
        ``processing_time`` (s), ``spectral_centroid`` (Hz),
        ``spectral_rolloff`` (Hz), ``zero_crossing_rate``. ``valence``,
        ``arousal``, ``acousticness``, ``instrumentalness`` and ``genre`` need a
        trained model, which the default install does not ship: they are None,
        never invented. Extra keys: ``lufs``, ``loudness_range`` (LU),
        ``true_peak`` (dBTP), ``sample_peak`` (dBFS), ``replaygain_gain`` (dB),
        ``replaygain_peak`` (linear), ``dynamic_complexity`` (dB),
        ``energy_level`` (1-10), ``danceability_raw`` (0-~3), ``spectral_flux``.
        """
        f, ld = self.features, self.loudness
        if f is None or ld is None:
            return None
        return {
            "danceability": f.danceability,
            "valence": None,
            "arousal": None,
            "energy": f.energy,
            "loudness": ld.integrated_lufs,
            "acousticness": None,
            "instrumentalness": None,
            "genre": None,
            "processing_time": round(self.processing_time, 3),
            "spectral_centroid": f.spectral_centroid,
            "spectral_rolloff": f.spectral_rolloff,
            "zero_crossing_rate": f.zero_crossing_rate,
            "lufs": ld.integrated_lufs,
            "loudness_range": ld.loudness_range,
            "true_peak": ld.true_peak_dbtp,
            "sample_peak": ld.sample_peak_dbfs,
            "replaygain_gain": ld.replaygain_gain_db,
            "replaygain_peak": round(ld.replaygain_peak, 6),
            "dynamic_complexity": f.dynamic_complexity,
            "energy_level": f.energy_level,
            "danceability_raw": f.danceability_raw,
            "spectral_flux": f.spectral_flux,
        }
