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
PyAV (16-bit, or 24-bit when the source has more than 16 bits), as the original
backend's ``stemConverter`` did with ffmpeg, into
``DATA_DIR/stem_cache/<audio hash>/<name>.wav``. A delivery is converted in a
temporary folder beside the cache and renamed into place only once every stem
converted, so a track never points at half a set of stems.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import av
import av.audio.stream
import httpx

__all__ = ["StemStore"]

#: What a stem name may look like (it becomes a file name).
_STEM_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: A ``data:`` URI prefix before base64 data (RFC 2397).
_DATA_URI = re.compile(r"^data:[^,]{0,100};base64,", re.IGNORECASE)
#: Most stems in one delivery (Demucs models have 4 or 6).
MAX_STEMS = 16
#: Bytes read at once from a download.
_CHUNK = 1 << 16


class StemStore:
    """Converts and caches the stems of a recording (see the module docstring).

    Parameters
    ----------
    cache_dir : Path
        ``DATA_DIR/stem_cache``; one folder per audio hash.
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

    def __init__(self, cache_dir: Path, *, roots: Sequence[Path], server_host: str,
                 max_bytes: int, timeout: float,
                 headers: Mapping[str, str] | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.roots = tuple(Path(os.path.realpath(r)) for r in roots)
        self.server_host = server_host.lower()
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.headers = dict(headers or {})

    def store(self, file_hash: str, data: dict[str, Any]) -> str:
        """Convert the stems of one ``stems`` callback into the cache.

        Parameters
        ----------
        file_hash : str
            Audio hash of the recording (the cache folder's name).
        data : dict
            The stage's data: ``{"stems": {name: source}, ...}``.

        Returns
        -------
        str
            The folder of the WAV files (``tracks.stems_path``).

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
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", file_hash):
            raise ValueError("bad audio hash")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{file_hash}.", dir=self.cache_dir))
        try:
            for name, source in stems.items():
                self._convert(name, source, work)
            final = self.cache_dir / file_hash
            old: Path | None = None
            if final.exists():
                old = final.rename(self.cache_dir / f".{file_hash}.old-{uuid.uuid4().hex}")
            os.rename(work, final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return str(final)

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


def to_wav(source: str | Path | IO[bytes], target: Path, *, what: str = "audio") -> None:
    """Decode any audio file PyAV reads and write it as a PCM WAV.

    Parameters
    ----------
    source : path or binary file
        The audio (FLAC, WAV, ...).
    target : Path
        The WAV to write: 16-bit PCM (``pcm_s16le``) when the source has at most
        16 bits per sample, else 24-bit (``pcm_s24le``); the source's rate and
        channel layout.
    what : str
        Names the source in errors.

    Raises
    ------
    ValueError
        The source is not audio PyAV can decode, or holds no sound.
    """
    opened = "file:" + str(source.absolute()) if isinstance(source, Path) else source
    frames = 0
    try:
        with av.open(opened, mode="r") as inp:
            if not inp.streams.audio:
                raise ValueError(f"{what}: no audio in it")
            stream: av.audio.stream.AudioStream = inp.streams.audio[0]
            ctx = stream.codec_context
            wide = ctx.format is not None and ctx.format.bytes > 2
            fmt, codec = ("s32", "pcm_s24le") if wide else ("s16", "pcm_s16le")
            rate = ctx.sample_rate or 44100
            layout = (ctx.layout.name if ctx.layout is not None and ctx.layout.nb_channels
                      else "stereo")
            resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
            with av.open("file:" + str(target.absolute()), mode="w", format="wav") as out:
                ostream = out.add_stream(codec, rate=rate, layout=layout)
                assert isinstance(ostream, av.audio.stream.AudioStream)
                for frame in inp.decode(stream):
                    for chunk in resampler.resample(frame):
                        frames += chunk.samples
                        out.mux(ostream.encode(chunk))
                for chunk in resampler.resample(None):
                    frames += chunk.samples
                    out.mux(ostream.encode(chunk))
                out.mux(ostream.encode(None))
    except av.FFmpegError as exc:
        with contextlib.suppress(OSError):
            target.unlink()
        raise ValueError(f"{what} is not audio that can be decoded: {exc}") from None
    if frames == 0:
        target.unlink(missing_ok=True)
        raise ValueError(f"{what} holds no sound")
