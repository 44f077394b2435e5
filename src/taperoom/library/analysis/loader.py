"""This process's analyzer, loaded on first use (numpy, scipy and essentia load only in a
process that analyses), and whether analysis can run here."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from taperoom.library.analysis.errors import AnalysisUnavailable

if TYPE_CHECKING:
    from taperoom.library.analysis.external import ExternalAnalysis

__all__ = ["Analyzer", "AnalyzerLoader"]

#: ``analyze_file(path, *, quick, bpm_range, progress)``
#: (:func:`taperoom.analysis.analyzer.analyze_file`).
Analyzer = Callable[..., Any]


def _load_analyzer() -> Analyzer:
    """:func:`taperoom.analysis.analyzer.analyze_file`."""
    module = importlib.import_module("taperoom.analysis.analyzer")
    fn: Analyzer = module.analyze_file
    return fn


class AnalyzerLoader:
    """The analysis function of this process, and the health of the analysis.

    Parameters
    ----------
    analyzer : callable, optional
        The analysis function; default :func:`taperoom.analysis.analyzer.analyze_file`,
        imported on first use.
    external : ExternalAnalysis, optional
        The external analysis server (``ANALYSIS_SERVER_URL``), whose health is then
        the analysis's.
    """

    def __init__(self, analyzer: Analyzer | None, external: ExternalAnalysis | None
                 ) -> None:
        self._analyzer = analyzer
        self.external = external

    def analyzer(self) -> Analyzer:
        """The analysis function.

        Raises
        ------
        AnalysisUnavailable
            The analyzer's modules cannot be loaded (e.g. essentia is missing).
        """
        if self._analyzer is None:
            try:
                self._analyzer = _load_analyzer()
            except Exception as exc:
                raise AnalysisUnavailable("Analyzer unavailable",
                                          f"the analyzer cannot be loaded: {exc}") from exc
        return self._analyzer

    def healthy(self) -> tuple[bool, str | None]:
        """(whether analysis can run, why not): the external server's health check, or
        whether this process's analyzer loads."""
        if self.external is not None:
            return self.external.healthy()
        try:
            self.analyzer()
        except AnalysisUnavailable as exc:
            return False, exc.message
        return True, None
