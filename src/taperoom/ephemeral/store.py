"""Disk state of the ephemeral app: WAV files, segment I/O, metadata JSON, locks.

Layout
------
``AUDIO_DIR/<name>.wav``
    The tracks, worn in place.
``METADATA_DIR/<name>.json``
    One metadata file per track in the contract's format (readable by the
    original implementation), replaced atomically on every change.
``METADATA_DIR/.locks/<name>.lock``
    ``flock`` files guarding read-modify-write of the metadata.
``METADATA_DIR/originals/<name>.wav``
    Pristine copies, when ``KEEP_ORIGINALS`` is on.

Concurrency
-----------
Any number of threads and worker processes may serve the same track. Wearing a
segment holds an OFD byte-range write lock on that segment's bytes of the WAV
file; play counts are changed under the track's metadata ``flock``. Locks are
always taken in the order *audio range, then metadata*. A segment's play count
only changes while its range lock is held, so the count read under that lock is
the count the wear is computed from.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import stat
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from taperoom.audio import wav
from taperoom.ephemeral.degrade import WEAR_MODELS
from taperoom.ephemeral.settings import EphemeralSettings
from taperoom.errors import InvalidInput, MediaError, NotFound
from taperoom.fslock import atomic_write, file_lock, range_lock

log = logging.getLogger(__name__)

Meta = dict[str, Any]


def is_wav_name(name: str) -> bool:
    """True for names ending in ``.wav`` (any case), as the original scanned them."""
    return name.lower().endswith(".wav") and not name.startswith(".")


def now_iso() -> str:
    """Current UTC time as ``2025-11-09T12:00:00.123456Z`` (the contract's format)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_rng_local = threading.local()


def _thread_rng() -> np.random.Generator:
    """This thread's random generator (seeded once from OS entropy)."""
    rng: np.random.Generator | None = getattr(_rng_local, "rng", None)
    if rng is None:
        rng = _rng_local.rng = np.random.default_rng()
    return rng


class _Ticket:
    """One queued play-count increment."""

    __slots__ = ("before", "done", "error", "index")

    def __init__(self, index: int) -> None:
        self.index = index
        self.before = 0
        self.done = False
        self.error: Exception | None = None


class _CountBatcher:
    """Queue of play-count increments of one track in this process."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.pending: list[_Ticket] = []
        self.leading = False


class EphemeralStore:
    """Tracks on disk and their metadata.

    Parameters
    ----------
    settings : EphemeralSettings
        Folders, segment duration, wear model and lock timeout.
    """

    def __init__(self, settings: EphemeralSettings) -> None:
        self.settings = settings
        self.audio_dir = settings.audio_dir.resolve()
        self.metadata_dir = settings.metadata_dir.resolve()
        self.lock_dir = self.metadata_dir / ".locks"
        for d in (self.audio_dir, self.metadata_dir, self.lock_dir):
            d.mkdir(parents=True, exist_ok=True)
        if settings.keep_originals:
            self.originals_dir.mkdir(parents=True, exist_ok=True)
        self.model = WEAR_MODELS[settings.wear_model]
        self._info_cache: dict[str, tuple[tuple[int, int, int], wav.WavInfo]] = {}
        self._bad: dict[str, tuple[int, int, int]] = {}
        self._batchers: dict[str, _CountBatcher] = {}
        self._batchers_lock = threading.Lock()
        self._meta_ok: dict[str, tuple[int, int, int]] = {}
        self._sweep_temp_files()

    def _sweep_temp_files(self, older_than: float = 60.0) -> None:
        """Remove temp files left by a process killed in the middle of a write."""
        import time

        limit = time.time() - older_than
        for folder in (self.metadata_dir, self.originals_dir):
            for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
                try:
                    if tmp.stat().st_mtime < limit:
                        tmp.unlink()
                except OSError:
                    pass

    # -- names and paths -------------------------------------------------

    @property
    def originals_dir(self) -> Path:
        """Folder of pristine copies."""
        return self.settings.metadata_dir.resolve() / "originals"

    def path_of(self, filename: str) -> Path:
        """Path of track `filename`, confined to ``AUDIO_DIR``.

        Raises
        ------
        NotFound
            The name is not a plain ``*.wav`` file name inside ``AUDIO_DIR``, or
            the file does not exist ("Audio file not found", as the contract says).
        """
        if (not filename or "/" in filename or "\\" in filename or "\x00" in filename
                or not is_wav_name(filename)):
            raise NotFound("Audio file not found")
        path = self.audio_dir / filename
        try:
            st = os.lstat(path)
        except OSError:
            raise NotFound("Audio file not found") from None
        if stat.S_ISREG(st.st_mode):  # a plain file directly in AUDIO_DIR: confined
            return path
        try:  # a symlink: confined only if it resolves to a file in AUDIO_DIR
            real = path.resolve(strict=True)
        except OSError:
            raise NotFound("Audio file not found") from None
        if real.parent != self.audio_dir or not real.is_file():
            raise NotFound("Audio file not found")
        return path

    def meta_path(self, filename: str) -> Path:
        """``METADATA_DIR/<name-without-extension>.json``."""
        return self.metadata_dir / f"{Path(filename).stem}.json"

    def waveform_path(self, filename: str) -> Path:
        """``METADATA_DIR/<filename>.waveform.json`` (the original's cache name)."""
        return self.metadata_dir / f"{filename}.waveform.json"

    def original_path(self, filename: str) -> Path:
        """Pristine copy of `filename`."""
        return self.originals_dir / filename

    def _lock_path(self, filename: str) -> Path:
        return self.lock_dir / f"{Path(filename).stem}.lock"

    def meta_lock(self, filename: str) -> Any:
        """Exclusive lock on the metadata of `filename` (context manager)."""
        return file_lock(self._lock_path(filename), timeout=self.settings.lock_timeout)

    # -- discovery -------------------------------------------------------

    def list_filenames(self) -> list[str]:
        """Names of the ``*.wav`` files in ``AUDIO_DIR``, sorted."""
        try:
            entries = list(os.scandir(self.audio_dir))
        except FileNotFoundError:
            return []
        return sorted(e.name for e in entries if is_wav_name(e.name) and e.is_file())

    def info(self, filename: str, fd: int | None = None, path: Path | None = None
             ) -> wav.WavInfo:
        """Parsed header of `filename`, cached while the file keeps its inode and size.

        Raises
        ------
        NotFound
            No such track.
        MediaError
            Not a WAV file this app can wear.
        """
        path = path or self.path_of(filename)
        st = os.fstat(fd) if fd is not None else os.stat(path)
        key = (st.st_dev, st.st_ino, st.st_size)
        cached = self._info_cache.get(filename)
        if cached and cached[0] == key:
            return cached[1]
        info = wav.read_info(path) if fd is None else wav.parse_header(fd, path)
        if info.n_frames == 0:
            raise MediaError(path, "no audio frames")
        self._info_cache[filename] = (key, info)
        return info

    def try_info(self, filename: str) -> wav.WavInfo | None:
        """:meth:`info`, or None (logged once per file version) for unreadable files."""
        try:
            return self.info(filename)
        except NotFound:
            return None
        except MediaError as exc:
            try:
                st = os.stat(self.audio_dir / filename)
                key = (st.st_dev, st.st_ino, st.st_size)
            except OSError:
                return None
            if self._bad.get(filename) != key:
                self._bad[filename] = key
                log.warning("skipping %s: %s", filename, exc.reason)
            return None

    # -- segments --------------------------------------------------------

    def total_segments(self, info: wav.WavInfo) -> int:
        """``ceil(duration / SEGMENT_DURATION)``, as the contract computes it."""
        return max(1, math.ceil(round(info.duration / self.settings.segment_duration, 9)))

    def segment_frames(self, info: wav.WavInfo, index: int) -> tuple[int, int]:
        """Frames ``[start, end)`` of segment `index`.

        Segment ``i`` starts at frame ``floor(i * SEGMENT_DURATION * sample_rate)``,
        which equals the original's ``i * int(sample_rate * 0.5)`` whenever the
        segment holds a whole number of frames; the last segment ends at the last
        frame.
        """
        seg = self.settings.segment_duration * info.sample_rate
        start = math.floor(index * seg + 1e-9)
        end = info.n_frames if index >= self.total_segments(info) - 1 else \
            math.floor((index + 1) * seg + 1e-9)
        return start, min(end, info.n_frames)

    def segment_of_frame(self, info: wav.WavInfo, frame: int) -> int:
        """Index of the segment holding frame `frame`."""
        seg = self.settings.segment_duration * info.sample_rate
        idx = math.floor(frame / seg + 1e-9)
        if math.floor((idx + 1) * seg + 1e-9) <= frame:  # fractional size: next one starts here
            idx += 1
        return max(0, min(idx, self.total_segments(info) - 1))

    # -- metadata --------------------------------------------------------

    def load_meta(self, filename: str) -> Meta | None:
        """Metadata of `filename`, or None when there is none (or it is unreadable)."""
        try:
            with open(self.meta_path(filename), "rb") as fh:
                meta = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("unreadable metadata for %s: %s", filename, exc)
            return None
        return meta if isinstance(meta, dict) else None

    def _write_meta(self, filename: str, meta: Meta) -> None:
        data = json.dumps(meta, separators=(",", ":")).encode()
        atomic_write(self.meta_path(filename), data, fsync=self.settings.fsync)

    def _fits(self, meta: Meta | None, info: wav.WavInfo, filename: str) -> bool:
        if meta is None:
            return False
        counts = meta.get("segment_play_counts")
        n = self.total_segments(info)
        duration = meta.get("duration")
        streams = meta.get("total_streams", 0)
        return (meta.get("filename") == filename and isinstance(counts, list)
                and len(counts) == n and meta.get("total_segments") == n
                and isinstance(duration, int | float)
                and math.isclose(duration, info.duration, rel_tol=0, abs_tol=1e-6)
                and isinstance(meta.get("title"), str)
                and isinstance(streams, int) and streams >= 0
                and set(map(type, counts)) <= {int} and min(counts, default=0) >= 0)

    def ensure_meta(self, filename: str) -> Meta:
        """Metadata of `filename`, created at first sight.

        When the metadata is missing, or does not match the file (the file was
        replaced by another of a different length), it is (re)created with every
        play count at 0, the waveform cache is dropped and, with
        ``KEEP_ORIGINALS``, a pristine copy is kept first.

        Raises
        ------
        NotFound, MediaError, Busy
        """
        info = self.info(filename)
        meta = self.load_meta(filename)
        if self._fits(meta, info, filename):
            assert meta is not None
            return meta
        with self.meta_lock(filename):
            meta = self.load_meta(filename)
            if self._fits(meta, info, filename):
                assert meta is not None
                return meta
            if meta is not None:
                log.warning("metadata of %s does not match the file; starting afresh", filename)
            if self.settings.keep_originals:
                self._keep_original(filename)
            self.waveform_path(filename).unlink(missing_ok=True)
            n = self.total_segments(info)
            meta = {
                "filename": filename,
                "title": Path(filename).stem,
                "duration": info.duration,
                "segment_duration": self.settings.segment_duration,
                "total_segments": n,
                "segment_play_counts": [0] * n,
                "created_at": now_iso(),
                "total_streams": 0,
            }
            self._write_meta(filename, meta)
            return meta

    def update_meta(self, filename: str, change: Callable[[Meta], None]) -> Meta:
        """Apply `change` to the metadata under the exclusive lock and save atomically."""
        self.ensure_meta(filename)
        with self.meta_lock(filename):
            meta = self.load_meta(filename)
            if meta is None:  # removed meanwhile
                raise NotFound("Track not found")
            change(meta)
            self._write_meta(filename, meta)
            return meta

    def add_stream(self, filename: str) -> None:
        """Count one more stream of `filename` (``total_streams``)."""

        def bump(meta: Meta) -> None:
            meta["total_streams"] = int(meta.get("total_streams", 0)) + 1

        self.update_meta(filename, bump)

    # -- wear ------------------------------------------------------------

    def _open_current(self, filename: str) -> tuple[int, wav.WavInfo]:
        path = self.path_of(filename)
        fd = os.open(path, os.O_RDWR)
        try:
            return fd, self.info(filename, fd, path)
        except BaseException:
            os.close(fd)
            raise

    def degrade(self, filename: str, index: int, *, rng: np.random.Generator | None = None
                ) -> int:
        """Play segment `index` once: count the play and wear its samples on disk.

        The wear is computed from the play count *before* this play (so the first
        play changes nothing with the dropout model) and written in place over the
        segment's frames. Both happen under the segment's byte-range lock; the
        count is saved first, so a crash in between never loses a counted play
        (the audio then just misses one wear step).

        Parameters
        ----------
        filename : str
            Track name.
        index : int
            Segment index, ``0 <= index < total_segments``.
        rng : np.random.Generator, optional
            Randomness for the wear model (fresh OS entropy by default).

        Returns
        -------
        int
            The segment's new play count.

        Raises
        ------
        NotFound
            No such track.
        InvalidInput
            `index` out of range ("Invalid segment index").
        Busy
            The segment lock was not granted within ``LOCK_TIMEOUT`` seconds.
        """
        fd, info = self._open_current(filename)
        try:
            self._ensure_fitting_meta(filename, info)
            if not 0 <= index < self.total_segments(info):
                raise InvalidInput("Invalid segment index")
            start, end = self.segment_frames(info, index)
            nbytes = (end - start) * info.block_align
            with range_lock(fd, info.frame_offset(start), nbytes,
                            timeout=self.settings.lock_timeout):
                before = self._count_play(filename, index)
                self._wear(fd, info, start, end, before, rng or _thread_rng())
                return before + 1
        finally:
            os.close(fd)

    def _ensure_fitting_meta(self, filename: str, info: wav.WavInfo) -> None:
        """Make sure the metadata of `filename` matches `info` (checked once per
        file version in this process; the JSON is read again under the lock when
        counts change)."""
        key = self._info_cache.get(filename, ((0, 0, 0), info))[0]
        if self._meta_ok.get(filename) == key:
            return
        meta = self.load_meta(filename)
        if not self._fits(meta, info, filename):
            self.ensure_meta(filename)
        self._meta_ok[filename] = key

    def _count_play(self, filename: str, index: int) -> int:
        """Add one play to segment `index`; return the count before it.

        Group commit: threads of this process that count plays of the same track
        at the same time queue their increments; one of them (the leader) takes
        the track's metadata lock, applies every queued increment, and writes the
        JSON once for all of them. Each caller holds its segment's range lock, so a
        batch never holds the same segment twice.
        """
        with self._batchers_lock:
            batcher = self._batchers.setdefault(filename, _CountBatcher())
        ticket = _Ticket(index)
        with batcher.cond:
            batcher.pending.append(ticket)
            while not ticket.done:
                if batcher.leading:
                    batcher.cond.wait(0.5)
                    continue
                batcher.leading = True
                batch, batcher.pending = batcher.pending, []
                batcher.cond.release()
                try:
                    self._commit_plays(filename, batch)
                finally:
                    batcher.cond.acquire()
                    batcher.leading = False
                    batcher.cond.notify_all()
        if ticket.error is not None:
            raise ticket.error
        return ticket.before

    def _commit_plays(self, filename: str, batch: list[_Ticket]) -> None:
        try:
            with self.meta_lock(filename):
                meta = self.load_meta(filename)
                if meta is None:
                    raise NotFound("Track not found")
                counts = meta["segment_play_counts"]
                for ticket in batch:
                    ticket.before = int(counts[ticket.index])
                    counts[ticket.index] = ticket.before + 1
                self._write_meta(filename, meta)
        except Exception as exc:
            for ticket in batch:
                ticket.error = exc
        finally:
            for ticket in batch:
                ticket.done = True

    def _wear(self, fd: int, info: wav.WavInfo, start: int, end: int, before: int,
              rng: np.random.Generator) -> None:
        """Apply the wear model to frames ``[start, end)`` in place.

        Models with a ``frame_mask`` method (dropout) silence whole frames in the
        raw bytes, with no decode/encode round trip; the bytes are the same as
        encoding the decoded result (0x80 is silence for unsigned 8-bit PCM, all
        zero bytes for the other formats).
        """
        raw = wav.read_raw(fd, info, start, end - start)
        n = len(raw) // info.block_align
        frame_mask = getattr(self.model, "frame_mask", None)
        if frame_mask is not None:
            mask = frame_mask(n, play_count=before, rate_percent=self.settings.degradation_rate,
                              rng=rng)
            if mask is None or not mask.any():
                return
            buf = bytearray(raw)
            frames = np.frombuffer(buf, dtype=np.uint8).reshape(n, info.block_align)
            frames[mask] = 0x80 if info.bits_per_sample == 8 else 0
            os.pwrite(fd, buf, info.frame_offset(start))
            return
        y = wav.decode(raw, info)
        worn = self.model.apply(y, play_count=before, rate_percent=self.settings.degradation_rate,
                                rng=rng)
        if not np.array_equal(worn, y):
            os.pwrite(fd, wav.encode(worn, info), info.frame_offset(start))

    # -- originals -------------------------------------------------------

    def _keep_original(self, filename: str) -> None:
        dest = self.original_path(filename)
        if dest.exists():
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(self.path_of(filename), tmp)
        os.replace(tmp, dest)
        log.info("kept a pristine copy of %s", filename)

    def reset(self, filename: str) -> Meta:
        """Restore `filename` from its pristine copy and zero its play counts.

        The whole file is write-locked (waiting for running wear to finish), the
        pristine frames are written back in place, then the metadata is reset.

        Raises
        ------
        NotFound
            No such track, or no pristine copy of it.
        Busy
            Locks not granted within ``LOCK_TIMEOUT``.
        """
        original = self.original_path(filename)
        if not original.is_file():
            raise NotFound(f"No pristine copy of {filename} (KEEP_ORIGINALS was off at first "
                           "sight)")
        fd, info = self._open_current(filename)
        try:
            src_info = wav.read_info(original)
            if src_info.data_size != info.data_size or src_info.block_align != info.block_align:
                raise MediaError(original, "pristine copy does not match the track's layout")
            with range_lock(fd, 0, 0, timeout=self.settings.lock_timeout):
                with open(original, "rb") as src:
                    src.seek(src_info.data_offset)
                    done = 0
                    while done < info.data_size:
                        block = src.read(min(1 << 20, info.data_size - done))
                        if not block:
                            break
                        os.pwrite(fd, block, info.data_offset + done)
                        done += len(block)
                if self.settings.fsync:
                    os.fsync(fd)

                def zero(m: Meta) -> None:
                    m["segment_play_counts"] = [0] * int(m["total_segments"])
                    m["total_streams"] = 0

                return self.update_meta(filename, zero)
        finally:
            os.close(fd)
