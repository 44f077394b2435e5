"""When an app needs credentials, and when it must not start.

- No credentials set up (no user in the app's database, no ``API_TOKEN``) and
  listening on loopback only: the app is open, as the original clients expect
  (the DJ frontend, the audio engine and the dashboard on the same machine).
- Listening on any other address without credentials: the app refuses to start,
  unless ``TRUSTED_NETWORK=true`` says that every machine that can reach it may
  control it.
- Credentials set up: every route but the health and sign-in ones needs them,
  on loopback too (a reverse proxy on the same machine forwards the world).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from taperoom.errors import Misconfigured
from taperoom.web.hosts import is_loopback

#: Shortest ``API_TOKEN`` accepted (128 bits of a random hex or base64 token; RFC 6750 §5.2
#: asks that bearer tokens cannot be guessed).
MIN_TOKEN_LENGTH = 24


@dataclass(frozen=True)
class Access:
    """How one app treats requests.

    Attributes
    ----------
    app : str
        The app's name (``library``, ``recorder``).
    listen_host : str
        The address it listens on.
    required : bool
        Credentials are needed (some exist).
    trusted_network : bool
        ``TRUSTED_NETWORK``: no credentials needed beyond loopback.
    api_token : str
        ``API_TOKEN`` (empty: none); left out of the repr.
    """

    app: str
    listen_host: str
    required: bool
    trusted_network: bool
    api_token: str = field(default="", repr=False)

    @property
    def exposed(self) -> bool:
        """True when the app listens beyond loopback."""
        return not is_loopback(self.listen_host)


def decide_access(app: str, listen_host: str, *, api_token: str, has_users: bool,
                  trusted_network: bool) -> Access:
    """The access rule of an app about to listen on `listen_host`.

    Parameters
    ----------
    app : str
        ``library`` or ``recorder`` (named in messages and commands).
    listen_host : str
        ``HOST`` (``WEB_HOST`` for the recorder).
    api_token : str
        ``API_TOKEN``; empty for none.
    has_users : bool
        At least one user exists in the app's database.
    trusted_network : bool
        ``TRUSTED_NETWORK``.

    Raises
    ------
    Misconfigured
        Listening beyond loopback without credentials on an untrusted network,
        or an ``API_TOKEN`` shorter than :data:`MIN_TOKEN_LENGTH`.
    """
    token = api_token.strip()
    if token and len(token) < MIN_TOKEN_LENGTH:
        raise Misconfigured(f"API_TOKEN is too short: use at least {MIN_TOKEN_LENGTH} random "
                            "characters (e.g. `openssl rand -hex 32`)")
    required = bool(token) or has_users
    if not required and not trusted_network and not is_loopback(listen_host):
        raise Misconfigured(
            f"the {app} listens on {listen_host or 'every address'}, beyond this machine, "
            f"without credentials: create a user (`taperoom {app} user add NAME`) or set "
            "API_TOKEN, or set TRUSTED_NETWORK=true if everyone who can reach it may "
            "control it")
    return Access(app, listen_host, required, trusted_network, token)
