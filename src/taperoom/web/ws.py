"""WebSocket hub: forwards bus events to connected frontends as ``{event, data}``.

Protocol (JSON text frames)
---------------------------
server -> client
    ``{"event": "connected", "data": {"client_id", "events": [...]}}`` on open;
    ``{"event": "<name>", "data": {...}}`` for every bus event the client is
    subscribed to; ``{"event": "pong", "data": {"ts"}}`` in answer to a ping;
    ``{"event": "error", "data": {"message"}}`` for a bad client message.
client -> server
    ``{"type": "ping"}``; ``{"type": "subscribe", "events": ["track:*", ...]}``
    (glob patterns; replaces the filter; default ``["*"]``);
    ``{"type": "unsubscribe", "events": [...]}``.

Protocol-level ping frames are also sent by the server (uvicorn's
``ws_ping_interval``), so dead connections are dropped. The handshake answer
names the worker process that serves the connection in ``X-Taperoom-Worker``
(its pid), for servers run with several workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import os
import time
import uuid
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from taperoom.events import EventBus

log = logging.getLogger(__name__)

#: Messages kept per slow client before the oldest are dropped.
QUEUE_SIZE = 1000


class _Client:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.id = str(uuid.uuid4())
        self.patterns: list[str] = ["*"]
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)

    def wants(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)


class WebSocketHub:
    """Fan bus events out to WebSocket clients.

    Parameters
    ----------
    bus : EventBus
        Events to forward; the hub subscribes on :meth:`start`.
    """

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.clients: set[_Client] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Any = None

    def start(self) -> None:
        """Subscribe to the bus; call from the event loop that serves the sockets."""
        self.loop = asyncio.get_running_loop()
        self._unsubscribe = self.bus.subscribe(self._on_event)

    def stop(self) -> None:
        """Unsubscribe from the bus."""
        if self._unsubscribe:
            self._unsubscribe()

    def _on_event(self, name: str, data: dict[str, Any]) -> None:
        if self.loop is None or self.loop.is_closed():
            return
        message = {"event": name, "data": data}
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._deliver(message)
        else:
            self.loop.call_soon_threadsafe(self._deliver, message)

    def _deliver(self, message: dict[str, Any]) -> None:
        for client in list(self.clients):
            if not client.wants(message["event"]):
                continue
            if client.queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    client.queue.get_nowait()
            client.queue.put_nowait(message)

    async def serve(self, ws: WebSocket) -> None:
        """Run one client connection until it closes."""
        await ws.accept(headers=[(b"x-taperoom-worker", str(os.getpid()).encode())])
        client = _Client(ws)
        self.clients.add(client)
        sender = asyncio.create_task(self._send_loop(client))
        try:
            await ws.send_json({"event": "connected",
                                "data": {"client_id": client.id, "events": client.patterns}})
            while True:
                raw = await ws.receive_text()
                await self._handle(client, raw)
        except WebSocketDisconnect:
            pass
        finally:
            self.clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _send_loop(self, client: _Client) -> None:
        while True:
            message = await client.queue.get()
            await client.ws.send_text(json.dumps(message, default=str))

    async def _handle(self, client: _Client, raw: str) -> None:
        try:
            msg = json.loads(raw)
            kind = msg.get("type") if isinstance(msg, dict) else None
        except ValueError:
            kind = None
            msg = None
        if kind == "ping":
            await client.queue.put({"event": "pong", "data": {"ts": time.time()}})
        elif kind in ("subscribe", "unsubscribe") and isinstance(msg.get("events"), list) \
                and all(isinstance(e, str) for e in msg["events"]):
            if kind == "subscribe":
                client.patterns = list(msg["events"]) or ["*"]
            else:
                client.patterns = [p for p in client.patterns if p not in msg["events"]]
            await client.queue.put({"event": "subscribed", "data": {"events": client.patterns}})
        else:
            await client.queue.put({"event": "error", "data": {
                "message": "expected JSON {type: ping|subscribe|unsubscribe}"}})
