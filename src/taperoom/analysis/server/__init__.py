"""Taperoom's analyzer as an analysis server (``taperoom analysis serve``).

It speaks the analysis-server contract of ``shared/contracts/library.md`` §3
(``POST /jobs``, ``GET``/``DELETE /jobs/{id}``, ``GET /health``, ``GET /stats``,
callbacks for every stage), so the original Node.js backend can use it as its
``PYTHON_SERVER_URL`` unmodified. :mod:`~taperoom.analysis.server.app` is the
composition root.
"""
