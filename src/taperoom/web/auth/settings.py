"""Settings of who may use an app, shared by the library and the recorder."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from taperoom.config import AppSettings
from taperoom.web.auth.throttle import LoginThrottle


class AccessSettings(AppSettings):
    """Origins, Host names and credentials of an app (environment names in capitals).

    Attributes
    ----------
    cors_origin : str
        ``CORS_ORIGIN``: origins allowed beside the loopback ones, comma-separated
        (``https://dj.example.org``); ``*`` allows every origin. Default: none.
    allowed_hosts : str
        ``ALLOWED_HOSTS``: Host names answered beside loopback names, the listening
        address and (listening beyond loopback) the machine's addresses and name;
        comma-separated, ``*.example.org`` patterns allowed, ``*`` for any.
    api_token : SecretStr
        ``API_TOKEN``: bearer token of programs (at least 24 characters).
    trusted_network : bool
        ``TRUSTED_NETWORK``: listen beyond loopback without credentials.
    login_rate_limit : str
        ``LOGIN_RATE_LIMIT``: failed sign-ins allowed per client address and per
        user name (``limits`` notation, ``;``-separated).
    session_days : float
        ``SESSION_DAYS``: how long a sign-in lasts.
    """

    cors_origin: str = ""
    allowed_hosts: str = ""
    api_token: SecretStr = SecretStr("")
    trusted_network: bool = False
    login_rate_limit: str = "5/minute;30/hour"
    session_days: float = Field(14.0, gt=0, le=366)

    @field_validator("login_rate_limit")
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        LoginThrottle(value)  # raises ValueError for bad notation
        return value
