"""Analytics: every counted play kept as an event, and plays and wear over time from them.

``GET /api/analytics`` (JSON or CSV) and the ``/analytics`` page
(:mod:`taperoom.ephemeral.api.analytics`) show, for one track or for all,
the plays per time bucket and how the overall degradation grew.

Where the events come from
--------------------------
The service announces each counted play on the app's bus
(:attr:`~taperoom.events.Event.WEAR_PLAYED`); :class:`~.recorder.PlayRecorder`,
subscribed in the composition root, appends it to ``play_events`` in
``METADATA_DIR/analytics/plays.sqlite`` (:mod:`~.repository`, the only module
with SQL): time, track, segment, the segment's play count after the play, the
track's overall degradation after it, and the pid of the worker process. Every
worker process appends to the same file (WAL mode, a busy timeout of
``LOCK_TIMEOUT``), in the thread that counted the play and before the play
is answered, and before the live wear push is sent: a client that reads the
analytics after a push finds its play there.

Why a table of its own
----------------------
The live wear log (``METADATA_DIR/.live/wear.sqlite``) keeps only the last
50,000 plays, for subscribers that resume, and is written with
``synchronous=OFF``. Analytics needs the whole history, so it keeps its own
record, never pruned (about 100 bytes a play with its indexes: a million
plays take about 100 MB), written with ``synchronous=NORMAL``.

Why the degradation is recorded, not replayed
---------------------------------------------
Each event keeps the track's ``overall_degradation`` as ``GET /stats`` computes
it, read while the table is write-locked (so it rises with the event ids across
processes). Replaying the play counts would be wrong for a track with plays
from before the record began, after a ``POST /reset`` (the counts start again
from zero), and after a change of ``DEGRADATION_RATE``; a recorded value is
right in all three cases, for one read of the track's metadata per play.
Measured: recording a play (that read and the insert) takes about 0.15 ms, of
the 3.6 ms a play takes with ``FSYNC`` on (one thread, no contention).
"""

from __future__ import annotations
