"""Reading back recorded MP3 files with FFmpeg (PyAV), independently of the recorder's code."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def mp3_packets(path: Path) -> list[bytes]:
    """Frames of an MP3 file as FFmpeg's demuxer splits them (independent of our parser)."""
    with av.open(str(path), format="mp3") as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def decode_mp3(path: Path) -> tuple[np.ndarray, int]:
    """Decode an MP3 file with PyAV (raises on any undecodable frame): (samples, rate),
    samples of shape (frames, channels)."""
    chunks, rate = [], 0
    with av.open(str(path), format="mp3") as c:
        for f in c.decode(audio=0):
            rate = f.sample_rate
            chunks.append(f.to_ndarray().reshape(f.layout.nb_channels, -1).T)
    return np.concatenate(chunks), rate
