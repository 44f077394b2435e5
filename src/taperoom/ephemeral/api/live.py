"""Live wear: ``WS /ws/wear`` and ``GET /events/wear`` (Server-Sent Events).

Both send one JSON message per counted play, as it is counted in any worker
process (:mod:`taperoom.ephemeral.live`), for the track ``?filename=`` or, without
it, for every track; ``?since=<seq>`` (or SSE's ``Last-Event-ID``) resumes after
the play numbered ``seq``.

Messages (JSON objects; over SSE the ``type`` is also the event name, and the
``id`` of ``hello``, ``play`` and ``resync`` events is their ``seq``)
    ``{"type": "hello", "seq", "filename"}`` first;
    ``{"type": "play", "seq", "filename", "segment_index", "play_count",
    "overall_degradation", "total_streams", "counted_at"}`` per play;
    ``{"type": "resync", "seq"}`` when plays up to ``seq`` were missed (the
    subscriber lagged, or resumed after plays no longer kept): read
    ``/stats/<f>`` again.

Errors are answered before the WebSocket handshake completes, with the app's
JSON bodies: 404 for an unknown track (or a name that is not a plain file
name in ``AUDIO_DIR``), 400 for a bad ``since``, 403 for an ``Origin`` that
``CORS_ORIGIN`` does not allow. The handshake answer names the worker process
in ``X-Taperoom-Worker`` (its pid), as the library's WebSocket does. Messages
sent by the client are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from taperoom.ephemeral.context import EphemeralServices
from taperoom.ephemeral.live.hub import LiveWearHub, Resync
from taperoom.ephemeral.live.schemas import WearHelloPublic, WearPushPublic, WearResyncPublic
from taperoom.ephemeral.schemas import ErrorPublic, error_responses
from taperoom.errors import Forbidden, InvalidInput, NotAcceptable, TaperoomError
from taperoom.web.cors import parse_origins
from taperoom.web.errors import error_response

router = APIRouter(tags=["live wear"])

#: Seconds between two SSE comment lines that keep idle connections open.
SSE_PING_SECONDS = 15


async def _services(conn: HTTPConnection) -> EphemeralServices:
    found: EphemeralServices = conn.app.state.services
    return found


LiveDep = Annotated[EphemeralServices, Depends(_services)]


async def _check_track(services: EphemeralServices, filename: str | None) -> None:
    """404 "Track not found" unless `filename` is None or a readable track."""
    if filename is not None:
        await run_in_threadpool(services.service.stats, filename)


def _since(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        since = int(value)
    except ValueError:
        raise InvalidInput("since must be a play number (an integer >= 0)") from None
    if since < 0:
        raise InvalidInput("since must be a play number (an integer >= 0)")
    return since


def _check_origin(services: EphemeralServices, origin: str | None) -> None:
    allowed = parse_origins(services.settings.cors_origin)
    if origin is not None and "*" not in allowed and origin.rstrip("/") not in allowed:
        raise Forbidden(f"Origin {origin} is not allowed (CORS_ORIGIN)")


def _text(item: Resync | Any) -> tuple[str, str, int]:
    """(event name, JSON text, seq) of a queued item."""
    if isinstance(item, Resync):
        return "resync", item.json(), item.seq
    return "play", item.body, item.seq


@router.websocket("/ws/wear", name="ws_wear")
async def ws_wear(websocket: WebSocket, services: LiveDep) -> None:
    """Pushes of every counted play (see the module's documentation)."""
    hub: LiveWearHub = services.live
    try:
        filename = websocket.query_params.get("filename")
        since = _since(websocket.query_params.get("since"))
        _check_origin(services, websocket.headers.get("origin"))
        await _check_track(services, filename)
    except TaperoomError as exc:
        await websocket.send_denial_response(error_response(exc))
        return
    await websocket.accept(headers=[(b"x-taperoom-worker", str(os.getpid()).encode())])
    sub = await hub.subscribe(filename, since)
    receiver = asyncio.create_task(_drain(websocket))
    try:
        await websocket.send_text(sub.hello)
        sub.push_to(websocket.send_text)  # the hub sends from now on
        done, _ = await asyncio.wait({sub.ended, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if sub.ended in done and sub.ended.exception() is None:  # the server is stopping
            with contextlib.suppress(Exception):
                await websocket.close(1001)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unsubscribe(sub)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


async def _drain(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


def _sse_schema() -> dict[str, Any]:
    return {"oneOf": [WearHelloPublic.model_json_schema(), WearPushPublic.model_json_schema(),
                      WearResyncPublic.model_json_schema()]}


SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A text/event-stream: events `hello`, `play` and `resync`, each with "
                       "one of these JSON objects as its data and (but `hello` without "
                       "`since`) its seq as id; a comment line every 15 s",
        "content": {"text/event-stream": {"schema": _sse_schema()}},
    },
    406: {"model": ErrorPublic,
          "description": "The request's Accept header does not name text/event-stream"},
    **error_responses(400, 404, 503),
}


def accepts_event_stream(accept: str | None) -> bool:
    """True when an ``Accept`` header names ``text/event-stream`` itself (not ``*/*``).

    EventSource always sends it. A client that does not (a generic HTTP client
    sending ``*/*``) would wait for the end of a body that never ends; it is
    answered 406 instead.
    """
    return any(part.split(";", 1)[0].strip().lower() == "text/event-stream"
               for part in (accept or "").split(","))


@router.get("/events/wear", response_class=EventSourceResponse, responses=SSE_RESPONSES)
async def events_wear(
        request: Request, services: LiveDep,
        filename: Annotated[str | None, Query(
            description="Only this track's plays (404 when there is no such track)")] = None,
        since: Annotated[int | None, Query(
            ge=0, description="Resume after the play numbered `since`")] = None,
        last_event_id: Annotated[str | None, Header(
            description="Sent by EventSource when it reconnects: as `since`")] = None,
) -> EventSourceResponse:
    """Server-Sent Events of every counted play (the fallback of ``/ws/wear``).

    Send ``Accept: text/event-stream`` (EventSource does): other requests are
    answered 406, so that no client waits for the end of an endless body.
    """
    if not accepts_event_stream(request.headers.get("accept")):
        raise NotAcceptable("GET /events/wear sends an endless text/event-stream: send "
                            "Accept: text/event-stream (as EventSource does)")
    if since is None:
        since = _since(last_event_id)
    await _check_track(services, filename)
    hub: LiveWearHub = services.live

    async def events() -> AsyncIterator[ServerSentEvent]:
        sub = await hub.subscribe(filename, since)
        try:
            yield ServerSentEvent(data=sub.hello, event="hello", id=str(sub.start))
            while True:
                item = await sub.next()
                if item is None:
                    return
                event, text, seq = _text(item)
                yield ServerSentEvent(data=text, event=event, id=str(seq))
        finally:
            hub.unsubscribe(sub)

    return EventSourceResponse(events(), ping=SSE_PING_SECONDS,
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
