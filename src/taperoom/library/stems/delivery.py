"""Stems an external analysis server delivers, as WAV files in the library's stem cache.

The ``stems`` stage of contract §3 carries ``{delivery_mode, stems: {bass, drums,
other, vocals: <source>}, format, model, ...}``, each source being

* an absolute path on a filesystem the library shares with the server
  (``stem_delivery_mode: path``), read only under ``ANALYSIS_STEM_ROOTS``
  (links resolved), so that a server cannot make the library read other files;
* an ``http(s)`` URL of a download (FLAC in the original), fetched only from the
  analysis server's own host, without following redirects, at most
  ``ANALYSIS_STEM_MAX_MB``;
* or the file itself, base64-encoded (a WAV in the original; a ``data:`` URI
  prefix is accepted).

Whatever the source's format, each stem is decoded and written as a PCM WAV with
PyAV (:func:`~.conversion.to_wav`) into a temporary folder of the stem cache
(:class:`~.cache.StemCache`), which renames it to
``DATA_DIR/stem_cache/<audio hash>/`` only once every stem converted, so a
track never points at half a set of stems; the cache may then evict the least
recently used other sets.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from taperoom.library.stems.cache import HASH, StemCache
from taperoom.library.stems.conversion import to_wav

__all__ = ["StemStore", "StoredStems"]

#: What a stem name may look like (it becomes a file name).
_STEM_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: A ``data:`` URI prefix before base64 data (RFC 2397).
_DATA_URI = re.compile(r"^data:[^,]{0,100};base64,", re.IGNORECASE)
#: Most stems in one delivery (Demucs models have 4 or 6).
MAX_STEMS = 16
#: Bytes read at once from a download.
_CHUNK = 1 << 16


@dataclass(frozen=True)
class StoredStems:
    """A set of stems in the cache.

    Attributes
    ----------
    path : str
        Its folder (``tracks.stems_path``).
    evicted : list of str
        Audio hashes whose sets the cache evicted to make room.
    """

    path: str
    evicted: list[str]


class StemStore:
    """Converts and caches the stems of a recording (see the module docstring).

    Parameters
    ----------
    cache : StemCache
        The stem cache (``DATA_DIR/stem_cache``).
    roots : sequence of Path
        ``ANALYSIS_STEM_ROOTS``: folders whose files may be named by path.
    server_host : str
        Host of the analysis server: the only host stems are downloaded from.
    max_bytes : int
        Largest stem file (download, file or decoded base64), bytes.
    timeout : float
        Seconds a download may stall (connect, each read).
    headers : mapping, optional
        Headers of downloads (the server's bearer token).
    """

    def __init__(self, cache: StemCache, *, roots: Sequence[Path], server_host: str,
                 max_bytes: int, timeout: float,
                 headers: Mapping[str, str] | None = None) -> None:
        self.cache = cache
        self.roots = tuple(Path(os.path.realpath(r)) for r in roots)
        self.server_host = server_host.lower()
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.headers = dict(headers or {})

    def store(self, file_hash: str, data: dict[str, Any]) -> StoredStems:
        """Convert the stems of one ``stems`` callback into the cache.

        Parameters
        ----------
        file_hash : str
            Audio hash of the recording (the cache folder's name).
        data : dict
            The stage's data: ``{"stems": {name: source}, ...}``.

        Returns
        -------
        StoredStems
            The folder of the WAV files (``tracks.stems_path``), and the sets
            evicted to make room for them.

        Raises
        ------
        ValueError
            No stems, a bad name, a source that is refused (outside the roots,
            another host, too large) or that is not audio; nothing is changed.
        """
        stems = data.get("stems")
        if not isinstance(stems, dict) or not stems:
            raise ValueError("stems must be an object of stem name -> path, URL or base64")
        if len(stems) > MAX_STEMS:
            raise ValueError(f"at most {MAX_STEMS} stems")
        for name in stems:
            if not _STEM_NAME.fullmatch(name):
                raise ValueError(f"bad stem name {name[:40]!r}")
        if not HASH.fullmatch(file_hash):
            raise ValueError("bad audio hash")
        with self.cache.writing(file_hash) as work:
            for name, source in stems.items():
                self._convert(name, source, work)
            evicted = self.cache.install(file_hash, work)
        return StoredStems(str(self.cache.folder(file_hash)), evicted)

    # -- sources ----------------------------------------------------------------------

    def _convert(self, name: str, source: Any, work: Path) -> None:
        if not isinstance(source, str) or not source:
            raise ValueError(f"stem {name}: a path, URL or base64 string is needed")
        target = work / f"{name}.wav"
        if source.lower().startswith(("http://", "https://")):
            download = work / f".{name}.download"
            self._download(name, source, download)
            try:
                to_wav(download, target, what=f"stem {name}")
            finally:
                download.unlink(missing_ok=True)
        elif source.startswith("/"):
            to_wav(self._confined(name, source), target, what=f"stem {name}")
        else:
            to_wav(io.BytesIO(self._base64(name, source)), target, what=f"stem {name}")

    def _confined(self, name: str, source: str) -> Path:
        real = Path(os.path.realpath(source))
        if not any(real.is_relative_to(root) for root in self.roots):
            raise ValueError(f"stem {name}: {source} is outside ANALYSIS_STEM_ROOTS (set it "
                             "to the folder where the analysis server writes its stems)")
        if not real.is_file():
            raise ValueError(f"stem {name}: {source} is not a file")
        if real.stat().st_size > self.max_bytes:
            raise ValueError(f"stem {name}: {source} is larger than {self.max_bytes} bytes")
        return real

    def _base64(self, name: str, source: str) -> bytes:
        text = _DATA_URI.sub("", source.strip(), count=1)
        if len(text) * 3 // 4 > self.max_bytes + 3:
            raise ValueError(f"stem {name}: larger than {self.max_bytes} bytes")
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"stem {name}: neither a path, an http(s) URL nor base64"
                             ) from None

    def _download(self, name: str, url: str, target: Path) -> None:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            raise ValueError(f"stem {name}: bad URL") from None
        if (parsed.host or "").lower() != self.server_host:
            raise ValueError(f"stem {name}: downloads are only taken from the analysis "
                             f"server's host {self.server_host}, not {parsed.host}")
        try:
            with httpx.stream("GET", parsed, headers=self.headers, timeout=self.timeout,
                              follow_redirects=False) as answer:
                if answer.status_code != 200:
                    raise ValueError(f"stem {name}: the download answered HTTP "
                                     f"{answer.status_code}")
                declared = answer.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise ValueError(f"stem {name}: the download is larger than "
                                     f"{self.max_bytes} bytes")
                written = 0
                with open(target, "wb") as fh:
                    for chunk in answer.iter_bytes(_CHUNK):
                        written += len(chunk)
                        if written > self.max_bytes:
                            raise ValueError(f"stem {name}: the download is larger than "
                                             f"{self.max_bytes} bytes")
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            raise ValueError(f"stem {name}: the download failed: {type(exc).__name__}"
                             ) from None
