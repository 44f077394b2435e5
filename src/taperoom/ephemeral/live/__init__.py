"""Live wear: every counted play pushed to everyone listening, in every worker process.

``WS /ws/wear`` and ``GET /events/wear`` (Server-Sent Events) send one message
per counted play (:class:`~taperoom.ephemeral.live.schemas.WearPushPublic`:
``filename``, ``segment_index``, ``play_count``, ``overall_degradation``,
``total_streams``, with ``seq`` and ``counted_at``), for one track
(``?filename=``) or all of them.

How a play crosses processes
----------------------------
A play is counted in one worker process (:meth:`EphemeralService.degrade
<taperoom.ephemeral.service.EphemeralService.degrade>` and the worn stream), and its
listeners may be connected to any other. No other server is needed:

1. The service announces the play on the app's bus; :class:`~.publisher.WearPublisher`,
   in the thread that counted it, appends the push to a SQLite table shared by
   the processes (:mod:`~.wearlog`, ``METADATA_DIR/.live/wear.sqlite``), which
   numbers it (``seq``) in one order across processes. The play is answered
   only after that, so an answered play is in the log.
2. It then rings every process's *doorbell*, a Unix datagram socket each
   process registers in ``METADATA_DIR/.live/bells/`` (:mod:`~.doorbell`).
3. Each process's reader thread (:mod:`~.hub`) wakes, reads the rows after
   the last one it saw, and offers them to its subscriptions.

The log is the truth and a ring only a hint: a ring that is lost (a full
socket buffer) or never sent (a process registered a moment too late) is made
up by the next one or, at the latest, by the reader's look at the log every
second. Rings cost no CPU while nothing is played, unlike polling the log;
inotify on the metadata files was not taken, because it tells that a file
changed, not which play changed it, so concurrent plays of one track would
fold into one push.

Measured: appending a push to the log costs about 30 µs and ringing two
processes about 6 µs (one thread, no contention), so the hand-over between
processes adds well under a millisecond to a play; with one subscriber a push
arrives 1.5 ms (median) after the play was saved. The fan-out is one loop per
process that sends each push's text (made once, when it was logged) to every
idle WebSocket subscriber in turn (:mod:`~.hub`), without permessage-deflate
(the ephemeral server does not offer it, :data:`taperoom.apps.APPS`): about
20 µs of server CPU per push and subscriber, most of it the socket write,
against 50 µs with a task per subscriber and compression per connection
(``bench/livewear.py``, BENCHMARKS.md "live wear").

No play lost
------------
Every push carries the counts after its play, and a subscriber gets every push
of its tracks in log order. One that lags by more than
:data:`~.hub.QUEUE_SIZE` pushes gets a ``resync`` message in place of the ones
it missed (then the pushes that follow): it must read ``/stats`` again. A
subscriber that reconnects passes ``?since=<seq>`` (EventSource sends
``Last-Event-ID`` by itself) and first gets the plays it missed while they are
still in the log (:data:`~.wearlog.KEEP_ROWS`), or a ``resync``.
"""

from __future__ import annotations
