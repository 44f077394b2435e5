"""Stems of the library's recordings: converted to WAV (:mod:`.conversion`) from what an
external analysis server delivers (:mod:`.delivery`), kept in a size-limited cache
(:mod:`.cache`), and asked for by the audio engine (:mod:`.service`)."""

from __future__ import annotations

from taperoom.enginelink.stems import STEM_NAMES
from taperoom.library.stems.cache import StemCache
from taperoom.library.stems.delivery import StemStore, StoredStems
from taperoom.library.stems.errors import StemsUnavailable
from taperoom.library.stems.service import StemsService

__all__ = ["STEM_NAMES", "StemCache", "StemStore", "StemsService", "StemsUnavailable",
           "StoredStems"]
