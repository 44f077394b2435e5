"""Failed sign-in limits per client address and per user name (``limits``, moving window).

Only failures count. Once a key (an address, or a user name) has used up a
limit, every further attempt with it is refused with 429 until the window
moves on, even with the right password; so neither guessing many passwords
for one account from many addresses, nor many accounts from one address,
gets far. The counters live in the server process's memory.
"""

from __future__ import annotations

import time

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from taperoom.errors import RateLimited


class LoginThrottle:
    """Counts failed sign-ins and refuses keys that failed too often.

    Parameters
    ----------
    spec : str
        Limits in ``limits`` notation, ``;``-separated (``"5/minute;30/hour"``),
        applied to each key on its own; ``""``, ``"0"`` or ``"off"`` disables them.

    Raises
    ------
    ValueError
        `spec` is not valid ``limits`` notation.
    """

    def __init__(self, spec: str) -> None:
        spec = spec.strip()
        self.items = [] if spec.lower() in ("", "0", "off", "none") else parse_many(spec)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, **keys: str) -> None:
        """Refuse when one of `keys` (``address=...``, ``user=...``) used up a limit.

        Raises
        ------
        RateLimited
            With the seconds until the oldest counted failure leaves the window.
        """
        for kind, key in keys.items():
            for item in self.items:
                if not self.limiter.test(item, "sign-in", kind, key):
                    reset_at, _ = self.limiter.get_window_stats(item, "sign-in", kind, key)
                    raise RateLimited(f"Too many failed sign-ins: limit {item}; try again "
                                      "later", retry_after=max(1.0, reset_at - time.time()))

    def failed(self, **keys: str) -> None:
        """Count one failure for each of `keys`."""
        for kind, key in keys.items():
            for item in self.items:
                self.limiter.hit(item, "sign-in", kind, key)
