"""The output file of a capture: whole MP3 frames copied, or one encoder once needed.

When the source is MP3, only whole frames are written (no ICY bytes, no ID3 tag
from the stream start, no Xing frame, no partial frame at a join: each connection
starts with a fresh :class:`~taperoom.recorder.encode.FrameSync`), so the joined
file is one valid MP3 stream. Otherwise (or when a later connection's MP3 has a
different sample rate or channel count) the audio is decoded and re-encoded by one
:class:`~taperoom.recorder.encode.Mp3Encoder` that lives for the whole recording;
from then on every connection goes through it, so the file stays gapless.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

import av

from taperoom.recorder.encode import Mp3Encoder, SyncedFrame, valid_bitrates

log = logging.getLogger(__name__)


class Output:
    """The output file: copies MP3 frames, or encodes once anything needs encoding.

    Parameters
    ----------
    fh : binary file
        The open output file.
    bitrate_kbps : int
        Wanted bit rate of the encoder, kbit/s (the nearest valid one for the
        sample rate is used).
    """

    def __init__(self, fh: BinaryIO, bitrate_kbps: int) -> None:
        self.fh = fh
        self.bitrate_kbps = bitrate_kbps
        self.copy_signature: tuple[str, int, int] | None = None
        self.copy_seconds = 0.0
        self.copy_bytes = 0
        self.encoder: Mp3Encoder | None = None
        self._mp3_decoder: av.AudioCodecContext | None = None

    @property
    def stream_copy(self) -> bool:
        """True while every frame written is a frame of the source."""
        return self.encoder is None

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio written so far (media time)."""
        return self.copy_seconds + (self.encoder.seconds_in if self.encoder else 0.0)

    @property
    def bytes_written(self) -> int:
        """Bytes written so far."""
        return self.copy_bytes + (self.encoder.bytes_written if self.encoder else 0)

    def new_connection(self) -> None:
        """A new connection starts: MP3 decoding state must not span the join."""
        self._mp3_decoder = None  # the bit reservoir must not span a join

    def write_mp3(self, frames: list[SyncedFrame]) -> None:
        """Copy `frames`, or decode and encode them once the format changed."""
        if self.encoder is None and frames:
            if self.copy_signature is None:
                self.copy_signature = frames[0].header.signature
            signature = self.copy_signature
            if all(f.header.signature == signature for f in frames):  # one write
                data = b"".join([f.data for f in frames])
                self.fh.write(data)
                self.copy_seconds += sum(f.header.duration for f in frames)
                self.copy_bytes += len(data)
                return
        for f in frames:
            if self.encoder is None and self.copy_signature is None:
                self.copy_signature = f.header.signature
            if self.encoder is None and f.header.signature == self.copy_signature:
                self.fh.write(f.data)
                self.copy_seconds += f.header.duration
                self.copy_bytes += len(f.data)
                continue
            if self._mp3_decoder is None:
                ctx = av.CodecContext.create("mp3", "r")
                assert isinstance(ctx, av.AudioCodecContext)
                self._mp3_decoder = ctx
            try:
                decoded = self._mp3_decoder.decode(av.Packet(f.data))
            except av.error.FFmpegError:
                continue
            for frame in decoded:
                self.write_pcm(frame)

    def write_pcm(self, frame: av.AudioFrame) -> None:
        """Encode one decoded frame (the encoder starts with the first one)."""
        if self.encoder is None:
            rate, channels = 44100, 2
            if self.copy_signature is not None:  # continue the copied stream's format
                _, rate, channels = self.copy_signature
                log.info("re-encoding from here on: the source format changed")
            allowed = valid_bitrates(rate)
            bitrate = min(allowed, key=lambda b: (abs(b - self.bitrate_kbps), b))
            self.encoder = Mp3Encoder(self.fh, bitrate_kbps=bitrate, sample_rate=rate,
                                      channels=channels)
        self.encoder.encode(frame)

    def close(self) -> float:
        """Flush; return the audio duration of the file in seconds."""
        if self.encoder is None:
            return self.copy_seconds
        self.encoder.close()
        return self.copy_seconds + self.encoder.seconds_out
