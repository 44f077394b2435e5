"""Audio files of other formats dropped into ``AUDIO_DIR``, converted once to WAV tracks.

MP3, FLAC, Ogg Vorbis, Opus, AIFF and M4A files are decoded with PyAV into a PCM
WAV file carrying their tags and cover art (:func:`taperoom.audio.towav.decode_to_wav`),
which then wears like any other track. The original is kept aside.

Steps, each safe to interrupt (a later scan finishes or redoes the work):

1. decode into a hidden temp file in ``AUDIO_DIR`` (``.<key>.<pid>.convert.tmp``:
   neither listed nor servable, as it does not end in ``.wav``), then ``fsync``;
2. keep the original in ``METADATA_DIR/sources/<key>`` (a hard link when the two
   folders share a file system, else a synced copy renamed into place) and
   record the conversion in ``METADATA_DIR/sources/<key>.json``;
3. link the temp file to its track name with ``link(2)``, which never replaces
   an existing file, so the track appears complete or not at all; then remove
   the temp file and the original from ``AUDIO_DIR``.

A crash after step 3's link leaves the original in ``AUDIO_DIR`` beside its track:
the next scan sees the record, the kept copy with the same bytes and the track,
and only removes the original. A file that cannot be decoded is logged once
(per file version, per process) and skipped until it changes. Worker processes
converting at once exclude each other with a lock per source file; the loser
skips the file, which the winner is converting.
"""

from __future__ import annotations

import filecmp
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from taperoom.audio.tags import read_artwork, read_tags
from taperoom.audio.towav import decode_to_wav, tag_fields
from taperoom.ephemeral.names import track_key
from taperoom.errors import Busy, MediaError
from taperoom.fslock import atomic_write, file_lock, fsync_dir

log = logging.getLogger(__name__)

#: Extensions (lower case) of the files converted: MP3, FLAC, Ogg Vorbis, Opus, AIFF, M4A.
SOURCE_EXTENSIONS = frozenset({".mp3", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff",
                               ".aifc", ".m4a"})
#: Suffix of the temp files of conversions in progress.
TEMP_SUFFIX = ".convert.tmp"
#: Temp files older than this (seconds) belong to a dead conversion and are removed.
STALE_TEMP_SECONDS = 3600.0


def is_source_name(name: str) -> bool:
    """True for a visible file name with one of :data:`SOURCE_EXTENSIONS` (any case)."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in SOURCE_EXTENSIONS


@dataclass(frozen=True)
class Conversion:
    """One conversion done.

    Attributes
    ----------
    source : str
        Name of the original in ``AUDIO_DIR`` (now kept aside).
    wav : str
        Name of the WAV track made from it.
    """

    source: str
    wav: str


class Intake:
    """Converts the files of other formats in ``AUDIO_DIR`` into WAV tracks, once.

    Parameters
    ----------
    audio_dir : Path
        ``AUDIO_DIR``.
    metadata_dir : Path
        ``METADATA_DIR``; originals are kept in its ``sources`` folder and the
        locks are taken in its ``.locks`` folder.
    fsync : bool
        Make each step durable before the next (``FSYNC``).
    """

    def __init__(self, audio_dir: Path, metadata_dir: Path, *, fsync: bool = True) -> None:
        self.audio_dir = audio_dir.resolve()
        self.sources_dir = metadata_dir.resolve() / "sources"
        self.lock_dir = metadata_dir.resolve() / ".locks"
        self.fsync = fsync
        #: Sources that failed, by name: the (device, inode, size, mtime) they failed at.
        self.failed: dict[str, tuple[int, int, int, int]] = {}
        for d in (self.audio_dir, self.sources_dir, self.lock_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._sweep()

    def _sweep(self) -> None:
        """Remove temp files of conversions that died (older than an hour)."""
        limit = time.time() - STALE_TEMP_SECONDS
        for tmp in self.audio_dir.glob(f".*{TEMP_SUFFIX}"):
            try:
                if tmp.stat().st_mtime < limit:
                    tmp.unlink()
            except OSError:
                pass

    def pending(self) -> list[str]:
        """Names of the files in ``AUDIO_DIR`` to convert, sorted."""
        try:
            with os.scandir(self.audio_dir) as entries:
                return sorted(e.name for e in entries
                              if is_source_name(e.name) and e.is_file(follow_symlinks=False))
        except FileNotFoundError:
            return []

    def convert_pending(self) -> list[Conversion]:
        """Convert every pending file that can be; return what was converted."""
        done = []
        for name in self.pending():
            result = self.convert(name)
            if result is not None:
                done.append(result)
        return done

    def convert(self, name: str) -> Conversion | None:
        """Convert source `name` of ``AUDIO_DIR`` to a WAV track.

        Returns
        -------
        Conversion or None
            None when there was nothing to do: the file is gone, another process
            holds it, it failed before in this version (logged then), it fails
            now (logged once), or an interrupted conversion of it only had to be
            finished.
        """
        src = self.audio_dir / name
        try:
            st = os.stat(src, follow_symlinks=False)
        except OSError:
            return None
        version = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if self.failed.get(name) == version:
            return None
        key = track_key(name)
        try:
            with file_lock(self.lock_dir / f"{key}.convert.lock", timeout=0.0):
                if not src.exists():  # another process converted it meanwhile
                    return None
                if self._finish_interrupted(name, key):
                    return None
                return self._convert(name, key, version)
        except Busy:  # another process is converting it
            return None

    def _record_path(self, key: str) -> Path:
        return self.sources_dir / f"{key}.json"

    def _finish_interrupted(self, name: str, key: str) -> bool:
        """Remove the original of a conversion that was done but for that; True if so."""
        try:
            record = json.loads(self._record_path(key).read_bytes())
            kept = self.sources_dir / key
            wav_name = record["wav"]
            done = (record.get("source") == name and isinstance(wav_name, str)
                    and "/" not in wav_name and (self.audio_dir / wav_name).is_file()
                    and filecmp.cmp(kept, self.audio_dir / name, shallow=False))
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if done:
            (self.audio_dir / name).unlink(missing_ok=True)
            self._sync_dir(self.audio_dir)
            log.info("finished the conversion of %s to %s", name, wav_name)
        return done

    def decode(self, src: Path, dest: Path, name: str) -> None:
        """Decode audio file `src` into the PCM WAV file `dest`, with its tags and cover
        art (``fsync``-ed with ``FSYNC``), as every conversion does.

        Parameters
        ----------
        src, dest : Path
            The source (any format PyAV decodes) and the WAV file written.
        name : str
            The source's name, for messages.

        Raises
        ------
        MediaError, OSError
            `src` is not decodable audio, or `dest` cannot be written.
        """
        try:
            tags = read_tags(src)
            cover = read_artwork(src)
        except MediaError as exc:  # decodable audio with unreadable tags: no tags
            log.info("%s: no tags carried over (%s)", name, exc.reason)
            tags, cover = None, None
        decode_to_wav(src, dest, fields=tag_fields(tags), cover=cover)
        if self.fsync:
            with open(dest, "rb+") as fh:
                os.fsync(fh.fileno())

    def _convert(self, name: str, key: str, version: tuple[int, int, int, int]
                 ) -> Conversion | None:
        src = self.audio_dir / name
        tmp = self.audio_dir / f".{key}.{os.getpid()}{TEMP_SUFFIX}"
        try:
            self.decode(src, tmp, name)
        except (MediaError, OSError) as exc:
            tmp.unlink(missing_ok=True)
            self.failed[name] = version
            reason = exc.reason if isinstance(exc, MediaError) else str(exc)
            log.warning("skipping %s: cannot convert it to WAV: %s", name, reason)
            return None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        try:
            self._keep_aside(src, key)
            target = self._link_track(tmp, name, key)
            src.unlink()
            self._sync_dir(self.audio_dir)
        finally:
            tmp.unlink(missing_ok=True)
        self.failed.pop(name, None)
        log.info("converted %s to %s (original kept in %s)", name, target,
                 self.sources_dir / key)
        return Conversion(name, target)

    def _keep_aside(self, src: Path, key: str) -> None:
        """Put a copy of `src` at ``sources/<key>`` (an earlier, different one is renamed)."""
        kept = self.sources_dir / key
        if kept.exists():
            if filecmp.cmp(kept, src, shallow=False):
                return
            os.replace(kept, kept.with_name(f"{key}.{time.strftime('%Y%m%dT%H%M%S')}"))
        staged = kept.with_name(f".{key}.{os.getpid()}.tmp")
        staged.unlink(missing_ok=True)
        try:
            os.link(src, staged)
        except OSError:  # another file system (or no hard links): copy
            shutil.copyfile(src, staged)
            if self.fsync:
                with open(staged, "rb+") as fh:
                    os.fsync(fh.fileno())
        os.replace(staged, kept)
        self._sync_dir(self.sources_dir)

    def _link_track(self, tmp: Path, source: str, key: str) -> str:
        """Give `tmp` a free track name, without ever replacing a file; return the name.

        ``<stem>.wav``, else ``<stem> (<ext>).wav``, else ``<stem> (<ext>) 2.wav``, ...
        The record naming the track is written before the link, so that a crash
        right after the link leaves a record of the finished conversion. Where
        the file system has no hard links, the temp file is renamed instead
        (after a check that the name is free).
        """
        stem, ext = Path(source).stem, Path(source).suffix.lstrip(".").lower()
        candidates = [f"{stem}.wav", f"{stem} ({ext}).wav"]
        n = 2
        while True:
            for name in candidates:
                dest = self.audio_dir / name
                if os.path.lexists(dest):
                    continue
                atomic_write(self._record_path(key), json.dumps(
                    {"source": source, "wav": name,
                     "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                    ensure_ascii=False).encode(), fsync=self.fsync)
                try:
                    os.link(tmp, dest)
                except FileExistsError:
                    continue
                except OSError:  # no hard links here (FAT, some network shares)
                    os.rename(tmp, dest)
                self._sync_dir(self.audio_dir)
                return name
            candidates = [f"{stem} ({ext}) {n}.wav"]
            n += 1

    def _sync_dir(self, folder: Path) -> None:
        if self.fsync:
            fsync_dir(folder)
