"""Key, mode and key strength of a recording, after its tuning frequency.

The estimate runs in four steps over the spectral peaks that
:class:`~taperoom.analysis.tonal.TonalAccumulator` kept:

1. the tuning frequency (:func:`~taperoom.analysis.tonal.tuning_frequency`), so a
   recording tuned to 446 Hz folds onto the right semitones;
2. the harmonic pitch-class profile of the whole recording, around that tuning
   (:func:`~taperoom.analysis.tonal.chromagram`, summed over frames);
3. the Pearson correlation of that profile with each of the 24 rotated key
   profiles (Krumhansl & Schmuckler's method, Krumhansl 1990, ch. 4), averaged
   over an ensemble of three published profile pairs that come from different
   repertoires, so that none of them decides alone: Temperley (1999, from
   music-theory principles), Temperley (2005 MIREX, from the Kostka-Payne corpus
   of common-practice music) and Faraldo et al. (2016, "edma", from electronic
   dance music). The best-correlated key wins; its mean correlation is the key
   strength.
4. the final cadence (:func:`final_chord`, :func:`cadence_key`): tonal pieces
   modulate mostly to the dominant (major keys) or the relative major (minor
   keys), and a sonata exposition or a binary-form first half is played twice,
   so the whole-piece profile of such a piece leans towards that key, and the
   profile method answers a fifth above or the relative major (errors that the
   MIREX key evaluation scores as "fifth" and "relative"). The piece still ends on a perfect
   authentic cadence in its tonic (Caplin 1998). So when the recording ends on
   a *held* major or minor triad (at least a second, most of its energy on the
   triad: a cadence, not a loop cut off or faded) whose root is the subdominant
   of the profile's key (the profile leaned to the dominant), or, for a major
   profile, the tonic of its relative minor, or its own tonic in the minor mode,
   that final chord names the key. A final chord on any other degree (a half
   cadence, a loop that ends anywhere) leaves the profile's key.

Sources
-------
- C. L. Krumhansl, "Cognitive Foundations of Musical Pitch", Oxford UP, 1990.
- D. Temperley, "What's key for key? The Krumhansl-Schmuckler key-finding
  algorithm reconsidered", Music Perception 17(1), 1999 (profile values as
  tabulated in essentia's ``Key`` algorithm, ``temperley``).
- D. Temperley, MIREX 2005 key-finding submission, profiles from the
  Kostka-Payne corpus (essentia ``temperley2005``).
- Á. Faraldo, E. Gómez, S. Jordà, P. Herrera, "Key estimation in electronic
  dance music", ECIR 2016 (essentia ``edma``).
- W. E. Caplin, "Classical Form", Oxford UP, 1998 (expositions modulate to the
  dominant, or to the relative major in minor; the movement closes with a
  perfect authentic cadence in the home key).
- MIREX 2005 audio key detection task (the error categories: fifth, relative,
  parallel), https://www.music-ir.org/mirex/wiki/2005:Audio_and_Symbolic_Key
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taperoom.analysis.keynames import camelot, key_name, mode_name, open_key
from taperoom.analysis.tonal import TonalFeatures, chromagram, tuning_frequency

_MAJOR_TRIAD = np.zeros(12)
_MAJOR_TRIAD[[0, 4, 7]] = 1.0
_MINOR_TRIAD = np.zeros(12)
_MINOR_TRIAD[[0, 3, 7]] = 1.0
#: Rows: minor triads on C..B, then major triads on C..B.
_TRIADS = np.stack([np.roll(_MINOR_TRIAD, k) for k in range(12)]
                   + [np.roll(_MAJOR_TRIAD, k) for k in range(12)])

__all__ = ["PROFILES", "KeyResult", "cadence_key", "estimate_key", "final_chord",
           "key_from_pcp"]

#: A final chord is a cadence when it is held at least this long (s) before the
#: audible end, and at least this share of its pitch-class energy lies on one
#: major or minor triad.
CADENCE_MIN_S = 1.0
CADENCE_TRIAD_SHARE = 0.8
#: Frames belong to the final chord while their pitch-class profile keeps this
#: cosine similarity to that of the last half second.
_SAME_CHORD = 0.85
#: Frames quieter than this share of the loudest frame's energy are silence
#: (reverb tails, fades).
_AUDIBLE = 1e-3
#: How far back from the end the final chord is looked for (s).
_TAIL_S = 30.0

#: Key profiles, (major, minor), index 0 = tonic (sources in the module docstring).
PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "temperley": ((5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0),
                  (5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0)),
    "temperley2005": ((0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104,
                       0.366, 0.057, 0.400),
                      (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404,
                       0.067, 0.133, 0.330)),
    "edma": ((1.00, 0.29, 0.50, 0.40, 0.60, 0.56, 0.32, 0.80, 0.31, 0.45, 0.42, 0.39),
             (1.00, 0.31, 0.44, 0.58, 0.33, 0.49, 0.29, 0.78, 0.43, 0.29, 0.53, 0.32)),
}


@dataclass(frozen=True)
class KeyResult:
    """Estimated key.

    Attributes
    ----------
    key : int or None
        Pitch class of the tonic, 0-11 (C=0); None when the recording has no
        pitched content (silence, unpitched noise, drums only with no peaks).
    mode : int or None
        1 major, 0 minor.
    strength : float or None
        Mean correlation of the pitch-class profile with the key's profiles,
        0-1 (higher is clearer).
    tuning_frequency : float
        A4 of the recording (Hz), used to fold the pitch classes.
    """

    key: int | None
    mode: int | None
    strength: float | None
    tuning_frequency: float

    @property
    def key_name(self) -> str | None:
        """Tonic name (``"F#"``), or None."""
        return None if self.key is None else key_name(self.key)

    @property
    def mode_name(self) -> str | None:
        """``"major"`` / ``"minor"``, or None."""
        return None if self.mode is None else mode_name(self.mode)

    @property
    def camelot(self) -> str | None:
        """Camelot name (``"8A"``), or None."""
        if self.key is None or self.mode is None:
            return None
        return camelot(self.key, self.mode)

    @property
    def open_key(self) -> str | None:
        """Open Key name (``"1m"``), or None."""
        if self.key is None or self.mode is None:
            return None
        return open_key(self.key, self.mode)


def _rotations(profile: tuple[float, ...]) -> np.ndarray:
    """The profile rotated to each tonic and standardised: shape (12 tonics, 12 pcs)."""
    p = np.asarray(profile, dtype=np.float64)
    rot = np.stack([np.roll(p, k) for k in range(12)])
    rot = rot - rot.mean(axis=1, keepdims=True)
    return rot / np.linalg.norm(rot, axis=1, keepdims=True)


#: Standardised rotations per profile: (major (12, 12), minor (12, 12)).
_TEMPLATES = {name: (_rotations(major), _rotations(minor))
              for name, (major, minor) in PROFILES.items()}


def key_from_pcp(pcp: np.ndarray, *, profiles: tuple[str, ...] = tuple(PROFILES)
                 ) -> tuple[int, int, float] | None:
    """Best key of a pitch-class profile by correlation with the key profiles.

    Parameters
    ----------
    pcp : np.ndarray, shape=(12,)
        Pitch-class energies, index 0 = C.
    profiles : tuple of str, keyword-only
        Names in :data:`PROFILES` whose correlations are averaged.

    Returns
    -------
    (key, mode, strength) or None
        Tonic pitch class (C=0), mode (1 major, 0 minor) and the mean Pearson
        correlation at that key (clipped to 0-1); None for a flat profile.

    Raises
    ------
    KeyError
        An unknown profile name.
    """
    x = np.asarray(pcp, dtype=np.float64)
    x = x - x.mean()
    norm = np.linalg.norm(x)
    if not np.isfinite(norm) or norm <= 1e-12:
        return None
    x = x / norm
    score = np.zeros((2, 12))  # rows: minor (mode 0), major (mode 1)
    for name in profiles:
        major, minor = _TEMPLATES[name]
        score[1] += major @ x
        score[0] += minor @ x
    score /= len(profiles)
    mode, key = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(key), int(mode), float(np.clip(score[mode, key], 0.0, 1.0))


def final_chord(features: TonalFeatures, *, tuning: float = 440.0
                ) -> tuple[int, int] | None:
    """The chord a recording ends on, when it ends on a held triad (a cadence).

    The final chord is the run of frames before the last audible one (within
    0.1 % of the loudest frame's energy) whose pitch-class profiles (peaks
    folded around `tuning`, no harmonic weighting) stay close (cosine similarity
    0.85) to that of the last half second.

    Parameters
    ----------
    features : TonalFeatures
        From :meth:`~taperoom.analysis.tonal.TonalAccumulator.finish`.
    tuning : float, keyword-only
        A4 of the recording (Hz).

    Returns
    -------
    (root, mode) or None
        Root pitch class (C=0) and mode (1 major, 0 minor) of the final chord;
        None when the recording does not end on a chord held for
        :data:`CADENCE_MIN_S` with :data:`CADENCE_TRIAD_SHARE` of its energy on
        one triad (a loop cut off, a fade, a drum hit, silence).
    """
    mags = features.mags
    if mags.shape[0] == 0:
        return None
    energy = np.square(mags.astype(np.float32)).sum(axis=1)
    top = float(energy.max())
    if top <= 0.0:
        return None
    audible = np.flatnonzero(energy > _AUDIBLE * top)
    last = int(audible[-1]) + 1
    fr = features.frame_rate
    first = max(0, last - int(_TAIL_S * fr))
    tail = TonalFeatures(pitch=features.pitch[first:last], mags=mags[first:last],
                         frame_rate=fr)
    chroma = chromagram(tail, tuning=tuning, harmonics=1)
    ref = chroma[-max(1, round(0.5 * fr)):].sum(axis=0)
    norm = np.linalg.norm(ref)
    if norm <= 0.0:
        return None
    ref = ref / norm
    start = chroma.shape[0] - 1
    while start > 0:
        frame = chroma[start - 1]
        size = np.linalg.norm(frame)
        if size <= 0.0 or float(frame @ ref) / size < _SAME_CHORD:
            break
        start -= 1
    if (chroma.shape[0] - start) / fr < CADENCE_MIN_S:
        return None
    pcp = chroma[start:].sum(axis=0)
    share = _TRIADS @ (pcp / pcp.sum())
    best = int(np.argmax(share))
    if share[best] < CADENCE_TRIAD_SHARE:
        return None
    return best % 12, best // 12


def cadence_key(key: int, mode: int, final: tuple[int, int] | None) -> tuple[int, int]:
    """The key once the final cadence is heard (step 4 of the module docstring).

    Parameters
    ----------
    key, mode : int
        The pitch-class profile's key (tonic C=0; mode 1 major, 0 minor).
    final : (root, mode) or None
        From :func:`final_chord`.

    Returns
    -------
    (key, mode)
        The final chord's key when it is the profile key's subdominant in the same
        mode, the relative minor of a major profile key, or the profile key's
        tonic in minor; otherwise `key` and `mode` unchanged (a final major chord
        on the tonic of a minor key is a Picardy third: still minor).
    """
    if final is None:
        return key, mode
    root, quality = final
    if root == key:
        return (key, 0) if mode == 1 and quality == 0 else (key, mode)
    if root == (key + 5) % 12 and quality == mode:
        return root, quality
    if mode == 1 and quality == 0 and root == (key + 9) % 12:
        return root, 0
    return key, mode


def estimate_key(features: TonalFeatures) -> KeyResult:
    """Tuning frequency, then key, mode and strength of a recording.

    Parameters
    ----------
    features : TonalFeatures
        From :meth:`~taperoom.analysis.tonal.TonalAccumulator.finish`.

    Returns
    -------
    KeyResult
        Strength (the mean profile correlation at the chosen key, 0-1) rounded to
        3 decimals, tuning to 0.01 Hz.
    """
    tuning = tuning_frequency(features)
    pcp = chromagram(features, tuning=tuning).sum(axis=0)
    best = key_from_pcp(pcp)
    if best is None:
        return KeyResult(key=None, mode=None, strength=None,
                         tuning_frequency=round(tuning, 2))
    key, mode, strength = best
    final_key, final_mode = cadence_key(key, mode, final_chord(features, tuning=tuning))
    if (final_key, final_mode) != (key, mode):
        key, mode = final_key, final_mode
        strength = _correlation(pcp, key, mode)
    return KeyResult(key=key, mode=mode, strength=round(strength, 3),
                     tuning_frequency=round(tuning, 2))


def _correlation(pcp: np.ndarray, key: int, mode: int,
                 profiles: tuple[str, ...] = tuple(PROFILES)) -> float:
    """Mean correlation of `pcp` with the profiles of one key, clipped to 0-1."""
    x = np.asarray(pcp, dtype=np.float64)
    x = x - x.mean()
    x = x / np.linalg.norm(x)
    score = float(np.mean([_TEMPLATES[name][0 if mode == 1 else 1][key] @ x
                           for name in profiles]))
    return float(np.clip(score, 0.0, 1.0))
