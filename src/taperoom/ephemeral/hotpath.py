"""``POST /degrade/<f>`` answered as plain ASGI, ahead of FastAPI's routing.

A real-time listener posts ``/degrade`` twice a second, so the CPU time of one
call bounds how many listeners a server holds. Through FastAPI's route
(dependency resolution, ``run_in_threadpool``, response rendering) a call cost
0.94 ms of server CPU, against 0.72 ms here, the wear itself included (one
worker, sequential calls, 2-core benchmark machine). This middleware reads and
parses the small body itself, runs the wear in a worker thread and writes the
answer as bytes. Status codes and JSON bodies are the contract's and the same
as the FastAPI route's (:mod:`taperoom.ephemeral.api.degrade`): the success body
is the route's :class:`~taperoom.ephemeral.schemas.DegradePublic`, errors come
from :mod:`taperoom.web.errors`. That route stays declared for the OpenAPI schema
and answers whatever this middleware does not take (other methods, mounts under
a ``root_path``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import Executor
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from taperoom.ephemeral.service import EphemeralService, parse_segment_index
from taperoom.errors import TaperoomError, TooLarge
from taperoom.web.errors import error_body, error_headers
from taperoom.web.ratelimit import ClientRateLimit

log = logging.getLogger(__name__)

PREFIX = "/degrade/"
#: Largest ``/degrade`` body read (bytes); ``{"segment_index": i}`` needs about 25.
MAX_BODY = 64 * 1024
_JSON = [(b"content-type", b"application/json")]


class DegradeFastPath:
    """ASGI middleware answering ``POST /degrade/<filename>`` itself.

    Parameters
    ----------
    app : ASGI app
        The application that answers every other request.
    service : EphemeralService
        Does the wear.
    limit : ClientRateLimit
        ``DEGRADE_RATE_LIMIT``, per client address.
    executor : Executor
        Worker threads for the wear (blocking file I/O and ``fdatasync``); owned
        by the caller.
    """

    def __init__(self, app: ASGIApp, *, service: EphemeralService, limit: ClientRateLimit,
                 executor: Executor) -> None:
        self.app = app
        self.service = service
        self.limit = limit
        self.executor = executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path")
                or not scope["path"].startswith(PREFIX)):
            await self.app(scope, receive, send)
            return
        filename = scope["path"][len(PREFIX):]
        if not filename or "/" in filename:  # not the route's {filename}
            await self.app(scope, receive, send)
            return
        body = await self._body(receive)
        if body is None:  # the client went away
            return
        status, data, headers = await self._answer(scope, filename, body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [*_JSON, (b"content-length", str(len(data)).encode()),
                                *headers]})
        await send({"type": "http.response.body", "body": data})

    @staticmethod
    async def _body(receive: Receive) -> bytes | None:
        """The request body, None on disconnect; past MAX_BODY only its first bytes."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            if size <= MAX_BODY:
                chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _answer(self, scope: Scope, filename: str, body: bytes
                      ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        try:
            if len(body) > MAX_BODY:
                raise TooLarge(f"Request body larger than {MAX_BODY} bytes")
            client = scope.get("client")
            self.limit.hit(client[0] if client else "unknown")
            index = parse_segment_index(body)
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self.executor, self.service.degrade,
                                                filename, index)
            return 200, result.model_dump_json().encode(), []
        except TaperoomError as exc:
            if exc.status >= 500:
                log.warning("POST %s: %s", scope["path"], exc)
            return exc.status, _json(error_body(exc.status, exc.message)), [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in error_headers(exc).items()]
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            return 500, _json(error_body(500, "Internal server error")), []


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
