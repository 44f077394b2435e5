"""HTTP routers of the recorder app, one module per resource.

Each module has a module-level ``router`` (``streams`` -> ``/api/streams``,
``schedules`` -> ``/api/schedules``, ``sessions`` -> ``/api/sessions``,
``system`` -> ``/api/system``, ``backup`` -> ``/api/backup``, ``health`` ->
``/health`` and ``/api/health``, ``pages`` -> the dashboard's HTML pages). Routes
get their services through the FastAPI dependencies of :mod:`.deps`, only parse
input and call them, and declare the ``...Public`` model of their answer
(:mod:`taperoom.recorder.schemas`); errors are
:class:`~taperoom.errors.TaperoomError` subclasses mapped to the contract's error
body in one place (:mod:`taperoom.web.errors`).

Numeric path ids match ``[0-9]+`` only (as the original's Flask ``<int:id>``),
so ``/api/streams/abc`` is a 404, not a validation error.
"""

from __future__ import annotations
