"""Stage data of an analysis (contract §3 callbacks) as track columns and waveforms.

Results from Taperoom's own analyzer and from an external analysis server take
the same road: the analyzer's :meth:`~taperoom.analysis.result.AnalysisResult.basic_features`
and :meth:`~taperoom.analysis.result.AnalysisResult.characteristics` are the
``data`` of the ``basic_features`` and ``characteristics`` callbacks, and these
functions turn such data into the columns of the ``tracks`` table
(``shared/contracts/library.md`` §6) and the waveform levels stored once per
audio hash. Like the original, both ``tempo``/``bpm`` and ``key``/``musical_key``
are accepted; the booleans of the contract's characteristics are stored as 0/1.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from taperoom.library.keys import parse_key

if TYPE_CHECKING:
    from taperoom.analysis.waveform import WaveformLevel

__all__ = ["ANALYSIS_VERSION", "basic_fields", "characteristics_fields",
           "levels_from_contract"]

#: ``tracks.analysis_version`` of results stored by this version (1 is the original
#: backend's default).
ANALYSIS_VERSION = 2

#: Characteristics keys and the track column of each.
_CHARACTERISTICS = {
    "danceability": "danceability", "valence": "valence", "arousal": "arousal",
    "energy": "energy", "loudness": "loudness", "acousticness": "acousticness",
    "instrumentalness": "instrumentalness", "spectral_centroid": "spectral_centroid",
    "spectral_rolloff": "spectral_rolloff", "spectral_bandwidth": "spectral_bandwidth",
    "zero_crossing_rate": "zero_crossing_rate", "true_peak": "true_peak",
    "replaygain_gain": "replaygain_gain", "replaygain_peak": "replaygain_peak",
    "loudness_range": "loudness_range", "dynamic_complexity": "dynamic_complexity",
}
_WAVE_ROWS = ("low_freq_amplitude", "low_freq_intensity", "mid_freq_amplitude",
              "mid_freq_intensity", "high_freq_amplitude", "high_freq_intensity")


def _number(data: dict[str, Any], *names: str) -> tuple[bool, float | None]:
    """(present, value) of the first of `names` in `data`; booleans count 1/0.

    Raises
    ------
    ValueError
        The value is neither null, a boolean nor a finite number.
    """
    for name in names:
        if name in data:
            value = data[name]
            if value is None:
                return True, None
            if isinstance(value, bool):
                return True, 1.0 if value else 0.0
            if isinstance(value, int | float) and math.isfinite(value):
                return True, float(value)
            raise ValueError(f"{name} must be a number, not {value!r}")
    return False, None


def _times(data: dict[str, Any], name: str) -> list[float] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(
            isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
            for t in value):
        raise ValueError(f"{name} must be a list of times in seconds")
    return [float(t) for t in value]


def _key(data: dict[str, Any]) -> tuple[bool, int | None, int | None]:
    """(present, pitch class, mode from a key name) of ``key``/``musical_key``."""
    for name in ("key", "musical_key"):
        if name not in data:
            continue
        value = data[name]
        if value is None:
            return True, None, None
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 11:
            return True, value, None
        if isinstance(value, str):
            if value.strip().isdigit() and 0 <= int(value) <= 11:
                return True, int(value), None
            parsed = parse_key(value)
            if parsed is not None:
                return True, parsed.musical_key, parsed.mode
        raise ValueError(f"{name} must be a pitch class 0-11 or a key name, not {value!r}")
    return False, None, None


def basic_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Track columns of ``basic_features`` stage data.

    Parameters
    ----------
    data : dict
        ``{tempo|bpm, key|musical_key, mode, key_strength, beats, downbeats,
        beat_consistency, firstBeatOffset, firstPhraseBeatNo, audibleStartTime,
        audibleEndTime, tuning_frequency, beats_per_bar, ...}`` (contract §3); keys
        that are absent leave their column alone.

    Returns
    -------
    dict
        Columns: ``bpm`` (2 decimals), ``musical_key`` (0-11, C=0), ``mode`` (1
        major / 0 minor), ``key_strength``, ``beat_consistency``,
        ``tuning_frequency`` (Hz), ``beats_data``/``downbeats_data`` (JSON lists of
        seconds, as bytes), ``first_beat_offset`` (s; the first beat when the data
        has none), ``first_phrase_beat_no``, ``time_signature`` (beats per bar),
        ``audible_start_time``/``audible_end_time`` (s, when known).

    Raises
    ------
    ValueError
        A value has the wrong type.
    """
    out: dict[str, Any] = {}
    present, tempo = _number(data, "tempo", "bpm")
    if present:
        out["bpm"] = None if tempo is None or tempo <= 0 else round(tempo, 2)
    present, key, key_mode = _key(data)
    if present:
        out["musical_key"] = key
    present, mode = _number(data, "mode")
    if present:
        out["mode"] = None if mode is None else int(mode == 1)
    elif key_mode is not None:
        out["mode"] = key_mode
    for name in ("key_strength", "beat_consistency", "tuning_frequency"):
        present, value = _number(data, name)
        if present:
            out[name] = value
    beats = _times(data, "beats")
    if beats is not None:
        out["beats_data"] = json.dumps(beats).encode()
    downbeats = _times(data, "downbeats")
    if downbeats is not None:
        out["downbeats_data"] = json.dumps(downbeats).encode()
    present, first = _number(data, "firstBeatOffset", "first_beat_offset")
    if first is None and beats:
        present, first = True, beats[0]
    if present:
        out["first_beat_offset"] = first
    present, phrase = _number(data, "firstPhraseBeatNo", "first_phrase_beat_no")
    if present:
        out["first_phrase_beat_no"] = None if phrase is None else int(phrase)
    present, per_bar = _number(data, "beats_per_bar")
    if present and per_bar is not None:
        out["time_signature"] = int(per_bar)
    for key_name, column in (("audibleStartTime", "audible_start_time"),
                             ("audibleEndTime", "audible_end_time")):
        present, value = _number(data, key_name)
        if present and value is not None:  # quick mode does not know them
            out[column] = value
    return out


def characteristics_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Track columns of ``characteristics`` stage data.

    Parameters
    ----------
    data : dict
        ``{danceability, valence, arousal, energy, loudness, acousticness,
        instrumentalness, spectral_centroid, ...}`` (contract §3; booleans become
        1.0/0.0), plus Taperoom's ``true_peak``, ``replaygain_gain``,
        ``replaygain_peak``, ``loudness_range``, ``dynamic_complexity`` and
        ``energy_level`` (1-10). A key given as null is stored as null (a value
        only a model knows is never invented); an absent key leaves its column.

    Raises
    ------
    ValueError
        A value has the wrong type.
    """
    out: dict[str, Any] = {}
    for key, column in _CHARACTERISTICS.items():
        present, value = _number(data, key)
        if present:
            out[column] = value
    present, level = _number(data, "energy_level")
    if present:
        out["energy_level"] = None if level is None else int(min(max(round(level), 0), 10))
    return out


def levels_from_contract(waveforms: Any, *, sample_rate: int = 44100
                         ) -> list[WaveformLevel]:
    """Waveform levels from the contract's ``basic_features.waveforms``.

    Parameters
    ----------
    waveforms : list of dict
        ``{zoom_level, samples_per_pixel, num_pixels, low_freq_amplitude, ...}``
        with six lists of values in 0-1 (contract §3).
    sample_rate : int
        Hz, for a level without ``sample_rate``.

    Returns
    -------
    list of WaveformLevel
        Values quantised to 8 bits (1 -> 255), as the analyzer stores its own.

    Raises
    ------
    ValueError
        A level lacks a band, its bands differ in length, or its zoom level is
        not one of the contract's (0-2).
    """
    from taperoom.analysis.waveform import ZOOM_PIXELS, WaveformLevel

    if not isinstance(waveforms, list):
        raise ValueError("waveforms must be a list of zoom levels")
    levels = []
    for item in waveforms:
        if not isinstance(item, dict):
            raise ValueError("each waveform must be an object")
        zoom = item.get("zoom_level")
        if not isinstance(zoom, int) or isinstance(zoom, bool) or not (
                0 <= zoom < len(ZOOM_PIXELS)):
            raise ValueError(f"zoom_level must be 0-{len(ZOOM_PIXELS) - 1}, not {zoom!r}")
        rows = []
        for name in _WAVE_ROWS:
            values = item.get(name)
            if not isinstance(values, list):
                raise ValueError(f"waveform {zoom}: {name} must be a list of numbers")
            try:
                row = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"waveform {zoom}: {name} must be a list of numbers"
                                 ) from None
            if row.ndim != 1 or not np.isfinite(row).all():
                raise ValueError(f"waveform {zoom}: {name} must be a list of numbers")
            rows.append(row)
        if len({len(r) for r in rows}) != 1:
            raise ValueError(f"waveform {zoom}: its bands differ in length")
        data = np.clip(np.rint(np.vstack(rows) * 255.0), 0, 255).astype(np.uint8)
        spp = item.get("samples_per_pixel")
        rate = item.get("sample_rate")
        levels.append(WaveformLevel(
            zoom_level=zoom,
            samples_per_pixel=int(spp) if isinstance(spp, int | float) else 0,
            sample_rate=int(rate) if isinstance(rate, int | float) else sample_rate,
            data=data))
    return levels
