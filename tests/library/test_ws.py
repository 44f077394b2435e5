"""The frontend WebSocket /ws: events as {event, data}, ping/pong, subscription filters."""

from __future__ import annotations

import asyncio
import json

import websockets

from taperoom.events import Event


async def _recv(ws, timeout: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def test_events_reach_clients_with_heartbeat_and_filters(lib_server, lib_ctx) -> None:
    """A client gets 'connected', a pong for its ping, and only the events it subscribed to."""
    url = lib_server.url.replace("http://", "ws://") + "/ws"
    async with websockets.connect(url) as ws, websockets.connect(url) as all_events:
        assert (await _recv(ws))["event"] == "connected"
        assert (await _recv(all_events))["event"] == "connected"
        await ws.send(json.dumps({"type": "ping"}))
        assert (await _recv(ws))["event"] == "pong"
        await ws.send(json.dumps({"type": "subscribe", "events": ["track:*"]}))
        assert (await _recv(ws)) == {"event": "subscribed", "data": {"events": ["track:*"]}}
        lib_ctx.bus.send(Event.SCAN_PROGRESS, {"directoryId": "d", "percent": 50})
        lib_ctx.bus.send(Event.TRACK_ADDED, {"trackId": "t1", "track": {"title": "x"}})
        got = await _recv(ws)
        assert got == {"event": "track:added", "data": {"trackId": "t1", "track": {"title": "x"}}}
        assert (await _recv(all_events))["event"] == "library:directory:scan:progress"
        assert (await _recv(all_events))["event"] == "track:added"
        await ws.send("not json")
        assert (await _recv(ws))["event"] == "error"


async def test_events_sent_from_worker_threads_are_delivered(lib_server, lib_ctx) -> None:
    """Events sent from a background thread (as scans do) arrive in order."""
    url = lib_server.url.replace("http://", "ws://") + "/ws"
    async with websockets.connect(url) as ws:
        await _recv(ws)

        def burst() -> None:
            for i in range(50):
                lib_ctx.bus.send(Event.TRACK_UPDATED, {"trackId": str(i), "changes": {}})

        await asyncio.to_thread(burst)
        ids = [(await _recv(ws))["data"]["trackId"] for _ in range(50)]
        assert ids == [str(i) for i in range(50)]
