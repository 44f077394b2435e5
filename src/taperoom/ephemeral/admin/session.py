"""Signed session cookies of the curator's page, their CSRF tokens and sign-in limits.

A curator signs in with ``ADMIN_TOKEN`` (compared in constant time). The session
cookie is an itsdangerous ``URLSafeTimedSerializer`` payload -- a random session
id and a random CSRF token -- signed with a key derived from ``ADMIN_TOKEN`` (so
every worker process accepts it and changing the token ends every session),
sent ``HttpOnly``, ``SameSite=Strict``, ``Path=/admin`` and, over HTTPS,
``Secure``; it expires after ``ADMIN_SESSION_MINUTES`` (its signed time stamp is
checked, whatever the browser keeps). Signing out revokes the session id: an
empty file ``METADATA_DIR/.admin/revoked/<id>`` that every worker process sees,
removed once the session would have expired anyway.

Cookie-authenticated changes carry the session's CSRF token in ``X-CSRF-Token``
(or a ``csrf_token`` form field), the synchronizer token pattern of the OWASP
CSRF cheat sheet. Failed sign-ins are counted per client address with
``limits`` (moving window, ``ADMIN_LOGIN_RATE_LIMIT``); a client over the limit
is refused (429) until the window moves on, even with the right token.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from taperoom.errors import RateLimited

log = logging.getLogger(__name__)

#: Name of the session cookie (apps on one host share cookies across ports: own name).
SESSION_COOKIE = "taperoom_ephemeral_admin"
#: Name of the sign-in form's double-submit CSRF cookie (there is no session yet).
FORM_COOKIE = "taperoom_ephemeral_admin_login"
#: Path of both cookies.
COOKIE_PATH = "/admin"
#: Header carrying the CSRF token of cookie-authenticated changes.
CSRF_HEADER = "x-csrf-token"
_SALT = "taperoom.ephemeral.admin.session"


def same_secret(sent: str, expected: str) -> bool:
    """Constant-time comparison (``hmac.compare_digest``) of two secrets; False when
    either is empty."""
    return bool(sent) and bool(expected) and hmac.compare_digest(
        sent.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class AdminSession:
    """One signed-in curator.

    Attributes
    ----------
    sid : str
        Random session id (revoked on sign-out).
    csrf : str
        The session's CSRF token.
    """

    sid: str
    csrf: str


class AdminSessions:
    """Issues, reads and revokes the curator's session cookies.

    Parameters
    ----------
    token : str
        ``ADMIN_TOKEN`` (not empty).
    lifetime_seconds : float
        ``ADMIN_SESSION_MINUTES`` in seconds.
    revoked_dir : Path
        Folder of revoked session ids (shared by the worker processes).
    login_limit : str
        ``ADMIN_LOGIN_RATE_LIMIT``: failed sign-ins per address, ``limits`` notation,
        ``;``-separated; ``""``, ``"0"`` or ``"off"`` disables it.

    Raises
    ------
    ValueError
        `token` is empty, or `login_limit` is not ``limits`` notation.
    """

    def __init__(self, token: str, *, lifetime_seconds: float, revoked_dir: Path,
                 login_limit: str) -> None:
        if not token:
            raise ValueError("the curator's page needs ADMIN_TOKEN")
        self._token = token
        self._serializer = URLSafeTimedSerializer(token, salt=_SALT)
        self.lifetime_seconds = lifetime_seconds
        self.revoked_dir = revoked_dir
        self.revoked_dir.mkdir(parents=True, exist_ok=True)
        spec = login_limit.strip()
        self._limits = [] if spec.lower() in ("", "0", "off", "none") else parse_many(spec)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    # -- the token -------------------------------------------------------

    def token_matches(self, given: str | None) -> bool:
        """True when `given` is ``ADMIN_TOKEN`` (constant-time comparison)."""
        return same_secret((given or "").strip(), self._token)

    def check_throttle(self, address: str) -> None:
        """Refuse a client address that used up its failed sign-ins.

        Raises
        ------
        RateLimited
            With the seconds until its oldest counted failure leaves the window.
        """
        for item in self._limits:
            if not self._limiter.test(item, "admin-sign-in", address):
                reset_at, _ = self._limiter.get_window_stats(item, "admin-sign-in", address)
                raise RateLimited(f"Too many failed sign-ins: limit {item}; try again later",
                                  retry_after=max(1.0, reset_at - time.time()))

    def failed(self, address: str) -> None:
        """Count one failed sign-in of `address`."""
        for item in self._limits:
            self._limiter.hit(item, "admin-sign-in", address)

    # -- sessions --------------------------------------------------------

    def open(self) -> tuple[str, AdminSession]:
        """A new session: (cookie value, session)."""
        session = AdminSession(sid=secrets.token_urlsafe(18), csrf=secrets.token_urlsafe(32))
        value = self._serializer.dumps({"sid": session.sid, "csrf": session.csrf})
        return value, session

    def read(self, cookie: str | None) -> AdminSession | None:
        """The live session a cookie value carries, or None (missing, forged, expired,
        revoked)."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=max(1, round(self.lifetime_seconds)))
        except (SignatureExpired, BadSignature):
            return None
        if not isinstance(data, dict):
            return None
        sid, csrf = data.get("sid"), data.get("csrf")
        if not isinstance(sid, str) or not isinstance(csrf, str) or not sid.replace(
                "-", "").replace("_", "").isalnum():
            return None
        if (self.revoked_dir / sid).exists():
            return None
        return AdminSession(sid=sid, csrf=csrf)

    def revoke(self, session: AdminSession) -> None:
        """End `session` in every worker process; forget revocations older than a lifetime."""
        (self.revoked_dir / session.sid).touch()
        limit = time.time() - self.lifetime_seconds - 60
        try:
            with os.scandir(self.revoked_dir) as entries:
                old = [e.path for e in entries if e.stat().st_mtime < limit]
        except OSError:
            return
        for path in old:
            with contextlib.suppress(OSError):
                os.unlink(path)

    @staticmethod
    def csrf_matches(session: AdminSession, sent: str | None) -> bool:
        """True when `sent` is the session's CSRF token (constant-time comparison)."""
        return same_secret(sent or "", session.csrf)
