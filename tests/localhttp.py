"""One small real HTTP peer for tests: the standard library's ``http.server`` on
127.0.0.1 (a free port), serving from a daemon thread.

The test peers (the analysis-server tests' callback receiver and fake server, the
library's stand-in analysis server) are built on :class:`LocalHTTP`; each gives it
the function that answers a request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as the peer saw it.

    Attributes
    ----------
    method, path : str
        The request line's method and path (with its query).
    headers : dict
        The request's headers, names in lower case.
    body : bytes
        The request body (empty without ``Content-Length``).
    answered : int
        The status it was answered with (0 while it is being answered).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


#: The answer to one request: (status, body bytes, content type).
Answer = tuple[int, bytes, str]


class LocalHTTP:
    """An HTTP/1.1 server on ``127.0.0.1`` answering every GET, POST and DELETE
    with ``answer(request)``.

    Parameters
    ----------
    answer : callable(Received) -> (status, body, content type)
        Called in the server's request thread.
    sent : callable(Received), optional
        Called after the answer is written (the request's ``answered`` is set).
    close : bool
        Close each connection after its answer (``Connection: close``), so a stopped
        peer is really gone; else connections are kept alive.
    port : int
        The port to listen on (default 0: a free one), e.g. that of a peer that was
        stopped and comes back.
    """

    def __init__(self, answer: Callable[[Received], Answer], *,
                 sent: Callable[[Received], None] | None = None, close: bool = False,
                 port: int = 0) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                got = Received(self.command, self.path,
                               {k.lower(): v for k, v in self.headers.items()}, body)
                status, payload, kind = answer(got)
                got.answered = status
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(payload)
                if sent is not None:
                    sent(got)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        """Serve from a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.server.shutdown()
        self.server.server_close()
