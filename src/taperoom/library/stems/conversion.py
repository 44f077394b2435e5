"""Any audio file PyAV reads, decoded and written again as a PCM WAV (the stems the
engine plays are WAV files, as the original backend's ``stemConverter`` made them with
ffmpeg)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import IO

import av
import av.audio.stream

__all__ = ["to_wav"]


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
