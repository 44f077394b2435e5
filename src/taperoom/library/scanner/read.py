"""Phase 3 of a scan, **read**: tags and audio-content hash of the files to read.

Tags come from :func:`taperoom.audio.tags.read_tags`, the hash from
:func:`taperoom.audio.hashing.audio_hash`, in ``scan_workers`` processes (one
thread for small batches, see :func:`reader_pool`); a file that cannot be read
is recorded with its ``scan_error`` and never stops the scan.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from taperoom.audio.hashing import audio_hash, quick_hash
from taperoom.audio.tags import TagInfo, read_tags, title_from_filename
from taperoom.errors import file_error_reason
from taperoom.library.keys import parse_key
from taperoom.library.limits import MAX_INTEGER


@dataclass(slots=True)
class FileRead:
    """What the read phase learnt about one file.

    Attributes
    ----------
    tags : dict
        Track columns from the tags (title, artist, ..., bpm, musical_key, mode,
        key_tag, duration_seconds, sample_rate, bit_rate, channels, has_artwork, codec).
    file_hash : str or None
        Audio-content hash, None when the audio could not be demuxed.
    quick_hash : str or None
    error : str or None
        Why tags or hash could not be read (stored as ``scan_error``).
    tags_read : bool
        False when `tags` were guessed from the file name because the tags
        could not be read.
    """

    tags: dict[str, Any]
    file_hash: str | None
    quick_hash: str | None
    error: str | None
    tags_read: bool = True


def tag_columns(info: TagInfo) -> dict[str, Any]:
    """Track columns from a :class:`~taperoom.audio.tags.TagInfo`.

    The key tag is kept as text in ``key_tag`` and parsed into ``musical_key``
    (0-11, C=0) and ``mode`` (1 major, 0 minor) with
    :func:`taperoom.library.keys.parse_key`; the tagged tempo goes to ``bpm``.
    """
    key = parse_key(info.key)
    return {
        "title": info.title, "artist": info.artist, "album": info.album,
        "album_artist": info.album_artist, "genre": info.genre, "year": info.year,
        "track_number": info.track_number, "comment": info.comment,
        "bpm": info.bpm, "key_tag": info.key[:32] if info.key else None,
        "musical_key": key.musical_key if key else None, "mode": key.mode if key else None,
        "duration_seconds": info.duration_seconds, "sample_rate": _integer(info.sample_rate),
        "bit_rate": _integer(info.bit_rate), "channels": _integer(info.channels),
        "has_artwork": bool(info.has_artwork), "codec": info.codec[:32] if info.codec else None,
    }


def _integer(value: int | None) -> int | None:
    """`value` when an ``Integer`` column can hold it, else None (a corrupt header's
    bit rate must not fail the whole batch on PostgreSQL)."""
    return value if value is None or 0 <= value <= MAX_INTEGER else None


#: Tag columns, in insert order; tag-less rows hold None (has_artwork False).
TAG_COLUMNS = tuple(tag_columns(TagInfo()).keys())
#: Tag columns that are analysis fields too: a rescan of a known track only fills
#: them where they are empty (analysed and user-set values win over the file's
#: tags), or sets them when the file's audio changed
#: (:meth:`taperoom.library.scanner.runner._Scan.update_values`). ``key_tag``, the
#: tag's own text, follows the file like every other tag.
TAG_FILLED = ("bpm", "musical_key", "mode")


def filename_columns(path: str) -> dict[str, Any]:
    """Tag columns guessed from the file name only (``fast`` scans, unreadable files)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    artist, title, track = title_from_filename(stem)
    out: dict[str, Any] = dict.fromkeys(TAG_COLUMNS)
    out.update(title=title or stem, artist=artist, track_number=track, has_artwork=False)
    return out


#: Files to read below which a scan reads in one thread instead of starting processes.
PROCESS_POOL_MIN_FILES = 64


def reader_pool(workers: int, n_files: int) -> Executor:
    """Executor for the read phase (tags + audio hash).

    Tag parsing (mutagen) and the container walk of the audio hash are Python
    code, so reader *threads* fight over the GIL: measured on 400 files of the
    benchmark library (``bench/library_scan.py``), 1 thread read 862 files/s,
    2 threads 719 and 2 processes 1205. Big reads therefore run in ``workers``
    processes (started by ``forkserver``, since the server has threads running);
    small ones (watcher batches, rescans of a few changed files) in one thread,
    which starts at once.
    """
    if workers > 1 and n_files >= PROCESS_POOL_MIN_FILES:
        return ProcessPoolExecutor(workers, mp_context=_forkserver())
    return ThreadPoolExecutor(1, thread_name_prefix="scan-read")


def _forkserver() -> multiprocessing.context.ForkServerContext:
    """The ``forkserver`` context, with the project's loaded modules preloaded.

    Each process the forkserver forks re-runs the parent's main script before
    it unpickles its work, because Python 3.11's forkserver never preloads
    ``__main__`` (CPython issues gh-126631 and gh-137996, fixed in 3.13). The
    main script of a server is the ``taperoom`` command, which imports the whole
    app: every reader process of every scan paid about 1.5 s of CPU for it.
    Preloading, once, the ``taperoom`` modules this process has loaded (and this
    one) makes that re-run an import-cache hit. The preload list only takes
    effect when the forkserver starts, so later calls change nothing.
    """
    context = multiprocessing.get_context("forkserver")
    loaded = sorted(name for name in sys.modules
                    if (name == "taperoom" or name.startswith("taperoom."))
                    and not name.endswith("__main__"))
    context.set_forkserver_preload([*loaded, __name__])
    return context


def read_file(path: str) -> FileRead:
    """Read tags, audio hash and quick hash of one file; never raises.

    Parameters
    ----------
    path : str
        Audio file.

    Returns
    -------
    FileRead
        Tag columns from the file (from its name when the tags are unreadable);
        hashes None and `error` set when they cannot be computed.
    """
    problems: list[str] = []
    tags_read = True
    try:
        tags = tag_columns(read_tags(path))
    except Exception as exc:  # any unreadable file is recorded, never fatal
        problems.append(file_error_reason(exc))
        tags = filename_columns(path)
        tags_read = False
    fhash: str | None = None
    qhash: str | None = None
    try:
        fhash = audio_hash(path)
    except Exception as exc:
        problems.append(file_error_reason(exc))
    try:
        qhash = quick_hash(path)
    except Exception as exc:
        problems.append(file_error_reason(exc))
    # the first problem says it best ("empty file"); the hash's is usually an echo
    return FileRead(tags, fhash, qhash, problems[0] if problems else None, tags_read)


def quick_hash_or_none(path: str) -> str | None:
    """:func:`~taperoom.audio.hashing.quick_hash` of `path`, None when it cannot be read
    (an unreadable file simply cannot be matched as a move)."""
    try:
        return quick_hash(path)
    except Exception:
        return None
