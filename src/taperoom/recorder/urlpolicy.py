"""Which URLs and addresses the recorder may open: one policy for every hop of a stream.

A station URL is typed by a user, but everything after it — the entries of a
PLS/M3U/XSPF playlist, each HTTP redirect, each HLS variant, key and segment —
comes from whichever server answers. Every one of them goes through the same
:class:`UrlPolicy`:

Schemes
    ``http``, ``https``, ``icy`` (SHOUTcast's alias, read as ``http``), ``rtmp`` and
    ``rtmps``; HLS only over ``http``/``https``. Anything else (``file:``,
    ``gopher:``, ``ftp:``, ``data:``, ``concat:``, ``subfile:`` ...) is refused with
    :class:`UrlRefused` before anything is opened, so a refusal never depends on
    (and never reveals) whether a local path exists.
Destination addresses
    The host is resolved (``getaddrinfo``) and *every* address it resolves to is
    checked: loopback, private (RFC 1918, RFC 4193), link-local (including cloud
    metadata at 169.254.169.254), unspecified, multicast, shared (RFC 6598),
    reserved and other non-global ranges are refused unless the
    ``STREAM_ALLOWED_NETWORKS`` setting names them (IPv4-mapped IPv6 addresses
    are judged by their IPv4 address). The classification is the stdlib's
    :mod:`ipaddress` (``is_global`` and friends, from the IANA special-purpose
    address registries, RFC 6890).

DNS rebinding
    For HTTP (httpx), :class:`CheckedBackend` resolves the name once per
    connection, checks all the addresses, and connects to one of those checked
    addresses itself (TLS still verifies the certificate against the name), so a
    second DNS answer can never be used; redirects are new connections and are
    checked the same way. Requests sent through an HTTP proxy from the environment
    are checked by name just before they are sent (the proxy resolves the name
    itself). RTMP is opened by FFmpeg, which resolves the name again: the name is
    checked right before FFmpeg opens it, and a rebinding in between cannot be
    excluded there; RTMP starts with a binary handshake, which limits what such a
    connection can do to another service.

FFmpeg
    Every PyAV open of the capture sets FFmpeg's own ``protocol_whitelist``
    (:data:`FFMPEG_RTMP_PROTOCOLS`, :data:`FFMPEG_HLS_PROTOCOLS`,
    :data:`FFMPEG_NO_PROTOCOLS`), so nothing inside a container or playlist can open
    ``file:``, ``gopher:``, ``concat:``, ``data:`` or ``subfile:``; HLS reads every
    playlist, key and segment through :mod:`taperoom.recorder.hlsio`, which applies
    this policy to each of them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore

from taperoom.errors import InvalidInput

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: URL schemes a stream (or anything a stream leads to) may use.
ALLOWED_SCHEMES = frozenset({"http", "https", "icy", "rtmp", "rtmps"})
#: Schemes read over HTTP with httpx (``icy`` is rewritten to ``http`` first).
HTTP_SCHEMES = frozenset({"http", "https"})
#: Schemes of HLS playlists, keys and segments.
HLS_SCHEMES = HTTP_SCHEMES
#: Schemes opened by FFmpeg's own protocols.
RTMP_SCHEMES = frozenset({"rtmp", "rtmps"})
#: FFmpeg protocols an RTMP open needs: ``rtmps`` runs over ``tls``, both over ``tcp``.
FFMPEG_RTMP_PROTOCOLS = "rtmp,rtmps,tcp,tls"
#: FFmpeg protocols allowed on an HLS open. Every open of the HLS demuxer goes through
#: our ``io_open`` callback (which applies the policy); this list is what FFmpeg itself
#: would allow if anything bypassed it (``crypto`` wraps AES-128 segments).
FFMPEG_HLS_PROTOCOLS = "http,https,tls,tcp,crypto"
#: For containers read from bytes we already hold: nothing may be opened from inside.
#: FFmpeg matches the names of this list exactly, and no protocol has this name.
FFMPEG_NO_PROTOCOLS = "none"
#: Longest URL quoted in an error message.
_QUOTE_MAX = 200


class UrlRefused(InvalidInput):
    """A URL, or the address its host resolves to, is outside the stream policy (HTTP 400)."""


def parse_networks(value: str | Iterable[Any] | None) -> tuple[IPNetwork, ...]:
    """Networks of an allow-list: ``"192.168.1.0/24, 10.0.0.5 fd00::/8"``.

    Parameters
    ----------
    value : str or iterable
        Addresses or CIDR blocks separated by commas and/or white space (or an
        iterable of such items). A bare address is a /32 (/128) network; host bits
        in a block are ignored (``192.168.1.7/24`` is ``192.168.1.0/24``).

    Returns
    -------
    tuple of IPv4Network or IPv6Network

    Raises
    ------
    ValueError
        An item is neither an address nor a CIDR block (the message names it).
    """
    if value is None:
        return ()
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    out: list[IPNetwork] = []
    for item in items:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            out.append(item)
            continue
        try:
            out.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP address or CIDR network") from exc
    return tuple(out)


def _quote(url: str) -> str:
    return url if len(url) <= _QUOTE_MAX else url[:_QUOTE_MAX] + "..."


def refusal_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public destination, or None when it is one.

    Parameters
    ----------
    address : IPv4Address or IPv6Address
        IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``) are judged by their IPv4
        address.

    Returns
    -------
    str or None
        ``"loopback"``, ``"private"``, ``"link-local"``, ``"unspecified"``,
        ``"multicast"``, ``"reserved"`` or ``"non-public"`` (shared address space
        RFC 6598, documentation ranges ... everything :attr:`is_global` denies).
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for attr, name in (("is_loopback", "loopback"), ("is_unspecified", "unspecified"),
                       ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                       ("is_reserved", "reserved"), ("is_private", "private")):
        if getattr(address, attr):
            return name
    if not address.is_global:
        return "non-public"
    return None


@dataclass(frozen=True)
class UrlPolicy:
    """The scheme and destination rules of the recorder (see the module docstring).

    Parameters
    ----------
    allowed_networks : tuple of IPv4Network or IPv6Network
        Non-public networks that are allowed anyway (``STREAM_ALLOWED_NETWORKS``):
        a LAN Icecast server, a stream on the same machine. Public addresses are
        always allowed.
    """

    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_networks(cls, value: str | Iterable[Any] | None) -> UrlPolicy:
        """A policy allowing the networks of `value` (see :func:`parse_networks`)."""
        return cls(parse_networks(value))

    # -- schemes ----------------------------------------------------------------------

    def normalize(self, url: str, *, schemes: frozenset[str] = ALLOWED_SCHEMES,
                  what: str = "stream URL") -> str:
        """The URL to open: stripped, ``icy://`` rewritten to ``http://``.

        Parameters
        ----------
        url : str
        schemes : frozenset of str
            Schemes accepted here (:data:`HLS_SCHEMES` inside an HLS playlist).
        what : str
            What the URL is, for the error message (``"playlist entry"`` ...).

        Raises
        ------
        UrlRefused
            A scheme outside `schemes`, or no host. The message names the scheme,
            not the rest of the URL (whose path might be a local file name).
        """
        url = url.strip()
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "icy" and "icy" in schemes:
            url = "http" + url[len(scheme):]
            parts, scheme = urlsplit(url), "http"
        if scheme not in schemes:
            allowed = ", ".join(sorted(schemes))
            raise UrlRefused(f"{what}: the URL scheme {scheme or '(none)'!r} is not allowed "
                             f"(allowed: {allowed})")
        try:
            host = parts.hostname
        except ValueError:  # a malformed [IPv6] literal
            host = None
        if not host:
            raise UrlRefused(f"{what}: a URL without a host is not allowed: {_quote(url)}")
        return url

    def first_allowed(self, urls: list[str], *, what: str = "playlist entry") -> str:
        """The first of `urls` whose scheme is allowed, normalized (a playlist's pick).

        Raises
        ------
        UrlRefused
            None of them is allowed (the refusal of the first one), or `urls` is empty.
        """
        first: UrlRefused | None = None
        for url in urls:
            try:
                return self.normalize(url, what=what)
            except UrlRefused as exc:
                first = first or exc
        raise first or UrlRefused(f"{what}: no URL given")

    # -- addresses --------------------------------------------------------------------

    def check_address(self, address: str | IPAddress, host: str | None = None) -> None:
        """Refuse `address` unless it is public or inside an allowed network.

        Parameters
        ----------
        address : str or IPv4Address or IPv6Address
        host : str, optional
            The name that resolved to it (named in the message).

        Raises
        ------
        UrlRefused
            With the address, why it is not public and the setting that allows it.
        """
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if any(ip in net or (mapped is not None and mapped in net)
               for net in self.allowed_networks):
            return
        reason = refusal_reason(ip)
        if reason is None:
            return
        article = "an" if reason[0] in "aeiou" else "a"
        if host and host != str(ip):
            what = f"{host} resolves to {ip}, {article} {reason} address"
        else:
            what = f"{ip} is {article} {reason} address"
        raise UrlRefused(f"{what}, which is not allowed unless STREAM_ALLOWED_NETWORKS "
                         "includes it")

    def resolve(self, host: str, port: int) -> list[str]:
        """Resolve `host` and check every address it resolves to.

        Parameters
        ----------
        host : str
            A name or an address literal (IPv6 without brackets).
        port : int

        Returns
        -------
        list of str
            The addresses, in the resolver's order, without repeats.

        Raises
        ------
        UrlRefused
            Any of the addresses is refused (a name with one private address among
            public ones is refused as a whole).
        OSError
            The name does not resolve (``socket.gaierror``).
        """
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses: list[str] = []
        for info in infos:
            addr = str(info[4][0]).split("%")[0]  # drop an IPv6 zone index
            if addr not in addresses:
                addresses.append(addr)
        for addr in addresses:
            self.check_address(addr, host)
        return addresses

    def check_url(self, url: str, *, schemes: frozenset[str] = ALLOWED_SCHEMES,
                  what: str = "stream URL") -> str:
        """:meth:`normalize` `url`, then resolve its host and check every address.

        A name that does not resolve passes (opening it will fail with the
        resolver's own error).

        Returns
        -------
        str
            The normalized URL.

        Raises
        ------
        UrlRefused
        """
        url = self.normalize(url, schemes=schemes, what=what)
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port
        except ValueError as exc:
            raise UrlRefused(f"{what}: bad port in {_quote(url)}") from exc
        default = {"http": 80, "https": 443, "rtmp": 1935, "rtmps": 443}
        with contextlib.suppress(OSError):
            self.resolve(host, port or default.get(parts.scheme.lower(), 80))
        return url


class CheckedBackend(httpcore.NetworkBackend):
    """An httpcore network backend that connects only to checked addresses.

    Each ``connect_tcp`` resolves the host once with :meth:`UrlPolicy.resolve`
    (every address checked) and connects to those addresses in order, so the
    address connected to is always one that was checked (no DNS rebinding window).

    Parameters
    ----------
    inner : httpcore.NetworkBackend
        The backend that opens the sockets (httpcore's ``SyncBackend``).
    policy : UrlPolicy
    """

    def __init__(self, inner: httpcore.NetworkBackend, policy: UrlPolicy) -> None:
        self._inner = inner
        self._policy = policy

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        """Resolve, check, and connect to the first reachable checked address."""
        try:
            addresses = self._policy.resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        error: Exception | None = None
        for addr in addresses:
            try:
                return self._inner.connect_tcp(addr, port, timeout=timeout,
                                               local_address=local_address,
                                               socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None  # getaddrinfo never answers an empty list
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        """Unix sockets are local: never a stream destination."""
        raise UrlRefused("unix sockets are not allowed as stream destinations")

    def sleep(self, seconds: float) -> None:
        """Delegated to the inner backend."""
        self._inner.sleep(seconds)
