"""The error of stems that cannot be had now."""

from __future__ import annotations

from taperoom.errors import Busy

__all__ = ["StemsUnavailable"]


class StemsUnavailable(Busy):
    """Stems cannot be made now: no external analysis server is configured
    (``ANALYSIS_SERVER_URL``), or it cannot be reached (HTTP 503).

    When the server is only unreachable, the request is kept and made again once
    the server answers its health check (:class:`~.service.StemsService`).
    """
