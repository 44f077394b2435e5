"""analyze_file: one decoding pass, the contract payloads, quick mode, progress,
errors (the memory of a two-hour mix is measured by bench/analysis_memory.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taperoom.analysis.analyzer import STAGES, analyze_file
from taperoom.analysis.decode import downmix
from taperoom.errors import MediaError

BASIC = ["key", "key_name", "mode", "mode_name", "key_strength", "tempo", "beats", "downbeats",
         "beat_consistency", "num_beats", "num_downbeats", "firstBeatOffset",
         "firstPhraseBeatNo", "audibleStartTime", "audibleEndTime", "waveforms"]
CHARACTERISTICS = ["danceability", "valence", "arousal", "energy", "loudness", "acousticness",
                   "instrumentalness", "processing_time", "spectral_centroid",
                   "spectral_rolloff", "zero_crossing_rate"]


def test_contract_payloads_of_a_real_track(corpus: Path) -> None:
    """A club track gives the contract's basic_features and characteristics keys, with
    values of the contract's types, and model-only fields left null."""
    result = analyze_file(corpus / "dev" / "lmms_Jousboxx-BuzzerBeater.ogg")
    basic = result.basic_features()
    assert list(basic)[:len(BASIC)] == BASIC
    assert 0 <= basic["key"] <= 11 and basic["mode"] in (0, 1)
    assert basic["key_name"] and basic["mode_name"] in ("major", "minor")
    assert basic["tempo"] == pytest.approx(128.0, abs=1.0)
    assert basic["num_beats"] == len(basic["beats"]) > 400
    assert basic["num_downbeats"] == len(basic["downbeats"]) > 100
    assert basic["beats"] == sorted(basic["beats"])
    assert basic["audibleStartTime"] < 0.1 and basic["audibleEndTime"] > 224.0
    assert [w["num_pixels"] for w in basic["waveforms"]] == [1000, 4000, 16000]
    assert basic["camelot"] and basic["open_key"] and 430 < basic["tuning_frequency"] < 450
    chars = result.characteristics()
    assert chars is not None
    assert list(chars)[:len(CHARACTERISTICS) + 1] == [*CHARACTERISTICS[:7], "genre",
                                                      *CHARACTERISTICS[7:]]
    for model_only in ("valence", "arousal", "acousticness", "instrumentalness", "genre"):
        assert chars[model_only] is None
    assert 1.0 <= chars["energy"] <= 10.0 and 0.0 <= chars["danceability"] <= 1.0
    assert -20.0 < chars["loudness"] < 0.0 and chars["true_peak"] is not None
    assert chars["replaygain_gain"] == pytest.approx(-18.0 - chars["lufs"], abs=0.01)


def test_quick_mode_and_progress(corpus: Path) -> None:
    """Quick mode reports decode, rhythm, key and waveforms (no loudness or
    characteristics), decode fractions rising to 1, and gives tempo, beats, key and
    waveforms without characteristics."""
    seen: list[tuple[str, float]] = []
    result = analyze_file(corpus / "dev" / "hydrogen_GM_kit_demo2.ogg", quick=True,
                          progress=lambda stage, fraction: seen.append((stage, fraction)))
    stages = [s for s, _ in seen]
    assert [s for i, s in enumerate(stages) if s not in stages[:i]] == list(STAGES[:4])
    decode = [f for s, f in seen if s == "decode"]
    assert decode[0] == 0.0 and decode[-1] == 1.0 and decode == sorted(decode)
    assert result.quick and result.characteristics() is None
    basic = result.basic_features()
    assert basic["tempo"] is not None and basic["num_beats"] > 0
    assert len(basic["waveforms"]) == 3 and basic["audibleStartTime"] is None


def test_full_mode_reports_every_stage(corpus: Path) -> None:
    """A full analysis reports every stage once with 1.0, in order."""
    done: list[str] = []
    analyze_file(corpus / "dev" / "lmms_Greshz-CoolSnip.ogg",
                 progress=lambda stage, fraction: done.append(stage) if fraction == 1.0 else None)
    assert done == list(STAGES)


@pytest.mark.parametrize("name", ["zero_length.mp3", "not_audio.ogg"])
def test_unreadable_files_raise_media_error(corpus: Path, name: str) -> None:
    """Files without decodable audio raise MediaError."""
    with pytest.raises(MediaError):
        analyze_file(corpus / "scanner" / "real_music_tagged" / "odd" / name)


def test_bad_bpm_range_is_refused(corpus: Path) -> None:
    """A tempo range that is not an increasing pair of positive tempi is a ValueError."""
    with pytest.raises(ValueError):
        analyze_file(corpus / "dev" / "lmms_Greshz-CoolSnip.ogg", bpm_range=(180.0, 70.0))


def test_downmix_feeds_the_mono_accumulators() -> None:
    """The mono signal the accumulators get is the mean of the channels."""
    block = np.array([[0.2, 0.4], [-1.0, 1.0]], dtype=np.float32)
    assert downmix(block).tolist() == pytest.approx([0.3, 0.0])
