"""HTTP routes of the ephemeral app (contracts/ephemeral.md), one thin router per resource.

``status`` (``GET /``), ``tracks`` (the catalogue, stats, waveforms, reset),
``audio`` (``/stream`` and its chunks), ``degrade`` (``POST /degrade``, whose
requests the plain-ASGI :mod:`taperoom.ephemeral.hotpath` answers first),
``wear_models`` (``GET /wear-models``) and ``pages`` (the player). Services come
from :mod:`taperoom.ephemeral.api.deps`.
"""

from __future__ import annotations
