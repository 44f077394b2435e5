"""Listening addresses and the ``Host`` names an app answers (no DNS rebinding).

A page on a hostile site can make its own name resolve to 127.0.0.1 (DNS
rebinding) and then talk to a local server as a same-origin page; the only
sign left is the ``Host`` header, which still names the hostile site. So the
library and the recorder answer only the names they are known by: loopback
names and addresses, the address they listen on, and the names of the
``ALLOWED_HOSTS`` setting; when they listen on every interface (``0.0.0.0`` or
``::``) also the machine's own addresses (those of its interfaces when the app
starts) and its host name. Anything else is 400 (Starlette's
``TrustedHostMiddleware``).
"""

from __future__ import annotations

import ipaddress
import socket

from fastapi import FastAPI
from starlette.middleware.trustedhost import TrustedHostMiddleware

#: Host names every app answers: loopback names (RFC 6761 §6.3 keeps ``localhost``
#: and its sub-domains on loopback) and addresses.
LOOPBACK_HOSTS = ("localhost", "*.localhost", "127.0.0.1", "[::1]")
#: Listening addresses that mean every interface.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback(host: str) -> bool:
    """True when `host` (a listening or peer address, or a name) is this machine only.

    Parameters
    ----------
    host : str
        An IPv4/IPv6 address (brackets, an IPv4-mapped form and a ``%zone`` are
        accepted), ``localhost`` or a ``*.localhost`` name, or any other name,
        which is resolved: it counts as loopback when every address it resolves
        to is.

    Returns
    -------
    bool
        False for a wildcard address (``0.0.0.0``, ``::``, empty) and for a name
        that does not resolve.
    """
    name = host.strip().rstrip(".").lower()
    if name.strip("[]") in WILDCARD_HOSTS:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    ip = _ip(name)
    if ip is not None:
        return ip.is_loopback
    try:
        infos = socket.getaddrinfo(name, None)
    except (OSError, UnicodeError):
        return False
    found = [_ip(str(info[4][0])) for info in infos]
    return bool(found) and all(ip is not None and ip.is_loopback for ip in found)


def is_wildcard(host: str) -> bool:
    """True when listening on `host` means every interface (``0.0.0.0``, ``::``, empty)."""
    return host.strip() in WILDCARD_HOSTS


def host_name_of(address: str) -> str:
    """How `address` appears in a ``Host`` header: IPv6 in brackets, no ``%zone``,
    names in lower case."""
    ip = _ip(address)
    if ip is None:
        return address.strip().rstrip(".").lower()
    return f"[{ip}]" if ip.version == 6 else str(ip)


def interface_addresses() -> list[str]:
    """The IPv4 and IPv6 addresses of this machine's interfaces (psutil), as Host names."""
    import psutil

    names = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                names.append(host_name_of(a.address))
    return names


def machine_names() -> list[str]:
    """This machine's host name and, for a short one, its mDNS name (``NAME.local``)."""
    name = socket.gethostname().strip().rstrip(".").lower()
    if not name:
        return []
    return [name] if "." in name else [name, f"{name}.local"]


def parse_names(value: str) -> list[str]:
    """Split a comma-separated setting (``ALLOWED_HOSTS``) into lower-case names."""
    return [n.strip().lower() for n in value.split(",") if n.strip()]


def allowed_hosts(listen_host: str, extra: str = "") -> list[str]:
    """The ``Host`` names an app listening on `listen_host` answers.

    Parameters
    ----------
    listen_host : str
        The address or name the app listens on (``HOST``).
    extra : str
        ``ALLOWED_HOSTS``: comma-separated names, ``*.example.org`` patterns,
        or ``*`` for any name (no DNS rebinding defence).

    Returns
    -------
    list of str
        Patterns for ``TrustedHostMiddleware`` (without ports): the loopback
        names, the listening address, the interface addresses and host name
        when listening on every interface or on an address beyond loopback,
        then `extra`.
    """
    names = list(LOOPBACK_HOSTS)
    if is_wildcard(listen_host):
        names += interface_addresses()
    else:
        names.append(host_name_of(listen_host))
    if not is_loopback(listen_host):
        names += machine_names()
    names += parse_names(extra)
    return list(dict.fromkeys(names))


def install_host_check(app: FastAPI, listen_host: str, extra: str = "") -> list[str]:
    """Answer 400 to requests and WebSocket handshakes naming any other ``Host``.

    Parameters
    ----------
    app : FastAPI
        The application (the middleware is added outermost of those added so far).
    listen_host, extra : str
        See :func:`allowed_hosts`.

    Returns
    -------
    list of str
        The allowed names.
    """
    names = allowed_hosts(listen_host, extra)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=names, www_redirect=False)
    return names
