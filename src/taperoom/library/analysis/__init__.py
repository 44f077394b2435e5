"""The library's music analysis: its queue on the job layer, its results on the tracks.

DESIGN.md's ``analysis/queue.py`` lives here, in the library, because the jobs,
the tracks and the waveforms it writes are the library's store, while
:mod:`taperoom.analysis` stays free of any library (the analysis server and
``taperoom analyze`` use it without one).

* :mod:`.service`: :class:`AnalysisService`, the ``/api/analysis`` routes' and the
  CLI's service: a face over the modules that queue (:mod:`.queueing`,
  :mod:`.autoqueue`), run (:mod:`.runs`, :mod:`.outcomes`, :mod:`.storage`,
  :mod:`.local`), take callbacks (:mod:`.callbacks`), answer (:mod:`.views`),
  control (:mod:`.controls`, :mod:`.workers`) and prune (:mod:`.pruning`).
* :mod:`.results`: stage data (contract §3) as track columns and waveform levels.
"""

from __future__ import annotations

from taperoom.library.analysis.service import KIND, AnalysisService

__all__ = ["KIND", "AnalysisService"]
