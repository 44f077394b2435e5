"""The wear models on real music: channels, edges, determinism, growth with plays."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from taperoom.ephemeral.wear import WEAR_MODELS, description_of, rng_for, wear_strength
from taperoom.ephemeral.wear.common import blend_edges, fade_frames, fast_length

RATE = 48_000
SEGMENT = RATE // 2
#: Models with an edge fade (dropout's frames are whole or silent by design).
FADED = ["lowpass", "noise", "bitcrush", "wow", "reverb"]
#: Models that treat every channel with the same (linear or time-warping) operator.
SHARED_OPERATOR = ["lowpass", "wow", "reverb"]
MUSIC = "scanner/real_music_tagged/04 - Muldjord - Mutilated Mime.ogg"


def _decode(path: Path, seconds: float, *, offset: float = 10.0) -> np.ndarray:
    """`seconds` of `path` from `offset`, as 48 kHz stereo float64 (n, 2)."""
    resampler = av.AudioResampler(format="flt", layout="stereo", rate=RATE)
    parts: list[np.ndarray] = []
    want = round((offset + seconds) * RATE)
    got = 0
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                a = out.to_ndarray().reshape(-1, 2)
                parts.append(a)
                got += len(a)
            if got >= want:
                break
    y = np.concatenate(parts).astype(np.float64)
    return y[round(offset * RATE):want]


@pytest.fixture(scope="module")
def music(corpus: Path) -> np.ndarray:
    """Two seconds of a real stereo recording (metal, with distinct L and R)."""
    y = _decode(corpus / MUSIC, 2.0)
    assert y.shape == (2 * RATE, 2)
    assert not np.array_equal(y[:, 0], y[:, 1])
    return y


def _wear(name: str, y: np.ndarray, plays: int, *, seed: object = ("t.wav", 0),
          rate: float = 1.0) -> np.ndarray:
    rng = (rng_for(str(seed[0]), int(seed[1]), plays) if isinstance(seed, tuple)
           else np.random.default_rng(int(str(seed))))
    return WEAR_MODELS[name].apply(y, play_count=plays, rate_percent=rate, rng=rng,
                                   sample_rate=RATE)


def _rms(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    return np.sqrt(np.mean(np.square(x), axis=axis))


def test_registry_lists_the_six_models_with_a_description() -> None:
    """dropout, lowpass, noise, bitcrush, wow, reverb, each with a one-line description."""
    assert list(WEAR_MODELS) == ["dropout", "lowpass", "noise", "bitcrush", "wow", "reverb"]
    for name, model in WEAR_MODELS.items():
        assert model.name == name
        assert len(description_of(model)) > 20


@pytest.mark.parametrize("name", list(WEAR_MODELS))
def test_first_play_changes_nothing(name: str, music: np.ndarray) -> None:
    """A segment's first play (no plays before) leaves it as it was, as with dropout."""
    seg = music[:SEGMENT]
    np.testing.assert_array_equal(_wear(name, seg, 0, rate=100.0), seg)


@pytest.mark.parametrize("name", list(WEAR_MODELS))
def test_shape_and_input_kept(name: str, music: np.ndarray) -> None:
    """The worn segment has the input's shape; the input array is not modified."""
    seg = music[:SEGMENT].copy()
    out = _wear(name, seg, 40)
    assert out.shape == seg.shape
    np.testing.assert_array_equal(seg, music[:SEGMENT])
    assert not np.array_equal(out, seg)


@pytest.mark.parametrize("name", list(WEAR_MODELS))
def test_every_channel_is_worn_alike(name: str, music: np.ndarray) -> None:
    """Both channels of real stereo music change, by amounts within a factor 1.5."""
    seg = music[SEGMENT:2 * SEGMENT]
    change = _rms(_wear(name, seg, 30) - seg, axis=0)
    assert (change > 0).all()
    assert change.max() / change.min() < 1.5, change


@pytest.mark.parametrize("name", SHARED_OPERATOR)
def test_channels_get_the_same_operator(name: str, music: np.ndarray) -> None:
    """Swapping the input channels swaps the output channels, exactly: one filter, one
    delay curve, one room for all."""
    seg = music[:SEGMENT]
    out = _wear(name, seg, 50)
    swapped = _wear(name, seg[:, ::-1].copy(), 50)
    np.testing.assert_allclose(swapped, out[:, ::-1], atol=1e-12)


@pytest.mark.parametrize("name", FADED)
@pytest.mark.parametrize("plays", [1, 30, 100, 400])
def test_edges_join_the_neighbours_without_a_step(name: str, plays: int,
                                                  music: np.ndarray) -> None:
    """The first and last frames are the input's, the frames near them hardly change,
    and the step from a fresh neighbour into the worn segment (and out of it) is the
    original's step: no click where a worn segment meets a fresh one."""
    before, seg, after = music[:SEGMENT], music[SEGMENT:2 * SEGMENT], \
        music[2 * SEGMENT:3 * SEGMENT]
    out = _wear(name, seg, plays)
    np.testing.assert_allclose(out[0], seg[0], atol=1e-12)
    np.testing.assert_allclose(out[-1], seg[-1], atol=1e-12)
    joined = np.concatenate([before, out, after])
    original = np.concatenate([before, seg, after])
    for edge in (SEGMENT, 2 * SEGMENT):  # fresh -> worn, worn -> fresh
        np.testing.assert_allclose(joined[edge] - joined[edge - 1],
                                   original[edge] - original[edge - 1], atol=1e-12)
    # within 0.25 ms of each edge the worn signal stays within 1 % of full scale
    k = RATE // 4000
    assert np.abs(out[:k] - seg[:k]).max() < 0.01
    assert np.abs(out[-k:] - seg[-k:]).max() < 0.01
    # and the largest sample-to-sample step over the edge fades is no larger than the
    # largest one of the music plus what the model adds anywhere in the segment
    f = fade_frames(SEGMENT, RATE)
    inner = np.abs(np.diff(out[f:-f], axis=0)).max()
    bound = 1.05 * max(inner, np.abs(np.diff(seg, axis=0)).max())
    for zone in (out[:f + 1], out[-f - 1:]):
        assert np.abs(np.diff(zone, axis=0)).max() <= bound


@pytest.mark.parametrize("name", list(WEAR_MODELS))
def test_wear_is_deterministic_per_track_segment_and_play(name: str,
                                                          music: np.ndarray) -> None:
    """The same track, segment and play count give the same samples; another play count
    (or another track) gives others, for the models that draw random numbers."""
    seg = music[:SEGMENT]
    a = WEAR_MODELS[name].apply(seg, play_count=40, rate_percent=1.0,
                                rng=rng_for("a b.wav", 3, 40), sample_rate=RATE)
    b = WEAR_MODELS[name].apply(seg, play_count=40, rate_percent=1.0,
                                rng=rng_for("a b.wav", 3, 40), sample_rate=RATE)
    np.testing.assert_array_equal(a, b)
    if name != "lowpass":  # the only model that draws nothing
        c = WEAR_MODELS[name].apply(seg, play_count=40, rate_percent=1.0,
                                    rng=rng_for("a b.wav", 4, 40), sample_rate=RATE)
        assert not np.array_equal(a, c)


def test_seed_is_stable_across_processes() -> None:
    """rng_for hashes with BLAKE2b, not Python's per-process hash(): its first draw is
    fixed."""
    assert rng_for("x.wav", 1, 2).integers(0, 2**32) == rng_for("x.wav", 1, 2).integers(
        0, 2**32)
    assert rng_for("x.wav", 1, 2).random() != rng_for("x.wav", 2, 1).random()
    assert rng_for("x.wav", 12, 3).random() != rng_for("x.wav", 1, 23).random()


@pytest.mark.parametrize("name", list(WEAR_MODELS))
def test_strength_grows_with_plays(name: str, music: np.ndarray) -> None:
    """With the same random draws, a later play changes the segment more than an earlier
    one (5, 30, 100 plays at 1 % per play)."""
    seg = music[SEGMENT:2 * SEGMENT]
    changes = [float(_rms(_wear(name, seg, plays, seed=11) - seg)) for plays in (5, 30, 100)]
    assert changes[0] < changes[1] < changes[2], changes


def test_lowpass_takes_the_high_frequencies_first(music: np.ndarray) -> None:
    """After a worn play the energy above 8 kHz falls far more than below 1 kHz, and more
    after more plays."""
    seg = music[:SEGMENT]

    def band(x: np.ndarray, lo: float, hi: float) -> float:
        spec = np.abs(np.fft.rfft(x, axis=0)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / RATE)
        return float(spec[(f >= lo) & (f < hi)].sum())

    ratios = []
    for plays in (30, 100):
        out = _wear("lowpass", seg, plays)
        high = band(out, 8000, 20000) / band(seg, 8000, 20000)
        low = band(out, 50, 1000) / band(seg, 50, 1000)
        assert high < 0.7 * low
        ratios.append(high)
    assert ratios[1] < ratios[0]


def test_noise_adds_hiss_at_the_stated_level() -> None:
    """On silence the hiss of a full-strength play has RMS -30 dBFS (within 5 %)."""
    out = _wear("noise", np.zeros((SEGMENT, 2)), 100)
    f = fade_frames(SEGMENT, RATE)
    assert _rms(out[f:-f]) == pytest.approx(10 ** (-30 / 20), rel=0.05)


def test_bitcrush_leaves_the_stated_number_of_levels() -> None:
    """At full strength the samples away from the edges lie on a 4-bit grid (step 1/8)."""
    y = 0.8 * np.sin(np.linspace(0, 40 * np.pi, SEGMENT))[:, None].repeat(2, axis=1)
    out = _wear("bitcrush", y, 100)
    f = fade_frames(SEGMENT, RATE)
    inner = out[f:-f] * 8
    np.testing.assert_allclose(inner, np.rint(inner), atol=1e-9)
    assert len(np.unique(np.rint(inner))) <= 17


def test_wow_only_delays_and_keeps_the_pitch_swing_within_the_law(music: np.ndarray) -> None:
    """A wow play is a time warp: a pure tone comes back as the same tone read at a
    varying speed, whose peak deviation stays within the law's s x 1 %."""
    t = np.arange(SEGMENT) / RATE
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)[:, None].repeat(2, axis=1)
    out = _wear("wow", tone, 100)  # s = 1: up to 1 % speed deviation
    # instantaneous phase from the analytic signal: its slope is 1000 Hz * speed
    spec = np.fft.fft(out[:, 0])
    spec[SEGMENT // 2 + 1:] = 0
    spec[1:SEGMENT // 2] *= 2
    phase = np.unwrap(np.angle(np.fft.ifft(spec)))
    freq = np.diff(phase) * RATE / (2 * np.pi)
    core = freq[RATE // 50:-RATE // 50]  # away from the FFT's wrap at the ends
    assert np.abs(core / 1000 - 1).max() < 0.0125
    assert np.abs(core / 1000 - 1).max() > 0.003  # it does wobble


def test_reverb_tail_stays_in_the_segment(music: np.ndarray) -> None:
    """A click in the middle of silence rings on after it, decays, and nothing comes
    before it; the output length is the segment's (the tail past the end is cut)."""
    y = np.zeros((SEGMENT, 2))
    y[SEGMENT // 4] = 0.9
    out = _wear("reverb", y, 100)
    assert out.shape == y.shape
    assert not out[:SEGMENT // 4].any()
    ring = out[SEGMENT // 4 + RATE // 20:]
    assert _rms(ring) > 0
    first, last = _rms(ring[:2000]), _rms(ring[-3000:-500])
    assert last < first


def test_models_wear_cumulatively_like_the_store() -> None:
    """Applied play after play to their own output (as the store writes back), each
    model moves the segment further from the original."""
    t = np.arange(SEGMENT) / RATE
    y = np.stack([0.4 * np.sin(2 * np.pi * 440 * t), 0.4 * np.sin(2 * np.pi * 3520 * t)], 1)
    for name in WEAR_MODELS:
        out = y
        dist = []
        for plays in range(0, 60, 10):
            out = _wear(name, out, plays, seed=("c.wav", 0))
            dist.append(float(_rms(out - y)))
        assert dist[-1] > dist[1] > 0, (name, dist)


def test_helpers() -> None:
    """wear_strength is the seeds' dropout rate; fast_length is 5-smooth; blend_edges keeps
    the ends and the middle."""
    assert wear_strength(0, rate_percent=5) == 0
    assert wear_strength(30, rate_percent=1) == pytest.approx(0.3)
    assert wear_strength(300, rate_percent=1) == 1
    for n in (1, 7, 24_960, 48_001):
        m = fast_length(n)
        assert m >= n
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        assert r == 1
    dry, wet = np.zeros((1000, 1)), np.ones((1000, 1))
    out = blend_edges(dry, wet.copy(), sample_rate=48_000)
    assert out[0, 0] == 0 and out[-1, 0] == 0 and out[500, 0] == 1
    assert (np.diff(out[:240, 0]) >= 0).all()
