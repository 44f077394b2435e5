"""Test signals for the analyzer: sines, chords and files written with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

RATE = 44100


def sine(freq: float, seconds: float, *, dbfs: float = -6.0, rate: int = RATE,
         phase: float = 0.0) -> np.ndarray:
    """A sine of peak level `dbfs`, shape (n,), float32."""
    t = np.arange(round(seconds * rate)) / rate
    return (10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def stereo(y: np.ndarray) -> np.ndarray:
    """The same signal in both channels, shape (n, 2)."""
    return np.stack([y, y], axis=1)


def write_audio(path: Path, y: np.ndarray, *, rate: int = RATE, codec: str | None = None
                ) -> Path:
    """Encode `y` (n,) or (n, channels) float in [-1, 1] with PyAV (codec by suffix:
    pcm_s16le for .wav, flac, libvorbis for .ogg, libmp3lame for .mp3)."""
    if y.ndim == 1:
        y = y[:, None]
    codec = codec or {".wav": "pcm_s16le", ".flac": "flac", ".ogg": "libvorbis",
                      ".mp3": "libmp3lame"}[path.suffix]
    layout = {1: "mono", 2: "stereo"}[y.shape[1]]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        fmt = stream.codec_context.codec.audio_formats[0].name
        convert = av.AudioResampler(format=fmt, layout=layout, rate=rate)
        chunk = 4096
        for i in range(0, y.shape[0], chunk):
            part = np.ascontiguousarray(y[i:i + chunk].T.astype(np.float32))
            frame = av.AudioFrame.from_ndarray(part, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = None
            for converted in convert.resample(frame):
                for packet in stream.encode(converted):
                    out.mux(packet)
        for converted in convert.resample(None):
            for packet in stream.encode(converted):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def note(midi: float, seconds: float, *, a4: float = 440.0, rate: int = RATE,
         vibrato_cents: float = 0.0) -> np.ndarray:
    """A harmonic tone (6 partials, amplitudes 0.6**(h-1)) at MIDI pitch `midi` in a
    tuning of A4 = `a4` Hz, with optional 5.5 Hz vibrato and 20/50 ms fades."""
    t = np.arange(round(seconds * rate)) / rate
    f0 = a4 * 2 ** ((midi - 69) / 12)
    inst = f0 * 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(inst) / rate
    y = sum(0.6 ** (h - 1) * np.sin(h * phase) for h in range(1, 7))
    env = np.minimum(1.0, np.minimum(t / 0.02, (seconds - t) / 0.05))
    return np.asarray(y * env, dtype=np.float64)


def chords(progression: list[list[int]], *, seconds: float = 1.0, a4: float = 440.0,
           repeats: int = 4, vibrato_cents: float = 0.0, level: float = 0.1
           ) -> np.ndarray:
    """A chord progression (MIDI notes per chord), each chord `seconds` long, played
    `repeats` times; mono float32."""
    out = [sum(note(m, seconds, a4=a4, vibrato_cents=vibrato_cents) for m in chord)
           for chord in progression] * repeats
    return (level * np.concatenate(out)).astype(np.float32)
