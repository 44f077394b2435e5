"""The scanner's phases on real files: tags, hashes, strategies, policy, moves, missing."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mutagen
import pytest
from sqlalchemy import select

from taperoom.db import transaction
from taperoom.errors import Conflict
from taperoom.events import Event
from taperoom.library import models
from taperoom.library.context import LibraryServices, build_services
from taperoom.library.folderpolicy import FolderPolicy
from taperoom.library.keys import Key, parse_key
from taperoom.library.scanner.globs import glob_to_regex
from taperoom.library.scanner.runner import BATCH_SIZE
from taperoom.library.scanner.walk import WalkPolicy, walk
from tests.polling import wait_for

TAGGED = "scanner/real_music_tagged"

pytestmark = pytest.mark.backends()
SMALL = "scanner/real_music_tagged/odd/cbr_8k_mono.mp3"


# --------------------------------------------------------------------------- helpers


def copy_corpus(corpus: Path, dest: Path) -> Path:
    """Copy the tagged corpus folder (22 tracks + odd/) to `dest`, writable."""
    shutil.copytree(corpus / TAGGED, dest)
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR)
    os.chmod(dest, os.stat(dest).st_mode | stat.S_IWUSR)
    return dest


def add_directory(ctx: LibraryServices, path: Path, **fields: Any) -> str:
    """Insert a library directory row for `path`; returns its id."""
    with transaction(ctx.db) as session:
        d = models.LibraryDirectory(id=models.new_id(), path=str(path), name=path.name,
                                    **fields)
        session.add(d)
    return d.id


def tracks(ctx: LibraryServices, directory_id: str | None = None) -> dict[str, models.Track]:
    """Track rows by relative path (of one directory, or all)."""
    with ctx.db() as session:
        stmt = select(models.Track)
        if directory_id is not None:
            stmt = stmt.where(models.Track.library_directory_id == directory_id)
        return {t.relative_path or t.file_path: t for t in session.scalars(stmt)}


def directory(ctx: LibraryServices, directory_id: str) -> models.LibraryDirectory:
    """The directory row, freshly read."""
    with ctx.db() as session:
        d = session.get(models.LibraryDirectory, directory_id)
        assert d is not None
        return d


class Recorder:
    """Collects the events sent on a context's bus."""

    def __init__(self, ctx: LibraryServices) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.stop = ctx.bus.subscribe(self._on)

    def _on(self, name: str, data: dict[str, Any]) -> None:
        with self._lock:
            self.events.append((name, data))

    def named(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [d for n, d in self.events if n == name]

    def names(self) -> list[str]:
        with self._lock:
            return [n for n, _ in self.events]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


def small_files(corpus: Path, root: Path, rels: list[str]) -> None:
    """Copy a small real MP3 to each relative path below `root`."""
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(corpus / SMALL, p)


@pytest.fixture
def ctx_factory(lib_settings: Callable[..., Any]) -> Iterator[Callable[..., LibraryServices]]:
    """Open library contexts with custom settings (closed after the test)."""
    opened: list[LibraryServices] = []

    def make(**overrides: Any) -> LibraryServices:
        ctx = build_services(lib_settings(**overrides))
        opened.append(ctx)
        return ctx

    yield make
    for ctx in opened:
        ctx.close()


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(("text", "expected"), [
    ("Am", Key(9, 0)), ("F#m", Key(6, 0)), ("C#", Key(1, 1)), ("Dbm", Key(1, 0)),
    ("b minor", Key(11, 0)), ("Bb", Key(10, 1)), ("E♭m", Key(3, 0)), ("Gb major", Key(6, 1)),
    ("A min", Key(9, 0)), ("C# Minor", Key(1, 0)), ("Ebmaj", Key(3, 1)),
    ("8A", Key(9, 0)), ("8B", Key(0, 1)), ("11B", Key(9, 1)), ("1A", Key(8, 0)),
    ("12A", Key(1, 0)), ("1B", Key(11, 1)), ("08A", Key(9, 0)),
    ("1m", Key(9, 0)), ("1d", Key(0, 1)), ("6d", Key(11, 1)), ("10m", Key(0, 0)),
    ("8A - Am", Key(9, 0)), ("Am/8A", Key(9, 0)),
    ("", None), (None, None), ("o", None), ("xyz", None), ("13A", None), ("H", None),
])
def test_parse_key_notations(text: str | None, expected: Key | None) -> None:
    """Standard, Camelot and Open Key texts parse to (pitch class C=0, mode 1 major/0 minor)."""
    assert parse_key(text) == expected


def test_glob_patterns_match_paths_and_names() -> None:
    """Globs: * within a component, ** across components, case-insensitive, name or path."""
    samples = glob_to_regex("**/Samples/**")
    assert samples.match("Samples") and samples.match("Samples/kick.wav")
    assert samples.match("a/b/Samples/c/kick.wav") and not samples.match("a/SamplesX/k.wav")
    house = glob_to_regex("House/**")
    assert house.match("House") and house.match("house/deep/x.flac")
    assert not house.match("Techno/House/x.flac")
    star = glob_to_regex("*.flac")
    assert star.match("x.FLAC") and not star.match("a/x.flac")
    assert glob_to_regex(".*").match(".DS_Store")
    assert glob_to_regex("[!a]?.mp3").match("bc.mp3") and not glob_to_regex("[!a]?.mp3").match(
        "ac.mp3")


# --------------------------------------------------------------------------- corpus


def test_hybrid_scan_reads_real_corpus(lib_ctx: LibraryServices, corpus: Path,
                                       tmp_path: Path) -> None:
    """The 22 tagged files match manifest.json; odd files are read or recorded, none stops it."""
    root = copy_corpus(corpus, tmp_path / "lib")
    (root / "odd" / "broken_header.flac").write_bytes(b"fLaC\x00\x00\x00\x22" + b"\x13" * 300)
    did = add_directory(lib_ctx, root)
    rec = Recorder(lib_ctx)
    result = lib_ctx.scans.scan_sync(did, "hybrid")
    assert result["filesFound"] == 33 and result["tracksAdded"] == 33
    assert result["filesProcessed"] == 33 and not result["cancelled"]
    rows = tracks(lib_ctx, did)
    assert len(rows) == 33
    manifest = json.loads((corpus / TAGGED / "manifest.json").read_text())
    assert len(manifest) == 22
    for entry in manifest:
        t = rows[entry["file"]]
        assert t.file_path == str(root / entry["file"])
        assert (t.title, t.artist, t.album) == (entry["title"], entry["artist"], entry["album"])
        assert t.bpm == entry["bpm_tag"]
        assert bool(t.has_artwork) == entry["cover"]
        assert t.duration_seconds == pytest.approx(entry["duration_s"], abs=0.1)
        assert t.file_hash and len(t.file_hash) == 32 and t.quick_hash and t.scan_error is None
        assert t.sample_rate and t.channels and t.codec
        if entry["format"] in ("wav", "aiff"):
            # these files carry only TIT2/TPE1/TALB/APIC in their ID3 chunk (checked with
            # mutagen): genre/year/key are read when present (RIFF INFO), never invented
            assert t.genre in (None, entry["genre"]) and t.year in (None, entry["year"])
            assert t.key_tag in (None, entry["key_tag"])
        else:
            assert (t.genre, t.year, t.key_tag) == (entry["genre"], entry["year"],
                                                    entry["key_tag"])
        key = parse_key(entry["key_tag"]) if t.key_tag else None
        assert (t.musical_key, t.mode) == ((key.musical_key, key.mode) if key else (None, None))
    opus = rows[manifest[4]["file"]]
    assert (opus.key_tag, opus.musical_key, opus.mode) == ("b minor", 11, 0)
    # odd files: unreadable ones are rows with scan_error and a file-name title
    errors = {Path(e["path"]).name: e["error"] for e in result["errors"]}
    assert set(errors) == {"zero_length.mp3", "not_audio.ogg", "broken_header.flac"}
    for name in errors:
        t = rows[f"odd/{name}"]
        assert t.scan_error and t.file_hash is None and t.title == Path(name).stem.replace("_", " ")
    assert rows["odd/UPPER.FLAC"].codec == "flac" and rows["odd/actually_flac.mp3"].codec == "flac"
    for name in ("truncated_half.mp3", "junk_before_frames.mp3", "cbr_8k_mono.mp3",
                 "mono_22k.wav", "float32_96k.wav", "untagged.mp3"):
        assert rows[f"odd/{name}"].file_hash, name
    assert rows["odd/mono_22k.wav"].channels == 1
    assert rows["odd/float32_96k.wav"].sample_rate == 96000
    # the same FLAC stream in two files is one duplicate group of 2
    a, b = rows["odd/UPPER.FLAC"], rows["odd/actually_flac.mp3"]
    assert a.file_hash == b.file_hash and a.duplicate_group_id == b.duplicate_group_id
    assert a.duplicate_group_id is not None
    detected = rec.named(Event.DUPLICATE_DETECTED)
    assert [d["totalDuplicates"] for d in detected] == [2]
    assert set(detected[0]["trackIds"]) == {a.id, b.id}
    # events and directory counters
    added = rec.named(Event.TRACK_ADDED)
    assert len(added) == 33 and all(e["track"]["id"] == e["trackId"] for e in added)
    assert added[0]["track"]["is_missing"] == 0 and "file_mtime_ns" not in added[0]["track"]
    assert rec.names()[0] == Event.SCAN_STARTED and rec.names()[-1] == Event.SCAN_COMPLETE
    complete = rec.named(Event.SCAN_COMPLETE)[0]
    assert complete["directoryId"] == did and complete["result"]["tracksAdded"] == 33
    progress = rec.named(Event.SCAN_PROGRESS)
    assert progress and progress[-1]["percent"] == 100.0 and progress[-1]["filesProcessed"] == 33
    d = directory(lib_ctx, did)
    assert (d.total_files, d.total_tracks, d.total_missing) == (33, 33, 0)
    assert d.scan_status == "idle" and d.last_scan is not None


def test_unchanged_rescan_only_stats(lib_ctx: LibraryServices, corpus: Path,
                                     tmp_path: Path) -> None:
    """A hybrid rescan of unchanged files reads nothing, writes no track, sends no track event."""
    root = copy_corpus(corpus, tmp_path / "lib")
    did = add_directory(lib_ctx, root)
    lib_ctx.scans.scan_sync(did, "hybrid")

    def snapshot() -> dict[str, dict[str, Any]]:
        return {k: {c.key: getattr(t, c.key) for c in models.Track.__table__.columns}
                for k, t in tracks(lib_ctx, did).items()}

    before = snapshot()
    rec = Recorder(lib_ctx)
    result = lib_ctx.scans.scan_sync(did, "hybrid")
    assert result["filesFound"] == 32 and result["filesProcessed"] == 32
    assert (result["tracksAdded"], result["tracksUpdated"], result["tracksMissing"],
            result["tracksMoved"], result["tracksRestored"]) == (0, 0, 0, 0, 0)
    # unreadable files are not retried while unchanged, so no error is reported again
    assert result["errors"] == []
    assert not [n for n in rec.names() if n.startswith("track:") or n.startswith("duplicate:")]
    assert snapshot() == before  # date_added, hashes, tags: every column untouched


def test_fast_hybrid_full_strategies(lib_ctx: LibraryServices, corpus: Path,
                                     tmp_path: Path) -> None:
    """fast only stats (file-name titles, no hash); hybrid fills in the rest; full re-reads all."""
    root = copy_corpus(corpus, tmp_path / "lib")
    did = add_directory(lib_ctx, root)
    fast = lib_ctx.scans.scan_sync(did, "fast")
    assert fast["tracksAdded"] == 32 and fast["errors"] == []
    rows = tracks(lib_ctx, did)
    t = rows["01 - Muldjord - Armygeddon.mp3"]
    assert (t.title, t.artist, t.track_number) == ("Armygeddon", "Muldjord", 1)
    assert t.file_hash is None and t.album is None and t.bpm is None and t.duration_seconds is None
    assert t.quick_hash and t.scan_error is None
    assert all(r.file_hash is None for r in rows.values())

    hybrid = lib_ctx.scans.scan_sync(did, "hybrid")
    assert hybrid["tracksAdded"] == 0 and hybrid["tracksUpdated"] == 32
    t2 = tracks(lib_ctx, did)["01 - Muldjord - Armygeddon.mp3"]
    assert t2.id == t.id and t2.date_added == t.date_added
    assert t2.album == "Songs by Muldjord (Frets on Fire)" and t2.bpm == 170.0 and t2.file_hash

    again = lib_ctx.scans.scan_sync(did, "hybrid")
    assert again["tracksUpdated"] == 0
    full = lib_ctx.scans.scan_sync(did, "full")
    assert full["tracksUpdated"] == 32 and full["tracksAdded"] == 0
    assert tracks(lib_ctx, did)["01 - Muldjord - Armygeddon.mp3"].file_hash == t2.file_hash


def test_changed_file_is_reread(lib_ctx: LibraryServices, corpus: Path, tmp_path: Path) -> None:
    """A re-tagged file is re-read by hybrid (same id, new tags, same audio hash), not by fast."""
    root = copy_corpus(corpus, tmp_path / "lib")
    did = add_directory(lib_ctx, root)
    lib_ctx.scans.scan_sync(did, "hybrid")
    rel = "02 - Muldjord - Chaos God.flac"
    before = tracks(lib_ctx, did)[rel]
    audio = mutagen.File(root / rel)
    audio["title"] = "Chaos God (Edit)"
    audio["initialkey"] = "11B"
    audio.save()
    fast = lib_ctx.scans.scan_sync(did, "fast")
    assert fast["tracksUpdated"] == 0
    assert tracks(lib_ctx, did)[rel].title == "Chaos God"
    rec = Recorder(lib_ctx)
    result = lib_ctx.scans.scan_sync(did, "hybrid")
    assert result["tracksUpdated"] == 1 and result["tracksAdded"] == 0
    after = tracks(lib_ctx, did)[rel]
    assert after.id == before.id and after.title == "Chaos God (Edit)"
    assert (after.key_tag, after.musical_key, after.mode) == ("11B", 9, 1)
    assert after.file_hash == before.file_hash  # tags are not part of the audio hash
    assert after.file_mtime_ns != before.file_mtime_ns
    updated = rec.named(Event.TRACK_UPDATED)
    assert len(updated) == 1 and updated[0]["trackId"] == before.id
    assert updated[0]["changes"]["title"] == "Chaos God (Edit)"


# --------------------------------------------------------------------------- walk policy


def test_walk_policy_patterns_depth_hidden(corpus: Path, tmp_path: Path) -> None:
    """Extensions (any case), include/exclude globs, max depth, recursion and hidden names."""
    root = tmp_path / "lib"
    small_files(corpus, root, ["a.mp3", "LOUD.MP3", "House/b.flac", "House/Samples/kick.mp3",
                               "Techno/c.mp3", "x/y/z/deep.mp3", ".hidden/h.mp3", ".h.mp3",
                               "._resource.mp3"])
    (root / "notes.txt").write_text("not audio")
    exts = frozenset({".mp3", ".flac"})

    def found(**kw: Any) -> set[str]:
        files, errors = walk(WalkPolicy(root=str(root), extensions=exts, **kw))
        assert errors == []
        return {f.rel for f in files}

    everything = {"a.mp3", "LOUD.MP3", "House/b.flac", "House/Samples/kick.mp3", "Techno/c.mp3",
                  "x/y/z/deep.mp3"}
    assert found() == everything
    assert found(max_depth=0) == {"a.mp3", "LOUD.MP3"}
    assert found(max_depth=1) == {"a.mp3", "LOUD.MP3", "House/b.flac", "Techno/c.mp3"}
    assert found(exclude=(glob_to_regex("**/Samples/**"),)) == everything - {
        "House/Samples/kick.mp3"}
    assert found(include=(glob_to_regex("House/**"),)) == {"House/b.flac",
                                                           "House/Samples/kick.mp3"}
    assert found(include=(glob_to_regex("*.flac"),)) == {"House/b.flac"}
    assert ".hidden/h.mp3" in found(skip_hidden=False)


def test_directory_settings_drive_the_scan(lib_ctx: LibraryServices, corpus: Path,
                                           tmp_path: Path) -> None:
    """scan_patterns/exclude_patterns/recursive_scan of the directory row apply to a real scan."""
    root = tmp_path / "lib"
    small_files(corpus, root, ["a.mp3", "House/b.mp3", "House/Samples/kick.mp3", "Deep/x/c.mp3"])
    did = add_directory(lib_ctx, root, scan_patterns=["House/**", "a.mp3"],
                        exclude_patterns=["**/Samples/**"])
    lib_ctx.scans.scan_sync(did, "fast")
    assert set(tracks(lib_ctx, did)) == {"a.mp3", "House/b.mp3"}
    other = tmp_path / "flat"
    small_files(corpus, other, ["top.mp3", "sub/below.mp3"])
    flat = add_directory(lib_ctx, other, recursive_scan=False)
    lib_ctx.scans.scan_sync(flat, "fast")
    assert set(tracks(lib_ctx, flat)) == {"top.mp3"}


def test_symlinks_skipped_or_followed_without_loops(corpus: Path, tmp_path: Path) -> None:
    """Links are skipped by default; followed, every real folder is entered once (no loop)."""
    root = tmp_path / "lib"
    outside = tmp_path / "elsewhere"
    small_files(corpus, root, ["real/a.mp3"])
    small_files(corpus, outside, ["o.mp3"])
    os.symlink(outside, root / "linked")
    os.symlink(root, root / "real" / "loop")
    os.symlink(root / "real" / "a.mp3", root / "alias.mp3")
    exts = frozenset({".mp3"})
    files, _ = walk(WalkPolicy(root=str(root), extensions=exts))
    assert {f.rel for f in files} == {"real/a.mp3"}
    files, _ = walk(WalkPolicy(root=str(root), extensions=exts, follow_symlinks=True))
    assert {f.rel for f in files} == {"real/a.mp3", "linked/o.mp3", "alias.mp3"}


def test_follow_symlinks_never_enters_system_folders(corpus: Path, tmp_path: Path) -> None:
    """With ``follow_symlinks``, a link to ``/`` or to a system folder is reported, not
    walked (the walk would otherwise read the whole machine, ``/proc`` included), while
    a link to an ordinary folder is still followed."""
    root = tmp_path / "lib"
    outside = tmp_path / "elsewhere"
    small_files(corpus, root, ["real/a.mp3"])
    small_files(corpus, outside, ["o.mp3"])
    os.symlink(outside, root / "linked")
    os.symlink("/", root / "everything")
    os.symlink("/proc", root / "kernel")
    policy = WalkPolicy(root=str(root), extensions=frozenset({".mp3"}), follow_symlinks=True,
                        refusal=FolderPolicy().refusal)
    files, errors = walk(policy)
    assert {f.rel for f in files} == {"real/a.mp3", "linked/o.mp3"}
    assert {Path(e["path"]).name for e in errors} == {"everything", "kernel"}
    assert all(e["error"].startswith("link not followed: Refused as a library folder")
               for e in errors)


def test_unicode_and_long_names(lib_ctx: LibraryServices, corpus: Path, tmp_path: Path) -> None:
    """Non-ASCII and 250-byte file names are stored exactly and read like any other file."""
    root = tmp_path / "lib"
    long_name = "ü" * 60 + " - " + "x" * 120 + ".mp3"
    assert len(long_name.encode()) <= 255
    names = ["Ольга - Песня ☆.mp3", "日本語/曲 (ünïcödé).mp3", long_name]
    small_files(corpus, root, names)
    did = add_directory(lib_ctx, root)
    result = lib_ctx.scans.scan_sync(did, "hybrid")
    assert result["tracksAdded"] == 3 and result["errors"] == []
    rows = tracks(lib_ctx, did)
    assert set(rows) == set(names)
    assert rows[names[0]].title == "Песня ☆" and rows[names[0]].artist == "Ольга"
    assert rows[long_name].file_path == str(root / long_name) and rows[long_name].file_hash


# --------------------------------------------------------------------------- moves, missing


def test_moved_file_keeps_id_cues_and_playlists(lib_ctx: LibraryServices, corpus: Path,
                                                tmp_path: Path) -> None:
    """A renamed/moved file keeps its track id, hot cues and playlist membership."""
    root = copy_corpus(corpus, tmp_path / "lib")
    did = add_directory(lib_ctx, root)
    lib_ctx.scans.scan_sync(did, "hybrid")
    rel = "08 - Maxstack - A New Journey.mp3"
    track = tracks(lib_ctx, did)[rel]
    with transaction(lib_ctx.db) as session:
        playlist = models.Playlist(id=models.new_id(), name="Warm-up")
        session.add(playlist)
        session.flush()
        session.add(models.PlaylistTrack(playlist_id=playlist.id, track_id=track.id, position=0))
        session.add(models.HotCue(id=models.new_id(), track_id=track.id, cue_index=0,
                                  position=12.5, source="user"))
    (root / "Moved" / "Deeper").mkdir(parents=True)
    (root / rel).rename(root / "Moved" / "Deeper" / "Journey (renamed).mp3")
    rec = Recorder(lib_ctx)
    result = lib_ctx.scans.scan_sync(did, "hybrid")
    assert (result["tracksMoved"], result["tracksAdded"], result["tracksMissing"]) == (1, 0, 0)
    rows = tracks(lib_ctx, did)
    moved = rows["Moved/Deeper/Journey (renamed).mp3"]
    assert moved.id == track.id and rel not in rows and not moved.is_missing
    assert moved.file_path == str(root / "Moved" / "Deeper" / "Journey (renamed).mp3")
    assert moved.date_added == track.date_added
    with lib_ctx.db() as session:
        cues = session.scalars(select(models.HotCue).where(models.HotCue.track_id == track.id))
        assert [c.position for c in cues] == [12.5]
        entries = session.scalars(select(models.PlaylistTrack.track_id)
                                  .where(models.PlaylistTrack.playlist_id == playlist.id))
        assert list(entries) == [track.id]
    assert rec.named(Event.TRACK_MOVED) == [{
        "trackId": track.id, "oldPath": str(root / rel),
        "newPath": str(root / "Moved" / "Deeper" / "Journey (renamed).mp3")}]
    assert not rec.named(Event.TRACK_ADDED) and not rec.named(Event.TRACK_MISSING)


def test_fast_scan_recognises_moves(lib_ctx: LibraryServices, corpus: Path, tmp_path: Path) -> None:
    """Even fast scans (no audio hash) keep a moved file's id, through size + quick hash."""
    root = copy_corpus(corpus, tmp_path / "lib")
    did = add_directory(lib_ctx, root)
    lib_ctx.scans.scan_sync(did, "fast")
    rel = "09 - Maxstack - Aberrations.mp3"
    track_id = tracks(lib_ctx, did)[rel].id
    (root / rel).rename(root / "odd" / "Aberrations.mp3")
    result = lib_ctx.scans.scan_sync(did, "fast")
    assert (result["tracksMoved"], result["tracksAdded"], result["tracksMissing"]) == (1, 0, 0)
    assert tracks(lib_ctx, did)["odd/Aberrations.mp3"].id == track_id


def test_move_between_library_folders(lib_ctx: LibraryServices, corpus: Path,
                                      tmp_path: Path) -> None:
    """A file moved to another library folder keeps its id, whichever folder is scanned first."""
    a_root = copy_corpus(corpus, tmp_path / "A")
    b_root = tmp_path / "B"
    small_files(corpus, b_root, ["b.mp3"])
    a, b = add_directory(lib_ctx, a_root), add_directory(lib_ctx, b_root)
    lib_ctx.scans.scan_sync(a, "hybrid")
    lib_ctx.scans.scan_sync(b, "hybrid")
    rel = "12 - Maxstack - By-Product.ogg"
    track_id = tracks(lib_ctx, a)[rel].id
    shutil.move(str(a_root / rel), str(b_root / "By-Product.ogg"))
    result = lib_ctx.scans.scan_sync(b, "hybrid")
    assert (result["tracksMoved"], result["tracksAdded"]) == (1, 0)
    moved = tracks(lib_ctx, b)["By-Product.ogg"]
    assert moved.id == track_id and moved.library_directory_id == b
    assert directory(lib_ctx, a).total_tracks == 31 and directory(lib_ctx, b).total_tracks == 2
    again = lib_ctx.scans.scan_sync(a, "hybrid")
    assert again["tracksMissing"] == 0 and again["tracksAdded"] == 0


def test_missing_then_restored(lib_ctx: LibraryServices, corpus: Path, tmp_path: Path) -> None:
    """A vanished file is marked missing (never deleted) and restored with its id when back."""
    root = copy_corpus(corpus, tmp_path / "lib")
    did = add_directory(lib_ctx, root)
    lib_ctx.scans.scan_sync(did, "hybrid")
    rel = "17 - various (librosa example data) - Kevin MacLeod - Vibe Ace.mp3"
    track_id = tracks(lib_ctx, did)[rel].id
    parked = tmp_path / "parked.mp3"
    shutil.move(str(root / rel), str(parked))
    rec = Recorder(lib_ctx)
    result = lib_ctx.scans.scan_sync(did, "hybrid")
    assert result["tracksMissing"] == 1 and result["filesFound"] == 31
    t = tracks(lib_ctx, did)[rel]
    assert t.id == track_id and t.is_missing and t.missing_since is not None
    assert rec.named(Event.TRACK_MISSING) == [{"trackId": track_id, "path": str(root / rel),
                                               "directoryId": did}]
    d = directory(lib_ctx, did)
    assert (d.total_files, d.total_tracks, d.total_missing) == (32, 31, 1)
    assert lib_ctx.scans.scan_sync(did, "hybrid")["tracksMissing"] == 0  # reported once
    shutil.move(str(parked), str(root / rel))
    rec.clear()
    result = lib_ctx.scans.scan_sync(did, "hybrid")
    assert result["tracksRestored"] == 1 and result["tracksAdded"] == 0
    t = tracks(lib_ctx, did)[rel]
    assert t.id == track_id and not t.is_missing and t.missing_since is None
    assert [e["trackId"] for e in rec.named(Event.TRACK_RESTORED)] == [track_id]
    assert directory(lib_ctx, did).total_missing == 0


def test_unreachable_root_is_an_error_not_mass_missing(lib_ctx: LibraryServices, corpus: Path,
                                                       tmp_path: Path) -> None:
    """Scanning a folder whose root is gone fails with Conflict and marks nothing missing."""
    root = copy_corpus(corpus, tmp_path / "lib")
    did = add_directory(lib_ctx, root)
    lib_ctx.scans.scan_sync(did, "fast")
    root.rename(tmp_path / "unplugged")
    with pytest.raises(Conflict, match="not available"):  # refused before it starts
        lib_ctx.scans.scan_sync(did, "hybrid")
    assert directory(lib_ctx, did).scan_status == "idle"
    with pytest.raises(Conflict, match="not available"):  # the scanner's own guard
        lib_ctx.scanner.scan(did, "hybrid")
    assert not any(t.is_missing for t in tracks(lib_ctx, did).values())
    assert directory(lib_ctx, did).scan_status == "error"


# --------------------------------------------------------------------------- orchestration


def test_cancel_stops_between_batches(lib_ctx: LibraryServices, corpus: Path,
                                      tmp_path: Path) -> None:
    """A cancelled scan stops after its current batch, keeps what it saved, and ends idle."""
    root = tmp_path / "lib"
    small_files(corpus, root, [f"d{i // 100}/t{i:04d}.mp3" for i in range(3 * BATCH_SIZE)])
    did = add_directory(lib_ctx, root)

    def on_event(name: str, data: dict[str, Any]) -> None:
        if name == Event.SCAN_PROGRESS and data["phase"] == "read":
            lib_ctx.scans.cancel(did)

    lib_ctx.bus.subscribe(on_event)
    result = lib_ctx.scans.scan_sync(did, "fast")
    assert result["cancelled"] is True
    assert result["filesFound"] == 3 * BATCH_SIZE
    assert 0 <= result["tracksAdded"] <= BATCH_SIZE
    assert len(tracks(lib_ctx, did)) == result["tracksAdded"]
    d = directory(lib_ctx, did)
    assert d.scan_status == "idle" and d.last_scan is None
    assert lib_ctx.scans.status(did)["scanning"] is False


def test_concurrency_limit_queues_by_priority(ctx_factory: Callable[..., LibraryServices],
                                              corpus: Path, tmp_path: Path) -> None:
    """With max_concurrent_scans=1 scans queue; high priority jumps the queue; none overlap."""
    ctx = ctx_factory(max_concurrent_scans=1)
    roots = [copy_corpus(corpus, tmp_path / name) for name in ("A", "B", "C")]
    a, b, c = (add_directory(ctx, r) for r in roots)
    rec = Recorder(ctx)
    lock = ctx.scanner.locks.lock(a)
    with lock:  # A starts running but waits on its folder lock: B and C must queue
        ctx.scans.start(a, "fast")
        wait_for(lambda: ctx.scans.status(a).get("state") == "running", 10, "scan A to run")
        ctx.scans.start(b, "fast", "low")
        ctx.scans.start(c, "fast", "high")
        states = {s["libraryDirectoryId"]: s["state"] for s in ctx.scans.active()}
        assert states[b] == states[c] == "queued"
        assert [s["libraryDirectoryId"] for s in ctx.scans.active()][1:] == [c, b]
    for d in (a, b, c):
        ctx.scans.wait(d, timeout=30)
    order = [(n, d["directoryId"]) for n, d in rec.events
             if n in (Event.SCAN_STARTED, Event.SCAN_COMPLETE)]
    assert order == [(Event.SCAN_STARTED, a), (Event.SCAN_COMPLETE, a),
                     (Event.SCAN_STARTED, c), (Event.SCAN_COMPLETE, c),
                     (Event.SCAN_STARTED, b), (Event.SCAN_COMPLETE, b)]
    assert all(len(tracks(ctx, d)) == 32 for d in (a, b, c))


def test_cli_scan_by_path_and_id(lib_ctx: LibraryServices, corpus: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``library scan`` finds the folder by path or id, scans it and prints the counts."""
    from typer.testing import CliRunner

    from taperoom.errors import NotFound
    from taperoom.library.cli import library_cli

    root = copy_corpus(corpus, tmp_path / "lib")
    did = add_directory(lib_ctx, root)
    monkeypatch.setenv("DATABASE_PATH", str(lib_ctx.settings.database_path))
    monkeypatch.setenv("DATABASE_URL", lib_ctx.settings.database_url.get_secret_value())
    runner = CliRunner()
    out = runner.invoke(library_cli, ["scan", str(root), "--strategy", "fast"])
    assert out.exit_code == 0, out.output
    assert "32 added" in out.output
    assert len(tracks(lib_ctx, did)) == 32
    out = runner.invoke(library_cli, ["scan", did])
    assert out.exit_code == 0 and "32 updated" in out.output  # hybrid reads what fast left
    out = runner.invoke(library_cli, ["scan", str(tmp_path / "elsewhere")])
    assert isinstance(out.exception, NotFound)
    out = runner.invoke(library_cli, ["scan", did, "--strategy", "slow"])
    assert out.exit_code == 2


def test_reader_processes_do_not_import_the_app_again(tmp_path: Path) -> None:
    """Two pools of reader processes, started by a main script that imports the app,
    import the app's modules once in the forkserver, not once in every reader process
    (Python 3.11's forkserver re-runs the main script in each process it forks)."""
    main = tmp_path / "main.py"
    main.write_text(
        "import taperoom.library.context\n"
        "from taperoom.library.scanner.read import reader_pool\n"
        "if __name__ == '__main__':\n"
        "    for _ in range(2):\n"
        "        with reader_pool(2, 64) as pool:\n"
        "            assert sorted(pool.map(abs, [-1, -2, -3, -4])) == [1, 2, 3, 4]\n",
        encoding="utf-8")
    done = subprocess.run([sys.executable, str(main)], capture_output=True, text=True,
                          timeout=120, check=True,
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    importers = [line for line in done.stderr.splitlines()
                 if line.rsplit("|", 1)[-1].strip() == "taperoom.library.models"]
    assert len(importers) == 2  # this process and the forkserver
