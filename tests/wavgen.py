"""Generate WAV files of every layout artists export, byte by byte, for tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

# (format tag, bits) per layout name.
FORMATS = {
    "pcm8": (1, 8),
    "pcm16": (1, 16),
    "pcm24": (1, 24),
    "pcm32": (1, 32),
    "float32": (3, 32),
    "float64": (3, 64),
}
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def tone(seconds: float, rate: int, channels: int, *, freq: float = 440.0,
         amp: float = 0.5) -> np.ndarray:
    """A sine per channel (channel c at freq * (c + 1)), shape (n_frames, channels)."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    return np.stack([amp * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)],
                    axis=1)


def encode_frames(y: np.ndarray, fmt: str) -> bytes:
    """Encode float samples in [-1, 1] to raw little-endian frames of layout `fmt`."""
    tag, bits = FORMATS[fmt]
    flat = y.reshape(-1)
    if tag == 3:
        return flat.astype("<f4" if bits == 32 else "<f8").tobytes()
    if bits == 8:
        return np.clip(np.rint(flat * 127) + 128, 0, 255).astype(np.uint8).tobytes()
    if bits == 16:
        return np.rint(flat * 32767).astype("<i2").tobytes()
    if bits == 24:
        v = np.rint(flat * 8388607).astype("<i4")
        return v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return np.rint(flat * 2147483647).astype("<i4").tobytes()


def chunk(cid: bytes, body: bytes) -> bytes:
    """One RIFF chunk, padded to an even length."""
    return struct.pack("<4sI", cid, len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def write_wav(path: Path, y: np.ndarray, *, rate: int = 44100, fmt: str = "pcm16",
              extensible: bool = False, before: list[tuple[bytes, bytes]] | None = None,
              after: list[tuple[bytes, bytes]] | None = None) -> Path:
    """Write `y` (n_frames, channels) as a WAV file with optional extra chunks.

    `before` chunks go between ``fmt `` and ``data``; `after` chunks follow ``data``.
    """
    tag, bits = FORMATS[fmt]
    channels = y.shape[1]
    block = channels * bits // 8
    if extensible:
        fmt_body = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, bits)
        mask = (1 << channels) - 1
        fmt_body += struct.pack("<HHI", 22, bits, mask) + struct.pack("<H", tag) + GUID_TAIL
    else:
        fmt_body = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
        if tag == 3:
            fmt_body += struct.pack("<H", 0)
    body = chunk(b"fmt ", fmt_body)
    for cid, data in before or []:
        body += chunk(cid, data)
    body += chunk(b"data", encode_frames(y, fmt))
    for cid, data in after or []:
        body += chunk(cid, data)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    return path


LIST_INFO = (b"LIST", b"INFOINAM\x06\x00\x00\x00title\x00")
BEXT = (b"bext", b"\x00" * 602)
ID3 = (b"id3 ", b"ID3\x04\x00\x00\x00\x00\x00\x00")
