"""HTTP for FFmpeg's HLS demuxer, through the recorder's URL policy.

FFmpeg's HLS demuxer opens every playlist, variant, key and segment itself. Left to
its own protocols it would resolve each host on its own and follow what a remote
playlist names. :class:`HlsOpener` is given to PyAV as ``io_open``, so that every
one of those opens — the first playlist included — is an httpx request through
:func:`taperoom.recorder.icy.open_checked`: ``http``/``https`` only, every address
checked, redirects checked, connections only to checked addresses.

AES-128 segments (RFC 8216 section 4.3.2.4, ``#EXT-X-KEY:METHOD=AES-128``) reach
the opener as ``crypto+<url>`` with the key and IV in hex, as FFmpeg's ``crypto``
protocol would get them; the opener decrypts them (AES-128-CBC with PKCS#7
padding, RFC 8216 section 5.2) with the ``cryptography`` package. Byte-range
segments (``#EXT-X-BYTERANGE``) arrive as the ``offset``/``end_offset`` options and
become an HTTP ``Range`` request (RFC 9110 section 14.2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from taperoom.recorder.icy import hls_uris, http_client, open_checked
from taperoom.recorder.urlpolicy import HLS_SCHEMES, UrlPolicy, UrlRefused

#: ``AVIO_FLAG_WRITE`` of libavformat's ``avio.h``.
AVIO_FLAG_WRITE = 2
#: AES block size and key size of HLS AES-128 (bytes).
_AES_BYTES = 16


def check_hls_playlist(text: str, base_url: str, policy: UrlPolicy) -> None:
    """Refuse an HLS playlist that names any URL outside `policy`'s HLS schemes.

    Parameters
    ----------
    text : str
        The playlist.
    base_url : str
        Its URL (relative entries are resolved against it).
    policy : UrlPolicy

    Raises
    ------
    UrlRefused
        An entry (segment, variant, key, map, rendition) is not ``http``/``https``.
    """
    for uri in hls_uris(text, base_url):
        policy.normalize(uri, schemes=HLS_SCHEMES, what="HLS playlist entry")


class _Body:
    """A file-like ``read()`` over one streamed HTTP response, for PyAV; a read that
    fails is reported to `on_error` (see :attr:`HlsOpener.failed`)."""

    def __init__(self, resp: httpx.Response, *, skip: int, limit: int | None,
                 key: bytes | None, iv: bytes | None,
                 on_error: Callable[[Exception], None]) -> None:
        self._on_error = on_error
        self._resp = resp
        self._chunks: Iterator[bytes] = resp.iter_bytes()
        self._skip = skip
        self._left = limit
        self._buf = bytearray()
        self._eof = False
        self._decrypt: Any = None
        self._unpad: Any = None
        if key is not None and iv is not None:
            from cryptography.hazmat.primitives import padding
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

            self._decrypt = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
            self._unpad = padding.PKCS7(128).unpadder()

    def _take(self, chunk: bytes) -> bytes:
        if self._skip:
            cut = min(self._skip, len(chunk))
            chunk, self._skip = chunk[cut:], self._skip - cut
        if self._left is not None:
            chunk = chunk[:self._left]
            self._left -= len(chunk)
        return chunk

    def read(self, n: int) -> bytes:
        try:
            return self._read(n)
        except Exception as exc:
            self._eof = True
            self._buf.clear()
            self._on_error(exc)
            raise

    def _read(self, n: int) -> bytes:
        while not self._buf and not self._eof:
            chunk = next(self._chunks, None)
            if chunk is None or self._left == 0:
                self._eof = True
                if self._decrypt is not None:
                    self._buf += self._unpad.update(self._decrypt.finalize())
                    self._buf += self._unpad.finalize()
                break
            data = self._take(chunk)
            if self._decrypt is not None:
                data = self._unpad.update(self._decrypt.update(data))
            self._buf += data
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def close(self) -> None:
        self._resp.close()


class _Empty:
    """A body with nothing in it: what an open after a failed one reads (see HlsOpener)."""

    def read(self, n: int) -> bytes:
        return b""

    def close(self) -> None:
        return None


class HlsOpener:
    """PyAV ``io_open`` callable: every URL the HLS demuxer opens, through the policy.

    Parameters
    ----------
    policy : UrlPolicy
    user_agent : str
    connect_timeout, read_timeout : float
        Seconds, as for :func:`taperoom.recorder.icy.http_client`.
    on_refused : callable, optional
        Called with the first refusal, from the thread that runs FFmpeg, as soon as
        it happens (FFmpeg itself may wait a target duration before it gives up).

    Attributes
    ----------
    refused : UrlRefused or None
        The first refusal. FFmpeg treats a segment it cannot open as a loss and
        goes on; the caller raises this once the demuxer stops.
    failed : Exception or None
        The first open or read that failed, refused or not. PyAV holds it and
        raises it when FFmpeg next returns, which ends the session. Every later open
        gets an empty body instead of an exception: PyAV keeps one pending exception
        per thread, and a second one would replace the first (the real cause) and
        print its traceback to standard error ("PyAV library exception being
        dropped"), as happened whenever two segments in a row could not be fetched.
    """

    def __init__(self, policy: UrlPolicy, *, user_agent: str, connect_timeout: float,
                 read_timeout: float,
                 on_refused: Callable[[UrlRefused], None] | None = None) -> None:
        self.policy = policy
        self.refused: UrlRefused | None = None
        self.failed: Exception | None = None
        self._on_refused = on_refused
        self._client = http_client(user_agent=user_agent, connect_timeout=connect_timeout,
                                   read_timeout=read_timeout, policy=policy)

    def __call__(self, url: str, flags: int, options: dict[str, Any]) -> _Body | _Empty:
        """Open `url` for reading (PyAV's ``io_open(url, flags, options)``).

        Returns
        -------
        file-like
            The response body; an empty one once an open or a read has failed (see
            :attr:`failed`).

        Raises
        ------
        UrlRefused
            A scheme or address outside the policy, or a write.
        OSError
            An HTTP error status, or a malformed AES key or IV.
        """
        if self.failed is not None:
            return _Empty()
        try:
            return self._open(url, flags, options)
        except UrlRefused as exc:
            self.refused = exc
            self._note_failure(exc)
            if self._on_refused is not None:
                self._on_refused(exc)
            raise
        except Exception as exc:
            self._note_failure(exc)
            raise

    def _open(self, url: str, flags: int, options: dict[str, Any]) -> _Body:
        if flags & AVIO_FLAG_WRITE:
            raise UrlRefused("HLS: opening a URL for writing is not allowed")
        key = iv = None
        if url.startswith(("crypto+", "crypto:")):
            url = url[len("crypto+"):]
            try:
                key = bytes.fromhex(str(options.get("key", "")))
                iv = bytes.fromhex(str(options.get("iv", "")))
            except ValueError as exc:
                raise OSError("HLS: malformed AES-128 key or IV") from exc
            if len(key) != _AES_BYTES or len(iv) != _AES_BYTES:
                raise OSError("HLS: AES-128 needs a 16-byte key and IV")
        start = int(options.get("offset") or 0)
        end = int(options.get("end_offset") or 0)  # exclusive; 0: to the end
        headers = {"Accept-Encoding": "identity"}
        if start or end:
            headers["Range"] = f"bytes={start}-{end - 1 if end else ''}"
        resp = open_checked(self._client, url, policy=self.policy, headers=headers,
                            what="HLS playlist entry", schemes=HLS_SCHEMES)
        if resp.status_code >= 400:
            resp.close()
            raise OSError(f"HLS: http {resp.status_code} for a playlist entry")
        ranged = resp.status_code == 206
        return _Body(resp, skip=0 if ranged else start,
                     limit=(end - start) if end else None, key=key, iv=iv,
                     on_error=self._note_failure)

    def _note_failure(self, exc: Exception) -> None:
        if self.failed is None:
            self.failed = exc

    def close(self) -> None:
        """Close the HTTP client (the demuxer closes its open files itself)."""
        with contextlib.suppress(Exception):
            self._client.close()
