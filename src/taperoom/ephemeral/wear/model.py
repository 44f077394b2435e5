"""The interface of a wear model, and the wrapper that makes one of a pure function."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class WearModel(Protocol):
    """Interface of a wear model."""

    @property
    def name(self) -> str:
        """Registry name (``WEAR_MODEL``, a track's ``wear_model``)."""
        ...

    def apply(self, y: np.ndarray, *, play_count: int, rate_percent: float,
              rng: np.random.Generator, sample_rate: int = 48000) -> np.ndarray:
        """Return the worn copy of segment `y`.

        Parameters
        ----------
        y : np.ndarray, shape=(n_frames, n_channels), float64 in [-1, 1]
            The segment as it is now.
        play_count : int, keyword-only
            Plays of this segment before this one.
        rate_percent : float, keyword-only
            ``DEGRADATION_RATE`` setting, percent per play.
        rng : np.random.Generator, keyword-only
            Source of randomness.
        sample_rate : int, keyword-only
            Frames per second of `y`, in Hz.

        Returns
        -------
        np.ndarray, same shape as `y`
        """
        ...


#: Signature of the pure function behind a :class:`FunctionModel`.
WearFunction = Callable[..., np.ndarray]


@dataclass(frozen=True)
class FunctionModel:
    """A wear model made of a pure function ``f(y, *, play_count, rate_percent, rng,
    sample_rate)``.

    Attributes
    ----------
    name : str
        Registry name (``WEAR_MODEL``, a track's ``wear_model``).
    function : callable
        The model; its docstring gives its law and its source.
    """

    name: str
    function: WearFunction

    def apply(self, y: np.ndarray, *, play_count: int, rate_percent: float,
              rng: np.random.Generator, sample_rate: int = 48000) -> np.ndarray:
        """See :meth:`WearModel.apply`."""
        return self.function(y, play_count=play_count, rate_percent=rate_percent, rng=rng,
                             sample_rate=sample_rate)

    @property
    def description(self) -> str:
        """First line of the function's docstring."""
        return describe(self.function)


def describe(obj: object) -> str:
    """First paragraph of `obj`'s docstring, on one line ("" when it has none)."""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())
