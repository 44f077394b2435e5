"""The file-name key of a track's own files (metadata, waveform cache, pristine copy, lock).

The original named a track's metadata ``<name-without-extension>.json`` and its
waveform cache ``<name>.waveform.json``, so ``x.wav`` and ``x.WAV`` shared one
metadata file and ``a.wav.waveform.wav``'s metadata was ``a.wav``'s waveform
cache. Here every per-track file is named by :func:`track_key` of the track's
whole file name, which is

- *injective, even ignoring case*: percent-encoding (RFC 3986 §2.1, via
  :func:`urllib.parse.quote`) of the name's bytes, with every upper-case ASCII
  letter and ``~`` escaped too, leaves only lower-case letters, digits, a few
  punctuation marks and ``%XX`` escapes. Two distinct names therefore give keys
  that differ even when case-folded, so they stay distinct files on a
  case-insensitive file system (macOS, FAT, SMB shares); and since every
  non-ASCII byte is escaped, Unicode normalisation by the file system (HFS+)
  cannot merge them either;
- *reversible* (:func:`filename_of_key`) and *safe* on every common file system:
  ASCII, no ``/``, ``\\``, ``:``, ``*``, ``?``, ``"``, ``<``, ``>``, ``|`` or
  control character, never a leading ``.`` (escaped too);
- *short enough*: a key longer than :data:`MAX_KEY` characters (escaping makes
  a 255-byte name up to three times longer) is cut and ends with ``~`` and 32
  hex digits of the SHA-256 of the exact name, so that the key, a suffix such as
  ``.json`` and a temp-file suffix fit in the 255 bytes of a file name. Such a
  key is not reversible; the metadata still holds the name in ``filename``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from urllib.parse import quote, unquote, unquote_to_bytes

#: Longest key: 255 bytes of a file name, less ``.json`` and the ``.<pid>.<thread>.tmp``
#: of an atomic write (up to 40 characters).
MAX_KEY = 200
#: Printable ASCII kept as it is besides lower-case letters, digits and ``_.-``
#: (allowed on ext4, APFS, NTFS, exFAT and SMB shares alike).
_SAFE = " !#$&'()+,;=@[]^`{}"
#: Characters :func:`urllib.parse.quote` keeps that the key escapes all the same, and
#: the escapes it made (left as they are: their hex digits are upper-case too).
_ALSO_ESCAPED = re.compile(r"%[0-9A-F]{2}|[A-Z~]")
#: Hex digits of the SHA-256 closing a cut key.
_HASH_DIGITS = 32


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return char if len(char) == 3 else f"%{ord(char):02X}"


@functools.lru_cache(maxsize=4096)
def track_key(filename: str) -> str:
    """The file-name key of track `filename` (cached: it is needed on every play).

    Parameters
    ----------
    filename : str
        The track's file name (no folder), as :func:`os.listdir` gives it (names
        that are not UTF-8 carry surrogate escapes, PEP 383).

    Returns
    -------
    str
        ASCII, at most :data:`MAX_KEY` characters, distinct for distinct names
        even when compared case-insensitively.
    """
    raw = filename.encode("utf-8", "surrogateescape")
    key = _ALSO_ESCAPED.sub(_escape, quote(raw, safe=_SAFE))
    if key.startswith("."):  # tracks are never hidden files, but keys must not be either
        key = "%2E" + key[1:]
    if len(key) <= MAX_KEY:
        return key
    head = key[:MAX_KEY - _HASH_DIGITS - 1]
    head = re.sub(r"%[0-9A-F]?$", "", head)  # do not cut an escape in two
    return f"{head}~{hashlib.sha256(raw).hexdigest()[:_HASH_DIGITS]}"


def filename_of_key(key: str) -> str | None:
    """The track name `key` was made from, or None for a cut (hashed) key.

    The inverse of :func:`track_key`: ``filename_of_key(track_key(n)) == n``
    for every name whose key was not cut.
    """
    if "~" in key:
        return None
    return unquote_to_bytes(key).decode("utf-8", "surrogateescape")


def decoded_again(name: str) -> str | None:
    """`name` percent-decoded once more, or None when that changes nothing.

    Tone.js 14.8 encodes a file name twice (``My%2520Song.wav`` for ``My Song.wav``),
    so the server, which decodes the path once, sees ``My%20Song.wav``. Bytes that
    are not UTF-8 become surrogate escapes (PEP 383), as in :func:`os.listdir`.
    The result is a candidate name only: it may hold ``/`` or ``..`` and must be
    confined like any other name before use.
    """
    if "%" not in name:
        return None
    again = unquote(name, errors="surrogateescape")
    return again if again != name else None
