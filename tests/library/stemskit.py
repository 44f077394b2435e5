"""Helpers of the stems tests: four stems made from a corpus recording, written as FLAC or
WAV with PyAV, and the stand-in analysis server's answer to a stems job."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import av.audio.stream
import numpy as np

from tests.library.externalkit import StandIn

#: Sample rate of the stems (Hz).
RATE = 44100
#: The corpus recording the stems are made from (a drum and bass loop).
SOURCE = ("scanner/real_music_tagged/18 - various (librosa example data) - admiralbob77 - "
          "Choice - Drum-bass.flac")


def corpus_stems(corpus: Path, seconds: float = 2.0) -> dict[str, np.ndarray]:
    """Four distinct stems from the first `seconds` of a corpus recording, each int16 of
    shape (frames, 2) at :data:`RATE`: the recording, half of it, a third of it, and
    its channels swapped."""
    frames = int(RATE * seconds)
    chunks: list[np.ndarray] = []
    got = 0
    with av.open(str(corpus / SOURCE)) as inp:
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=RATE)
        for frame in inp.decode(inp.streams.audio[0]):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1, 2)
                chunks.append(chunk)
                got += len(chunk)
            if got >= frames:
                break
    y = np.concatenate(chunks)[:frames]
    assert len(y) == frames and np.abs(y).max() > 1000, "the corpus recording is silent"
    return {"bass": y, "drums": (y // 2).astype(np.int16), "other": (y // 3).astype(np.int16),
            "vocals": np.ascontiguousarray(y[:, ::-1])}


def write_audio(path: Path, y: np.ndarray, fmt: str) -> Path:
    """Write int16 stereo `y` as ``flac`` or ``wav`` (16-bit PCM) with PyAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "flac" if fmt == "flac" else "pcm_s16le"
    with av.open(str(path), mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=RATE, layout="stereo")
        assert isinstance(stream, av.audio.stream.AudioStream)
        for start in range(0, len(y), 4096):
            part = np.ascontiguousarray(y[start:start + 4096]).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(part, format="s16", layout="stereo")
            frame.sample_rate = RATE
            frame.pts = start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def encoded(y: np.ndarray, fmt: str, tmp: Path, name: str) -> bytes:
    """`y` as the bytes of a ``flac`` or ``wav`` file."""
    return write_audio(tmp / f"{name}.{fmt}", y, fmt).read_bytes()


def stems_script(sources: Callable[[StandIn], dict[str, str]], *, fmt: str,
                 mode: str = "callback", end: bool = True
                 ) -> Callable[[StandIn, dict[str, Any], str], None]:
    """The stand-in's answer to a stems job: the ``stems`` stage callback with
    ``sources(peer)`` (name -> path, URL or base64), then ``job_completed``."""

    def script(peer: StandIn, job: dict[str, Any], job_id: str) -> None:
        if not job["options"].get("stems"):
            return
        answer = peer.call_back(job, job_id, "stems", {
            "delivery_mode": mode, "stems": sources(peer), "format": fmt,
            "processing_time": 1.5, "model": "htdemucs"})
        if end and answer.status_code == 200:
            peer.call_back(job, job_id, "job_completed", {"stages_completed": ["stems"]})

    return script


def b64(data: bytes) -> str:
    """`data` in base64 (ASCII)."""
    return base64.b64encode(data).decode()
