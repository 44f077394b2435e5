"""Disk state of the ephemeral app: WAV files, segment I/O, metadata JSON, locks.

Layout
------
Every per-track file is named by the track's *key*, its whole file name escaped
(:func:`taperoom.ephemeral.names.track_key`), so that no two tracks share a file,
even on a case-insensitive file system.

``AUDIO_DIR/<name>.wav``
    The tracks, worn in place.
``METADATA_DIR/tracks/<key>.json``
    One metadata file per track in the contract's format, with each count in a
    fixed-width slot (:mod:`taperoom.ephemeral.metafile`) so that counting a play
    rewrites ten bytes in place; any other change replaces the file atomically.
``METADATA_DIR/waveforms/<key>.json``
    Waveform caches.
``METADATA_DIR/pristine/<key>``
    Pristine copies, when ``KEEP_ORIGINALS`` is on.
``METADATA_DIR/.locks/<key>.lock``
    ``flock`` files guarding read-modify-write of the metadata.

The original's layout, ``METADATA_DIR/<name-without-extension>.json`` (and the
pristine copies ``METADATA_DIR/originals/<name>`` of earlier versions of this
app), is read where it belongs to the track without doubt: a ``<stem>.json``
whose ``filename`` is the track's exact name and which fits the file is moved to
the new layout once, atomically, under the track's locks, and counted on from
there; any other ``<stem>.json`` is left alone.

Concurrency
-----------
Any number of threads and worker processes may serve the same track. Wearing a
segment holds an OFD byte-range write lock on that segment's bytes of the WAV
file, and the segment's play count changes only under that lock (one ``pwrite``
of its slot), so the count read under it is the count the wear is computed
from, and plays of different segments never wait for each other. The stream
count changes in place under the track's metadata ``flock``. Replacing the whole
metadata file (creating it, converting it to the slot layout, reset) holds a
write lock on the whole WAV file, which waits for every segment being worn, and
the metadata ``flock``. Locks are always taken in the order *audio range, then
metadata*.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from taperoom.audio import wav
from taperoom.ephemeral import metafile
from taperoom.ephemeral.names import track_key
from taperoom.ephemeral.settings import EphemeralSettings
from taperoom.ephemeral.wear import WEAR_MODELS, WearModel, rng_for
from taperoom.errors import Busy, Conflict, InvalidInput, MediaError, NotFound
from taperoom.fslock import atomic_write, file_lock, fsync_dir, range_lock

log = logging.getLogger(__name__)

Meta = dict[str, Any]

#: Unlocked reads of a metadata file tried before it counts as unreadable.
_READ_ATTEMPTS = 5
#: Times a play or a stream count settles the metadata file before giving up (503).
_SETTLE_ATTEMPTS = 3
#: Integer types as wide as a frame, to silence whole frames with one store each.
_FRAME_INTS: dict[int, type[np.unsignedinteger[Any]]] = {2: np.uint16, 4: np.uint32, 8: np.uint64}
#: Counts must fit a slot of the metadata file.
_MAX_COUNT = 10 ** metafile.COUNT_WIDTH


def wearable_info(path: Path, fd: int | None = None) -> wav.WavInfo:
    """Header of a WAV file this app can wear: one it can parse, with audio frames.

    Parameters
    ----------
    path : Path
        The file (named in errors).
    fd : int, optional
        An open descriptor of it, read instead of opening `path`.

    Returns
    -------
    wav.WavInfo

    Raises
    ------
    MediaError
        Not a WAV file this app can wear, or one with no audio frames.
    """
    info = wav.read_info(path) if fd is None else wav.parse_header(fd, path)
    if info.n_frames == 0:
        raise MediaError(path, "no audio frames")
    return info


def is_wav_name(name: str) -> bool:
    """True for names ending in ``.wav`` (any case), as the original scanned them."""
    return name.lower().endswith(".wav") and not name.startswith(".")


def now_iso() -> str:
    """Current UTC time as ``2025-11-09T12:00:00.123456Z`` (the contract's format)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: Key of a track's wear model in its metadata (absent: ``WEAR_MODEL``).
WEAR_MODEL_KEY = "wear_model"


def wear_model_in(meta: Meta | None) -> str | None:
    """The wear model a track's metadata names, or None when it names no known one."""
    name = meta.get(WEAR_MODEL_KEY) if meta is not None else None
    return name if isinstance(name, str) and name in WEAR_MODELS else None


class _MetaHandle:
    """An open metadata file of one track and where its count slots are."""

    __slots__ = ("fd", "key", "layout", "stale", "users", "wear_model")

    def __init__(self, fd: int, key: tuple[int, int], layout: metafile.Layout,
                 wear_model: str | None = None) -> None:
        self.fd = fd
        self.key = key
        self.layout = layout
        self.wear_model = wear_model
        self.users = 1
        self.stale = False


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
        self.tracks_dir = self.metadata_dir / "tracks"
        self.waveforms_dir = self.metadata_dir / "waveforms"
        for d in (self.audio_dir, self.metadata_dir, self.lock_dir, self.tracks_dir,
                  self.waveforms_dir):
            d.mkdir(parents=True, exist_ok=True)
        if settings.keep_originals:
            self.originals_dir.mkdir(parents=True, exist_ok=True)
        self.model = WEAR_MODELS[settings.wear_model]
        self._info_cache: dict[str, tuple[tuple[int, int, int], wav.WavInfo]] = {}
        self._bad: dict[str, tuple[int, int, int]] = {}
        self._handles: dict[str, _MetaHandle] = {}
        self._handles_lock = threading.Lock()
        self._sweep_temp_files()

    def close(self) -> None:
        """Close the metadata files kept open for in-place counts.

        A file that a play in progress still uses is closed when that play gives
        it back. The store stays usable: a later call opens what it needs again.
        Calling it twice is harmless.
        """
        with self._handles_lock:
            for handle in self._handles.values():
                handle.stale = True
                if handle.users == 0:
                    os.close(handle.fd)
            self._handles.clear()

    def _sweep_temp_files(self, older_than: float = 60.0) -> None:
        """Remove temp files left by a process killed in the middle of a write."""
        import time

        limit = time.time() - older_than
        for folder in (self.metadata_dir, self.tracks_dir, self.waveforms_dir,
                       self.originals_dir, self.legacy_originals_dir):
            for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
                try:
                    if tmp.stat().st_mtime < limit:
                        tmp.unlink()
                except OSError:
                    pass

    # -- names and paths -------------------------------------------------

    @property
    def originals_dir(self) -> Path:
        """Folder of pristine copies (``METADATA_DIR/pristine``)."""
        return self.settings.metadata_dir.resolve() / "pristine"

    @property
    def legacy_originals_dir(self) -> Path:
        """Folder of pristine copies named by the raw file name (earlier versions)."""
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

    def exists(self, filename: str) -> bool:
        """True when :meth:`path_of` finds `filename` (a track file inside ``AUDIO_DIR``)."""
        try:
            self.path_of(filename)
        except NotFound:
            return False
        return True

    def meta_path(self, filename: str) -> Path:
        """``METADATA_DIR/tracks/<key>.json``: the metadata of `filename`."""
        return self.tracks_dir / f"{track_key(filename)}.json"

    def legacy_meta_path(self, filename: str) -> Path:
        """``METADATA_DIR/<name-without-extension>.json``: the original's metadata file,
        shared by every track of that stem."""
        return self.metadata_dir / f"{Path(filename).stem}.json"

    def waveform_path(self, filename: str) -> Path:
        """``METADATA_DIR/waveforms/<key>.json``: the waveform cache of `filename`."""
        return self.waveforms_dir / f"{track_key(filename)}.json"

    def original_path(self, filename: str) -> Path:
        """``METADATA_DIR/pristine/<key>``: the pristine copy of `filename`."""
        return self.originals_dir / track_key(filename)

    def lock_path(self, filename: str) -> Path:
        """``METADATA_DIR/.locks/<key>.lock``: the metadata lock file of `filename`."""
        return self.lock_dir / f"{track_key(filename)}.lock"

    def meta_lock(self, filename: str) -> Any:
        """Exclusive lock on the metadata of `filename` (context manager)."""
        return file_lock(self.lock_path(filename), timeout=self.settings.lock_timeout)

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
        info = wearable_info(path, fd)
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
        """Metadata of `filename`, or None when there is none (or it is unreadable).

        Read without a lock: a read that overlaps the in-place write of a count may
        see a half-written number, so an unparsable read is tried again a few times
        before the file is reported unreadable.
        """
        path = self.meta_path(filename)
        for attempt in range(_READ_ATTEMPTS):
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                return None
            except OSError as exc:
                log.warning("unreadable metadata for %s: %s", filename, exc)
                return None
            meta = metafile.parse(data)
            if meta is not None:
                return meta
            if attempt + 1 < _READ_ATTEMPTS:
                time.sleep(0.001)
        log.warning("unreadable metadata for %s: not a JSON object", filename)
        return None

    def _write_meta(self, filename: str, meta: Meta) -> None:
        """Replace the metadata file by `meta` in the slot layout (temp file, fsync, rename).

        Callers hold the track's whole-file audio lock and its metadata lock, so no
        count slot is being written meanwhile.
        """
        data, _ = metafile.render(meta)
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
                and type(streams) is int and 0 <= streams < _MAX_COUNT
                and set(map(type, counts)) <= {int} and min(counts, default=0) >= 0
                and max(counts, default=0) < _MAX_COUNT)

    def fits(self, meta: Meta | None, info: wav.WavInfo, filename: str) -> bool:
        """True when `meta` is metadata of track `filename` laid out as `info`: its
        name, segments, duration and counts fit (as a restored backup must)."""
        return self._fits(meta, info, filename)

    def _fresh_meta(self, filename: str, info: wav.WavInfo) -> Meta:
        n = self.total_segments(info)
        return {
            "filename": filename,
            "title": Path(filename).stem,
            "duration": info.duration,
            "segment_duration": self.settings.segment_duration,
            "total_segments": n,
            "segment_play_counts": [0] * n,
            "created_at": now_iso(),
            "total_streams": 0,
        }

    def ensure_meta(self, filename: str) -> Meta:
        """Metadata of `filename`, created at first sight.

        When the metadata is missing, or does not match the file (the file was
        replaced by another of a different length), it is (re)created with every
        play count at 0, the waveform cache is dropped and, with
        ``KEEP_ORIGINALS``, a pristine copy is kept first. That decision is taken
        again under the track's whole-file audio lock and its metadata lock, where
        no count can be half-written.

        Raises
        ------
        NotFound, MediaError, Busy
        """
        info = self.info(filename)
        meta = self.load_meta(filename)
        if self._fits(meta, info, filename):
            assert meta is not None
            return meta
        return self._settle_meta(filename, info)

    def _settle_meta(self, filename: str, info: wav.WavInfo, fd: int | None = None) -> Meta:
        """Make the metadata of `filename` fit `info` and lie in the slot layout.

        Takes the whole-file audio lock (no segment is being worn, so no count
        slot is being written) and the metadata lock, then reads the file again:
        a fitting file in another layout is rewritten as it is; a missing one is
        moved from the original's layout when that file is the track's
        (:meth:`_adopt_legacy_meta`); otherwise it is created afresh. Must not be
        called while holding a segment lock of the track.
        """
        own = fd is None
        if fd is None:
            fd, shared = self._open_for_lock(filename)
        else:
            shared = False
        try:
            with range_lock(fd, 0, 0, timeout=self.settings.lock_timeout, shared=shared), \
                    self.meta_lock(filename):
                path = self.meta_path(filename)
                try:
                    data: bytes | None = path.read_bytes()
                except FileNotFoundError:
                    data = None
                meta = metafile.parse(data) if data is not None else None
                if self._fits(meta, info, filename):
                    assert meta is not None and data is not None
                    if metafile.layout_of(data, meta) is None:
                        self._write_meta(filename, meta)
                    return meta
                if data is None:
                    adopted = self._adopt_legacy_meta(filename, info)
                    if adopted is not None:
                        return adopted
                if meta is not None or data is not None:
                    log.warning("metadata of %s does not match the file; starting afresh",
                                filename)
                if self.settings.keep_originals:
                    self._keep_original(filename)
                self.waveform_path(filename).unlink(missing_ok=True)
                meta = self._fresh_meta(filename, info)
                self._write_meta(filename, meta)
                return meta
        finally:
            if own:
                os.close(fd)

    def _adopt_legacy_meta(self, filename: str, info: wav.WavInfo) -> Meta | None:
        """Move the original's ``<stem>.json`` to the new layout if it is this track's.

        It is when its ``filename`` is exactly `filename` and it fits the file
        (segments, duration), which tells it apart from the file of another track
        of the same stem (``x.wav``, ``x.WAV``) or from something else in
        ``METADATA_DIR``; any other file is left alone. The caller holds the
        track's whole-file audio lock and its metadata lock. The new file is
        written whole (temp file, fsync, rename) before the old one is removed, so
        a crash in between leaves both, and the new one is used.

        Returns
        -------
        dict or None
            The adopted metadata, or None when there is nothing to adopt.
        """
        legacy = self.legacy_meta_path(filename)
        try:
            data = legacy.read_bytes()
        except OSError:  # missing (the usual case), a folder, unreadable
            return None
        meta = metafile.parse(data)
        if not self._fits(meta, info, filename):
            return None
        assert meta is not None
        self._write_meta(filename, meta)
        legacy.unlink(missing_ok=True)
        if self.settings.fsync:
            fsync_dir(legacy.parent)
        log.info("moved the metadata of %s from %s to %s", filename, legacy.name,
                 self.meta_path(filename).relative_to(self.metadata_dir))
        return meta

    def _open_for_lock(self, filename: str) -> tuple[int, bool]:
        """Open the track to lock it whole: (fd, shared) -- read-only files get a read lock."""
        path = self.path_of(filename)
        try:
            return os.open(path, os.O_RDWR), False
        except PermissionError:
            return os.open(path, os.O_RDONLY), True

    def _meta_handle(self, filename: str, info: wav.WavInfo) -> _MetaHandle | None:
        """An open descriptor on the current metadata file of `filename`, with its layout.

        None when the file is missing, does not fit `info` or is not in the slot
        layout. The caller releases the handle with :meth:`_release`. The handle
        is reused while the path names the same inode (the descriptor keeps that
        inode alive, so its number cannot be reused meanwhile).
        """
        path = self.meta_path(filename)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        key = (st.st_dev, st.st_ino)
        with self._handles_lock:
            handle = self._handles.get(filename)
            if handle is not None and handle.key == key:
                handle.users += 1
                return handle
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fst = os.fstat(fd)
            data = os.pread(fd, fst.st_size, 0)
            meta = metafile.parse(data)
            layout = metafile.layout_of(data, meta) if self._fits(meta, info, filename) \
                and meta is not None else None
        except BaseException:
            os.close(fd)
            raise
        if layout is None:
            os.close(fd)
            return None
        handle = _MetaHandle(fd, (fst.st_dev, fst.st_ino), layout, wear_model_in(meta))
        with self._handles_lock:
            old = self._handles.get(filename)
            self._handles[filename] = handle
            if old is not None:
                old.stale = True
                if old.users == 0:
                    os.close(old.fd)
        return handle

    def _release(self, handle: _MetaHandle, *, drop: bool = False) -> None:
        """Give back a handle from :meth:`_meta_handle` (`drop`: it proved unusable)."""
        with self._handles_lock:
            handle.users -= 1
            if drop and not handle.stale:
                handle.stale = True
                for name, h in list(self._handles.items()):
                    if h is handle:
                        del self._handles[name]
            if handle.stale and handle.users == 0:
                os.close(handle.fd)

    def _bump_slot(self, handle: _MetaHandle, offset: int) -> int:
        """Add one to the slot at `offset`; return the value before (made durable with
        ``fdatasync`` when ``FSYNC`` is on).

        Raises
        ------
        ValueError
            The slot does not hold a number: the file is not what the handle expects.
        Conflict
            The count would not fit in its slot.
        """
        before = metafile.read_slot(handle.fd, offset)
        try:
            metafile.write_slot(handle.fd, offset, before + 1)
        except OverflowError as exc:
            raise Conflict(str(exc)) from None
        if self.settings.fsync:
            os.fdatasync(handle.fd)
        return before

    def add_stream(self, filename: str) -> None:
        """Count one more stream of `filename` (``total_streams``), in place."""
        info = self.info(filename)
        for _ in range(_SETTLE_ATTEMPTS):
            with self.meta_lock(filename):  # stream counts exclude each other with it
                handle = self._meta_handle(filename, info)
                if handle is not None:
                    drop = False
                    try:
                        self._bump_slot(handle, handle.layout.streams)
                        return
                    except ValueError:  # not the file the handle expects
                        drop = True
                    finally:
                        self._release(handle, drop=drop)
            self._settle_meta(filename, info)
        raise Busy(f"metadata of {filename} keeps changing")

    def _update_meta_locked(self, filename: str, info: wav.WavInfo,
                            change: Callable[[Meta], None]) -> Meta:
        """Apply `change` to the metadata and replace the file atomically.

        The caller holds the track's whole-file audio lock (no count slot is being
        written); the metadata lock is taken here. Unfitting metadata is replaced
        by fresh metadata before `change`.
        """
        with self.meta_lock(filename):
            meta = self.load_meta(filename)
            if not self._fits(meta, info, filename):
                meta = self._fresh_meta(filename, info)
            assert meta is not None
            change(meta)
            self._write_meta(filename, meta)
            return meta

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
        count is saved first (its slot of the metadata file rewritten in place,
        and ``fdatasync``-ed with ``FSYNC``), so a crash in between never loses a
        counted play (the audio then just misses one wear step).

        Parameters
        ----------
        filename : str
            Track name.
        index : int
            Segment index, ``0 <= index < total_segments``.
        rng : np.random.Generator, optional
            Randomness for the wear model; by default seeded from the track's name,
            the segment and its play count (:func:`~taperoom.ephemeral.wear.rng_for`),
            so a play wears the same way in every process.

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
        Conflict
            The count would exceed 10 digits.
        """
        fd, info = self._open_current(filename)
        try:
            if not 0 <= index < self.total_segments(info):
                raise InvalidInput("Invalid segment index")
            start, end = self.segment_frames(info, index)
            nbytes = (end - start) * info.block_align
            for _ in range(_SETTLE_ATTEMPTS):
                with range_lock(fd, info.frame_offset(start), nbytes,
                                timeout=self.settings.lock_timeout):
                    counted = self._count_play(filename, info, index)
                    if counted is not None:
                        before, model = counted
                        self._wear(fd, info, start, end, before,
                                   rng or rng_for(filename, index, before),
                                   model=self.model_named(model))
                        return before + 1
                # no fitting metadata in the slot layout: settle it, outside the segment lock
                self._settle_meta(filename, info, fd)
            raise Busy(f"metadata of {filename} keeps changing")
        finally:
            os.close(fd)

    def _count_play(self, filename: str, info: wav.WavInfo, index: int
                    ) -> tuple[int, str | None] | None:
        """Add one play to segment `index` in place; return the count before it and
        the track's wear model (None: ``WEAR_MODEL``).

        The caller holds the segment's range lock, the only lock under which that
        count changes (whole-file rewrites hold the whole-file audio lock). None
        when the metadata is missing, unfitting or not in the slot layout.
        """
        handle = self._meta_handle(filename, info)
        if handle is None:
            return None
        try:
            before = self._bump_slot(handle, handle.layout.counts[index])
        except ValueError:  # not the file the handle expects: read it again
            self._release(handle, drop=True)
            return None
        except BaseException:
            self._release(handle)
            raise
        self._release(handle)
        return before, handle.wear_model

    def _wear(self, fd: int, info: wav.WavInfo, start: int, end: int, before: int,
              rng: np.random.Generator, *, model: WearModel | None = None) -> None:
        """Apply `model` (``WEAR_MODEL`` by default) to frames ``[start, end)`` in place.

        Models with a ``frame_mask`` method (dropout) silence whole frames in the
        raw bytes, with no decode/encode round trip; the bytes are the same as
        encoding the decoded result (0x80 is silence for unsigned 8-bit PCM, all
        zero bytes for the other formats).
        """
        raw = wav.read_raw(fd, info, start, end - start)
        n = len(raw) // info.block_align
        model = model or self.model
        frame_mask = getattr(model, "frame_mask", None)
        if frame_mask is not None:
            mask = frame_mask(n, play_count=before, rate_percent=self.settings.degradation_rate,
                              rng=rng)
            if mask is None or not mask.any():
                return
            buf = bytearray(raw)
            silence = 0x80 if info.bits_per_sample == 8 else 0
            as_int = _FRAME_INTS.get(info.block_align)
            if as_int is not None and silence == 0:  # one integer per frame: cheaper
                np.frombuffer(buf, dtype=as_int, count=n)[mask] = 0
            else:
                frames = np.frombuffer(buf, dtype=np.uint8, count=n * info.block_align)
                frames.reshape(n, info.block_align)[mask] = silence
            os.pwrite(fd, buf, info.frame_offset(start))
            return
        y = wav.decode(raw, info)
        worn = model.apply(y, play_count=before, rate_percent=self.settings.degradation_rate,
                           rng=rng, sample_rate=info.sample_rate)
        if not np.array_equal(worn, y):
            os.pwrite(fd, wav.encode(worn, info), info.frame_offset(start))

    # -- wear models -----------------------------------------------------

    def model_named(self, name: str | None) -> WearModel:
        """The wear model called `name`; ``WEAR_MODEL``'s for None."""
        return WEAR_MODELS[name] if name is not None else self.model

    def wear_model_of(self, filename: str) -> str:
        """Name of the wear model of `filename`: its own, else ``WEAR_MODEL``.

        Raises
        ------
        NotFound, MediaError, Busy
            As :meth:`ensure_meta`.
        """
        return wear_model_in(self.ensure_meta(filename)) or self.settings.wear_model

    def set_wear_model(self, filename: str, name: str | None) -> Meta:
        """Give `filename` its own wear model (None: back to ``WEAR_MODEL``).

        The metadata file is replaced atomically under the whole-file audio lock
        (which waits for segments being worn), so every later play uses the new
        model and no play uses half of it.

        Raises
        ------
        InvalidInput
            `name` is not a known wear model.
        NotFound, MediaError
            No such track, or not a WAV file this app can wear.
        Busy
            Locks not granted within ``LOCK_TIMEOUT``.
        """
        if name is not None and name not in WEAR_MODELS:
            raise InvalidInput(f"Unknown wear model {name!r}; known: {', '.join(WEAR_MODELS)}")
        self.ensure_meta(filename)
        fd, shared = self._open_for_lock(filename)
        try:
            info = self.info(filename, fd, self.path_of(filename))

            def change(meta: Meta) -> None:
                if name is None:
                    meta.pop(WEAR_MODEL_KEY, None)
                else:
                    meta[WEAR_MODEL_KEY] = name

            with range_lock(fd, 0, 0, timeout=self.settings.lock_timeout, shared=shared):
                return self._update_meta_locked(filename, info, change)
        finally:
            os.close(fd)

    # -- originals -------------------------------------------------------

    def _adopt_legacy_original(self, filename: str) -> None:
        """Move an earlier version's ``originals/<filename>`` to ``pristine/<key>``.

        Only a regular file of exactly that name (compared as listed, not through
        a case-insensitive lookup) is moved, once, with one ``rename``.
        """
        dest = self.original_path(filename)
        if dest.exists():
            return
        try:
            with os.scandir(self.legacy_originals_dir) as entries:
                found = any(e.name == filename and e.is_file(follow_symlinks=False)
                            for e in entries)
        except OSError:  # no such folder: nothing to adopt
            return
        if not found:
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self.legacy_originals_dir / filename, dest)
        except FileNotFoundError:  # another process moved it first
            return
        log.info("moved the pristine copy of %s to %s", filename,
                 dest.relative_to(self.metadata_dir))

    def _keep_original(self, filename: str) -> None:
        self._adopt_legacy_original(filename)
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
        self._adopt_legacy_original(filename)
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

                return self._update_meta_locked(filename, info, zero)
        finally:
            os.close(fd)

    # -- curation --------------------------------------------------------

    @contextmanager
    def holding(self, filename: str, *, shared: bool = False) -> Iterator[Path]:
        """Hold the track's whole-file audio lock and its metadata lock.

        Every play of the track waits meanwhile (and no count slot is being
        written), so its WAV file, metadata and pristine copy may be read
        (`shared`: a read lock, which other readers share) or replaced together.
        Locks are taken in the store's order, audio then metadata.

        Yields
        ------
        Path
            The track's path in ``AUDIO_DIR``.

        Raises
        ------
        NotFound
            No such track.
        Busy
            Locks not granted within ``LOCK_TIMEOUT``.
        """
        path = self.path_of(filename)
        if shared:
            fd = os.open(path, os.O_RDONLY)
        else:
            fd, shared = self._open_for_lock(filename)
        try:
            with range_lock(fd, 0, 0, timeout=self.settings.lock_timeout, shared=shared), \
                    self.meta_lock(filename):
                yield path
        finally:
            os.close(fd)

    def forget(self, filename: str) -> None:
        """Drop what this process keeps about `filename` (parsed header, open metadata
        file), after its files were replaced or removed."""
        self._info_cache.pop(filename, None)
        self._bad.pop(filename, None)
        with self._handles_lock:
            handle = self._handles.pop(filename, None)
            if handle is not None:
                handle.stale = True
                if handle.users == 0:
                    os.close(handle.fd)

    def own_files(self, filename: str) -> list[Path]:
        """The per-track files of `filename` in ``METADATA_DIR``: metadata, waveform
        cache, pristine copy (whether they exist or not)."""
        return [self.meta_path(filename), self.waveform_path(filename),
                self.original_path(filename)]

    def delete(self, filename: str) -> None:
        """Remove track `filename`: its WAV file, metadata, waveform cache and pristine copy.

        Under :meth:`holding`, so no play is half done; the WAV file goes first, so
        that a crash in between leaves only files that no track names (the next
        track of that name starts afresh, as its metadata will not fit).

        Raises
        ------
        NotFound
            No such track.
        Busy
            Locks not granted within ``LOCK_TIMEOUT``.
        """
        with self.holding(filename) as path:
            path.unlink()
            for own in self.own_files(filename):
                own.unlink(missing_ok=True)
            if self.settings.fsync:
                fsync_dir(self.audio_dir)
                fsync_dir(self.tracks_dir)
        self.forget(filename)
        log.info("deleted track %s", filename)
