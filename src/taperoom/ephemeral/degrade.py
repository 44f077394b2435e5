"""Wear models (kept for imports of earlier versions): see :mod:`taperoom.ephemeral.wear`."""

from __future__ import annotations

from taperoom.ephemeral.wear import WEAR_MODELS, Dropout, WearModel, dropout_rate

__all__ = ["WEAR_MODELS", "Dropout", "WearModel", "dropout_rate"]
