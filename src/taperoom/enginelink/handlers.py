"""What the library does with each inbound frame of the engine (contract section 4).

Events (field ``event``; never answered):

``trackLoadRequested {deck, trackId}``
    The track is on `deck` now for the live set, and its analysis goes first in
    the queue (a quick pass at the highest priority) when it has none.
``trackLoaded {deck, trackId, success}``
    Confirms the deck's track (``success: false`` empties the deck).
``cuePointSet {deck, index, position, success}``
    Upserts the user hot cue `index` of the deck's track (``trackId`` in the
    frame wins over the deck's); an existing cue keeps its name and colour.
``cuePointRemoved {deck, index, success}``
    Deletes that user hot cue.
``deckStateUpdate``
    Not in the contract, so any of these shapes is accepted: ``{event, deck,
    trackId?, isPlaying | playing | state | status, position?}``, the same fields
    inside a ``state`` or ``data`` object, ``state``/``status`` a string
    (``playing``/``play`` plays; ``paused``, ``stopped``, ``cued``, ``loaded``
    do not; ``empty``, ``ejected``, ``unloaded`` empty the deck) and
    ``trackId: null`` emptying the deck. It feeds the live set
    (:mod:`.liveset`). Frames without a deck are ignored.

Commands (field ``command``; answered on the connection they came on):

``getTrackInfo {trackId, deck?, stems?, requestId?}``
    The track's file, tempo, key, grid and hot cues, or an error string of the
    contract. A track without analysis gets ``Analysis in progress``, its quick
    analysis is queued first, and the full reply is pushed, unasked, once the
    tempo and key are stored (``Analysis failed`` if the analysis fails, beside
    the contract). With ``stems: true`` the stems follow (:meth:`EngineHandlers.stems`).
``deck.setCue {trackId? | deck, index, position, isLoop?, loopEnd?, name?, color?, requestId?}``
    Not handled by the original: saves user hot cue `index` (0-7) of the track
    (``trackId``, else the track on ``deck``) and answers
    ``{"success":true,"requestId"?,"trackId","command":"deck.setCue","hotCue":{...}}``,
    or an error reply (``Missing trackId parameter``, ``Track not found``,
    ``Invalid cue: ...``).
any other
    ``Unknown command: <name>``; a JSON frame with no command ``Invalid message
    format: missing command field``; a frame that is not JSON ``Failed to parse
    message``. ``welcome`` and the registration answer are accepted silently,
    and ``{success: false, ...}`` answers of the engine are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeGuard

from pydantic import ValidationError

from taperoom.enginelink import protocol
from taperoom.enginelink.liveset import LiveSet
from taperoom.enginelink.outbox import Outbox
from taperoom.enginelink.protocol import Inbound
from taperoom.enginelink.stems import (
    STEMS_FAILED,
    STEMS_READY,
    StemsProvider,
    StemsUnavailable,
)
from taperoom.enginelink.trackinfo import TrackInfoError, TrackInfoReader
from taperoom.errors import InvalidInput, NotFound, TaperoomError
from taperoom.events import Event, EventBus
from taperoom.library.schemas import HotCueBody, HotCueUpdate
from taperoom.library.tracks import canonical_id

log = logging.getLogger(__name__)

#: Error of a ``stems: true`` request when no stems provider is wired.
NO_STEMS = "Stems unavailable: stem separation is not configured in the library"
#: End of the error of a ``stems: true`` request that the provider keeps until the
#: analysis server is back (``stemsReady`` follows then, unasked).
STEMS_LATER = "the stems follow when it is back"

_PLAYING = {"playing", "play", "started", "running"}
_STOPPED = {"paused", "pause", "stopped", "stop", "cued", "loaded", "ready", "stopping"}
_EMPTY = {"empty", "ejected", "eject", "unloaded", "none"}


class DeckAnalysis(Protocol):
    """The analysis queue (:class:`taperoom.library.analysis.AnalysisService`)."""

    def analyze_for_deck(self, track_id: str) -> dict[str, Any] | None: ...


class HotCues(Protocol):
    """The hot cues of tracks (:class:`taperoom.library.tracks.TrackService`)."""

    def save_hot_cue(self, track_id: str, index: int, body: HotCueBody) -> dict[str, Any]: ...

    def update_hot_cue(self, track_id: str, index: int, body: HotCueUpdate,
                       source: str = "user") -> dict[str, Any]: ...

    def delete_hot_cue(self, track_id: str, index: int, source: str = "user") -> None: ...


class EngineHandlers:
    """Handles the engine's frames and the bus events it must hear of (see the module).

    Parameters
    ----------
    bus : EventBus
        Heard while subscribed: ``engine:first_beat_offset`` (sent on as
        ``updateFirstBeatOffset``), ``track:updated`` and ``analysis:failed``
        (the analyses a ``getTrackInfo`` waits for), ``stems:ready`` and
        ``stems:failed``.
    reader : TrackInfoReader
    cues : HotCues
    analysis : DeckAnalysis
    live : LiveSet
    outbox : Outbox
        Where messages sent unasked go.
    stems : StemsProvider, optional
        None: ``stems: true`` is answered with :data:`NO_STEMS`. The provider
        retries what it cannot do now; the handlers only wait for its events.
    """

    def __init__(self, bus: EventBus, reader: TrackInfoReader, cues: HotCues,
                 analysis: DeckAnalysis, live: LiveSet, outbox: Outbox, *,
                 stems: StemsProvider | None = None) -> None:
        self.bus = bus
        self.reader = reader
        self.cues = cues
        self.analysis = analysis
        self.live = live
        self.outbox = outbox
        self.stems_provider = stems
        self._lock = threading.Lock()
        # canonical track id -> [(requestId, trackId as asked)] awaiting an analysis / stems
        self._analysing: dict[str, list[tuple[Any, Any]]] = {}
        self._stemming: dict[str, list[tuple[Any, Any]]] = {}
        self._unsubscribe: list[Any] = []

    # -- bus -----------------------------------------------------------------------------

    def subscribe(self) -> None:
        """Start hearing the bus events (the link does it when it starts)."""
        if self._unsubscribe:
            return
        self._unsubscribe = [
            self.bus.on(Event.ENGINE_FIRST_BEAT_OFFSET, self._first_beat_moved),
            self.bus.on(Event.TRACK_UPDATED, self._track_updated),
            self.bus.on(Event.ANALYSIS_FAILED, self._analysis_failed),
            self.bus.on(STEMS_READY, self._stems_ready),
            self.bus.on(STEMS_FAILED, self._stems_failed)]

    def unsubscribe(self) -> None:
        """Stop hearing them."""
        for stop in self._unsubscribe:
            stop()
        self._unsubscribe = []

    def _first_beat_moved(self, data: dict[str, Any]) -> None:
        track_id, offset = data.get("trackId"), data.get("firstBeatOffset")
        if isinstance(track_id, str) and isinstance(offset, (int, float)):
            self.outbox.put(protocol.update_first_beat_offset(track_id, offset))

    def _track_updated(self, data: dict[str, Any]) -> None:
        track_id = data.get("trackId")
        with self._lock:
            waiting = track_id in self._analysing
        if not waiting or not isinstance(track_id, str):
            return
        try:
            info = self.reader.read(track_id)
        except TrackInfoError as exc:
            error = exc.error
            self._push_analysis(track_id, lambda _, asked: protocol.error_reply(asked, error))
            return
        if info.analysed:
            self._push_analysis(track_id, info.reply)

    def _analysis_failed(self, data: dict[str, Any]) -> None:
        if data.get("status") != "failed":
            return  # a waiting job cancelled for the deck's quick one, or by a user
        for track_id in data.get("trackIds") or [data.get("trackId")]:
            if isinstance(track_id, str):
                self._push_analysis(track_id, lambda _, asked: protocol.error_reply(
                    asked, protocol.ANALYSIS_FAILED))

    def _push_analysis(self, track_id: str,
                       build: Callable[[Any, Any], dict[str, Any]]) -> None:
        """Push ``build(requestId, trackId as asked)`` to every getTrackInfo waiting for
        the analysis of `track_id`."""
        with self._lock:
            waiting = self._analysing.pop(track_id, [])
        for request_id, asked in waiting:
            self.outbox.put(build(request_id, asked))

    def _stems_ready(self, data: dict[str, Any]) -> None:
        track_id, stems = data.get("trackId"), data.get("stems")
        if not isinstance(track_id, str) or not isinstance(stems, Mapping):
            return
        with self._lock:
            waiting = self._stemming.pop(track_id, [])
        for request_id, asked in waiting:
            self.outbox.put(protocol.stems_ready(request_id, asked, stems))

    def _stems_failed(self, data: dict[str, Any]) -> None:
        track_id = data.get("trackId")
        if not isinstance(track_id, str):
            return
        with self._lock:
            waiting = self._stemming.pop(track_id, [])
        for _, asked in waiting:
            self.outbox.put(protocol.error_reply(
                asked, f"Stem separation failed: {data.get('error') or 'unknown error'}"))

    # -- frames --------------------------------------------------------------------------

    async def handle(self, frame: str | bytes) -> list[dict[str, Any]]:
        """Handle one inbound frame; returns the replies to send on its connection."""
        inbound = protocol.classify(frame)
        if inbound.kind == "invalid":
            return [protocol.error_reply("", protocol.PARSE_FAILED)]
        if inbound.kind == "greeting":
            return []
        if inbound.kind == "reply":
            log.warning("the audio engine answered with an error: %s", inbound.body)
            return []
        if inbound.kind == "event":
            try:
                await asyncio.to_thread(self.event, inbound)
            except Exception:
                log.exception("engine event %s failed", inbound.name)
            return []
        if inbound.kind == "no_command":
            return [protocol.error_reply(inbound.body.get("trackId") or "",
                                         protocol.MISSING_COMMAND)]
        try:
            if inbound.name == "getTrackInfo":
                return await self.track_info(inbound)
            if inbound.name == "deck.setCue":
                return [await asyncio.to_thread(self.set_cue, inbound)]
        except Exception:
            log.exception("engine command %s failed", inbound.name)
            return [protocol.error_reply(inbound.body.get("trackId") or "",
                                         protocol.INTERNAL_ERROR)]
        return [protocol.error_reply(inbound.body.get("trackId") or "",
                                     f"Unknown command: {inbound.name}")]

    # -- events --------------------------------------------------------------------------

    def event(self, inbound: Inbound) -> None:
        """Act on one event (in a worker thread: it writes to the database)."""
        body, name = inbound.body, inbound.name
        deck = inbound.text("deck")
        if name == "trackLoadRequested":
            track_id = _track(body.get("trackId"))
            if deck and track_id:
                self.live.load(deck, track_id)
            if track_id:
                self._analyse_quietly(track_id)
        elif name == "trackLoaded":
            track_id = _track(body.get("trackId"))
            if deck and body.get("success") is False:
                self.live.eject(deck)
            elif deck and track_id:
                self.live.load(deck, track_id)
        elif name == "cuePointSet":
            if body.get("success") is not False:
                self._cue_set(deck, body)
        elif name == "cuePointRemoved":
            if body.get("success") is not False:
                self._cue_removed(deck, body)
        elif name == "deckStateUpdate":
            self._deck_state(body)
        else:
            log.debug("engine event %s ignored", name)

    def _analyse(self, track_id: str) -> dict[str, Any] | None:
        try:
            return self.analysis.analyze_for_deck(track_id)
        except TaperoomError as exc:
            log.info("no deck analysis of track %s: %s", track_id, exc.message)
            raise

    def _analyse_quietly(self, track_id: str) -> None:
        with contextlib.suppress(TaperoomError):
            self._analyse(track_id)

    def _cue_track(self, deck: str, body: dict[str, Any]) -> str | None:
        track_id = _track(body.get("trackId")) or (self.live.track_on(deck) if deck else None)
        if track_id is None:
            log.warning("engine cue on deck %r without a known track: %s", deck, body)
        return track_id

    def _cue_set(self, deck: str, body: dict[str, Any]) -> None:
        track_id = self._cue_track(deck, body)
        index, position = body.get("index"), body.get("position")
        if track_id is None or not _is_index(index) or not _is_number(position):
            return
        try:
            try:
                self.cues.update_hot_cue(track_id, index, HotCueUpdate(position=position))
            except (NotFound, InvalidInput):  # no cue there yet, or a loop it would break
                if self.reader.track_of(track_id) is None:
                    raise
                self.cues.save_hot_cue(track_id, index, HotCueBody(position=position))
        except (TaperoomError, ValidationError) as exc:
            log.warning("engine cue %s of track %s not saved: %s", index, track_id, exc)

    def _cue_removed(self, deck: str, body: dict[str, Any]) -> None:
        track_id = self._cue_track(deck, body)
        index = body.get("index")
        if track_id is None or not _is_index(index):
            return
        with contextlib.suppress(NotFound):
            self.cues.delete_hot_cue(track_id, index, "user")

    def _deck_state(self, body: dict[str, Any]) -> None:
        fields = dict(body)
        for key in ("state", "data"):
            inner = body.get(key)
            if isinstance(inner, dict):
                fields.pop(key)
                fields = {**inner, **fields}
        deck = fields.get("deck")
        if deck is None or deck == "":
            return
        deck = protocol.js_string(deck)
        status = next((str(fields[k]).strip().lower() for k in ("state", "status")
                       if isinstance(fields.get(k), str)), None)
        if ("trackId" in fields and not fields["trackId"]) or status in _EMPTY:
            self.live.eject(deck)
            return
        track_id = _track(fields.get("trackId"))
        if track_id is not None:
            self.live.load(deck, track_id)
        playing = next((fields[k] for k in ("isPlaying", "playing")
                        if isinstance(fields.get(k), bool)), None)
        if playing is None and status in _PLAYING:
            playing = True
        elif playing is None and status in _STOPPED:
            playing = False
        if playing is not None:
            self.live.set_playing(deck, playing)

    # -- commands ------------------------------------------------------------------------

    async def track_info(self, inbound: Inbound) -> list[dict[str, Any]]:
        """``getTrackInfo``: its reply, then the stems when asked for (see the module)."""
        body = inbound.body
        asked, request_id = body.get("trackId"), body.get("requestId")
        if asked is None or asked == "":
            return [protocol.error_reply("", protocol.MISSING_TRACK_ID)]
        track_id = _track(asked) or protocol.js_string(asked)
        try:
            info = await asyncio.to_thread(self.reader.read, track_id)
        except TrackInfoError as exc:
            return [protocol.error_reply(asked, exc.error)]
        replies: list[dict[str, Any]]
        if info.analysed:
            replies = [info.reply(request_id, asked)]
        else:
            replies = [await asyncio.to_thread(self._start_analysis, info.track_id, asked,
                                               request_id)]
        if body.get("stems") is True and replies[0].get("error") != protocol.ANALYSIS_NOT_STARTED:
            replies += await self.stems(info.track_id, asked, request_id)
        return replies

    def _start_analysis(self, track_id: str, asked: Any, request_id: Any) -> dict[str, Any]:
        """Queue the deck analysis of an unanalysed track; the reply for now."""
        with self._lock:
            self._analysing.setdefault(track_id, []).append((request_id, asked))
        try:
            self._analyse(track_id)
        except TaperoomError:
            with self._lock:
                waiting = self._analysing.get(track_id, [])
                if (request_id, asked) in waiting:
                    waiting.remove((request_id, asked))
                if not waiting:
                    self._analysing.pop(track_id, None)
            return protocol.error_reply(asked, protocol.ANALYSIS_NOT_STARTED)
        try:  # it may have finished already
            info = self.reader.read(track_id)
        except TrackInfoError as exc:
            return protocol.error_reply(asked, exc.error)
        if info.analysed:
            with self._lock:
                waiting = self._analysing.get(track_id, [])
                if (request_id, asked) not in waiting:
                    return protocol.error_reply(asked, protocol.ANALYSIS_IN_PROGRESS)
                waiting.remove((request_id, asked))  # pushed already otherwise
                if not waiting:
                    self._analysing.pop(track_id, None)
            return info.reply(request_id, asked)
        return protocol.error_reply(asked, protocol.ANALYSIS_IN_PROGRESS)

    async def stems(self, track_id: str, asked: Any, request_id: Any) -> list[dict[str, Any]]:
        """The stems of a ``getTrackInfo {stems: true}``.

        Cached stems are answered at once with ``stemsReady``; a stems job started
        by the provider is answered with ``stemsReady`` (with the request's
        ``requestId``) when ``stems:ready`` comes, or an error reply on
        ``stems:failed``. While the analysis server is down the request gets an
        error reply saying so (:data:`STEMS_LATER`), and the provider keeps it:
        the request waits for ``stems:ready`` or ``stems:failed`` as for a job, so
        ``stemsReady`` goes out as soon as the stems are made, without the engine
        asking again. Stems that cannot come at all (a provider that does not keep
        the request) end with the error reply.
        """
        if self.stems_provider is None:
            return [protocol.error_reply(asked, NO_STEMS)]
        entry = (request_id, asked)
        with self._lock:
            self._stemming.setdefault(track_id, []).append(entry)
        try:
            got = await self.stems_provider.request_stems(track_id)
        except StemsUnavailable as exc:
            if exc.kept:  # stems:ready or stems:failed answers it
                return [protocol.error_reply(
                    asked, f"Stems unavailable: {exc.message} ({STEMS_LATER})")]
            self._forget_stems(track_id, entry)
            return [protocol.error_reply(asked, f"Stems unavailable: {exc.message}")]
        except TaperoomError as exc:
            self._forget_stems(track_id, entry)
            return [protocol.error_reply(asked, f"Stem separation failed: {exc.message}")]
        except BaseException:
            self._forget_stems(track_id, entry)
            raise
        if got is None:
            return []  # stems:ready answers it
        if not self._forget_stems(track_id, entry):
            return []  # stems:ready came first and answered it
        return [protocol.stems_ready(request_id, asked, {k: Path(v) for k, v in got.items()})]

    def _forget_stems(self, track_id: str, entry: tuple[Any, Any]) -> bool:
        """Stop waiting for the stems of one request; False when it no longer waited."""
        with self._lock:
            waiting = self._stemming.get(track_id, [])
            if entry not in waiting:
                return False
            waiting.remove(entry)
            if not waiting:
                self._stemming.pop(track_id, None)
            return True

    def waiting_for_stems(self) -> dict[str, int]:
        """Requests waiting for ``stems:ready`` / ``stems:failed``, counted by track id."""
        with self._lock:
            return {track_id: len(waiting) for track_id, waiting in self._stemming.items()}

    def set_cue(self, inbound: Inbound) -> dict[str, Any]:
        """``deck.setCue`` (see the module); its reply."""
        body = inbound.body
        deck = inbound.text("deck")
        asked = body.get("trackId")
        track_id = _track(asked) if asked not in (None, "") else (
            self.live.track_on(deck) if deck else None)
        shown = asked if asked not in (None, "") else (track_id or "")
        if track_id is None:
            if asked not in (None, ""):
                return protocol.error_reply(asked, protocol.TRACK_NOT_FOUND)
            return protocol.error_reply("", protocol.MISSING_TRACK_ID)
        index = body.get("index")
        if not _is_index(index):
            return protocol.error_reply(shown, "Invalid cue: index must be an integer 0-7")
        try:
            cue = HotCueBody.model_validate(
                {k: body[k] for k in ("position", "isLoop", "loopEnd", "name", "color")
                 if k in body})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "cue"
            return protocol.error_reply(shown, f"Invalid cue: {where}: {first['msg']}")
        try:
            saved = self.cues.save_hot_cue(track_id, index, cue)
        except NotFound:
            return protocol.error_reply(shown, protocol.TRACK_NOT_FOUND)
        return protocol.set_cue_reply(body.get("requestId"), shown, protocol.hot_cue(
            saved["cue_index"], saved["position"], bool(saved["is_loop"]), saved["loop_end"]))

    # -- the connection ------------------------------------------------------------------

    def disconnected(self) -> None:
        """The engine went away: every deck's track leaves (the live set logs them)."""
        self.live.finish_all()


def _track(value: Any) -> str | None:
    """A track id of a frame in its canonical form (None when absent or not a UUID)."""
    if not isinstance(value, str) or not value.strip():
        return None
    return canonical_id(value)


def _is_index(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 7


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
