"""Which file ``GET /api/tracks/{id}/audio`` sends, and as what.

The page plays a track from its own file, so the route must never become a way to
read other files: the file is resolved (links followed) and must lie inside the
resolved path of the track's library folder (or, for a track without one, inside
some library folder), be a regular file and carry one of the scanner's audio
extensions. Anything else is a 404 that does not say more than the contract's
``Track file missing``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from taperoom.errors import NotFound

#: Answer for a track whose file cannot be sent (gone, outside its folder, not audio).
FILE_MISSING = "Track file missing"

#: Media type per audio extension (lower case); others are ``application/octet-stream``.
MEDIA_TYPES = {
    ".mp3": "audio/mpeg", ".flac": "audio/flac", ".wav": "audio/wav",
    ".m4a": "audio/mp4", ".alac": "audio/mp4", ".aac": "audio/aac", ".ogg": "audio/ogg",
    ".opus": "audio/ogg", ".wma": "audio/x-ms-wma", ".aif": "audio/aiff",
    ".aiff": "audio/aiff", ".ape": "audio/x-ape", ".wv": "audio/wavpack",
}


def media_type(path: str | os.PathLike[str]) -> str:
    """The media type of an audio file, from its extension (:data:`MEDIA_TYPES`)."""
    return MEDIA_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


def playable_file(file_path: str, roots: Iterable[str], *,
                  extensions: frozenset[str]) -> Path:
    """The resolved path of a track's file, checked for sending.

    Parameters
    ----------
    file_path : str
        The track's ``file_path``.
    roots : iterable of str
        Library folder paths the file must be inside (its own folder, or every
        folder for a track without one).
    extensions : frozenset of str
        Audio extensions taken (lower case, with their dot).

    Returns
    -------
    Path
        Absolute, links resolved.

    Raises
    ------
    NotFound
        :data:`FILE_MISSING`: no such regular file, not an audio extension, or
        outside every root once links are resolved.
    """
    try:
        real = Path(file_path).expanduser().resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise NotFound(FILE_MISSING) from exc
    if real.suffix.lower() not in extensions or not real.is_file():
        raise NotFound(FILE_MISSING)
    for root in roots:
        try:
            base = Path(root).expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if real.is_relative_to(base) and real != base:
            return real
    raise NotFound(FILE_MISSING)
