"""Wear models: how a segment changes each time it is played (pure DSP).

Each model is a pure function of one segment's frames, its play count so far,
``DEGRADATION_RATE``, a random generator and the sample rate; its docstring gives
its law (how its strength grows with plays, through
:func:`~taperoom.ephemeral.wear.common.wear_strength`) and its source. The store
writes the result over the segment on disk, so wear accumulates and persists.
Every model acts on all channels alike and changes only the frames it is given;
all but ``dropout`` fade their effect in and out over 5 ms at the segment's
edges, so that a worn segment meets a fresh one without a click.

========== ==========================================================
``dropout`` frames silenced at random (the seeds' model, the default)
``lowpass`` high frequencies fade (tape spacing loss)
``noise``   hiss rises
``bitcrush`` resolution lost (requantisation with TPDF dither)
``wow``     pitch wobbles (slow sinusoidal delay modulation)
``reverb``  the sound smears into a growing room (feedback delay network)
========== ==========================================================
"""

from __future__ import annotations

from taperoom.ephemeral.wear.bitcrush import bitcrush
from taperoom.ephemeral.wear.common import rng_for, wear_strength
from taperoom.ephemeral.wear.dropout import Dropout, dropout_rate
from taperoom.ephemeral.wear.lowpass import lowpass
from taperoom.ephemeral.wear.model import FunctionModel, WearModel, describe
from taperoom.ephemeral.wear.noise import noise
from taperoom.ephemeral.wear.reverb import reverb
from taperoom.ephemeral.wear.wow import wow

__all__ = ["WEAR_MODELS", "Dropout", "FunctionModel", "WearModel", "describe",
           "description_of", "dropout_rate", "rng_for", "wear_strength"]

WEAR_MODELS: dict[str, WearModel] = {m.name: m for m in (
    Dropout(),
    FunctionModel("lowpass", lowpass),
    FunctionModel("noise", noise),
    FunctionModel("bitcrush", bitcrush),
    FunctionModel("wow", wow),
    FunctionModel("reverb", reverb),
)}
"""Every wear model by name, in the order ``GET /wear-models`` lists them."""


def description_of(model: WearModel) -> str:
    """One line saying what `model` does (the first paragraph of its docstring)."""
    return describe(model.function if isinstance(model, FunctionModel) else model)
