"""A rescan of a changed file and the analysis fields of its track.

As in rekordbox and Mixxx, once a track has analysed values or values its user
set, the file's BPM and key tags no longer replace them: a rescan of a re-tagged
file (same audio hash) only fills the fields that are empty, and never touches a
field the user set (``tracks.user_fields``). A file whose *audio* changed (new
audio hash) loses the analysis of its old audio (every analysed field the user
did not set), takes the tags' tempo and key instead, and is analysed again.

Real files (corpus copies and generated drum loops tagged with mutagen), real
SQLite/PostgreSQL databases, the real scanner and analyzer.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from mutagen.flac import FLAC
from mutagen.id3 import TBPM, TIT2, TKEY
from mutagen.mp3 import MP3
from mutagen.wave import WAVE

from taperoom.analysis.analyzer import analyze_file
from taperoom.events import Event
from taperoom.library import models
from taperoom.library.analysis.results import basic_fields, characteristics_fields
from taperoom.library.context import LibraryServices
from taperoom.library.schemas import TrackUpdate
from tests.conftest import LiveServer
from tests.library.analysislib import DEADLINE, drum_loop, fresh, job_status
from tests.library.test_scanner import Recorder, add_directory, tracks
from tests.polling import wait_for

TAGGED = "scanner/real_music_tagged"

#: Columns the analysis sets that a new audio must clear (when the user did not set them).
CLEARED = ("key_strength", "beat_consistency", "tuning_frequency", "time_signature",
           "audible_start_time", "audible_end_time", "danceability",
           "energy", "loudness", "spectral_centroid", "true_peak", "replaygain_gain",
           "loudness_range", "dynamic_complexity", "date_analyzed")


def _retag(path: Path, *, bpm: str, key: str, title: str | None = None) -> None:
    """Write BPM and key tags (and a title) into an MP3, WAV (ID3) or FLAC file."""
    if path.suffix == ".flac":
        flac = FLAC(path)
        flac["bpm"], flac["initialkey"] = bpm, key
        if title is not None:
            flac["title"] = title
        flac.save()
        return
    audio: WAVE | MP3 = WAVE(path) if path.suffix == ".wav" else MP3(path)
    if audio.tags is None:
        audio.add_tags()
    assert audio.tags is not None
    audio.tags.setall("TBPM", [TBPM(encoding=3, text=bpm)])
    audio.tags.setall("TKEY", [TKEY(encoding=3, text=key)])
    if title is not None:
        audio.tags.setall("TIT2", [TIT2(encoding=3, text=title)])
    audio.save()


def _tagged_loop(path: Path, bpm: float, *, tag_bpm: str, tag_key: str,
                 root: float = 220.0) -> Path:
    """A generated drum loop (WAV) with ID3 BPM, key and title tags."""
    drum_loop(path, bpm, 6.0, root=root)
    _retag(path, bpm=tag_bpm, key=tag_key, title=f"loop {bpm:g}")
    return path


@pytest.mark.backends()
def test_a_retagged_file_keeps_analysed_and_user_values(
        lib_ctx: LibraryServices, lib_server: LiveServer, corpus: Path, tmp_path: Path) -> None:
    """A re-tag (same audio hash) with new BPM and key tags keeps the analysed tempo and
    key of one track and the user's of another; on a third track, which has a tagged
    BPM and no key, the key tag fills the empty key and the old BPM stays. The raw key
    text (``key_tag``) and the other tags follow the file; ``track:updated`` tells the
    values the tracks hold."""
    root = tmp_path / "music"
    root.mkdir()
    names = {"analysed": "a.mp3", "user": "b.mp3", "tagged": "c.flac"}
    shutil.copyfile(corpus / TAGGED / "01 - Muldjord - Armygeddon.mp3", root / "a.mp3")
    shutil.copyfile(corpus / TAGGED / "09 - Maxstack - Aberrations.mp3", root / "b.mp3")
    shutil.copyfile(corpus / TAGGED / "02 - Muldjord - Chaos God.flac", root / "c.flac")
    did = add_directory(lib_ctx, root)
    lib_ctx.scans.scan_sync(did, "hybrid")
    rows = tracks(lib_ctx, did)
    analysed, user, tagged = (rows[names[k]] for k in ("analysed", "user", "tagged"))
    assert (tagged.bpm, tagged.musical_key) == (170.0, None)

    assert analysed.file_hash is not None
    set_by_hand = Recorder(lib_ctx)
    lib_ctx.analysis.store_stage(analysed.file_hash, "basic_features", {
        "tempo": 85.02, "key": 4, "mode": 0, "key_strength": 0.81,
        "beats": [0.2, 0.9, 1.6], "beat_consistency": 0.93})
    answer = httpx.put(f"{lib_server.url}/api/tracks/{user.id}",
                       json={"bpm": 99.5, "musical_key": 2, "mode": 1}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert sorted(fresh(lib_ctx, user.id).user_fields or []) == ["bpm", "mode", "musical_key"]
    # track:updated names the key as the track object does (E minor: 9A / 2m)
    names = {e["trackId"]: (e["changes"].get("camelot"), e["changes"].get("open_key"))
             for e in set_by_hand.named(Event.TRACK_UPDATED)}
    assert names == {analysed.id: ("9A", "2m"), user.id: ("10B", "3d")}

    _retag(root / "a.mp3", bpm="174", key="8A", title="Armygeddon (Edit)")
    _retag(root / "b.mp3", bpm="130", key="5A")
    _retag(root / "c.flac", bpm="172", key="11B")
    events = Recorder(lib_ctx)
    result = lib_ctx.scans.scan_sync(did, "hybrid")
    assert result["tracksUpdated"] == 3 and result["errors"] == []

    a = fresh(lib_ctx, analysed.id)
    assert a.file_hash == analysed.file_hash  # a re-tag keeps the audio hash
    assert (a.bpm, a.musical_key, a.mode, a.key_strength) == (85.02, 4, 0, 0.81)
    assert a.beats_data is not None and a.beat_consistency == 0.93
    assert (a.title, a.key_tag) == ("Armygeddon (Edit)", "8A")
    b = fresh(lib_ctx, user.id)
    assert (b.bpm, b.musical_key, b.mode, b.key_tag) == (99.5, 2, 1, "5A")
    assert sorted(b.user_fields or []) == ["bpm", "mode", "musical_key"]
    c = fresh(lib_ctx, tagged.id)
    assert (c.bpm, c.musical_key, c.mode, c.key_tag) == (170.0, 9, 1, "11B")

    changes = {e["trackId"]: e["changes"] for e in events.named(Event.TRACK_UPDATED)}
    assert changes[a.id]["title"] == "Armygeddon (Edit)"
    assert (changes[a.id].get("bpm", 85.02), changes[a.id].get("musical_key", 4)) == (85.02, 4)
    assert (changes[b.id].get("bpm", 99.5), changes[b.id].get("musical_key", 2)) == (99.5, 2)
    assert (changes[c.id]["musical_key"], changes[c.id]["mode"]) == (9, 1)
    assert (changes[c.id]["camelot"], changes[c.id]["open_key"]) == ("11B", "4d")
    assert changes[c.id].get("bpm", 170.0) == 170.0



def test_new_audio_clears_the_old_analysis_and_is_analysed_again(
        services: Callable[..., LibraryServices], tmp_path: Path) -> None:
    """When a file's audio changes (new audio hash), the analysed fields of its old audio
    are cleared, except those the user set and the beat grid his first beat locks; the
    tags' tempo and key fill the cleared fields, and with ANALYZE_ON_SCAN the track is
    queued for analysis again: from the watcher's scan of the changed path as from a
    whole-folder scan. A re-tag of the new audio then keeps its analysis."""
    svc = services(analyze_on_scan=True, max_concurrent_analysis=0)  # jobs wait in the queue
    root = tmp_path / "music"
    path = _tagged_loop(root / "loop.wav", 120.0, tag_bpm="120", tag_key="Em", root=165.0)
    did = add_directory(svc, root)
    svc.scans.scan_sync(did, "full")
    old = tracks(svc, did)["loop.wav"]
    assert old.file_hash is not None
    assert wait_for(lambda: job_status(svc, old.file_hash) == "queued", DEADLINE, "the first job")
    done = svc.analysis.analyze_here([old.id], force=False)
    assert done["analysed"] == 1, done
    analysed = fresh(svc, old.id)
    assert analysed.date_analyzed is not None and analysed.key_strength is not None
    assert analysed.beats_data is not None and analysed.true_peak is not None
    svc.tracks.update(old.id, TrackUpdate(energy_level=7))
    svc.tracks.set_first_beat_offset(old.id, 0.25)
    before = fresh(svc, old.id)
    assert sorted(before.user_fields or []) == ["energy_level", "first_beat_offset"]

    # the watcher's road: only the changed path
    _tagged_loop(path, 100.0, tag_bpm="100", tag_key="Am", root=220.0)
    events = Recorder(svc)
    svc.scanner.scan_paths(did, [str(path)])
    now = fresh(svc, old.id)
    assert now.file_hash not in (None, old.file_hash)
    for name in CLEARED:
        assert getattr(now, name) is None, name
    assert now.analysis_version == 1
    assert (now.bpm, now.musical_key, now.mode) == (100.0, 9, 0)  # from the new tags
    assert (now.energy_level, now.first_beat_offset) == (7, 0.25)  # the user's
    assert (now.beats_data, now.downbeats_data, now.first_phrase_beat_no) == (
        before.beats_data, before.downbeats_data, before.first_phrase_beat_no)
    assert now.user_fields == before.user_fields
    [changed] = [e["changes"] for e in events.named(Event.TRACK_UPDATED)]
    assert changed["date_analyzed"] is None and changed["bpm"] == 100.0
    assert changed["file_hash"] == now.file_hash
    assert wait_for(lambda: job_status(svc, now.file_hash) == "queued", DEADLINE, "the new job")
    assert svc.analysis.job(now.file_hash)["priority"] == "low"

    done = svc.analysis.analyze_here([old.id], force=False)
    assert done["analysed"] == 1, done
    reanalysed = fresh(svc, old.id)
    assert reanalysed.date_analyzed is not None and reanalysed.key_strength is not None
    assert (reanalysed.energy_level, reanalysed.first_beat_offset) == (7, 0.25)

    # a re-tag of that audio keeps its new analysis
    _retag(path, bpm="50", key="C#m")
    svc.scanner.scan_paths(did, [str(path)])
    kept = fresh(svc, old.id)
    assert kept.file_hash == reanalysed.file_hash
    assert (kept.bpm, kept.musical_key, kept.mode) == (
        reanalysed.bpm, reanalysed.musical_key, reanalysed.mode)
    assert kept.date_analyzed == reanalysed.date_analyzed

    # a whole-folder scan's road
    _tagged_loop(path, 132.0, tag_bpm="132", tag_key="G", root=196.0)
    svc.scans.scan_sync(did, "hybrid")
    third = fresh(svc, old.id)
    assert third.file_hash not in (None, reanalysed.file_hash)
    assert (third.date_analyzed, third.key_strength) == (None, None)
    assert (third.bpm, third.musical_key, third.mode) == (132.0, 7, 1)
    assert wait_for(lambda: job_status(svc, third.file_hash) == "queued", DEADLINE, "the third job")


def test_every_column_an_analysis_stores_is_cleared_with_new_audio(tmp_path: Path) -> None:
    """The columns a real analysis of a drum loop stores (both stages, through the same
    functions as every result) and its date are all analysis fields that new audio
    clears: a result column added later cannot outlive the audio it describes."""
    result = analyze_file(str(drum_loop(tmp_path / "loop.wav", 124.0, 6.0)), quick=False,
                          bpm_range=(70.0, 180.0), progress=None)
    chars = result.characteristics()
    assert chars is not None
    stored = set(basic_fields(result.basic_features())) | set(characteristics_fields(chars))
    assert {"bpm", "musical_key", "beats_data", "true_peak", "energy_level"} <= stored
    assert stored | {"date_analyzed"} <= set(models.ANALYSED_FIELDS)
