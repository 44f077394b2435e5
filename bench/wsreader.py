"""A WebSocket client that only reads: the subscribers of ``bench/livewear.py``.

One :class:`Reader` per connection, as an asyncio protocol (no task, no queue per
connection): it opens the connection as a browser does (RFC 6455 handshake,
offering ``permessage-deflate``), then parses the server's frames as they arrive
(RFC 6455 section 5.2; RFC 7692 for compressed messages), answers pings, and
hands each complete text message, with the wall clock taken when its bytes were
handed to the process, to a callback. It never sends anything but pongs and a
close, so it costs the machine far less than a general-purpose client, which
shares the cores with the server under test.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
import zlib
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
#: Ends every compressed message, removed by the sender (RFC 7692 section 7.2.1).
TAIL = b"\x00\x00\xff\xff"


def mask(payload: bytes, key: bytes) -> bytes:
    """`payload` XORed with the 4-byte masking `key` (RFC 6455 section 5.3)."""
    n = len(payload)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One masked frame from the client (payloads under 126 bytes: control frames)."""
    key = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + key + mask(payload, key)


class Reader(asyncio.Protocol):
    """One subscriber connection.

    Parameters
    ----------
    host, path : str
        The ``Host`` header and the request target.
    on_message : callable
        ``on_message(text, received_at)`` for each text message; `received_at` is
        ``time.time()`` when the bytes that completed it were read (s).
    """

    def __init__(self, host: str, path: str, on_message: Callable[[str, float], None]) -> None:
        self.host = host
        self.path = path
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._key = base64.b64encode(os.urandom(16))
        self._buf = b""
        self._handshaken = False
        self._inflate: zlib._Decompress | None = None
        self._reset_inflate = False
        self._parts: list[bytes] = []
        self._compressed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(
            b"GET " + self.path.encode() + b" HTTP/1.1\r\nHost: " + self.host.encode()
            + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
            + self._key + b"\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(ConnectionError(f"closed during the handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self._buf + data if self._buf else data
        if not self._handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._buf = buf
                return
            self._handshake(buf[:end].decode("latin-1"))
            buf = buf[end + 4:]
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if n - pos < head + length:
                break
            payload = buf[pos + head:pos + head + length]
            pos += head + length
            self._frame(b0, payload, now)
        self._buf = buf[pos:]

    def _handshake(self, head: str) -> None:
        lines = head.split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            self.open.set_exception(ConnectionError(f"handshake refused: {lines[0]}"))
            assert self.transport is not None
            self.transport.close()
            return
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(self._key + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise ConnectionError("bad Sec-WebSocket-Accept")
        ext = headers.get("sec-websocket-extensions", "")
        if ext.startswith("permessage-deflate"):
            self._inflate = zlib.decompressobj(wbits=-15)
            self._reset_inflate = "server_no_context_takeover" in ext
        self._handshaken = True
        self.open.set_result(None)

    def _frame(self, b0: int, payload: bytes, now: float) -> None:
        opcode = b0 & 0x0F
        if opcode >= 8:  # control frames: never fragmented nor compressed
            if opcode == 9 and self.transport is not None:
                self.transport.write(client_frame(10, payload))
            elif opcode == 8 and self.transport is not None:
                self.transport.write(client_frame(8, payload[:2]))
                self.transport.close()
            return
        if opcode != 0:
            self._compressed = bool(b0 & 0x40)
        self._parts.append(payload)
        if not b0 & 0x80:
            return
        data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts = []
        if self._compressed:
            assert self._inflate is not None
            data = self._inflate.decompress(data + TAIL)
            if self._reset_inflate:
                self._inflate = zlib.decompressobj(wbits=-15)
        self.on_message(data.decode(), now)

    def close(self) -> None:
        """Send a close frame and close the connection."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(8, struct.pack("!H", 1000)))
            self.transport.close()


async def connect(url: str, on_message: Callable[[str, float], None],
                  timeout: float = 60.0) -> Reader:
    """Open a :class:`Reader` on ``ws://host:port/path?query`` (the handshake completed).

    Raises
    ------
    ConnectionError
        The server refused the handshake or closed the connection.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    loop = asyncio.get_running_loop()
    _, reader = await loop.create_connection(
        lambda: Reader(f"{host}:{port}", path, on_message), host, port)
    await asyncio.wait_for(reader.open, timeout)
    return reader
