"""Benchmark of the library scanner and track listing on a library of 10,000 files.

Builds a library from the real tracks of the shared corpus
(``../shared/corpus/scanner/real_music_tagged``): every file is a copy of one of
the 22 tracks (MP3, M4A, Ogg Vorbis, Opus, FLAC, WAV, AIFF; mostly the small
formats) with its own tags written with mutagen (title, artist, album, album
artist, genre, year, track number, and on most files BPM and key) in a tree
``Artist/Album/NN - Title.ext``. Three bytes of one audio packet (near the end
of the file) differ between copies, with the FLAC frame CRC or the Ogg page CRC
recomputed, so that every file has its own audio-content hash as in a real
library, where duplicates are rare. Nothing is truncated. The library is built
in a temporary folder on the same disk and removed afterwards, unless
``--library DIR`` names a folder to keep it in (a later run with the same
``--library``, ``--files`` and ``--seed`` reuses it) or ``--keep`` is given.

Then it measures, on that library:

1. a ``full`` scan (``ScanManager.scan_sync``) into a new SQLite database:
   files/s, wall and CPU time, time per phase;
2. a ``hybrid`` rescan with nothing changed (best of ``--rescans`` runs), and the
   scanner's per-file read (``scanner.read_file``) over a sample of files in one
   thread, in ``SCAN_WORKERS`` threads (as the scanner runs it) and in as many
   processes;
3. hash throughput: ``audio_hash`` (the audio packets' bytes, found by the container
   walkers) against ``audio_hash_demuxed`` (the same digest through PyAV's demuxer,
   the reference) and ``raw_hash`` (XXH3-128 over every byte) on the same files, in
   MB/s, and ``read_tags`` per file;
4. latency of ``GET /api/tracks`` with a filter, with a full-text search and of
   ``GET /api/tracks/search`` through a real server (``taperoom library
   serve``) on the scanned database, against ``GET /health`` in the same run;
5. the reference: ``beet import -A`` (beets, no autotagging, no copy, no tag
   writing) on the same files (on a random subset of albums with
   ``--beets-files N``), and our full-scan speed as a ratio of beets'.

Usage::

    .venv/bin/python bench/library_scan.py [--write] [--files 10000] [--library DIR]

``--write`` replaces the "library" section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import io
import itertools
import json
import multiprocessing
import os
import random
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import mutagen
from mutagen.aiff import AIFF
from mutagen.flac import FLAC
from mutagen.id3 import COMM, ID3, TALB, TBPM, TCON, TDRC, TIT2, TKEY, TPE1, TPE2, TRCK
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4FreeForm
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from common import (
    BENCHMARKS,
    cpu_seconds,
    descendants,
    free_port,
    health_ok,
    loadavg,
    machine_cpu,
    md_table,
    ms,
    pct,
    spawn_server,
    stop_server,
    tree_cpu_seconds,
    wait_ready,
    write_section,
)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "scanner" / "real_music_tagged"
#: Bumped whenever the library layout changes, so that a cached library is rebuilt.
LIBRARY_VERSION = 1


# -- library contents --------------------------------------------------------

#: Share of the albums in each format (the small lossy formats dominate, to keep
#: the library's size on disk near 1 MB per file).
FORMAT_WEIGHTS = {"mp3": 0.38, "m4a": 0.20, "ogg": 0.18, "opus": 0.18, "flac": 0.03,
                  "wav": 0.02, "aiff": 0.01}

#: Genre -> tempo range (BPM) of its tracks.
GENRES: dict[str, tuple[int, int]] = {
    "House": (118, 128), "Deep House": (115, 124), "Tech House": (122, 128),
    "Techno": (125, 140), "Minimal": (120, 128), "Trance": (130, 140),
    "Drum & Bass": (165, 178), "Dubstep": (138, 142), "Hip-Hop": (82, 100),
    "Disco": (110, 124), "Funk": (95, 115), "Breakbeat": (125, 140),
    "UK Garage": (128, 136), "Electro": (120, 132), "Ambient": (60, 100),
    "Downtempo": (80, 110), "Jazz": (90, 160), "Soul": (70, 110), "Reggae": (70, 95),
    "Pop": (95, 130),
}

WORDS = [
    "night", "love", "city", "dream", "fire", "light", "shadow", "river", "sun", "moon", "star",
    "heart", "soul", "body", "mind", "echo", "pulse", "wave", "storm", "rain", "summer", "winter",
    "midnight", "morning", "sky", "ocean", "desert", "forest", "mountain", "road", "highway",
    "train", "station", "signal", "system", "machine", "circuit", "voltage", "neon", "chrome",
    "velvet", "silver", "golden", "crystal", "diamond", "glass", "paper", "stone", "iron", "steel",
    "ghost", "spirit", "angel", "devil", "paradise", "heaven", "jungle", "garden", "island",
    "harbor", "bridge", "tower", "palace", "street", "avenue", "alley", "dance", "groove",
    "rhythm", "beat", "bass", "drum", "snare", "kick", "loop", "break", "sample", "tape", "vinyl",
    "record", "radio", "channel", "frequency", "static", "noise", "silence", "whisper", "scream",
    "voice", "choir", "anthem", "hymn", "lullaby", "ballad", "fever", "motion", "gravity", "orbit",
    "planet", "galaxy", "comet", "nebula", "eclipse", "horizon", "sunrise", "sunset", "twilight",
    "dawn", "dusk", "shimmer", "sparkle", "flash", "thunder", "lightning", "tide", "current",
    "drift", "flow", "rush", "surge", "fade", "glow", "blaze", "spark", "flame", "smoke", "ash",
    "dust", "sand", "salt", "honey", "sugar", "pepper", "lemon", "cherry", "satin",
    "lace", "leather", "denim", "cotton", "wool", "feather", "wing", "bird", "tiger", "wolf",
    "fox", "raven", "dove", "falcon", "serpent", "dragon", "lion", "panther", "jaguar", "cobra",
    "hunter", "runner", "dreamer", "stranger", "lover", "fighter", "rebel", "outlaw", "prophet",
    "pilgrim", "sailor", "soldier", "hero", "legend", "myth", "story", "secret", "promise",
    "memory", "future", "past", "present", "forever", "tonight", "tomorrow", "yesterday", "always",
    "never", "again", "alone", "together", "inside", "outside", "above", "below", "beyond",
    "between", "under", "over", "deep", "high", "low", "slow", "fast", "loud", "quiet", "wild",
    "free", "lost", "found", "broken", "hidden", "open", "closed", "electric",
    "magnetic", "cosmic", "atomic", "digital", "analog", "café", "señorita", "über", "niño",
    "crème", "façade", "naïve", "déjà", "rêve", "mañana"
]

FIRST_NAMES = [
    "Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Robin", "Kai", "Noa",
    "Luca", "Mila", "Nina", "Omar", "Yuki", "Lena", "Marco", "Ines", "Tomas", "Aria", "Felix",
    "Hana", "Ravi", "Sofia", "Andre", "Chloe", "Diego", "Elena", "Farid", "Greta", "Hugo", "Iris",
    "Jonas", "Keira", "Liam", "Maya", "Nico", "Olga", "Pablo"
]
LAST_NAMES = [
    "Rivers", "Stone", "Black", "White", "Gray", "Knight", "Fox", "Wolfe", "Hart", "Lane", "Vega",
    "Cruz", "Kowalski", "Novak", "Schmidt", "Müller", "Dubois", "Rossi", "Silva", "Tanaka", "Kim",
    "Chen", "Nakamura", "Okafor", "Haddad", "Larsen", "Berg", "Moreau", "Lopez", "Ivanova",
    "Petrov", "Ahmed", "Costa", "Ferreira", "Jensen", "Björk", "Nyström", "Łukasz", "Ødegaard"
]

KEYS_CLASSIC = ["C", "C#", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]


@dataclass
class Track:
    """One file of the library to write."""

    index: int
    source: int
    copy_no: int
    rel: str
    fmt: str
    tags: dict[str, Any]


@dataclass
class Source:
    """A corpus track and where a copy's audio bytes are changed."""

    path: Path
    fmt: str
    needle: bytes = b""  # 32 bytes of a packet, unique in the file
    needle_at: int = 0  # offset of the needle from the packet's start
    packet_size: int = 0


def _title(rng: random.Random, n: int) -> str:
    return " ".join(w.capitalize() if i == 0 or len(w) > 3 else w
                    for i, w in enumerate(rng.sample(WORDS, n)))


def _artist(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.55:
        return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    if r < 0.75:
        return f"DJ {rng.choice(WORDS).capitalize()}"
    if r < 0.9:
        return f"The {rng.choice(WORDS).capitalize()} {rng.choice(WORDS).capitalize()}s"
    return f"{rng.choice(WORDS).capitalize()}{rng.choice(WORDS)}"


def _key(rng: random.Random) -> str:
    style = rng.random()
    if style < 0.4:
        return rng.choice(KEYS_CLASSIC) + rng.choice(["m", ""])
    if style < 0.7:
        return f"{rng.randint(1, 12)}{rng.choice('AB')}"
    return f"{rng.choice(KEYS_CLASSIC)} {rng.choice(['minor', 'major'])}"


def _safe(name: str) -> str:
    return name.replace("/", "-").replace("\x00", "").strip(" .") or "untitled"


def plan_library(n_files: int, seed: int, sources: list[Source]) -> list[Track]:
    """Artists, albums and tracks of the library, reproducible from `seed`."""
    rng = random.Random(seed)
    by_fmt: dict[str, list[int]] = {}
    for i, s in enumerate(sources):
        by_fmt.setdefault(s.fmt, []).append(i)
    fmts = [f for f in FORMAT_WEIGHTS if f in by_fmt]
    weights = [FORMAT_WEIGHTS[f] for f in fmts]
    copies: Counter[int] = Counter()
    tracks: list[Track] = []
    used_artists: set[str] = set()
    while len(tracks) < n_files:
        artist = _artist(rng)
        while artist in used_artists:
            artist = _artist(rng) + f" {rng.randint(2, 99)}"
        used_artists.add(artist)
        for _album in range(rng.choice([1, 1, 2, 2, 2, 3, 4])):
            if len(tracks) >= n_files:
                break
            fmt = rng.choices(fmts, weights)[0]
            album = _title(rng, rng.randint(1, 3))
            if rng.random() < 0.15:
                album += rng.choice([" EP", " (Remixes)", f" Vol. {rng.randint(1, 5)}"])
            genre = rng.choice(list(GENRES))
            lo, hi = GENRES[genre]
            year = rng.randint(1975, 2025)
            count = min(rng.randint(6, 14), n_files - len(tracks))
            for no in range(1, count + 1):
                src = rng.choice(by_fmt[fmt])
                copies[src] += 1
                title = _title(rng, rng.choice([1, 2, 2, 3, 3, 4]))
                track_artist = artist
                if rng.random() < 0.1:
                    track_artist = f"{artist} feat. {_artist(rng)}"
                tags: dict[str, Any] = {
                    "title": title, "artist": track_artist, "album": album,
                    "album_artist": artist, "genre": genre, "year": year,
                    "track": (no, count),
                }
                if rng.random() < 0.85:
                    bpm = rng.uniform(lo, hi)
                    tags["bpm"] = f"{bpm:.1f}" if rng.random() < 0.3 else str(round(bpm))
                if rng.random() < 0.6:
                    tags["key"] = _key(rng)
                if rng.random() < 0.1:
                    tags["comment"] = f"{rng.choice(WORDS)} {rng.choice(WORDS)} edit"
                ext = sources[src].path.suffix.lower()
                rel = f"{_safe(artist)}/{_safe(album)}/{no:02d} - {_safe(title)}{ext}"
                tracks.append(Track(len(tracks), src, copies[src], rel, fmt, tags))
    return tracks


# -- writing copies ------------------------------------------------------------

_REVERSED_BITS = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def ogg_crc(data: bytes | bytearray) -> int:
    """CRC-32 of an Ogg page (polynomial 0x04C11DB7, MSB first, initial value 0).

    Computed with zlib's reflected CRC-32 over bit-reversed bytes, bit-reversed
    back (Ogg bitstream format, RFC 3533, section 6).
    """
    r = zlib.crc32(bytes(data).translate(_REVERSED_BITS), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{r:032b}"[::-1], 2)


def _crc16_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x8005) if c & 0x8000 else c << 1
        table.append(c & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def flac_crc16(data: bytes | bytearray) -> int:
    """CRC-16 of a FLAC frame (polynomial 0x8005, MSB first, initial value 0; RFC 9639)."""
    crc = 0
    table = _CRC16
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ b]
    return crc


def find_needle(src: Source) -> Source:
    """Pick a packet near the end of `src` whose middle 32 bytes are unique in the file."""
    data = src.path.read_bytes()
    with av.open(str(src.path)) as container:
        stream = container.streams.audio[0]
        packets = [(int(p.pos), p.size) for p in container.demux(stream)
                   if p.size >= 64 and p.pos is not None and p.pos >= 0]
    n = len(packets)
    for frac in (0.95, 0.94, 0.96, 0.93, 0.97, 0.92, 0.98, 0.9, 0.85):
        pos, size = packets[int(n * frac)]
        at = size // 2 - 16
        needle = data[pos + at:pos + at + 32]
        if data.find(needle) != pos + at or data.find(needle, pos + at + 1) >= 0:
            continue
        if src.fmt == "flac" and (data[pos:pos + 2] not in (b"\xff\xf8", b"\xff\xf9") or
                                  flac_crc16(data[pos:pos + size - 2])
                                  != int.from_bytes(data[pos + size - 2:pos + size], "big")):
            continue
        src.needle, src.needle_at, src.packet_size = needle, at, size
        return src
    raise RuntimeError(f"no unique packet bytes found in {src.path}")


def mark_audio(buf: bytearray, src: Source, copy_no: int) -> None:
    """Change 3 bytes of one audio packet of `buf` to a value unique to `copy_no`.

    The packet is near the end of the track (at 95 % of the packets or audio
    pages), so that a decoder that stumbles on it loses at most one frame there.
    """
    mask = (copy_no & 0xFFFFFF).to_bytes(3, "big")
    if src.fmt in ("ogg", "opus"):
        pages: list[tuple[int, int, int]] = []  # audio pages: offset, header size, body size
        pos = 0
        while pos + 27 <= len(buf):
            if buf[pos:pos + 4] != b"OggS":
                raise RuntimeError("lost Ogg page sync")
            nseg = buf[pos + 26]
            body = sum(buf[pos + 27:pos + 27 + nseg])
            granule = int.from_bytes(buf[pos + 6:pos + 14], "little", signed=True)
            if granule > 0 and body >= 64:  # header pages (tags, cover art) have granule 0
                pages.append((pos, 27 + nseg, body))
            pos += 27 + nseg + body
        pos, head, body = pages[int(len(pages) * 0.95)]
        page = buf[pos:pos + head + body]
        page[22:26] = b"\0\0\0\0"
        if ogg_crc(page) != int.from_bytes(buf[pos + 22:pos + 26], "little"):
            raise RuntimeError("Ogg page CRC mismatch before the change")
        at = pos + head + body // 2
        for i in range(3):
            buf[at + i] ^= mask[i]
        page = buf[pos:pos + head + body]
        page[22:26] = b"\0\0\0\0"
        buf[pos + 22:pos + 26] = ogg_crc(page).to_bytes(4, "little")
        return
    found = buf.find(src.needle)
    if found < 0 or buf.find(src.needle, found + 1) >= 0:
        raise RuntimeError(f"packet bytes of {src.path.name} not found once in the copy")
    at = found + 16
    for i in range(3):
        buf[at + i] ^= mask[i]
    if src.fmt == "flac":
        start = found - src.needle_at
        end = start + src.packet_size
        buf[end - 2:end] = flac_crc16(buf[start:end - 2]).to_bytes(2, "big")


_ID3_FRAMES = ("TIT2", "TPE1", "TALB", "TPE2", "TCON", "TDRC", "TYER", "TRCK", "TBPM", "TKEY",
               "TXXX", "COMM")
_VORBIS_FIELDS = ("title", "artist", "album", "albumartist", "genre", "date", "tracknumber",
                  "bpm", "initialkey", "comment", "tracktotal")
_MP4_FIELDS = ("©nam", "©ART", "©alb", "aART", "©gen", "©day", "trkn", "tmpo", "©cmt",
               "----:com.apple.iTunes:initialkey", "----:com.apple.iTunes:BPM")
_CLASSES: dict[str, type[mutagen.FileType]] = {
    "mp3": MP3, "m4a": MP4, "ogg": OggVorbis, "opus": OggOpus, "flac": FLAC,
    "wav": WAVE, "aiff": AIFF,
}


def write_tags(data: bytes, fmt: str, t: dict[str, Any]) -> bytearray:
    """`data` (a whole audio file) with its tags replaced by `t`."""
    bio = io.BytesIO(data)
    audio = _CLASSES[fmt](bio)
    if audio.tags is None:
        audio.add_tags()
    tags: Any = audio.tags
    no, total = t["track"]
    if isinstance(tags, ID3):
        for frame in _ID3_FRAMES:
            tags.delall(frame)
        tags.add(TIT2(encoding=3, text=t["title"]))
        tags.add(TPE1(encoding=3, text=t["artist"]))
        tags.add(TALB(encoding=3, text=t["album"]))
        tags.add(TPE2(encoding=3, text=t["album_artist"]))
        tags.add(TCON(encoding=3, text=t["genre"]))
        tags.add(TDRC(encoding=3, text=str(t["year"])))
        tags.add(TRCK(encoding=3, text=f"{no}/{total}"))
        if "bpm" in t:
            tags.add(TBPM(encoding=3, text=t["bpm"]))
        if "key" in t:
            tags.add(TKEY(encoding=3, text=t["key"]))
        if "comment" in t:
            tags.add(COMM(encoding=3, lang="eng", desc="", text=t["comment"]))
    elif fmt == "m4a":
        for name in _MP4_FIELDS:
            tags.pop(name, None)
        tags["©nam"] = [t["title"]]
        tags["©ART"] = [t["artist"]]
        tags["©alb"] = [t["album"]]
        tags["aART"] = [t["album_artist"]]
        tags["©gen"] = [t["genre"]]
        tags["©day"] = [str(t["year"])]
        tags["trkn"] = [(no, total)]
        if "bpm" in t:
            tags["tmpo"] = [round(float(t["bpm"]))]
        if "key" in t:
            tags["----:com.apple.iTunes:initialkey"] = [MP4FreeForm(t["key"].encode())]
        if "comment" in t:
            tags["©cmt"] = [t["comment"]]
    else:  # Vorbis comments
        for name in _VORBIS_FIELDS:
            if name in tags:
                del tags[name]
        tags["title"] = [t["title"]]
        tags["artist"] = [t["artist"]]
        tags["album"] = [t["album"]]
        tags["albumartist"] = [t["album_artist"]]
        tags["genre"] = [t["genre"]]
        tags["date"] = [str(t["year"])]
        tags["tracknumber"] = [str(no)]
        tags["tracktotal"] = [str(total)]
        if "bpm" in t:
            tags["bpm"] = [t["bpm"]]
        if "key" in t:
            tags["initialkey"] = [t["key"]]
        if "comment" in t:
            tags["comment"] = [t["comment"]]
    bio.seek(0)
    audio.save(bio)
    return bytearray(bio.getvalue())


_SOURCES: list[Source] = []
_DATA: dict[int, bytes] = {}


def _init_worker(sources: list[Source]) -> None:
    _SOURCES[:] = sources
    _DATA.clear()


def _write_copy(args: tuple[Path, Track]) -> int:
    root, track = args
    src = _SOURCES[track.source]
    data = _DATA.get(track.source)
    if data is None:
        data = _DATA[track.source] = src.path.read_bytes()
    buf = write_tags(data, src.fmt, track.tags)
    mark_audio(buf, src, track.copy_no)
    dest = root / track.rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as f:
        f.write(buf)
    return len(buf)


def corpus_sources(corpus: Path) -> list[Source]:
    fmts = {".mp3": "mp3", ".m4a": "m4a", ".ogg": "ogg", ".opus": "opus", ".flac": "flac",
            ".wav": "wav", ".aiff": "aiff", ".aif": "aiff"}
    found = [Source(p, fmts[p.suffix.lower()]) for p in sorted(corpus.iterdir())
             if p.is_file() and p.suffix.lower() in fmts]
    if not found:
        raise SystemExit(f"no audio files in {corpus}: the shared corpus is missing")
    return found


@dataclass
class Library:
    """A built library: its folder, files and size."""

    root: Path
    files: list[dict[str, Any]]  # {"rel", "fmt", "size"}
    bytes: int
    built_s: float | None  # None: reused from the cache
    corpus_files: int

    def paths(self) -> list[Path]:
        return [self.root / f["rel"] for f in self.files]


def build_library(base: Path, n_files: int, seed: int, corpus: Path, procs: int) -> Library:
    """Build (or reuse) the library in ``base/music``; ``base/library.json`` describes it."""
    manifest = base / "library.json"
    root = base / "music"
    key = {"version": LIBRARY_VERSION, "files": n_files, "seed": seed, "corpus": str(corpus)}
    sources = corpus_sources(corpus)
    if manifest.exists():
        with contextlib.suppress(ValueError, KeyError):
            info = json.loads(manifest.read_text(encoding="utf-8"))
            if info["key"] == key and all((root / f["rel"]).is_file() for f in info["files"]):
                return Library(root, info["files"], info["bytes"], None, len(sources))
        print(f"  {manifest} does not match: rebuilding", flush=True)
    if root.exists():
        shutil.rmtree(root)
    manifest.unlink(missing_ok=True)
    t0 = time.perf_counter()
    sources = [find_needle(s) for s in sources]
    tracks = plan_library(n_files, seed, sources)
    root.mkdir(parents=True)
    total = 0
    done = 0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(procs, initializer=_init_worker, initargs=(sources,)) as pool:
        for size in pool.imap(_write_copy, [(root, t) for t in tracks], chunksize=64):
            total += size
            done += 1
            if done % 2000 == 0:
                print(f"  {done} files written", flush=True)
    files = [{"rel": t.rel, "fmt": t.fmt, "size": (root / t.rel).stat().st_size} for t in tracks]
    os.sync()
    built = time.perf_counter() - t0
    manifest.write_text(json.dumps({"key": key, "bytes": total, "files": files}),
                        encoding="utf-8")
    return Library(root, files, total, built, len(sources))


def check_library(lib: Library) -> None:
    """Tags read back and distinct audio hashes on the first copies of each format."""
    from taperoom.audio.hashing import audio_hash
    from taperoom.audio.tags import read_tags

    seen: dict[str, list[Path]] = {}
    for f in lib.files:
        seen.setdefault(f["fmt"], [])
        if len(seen[f["fmt"]]) < 3:
            seen[f["fmt"]].append(lib.root / f["rel"])
    for fmt, paths in seen.items():
        hashes = {audio_hash(p) for p in paths}
        if len(hashes) != len(paths):
            raise RuntimeError(f"{fmt}: copies share an audio hash")
        for p in paths:
            info = read_tags(p)
            if not p.stem.endswith(info.title or "\0"):
                raise RuntimeError(f"{p}: title tag {info.title!r} not read back")


# -- statistics and report helpers --------------------------------------------








# -- 1 and 2: scans ------------------------------------------------------------


@dataclass
class ScanRun:
    strategy: str
    wall: float
    cpu: float
    machine_busy: float
    steal: float
    result: dict[str, Any]
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def files(self) -> int:
        return int(self.result.get("filesFound", 0))


def timed_scan(ctx: Any, dir_id: str, strategy: str) -> ScanRun:
    """Scan synchronously, recording wall time, CPU time (this process and the read
    phase's worker processes) and the time spent in each phase."""
    marks: list[tuple[str, float]] = []

    def progress(payload: dict[str, Any]) -> None:
        phase = payload.get("phase", "?")
        if not marks or marks[-1][0] != phase:
            marks.append((phase, time.perf_counter()))

    m0, s0 = machine_cpu()
    c0 = tree_cpu_seconds(os.getpid())
    t0 = time.perf_counter()
    result = ctx.scans.scan_sync(dir_id, strategy, progress=progress)
    t1 = time.perf_counter()
    c1 = tree_cpu_seconds(os.getpid())
    m1, s1 = machine_cpu()
    phases: dict[str, float] = {}
    bounds = [*marks, ("end", t1)]
    if bounds and bounds[0][1] > t0:
        phases["start"] = bounds[0][1] - t0
    for (name, start), (_, end) in itertools.pairwise(bounds):
        phases[name] = phases.get(name, 0.0) + end - start
    return ScanRun(strategy, t1 - t0, c1 - c0, m1 - m0, s1 - s0, result, phases)


def phase_text(run: ScanRun) -> str:
    order = ["start", "walk", "diff", "read", "missing", "duplicates", "done"]
    parts = [f"{p} {run.phases[p]:.2f}" for p in order if run.phases.get(p, 0) >= 0.005]
    parts += [f"{p} {v:.2f}" for p, v in run.phases.items() if p not in order and v >= 0.005]
    return ", ".join(parts)


# -- 3: hash throughput --------------------------------------------------------


@dataclass
class HashStats:
    files: int = 0
    bytes: int = 0
    audio_s: float = 0.0
    demux_s: float = 0.0
    walked: int = 0
    raw_s: float = 0.0
    tags_s: float = 0.0
    read_s: float = 0.0


def measure_hashes(paths: list[Path], fmts: list[str]) -> dict[str, HashStats]:
    """Time ``raw_hash``, ``audio_hash``, ``audio_hash_demuxed``, ``read_tags`` and the
    scanner's ``read_file`` (tags, audio hash and quick hash together) on each file in
    turn, in one thread, and check that both audio hashes agree.

    Each file is read once before, so the page cache is warm for all of them.
    """
    from taperoom.audio.hashing import DEMUX, audio_hash_demuxed, audio_hash_method, raw_hash
    from taperoom.audio.tags import read_tags
    from taperoom.library.scanner.read import read_file

    stats: dict[str, HashStats] = {}
    for p in paths[:20]:  # warm up the code paths
        raw_hash(p)
        audio_hash_method(p)
        audio_hash_demuxed(p)
        read_tags(p)
    for p, fmt in zip(paths, fmts, strict=True):
        size = p.stat().st_size
        raw_hash(p)  # page cache
        t0 = time.perf_counter()
        raw_hash(p)
        t1 = time.perf_counter()
        digest, method = audio_hash_method(p)
        t2 = time.perf_counter()
        read_tags(p)
        t3 = time.perf_counter()
        read_file(str(p))
        t4 = time.perf_counter()
        reference = audio_hash_demuxed(p)
        t5 = time.perf_counter()
        if reference != digest:
            raise SystemExit(f"{p}: audio_hash ({method}) differs from the demuxed digest")
        for key in (fmt, "all"):
            s = stats.setdefault(key, HashStats())
            s.files += 1
            s.bytes += size
            s.raw_s += t1 - t0
            s.audio_s += t2 - t1
            s.demux_s += t5 - t4
            s.walked += method != DEMUX
            s.tags_s += t3 - t2
            s.read_s += t4 - t3
    return stats


@dataclass
class PoolRun:
    label: str
    wall: float
    cpu: float


def measure_read_pools(paths: list[Path], workers: int) -> list[PoolRun]:
    """The scanner's per-file read (``scanner.read_file``: tags, audio hash, quick hash)
    over the same files in 1 thread, in `workers` threads (as the scanner runs it) and
    in `workers` processes. CPU = this process and its children (``/proc``)."""
    from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

    from taperoom.library.scanner.read import read_file

    names = [str(p) for p in paths]
    for p in paths:
        p.read_bytes()
    fork = multiprocessing.get_context("fork")
    setups: list[tuple[str, Any]] = [
        ("1 thread", lambda: ThreadPoolExecutor(1)),
        (f"{workers} threads (as `SCAN_WORKERS={workers}` runs it)",
         lambda: ThreadPoolExecutor(workers)),
        (f"{workers} processes", lambda: ProcessPoolExecutor(workers, mp_context=fork)),
    ]
    runs = []
    for label, make in setups:
        pool: Executor = make()
        with pool:
            list(pool.map(read_file, names[:2 * workers]))  # start the workers
            c0 = cpu_seconds(descendants(os.getpid()))
            t0 = time.perf_counter()
            list(pool.map(read_file, names, chunksize=1))
            wall = time.perf_counter() - t0
            cpu = cpu_seconds(descendants(os.getpid())) - c0
        runs.append(PoolRun(label, wall, cpu))
    return runs


# -- 4: server latency ---------------------------------------------------------





class Server:
    """``taperoom library serve`` on a free port, on an existing database."""

    def __init__(self, workdir: Path, database: Path) -> None:
        self.port = free_port()
        self.cmd = [sys.executable, "-m", "taperoom", "library", "serve", "--host",
                    "127.0.0.1", "--port", str(self.port)]
        self.env = {**os.environ, "DATABASE_PATH": str(database), "SCAN_ON_STARTUP": "false",
                    "FILE_WATCHER_ENABLED": "false", "LOG_LEVEL": "warning"}
        self.workdir = workdir
        self.log = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.proc = spawn_server(self.cmd, self.env, self.workdir, self.log)
        wait_ready(self.proc, self.log, lambda: health_ok(self.port))
        return self

    def cpu(self) -> float:
        assert self.proc is not None
        return cpu_seconds(descendants(self.proc.pid))

    def __exit__(self, *_: object) -> None:
        stop_server(self.proc)


@dataclass
class Kind:
    """One kind of request: a label and the targets it cycles through."""

    label: str
    targets: list[str]
    lat: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    bytes: int = 0
    totals: list[int] = field(default_factory=list)
    errors: int = 0


def request_kinds(lib: Library, n: int, seed: int) -> list[Kind]:
    """The requests of part 4, `n` of each kind, with varied parameters."""
    rng = random.Random(seed + 1)
    genres = sorted(GENRES)
    q = urllib.parse.quote

    def filt() -> str:
        g = rng.choice(genres)
        lo, hi = GENRES[g]
        bmin = rng.randint(lo, max(lo, hi - 6))
        return (f"/api/tracks?genre={q(g)}&bpm_min={bmin}&bpm_max={bmin + 6}"
                "&sort=bpm&order=asc&limit=50")

    def search() -> str:
        return f"/api/tracks?search={q(rng.choice(WORDS))}&limit=50"

    def search_q() -> str:
        if rng.random() < 0.5:
            w = rng.choice([w for w in WORDS if len(w) >= 5])
            text = w[:rng.randint(3, 4)]
        else:
            text = f"{rng.choice(WORDS)} {rng.choice(WORDS)[:4]}"
        return f"/api/tracks/search?q={q(text)}&limit=50"

    pages = max(1, len(lib.files) // 50)
    return [
        Kind("`GET /health` (reference)", ["/health"] * n),
        Kind("filter: `genre=` + `bpm_min`/`bpm_max`, `sort=bpm`", [filt() for _ in range(n)]),
        Kind("full-text: `GET /api/tracks?search=<word>`", [search() for _ in range(n)]),
        Kind("full-text: `GET /api/tracks/search?q=<prefix or 2 words>`",
             [search_q() for _ in range(n)]),
        Kind("list: `GET /api/tracks` (page 1, newest first)", ["/api/tracks"] * n),
        Kind("list: `sort=artist&order=asc&page=<1..N>`",
             [f"/api/tracks?sort=artist&order=asc&page={rng.randint(1, pages)}"
              for _ in range(n)]),
    ]


def measure_latency(server: Server, kinds: list[Kind], block: int) -> None:
    """Sequential requests on one keep-alive connection, kinds in alternating blocks."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

    def get(target: str) -> tuple[int, bytes]:
        conn.request("GET", target)
        r = conn.getresponse()
        return r.status, r.read()

    for k in kinds:  # warm-up, and check that the queries find something
        for target in k.targets[:10]:
            status, body = get(target)
            if status != 200:
                raise RuntimeError(f"GET {target}: {status} {body[:300]!r}")
            if target != "/health":
                k.totals.append(int(json.loads(body)["pagination"]["total"]))
    n = max(len(k.targets) for k in kinds)
    for start in range(0, n, block):
        for k in kinds:
            c0 = server.cpu()
            for target in k.targets[start:start + block]:
                t0 = time.perf_counter()
                status, body = get(target)
                k.lat.append(time.perf_counter() - t0)
                k.bytes += len(body)
                k.errors += status != 200
            k.server_cpu += server.cpu() - c0
    conn.close()


# -- 5: beets ------------------------------------------------------------------


@dataclass
class BeetsRun:
    files: int
    items: int
    wall: float
    cpu: float
    timed_out: bool
    subset: bool
    version: str


def beets_version() -> str | None:
    beet = Path(sys.executable).with_name("beet")
    if not beet.exists():
        return None
    try:
        from importlib.metadata import version
        return version("beets")
    except Exception:  # any failure means "not installed"
        return None


def run_beets(lib: Library, work: Path, n_files: int, seed: int, timeout: float) -> BeetsRun:
    """``beet import -A`` of the whole library, or of random albums holding >= `n_files`."""
    version = beets_version()
    assert version is not None
    beetsdir = work / "beets"
    beetsdir.mkdir()
    (beetsdir / "config.yaml").write_text(
        f"directory: {json.dumps(str(work / 'beets-music'))}\n"
        f"library: {json.dumps(str(beetsdir / 'beets.db'))}\n"
        "plugins: []\n"
        "import:\n  copy: no\n  move: no\n  write: no\n  autotag: no\n  quiet: yes\n"
        "  resume: no\n  incremental: no\n"
        f"  log: {json.dumps(str(beetsdir / 'import.log'))}\n",
        encoding="utf-8")
    albums: dict[str, int] = {}
    for f in lib.files:
        album = str(Path(f["rel"]).parent)
        albums[album] = albums.get(album, 0) + 1
    subset = 0 < n_files < len(lib.files)
    if subset:
        rng = random.Random(seed + 2)
        chosen: list[str] = []
        count = 0
        for album in rng.sample(sorted(albums), len(albums)):
            if count >= n_files:
                break
            chosen.append(album)
            count += albums[album]
        targets = [str(lib.root / a) for a in sorted(chosen)]
    else:
        count = len(lib.files)
        targets = [str(lib.root)]
    cmd = [str(Path(sys.executable).with_name("beet")), "import", "-A", "-q", *targets]
    env = {**os.environ, "BEETSDIR": str(beetsdir)}
    t0 = time.perf_counter()
    with open(beetsdir / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(cmd, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
    timed_out = False
    deadline = t0 + timeout
    ru: Any = None
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            break
        if time.perf_counter() > deadline:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            _, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    cpu = ru.ru_utime + ru.ru_stime if ru is not None else float("nan")
    items = 0
    with contextlib.suppress(sqlite3.Error):
        db = sqlite3.connect(beetsdir / "beets.db")
        items = int(db.execute("SELECT count(*) FROM items").fetchone()[0])
        db.close()
    if proc.returncode not in (0, None) and not timed_out:
        tail = (beetsdir / "stderr.txt").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"beet import failed ({proc.returncode}): {tail}")
    return BeetsRun(count, items, wall, cpu, timed_out, subset, version)


# -- main ------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    p.add_argument("--files", type=int, default=10_000, help="audio files in the library")
    p.add_argument("--seed", type=int, default=1, help="seed of the library's contents")
    p.add_argument("--library", type=Path, default=None,
                   help="folder to build the library in and reuse it from (kept)")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary folder (library, databases, logs)")
    p.add_argument("--corpus", type=Path, default=CORPUS, help="folder of the source tracks")
    p.add_argument("--build-procs", type=int, default=os.cpu_count() or 2,
                   help="processes writing the library")
    p.add_argument("--scan-workers", type=int, default=None,
                   help="SCAN_WORKERS of the scans (default: the app's default)")
    p.add_argument("--rescans", type=int, default=5, help="hybrid rescans (best is reported)")
    p.add_argument("--pool-files", type=int, default=400,
                   help="random files for the per-file read in threads and processes")
    p.add_argument("--hash-files", type=int, default=1000,
                   help="random files of the library for the hash throughput")
    p.add_argument("--requests", type=int, default=300, help="requests of each kind")
    p.add_argument("--block", type=int, default=50, help="requests per alternating block")
    p.add_argument("--beets-files", type=int, default=0,
                   help="import random albums holding at least N files into beets "
                        "(0: the whole library)")
    p.add_argument("--beets-timeout", type=float, default=600.0,
                   help="stop beets after this many seconds and count what it imported")
    p.add_argument("--skip-beets", action="store_true", help="leave out part 5")
    p.add_argument("--profile", type=Path, default=None,
                   help="also profile a full scan and a hybrid rescan with py-spy "
                        "(after the timed runs, on a fresh database) into this folder")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = " ".join([".venv/bin/python bench/library_scan.py", *(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))])
    started = dt.datetime.now().astimezone()
    load_start = loadavg()
    print(f"load average at the start: {load_start} ({os.cpu_count()} cores)", flush=True)
    if args.write and not args.skip_beets and beets_version() is None:
        raise SystemExit("beets is not installed: .venv/bin/pip install beets (or --skip-beets)")
    from taperoom.db import transaction
    from taperoom.library import models
    from taperoom.library.context import build_services
    from taperoom.library.settings import LibrarySettings

    work = Path(tempfile.mkdtemp(prefix="bench-library-", dir=args.library.parent
                                 if args.library else None))
    lib_base = args.library.resolve() if args.library else work / "library"
    out: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        out.append(text)

    try:
        free = shutil.disk_usage(work).free
        print(f"work folder {work} ({free / 1e9:.0f} GB free); library in {lib_base}",
              flush=True)
        lib = build_library(lib_base, args.files, args.seed, args.corpus, args.build_procs)
        fmt_counts = Counter(f["fmt"] for f in lib.files)
        built = (f"built in {lib.built_s:.0f} s" if lib.built_s is not None
                 else "reused from the cache")
        print(f"library: {len(lib.files)} files, {lib.bytes / 1e9:.2f} GB, {built}; "
              f"{dict(fmt_counts)}", flush=True)
        check_library(lib)

        # -- 1 and 2: full scan, hybrid rescans
        for p in lib.paths():  # page cache warm, as for every later reader
            with open(p, "rb") as f:
                while f.read(1 << 20):
                    pass
        db_path = work / "library.db"
        overrides: dict[str, Any] = {}
        if args.scan_workers:
            overrides["scan_workers"] = args.scan_workers
        settings = LibrarySettings(database_path=db_path, scan_on_startup=False,
                                   file_watcher_enabled=False, engine_link_enabled=False,
                                   **overrides)
        ctx = build_services(settings)
        try:
            with transaction(ctx.db) as session:
                directory = models.LibraryDirectory(path=str(lib.root), name="bench library")
                session.add(directory)
                session.flush()
                dir_id = directory.id
            print("full scan ...", flush=True)
            full = timed_scan(ctx, dir_id, "full")
            res = full.result
            print(f"  {full.files} files in {full.wall:.1f} s ({full.files / full.wall:.0f} "
                  f"files/s), CPU {full.cpu:.1f} s, added {res['tracksAdded']}, errors "
                  f"{len(res['errors'])}; phases: {phase_text(full)}", flush=True)
            if res["tracksAdded"] != len(lib.files) or res["errors"]:
                raise RuntimeError(f"full scan result unexpected: {str(res)[:1000]}")
            rescans = []
            for i in range(args.rescans):
                r = timed_scan(ctx, dir_id, "hybrid")
                rescans.append(r)
                print(f"  hybrid rescan {i + 1}: {r.wall:.2f} s (CPU {r.cpu:.2f} s); "
                      f"{phase_text(r)}", flush=True)
                if r.result["tracksUpdated"] or r.result["tracksAdded"] or r.result["errors"]:
                    raise RuntimeError(f"rescan changed something: {str(r.result)[:1000]}")
            workers = ctx.settings.scan_workers
        finally:
            ctx.close()
        best = min(rescans, key=lambda r: r.wall)

        # -- 1b: the per-file read in threads and in processes
        print("per-file read in threads and processes ...", flush=True)
        rng = random.Random(args.seed + 4)
        pool_sample = rng.sample(lib.files, min(args.pool_files, len(lib.files)))
        pools = measure_read_pools([lib.root / f["rel"] for f in pool_sample], workers)
        for pr in pools:
            print(f"  {pr.label}: {len(pool_sample) / pr.wall:.0f} files/s, CPU "
                  f"{pr.cpu:.1f} s", flush=True)

        # -- 3: hash throughput
        print("hash throughput ...", flush=True)
        rng = random.Random(args.seed + 3)
        sample = rng.sample(lib.files, min(args.hash_files, len(lib.files)))
        hashes = measure_hashes([lib.root / f["rel"] for f in sample],
                                [f["fmt"] for f in sample])
        a = hashes["all"]
        print(f"  audio_hash {a.bytes / a.audio_s / 1e6:.1f} MB/s, raw_hash "
              f"{a.bytes / a.raw_s / 1e6:.0f} MB/s", flush=True)

        # -- 4: server latency
        print("server latency ...", flush=True)
        kinds = request_kinds(lib, args.requests, args.seed)
        m0 = machine_cpu()
        t0 = time.perf_counter()
        with Server(work, db_path) as server:
            measure_latency(server, kinds, args.block)
        lat_wall = time.perf_counter() - t0
        m1 = machine_cpu()
        for k in kinds:
            print(f"  {k.label}: p50 {ms(pct(k.lat, 50))} ms, p99 {ms(pct(k.lat, 99))} ms",
                  flush=True)

        # -- 5: beets
        beets: BeetsRun | None = None
        if not args.skip_beets:
            if beets_version() is None:
                print("beets not installed: part 5 skipped", flush=True)
            else:
                what = (f"random albums holding >= {args.beets_files} files"
                        if 0 < args.beets_files < len(lib.files) else "the whole library")
                print(f"beet import -A of {what} ...", flush=True)
                beets = run_beets(lib, work, args.beets_files, args.seed, args.beets_timeout)
                print(f"  {beets.items} of {beets.files} files in {beets.wall:.1f} s "
                      f"({beets.items / beets.wall:.1f} files/s), CPU {beets.cpu:.1f} s"
                      f"{' (timed out)' if beets.timed_out else ''}", flush=True)

        # -- profiles
        if args.profile is not None:
            profile_scans(args.profile, lib, work, overrides)

        load_end = loadavg()
        finished = dt.datetime.now().astimezone()

        # -- report
        print()
        emit("## library")
        emit()
        emit(f"Measured on {started:%Y-%m-%d %H:%M %Z} "
             f"({(finished - started).total_seconds():.0f} s, load average {load_start} at "
             f"the start, {load_end} at the end) with:")
        emit()
        emit("```sh")
        emit(command)
        emit("```")
        emit()
        fmts = ", ".join(f"{fmt_counts[f]} {f.upper() if f != 'opus' else 'Opus'}"
                         for f in FORMAT_WEIGHTS if fmt_counts[f])
        emit(f"Library: {len(lib.files):,} files ({lib.bytes / 1e9:.1f} GB: {fmts}), copies of "
             f"the {lib.corpus_files} real tracks of `shared/corpus/scanner/real_music_tagged` "
             "(25–30 s each) with their own tags written with mutagen (title, artist, album, "
             "album artist, genre, year, track number; BPM on 85 %, key on 60 %) in "
             "`Artist/Album/NN - Title.ext` folders; three bytes of one audio packet differ "
             "between copies (FLAC and Ogg CRCs recomputed), so every file has its own audio "
             "hash. Page cache warm (every file read just before each part). SQLite database "
             f"(WAL) on the same disk; `SCAN_WORKERS={workers}`.")
        emit()
        emit("### Scans (`ScanManager.scan_sync`, in-process)")
        emit()
        rows = []
        for label, r in (("`full`, new database", full),
                         (f"`hybrid`, nothing changed (best of {len(rescans)})", best)):
            rows.append([label, f"{r.files:,}", f"{r.wall:.2f}", f"{r.files / r.wall:,.0f}",
                         f"{r.cpu:.2f}", f"{r.cpu / r.wall:.2f}",
                         f"{r.machine_busy / r.wall:.2f}", f"{r.steal / r.wall:.2f}",
                         phase_text(r)])
        emit(md_table(["scan", "files", "wall (s)", "files/s", "CPU (s)",
                       "CPU cores (scan and its workers)", "machine busy (cores)", "steal (cores)",
                       "seconds per phase"], rows))
        emit()
        all_rescans = ", ".join(f"{r.wall:.2f}" for r in rescans)
        emit(f"Hybrid rescans: {all_rescans} s. Target: a hybrid rescan of 10,000 unchanged "
             f"files in under 3 s: **{'met' if best.wall < 3 else 'not met'}** "
             f"({best.wall:.2f} s for {best.files:,} files).")
        emit()
        n_pool = len(pool_sample)
        emit(f"### The scanner's per-file read in threads and in processes ({n_pool} random "
             "files of the library)")
        emit()
        emit("`scanner.read_file` (tags, audio hash, quick hash: the read phase's work per "
             "file) mapped over the same files by a `ThreadPoolExecutor`, as the scanner "
             "does, and by a `ProcessPoolExecutor`. CPU = this process and its children.")
        emit()
        one = pools[0]
        rows = [[pr.label, f"{pr.wall:.2f}", f"{n_pool / pr.wall:.0f}",
                 f"{one.wall / pr.wall:.2f}×", f"{pr.cpu:.2f}",
                 f"{pr.cpu / n_pool * 1000:.2f}"] for pr in pools]
        emit(md_table(["pool", "wall (s)", "files/s", "speed-up over 1 thread", "CPU (s)",
                       "CPU ms per file"], rows))
        emit()
        emit(f"### Hash throughput and tag reading ({a.files} random files of the library; "
             "each file read once before, then `raw_hash`, `audio_hash`, `read_tags`, "
             "`scanner.read_file` and `audio_hash_demuxed` in turn; one thread)")
        emit()
        emit("`audio_hash` finds the audio packets' bytes by walking the container "
             "(`taperoom.audio.containers`) and demuxes only what a walker refuses; "
             "`audio_hash_demuxed` gives the same digest through PyAV's demuxer (the "
             "reference, and what `audio_hash` was before the walkers). Every file's two "
             "digests were checked equal.")
        emit()
        rows = []
        for key in [*[f for f in FORMAT_WEIGHTS if f in hashes], "all"]:
            s = hashes[key]
            rows.append([key if key != "all" else "**all**", str(s.files),
                         f"{s.bytes / s.files / 1e6:.2f}", f"{s.walked}/{s.files}",
                         f"{s.audio_s / s.files * 1000:.2f}",
                         f"{s.demux_s / s.files * 1000:.2f}",
                         f"{s.demux_s / s.audio_s:.1f}×",
                         f"{s.raw_s / s.files * 1000:.2f}",
                         f"{s.bytes / s.audio_s / 1e6:.0f}", f"{s.bytes / s.raw_s / 1e6:.0f}",
                         f"{s.audio_s / s.raw_s:.1f}×", f"{s.tags_s / s.files * 1000:.2f}",
                         f"{s.read_s / s.files * 1000:.2f}"])
        emit(md_table(["format", "files", "MB per file", "walked",
                       "`audio_hash` ms per file", "`audio_hash_demuxed` ms per file",
                       "demuxed / `audio_hash`", "`raw_hash` ms per file",
                       "`audio_hash` MB/s", "`raw_hash` MB/s",
                       "`audio_hash` time / `raw_hash` time", "`read_tags` ms per file",
                       "`read_file` ms per file"], rows))
        emit()
        emit(f"`audio_hash` is {a.audio_s / a.read_s:.0%} of the time of `read_file` "
             f"(everything the read phase does per file), `read_tags` "
             f"{a.tags_s / a.read_s:.0%}.")
        emit()
        emit(f"### `GET /api/tracks` latency ({args.requests} sequential requests of each kind "
             f"on one keep-alive connection, kinds in alternating blocks of {args.block}; "
             "times in ms)")
        emit()
        emit("Server: `taperoom library serve` (uvicorn, 1 worker) with `DATABASE_PATH` on the "
             "database of the full scan, `SCAN_ON_STARTUP=false`, "
             "`FILE_WATCHER_ENABLED=false`, `LOG_LEVEL=warning`. Pages of 50 tracks; the "
             "parameters vary from request to request (20 genres with 6-BPM windows, search "
             "words from the tags' vocabulary). Client: `http.client` in the benchmark "
             f"process. Machine busy during this part: {(m1[0] - m0[0]) / lat_wall:.2f} "
             f"cores, steal {(m1[1] - m0[1]) / lat_wall:.2f}.")
        emit()
        ref = kinds[0]
        rows = []
        for k in kinds:
            n = len(k.lat)
            matches = (f"{min(k.totals):,}–{max(k.totals):,}" if k.totals else "-")
            rows.append([k.label, ms(pct(k.lat, 50)), ms(pct(k.lat, 90)), ms(pct(k.lat, 99)),
                         ms(max(k.lat)), f"{pct(k.lat, 50) / pct(ref.lat, 50):.1f}×",
                         f"{pct(k.lat, 99) / pct(ref.lat, 99):.1f}×",
                         f"{k.server_cpu / n * 1000:.2f}", f"{k.bytes / n / 1000:.1f}",
                         matches, str(k.errors)])
        emit(md_table(["request", "p50", "p90", "p99", "max", "p50 / `/health` p50",
                       "p99 / `/health` p99", "server CPU ms per request", "KB per answer",
                       "matches (first 10)", "errors"], rows))
        emit()
        goal = [k for k in kinds[1:4]]
        worst = max(pct(k.lat, 99) for k in goal)
        emit(f"Target: p99 under 20 ms for the filtered and the full-text listings: "
             f"**{'met' if worst < 0.020 else 'not met'}** (worst p99 {ms(worst)} ms).")
        if beets is not None:
            emit()
            emit(f"### Reference: beets {beets.version} `beet import -A`")
            emit()
            beets_what = ("random whole albums holding "
                          f"{beets.files:,} of the files" if beets.subset
                          else f"all {beets.files:,} files")
            emit(f"`BEETSDIR` with `import: {{copy: no, move: no, write: no, autotag: no, "
                 f"quiet: yes}}`, `plugins: []`, a new library database; {beets_what}"
                 f"{', stopped at the time limit' if beets.timed_out else ''}. CPU = user + "
                 "system time of the `beet` process.")
            emit()
            ours = full.files / full.wall
            theirs = beets.items / beets.wall if beets.items else float("nan")
            rows = [["taperoom `full` scan (tags + audio hash + quick hash)", f"{full.files:,}",
                     f"{full.wall:.1f}", f"{full.cpu:.1f}", f"{ours:,.0f}",
                     f"{full.cpu / full.files * 1000:.2f}"],
                    ["beets `import -A` (tags only)", f"{beets.items:,}", f"{beets.wall:.1f}",
                     f"{beets.cpu:.1f}", f"{theirs:,.1f}",
                     f"{beets.cpu / max(1, beets.items) * 1000:.2f}"]]
            emit(md_table(["", "files", "wall (s)", "CPU (s)", "files/s", "CPU ms per file"],
                          rows))
            emit()
            ratio = ours / theirs
            beets_ms = beets.cpu / max(1, beets.items) * 1000
            ours_ms = full.cpu / full.files * 1000
            extrapolated = (" (beets' files/s measured on the subset and applied to the whole "
                            "library)" if beets.subset else "")
            emit(f"Our full scan runs at **{ratio:.2f}×** beets' import speed in files/s"
                 f"{extrapolated}; CPU per file: ours {ours_ms:.1f} ms, beets' "
                 f"{beets_ms:.1f} ms ({beets_ms / ours_ms:.2f}×). Target: at least 5×: "
                 f"**{'met' if ratio >= 5 else 'not met'}**. Beets reads tags only; reading "
                 f"our tags (`read_tags`, {a.tags_s / a.files * 1000:.2f} ms per file in the "
                 f"table above) costs {beets_ms / (a.tags_s / a.files * 1000):.0f}× less than "
                 "beets' CPU per imported file; our scan also hashes every file's audio "
                 f"(`audio_hash`, {a.audio_s / a.files * 1000:.2f} ms per file).")
        if args.write:
            write_section("library", "\n".join(out))
            print(f"\nwrote {BENCHMARKS}")
    finally:
        if args.keep:
            print(f"kept {work}" + ("" if args.library else f" (library in {lib_base})"))
        else:
            shutil.rmtree(work, ignore_errors=True)


def profile_scans(folder: Path, lib: Library, work: Path, overrides: dict[str, Any]) -> None:
    """Profile a full scan and a hybrid rescan (fresh database) with py-spy, all threads.

    Writes ``scan-<strategy>.txt`` (collapsed stacks, one line per stack and
    thread: ``frames count``) and ``scan-<strategy>-top.txt`` (the functions with
    the most samples, inclusive and self) into `folder`.
    """
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        print("py-spy is not installed: no profiles", flush=True)
        return
    from taperoom.db import transaction
    from taperoom.library import models
    from taperoom.library.context import build_services
    from taperoom.library.settings import LibrarySettings

    folder.mkdir(parents=True, exist_ok=True)
    settings = LibrarySettings(database_path=work / "profile.db", scan_on_startup=False,
                               file_watcher_enabled=False, engine_link_enabled=False,
                               **overrides)
    ctx = build_services(settings)
    try:
        with transaction(ctx.db) as session:
            directory = models.LibraryDirectory(path=str(lib.root), name="bench library")
            session.add(directory)
            session.flush()
            dir_id = directory.id
        for strategy in ("full", "hybrid"):
            raw = folder / f"scan-{strategy}.txt"
            with open(folder / f"py-spy-{strategy}.log", "wb") as log:
                proc = subprocess.Popen([str(spy), "record", "--pid", str(os.getpid()),
                                         "--rate", "200", "--threads", "--format", "raw",
                                         "--output", str(raw)], stdout=log,
                                        stderr=subprocess.STDOUT)
            time.sleep(1.5)  # attached
            t0 = time.perf_counter()
            ctx.scans.scan_sync(dir_id, strategy)
            wall = time.perf_counter() - t0
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
            top = summarize_profile(raw)
            (folder / f"scan-{strategy}-top.txt").write_text(
                f"{strategy} scan under py-spy: {wall:.1f} s\n\n{top}", encoding="utf-8")
            print(f"  profile of the {strategy} scan: {folder / f'scan-{strategy}-top.txt'}",
                  flush=True)
    finally:
        ctx.close()


def summarize_profile(raw: Path, top: int = 40) -> str:
    """Functions with the most samples in a py-spy raw (collapsed) profile."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        threads[frames[0]] += n
        for frame in set(frames[1:]):
            inclusive[frame] += n
        own[frames[-1]] += n
    out = [f"{total} samples", "", "threads:"]
    out += [f"  {n / total:6.1%}  {t}" for t, n in threads.most_common()]
    out += ["", "inclusive:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    out += ["", "self:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
