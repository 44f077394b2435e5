"""Synthetic rhythm signals with exact beat times: clicks and a small drum kit."""

from __future__ import annotations

import numpy as np

RATE = 44100


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def kick(rate: int = RATE) -> np.ndarray:
    """A synthetic bass drum: 150 -> 50 Hz sine sweep, 180 ms exponential decay."""
    t = np.arange(int(0.25 * rate)) / rate
    freq = 50 + 100 * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(freq) / rate
    return np.sin(phase) * np.exp(-t / 0.06)


def snare(rate: int = RATE, seed: int = 1) -> np.ndarray:
    """A synthetic snare: 190 Hz tone plus white noise, 120 ms decay."""
    t = np.arange(int(0.2 * rate)) / rate
    noise = _rng(seed).standard_normal(t.size)
    return (0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
            + 0.5 * noise * np.exp(-t / 0.04))


def hat(rate: int = RATE, seed: int = 2) -> np.ndarray:
    """A synthetic closed hi-hat: differentiated white noise, 30 ms decay."""
    t = np.arange(int(0.06 * rate)) / rate
    noise = np.diff(_rng(seed).standard_normal(t.size + 1))
    return 0.3 * noise * np.exp(-t / 0.012)


def click(rate: int = RATE) -> np.ndarray:
    """A metronome click: 2 kHz tone, 20 ms decay."""
    t = np.arange(int(0.05 * rate)) / rate
    return np.sin(2 * np.pi * 2000 * t) * np.exp(-t / 0.008)


def place(events: list[tuple[float, np.ndarray, float]], seconds: float,
          rate: int = RATE) -> np.ndarray:
    """Mix sounds at given times: events are (time s, sound, gain); mono float32."""
    out = np.zeros(int(seconds * rate))
    for t, sound, gain in events:
        i = round(t * rate)
        if i >= out.size:
            continue
        n = min(sound.size, out.size - i)
        out[i:i + n] += gain * sound[:n]
    peak = np.abs(out).max()
    return (0.5 * out / peak if peak > 0 else out).astype(np.float32)


def clicks(bpm: float, seconds: float, *, offset: float = 0.0, accent_every: int = 0,
           rate: int = RATE) -> tuple[np.ndarray, np.ndarray]:
    """A click track: returns (signal, beat times s). Accented clicks (x2) every
    `accent_every` beats when > 0."""
    beats = np.arange(offset, seconds - 0.05, 60.0 / bpm)
    ev = [(t, click(rate), 1.0 if accent_every and i % accent_every == 0 else 0.5)
          for i, t in enumerate(beats)]
    return place(ev, seconds, rate), beats


def drums(bpm: float, seconds: float, *, beats_per_bar: int = 4, offset: float = 0.0,
          pickup: int = 0, eighths: bool = True,
          rate: int = RATE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A drum-machine pattern with exact beats and downbeats.

    4/4: kick on 1 and 3, snare on 2 and 4, hats on every eighth (on every beat only
    without `eighths`); 3/4: kick on 1, snare on 2 and 3. `pickup` beats of hats only
    come before the first downbeat. Returns (signal, beat times s, downbeat times s).
    """
    period = 60.0 / bpm
    beats = np.arange(offset, seconds - 0.05, period)
    ev: list[tuple[float, np.ndarray, float]] = []
    downs = []
    for i, t in enumerate(beats):
        pos = (i - pickup) % beats_per_bar
        ev.append((t, hat(rate), 0.6))
        if eighths:
            ev.append((t + period / 2, hat(rate, seed=3), 0.4))
        if i < pickup:
            continue
        if pos == 0:
            downs.append(t)
            ev.append((t, kick(rate), 1.0))
        elif beats_per_bar == 4 and pos == 2:
            ev.append((t, kick(rate), 0.8))
        else:
            ev.append((t, snare(rate), 0.7))
    return place(ev, seconds, rate), beats, np.asarray(downs)


def chord(freqs: tuple[float, ...], seconds: float, rate: int = RATE) -> np.ndarray:
    """A sustained organ-like chord: sum of sines with 3 harmonics, 10 ms fade in/out."""
    t = np.arange(int(seconds * rate)) / rate
    y = sum(np.sin(2 * np.pi * f * h * t) / h for f in freqs for h in (1, 2, 3))
    env = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)
    return np.asarray(y * env / len(freqs))


#: Triads (Hz) of a I-vi-IV-V progression in C: C, A minor, F, G.
PROGRESSION = ((261.63, 329.63, 392.00), (220.00, 261.63, 329.63),
               (174.61, 220.00, 261.63), (196.00, 246.94, 293.66))


def four_on_the_floor(bpm: float, seconds: float, *, pickup: int = 0, clap: bool = False,
                      rate: int = RATE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kick and hat on every beat (nothing rhythmic marks the bar) under chords that
    change on every bar line, after `pickup` beats of kick alone; with `clap`, a loud
    snare on the second and fourth beat of every bar (the house-music backbeat).

    Returns (signal, beat times s, downbeat times s).
    """
    period = 60.0 / bpm
    beats = np.arange(0.0, seconds - 0.05, period)
    ev: list[tuple[float, np.ndarray, float]] = []
    for i, t in enumerate(beats):
        ev.append((t, kick(rate), 1.0))
        ev.append((t, hat(rate), 0.5))
        if clap and i >= pickup and (i - pickup) % 2 == 1:
            ev.append((t, snare(rate), 1.2))
    downs = beats[pickup::4]
    for j, t in enumerate(downs):
        ev.append((t, chord(PROGRESSION[j % 4], 4 * period, rate), 0.6))
    return place(ev, seconds, rate), beats, downs


def swing(bpm: float, seconds: float, *, ratio: float = 2.0 / 3.0,
          rate: int = RATE) -> tuple[np.ndarray, np.ndarray]:
    """A swung drum pattern: kick on 1 and 3, snare on 2 and 4, hats on the beat and on
    the swung off-beat at `ratio` of the beat (2/3: triplet swing).

    Returns (signal, beat times s).
    """
    period = 60.0 / bpm
    beats = np.arange(0.0, seconds - 0.05, period)
    ev: list[tuple[float, np.ndarray, float]] = []
    for i, t in enumerate(beats):
        ev.append((t, hat(rate), 0.6))
        ev.append((t + ratio * period, hat(rate, seed=3), 0.5))
        ev.append((t, kick(rate) if i % 2 == 0 else snare(rate), 0.9))
    return place(ev, seconds, rate), beats


def tempo_step(bpm1: float, bpm2: float, seconds: float,
               rate: int = RATE) -> tuple[np.ndarray, np.ndarray]:
    """Kick-and-hat beats at `bpm1` for the first half, then at `bpm2`.

    Returns (signal, beat times s).
    """
    half = seconds / 2
    first = np.arange(0.0, half, 60.0 / bpm1)
    second = np.arange(first[-1] + 60.0 / bpm2, seconds - 0.05, 60.0 / bpm2)
    beats = np.concatenate([first, second])
    ev = [(t, kick(rate), 1.0) for t in beats] + [(t, hat(rate), 0.5) for t in beats]
    return place(ev, seconds, rate), beats


def drifting(bpm_start: float, bpm_end: float, seconds: float,
             rate: int = RATE) -> tuple[np.ndarray, np.ndarray]:
    """Kick-and-hat beats whose tempo glides linearly from `bpm_start` to `bpm_end`
    (a band pushing the tempo). Returns (signal, beat times s)."""
    beats = [0.0]
    while beats[-1] < seconds - 0.5:
        bpm = bpm_start + (bpm_end - bpm_start) * beats[-1] / seconds
        beats.append(beats[-1] + 60.0 / bpm)
    times = np.asarray(beats[:-1])
    ev = [(t, kick(rate), 1.0) for t in times] + [(t, hat(rate), 0.5) for t in times]
    return place(ev, seconds, rate), times


def piano_note(freq: float, rate: int = RATE) -> np.ndarray:
    """A plucked, piano-like note: 4 harmonics (amplitude 1/h), 1 ms attack, 250 ms
    exponential decay, 0.5 s long."""
    n = np.arange(int(0.5 * rate))
    y = sum(np.sin(2 * np.pi * freq * h * n / rate) / h for h in (1, 2, 3, 4))
    return np.asarray(y * np.exp(-n / (0.25 * rate)) * np.minimum(1.0, n / 50.0))


def in_three(bpm: float, seconds: float, rate: int = RATE,
             seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A piece in 3/4 without drums, moving in eighth notes: a note of the bar's chord
    (:data:`PROGRESSION`, one chord a bar, an octave up) on every eighth, loudest on the
    downbeat (1.0), then on the other beats (0.7), softest between them (0.45), and the
    chord's root an octave down on every downbeat. Returns (signal, beat times s,
    downbeat times s).
    """
    rng = _rng(seed)
    eighth = 30.0 / bpm
    ev: list[tuple[float, np.ndarray, float]] = []
    beats, downbeats = [], []
    i = 0
    while (t := 0.25 + i * eighth) < seconds - 0.6:
        bar, pos = divmod(i, 6)
        triad = PROGRESSION[bar % len(PROGRESSION)]
        gain = 1.0 if pos == 0 else 0.7 if pos % 2 == 0 else 0.45
        ev.append((t, piano_note(triad[int(rng.integers(3))] * 2, rate), 0.2 * gain))
        if pos % 2 == 0:
            beats.append(t)
            if pos == 0:
                ev.append((t, piano_note(triad[0] / 2, rate), 0.3))
                downbeats.append(t)
        i += 1
    return place(ev, seconds, rate), np.asarray(beats), np.asarray(downbeats)
