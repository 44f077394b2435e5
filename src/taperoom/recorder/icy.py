"""The ICY (SHOUTcast/Icecast) parts of internet radio that HTTP libraries don't cover.

* **Interleaved metadata.** A client that sends ``Icy-MetaData: 1`` gets an
  ``icy-metaint: N`` response header, and then after every N bytes of audio one
  length byte L followed by ``16 * L`` bytes of metadata (NUL padded), usually
  ``StreamTitle='Artist - Title';StreamUrl='...';``. :class:`IcyDemuxer` splits
  the byte stream into audio and :class:`IcyMetadata` events, across any chunk
  boundaries; :func:`parse_icy_metadata` reads the ``key='value';`` pairs (values
  may contain quotes; a value ends at ``';`` followed by the next key or the end).
  Text is UTF-8 (Icecast 2.4 and later) with a Latin-1 fallback (SHOUTcast 1).
* **The SHOUTcast 1 status line.** SHOUTcast 1 servers answer ``ICY 200 OK``
  instead of ``HTTP/1.0 200 OK``, which HTTP parsers (h11, used by httpx) reject.
  :func:`http_client` returns an :class:`httpx.Client` whose connections rewrite
  that one status line to ``HTTP/1.0`` before h11 sees it; everything else is
  plain httpx.
* **Station playlists.** Stations publish ``.pls``, ``.m3u`` and ``.xspf`` files
  that name the stream URL; :func:`parse_playlist` reads them. HLS playlists
  (``#EXT-X-...``) are recognised by :func:`is_hls_playlist` and left to FFmpeg;
  :func:`hls_uris` lists every URL one names.
* **Checked requests.** :func:`http_client` connects only to addresses the
  :class:`~taperoom.recorder.urlpolicy.UrlPolicy` allows, and :func:`open_checked`
  follows redirects itself, putting every ``Location`` through the same policy.

References: the SHOUTcast 1 / Icecast 2 metadata protocol as documented by the
Icecast project ("Icecast metadata protocol", icecast.org docs) and implemented in
FFmpeg's ``libavformat/http.c`` (``icy_metaint`` handling); the PLS format
(Winamp; ``[playlist]``, ``FileN=``); M3U (RFC 8216 section 4 for the extended
HLS form); XSPF (xspf.org, "XML Shareable Playlist Format" version 1, ``<location>``
of each ``<track>``).
"""

from __future__ import annotations

import functools
import re
import ssl
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from taperoom.recorder.urlpolicy import HTTP_SCHEMES, CheckedBackend, UrlPolicy

#: Redirects followed for one request (httpx's default limit is 20; browsers use 20).
MAX_REDIRECTS = 10

_FIELD = re.compile(r"(\w+)='(.*?)';(?=\s*\w+='|\s*$)", re.DOTALL)


def parse_icy_metadata(block: bytes) -> dict[str, str]:
    """Parse one ICY metadata block into its ``key='value';`` fields.

    Parameters
    ----------
    block : bytes
        The metadata bytes (without the length byte), NUL padding allowed.

    Returns
    -------
    dict of str to str
        Keys as sent (``StreamTitle``, ``StreamUrl``, ...); empty when the block
        holds no field.
    """
    raw = block.rstrip(b"\x00")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return {k: v for k, v in _FIELD.findall(text.strip())}


@dataclass(frozen=True)
class IcyMetadata:
    """A metadata block found in an ICY stream.

    Attributes
    ----------
    fields : dict of str to str
        The parsed ``key='value'`` pairs.
    audio_offset : int
        Audio bytes of this connection that came before the block.
    """

    fields: dict[str, str]
    audio_offset: int

    @property
    def title(self) -> str | None:
        """The ``StreamTitle`` value, stripped; None when absent or empty."""
        value = self.fields.get("StreamTitle", "").strip()
        return value or None


@dataclass
class IcyDemuxer:
    """Split an ICY byte stream into audio bytes and metadata blocks.

    Parameters
    ----------
    metaint : int or None
        The ``icy-metaint`` header value: audio bytes between metadata blocks.
        None or 0: the stream has no interleaved metadata (all bytes are audio).

    Attributes
    ----------
    audio_bytes : int
        Audio bytes returned so far.
    """

    metaint: int | None
    audio_bytes: int = 0
    _left: int = field(default=0, init=False)  # audio bytes before the next block
    _meta_len: int | None = field(default=None, init=False)  # bytes of the block, once read
    _meta: bytearray = field(default_factory=bytearray, init=False)

    def __post_init__(self) -> None:
        self._left = self.metaint or 0

    def feed(self, data: bytes) -> list[bytes | IcyMetadata]:
        """Consume a chunk; return audio byte runs and metadata blocks in stream order.

        Parameters
        ----------
        data : bytes
            The next bytes of the HTTP body.

        Returns
        -------
        list of bytes or IcyMetadata
            Empty metadata blocks (length byte 0) are not reported.
        """
        if not self.metaint:
            self.audio_bytes += len(data)
            return [data] if data else []
        out: list[bytes | IcyMetadata] = []
        view = memoryview(data)
        pos, n = 0, len(view)
        while pos < n:
            if self._left:
                take = min(self._left, n - pos)
                out.append(bytes(view[pos:pos + take]))
                self.audio_bytes += take
                self._left -= take
                pos += take
                continue
            if self._meta_len is None:
                self._meta_len = view[pos] * 16
                pos += 1
            take = min(self._meta_len - len(self._meta), n - pos)
            self._meta += view[pos:pos + take]
            pos += take
            if len(self._meta) == self._meta_len:
                if self._meta_len:
                    out.append(IcyMetadata(parse_icy_metadata(bytes(self._meta)),
                                           self.audio_bytes))
                self._meta.clear()
                self._meta_len = None
                self._left = self.metaint
        return out


# -- SHOUTcast 1 status line ------------------------------------------------------------


class _IcyStatusStream(httpcore.NetworkStream):
    """A network stream whose first read turns ``ICY 200 OK`` into ``HTTP/1.0 200 OK``."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        self._first = True

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._inner.read(max_bytes, timeout)
        if self._first:
            while data and len(data) < 4 and b"ICY ".startswith(data):
                more = self._inner.read(max_bytes, timeout)
                if not more:
                    break
                data += more
            self._first = False
            if data.startswith(b"ICY "):
                data = b"HTTP/1.0 " + data[4:]
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _IcyStatusStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _IcyStatusBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        return _IcyStatusStream(self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address,
            socket_options=socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _IcyStatusStream(self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every connection (building one costs ~60 ms)."""
    return httpx.create_ssl_context()


def http_client(*, user_agent: str, connect_timeout: float, read_timeout: float,
                policy: UrlPolicy) -> httpx.Client:
    """An httpx client for radio streams that also accepts SHOUTcast 1 answers.

    Parameters
    ----------
    user_agent : str
        ``User-Agent`` header of every request.
    connect_timeout : float
        Seconds to establish a connection.
    read_timeout : float
        Seconds without any byte from the server before ``httpx.ReadTimeout``.
    policy : UrlPolicy
        Every connection resolves its host through
        :class:`~taperoom.recorder.urlpolicy.CheckedBackend`: all addresses are
        checked and only a checked address is connected to.

    Returns
    -------
    httpx.Client
        It does not follow redirects: use :func:`open_checked`, which checks each
        ``Location`` first. Environment proxies are honoured as usual (proxied
        connections do not get the SHOUTcast 1 rewrite; :func:`open_checked` checks
        their destination by name before sending).
    """
    transport = httpx.HTTPTransport(verify=_ssl_context())
    pool = getattr(transport, "_pool", None)
    # httpx offers no public hook for its network backend; the pool does.
    if isinstance(pool, httpcore.ConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = _IcyStatusBackend(CheckedBackend(pool._network_backend,
                                                                 policy))
    timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=connect_timeout,
                            pool=connect_timeout)
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False,
                        headers={"User-Agent": user_agent, "Icy-MetaData": "1",
                                 "Accept": "*/*"})


def open_checked(client: httpx.Client, url: str, *, policy: UrlPolicy,
                 headers: dict[str, str] | None = None, what: str = "stream URL",
                 schemes: frozenset[str] = HTTP_SCHEMES) -> httpx.Response:
    """``GET`` `url` as a stream, following redirects through `policy`.

    Each URL (the first and every redirect target) passes
    :meth:`UrlPolicy.check_url` (scheme, then every address of its host) before it
    is requested; the connection itself goes only to checked addresses (see
    :func:`http_client`).

    Parameters
    ----------
    client : httpx.Client
        From :func:`http_client`.
    url : str
    policy : UrlPolicy
    headers : dict, optional
        Extra request headers.
    what : str
        What the URL is, for error messages (``"playlist entry"`` ...).
    schemes : frozenset of str
        Schemes allowed for the URL and its redirects.

    Returns
    -------
    httpx.Response
        A streamed response (not a redirect); the caller closes it.

    Raises
    ------
    UrlRefused
        The URL or a redirect target is outside the policy.
    httpx.HTTPError
        Network errors, or more than :data:`MAX_REDIRECTS` redirects
        (``httpx.TooManyRedirects``).
    """
    for _ in range(MAX_REDIRECTS + 1):
        url = policy.check_url(url, schemes=schemes, what=what)
        resp = client.send(client.build_request("GET", url, headers=headers), stream=True)
        location = resp.headers.get("location") if resp.is_redirect else None
        if not location:
            return resp
        resp.close()
        url, what = urljoin(str(resp.url), location.strip()), "redirect"
    raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=None)


# -- station playlists --------------------------------------------------------------------

#: Content types of playlist files (not audio) that name the stream URL.
PLAYLIST_TYPES = frozenset({
    "audio/x-scpls", "application/pls+xml", "audio/scpls",
    "audio/x-mpegurl", "audio/mpegurl", "application/x-mpegurl",
    "application/vnd.apple.mpegurl", "application/vnd.apple.mpegurl.audio",
    "application/xspf+xml",
})
#: ``URI="..."`` attributes of HLS tags (``#EXT-X-KEY``, ``#EXT-X-MAP``, ``#EXT-X-MEDIA`` ...).
_HLS_URI = re.compile(r'URI="([^"]*)"')


def is_hls_playlist(text: str) -> bool:
    """True when an M3U text is an HLS playlist (it has ``#EXT-X-`` tags)."""
    return text.lstrip("\ufeff").startswith("#EXTM3U") and "#EXT-X-" in text


def parse_playlist(text: str, base_url: str) -> list[str]:
    """Stream URLs named by a PLS, XSPF or plain M3U playlist, in order.

    Parameters
    ----------
    text : str
        The playlist file.
    base_url : str
        URL the playlist came from; relative entries are resolved against it.

    Returns
    -------
    list of str
        Absolute URLs; empty when the text is neither (or an HLS playlist).
    """
    body = text.lstrip("\ufeff")
    if is_hls_playlist(body):
        return []
    urls: list[str] = []
    if body.lstrip().lower().startswith("[playlist]"):
        for line in body.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip().lower().startswith("file") and value.strip():
                urls.append(urljoin(base_url, value.strip()))
        return urls
    if body.lstrip().startswith("<"):
        return _xspf_locations(body, base_url)
    for line in body.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            urls.append(urljoin(base_url, line))
    return urls


def _xspf_locations(text: str, base_url: str) -> list[str]:
    """``<location>`` of each track of an XSPF playlist (empty when it is not XML).

    The body is at most a few hundred kilobytes (the caller caps it) and the
    stdlib parser runs on expat >= 2.4, which refuses entity-expansion bombs.
    """
    try:
        root = ElementTree.fromstring(text)
    except (ElementTree.ParseError, ValueError):
        return []
    return [urljoin(base_url, el.text.strip()) for el in root.iter()
            if isinstance(el.tag, str) and el.tag.rsplit("}", 1)[-1] == "location"
            and el.text and el.text.strip()]


def hls_uris(text: str, base_url: str) -> list[str]:
    """Every URL an HLS playlist names: variants, segments and ``URI="..."`` attributes.

    Parameters
    ----------
    text : str
        A master or media playlist (RFC 8216).
    base_url : str
        URL it came from; relative URIs are resolved against it.

    Returns
    -------
    list of str
        Absolute URLs (or whatever scheme the playlist wrote), in order.
    """
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            out.extend(urljoin(base_url, u) for u in _HLS_URI.findall(line))
        else:
            out.append(urljoin(base_url, line))
    return out


def hls_target_duration(text: str) -> float | None:
    """``#EXT-X-TARGETDURATION`` of an HLS media playlist in seconds, if present."""
    m = re.search(r"^#EXT-X-TARGETDURATION:\s*([0-9.]+)", text, re.MULTILINE)
    return float(m.group(1)) if m else None


def hls_best_variant(text: str, base_url: str) -> str | None:
    """URL of the highest-``BANDWIDTH`` variant of an HLS master playlist, if it is one.

    Parameters
    ----------
    text : str
        The playlist.
    base_url : str
        URL it came from (variants are usually relative).

    Returns
    -------
    str or None
        None for a media playlist (no ``#EXT-X-STREAM-INF``). Ties keep the first
        listed variant (RFC 8216 section 4.3.4.2).
    """
    best: tuple[int, str] | None = None
    lines = [ln.strip() for ln in text.splitlines()]
    for i, line in enumerate(lines):
        if not line.startswith("#EXT-X-STREAM-INF"):
            continue
        m = re.search(r"[:,]BANDWIDTH=(\d+)", line)
        bandwidth = int(m.group(1)) if m else 0
        uri = next((n for n in lines[i + 1:] if n and not n.startswith("#")), None)
        if uri is not None and (best is None or bandwidth > best[0]):
            best = (bandwidth, urljoin(base_url, uri))
    return best[1] if best else None
