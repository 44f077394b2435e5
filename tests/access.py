"""Helpers of the access tests (origins, hosts, sign-in) of the library and the recorder."""

from __future__ import annotations

import base64
import os
import re
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import websockets
from websockets.exceptions import InvalidStatus

#: A site the user happens to visit.
EVIL = "http://evil.example"
#: Where the DJ frontend runs in development (a loopback origin, allowed by default).
FRONTEND = "http://localhost:5173"
PASSWORD = "correct horse battery staple"

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


async def ws_handshake(url: str, **kwargs: Any) -> int:
    """Open a WebSocket to `url`; the HTTP status of the handshake (101 when accepted).

    When accepted, the first frame must be the hub's ``connected`` event.
    """
    try:
        async with websockets.connect(url, open_timeout=10, **kwargs) as ws:
            first = await ws.recv()
            assert '"connected"' in str(first)
            return 101
    except InvalidStatus as exc:
        return int(exc.response.status_code)


def ws_handshake_raw(url: str, headers: dict[str, str]) -> int:
    """Send a WebSocket handshake to `url` (``http://host:port/path``) with exactly
    these extra headers (a ``Host`` of one's choice included) over a plain socket;
    the status code of the answer."""
    parts = urlsplit(url)
    lines = {"Host": parts.netloc, "Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
             "Sec-WebSocket-Version": "13", **headers}
    request = f"GET {parts.path or '/'} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in lines.items()) + "\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request.encode("latin-1"))
        status_line = sock.makefile("rb").readline().decode("latin-1")
    return int(status_line.split()[1])


def form_csrf(html: str) -> str:
    """The hidden ``csrf_token`` field of a page's form."""
    match = _CSRF_FIELD.search(html)
    assert match, "no csrf_token field in the page"
    return match.group(1)


def meta_csrf(html: str) -> str:
    """The ``<meta name="csrf-token">`` of a signed-in page."""
    match = _CSRF_META.search(html)
    assert match, "no csrf-token meta tag in the page"
    return match.group(1)


def sign_in(client: httpx.Client, name: str, password: str = PASSWORD,
            next_path: str = "") -> httpx.Response:
    """Open the login page and post its form (with its CSRF token) as a browser would."""
    page = client.get("/login" + (f"?next={next_path}" if next_path else ""))
    assert page.status_code == 200, page.text
    data = {"username": name, "password": password, "csrf_token": form_csrf(page.text)}
    if next_path:
        data["next"] = next_path
    return client.post("/login", data=data)


def set_cookie_attributes(resp: httpx.Response, name: str) -> set[str]:
    """Lower-case attribute names and ``samesite=...`` of the Set-Cookie header for `name`."""
    for header in resp.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            parts = [p.strip().lower() for p in header.split(";")[1:]]
            return {p if p.startswith("samesite") else p.split("=")[0] for p in parts}
    raise AssertionError(f"no Set-Cookie for {name}: {resp.headers.get_list('set-cookie')}")
