"""MP3 output of the recorder: frame parsing, frame-accurate splitting and encoding.

Three things live here:

* MPEG audio Layer III frame headers (:func:`parse_header`) and a frame scanner
  shared by a streaming synchroniser (:class:`FrameSync`, which turns arbitrary
  network chunks into whole frames and resynchronises after a reconnect) and the
  file helpers (:func:`mp3_frames`, :func:`mp3_duration`, :func:`split_mp3`).
  A position is accepted as the start of a frame only when several consecutive
  valid headers with the same version, sample rate and mono/stereo mode chain
  from it (the check mpg123 and FFmpeg's ``mp3`` probe use against false syncs in
  tags or junk); once locked, frames are taken one after the other until a
  header does not fit, which starts a new hunt. ID3v2 tags at the start of a
  stream are skipped by their declared size, and Xing/Info/VBRI header frames
  (which carry no audio, and whose frame counts would misstate the length of a
  recording) are dropped.
* :class:`Mp3Encoder`, an incremental libmp3lame encoder over PyAV that accepts
  frames of any sample format, rate and channel layout, resamples them to one
  output format (44.1 kHz stereo by default) in frames of the encoder's size
  (1152 samples) and writes bare MP3 frames to a binary file (no ID3 tag, no
  Xing frame: the recorder tags the file afterwards, and a frame count written at
  the end would be wrong in a file cut short).
* :func:`split_mp3`, which cuts a file into tracks on frame boundaries without
  re-encoding.

References: ISO/IEC 11172-3:1993, section 2.4.2.3 (MPEG-1 Layer III header,
bit rate and sample rate tables, frame length ``144 * bitrate / sample_rate +
padding`` bytes, 1152 samples per frame) and 2.4.1.7 (side information sizes);
ISO/IEC 13818-3:1998, section 2.4.2.3 (MPEG-2 low sampling frequencies:
``72 * bitrate / sample_rate + padding`` bytes, 576 samples); the MPEG 2.5
extension (Fraunhofer IIS); ID3 tag version 2.4.0 - Main Structure, section 3.1
(header, synchsafe size, footer flag); the Xing/Info header (Xing Technology,
1998; LAME 3.90 "Info" tag) and Fraunhofer's VBRI header (32 bytes after the
frame header).
"""

from __future__ import annotations

import itertools
import mmap
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, NamedTuple

import av

from taperoom.errors import InvalidInput, MediaError

#: Layer III bit rates in kbit/s by header index, ISO/IEC 11172-3 table 2.4.2.3
#: (MPEG-1) and ISO/IEC 13818-3 table 2.4.2.3 (MPEG-2 and MPEG 2.5).
BITRATES_MPEG1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
BITRATES_MPEG2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
#: Sample rates in Hz by header index for MPEG-1, MPEG-2 and MPEG 2.5.
SAMPLE_RATES = {
    "1": (44100, 48000, 32000),
    "2": (22050, 24000, 16000),
    "2.5": (11025, 12000, 8000),
}
_VERSION_BITS = {0b11: "1", 0b10: "2", 0b00: "2.5"}  # 0b01 is reserved

#: Frames the synchroniser needs in a row before it trusts a position (mpg123 and
#: FFmpeg's mp3 probe use 3 and more).
CONFIRM_FRAMES = 3


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The fields of one MPEG audio Layer III frame header.

    Attributes
    ----------
    version : str
        ``"1"``, ``"2"`` or ``"2.5"`` (MPEG-1, MPEG-2 LSF, MPEG 2.5).
    bitrate_kbps : int
        Bit rate of this frame in kbit/s.
    sample_rate : int
        Sample rate in Hz.
    padding : bool
        Whether the frame carries one padding byte.
    channels : int
        1 for single-channel mode, 2 for stereo, joint stereo and dual channel.
    length : int
        Length of the whole frame in bytes, header included.
    samples : int
        Samples per channel decoded from the frame (1152 or 576).
    """

    version: str
    bitrate_kbps: int
    sample_rate: int
    padding: bool
    channels: int
    length: int
    samples: int

    @property
    def duration(self) -> float:
        """Audio duration of the frame in seconds (``samples / sample_rate``)."""
        return self.samples / self.sample_rate

    @property
    def signature(self) -> tuple[str, int, int]:
        """What must not change from frame to frame of one stream: version, rate, channels."""
        return (self.version, self.sample_rate, self.channels)


def parse_header(data: bytes | bytearray | memoryview | mmap.mmap,
                 pos: int = 0) -> FrameHeader | None:
    """Parse the 4-byte Layer III frame header at ``data[pos:pos + 4]``.

    Parameters
    ----------
    data : bytes-like
        Buffer holding the header (indexing must give ints).
    pos : int
        Byte offset of the header.

    Returns
    -------
    FrameHeader or None
        None when fewer than 4 bytes remain or the bytes are not a valid Layer III
        header (no 11-bit sync, reserved version, a layer other than III, free-format
        or invalid bit rate index, reserved sample rate, reserved emphasis).
    """
    if len(data) - pos < 4:
        return None
    b0, b1, b2, b3 = data[pos], data[pos + 1], data[pos + 2], data[pos + 3]
    if b0 != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    version = _VERSION_BITS.get((b1 >> 3) & 0b11)
    if version is None or (b1 >> 1) & 0b11 != 0b01:  # layer bits 01 = Layer III
        return None
    br_index, sr_index = b2 >> 4, (b2 >> 2) & 0b11
    if br_index in (0, 15) or sr_index == 3 or (b3 & 0b11) == 0b10:
        return None
    mpeg1 = version == "1"
    bitrate = (BITRATES_MPEG1 if mpeg1 else BITRATES_MPEG2)[br_index]
    rate = SAMPLE_RATES[version][sr_index]
    padding = bool((b2 >> 1) & 1)
    channels = 1 if (b3 >> 6) == 0b11 else 2
    length = (144 if mpeg1 else 72) * bitrate * 1000 // rate + padding
    return FrameHeader(version, bitrate, rate, padding, channels, length,
                       1152 if mpeg1 else 576)


def _is_info_frame(data: bytes | bytearray | mmap.mmap, pos: int, h: FrameHeader) -> bool:
    """True when the frame at `pos` is a Xing/Info or VBRI header frame (no audio)."""
    # side information size, ISO/IEC 11172-3 2.4.1.7 and ISO/IEC 13818-3 2.4.1.7
    side = {("1", 1): 17, ("1", 2): 32}.get((h.version, h.channels), 9 if h.channels == 1 else 17)
    tag = bytes(data[pos + 4 + side:pos + 8 + side])
    return tag in (b"Xing", b"Info") or bytes(data[pos + 36:pos + 40]) == b"VBRI"


@dataclass
class _SyncState:
    signature: tuple[str, int, int] | None = None
    at_start: bool = True  # an ID3v2 tag may come here
    skip: int = 0  # bytes of a tag still to skip
    tag_bytes: int = 0  # bytes of ID3v2 tags met so far


def _confirm(buf: bytes | bytearray | mmap.mmap, pos: int, n: int, *, final: bool,
             confirm: int) -> str:
    """Whether `confirm` consecutive matching headers start at pos: ok, no or more."""
    p, sig = pos, None
    for i in range(confirm):
        if n - p < 4:
            if final:
                return "ok" if i > 0 and p == n else "no"
            return "more"
        h = parse_header(buf, p)
        if h is None or (sig is not None and h.signature != sig):
            return "no"
        sig = h.signature
        p += h.length
    return "ok"


def _scan(buf: bytes | bytearray | mmap.mmap, pos: int, state: _SyncState, *, final: bool,
          confirm: int = CONFIRM_FRAMES) -> tuple[list[tuple[int, FrameHeader]], int]:
    """Find the whole frames in ``buf[pos:]``.

    Returns the frames as ``(offset, header)`` and the offset of the first byte not
    consumed (the start of an incomplete frame, or of a sync candidate that needs
    more data); with ``final`` everything is consumed.
    """
    n = len(buf)
    out: list[tuple[int, FrameHeader]] = []
    while True:
        if state.skip:
            step = min(state.skip, n - pos)
            pos += step
            state.skip -= step
            if state.skip:
                break
        if state.at_start and state.signature is None:
            head = bytes(buf[pos:pos + 10])
            if len(head) < 10 and not final and b"ID3".startswith(head[:3]):
                break
            if head[:3] == b"ID3" and len(head) == 10:
                size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
                state.skip = 10 + size + (10 if head[5] & 0x10 else 0)
                state.tag_bytes += state.skip
                continue
        if state.signature is not None:
            if n - pos < 4:
                break
            h = parse_header(buf, pos)
            if h is not None and h.signature == state.signature:
                if n - pos < h.length:
                    break
                if not _is_info_frame(buf, pos, h):
                    out.append((pos, h))
                state.at_start = False
                pos += h.length
                continue
            state.signature = None  # lost sync: hunt from the next byte
            pos += 1
        j = buf.find(b"\xff", pos)
        if j < 0:
            pos = n
            break
        pos = j
        verdict = _confirm(buf, pos, n, final=final, confirm=confirm)
        if verdict == "more":
            break
        if verdict == "no":
            pos += 1
            continue
        first = parse_header(buf, pos)
        assert first is not None
        state.signature = first.signature
    if final:
        pos = n
    return out, pos


class SyncedFrame(NamedTuple):
    """One whole MP3 frame taken from a stream: its bytes and its header."""

    data: bytes
    header: FrameHeader


class FrameSync:
    """Incremental MP3 frame synchroniser over a byte stream.

    Feed it network chunks in order; it returns whole Layer III frames only,
    skips an ID3v2 tag at the start, drops Xing/Info/VBRI frames and resynchronises
    on frame headers after junk or a broken frame. Call :meth:`reset` when a new
    connection starts, so that a partial frame from the old one is never joined to
    bytes of the new one.

    Parameters
    ----------
    confirm : int
        Consecutive matching headers needed before a position is trusted.
    """

    def __init__(self, *, confirm: int = CONFIRM_FRAMES) -> None:
        self._confirm = confirm
        self._buf = bytearray()
        self._state = _SyncState()
        self.bytes_in = 0
        self.bytes_dropped = 0

    @property
    def locked(self) -> bool:
        """True while the synchroniser follows a chain of frames."""
        return self._state.signature is not None

    @property
    def skipped_tag_bytes(self) -> int:
        """Bytes of ID3v2 tags skipped (or being skipped) since the last reset."""
        return self._state.tag_bytes

    @property
    def buffered(self) -> int:
        """Bytes held back (an incomplete frame or a candidate needing more data)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[SyncedFrame]:
        """Add bytes; return the frames completed by them, in order.

        Parameters
        ----------
        data : bytes
            The next chunk of the stream (ICY metadata already removed).

        Returns
        -------
        list of SyncedFrame
        """
        self.bytes_in += len(data)
        self._buf += data
        return self._take(final=False)

    def flush(self) -> list[SyncedFrame]:
        """End of the stream: return the remaining whole frames and drop the rest."""
        return self._take(final=True)

    def reset(self) -> None:
        """Forget buffered bytes and the lock (a new connection starts)."""
        self.bytes_dropped += len(self._buf)
        self._buf.clear()
        self._state = _SyncState()

    def _take(self, *, final: bool) -> list[SyncedFrame]:
        frames, pos = _scan(self._buf, 0, self._state, final=final, confirm=self._confirm)
        out = [SyncedFrame(bytes(self._buf[o:o + h.length]), h) for o, h in frames]
        self.bytes_dropped += pos - sum(h.length for _, h in frames)
        del self._buf[:pos]
        return out


class Mp3Frame(NamedTuple):
    """Where one frame lies in a buffer: byte offset, length and header."""

    offset: int
    length: int
    header: FrameHeader


def mp3_frames(data: bytes | bytearray | mmap.mmap) -> list[Mp3Frame]:
    """Every audio frame of a complete MP3 buffer, in order.

    Skips a leading ID3v2 tag, junk, trailing tags (ID3v1, APEv2) and
    Xing/Info/VBRI frames.

    Parameters
    ----------
    data : bytes, bytearray or mmap
        The whole file.

    Returns
    -------
    list of Mp3Frame
        Offsets are relative to ``data[0]``.
    """
    frames, _ = _scan(data, 0, _SyncState(), final=True)
    return [Mp3Frame(o, h.length, h) for o, h in frames]


def frames_duration(frames: list[Mp3Frame] | list[SyncedFrame]) -> float:
    """Total audio duration in seconds of a list of frames (sum of samples / rate)."""
    return sum(f.header.duration for f in frames)


def _map(path: Path) -> tuple[mmap.mmap | bytes, list[Mp3Frame]]:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            data: mmap.mmap | bytes = (mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                                       if size else b"")
    except OSError as exc:
        raise MediaError(path, f"cannot read: {exc.strerror or exc}") from exc
    frames = mp3_frames(data)
    if not frames:
        if isinstance(data, mmap.mmap):
            data.close()
        raise MediaError(path, "no MPEG audio Layer III frames found")
    return data, frames


def mp3_duration(path: Path) -> float:
    """Exact audio duration of an MP3 file, in seconds, by counting its frames.

    Parameters
    ----------
    path : Path
        The MP3 file (tags and a Xing frame are allowed and ignored).

    Returns
    -------
    float
        Sum over frames of samples per frame / sample rate (the encoder delay and
        padding that a LAME tag may declare are not subtracted).

    Raises
    ------
    MediaError
        The file cannot be read or holds no MP3 frame.
    """
    data, frames = _map(Path(path))
    if isinstance(data, mmap.mmap):
        data.close()
    return frames_duration(frames)


def split_mp3(path: Path, cut_points_seconds: list[float], out_dir: Path,
              names: list[str]) -> list[Path]:
    """Split an MP3 into pieces at the frame boundaries nearest the cut points.

    Frames are copied byte for byte (no re-encoding); tags of the source are not
    copied. Each cut goes to the frame boundary nearest to it, so a piece starts at
    most half a frame (13 ms at 44.1 kHz) from the requested time.

    Parameters
    ----------
    path : Path
        The source MP3.
    cut_points_seconds : list of float
        Strictly increasing cut times in seconds from the start of the audio.
    out_dir : Path
        Folder of the pieces (created if missing).
    names : list of str
        File names of the pieces, ``len(cut_points_seconds) + 1`` of them.

    Returns
    -------
    list of Path
        The files written, in order. A piece that would hold no frame (a cut at
        0 s, at or past the end, or within a frame of the previous cut) is not
        written and not returned.

    Raises
    ------
    InvalidInput
        Wrong number of names, a name with a path separator, or cut points that
        are not strictly increasing.
    MediaError
        The source cannot be read or holds no MP3 frame.
    """
    cuts = [float(c) for c in cut_points_seconds]
    if len(names) != len(cuts) + 1:
        raise InvalidInput(f"split_mp3 needs {len(cuts) + 1} names for {len(cuts)} cut "
                           f"points, got {len(names)}")
    if any(b <= a for a, b in itertools.pairwise(cuts)):
        raise InvalidInput("cut points must be strictly increasing")
    if any(not n or "/" in n or "\\" in n or n in (".", "..") for n in names):
        raise InvalidInput("piece names must be plain file names")
    data, frames = _map(Path(path))
    try:
        starts = [0.0]
        for f in frames:
            starts.append(starts[-1] + f.header.duration)
        bounds = [0]
        for c in cuts:
            k = _nearest_boundary(starts, c)
            bounds.append(max(k, bounds[-1]))
        bounds.append(len(frames))
        out_dir.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for name, (lo, hi) in zip(names, itertools.pairwise(bounds), strict=True):
            if hi <= lo:
                continue
            target = out_dir / name
            with open(target, "wb") as out:
                for f in frames[lo:hi]:
                    out.write(data[f.offset:f.offset + f.length])
            written.append(target)
        return written
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def _nearest_boundary(starts: list[float], t: float) -> int:
    """Index k of the frame boundary ``starts[k]`` nearest to time t (ties go later)."""
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if starts[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    if lo > 0 and t - starts[lo - 1] < starts[lo] - t:
        return lo - 1
    return lo


def valid_bitrates(sample_rate: int) -> tuple[int, ...]:
    """Layer III bit rates (kbit/s) allowed at a sample rate (MPEG-1 or MPEG-2 table)."""
    if sample_rate in SAMPLE_RATES["1"]:
        return BITRATES_MPEG1[1:]
    if sample_rate in SAMPLE_RATES["2"] + SAMPLE_RATES["2.5"]:
        return BITRATES_MPEG2[1:]
    raise InvalidInput(f"{sample_rate} Hz is not an MP3 sample rate")


class Mp3Encoder:
    """Incremental CBR MP3 encoder (libmp3lame through PyAV) writing bare frames.

    One encoder lives for a whole recording: frames from successive connections,
    in whatever format each source decodes to, are resampled to the output format
    and appended, so the output is continuous with no encoder flush (and no
    padding silence) at the joins. :meth:`close` flushes the last samples.

    The resampler (an FFmpeg filter graph through :class:`av.AudioResampler`)
    converts the audio and cuts it into frames of the encoder's frame size (1152
    samples) in the same pass, and each of its frames goes straight to the
    encoder: no FIFO in between, no Python work per sample block. PyAV's encoder
    still sends its input through an internal resampler of its own, which cuts to
    that size too (libmp3lame takes no other); with whole frames it has nothing to
    join, except after the short last frame of a source format when the format
    changes mid-recording.

    Parameters
    ----------
    out : BinaryIO
        Binary file the MP3 frames are written to (at its current position).
    bitrate_kbps : int
        Constant bit rate in kbit/s; one of :func:`valid_bitrates` for the rate.
    sample_rate : int
        Output sample rate in Hz (44100 by default).
    channels : int
        1 (mono) or 2 (stereo) output channels.

    Raises
    ------
    InvalidInput
        A bit rate, sample rate or channel count MP3 cannot carry.
    """

    def __init__(self, out: BinaryIO, *, bitrate_kbps: int = 192, sample_rate: int = 44100,
                 channels: int = 2) -> None:
        if channels not in (1, 2):
            raise InvalidInput(f"MP3 carries 1 or 2 channels, not {channels}")
        if bitrate_kbps not in valid_bitrates(sample_rate):
            raise InvalidInput(f"{bitrate_kbps} kbit/s is not an MP3 bit rate at "
                               f"{sample_rate} Hz (allowed: {valid_bitrates(sample_rate)})")
        self._out = out
        self.bitrate_kbps = bitrate_kbps
        self.sample_rate = sample_rate
        self.channels = channels
        self._layout = "mono" if channels == 1 else "stereo"
        ctx = av.CodecContext.create("libmp3lame", "w")
        assert isinstance(ctx, av.AudioCodecContext)
        ctx.sample_rate = sample_rate
        ctx.layout = self._layout
        ctx.format = "fltp"
        ctx.bit_rate = bitrate_kbps * 1000
        self._time_base = Fraction(1, sample_rate)
        ctx.time_base = self._time_base
        ctx.open()
        self._ctx = ctx
        self._frame_size = ctx.frame_size or 1152
        self._resampler: av.AudioResampler | None = None
        self._source: tuple[str, str, int] | None = None
        self._pts = 0
        self.samples_in = 0  # at the output rate, after resampling
        self.frames_written = 0
        self.bytes_written = 0
        self.closed = False

    @property
    def seconds_in(self) -> float:
        """Seconds of audio accepted so far (at the output rate)."""
        return self.samples_in / self.sample_rate

    @property
    def seconds_out(self) -> float:
        """Seconds of audio in the frames written so far (frames x 1152 / rate)."""
        return self.frames_written * self._frame_size / self.sample_rate

    def encode(self, frame: av.AudioFrame) -> int:
        """Encode one decoded frame; return the bytes written to the file by this call.

        Parameters
        ----------
        frame : av.AudioFrame
            Audio of any sample format, rate and layout; its timestamps are ignored
            (the output is the samples in arrival order).

        Raises
        ------
        MediaError
            The encoder has been closed.
        """
        if self.closed:
            raise MediaError(getattr(self._out, "name", "mp3"), "encoder already closed")
        source = (frame.format.name, frame.layout.name, frame.sample_rate)
        written = 0
        if source != self._source:
            written += self._drain_resampler()
            self._resampler = av.AudioResampler(format="fltp", layout=self._layout,
                                                rate=self.sample_rate,
                                                frame_size=self._frame_size)
            self._source = source
        frame.pts = None
        assert self._resampler is not None
        for f in self._resampler.resample(frame):
            written += self._push(f)
        return written

    def close(self) -> int:
        """Flush the resampler and the encoder; return the bytes written by the flush."""
        if self.closed:
            return 0
        written = self._drain_resampler()
        for packet in self._ctx.encode(None):
            written += self._write(packet)
        self.closed = True
        return written

    def _drain_resampler(self) -> int:
        written = 0
        if self._resampler is not None:
            for f in self._resampler.resample(None):
                written += self._push(f)
        self._resampler = None
        return written

    def _push(self, frame: av.AudioFrame) -> int:
        """Encode one resampled frame (``frame_size`` samples, or fewer when it is the
        last one of a source format)."""
        self.samples_in += frame.samples
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += frame.samples
        written = 0
        for packet in self._ctx.encode(frame):
            written += self._write(packet)
        return written

    def _write(self, packet: av.Packet) -> int:
        data = bytes(packet)
        self._out.write(data)
        self.frames_written += 1
        self.bytes_written += len(data)
        return len(data)

