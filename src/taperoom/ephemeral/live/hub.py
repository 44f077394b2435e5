"""One worker process's subscribers to live wear, fed from the shared log.

A reader thread sleeps on the process's doorbell (:mod:`~taperoom.ephemeral.live.doorbell`);
when rung, and at the latest every :data:`POLL_SECONDS`, it reads the rows
logged since its last look and hands them to the event loop, which offers each
to the subscriptions of its track and to those of every track.

A WebSocket subscription is *pushed to*: the loop that offers a play sends it
to every idle subscriber in turn, each send running until the connection's
transport has taken the frame (no task, queue or wake-up per subscriber; the
push's text was made once, when it was logged). A send that has to wait (the
connection's write buffer is full: a slow or stalled client) goes on in a task
of its own, and that subscriber's next pushes are queued until it has caught
up, so a stalled connection never holds up the others. An SSE subscription is
*pulled from* (:meth:`Subscription.next`), by its response's generator.

Each subscription keeps up to :data:`QUEUE_SIZE` pushes not yet sent. A
subscriber that falls further behind (a stalled connection) loses its queued
pushes and gets one ``resync`` message in their place, then the pushes that
follow: it reads ``/stats`` again and misses nothing after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any

from taperoom.ephemeral.live.doorbell import Doorbell, Doorbells
from taperoom.ephemeral.live.schemas import WearHelloPublic, WearResyncPublic
from taperoom.ephemeral.live.wearlog import LoggedPlay, WearLog

log = logging.getLogger(__name__)

#: Pushes kept per subscriber before it is told to resync instead.
QUEUE_SIZE = 1000
#: Seconds between two looks at the log when no ring comes (a safety net).
POLL_SECONDS = 1.0
#: Rows read from the log at once.
BATCH = 1000


@dataclass(frozen=True)
class Resync:
    """Plays up to `seq` may have been missed."""

    seq: int

    def json(self) -> str:
        """The ``resync`` message."""
        return WearResyncPublic(type="resync", seq=self.seq).model_dump_json()


Item = LoggedPlay | Resync
#: Sends one message's text to a subscriber (``WebSocket.send_text``).
SendText = Callable[[str], Coroutine[Any, Any, None]]


def text_of(item: Item) -> str:
    """The JSON text of a queued item."""
    return item.body if isinstance(item, LoggedPlay) else item.json()


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], awaited: Any) -> Generator[Any, Any, None]:
    """The rest of `coro`, which yielded `awaited` when it was stepped by hand: what
    ``yield from`` does after its first step, so that a task can run the rest."""
    value = awaited
    while True:
        try:
            sent = yield value
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # thrown in by the task (cancellation): pass it on
            try:
                value = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                value = coro.send(sent)
            except StopIteration:
                return


class Subscription:
    """What one subscriber is sent: pushes of its track (or of all tracks), in log order.

    Pulled from with :meth:`next` (SSE), or pushed to once :meth:`push_to` is called
    (WebSocket).

    Parameters
    ----------
    filename : str or None
        The track, None for every track.
    start : int
        Pushes follow the play numbered `start` (:attr:`hello`).
    limit : int
        Pushes kept unsent before they are replaced by a :class:`Resync`.
    """

    def __init__(self, filename: str | None, start: int, limit: int = QUEUE_SIZE) -> None:
        self.filename = filename
        self.start = start
        self.limit = limit
        self.resyncs = 0
        self._covered = start  # the highest play number queued or resynced to
        self._queue: deque[Item] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._send: SendText | None = None
        self._sending: asyncio.Task[None] | None = None
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def hello(self) -> str:
        """The first message: where the pushes start."""
        hello = WearHelloPublic(type="hello", seq=self.start, filename=self.filename)
        return hello.model_dump_json()

    def offer(self, item: Item) -> None:
        """Send or queue `item` (on the event loop); a full queue becomes one resync first;
        a resync to where the subscriber already is (a replay's) is left out.

        A pushed-to subscription that is idle is sent `item` at once: the send
        runs until it has to wait, and then goes on in a task while the next
        items are queued.
        """
        if self._closed:
            return
        if isinstance(item, Resync) and item.seq <= self._covered:
            return
        self._covered = max(self._covered, item.seq)
        if self._send is not None and self._sending is None:
            self._send_now(text_of(item))
            return
        if len(self._queue) >= self.limit:
            self._queue.clear()
            self.resyncs += 1
            seq = item.seq - 1 if isinstance(item, LoggedPlay) else item.seq
            self._queue.append(Resync(seq))
        self._queue.append(item)
        self._ready.set()

    def prepend(self, items: list[Item]) -> None:
        """Put `items` (a replay, in order) ahead of what is queued; before :meth:`push_to`."""
        self._queue.extendleft(reversed(items))
        if items:
            self._covered = max(self._covered, max(item.seq for item in items))
            self._ready.set()

    def push_to(self, send: SendText) -> None:
        """Push from now on with `send`: what is queued first, then each offered item.

        :attr:`ended` is done when the subscription is closed, and holds the
        exception of a send that failed (the connection is gone).
        """
        self._send = send
        if self._queue:
            self._sending = asyncio.get_running_loop().create_task(self._catch_up(None))

    def _send_now(self, text: str) -> None:
        assert self._send is not None
        coro = self._send(text)
        try:
            awaited = coro.send(None)
        except StopIteration:  # sent: the usual case
            return
        except Exception as exc:
            self._fail(exc)
            return
        rest = _resume(coro, awaited)
        self._sending = asyncio.get_running_loop().create_task(self._catch_up(rest))

    async def _catch_up(self, pending: Awaitable[None] | None) -> None:
        """Finish the send that had to wait, then send what was queued meanwhile."""
        assert self._send is not None
        try:
            if pending is not None:
                await pending
            while self._queue and not self._closed:
                await self._send(text_of(self._queue.popleft()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)
            return
        self._sending = None  # idle: the next offer sends at once

    def _fail(self, exc: Exception) -> None:
        self._closed = True
        self._queue.clear()
        if not self.ended.done():
            self.ended.set_exception(exc)
            self.ended.exception()  # retrieved: the route sees the connection end itself

    def close(self) -> None:
        """End the subscription: :meth:`next` returns None once the queue is sent; a
        pushed-to subscription stops sending and :attr:`ended` is done."""
        self._closed = True
        self._ready.set()
        if self._sending is not None:
            self._sending.cancel()
            self._sending = None
        if not self.ended.done():
            self.ended.set_result(None)

    async def next(self) -> Item | None:
        """The next item to send; None when closed."""
        while not self._queue:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()


class LiveWearHub:
    """This process's live wear subscribers.

    Parameters
    ----------
    log : WearLog
        The log of plays shared by the worker processes.
    bells : Doorbells
        Where this process registers its doorbell.
    queue_size : int
        :data:`QUEUE_SIZE` by default.
    poll : float
        :data:`POLL_SECONDS` by default.
    """

    def __init__(self, log: WearLog, bells: Doorbells, *, queue_size: int = QUEUE_SIZE,
                 poll: float = POLL_SECONDS) -> None:
        self.log = log
        self.bells = bells
        self.queue_size = queue_size
        self.poll = poll
        self.dispatched = 0
        self._by_file: dict[str | None, set[Subscription]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bell: Doorbell | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def subscribers(self) -> int:
        """Subscriptions open in this process."""
        return sum(len(s) for s in self._by_file.values())

    def start(self) -> None:
        """Register this process's doorbell and start reading; call on the event loop."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        self._bell = self.bells.listen()
        self.dispatched = self.log.last_seq()
        self._thread = threading.Thread(target=self._read, args=(self.dispatched,),
                                        name="live-wear", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop reading, unregister, and end every subscription."""
        thread, bell = self._thread, self._bell
        if thread is None or bell is None:
            return
        self._stop.set()
        bell.wake()
        await asyncio.to_thread(thread.join)
        bell.close()
        self._thread = self._bell = None
        for subs in self._by_file.values():
            for sub in subs:
                sub.close()
        self._by_file.clear()

    def _read(self, last: int) -> None:
        bell = self._bell
        loop = self._loop
        assert bell is not None and loop is not None
        while not self._stop.is_set():
            try:
                if not bell.wait(self.poll) and not bell.registration.exists():
                    bell.registration.touch()  # removed by a process that could not ring it
                while not self._stop.is_set():
                    rows = self.log.after(last, limit=BATCH)
                    if not rows:
                        break
                    # plays numbered between `last` and the first row were pruned before
                    # this process read them: its subscribers missed them
                    gap = Resync(rows[0].seq - 1) if rows[0].seq > last + 1 else None
                    last = rows[-1].seq
                    loop.call_soon_threadsafe(self._dispatch, rows, gap)
                    if len(rows) < BATCH:
                        break
            except RuntimeError:  # the loop is closed: the server is gone
                return
            except Exception:
                log.exception("live wear: reading the log failed; trying again")
                self._stop.wait(self.poll)

    def _dispatch(self, rows: list[LoggedPlay], gap: Resync | None = None) -> None:
        everyone = self._by_file.get(None, ())
        if gap is not None:
            for subs in self._by_file.values():
                for sub in subs:
                    sub.offer(gap)
        for row in rows:
            for sub in (*self._by_file.get(row.filename, ()), *everyone):
                sub.offer(row)
            self.dispatched = row.seq

    async def subscribe(self, filename: str | None, since: int | None = None) -> Subscription:
        """Open a subscription to the pushes of `filename` (None: every track).

        Parameters
        ----------
        filename : str or None
            Already checked by the caller.
        since : int, optional
            Resume after the play numbered `since`: the plays after it that are
            still in the log are sent first (a :class:`Resync` first when some
            are no longer kept). Default: only plays logged from now on.

        Returns
        -------
        Subscription
            Close it with :meth:`unsubscribe`.
        """
        floor = self.dispatched
        start = floor if since is None or since > floor else max(since, 0)
        sub = Subscription(filename, start, self.queue_size)
        self._by_file.setdefault(filename, set()).add(sub)
        if start < floor:
            try:
                replay = await asyncio.to_thread(self._replay, filename, start, floor)
            except BaseException:
                self.unsubscribe(sub)
                raise
            sub.prepend(replay)
        return sub

    def _replay(self, filename: str | None, since: int, until: int) -> list[Item]:
        items: list[Item] = []
        if self.log.first_seq() > since + 1:
            items.append(Resync(self.log.first_seq() - 1))
        last = since
        while True:
            rows = self.log.after(last, until=until, limit=BATCH)
            items.extend(r for r in rows if filename is None or r.filename == filename)
            if len(items) > self.queue_size:  # more than it may lag by: resync instead
                return [Resync(until)]
            if len(rows) < BATCH:
                return items
            last = rows[-1].seq

    def unsubscribe(self, sub: Subscription) -> None:
        """Close `sub` and forget it."""
        sub.close()
        subs = self._by_file.get(sub.filename)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                with contextlib.suppress(KeyError):
                    del self._by_file[sub.filename]
