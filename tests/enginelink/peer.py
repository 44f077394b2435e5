"""A stand-in audio engine for the engine link's tests: a real ``websockets`` server on
127.0.0.1 (its own thread and loop) that records every frame the library sends, the
pings it gets, and sends what a test tells it to; and a TCP port that accepts
connections and drops them at once (an engine that is not there yet)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.frames import Frame, Opcode

from tests.polling import wait_for

#: Seconds a test waits for the library at most (generous: the machine is shared).
DEADLINE = 30.0


class EnginePeer:
    """The engine: a WebSocket server the library connects to.

    Parameters
    ----------
    port : int
        0 for any free port; a given port lets a test bring the engine back where
        it was.
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.frames: list[tuple[int, str]] = []  # (connection number, text)
        self.connections: list[ServerConnection] = []
        self.pings = 0
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return f"ws://127.0.0.1:{self.port}"

    # -- server side (the peer's thread) ------------------------------------------------

    def _connection_class(self) -> type[ServerConnection]:
        peer = self

        class Counting(ServerConnection):
            def process_event(self, event: Any) -> None:
                if isinstance(event, Frame) and event.opcode is Opcode.PING:
                    with peer._cond:
                        peer.pings += 1
                        peer._cond.notify_all()
                super().process_event(event)

        return Counting

    async def _handler(self, ws: ServerConnection) -> None:
        with self._cond:
            self.connections.append(ws)
            number = len(self.connections)
            self._cond.notify_all()
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode()
                with self._cond:
                    self.frames.append((number, text))
                    self._cond.notify_all()
        except Exception:
            pass

    async def _main(self, started: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", self.port,
                         create_connection=self._connection_class()) as server:
            self._server = server
            self.port = next(iter(server.sockets)).getsockname()[1]
            started.set()
            await self._stop.wait()
            server.close()
            await server.wait_closed()

    # -- test side ----------------------------------------------------------------------

    def start(self) -> EnginePeer:
        """Start serving (returns once it listens)."""
        started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main(started)),
                                        daemon=True)
        self._thread.start()
        assert started.wait(10), "the engine peer did not start"
        return self

    def stop(self) -> None:
        """Close every connection and stop listening (the engine goes away)."""
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
        self._thread = None

    def _run(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def wait_connections(self, count: int, timeout: float = DEADLINE) -> ServerConnection:
        """Wait until the library opened `count` connections in all; the last one."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.connections) >= count, timeout), (
                f"the library opened {len(self.connections)} connections, not {count}")
            return self.connections[count - 1]

    def send(self, message: dict[str, Any] | str) -> int:
        """Send `message` (JSON of a dict, or the text as is) on the newest connection;
        returns the number of frames received so far (a mark for :meth:`next_frame`)."""
        with self._cond:
            ws = self.connections[-1]
            mark = len(self.frames)
        text = message if isinstance(message, str) else json.dumps(message)
        self._run(ws.send(text))
        return mark

    def close_connection(self) -> None:
        """Close the newest connection (the server stays)."""
        with self._cond:
            ws = self.connections[-1]
        self._run(ws.close())

    def wait_frame(self, predicate: Callable[[str], bool], *, after: int = 0,
                   timeout: float = DEADLINE) -> str:
        """The first frame received after frame number `after` that `predicate` accepts."""
        found: list[str] = []

        def seen() -> bool:
            found[:] = [text for _, text in self.frames[after:] if predicate(text)][:1]
            return bool(found)

        with self._cond:
            if not self._cond.wait_for(seen, timeout):
                raise AssertionError(f"no such frame within {timeout:g} s; received after "
                                     f"{after}: {[t for _, t in self.frames[after:]]}")
        return found[0]

    def next_frame(self, after: int, timeout: float = DEADLINE) -> str:
        """The first frame received after frame number `after`."""
        return self.wait_frame(lambda _: True, after=after, timeout=timeout)

    def ask(self, message: dict[str, Any] | str) -> str:
        """Send `message` and return the next frame received (its reply)."""
        return self.next_frame(self.send(message))

    def frames_of(self, connection: int) -> list[str]:
        """The frames received on connection number `connection` (1-based)."""
        with self._cond:
            return [text for n, text in self.frames if n == connection]

    def wait_pings(self, count: int, timeout: float = DEADLINE) -> None:
        """Wait until the peer received `count` pings in all."""
        with self._cond:
            assert self._cond.wait_for(lambda: self.pings >= count, timeout), (
                f"{self.pings} pings received, not {count}")


class DroppingPort:
    """A TCP port on 127.0.0.1 that accepts connections and closes them at once,
    recording when each came (an engine that is not up: every attempt fails).

    Parameters
    ----------
    port : int
        0 for any free port.
    """

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self._closed = threading.Event()
        self.times: list[float] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.times.append(time.monotonic())
            conn.close()

    def attempts(self) -> list[float]:
        """Monotonic times of the connections so far."""
        with self._lock:
            return list(self.times)

    def wait_attempts(self, count: int, timeout: float = DEADLINE) -> list[float]:
        """Wait until `count` connections came; their times."""
        wait_for(lambda: len(self.attempts()) >= count, timeout,
                 f"{count} connection attempts")
        return self.attempts()

    def close(self) -> None:
        """Stop listening (the port is free again)."""
        self._closed.set()
        self._thread.join(5)
        self.sock.close()
