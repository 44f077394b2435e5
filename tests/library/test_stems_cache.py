"""The stem cache on a real folder: complete sets only, least recently used evicted first
by size (use kept in its index, shared by two caches as by two processes), never the set
just installed nor one being written, older folders adopted, crashed writes tidied."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from taperoom.library.stems import STEM_NAMES
from taperoom.library.stems.cache import STALE_WORK, StemCache
from tests.library.stemskit import write_audio

#: The stems :func:`_put` writes: 0.1 s of a stereo 16-bit tone.
TONE = (np.sin(np.arange(4410) / 7.0) * 8000).astype(np.int16).repeat(2).reshape(-1, 2)


class Clock:
    """A settable clock (seconds)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _put(cache: StemCache, file_hash: str, names: tuple[str, ...] = STEM_NAMES) -> list[str]:
    """Write and install a set of real WAV stems; the hashes evicted."""
    with cache.writing(file_hash) as work:
        for name in names:
            write_audio(work / f"{name}.wav", TONE, "wav")
        return cache.install(file_hash, work)


def _set_bytes(tmp_path: Path) -> int:
    probe = StemCache(tmp_path / "probe", max_bytes=10**12)
    _put(probe, "probe")
    return sum(probe.usage().values())


def _sets(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def test_only_complete_sets_are_found_and_paths_are_absolute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A set lacking one of bass, drums, other, vocals is not found; a complete one gives
    absolute paths (extra stems of a six-stem model included); bad hashes find nothing."""
    monkeypatch.chdir(tmp_path)
    cache = StemCache(Path("relative/stem_cache"), max_bytes=10**9)
    _put(cache, "h1", ("bass", "drums", "other"))
    assert cache.lookup("h1") is None and cache.present("h1") == ["bass", "drums", "other"]
    _put(cache, "h2", (*STEM_NAMES, "piano"))
    found = cache.lookup("h2")
    assert found is not None and sorted(found) == [*STEM_NAMES[:3], "piano", "vocals"]
    assert found["bass"] == (tmp_path / "relative/stem_cache/h2/bass.wav")
    assert all(p.is_absolute() for p in found.values())
    assert cache.lookup("../h2") is None and cache.lookup("") is None
    with pytest.raises(ValueError):
        cache.begin("../escape")


def test_the_least_recently_used_sets_go_first_and_never_the_new_one(tmp_path: Path) -> None:
    """Room for two sets: the third evicts the one used least recently (a lookup counts as
    a use); a set larger than the whole cache stays alone."""
    size = _set_bytes(tmp_path)
    clock = Clock()
    root = tmp_path / "stem_cache"
    cache = StemCache(root, max_bytes=int(size * 2.5), clock=clock)
    assert _put(cache, "a") == [] and _put(cache, "b") == []
    assert cache.lookup("a") is not None  # b is now the least recently used
    assert _put(cache, "c") == ["b"]
    assert _sets(root) == ["a", "c"] and set(cache.usage()) == {"a", "c"}
    assert cache.usage()["a"] == size
    small = StemCache(root, max_bytes=size // 2, clock=clock)
    assert sorted(_put(small, "d")) == ["a", "c"]
    assert _sets(root) == ["d"] and small.lookup("d") is not None


def test_a_set_being_written_is_never_evicted(tmp_path: Path) -> None:
    """While a new set of `a` is being written, the older `a` is kept however old; its
    temporary folder is not in the index; the install then replaces it."""
    size = _set_bytes(tmp_path)
    root = tmp_path / "stem_cache"
    cache = StemCache(root, max_bytes=int(size * 1.5), clock=Clock())
    _put(cache, "a")
    with cache.writing("a") as work:
        for name in STEM_NAMES:
            write_audio(work / f"{name}.wav", TONE[::-1].copy(), "wav")
        assert _put(cache, "b") == []  # over the limit, but a is being written
        assert [n for n in _sets(root) if not n.startswith(".")] == ["a", "b"]
        assert work.is_dir() and set(cache.usage()) == {"a", "b"}
        assert cache.install("a", work) == ["b"]
    assert _sets(root) == ["a"]
    got, _ = sf.read(str(root / "a" / "bass.wav"), dtype="int16")
    assert np.array_equal(got, TONE[::-1])


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    """An error while a set is written removes its temporary folder; the old set stays."""
    root = tmp_path / "stem_cache"
    cache = StemCache(root, max_bytes=10**9)
    _put(cache, "a")
    with pytest.raises(RuntimeError), cache.writing("a") as work:
        write_audio(work / "bass.wav", TONE, "wav")
        raise RuntimeError("the download broke")
    assert _sets(root) == ["a"] and cache.lookup("a") is not None


def test_two_caches_share_one_index(tmp_path: Path) -> None:
    """Two caches on one folder (two worker processes): a use seen by one counts in the
    other's eviction."""
    size = _set_bytes(tmp_path)
    root = tmp_path / "stem_cache"
    clock = Clock()
    one = StemCache(root, max_bytes=int(size * 2.5), clock=clock)
    two = StemCache(root, max_bytes=int(size * 2.5), clock=clock)
    _put(one, "a")
    _put(two, "b")
    assert one.lookup("a") is not None
    assert _put(two, "c") == ["b"]
    index = json.loads((root / "index.json").read_text())
    assert sorted(index["sets"]) == ["a", "c"] and index["version"] == 1


def test_older_folders_are_adopted_and_crashed_writes_tidied(tmp_path: Path) -> None:
    """Sets without an index entry (an older cache) are adopted with their modification
    time as last use; entries whose folder is gone are dropped; temporary folders older
    than a day are removed, newer ones kept."""
    root = tmp_path / "stem_cache"
    for name, age in (("old", 3000.0), ("new", 10.0)):
        for stem in STEM_NAMES:
            write_audio(root / name / f"{stem}.wav", TONE, "wav")
        os.utime(root / name, (1_000_000.0 - age,) * 2)
    (root / "index.json").write_text(json.dumps({"version": 1, "sets": {
        "gone": {"size": 5, "used": 1.0}}}))
    crashed, recent = root / ".x.crashed", root / ".y.recent"
    crashed.mkdir()
    recent.mkdir()
    os.utime(crashed, (1_000_000.0 - STALE_WORK - 10,) * 2)
    os.utime(recent, (1_000_000.0 - 10,) * 2)
    clock = Clock()
    size = _set_bytes(tmp_path)
    cache = StemCache(root, max_bytes=int(size * 2.5), clock=clock)
    cache.tidy()
    assert not crashed.exists() and recent.exists()
    assert set(cache.usage()) == {"old", "new"}
    assert _put(cache, "c") == ["old"]
