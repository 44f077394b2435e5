"""RIFF/WAVE parsing and in-place frame I/O.

Artists export WAV files with all sorts of headers: 8/16/24/32-bit integer PCM,
32/64-bit IEEE float, ``WAVE_FORMAT_EXTENSIBLE``, any channel count and sample
rate, and extra chunks (``LIST``, ``bext``, ``id3 ``, ``JUNK``) before or after
``data``. This module walks the chunk list to find ``fmt `` and ``data`` (never
assuming a 44-byte header) and reads and writes frames at their byte offsets with
``os.pread``/``os.pwrite``, so that writing a segment changes no other byte.

References: Microsoft, *Multimedia Programming Interface and Data Specifications
1.0* (1991), RIFF/WAVE chunks; Microsoft, *WAVEFORMATEXTENSIBLE* (KSDATAFORMAT
sub-format GUIDs); EBU Tech 3306 (RF64 ``ds64`` chunk).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taperoom.errors import MediaError

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

#: Tail shared by the KSDATAFORMAT_SUBTYPE_* GUIDs; the first two bytes are the format tag.
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"

_SUPPORTED = {(WAVE_FORMAT_PCM, 8), (WAVE_FORMAT_PCM, 16), (WAVE_FORMAT_PCM, 24),
              (WAVE_FORMAT_PCM, 32), (WAVE_FORMAT_IEEE_FLOAT, 32),
              (WAVE_FORMAT_IEEE_FLOAT, 64)}

#: Bytes read from the start of a file to find its chunks; headers with big
#: ``bext``/``LIST`` chunks before ``data`` are followed with seeks past that.
_MAX_CHUNKS = 4096


@dataclass(frozen=True)
class WavInfo:
    """Layout of a WAV file's audio data.

    Attributes
    ----------
    format_tag : int
        1 for integer PCM, 3 for IEEE float (resolved from the sub-format GUID of
        ``WAVE_FORMAT_EXTENSIBLE`` files).
    channels : int
        Number of channels (samples per frame).
    sample_rate : int
        Frames per second, in Hz.
    bits_per_sample : int
        Container size of one sample in bits (8, 16, 24, 32 or 64).
    block_align : int
        Bytes per frame (``channels * bits_per_sample // 8``).
    data_offset : int
        Byte offset of the first frame in the file.
    data_size : int
        Bytes of whole frames in the ``data`` chunk that are present in the file.
    fmt_chunk : bytes
        Body of the original ``fmt `` chunk, reused when re-wrapping frames.
    """

    format_tag: int
    channels: int
    sample_rate: int
    bits_per_sample: int
    block_align: int
    data_offset: int
    data_size: int
    fmt_chunk: bytes

    @property
    def n_frames(self) -> int:
        """Number of frames in the file."""
        return self.data_size // self.block_align

    @property
    def duration(self) -> float:
        """Duration in seconds (``n_frames / sample_rate``)."""
        return self.n_frames / self.sample_rate

    @property
    def sample_width(self) -> int:
        """Bytes per sample."""
        return self.bits_per_sample // 8

    def frame_offset(self, frame: int) -> int:
        """Byte offset in the file of frame number `frame`."""
        return self.data_offset + frame * self.block_align


def _parse_fmt(path: str | Path, body: bytes) -> tuple[int, int, int, int, int]:
    if len(body) < 16:
        raise MediaError(path, "fmt chunk too short")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise MediaError(path, "WAVE_FORMAT_EXTENSIBLE fmt chunk too short")
        guid = body[24:40]
        if guid[2:] != _GUID_TAIL:
            raise MediaError(path, "unknown WAVE_FORMAT_EXTENSIBLE sub-format")
        tag = struct.unpack("<H", guid[:2])[0]
    if (tag, bits) not in _SUPPORTED:
        raise MediaError(path, f"unsupported WAV encoding (format {tag:#06x}, {bits} bits)")
    if channels < 1 or rate < 1:
        raise MediaError(path, "invalid channel count or sample rate")
    if block_align != channels * bits // 8:
        raise MediaError(path, f"block align {block_align} does not match {channels}x{bits} bits")
    return tag, channels, rate, block_align, bits


def parse_header(fd: int, path: str | Path = "<wav>") -> WavInfo:
    """Parse the RIFF chunk list of an open WAV file.

    Follows FFmpeg's ``wav`` demuxer (``libavformat/wavdec.c``) wherever the
    two could disagree, so that the frames read and written here are the ones
    players decode: the first ``fmt `` chunk counts, an RF64 file takes its data
    size from the ``ds64`` chunk that must come first (EBU Tech 3306), a data
    size of 0 or 0xFFFFFFFF in a RIFF file (a streaming writer that never
    patched it) means "to the end of the file", and a data chunk cut short by
    the end of the file holds the whole frames present.

    Parameters
    ----------
    fd : int
        File descriptor open for reading.
    path : str or Path
        Name used in error messages.

    Returns
    -------
    WavInfo

    Raises
    ------
    MediaError
        Not a RIFF/WAVE (or RF64) file, no ``fmt ``/``data`` chunk, an encoding
        other than integer PCM 8/16/24/32 or float 32/64, an RF64 file without
        a valid ``ds64`` chunk, or more than one ``data`` chunk (readers differ
        on which one holds the audio: FFmpeg takes the last, others the first).
    """
    size = os.fstat(fd).st_size
    head = os.pread(fd, 12, 0)
    if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RF64"):
        raise MediaError(path, "not a RIFF/WAVE file")
    pos = 12
    rf64_data_size: int | None = None
    if head[:4] == b"RF64":
        ds64 = os.pread(fd, 8 + 24, 12)
        if len(ds64) < 8 + 24 or ds64[:4] != b"ds64":
            raise MediaError(path, "RF64 file without a ds64 chunk")
        csize, _riff_size, rf64_data_size, samples = struct.unpack("<Iqqq", ds64[4:32])
        if csize < 24 or rf64_data_size < 0 or samples < 0:
            raise MediaError(path, "invalid ds64 chunk")
        pos = 12 + 8 + csize
    fmt: tuple[int, int, int, int, int] | None = None
    fmt_body = b""
    info: WavInfo | None = None
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > size:
            break
        cid, csize = struct.unpack("<4sI", os.pread(fd, 8, pos))
        body_at = pos + 8
        if cid == b"fmt " and fmt is None:
            fmt_body = os.pread(fd, min(csize, 1024), body_at)
            fmt = _parse_fmt(path, fmt_body)
        elif cid == b"data":
            if fmt is None:
                raise MediaError(path, "data chunk before fmt chunk")
            if info is not None:
                raise MediaError(path, "more than one data chunk")
            tag, channels, rate, block_align, bits = fmt
            if rf64_data_size is not None:
                declared = rf64_data_size
            elif csize in (0, 0xFFFFFFFF):  # streamed writer never patched the size
                declared = size - body_at
            else:
                declared = csize
            present = max(0, min(declared, size - body_at))
            present -= present % block_align
            info = WavInfo(tag, channels, rate, bits, block_align, body_at, present, fmt_body)
            csize = declared
        pos = body_at + csize + (csize & 1)
    if info is None:
        raise MediaError(path, "no data chunk" if fmt else "no fmt chunk")
    return info


def read_info(path: str | Path) -> WavInfo:
    """Parse the header of the WAV file at `path` (see :func:`parse_header`)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise MediaError(path, exc.strerror or str(exc)) from exc
    try:
        return parse_header(fd, path)
    finally:
        os.close(fd)


def decode(raw: bytes, info: WavInfo) -> np.ndarray:
    """Convert raw frames to samples.

    Parameters
    ----------
    raw : bytes
        Whole frames in the file's encoding (``len(raw) % block_align == 0``).
    info : WavInfo
        Layout of the file.

    Returns
    -------
    y : np.ndarray, shape=(n_frames, n_channels), float64
        Samples scaled to [-1, 1) for integer PCM (full scale = 2**(bits-1); 8-bit
        is unsigned with 128 as zero), as stored for float files. float64 holds
        every integer format exactly, so decode -> encode is lossless.
    """
    ch = info.channels
    bits = info.bits_per_sample
    if info.format_tag == WAVE_FORMAT_IEEE_FLOAT:
        y = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float64)
    elif bits == 8:
        y = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif bits == 16:
        y = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = (v << 8) >> 8  # sign-extend 24 -> 32 bits
        y = v.astype(np.float64) / 8388608.0
    else:
        y = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0
    return y.reshape(-1, ch)


def encode(y: np.ndarray, info: WavInfo) -> bytes:
    """Convert samples back to raw frames (inverse of :func:`decode`).

    Parameters
    ----------
    y : np.ndarray, shape=(n_frames, n_channels)
        Samples in [-1, 1]; integer formats are rounded to the nearest step and
        clipped to their range.
    info : WavInfo
        Layout of the file.

    Returns
    -------
    bytes
        ``n_frames * block_align`` bytes.
    """
    if y.ndim != 2 or y.shape[1] != info.channels:
        raise ValueError(f"expected shape (n, {info.channels}), got {y.shape}")
    flat = np.ascontiguousarray(y, dtype=np.float64).reshape(-1)
    bits = info.bits_per_sample
    if info.format_tag == WAVE_FORMAT_IEEE_FLOAT:
        return flat.astype("<f4" if bits == 32 else "<f8").tobytes()
    if bits == 8:
        return np.clip(np.rint(flat * 128.0) + 128.0, 0, 255).astype(np.uint8).tobytes()
    if bits == 16:
        return np.clip(np.rint(flat * 32768.0), -32768, 32767).astype("<i2").tobytes()
    if bits == 24:
        v = np.clip(np.rint(flat * 8388608.0), -8388608, 8388607).astype("<i4")
        return v.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return np.clip(np.rint(flat * 2147483648.0), -2147483648, 2147483647).astype("<i4").tobytes()


def read_raw(fd: int, info: WavInfo, start: int, count: int) -> bytes:
    """Read up to `count` whole frames from frame `start` (fewer at the end of data)."""
    start = max(0, min(start, info.n_frames))
    count = max(0, min(count, info.n_frames - start))
    return os.pread(fd, count * info.block_align, info.frame_offset(start))


def read_frames(fd: int, info: WavInfo, start: int, count: int) -> np.ndarray:
    """Read frames ``[start, start + count)`` as samples (see :func:`decode`)."""
    return decode(read_raw(fd, info, start, count), info)


def write_frames(fd: int, info: WavInfo, start: int, y: np.ndarray) -> None:
    """Write samples `y` over the frames from `start`, in place, with ``os.pwrite``.

    Raises
    ------
    ValueError
        The frames would run past the end of the ``data`` chunk.
    """
    if start < 0 or start + len(y) > info.n_frames:
        raise ValueError("frames outside the data chunk")
    raw = encode(y, info)
    offset = info.frame_offset(start)
    written = 0
    while written < len(raw):
        written += os.pwrite(fd, raw[written:], offset + written)


def header_for(info: WavInfo, n_frames: int) -> bytes:
    """Build a minimal WAV header for `n_frames` frames in the layout of `info`.

    The original ``fmt `` chunk body is kept byte for byte (so extensible and float
    files stay what they are); a ``fact`` chunk is added for non-PCM formats as
    the RIFF specification asks.

    Returns
    -------
    bytes
        ``RIFF`` header, ``fmt `` (and ``fact``) chunks and the ``data`` chunk
        header; the frames follow it directly.
    """
    data_size = n_frames * info.block_align
    fmt = info.fmt_chunk + (b"\x00" if len(info.fmt_chunk) & 1 else b"")
    chunks = struct.pack("<4sI", b"fmt ", len(info.fmt_chunk)) + fmt
    if info.format_tag != WAVE_FORMAT_PCM:
        chunks += struct.pack("<4sII", b"fact", 4, min(n_frames, 0xFFFFFFFF))
    riff_size = 4 + len(chunks) + 8 + data_size + (data_size & 1)
    return (struct.pack("<4sI4s", b"RIFF", min(riff_size, 0xFFFFFFFF), b"WAVE") + chunks
            + struct.pack("<4sI", b"data", min(data_size, 0xFFFFFFFF)))
