"""The WebSocket connection to the audio engine: identify, ping, reconnect with backoff.

:class:`EngineLink` runs in a thread of its own with its own asyncio loop (the
leader process starts it as one of its duties, so that several worker
processes never open several links). It connects to ``AUDIO_SERVER_WS_URL``
with the ``websockets`` library, sends ``{"type":"appServerIdentify"}`` on every
open, lets the library send a WebSocket ping every ``AUDIO_SERVER_PING_INTERVAL``
ms (a peer that does not answer within the same time is taken for gone), hands
each inbound frame to :class:`~taperoom.enginelink.handlers.EngineHandlers` in
arrival order and sends its replies on the same connection, and sends what the
:class:`~taperoom.enginelink.outbox.Outbox` holds. When the engine is away it
tries again after ``AUDIO_SERVER_RECONNECT_DELAY`` ms, doubling the wait after
each failed attempt up to ``AUDIO_SERVER_RECONNECT_MAX`` ms, and back to the
first wait once connected (contract section 4: 1 s, x2, 30 s). The library
serves on meanwhile; :meth:`EngineLink.status` says how the link stands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from taperoom.enginelink import protocol
from taperoom.enginelink.handlers import EngineHandlers
from taperoom.enginelink.outbox import Outbox

log = logging.getLogger(__name__)


class EngineLink:
    """The library's client connection to the audio engine (see the module).

    Parameters
    ----------
    handlers : EngineHandlers
        What the frames do.
    outbox : Outbox
        Messages sent unasked (the handlers fill it).
    url : str
        ``AUDIO_SERVER_WS_URL`` (``ws://`` or ``wss://``).
    reconnect_delay : float
        Seconds before the first attempt after a loss (``AUDIO_SERVER_RECONNECT_DELAY``).
    reconnect_max : float
        Longest wait between attempts, s (``AUDIO_SERVER_RECONNECT_MAX``).
    ping_interval : float
        Seconds between two pings (``AUDIO_SERVER_PING_INTERVAL``); also how long
        a pong may take.
    open_timeout : float
        Seconds an opening handshake may take.
    """

    def __init__(self, handlers: EngineHandlers, outbox: Outbox, *, url: str,
                 reconnect_delay: float = 1.0, reconnect_max: float = 30.0,
                 ping_interval: float = 30.0, open_timeout: float = 10.0) -> None:
        self.handlers = handlers
        self.outbox = outbox
        self.url = url
        self.reconnect_delay = reconnect_delay
        self.reconnect_max = max(reconnect_max, reconnect_delay)
        self.ping_interval = ping_interval
        self.open_timeout = open_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._state_lock = threading.Lock()
        self._connected_since: datetime | None = None
        self._last_error: str | None = None
        self._failures = 0
        self._next_delay: float | None = None
        self._ready = threading.Event()

    # -- control (any thread) -------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the link's thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start connecting, in the link's own thread (returns at once)."""
        if self.running:
            return
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="engine-link", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def stop(self, timeout: float = 10.0) -> None:
        """Close the connection and stop the thread (the decks' tracks are logged)."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop ended already
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("the engine link did not stop within %g s", timeout)
        self._thread = None

    def status(self) -> dict[str, Any]:
        """How the link stands.

        Returns
        -------
        dict
            ``running`` (the link runs in this process), ``url``, ``connected``,
            ``connectedSince`` (ISO 8601 UTC or None), ``lastError`` (why the last
            connection ended or failed, or None), ``failedAttempts`` (in a row),
            ``reconnectDelay`` (s before the next attempt while away, else None) and
            ``decks`` (``{deck: {trackId, playing, playedSeconds}}``).
        """
        with self._state_lock:
            since = self._connected_since
            return {"running": self.running, "url": self.url, "connected": since is not None,
                    "connectedSince": since.isoformat().replace("+00:00", "Z")
                    if since else None,
                    "lastError": self._last_error, "failedAttempts": self._failures,
                    "reconnectDelay": self._next_delay if since is None else None,
                    "decks": self.handlers.live.decks()}

    # -- the loop (the link's thread) -----------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("the engine link stopped on an error")

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stopping = stopping = asyncio.Event()
        self._wake = wake = asyncio.Event()

        def wake_up() -> None:
            loop.call_soon_threadsafe(wake.set)

        self.outbox.waker(wake_up)
        self.handlers.subscribe()
        self._ready.set()
        delay = self.reconnect_delay
        try:
            while not stopping.is_set():
                if await self._session():
                    delay = self.reconnect_delay
                else:
                    with self._state_lock:
                        self._failures += 1
                if stopping.is_set():
                    break
                with self._state_lock:
                    self._next_delay = delay
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
                delay = min(delay * 2, self.reconnect_max)
        finally:
            self.outbox.waker(None)
            self.handlers.unsubscribe()
            await asyncio.to_thread(self.handlers.disconnected)

    async def _session(self) -> bool:
        """One connection, from opening to its end; False when it did not open."""
        assert self._stopping is not None
        try:
            ws = await connect(self.url, open_timeout=self.open_timeout,
                               ping_interval=self.ping_interval,
                               ping_timeout=self.ping_interval, close_timeout=2)
        except Exception as exc:
            self._ended(f"cannot connect: {_reason(exc)}", failed=True)
            return False
        with self._state_lock:
            self._connected_since = datetime.now(UTC)
            self._last_error = None
            self._next_delay = None
            self._failures = 0
        log.info("connected to the audio engine at %s", self.url)
        reason = "closed"
        try:
            await ws.send(protocol.dumps(protocol.identify()))
            tasks = [asyncio.create_task(self._read(ws)), asyncio.create_task(self._write(ws)),
                     asyncio.create_task(self._stopping.wait())]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for task in done:
                error = task.exception()
                if error is not None:
                    reason = _reason(error)
            if tasks[2] in done:
                reason = "the link stopped"
        except Exception as exc:
            reason = _reason(exc)
        finally:
            with contextlib.suppress(Exception):
                await ws.close()
            if ws.close_code is not None and reason == "closed":
                reason = f"closed by the engine (code {ws.close_code})"
            self._ended(reason, failed=False)
            await asyncio.to_thread(self.handlers.disconnected)
        return True

    def _ended(self, reason: str, *, failed: bool) -> None:
        with self._state_lock:
            was = self._connected_since is not None
            self._connected_since = None
            self._last_error = reason
        if was:
            log.warning("audio engine link at %s lost: %s", self.url, reason)
        elif failed:
            log.debug("audio engine at %s: %s", self.url, reason)

    async def _read(self, ws: ClientConnection) -> None:
        async for frame in ws:
            for reply in await self.handlers.handle(frame):
                await ws.send(protocol.dumps(reply))

    async def _write(self, ws: ClientConnection) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            messages = self.outbox.take()
            for i, message in enumerate(messages):
                try:
                    await ws.send(protocol.dumps(message))
                except (ConnectionClosed, asyncio.CancelledError):
                    self.outbox.give_back(messages[i:])
                    raise
            await self._wake.wait()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
