"""Live wear: ``WS /ws/wear`` and ``GET /events/wear`` on real servers on 127.0.0.1.

Tracks are real recordings of the shared corpus (and a generated tone for the
worn stream); plays are real ``POST /degrade`` calls and real ``?degrade=1``
streams; subscribers are real WebSocket (``websockets``) and SSE (httpx) clients.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from taperoom.ephemeral.app import create_app
from taperoom.ephemeral.live.hub import LoggedPlay, Resync, Subscription
from taperoom.ephemeral.live.wearlog import WearLog
from tests.polling import wait_for
from tests.wavgen import tone, write_wav

TAGGED = ("scanner", "real_music_tagged")
GARNER = "06 - John Garner - Partita No. 1 in B minor: Tempo di Borea (BWV1002).wav"
LMMS = "22 - LMMS demo - CapDan-TwilightArea-OriginalByAlf42red.wav"
#: Seconds a message may take (only bounds a failing test).
WAIT = 10.0

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def live(corpus: Path, eph_settings: Callable[..., Any], live_server: Callable[[Any], Any]
         ) -> Callable[..., Any]:
    """Start the ephemeral app on two corpus recordings; keyword overrides go to the settings."""

    def start(**overrides: Any) -> Any:
        settings = eph_settings(**{"degrade_rate_limit": "off", **overrides})
        settings.audio_dir.mkdir(parents=True, exist_ok=True)
        for name in (GARNER, LMMS):
            shutil.copyfile(corpus.joinpath(*TAGGED, name), settings.audio_dir / name)
        return live_server(create_app(settings))

    return start


def ws_url(url: str, **query: Any) -> str:
    q = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
    return url.replace("http://", "ws://") + "/ws/wear" + ("?" + q if q else "")


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return message


async def play(client: httpx.AsyncClient, url: str, filename: str, index: int) -> int:
    r = await client.post(f"{url}/degrade/{quote(filename)}", json={"segment_index": index})
    assert r.status_code == 200, r.text
    count: int = r.json()["play_count"]
    return count


class SseClient:
    """An SSE subscription read with httpx: its events as (event, id, data) tuples."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next(self) -> tuple[str, str | None, dict[str, Any]]:
        async def read() -> tuple[str, str | None, dict[str, Any]]:
            event, ident, data = "message", None, ""
            async for line in self.lines:
                if line == "":
                    if data:
                        return event, ident, json.loads(data)
                    event, ident, data = "message", None, ""
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "event":
                        event = value
                    elif field == "id":
                        ident = value
                    elif field == "data":
                        data += value
            raise AssertionError("the event stream ended")

        return await asyncio.wait_for(read(), WAIT)


@asynccontextmanager
async def sse(url: str, headers: dict[str, str] | None = None, **query: Any
              ) -> AsyncIterator[SseClient]:
    async with httpx.AsyncClient(timeout=WAIT) as client, client.stream(
            "GET", f"{url}/events/wear", params=query,
            headers={"Accept": "text/event-stream", **(headers or {})}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseClient(response)


async def test_every_play_is_pushed_to_the_track_s_subscribers_with_its_counts(
        live: Callable[..., Any]) -> None:
    """Plays of two tracks reach: a WebSocket on all tracks (every play, in order), a
    WebSocket on one track (only its plays) and an SSE stream on the other (only its
    plays); each push carries the segment's count after that play and the track's
    overall wear and stream count as /stats shows them after that play."""
    srv = live(degradation_rate=10.0)
    async with httpx.AsyncClient(timeout=WAIT) as client:
        assert (await client.get(f"{srv.url}/stream/{quote(LMMS)}")).status_code == 200
        async with websockets.connect(ws_url(srv.url)) as every, \
                websockets.connect(ws_url(srv.url, filename=GARNER)) as garner, \
                sse(srv.url, filename=LMMS) as lmms:
            hello = await recv(every)
            assert hello == {"type": "hello", "seq": 0, "filename": None}
            assert (await recv(garner))["filename"] == GARNER
            assert await lmms.next() == ("hello", "0", {"type": "hello", "seq": 0,
                                                        "filename": LMMS})
            plays = [(GARNER, 3), (LMMS, 0), (GARNER, 3), (GARNER, 59), (LMMS, 1)]
            counts = [await play(client, srv.url, f, i) for f, i in plays]
            assert counts == [1, 1, 2, 1, 1]
            pushes = [await recv(every) for _ in plays]
            assert [(p["filename"], p["segment_index"], p["play_count"]) for p in pushes] == [
                (f, i, c) for (f, i), c in zip(plays, counts, strict=True)]
            assert [p["seq"] for p in pushes] == [1, 2, 3, 4, 5]
            assert all(p["type"] == "play" for p in pushes)
            assert [await recv(garner) for _ in range(3)] == [
                p for p in pushes if p["filename"] == GARNER]
            for push in (p for p in pushes if p["filename"] == LMMS):
                assert await lmms.next() == ("play", str(push["seq"]), push)
            for name in (GARNER, LMMS):
                stats = (await client.get(f"{srv.url}/stats/{quote(name)}")).json()
                last = [p for p in pushes if p["filename"] == name][-1]
                assert last["overall_degradation"] == stats["overall_degradation"] > 0
                assert last["total_streams"] == stats["total_streams"]
            assert pushes[1]["total_streams"] == 1
            assert pushes[0]["overall_degradation"] < pushes[2]["overall_degradation"] \
                < pushes[3]["overall_degradation"]


async def test_a_worn_stream_pushes_each_segment_it_wears(
        eph_settings: Callable[..., Any], live_server: Callable[[Any], Any]) -> None:
    """``GET /stream/<f>?degrade=1`` wears each segment it sends: each is pushed."""
    settings = eph_settings(degrade_rate_limit="off", stream_prebuffer=5.0)
    settings.audio_dir.mkdir(parents=True)
    write_wav(settings.audio_dir / "t.wav", tone(2.0, 8000, 1), rate=8000)
    srv = live_server(create_app(settings))
    async with websockets.connect(ws_url(srv.url, filename="t.wav")) as ws:
        await recv(ws)
        async with httpx.AsyncClient(timeout=WAIT) as client:
            r = await client.get(f"{srv.url}/stream/t.wav", params={"degrade": 1})
            assert r.status_code == 200
        pushes = [await recv(ws) for _ in range(4)]
    assert sorted(p["segment_index"] for p in pushes) == [0, 1, 2, 3]
    assert all(p["play_count"] == 1 for p in pushes)


async def test_filter_and_parameters_are_checked_before_the_stream_starts(
        live: Callable[..., Any]) -> None:
    """An unknown track, a name leaving AUDIO_DIR or a non-file name is 404 on both routes,
    a bad ``since`` 400; SSE without ``Accept: text/event-stream`` is 406; every error is
    the app's JSON body, for the WebSocket as the answer to its handshake."""
    srv = live()
    for query, status in ([("filename", "nope.wav")], 404), ([("filename", "../x.wav")], 404), \
            ([("filename", "..%2F..%2Fetc%2Fpasswd")], 404), ([("filename", "a/b.wav")], 404), \
            ([("filename", "")], 404), ([("since", "x")], 400), ([("since", "-1")], 400):
        q = "&".join(f"{k}={v}" for k, v in query)
        with pytest.raises(InvalidStatus) as caught:
            await websockets.connect(f"{srv.url.replace('http', 'ws')}/ws/wear?{q}")
        assert caught.value.response.status_code == status, q
        assert set(json.loads(caught.value.response.body or b"{}")) == {"error"}
        async with httpx.AsyncClient(timeout=WAIT) as client:
            r = await client.get(f"{srv.url}/events/wear?{q}",
                                 headers={"Accept": "text/event-stream"})
            assert r.status_code == status, (q, r.text)
            assert set(r.json()) == {"error"}
    async with httpx.AsyncClient(timeout=WAIT) as client:
        r = await client.get(f"{srv.url}/events/wear")
        assert r.status_code == 406
        assert "text/event-stream" in r.json()["error"]
        r = await client.get(f"{srv.url}/events/wear", headers={"Last-Event-ID": "x",
                                                               "Accept": "text/event-stream"})
        assert r.status_code == 400


async def test_websocket_origin_follows_cors_origin(live: Callable[..., Any]) -> None:
    """With ``CORS_ORIGIN`` set, a WebSocket from another origin is refused with 403."""
    srv = live(cors_origin="https://site.example")
    with pytest.raises(InvalidStatus) as caught:
        await websockets.connect(ws_url(srv.url), origin="https://evil.example")
    assert caught.value.response.status_code == 403
    async with websockets.connect(ws_url(srv.url), origin="https://site.example") as ws:
        assert (await recv(ws))["type"] == "hello"


async def test_a_subscriber_resumes_after_the_last_push_it_saw(live: Callable[..., Any]) -> None:
    """Reconnecting with ``?since=<seq>`` (WebSocket) or ``Last-Event-ID`` (SSE) sends the
    plays made meanwhile first, then the new ones, none twice."""
    srv = live()
    async with httpx.AsyncClient(timeout=WAIT) as client:
        async with websockets.connect(ws_url(srv.url, filename=GARNER)) as ws:
            await recv(ws)
            await play(client, srv.url, GARNER, 0)
            seen = await recv(ws)
        missed = [await play(client, srv.url, GARNER, 1) for _ in range(3)]
        await play(client, srv.url, LMMS, 0)  # another track: not for this subscriber
        async with websockets.connect(ws_url(srv.url, filename=GARNER, since=seen["seq"])) as ws:
            assert await recv(ws) == {"type": "hello", "seq": seen["seq"], "filename": GARNER}
            replay = [await recv(ws) for _ in missed]
            assert [p["play_count"] for p in replay] == missed == [1, 2, 3]
            await play(client, srv.url, GARNER, 2)
            after = await recv(ws)
            assert (after["segment_index"], after["seq"]) == (2, replay[-1]["seq"] + 2)
        async with sse(srv.url, headers={"Last-Event-ID": str(seen["seq"])}) as events:
            assert (await events.next())[0] == "hello"
            got = [await events.next() for _ in range(5)]
            assert [int(i or 0) for _, i, _ in got] == list(range(seen["seq"] + 1,
                                                                 seen["seq"] + 6))
            assert [d["filename"] for _, _, d in got] == [GARNER] * 3 + [LMMS, GARNER]


async def test_a_subscriber_that_lags_gets_a_resync_then_the_pushes_that_follow() -> None:
    """A subscription holding its limit of unsent pushes drops them for one resync and
    goes on; a resume from plays no longer in the log starts with a resync."""
    sub = Subscription(None, 0, limit=3)
    for seq in range(1, 6):
        sub.offer(LoggedPlay(seq, "a.wav", "{}"))
    items = [await sub.next() for _ in range(3)]
    assert items == [Resync(3), LoggedPlay(4, "a.wav", "{}"), LoggedPlay(5, "a.wav", "{}")]
    assert sub.resyncs == 1
    sub.close()
    assert await sub.next() is None


async def test_a_stalled_websocket_subscriber_holds_up_no_one_and_gets_a_resync() -> None:
    """Pushing: an idle subscriber is sent each push at once, in the loop that offers it;
    one whose send has to wait (its connection's buffer is full) finishes that send in a
    task of its own while its next pushes queue (up to its limit, then a resync), so the
    others are not held up; once it drains it gets the rest in order. A send that fails
    ends the subscription."""
    gate = asyncio.Event()
    slow_got: list[dict[str, Any]] = []
    fast_got: list[dict[str, Any]] = []

    async def slow_send(text: str) -> None:
        await gate.wait()  # a full write buffer
        slow_got.append(json.loads(text))

    async def fast_send(text: str) -> None:
        fast_got.append(json.loads(text))

    slow, fast = Subscription(None, 0, limit=3), Subscription(None, 0, limit=3)
    slow.push_to(slow_send)
    fast.push_to(fast_send)
    for seq in range(1, 7):
        for sub in (slow, fast):
            sub.offer(LoggedPlay(seq, "a.wav", json.dumps({"type": "play", "seq": seq})))
        assert [m["seq"] for m in fast_got] == list(range(1, seq + 1))  # sent at once
    assert slow_got == []
    gate.set()
    await wait_for_async(lambda: len(slow_got) == 4)
    assert slow_got == [{"type": "play", "seq": 1}, {"type": "resync", "seq": 4},
                        {"type": "play", "seq": 5}, {"type": "play", "seq": 6}]
    assert slow.resyncs == 1 and not slow.ended.done()
    slow.offer(LoggedPlay(7, "a.wav", json.dumps({"type": "play", "seq": 7})))
    assert slow_got[-1] == {"type": "play", "seq": 7}  # idle again: sent at once

    async def gone(text: str) -> None:
        raise ConnectionResetError("client gone")

    broken = Subscription(None, 0)
    broken.push_to(gone)
    broken.offer(LoggedPlay(1, "a.wav", "{}"))
    assert isinstance(broken.ended.exception(), ConnectionResetError)
    for sub in (slow, fast):
        sub.close()
        assert sub.ended.done() and sub.ended.exception() is None


async def wait_for_async(ready: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not ready():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), WAIT)


def test_the_log_keeps_numbers_rising_after_pruning(tmp_path: Path) -> None:
    """Numbers are never reused after old rows are pruned; reads start after a number."""
    log = WearLog(tmp_path / "w.sqlite")
    try:
        rows = [log.append("a.wav", lambda seq: json.dumps({"seq": seq})) for _ in range(10)]
        assert [r.seq for r in rows] == list(range(1, 11))
        assert all(json.loads(r.body)["seq"] == r.seq for r in rows)
        log.prune(keep=3)
        assert log.first_seq() == 8
        assert [r.seq for r in log.after(5)] == [8, 9, 10]
        assert [r.seq for r in log.after(8, until=9)] == [9]
        assert log.append("b.wav", lambda seq: "{}").seq == 11
    finally:
        log.close()


async def test_resuming_from_pruned_plays_starts_with_a_resync(live: Callable[..., Any],
                                                              tmp_path: Path) -> None:
    """A resume after plays the log no longer keeps gets ``resync`` first, then the kept ones."""
    srv = live()
    async with httpx.AsyncClient(timeout=WAIT) as client:
        for i in range(5):
            await play(client, srv.url, GARNER, i)
    log = WearLog(tmp_path / "metadata" / ".live" / "wear.sqlite")
    try:
        log.prune(keep=2)
    finally:
        log.close()
    async with websockets.connect(ws_url(srv.url, since=1)) as ws:
        assert (await recv(ws))["type"] == "hello"
        assert await recv(ws) == {"type": "resync", "seq": 3}
        assert [(await recv(ws))["seq"] for _ in range(2)] == [4, 5]


@pytest.mark.slow
async def test_plays_counted_in_one_worker_reach_subscribers_of_the_other(
        corpus: Path, tmp_path: Path, server_process: Callable[..., Any]) -> None:
    """``taperoom ephemeral serve --workers 2``: WebSocket and SSE subscribers connected to
    both worker processes each get every one of 40 plays made on fresh connections (spread
    over both workers), once, in one order, with their counts; no play is lost."""
    audio = tmp_path / "audio"
    audio.mkdir()
    shutil.copyfile(corpus.joinpath(*TAGGED, GARNER), audio / GARNER)
    srv = server_process(["ephemeral", "serve", "--workers", "2"], {
        "AUDIO_DIR": str(audio), "METADATA_DIR": str(tmp_path / "meta"),
        "DEGRADE_RATE_LIMIT": "off", "LOG_LEVEL": "warning"})
    sockets: list[ClientConnection] = []
    pids: dict[str, list[ClientConnection]] = {}

    async def connect_until_both() -> bool:
        ws = await websockets.connect(ws_url(srv.url, filename=GARNER))
        sockets.append(ws)
        pids.setdefault(ws.response.headers["x-taperoom-worker"], []).append(ws)
        await recv(ws)
        return len(pids) == 2

    try:
        for _ in range(200):  # the kernel spreads connections over the workers' accepts
            if await connect_until_both():
                break
        assert len(pids) == 2, "every connection went to one worker"
        async with sse(srv.url, filename=GARNER) as events:
            await events.next()
            plays = [i % 7 for i in range(40)]

            async def fresh_play(index: int) -> int:
                async with httpx.AsyncClient(timeout=WAIT) as client:  # a new connection
                    return await play(client, srv.url, GARNER, index)

            counts = [await fresh_play(i) for i in plays]
            expected = [(i, c) for i, c in zip(plays, counts, strict=True)]
            for ws in sockets:
                got = [await recv(ws) for _ in plays]
                assert [(p["segment_index"], p["play_count"]) for p in got] == expected
                assert [p["seq"] for p in got] == list(range(1, 41))
            got_sse = [(await events.next())[2] for _ in plays]
            assert [(p["segment_index"], p["play_count"]) for p in got_sse] == expected
        stats = httpx.get(f"{srv.url}/stats/{quote(GARNER)}", timeout=WAIT).json()
        assert sum(stats["segment_play_counts"]) == 40
        wait_for(lambda: len(list((tmp_path / "meta" / ".live" / "bells").iterdir())) == 2, 5,
                 "two registered doorbells")
    finally:
        for ws in sockets:
            await ws.close()


async def test_plays_pruned_before_this_process_read_them_become_a_resync(
        tmp_path: Path) -> None:
    """Plays logged by another process, without a ring, and pruned before this process's
    hub read them: its subscribers get a resync for them, then the plays still kept."""
    from taperoom.ephemeral.live.doorbell import Doorbells
    from taperoom.ephemeral.live.hub import LiveWearHub

    log = WearLog(tmp_path / "w.sqlite")
    other = WearLog(tmp_path / "w.sqlite")  # another worker process's connection
    bells = Doorbells(tmp_path / "bells")
    hub = LiveWearHub(log, bells, poll=3.0)  # its first look comes 3 s after the start
    hub.start()
    try:
        sub = await hub.subscribe(None)
        for _ in range(5):  # no ring: this hub sees them only at its next look
            other.append("a.wav", lambda seq: "{}")
        other.prune(keep=2)
        items = [await asyncio.wait_for(sub.next(), 10) for _ in range(3)]
        assert items == [Resync(3), LoggedPlay(4, "a.wav", "{}"), LoggedPlay(5, "a.wav", "{}")]
    finally:
        await hub.stop()
        other.close()
        log.close()
        bells.close()
