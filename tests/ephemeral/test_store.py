"""The ephemeral store on real files: metadata format, in-place wear, confinement, reset."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taperoom.audio import wav
from taperoom.ephemeral.settings import EphemeralSettings
from taperoom.ephemeral.store import EphemeralStore
from taperoom.errors import InvalidInput, MediaError, NotFound
from tests.wavgen import BEXT, ID3, LIST_INFO, tone, write_wav

Settings = Callable[..., EphemeralSettings]
META_KEYS = {"filename", "title", "duration", "segment_duration", "total_segments",
             "segment_play_counts", "created_at", "total_streams"}
CREATED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def _store(eph_settings: Settings, **overrides: object) -> EphemeralStore:
    return EphemeralStore(eph_settings(**overrides))


def _noise(seconds: float, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    """Loud noise with no zero samples, so every dropped frame shows up on disk."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    y = rng.uniform(0.2, 0.9, size=(n, channels))
    return y * rng.choice([-1.0, 1.0], size=(n, channels))


def _changed(a: bytes, b: bytes) -> np.ndarray:
    assert len(a) == len(b)
    return np.flatnonzero(np.frombuffer(a, np.uint8) != np.frombuffer(b, np.uint8))


# -- metadata --------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "segments"), [(5.0, 10), (5.2, 11), (0.3, 1), (4.99, 10),
                                                   (0.5, 1), (1.25, 3)])
def test_metadata_has_the_contract_format(eph_settings: Settings, seconds: float,
                                          segments: int) -> None:
    """ensure_meta writes tracks/<escaped name>.json with exactly the contract's keys, types
    and values."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "My Track.wav", tone(seconds, 8000, 2), rate=8000)
    meta = store.ensure_meta("My Track.wav")
    path = store.metadata_dir / "tracks" / "%4Dy %54rack.wav.json"
    on_disk = json.loads(path.read_text())
    assert on_disk == meta
    assert set(on_disk) == META_KEYS
    n_frames = round(seconds * 8000)
    assert on_disk["filename"] == "My Track.wav"
    assert on_disk["title"] == "My Track"
    assert isinstance(on_disk["duration"], float)
    assert on_disk["duration"] == n_frames / 8000
    assert on_disk["segment_duration"] == 0.5
    assert isinstance(on_disk["segment_duration"], float)
    assert on_disk["total_segments"] == segments == math.ceil(on_disk["duration"] / 0.5)
    assert on_disk["segment_play_counts"] == [0] * segments
    assert on_disk["total_streams"] == 0
    assert CREATED_AT.match(on_disk["created_at"])
    datetime.strptime(on_disk["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ")


def test_metadata_is_created_once_and_kept(eph_settings: Settings) -> None:
    """A second ensure_meta returns the stored metadata (same created_at, counts kept)."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "a.wav", tone(2.0, 8000, 1), rate=8000)
    first = store.ensure_meta("a.wav")
    store.degrade("a.wav", 1)
    again = _store(eph_settings).ensure_meta("a.wav")
    assert again["created_at"] == first["created_at"]
    assert again["segment_play_counts"] == [0, 1, 0, 0]


def test_other_segment_duration_changes_segment_count(eph_settings: Settings) -> None:
    """SEGMENT_DURATION sets total_segments = ceil(duration / SEGMENT_DURATION)."""
    store = _store(eph_settings, segment_duration=0.3)
    write_wav(store.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)
    meta = store.ensure_meta("a.wav")
    assert meta["segment_duration"] == 0.3
    assert meta["total_segments"] == 4


def test_unreadable_metadata_is_recreated(eph_settings: Settings) -> None:
    """Garbage in the metadata file is replaced by fresh metadata in the contract format."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)
    store.meta_path("a.wav").write_text("{not json")
    meta = store.ensure_meta("a.wav")
    assert set(meta) == META_KEYS
    assert json.loads(store.meta_path("a.wav").read_text()) == meta


@pytest.mark.parametrize("damage", [
    {"segment_play_counts": [0, -1]}, {"segment_play_counts": [0, "1"]},
    {"segment_play_counts": [0, 1.5]}, {"segment_play_counts": [0]},
    {"segment_play_counts": "00"}, {"title": None}, {"title": 5}, {"total_streams": "x"},
    {"total_streams": -2}, {"duration": "1.0"}, {"duration": None}, {"filename": "b.wav"},
    {"total_segments": 3},
])
def test_damaged_metadata_is_recreated(eph_settings: Settings, damage: dict[str, object]) -> None:
    """Metadata with a missing or ill-typed contract field starts afresh instead of failing."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)
    meta = store.ensure_meta("a.wav")
    broken = {**meta, **damage}
    broken = {k: v for k, v in broken.items() if v is not None}
    store.meta_path("a.wav").write_text(json.dumps(broken))
    fresh = store.ensure_meta("a.wav")
    assert set(fresh) == META_KEYS
    assert fresh["segment_play_counts"] == [0, 0]
    assert fresh["title"] == "a"
    assert fresh["total_streams"] == 0
    store.add_stream("a.wav")
    assert store.degrade("a.wav", 1) == 1


def test_metadata_without_total_streams_is_kept(eph_settings: Settings) -> None:
    """Metadata of an older original without total_streams keeps its counts; streams start at 0."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)
    meta = store.ensure_meta("a.wav")
    del meta["total_streams"]
    meta["segment_play_counts"] = [2, 0]
    store.meta_path("a.wav").write_text(json.dumps(meta))
    store.add_stream("a.wav")
    kept = json.loads(store.meta_path("a.wav").read_text())
    assert kept["segment_play_counts"] == [2, 0]
    assert kept["total_streams"] == 1


def test_metadata_written_by_the_original_is_reused(eph_settings: Settings) -> None:
    """A metadata file in the original's format (with play counts) is read as it is."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "x.wav", tone(5.0, 8000, 1), rate=8000)
    original = {"filename": "x.wav", "title": "x", "duration": 5.0, "segment_duration": 0.5,
                "total_segments": 10, "segment_play_counts": [3, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                "created_at": "2025-11-09T12:00:00.123456Z", "total_streams": 7}
    store.meta_path("x.wav").write_text(json.dumps(original, indent=2))
    assert store.ensure_meta("x.wav") == original
    assert store.degrade("x.wav", 0, rng=np.random.default_rng(0)) == 4


# -- wear ------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "channels", "rate", "extensible"), [
    ("pcm16", 2, 44100, False),
    ("pcm24", 6, 22050, False),
    ("float32", 2, 48000, True),
    ("pcm8", 1, 11025, False),
    ("pcm32", 1, 8000, True),
    ("float64", 2, 96000, False),
])
def test_degrade_changes_only_the_segment_and_only_from_second_play(
        eph_settings: Settings, fmt: str, channels: int, rate: int, extensible: bool) -> None:
    """Wear writes only bytes inside segment i's frames, and nothing on its first play."""
    store = _store(eph_settings, degradation_rate=40.0)
    path = write_wav(store.audio_dir / "t.wav", _noise(2.2, rate, channels), rate=rate,
                     fmt=fmt, extensible=extensible, before=[LIST_INFO, BEXT],
                     after=[ID3, LIST_INFO])
    info = wav.read_info(path)
    for index in (0, 2, 4):  # first, middle, last (partial) segment
        start, end = store.segment_frames(info, index)
        lo, hi = info.frame_offset(start), info.frame_offset(end)
        before = path.read_bytes()
        assert store.degrade("t.wav", index, rng=np.random.default_rng(index)) == 1
        assert path.read_bytes() == before
        assert store.degrade("t.wav", index, rng=np.random.default_rng(index)) == 2
        after = path.read_bytes()
        changed = _changed(before, after)
        assert changed.size > 0
        assert changed.min() >= lo
        assert changed.max() < hi
        assert after[:lo] == before[:lo]
        assert after[hi:] == before[hi:]


def test_degrade_zeroes_whole_frames_at_about_the_rate(eph_settings: Settings) -> None:
    """The 2nd play at 40 %/play zeroes about 40 % of the segment's frames, all channels at once."""
    store = _store(eph_settings, degradation_rate=40.0)
    path = write_wav(store.audio_dir / "t.wav", _noise(1.0, 44100, 2), rate=44100)
    info = wav.read_info(path)
    store.degrade("t.wav", 1)
    store.degrade("t.wav", 1, rng=np.random.default_rng(9))
    fd = os.open(path, os.O_RDONLY)
    try:
        y = wav.read_frames(fd, info, *store.segment_frames(info, 1))
        untouched = wav.read_frames(fd, info, *store.segment_frames(info, 0))
    finally:
        os.close(fd)
    zero = y == 0.0
    assert (zero.all(axis=1) == zero.any(axis=1)).all()
    n = len(y)
    dropped = int(zero.all(axis=1).sum())
    assert abs(dropped - 0.4 * n) <= 5 * math.sqrt(n * 0.4 * 0.6)
    assert not (untouched == 0.0).any()


def test_play_counts_accumulate(eph_settings: Settings) -> None:
    """Each degrade adds one play to its segment only; the JSON on disk follows."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "a.wav", tone(2.0, 8000, 2), rate=8000)
    results = [store.degrade("a.wav", 2) for _ in range(3)] + [store.degrade("a.wav", 0)]
    assert results == [1, 2, 3, 1]
    meta = json.loads(store.meta_path("a.wav").read_text())
    assert meta["segment_play_counts"] == [1, 0, 3, 0]
    store.add_stream("a.wav")
    store.add_stream("a.wav")
    assert json.loads(store.meta_path("a.wav").read_text())["total_streams"] == 2


@pytest.mark.parametrize("index", [-1, 4, 100])
def test_degrade_refuses_segment_index_out_of_range(eph_settings: Settings, index: int) -> None:
    """Indexes outside [0, total_segments) raise InvalidInput and change nothing."""
    store = _store(eph_settings)
    path = write_wav(store.audio_dir / "a.wav", tone(2.0, 8000, 1), rate=8000)
    before = path.read_bytes()
    with pytest.raises(InvalidInput):
        store.degrade("a.wav", index)
    assert path.read_bytes() == before
    assert store.ensure_meta("a.wav")["segment_play_counts"] == [0, 0, 0, 0]


@pytest.mark.parametrize(("rate", "seconds", "segment"), [
    (11025, 3.3, 0.5), (22050, 2.7, 0.5), (44100, 1.9, 0.5), (8000, 2.0, 0.5),
    (44100, 1.0, 0.3), (22050, 1.0, 0.7), (96000, 1.01, 0.5), (7, 10.0, 0.5),
])
def test_segments_cover_every_frame_exactly_once(eph_settings: Settings, rate: int,
                                                 seconds: float, segment: float) -> None:
    """Segment ranges are contiguous from frame 0 to the last frame, even for fractional sizes."""
    store = _store(eph_settings, segment_duration=segment)
    path = write_wav(store.audio_dir / "a.wav", tone(seconds, rate, 1), rate=rate)
    info = wav.read_info(path)
    total = store.total_segments(info)
    assert total == math.ceil(round(info.duration / segment, 9))
    covered = np.zeros(info.n_frames, dtype=int)
    prev_end = 0
    for i in range(total):
        start, end = store.segment_frames(info, i)
        assert start == prev_end
        assert end > start
        assert end - start <= math.ceil(segment * rate)
        covered[start:end] += 1
        for f in (start, end - 1):
            assert store.segment_of_frame(info, f) == i
        prev_end = end
    assert prev_end == info.n_frames
    assert (covered == 1).all()


def test_segments_at_11025_hz_alternate_5512_and_5513_frames(eph_settings: Settings) -> None:
    """At 11025 Hz a 0.5 s segment is 5512.5 frames: lengths alternate and never drift."""
    store = _store(eph_settings)
    path = write_wav(store.audio_dir / "a.wav", tone(5.0, 11025, 1), rate=11025)
    info = wav.read_info(path)
    lengths = [e - s for s, e in (store.segment_frames(info, i) for i in range(10))]
    assert lengths == [5512, 5513] * 5
    assert store.segment_frames(info, 9)[1] == info.n_frames


def test_wear_of_adjacent_fractional_segments_does_not_overlap(eph_settings: Settings) -> None:
    """At 11025 Hz wearing segment 1 touches no byte of segments 0 or 2."""
    store = _store(eph_settings, degradation_rate=100.0)
    path = write_wav(store.audio_dir / "a.wav", _noise(2.0, 11025, 2), rate=11025, fmt="pcm24")
    info = wav.read_info(path)
    before = path.read_bytes()
    store.degrade("a.wav", 1)
    store.degrade("a.wav", 1)  # rate 100 %: the whole segment is zeroed
    after = path.read_bytes()
    start, end = store.segment_frames(info, 1)
    lo, hi = info.frame_offset(start), info.frame_offset(end)
    assert after[lo:hi] == bytes(hi - lo)
    assert after[:lo] == before[:lo]
    assert after[hi:] == before[hi:]


# -- names and paths -------------------------------------------------------------


def test_path_confinement_refuses_names_leaving_audio_dir(eph_settings: Settings,
                                                          tmp_path: Path) -> None:
    """../, absolute, slashed, non-.wav, hidden and symlinked-outside names raise NotFound."""
    store = _store(eph_settings)
    write_wav(tmp_path / "x.wav", tone(1.0, 8000, 1), rate=8000)  # outside AUDIO_DIR
    (store.audio_dir / "sub").mkdir()
    write_wav(store.audio_dir / "sub" / "y.wav", tone(1.0, 8000, 1), rate=8000)
    write_wav(store.audio_dir / "track.mp3", tone(1.0, 8000, 1), rate=8000)
    write_wav(store.audio_dir / ".hidden.wav", tone(1.0, 8000, 1), rate=8000)
    (store.audio_dir / "dir.wav").mkdir()
    os.symlink(tmp_path / "x.wav", store.audio_dir / "link.wav")
    bad = ["../x.wav", str(tmp_path / "x.wav"), "sub/y.wav", "sub\\y.wav", "track.mp3",
           "track", "", ".hidden.wav", "link.wav", "dir.wav", "x.wav\x00.wav",
           "missing.wav", "..", "a" * 300 + ".wav"]
    for name in bad:
        with pytest.raises(NotFound):
            store.path_of(name)
        with pytest.raises(NotFound):
            store.info(name)
        with pytest.raises(NotFound):
            store.degrade(name, 0)
    assert store.try_info("link.wav") is None
    assert sorted(os.listdir(store.metadata_dir)) == [".locks", "tracks", "waveforms"]
    assert os.listdir(store.tracks_dir) == os.listdir(store.waveforms_dir) == []


#: Names that collided in earlier layouts, or that look like another name's escape.
_TRICKY_NAMES = ["x.wav", "x.WAV", "X.wav", "a.wav", "a.wav.wav", "a.wav.waveform.wav",
                 "a.WAV.waveform.wav", "%41.wav", "A.wav", "a.json.wav", "originals.wav",
                 "tracks.wav", "a~1.wav", "ä.wav", "Ä.wav", "a\u0308.wav", "ǅ.wav", "ǆ.wav",
                 "K.wav", "\u212a.wav", "ß.wav", "SS.wav", "ss.wav", "\udcff.wav"]
_NAME_CHARS = st.characters(blacklist_characters="/\x00", blacklist_categories=["Cs"])


def _wav_names() -> st.SearchStrategy[str]:
    """File names the store accepts: not hidden, ending in .wav in any case, <= 255 bytes."""
    stem = st.text(_NAME_CHARS, min_size=1, max_size=120).filter(lambda t: t[0] != ".")
    ext = st.sampled_from([".wav", ".WAV", ".Wav"])
    made = st.builds(lambda a, b: a + b, stem, ext).filter(
        lambda n: len(n.encode("utf-8", "surrogateescape")) <= 255)
    return st.one_of(st.sampled_from(_TRICKY_NAMES), made)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(names=st.lists(_wav_names(), min_size=2, max_size=6, unique=True))
def test_per_track_files_never_collide(names: list[str]) -> None:
    """The metadata, waveform cache, pristine copy and lock of distinct tracks are distinct
    files even on a case-insensitive file system (compared case-folded), never a hidden
    name, and each file name fits in 255 bytes with room for a temp-file suffix."""
    with tempfile.TemporaryDirectory() as tmp:
        store = EphemeralStore(EphemeralSettings(
            _env_file=None, audio_dir=Path(tmp) / "a",  # type: ignore[call-arg]
            metadata_dir=Path(tmp) / "m"))
        files = [str(path(name)) for name in names
                 for path in (store.meta_path, store.waveform_path, store.original_path,
                              store.lock_path)]
        assert len({f.casefold() for f in files}) == len(files)
        for f in files:
            leaf = os.path.basename(f)
            assert not leaf.startswith(".")
            assert leaf.isascii()
            assert len(leaf) <= 215
            assert Path(f).parent.parent == store.metadata_dir


def test_symlink_inside_audio_dir_is_allowed(eph_settings: Settings) -> None:
    """A symlink to another file inside AUDIO_DIR resolves to a track."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)
    os.symlink("a.wav", store.audio_dir / "b.wav")
    assert store.path_of("b.wav") == store.audio_dir / "b.wav"
    assert store.info("b.wav").n_frames == 8000


def test_list_filenames_sorted_wav_only(eph_settings: Settings) -> None:
    """list_filenames gives the *.wav files (any case) sorted, no hidden files, no folders."""
    store = _store(eph_settings)
    for name in ("b.wav", "A.WAV", "c.Wav", "notes.txt", ".x.wav"):
        (store.audio_dir / name).write_bytes(b"x")
    (store.audio_dir / "folder.wav").mkdir()
    assert store.list_filenames() == ["A.WAV", "b.wav", "c.Wav"]


def test_replaced_file_with_other_segment_count_gets_fresh_metadata(
        eph_settings: Settings) -> None:
    """A track replaced by a file of another length starts afresh: new duration, zero counts."""
    store = _store(eph_settings)
    path = write_wav(store.audio_dir / "a.wav", tone(5.0, 8000, 1), rate=8000)
    store.degrade("a.wav", 3)
    store.add_stream("a.wav")
    write_wav(path, tone(3.0, 8000, 1), rate=8000)
    meta = store.ensure_meta("a.wav")
    assert meta["duration"] == 3.0
    assert meta["total_segments"] == 6
    assert meta["segment_play_counts"] == [0] * 6
    assert meta["total_streams"] == 0


def test_replaced_file_with_same_segment_count_gets_fresh_metadata(
        eph_settings: Settings) -> None:
    """A track replaced by a file of another length with as many segments also starts afresh."""
    store = _store(eph_settings)
    path = write_wav(store.audio_dir / "a.wav", tone(5.0, 8000, 1), rate=8000)
    store.degrade("a.wav", 3)
    write_wav(path, tone(4.8, 8000, 1), rate=8000)
    meta = store.ensure_meta("a.wav")
    assert meta["duration"] == 4.8
    assert meta["total_segments"] == 10
    assert meta["segment_play_counts"] == [0] * 10


def test_corrupt_files_are_skipped_by_try_info_and_logged_once(
        eph_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """Junk, empty and frameless .wav files give None from try_info, with one warning each."""
    store = _store(eph_settings)
    (store.audio_dir / "junk.wav").write_bytes(b"this is not audio at all" * 10)
    (store.audio_dir / "empty.wav").write_bytes(b"")
    write_wav(store.audio_dir / "noframes.wav", np.zeros((0, 2)), rate=8000)
    write_wav(store.audio_dir / "good.wav", tone(1.0, 8000, 1), rate=8000)
    with caplog.at_level(logging.WARNING, logger="taperoom.ephemeral.store"):
        for _ in range(3):
            for name in ("junk.wav", "empty.wav", "noframes.wav"):
                assert store.try_info(name) is None
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 3
    assert all(w.startswith("skipping ") for w in warned)
    assert store.try_info("good.wav") is not None
    with pytest.raises(MediaError):
        store.info("junk.wav")


def test_fixed_corrupt_file_is_read_again(eph_settings: Settings) -> None:
    """A corrupt file that is replaced by a valid WAV becomes a track."""
    store = _store(eph_settings)
    path = store.audio_dir / "a.wav"
    path.write_bytes(b"garbage")
    assert store.try_info("a.wav") is None
    write_wav(path, tone(1.0, 8000, 1), rate=8000)
    info = store.try_info("a.wav")
    assert info is not None
    assert info.n_frames == 8000


# -- originals and reset ---------------------------------------------------------


def test_keep_originals_keeps_a_pristine_copy_and_reset_restores_it(
        eph_settings: Settings) -> None:
    """With KEEP_ORIGINALS the first sight copies the file; reset restores its bytes exactly."""
    store = _store(eph_settings, keep_originals=True, degradation_rate=50.0)
    path = write_wav(store.audio_dir / "a.wav", _noise(2.0, 22050, 2), rate=22050,
                     fmt="pcm24", before=[LIST_INFO], after=[ID3])
    pristine = path.read_bytes()
    store.ensure_meta("a.wav")
    assert store.original_path("a.wav").read_bytes() == pristine
    for _ in range(3):
        for i in range(4):
            store.degrade("a.wav", i)
    store.add_stream("a.wav")
    assert path.read_bytes() != pristine
    assert store.original_path("a.wav").read_bytes() == pristine
    meta = store.reset("a.wav")
    assert path.read_bytes() == pristine
    assert meta["segment_play_counts"] == [0, 0, 0, 0]
    assert meta["total_streams"] == 0
    on_disk = json.loads(store.meta_path("a.wav").read_text())
    assert on_disk["segment_play_counts"] == [0, 0, 0, 0]
    assert on_disk["total_streams"] == 0


def test_pristine_copies_of_case_variants_and_of_earlier_versions(
        eph_settings: Settings) -> None:
    """x.wav and X.wav each get their own pristine copy and reset to it; a copy an earlier
    version kept as originals/<name> is moved to the new layout and restores its track,
    and is not taken by a track whose name differs only by case."""
    store = _store(eph_settings, keep_originals=True, degradation_rate=100.0)
    lower = write_wav(store.audio_dir / "x.wav", _noise(1.0, 8000, 1, seed=1), rate=8000)
    upper = write_wav(store.audio_dir / "X.wav", _noise(1.0, 8000, 1, seed=2), rate=8000)
    old = write_wav(store.audio_dir / "old.wav", _noise(1.0, 8000, 1, seed=3), rate=8000)
    write_wav(store.audio_dir / "OLD.wav", _noise(1.0, 8000, 1, seed=4), rate=8000)
    pristine = {p.name: p.read_bytes() for p in (lower, upper, old)}
    legacy = store.legacy_originals_dir
    legacy.mkdir()
    (legacy / "old.wav").write_bytes(pristine["old.wav"])
    old_meta = {"filename": "old.wav", "title": "old", "duration": 1.0,
                "segment_duration": 0.5, "total_segments": 2, "segment_play_counts": [0, 0],
                "created_at": "2025-11-09T12:00:00.123456Z", "total_streams": 0}
    store.meta_path("old.wav").write_text(json.dumps(old_meta))  # not first sight: no copy
    for name in ("x.wav", "X.wav", "old.wav"):
        for _ in range(2):
            store.degrade(name, 0)
        assert (store.audio_dir / name).read_bytes() != pristine[name]
    with pytest.raises(NotFound):
        store.reset("OLD.wav")  # old.wav's copy is not OLD.wav's
    for name in ("x.wav", "X.wav", "old.wav"):
        assert store.reset(name)["segment_play_counts"] == [0, 0]
        assert (store.audio_dir / name).read_bytes() == pristine[name]
    assert not (legacy / "old.wav").exists()
    assert store.original_path("old.wav").read_bytes() == pristine["old.wav"]


def test_reset_without_pristine_copy_is_not_found(eph_settings: Settings) -> None:
    """Without KEEP_ORIGINALS there is no pristine copy and reset raises NotFound."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)
    store.degrade("a.wav", 0)
    with pytest.raises(NotFound):
        store.reset("a.wav")
    assert store.ensure_meta("a.wav")["segment_play_counts"] == [1, 0]


def test_real_corpus_wav_degrades_in_place(eph_settings: Settings, corpus: Path) -> None:
    """Wearing a real tagged WAV changes only one segment's bytes; LIST and id3 stay intact."""
    store = _store(eph_settings, degradation_rate=100.0)
    src = next((corpus / "scanner" / "real_music_tagged").glob("06 - John Garner*.wav"))
    path = Path(shutil.copyfile(src, store.audio_dir / src.name))
    before = path.read_bytes()
    info = wav.read_info(path)
    store.degrade(src.name, 20)
    store.degrade(src.name, 20)
    after = path.read_bytes()
    start, end = store.segment_frames(info, 20)
    lo, hi = info.frame_offset(start), info.frame_offset(end)
    assert after[lo:hi] == bytes(hi - lo)
    assert after[:lo] == before[:lo]
    assert after[hi:] == before[hi:]
    assert wav.read_info(path) == info


def test_raw_dropout_path_matches_decoded_path(tmp_path: Path) -> None:
    """Silencing frames in raw bytes gives exactly the bytes of encode(Dropout.apply(decode))."""
    from taperoom.ephemeral.degrade import Dropout
    from tests.wavgen import FORMATS, tone, write_wav

    wavmod = wav

    for fmt in FORMATS:
        audio = tmp_path / fmt / "audio"
        audio.mkdir(parents=True)
        path = write_wav(audio / "t.wav", tone(1.0, 8000, 2), rate=8000, fmt=fmt)
        info = wavmod.read_info(path)
        raw = path.read_bytes()[info.data_offset: info.data_offset + info.data_size]
        expected = wavmod.encode(Dropout().apply(wavmod.decode(raw, info), play_count=40,
                                                 rate_percent=1.0,
                                                 rng=np.random.default_rng(5)), info)
        store = EphemeralStore(EphemeralSettings(_env_file=None,  # type: ignore[call-arg]
                                                 audio_dir=audio,
                                                 metadata_dir=tmp_path / fmt / "meta"))
        fd = os.open(path, os.O_RDWR)
        try:
            store._wear(fd, info, 0, info.n_frames, 40, np.random.default_rng(5))
        finally:
            os.close(fd)
        got = path.read_bytes()[info.data_offset: info.data_offset + info.data_size]
        assert got == expected, fmt
        assert got != raw


# -- play counts in place --------------------------------------------------------


def test_plays_and_streams_are_counted_in_place(eph_settings: Settings) -> None:
    """After the first play the metadata file keeps its inode: each play and each stream
    rewrites only its own ten-byte slot, and the file stays the contract's JSON."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "a.wav", tone(5.0, 8000, 1), rate=8000)
    store.degrade("a.wav", 0)
    path = store.meta_path("a.wav")
    inode = path.stat().st_ino
    before = path.read_bytes()
    assert store.degrade("a.wav", 7) == 1
    store.add_stream("a.wav")
    after = path.read_bytes()
    assert path.stat().st_ino == inode
    changed = _changed(before, after)
    assert 0 < len(changed) <= 2
    data = json.loads(after)
    assert set(data) == META_KEYS
    assert data["segment_play_counts"] == [1, 0, 0, 0, 0, 0, 0, 1, 0, 0]
    assert data["total_streams"] == 1


def test_original_format_is_rewritten_once_keeping_its_counts(eph_settings: Settings) -> None:
    """The original's indent=2 file is converted to the slot layout at the first play,
    with every count, created_at and total_streams kept."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "x.wav", tone(2.0, 8000, 1), rate=8000)
    original = {"filename": "x.wav", "title": "x", "duration": 2.0, "segment_duration": 0.5,
                "total_segments": 4, "segment_play_counts": [3, 0, 9, 1],
                "created_at": "2025-11-09T12:00:00.123456Z", "total_streams": 7}
    store.meta_path("x.wav").write_text(json.dumps(original, indent=2))
    assert store.degrade("x.wav", 2) == 10
    store.add_stream("x.wav")
    data = json.loads(store.meta_path("x.wav").read_text())
    assert data == {**original, "segment_play_counts": [3, 0, 10, 1], "total_streams": 8}
    inode = store.meta_path("x.wav").stat().st_ino
    assert store.degrade("x.wav", 0) == 4
    assert store.meta_path("x.wav").stat().st_ino == inode


def test_metadata_replaced_between_plays_is_read_again(eph_settings: Settings) -> None:
    """A metadata file replaced by another program between two plays is not written
    through a stale descriptor: the next play counts from the new file."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)
    store.degrade("a.wav", 1)
    meta = json.loads(store.meta_path("a.wav").read_text())
    meta["segment_play_counts"] = [5, 20]
    tmp = store.metadata_dir / "other.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, store.meta_path("a.wav"))
    assert store.degrade("a.wav", 1) == 21
    assert json.loads(store.meta_path("a.wav").read_text())["segment_play_counts"] == [5, 21]


def test_deleted_metadata_is_recreated_by_the_next_play(eph_settings: Settings) -> None:
    """Removing the metadata file while the server runs starts the counts afresh."""
    store = _store(eph_settings)
    write_wav(store.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)
    store.degrade("a.wav", 0)
    store.degrade("a.wav", 0)
    store.meta_path("a.wav").unlink()
    assert store.degrade("a.wav", 0) == 1
    assert json.loads(store.meta_path("a.wav").read_text())["segment_play_counts"] == [1, 0]
