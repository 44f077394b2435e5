"""Per-client request rate limits, on the ``limits`` library (moving window)."""

from __future__ import annotations

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from taperoom.errors import RateLimited


class ClientRateLimit:
    """Limit how often one client address may call a route.

    The counters live in the memory of each worker process: with ``--workers N``
    a client may make up to N times the limit in the worst case.

    Parameters
    ----------
    spec : str
        Limits in ``limits`` notation, ``;``-separated (``"20/second;600/minute"``).
        An empty string, ``"0"`` or ``"off"`` disables the limit.
    scope : str
        Name of the limited action, used in keys and messages.

    Raises
    ------
    ValueError
        `spec` is not valid ``limits`` notation.
    """

    def __init__(self, spec: str, scope: str) -> None:
        spec = spec.strip()
        self.items = [] if spec.lower() in ("", "0", "off", "none") else parse_many(spec)
        self.scope = scope
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, client: str) -> None:
        """Count one call by `client`.

        Raises
        ------
        RateLimited
            `client` went over one of the limits.
        """
        for item in self.items:
            if not self.limiter.hit(item, self.scope, client):
                reset_at, _ = self.limiter.get_window_stats(item, self.scope, client)
                import time

                raise RateLimited(f"Too many {self.scope} requests: limit {item}",
                                  retry_after=max(1.0, reset_at - time.time()))
