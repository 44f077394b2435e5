"""HTTP routers of the recorder app, one module per resource.

Each module has ``build_router(ctx) -> APIRouter`` with routes relative to its
prefix (``streams`` -> ``/api/streams``, ``schedules`` -> ``/api/schedules``,
``sessions`` -> ``/api/sessions``, ``system`` -> ``/api/system``, ``backup`` ->
``/api/backup``; ``pages`` has none). Routers only parse input and call the
services (:mod:`taperoom.recorder.stations`, :mod:`~taperoom.recorder.backup`,
:mod:`~taperoom.recorder.monitor`, :mod:`~taperoom.recorder.logs`,
``ctx.recordings``); errors are :class:`~taperoom.errors.TaperoomError`
subclasses mapped to the contract's error body in one place.

Numeric path ids match ``[0-9]+`` only (as the original's Flask ``<int:id>``),
so ``/api/streams/abc`` is a 404, not a validation error.
"""

from __future__ import annotations
