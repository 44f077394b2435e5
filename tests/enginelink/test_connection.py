"""The link itself against a stand-in engine: identify on open, pings, reconnection with
backoff when the engine goes away and comes back, the status route, and a library
that serves on without an engine."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import httpx

from tests.conftest import free_port
from tests.enginelink.conftest import Linked, wait_connected
from tests.enginelink.peer import DroppingPort, EnginePeer
from tests.polling import wait_for

IDENTIFY = '{"type":"appServerIdentify"}'


def test_identifies_on_open_and_reports_connected(linked: Linked) -> None:
    """The first frame of a connection is the identify message; the status route says
    the engine is connected."""
    assert linked.engine is not None
    assert linked.engine.frames_of(1)[0] == IDENTIFY
    wait_connected(linked)
    body = httpx.get(linked.url + "/api/engine/status", timeout=30).json()
    assert body["success"] is True
    data = body["data"]
    assert data["enabled"] is True and data["running"] is True
    assert data["connected"] is True and data["url"] == linked.engine.url
    assert data["connectedSince"].endswith("Z") and data["reconnectDelay"] is None
    assert data["decks"] == {}


def test_pings_the_engine(engine: EnginePeer, linked_library: Callable[..., Linked]) -> None:
    """With AUDIO_SERVER_PING_INTERVAL=100 ms the engine gets ping frames, and the link
    stays up (the peer answers them)."""
    lib = linked_library(engine.url, audio_server_ping_interval=100)
    engine.wait_connections(1)
    engine.wait_pings(3)
    assert len(engine.connections) == 1
    assert lib.status()["connected"] is True


def test_reconnects_after_the_engine_closes_the_connection(linked: Linked) -> None:
    """A connection the engine closes is opened again, and identified again."""
    engine = linked.engine
    assert engine is not None
    engine.close_connection()
    engine.wait_connections(2)
    engine.wait_frame(lambda t: t == IDENTIFY, after=1)
    assert engine.frames_of(2)[0] == IDENTIFY
    wait_connected(linked)


def test_backoff_doubles_up_to_the_maximum_then_the_engine_comes_back(
        linked_library: Callable[..., Linked]) -> None:
    """While every attempt fails the waits between attempts double from
    AUDIO_SERVER_RECONNECT_DELAY (50 ms) to AUDIO_SERVER_RECONNECT_MAX (400 ms); the
    library serves meanwhile and says why the engine is away; once the engine is
    back the link connects, identifies and the wait starts from 50 ms again."""
    port = DroppingPort()
    lib = linked_library(f"ws://127.0.0.1:{port.port}")
    times = port.wait_attempts(6)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for gap, least in zip(gaps, (0.05, 0.1, 0.2, 0.4, 0.4), strict=False):
        assert gap >= least * 0.9, (gaps, least)
    status = wait_for(lambda: (lambda s: s if s["reconnectDelay"] == 0.4 else None)(
        lib.status()), 30, "the wait to reach its maximum")
    assert status["connected"] is False and status["failedAttempts"] >= 4
    assert status["lastError"].startswith("cannot connect")
    assert httpx.get(lib.url + "/health", timeout=30).status_code == 200
    # the engine comes back on the same port
    port.close()
    engine = EnginePeer(port.port).start()
    try:
        engine.wait_connections(1)
        engine.wait_frame(lambda t: t == IDENTIFY)
        status = wait_connected(lib)
        assert status["failedAttempts"] == 0 and status["lastError"] is None
        # gone again: the first attempt comes after the first wait again, not the longest
        engine.stop()
        status = wait_connected(lib, False)
        assert status["lastError"] is not None
        wait_for(lambda: lib.status()["failedAttempts"] >= 1, 30, "a failed attempt")
        assert lib.status()["reconnectDelay"] in (0.1, 0.2, 0.4)
    finally:
        engine.stop()
    engine = EnginePeer(port.port).start()
    try:
        engine.wait_connections(1)
        engine.wait_frame(lambda t: t == IDENTIFY)
        wait_connected(lib)
    finally:
        engine.stop()


def test_the_library_serves_without_an_engine(
        linked_library: Callable[..., Linked]) -> None:
    """No engine listens: the routes answer, and the status says the engine is away."""
    lib = linked_library(f"ws://127.0.0.1:{free_port()}")
    status = wait_for(lambda: (lambda s: s if s["failedAttempts"] >= 2 else None)(
        lib.status()), 30, "two failed attempts")
    assert status["connected"] is False and "cannot connect" in status["lastError"]
    assert httpx.get(lib.url + "/api/tracks/stats", timeout=30).status_code == 200
    body = httpx.get(lib.url + "/api/engine/status", timeout=30).json()
    assert body["data"]["connected"] is False


def test_status_of_a_library_without_link(linked_library: Callable[..., Linked]) -> None:
    """ENGINE_LINK_ENABLED=false: no connection, and the status says it is off."""
    lib = linked_library("ws://127.0.0.1:9", engine_link_enabled=False)
    data = httpx.get(lib.url + "/api/engine/status", timeout=30).json()["data"]
    assert data["enabled"] is False and data["running"] is False
    assert data["connected"] is False
    assert lib.ctx.engine_link.running is False
