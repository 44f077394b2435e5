"""The live set: which track is on which deck, and the tracks that really played.

The engine tells the library what its decks do (``trackLoadRequested``,
``trackLoaded``, ``deckStateUpdate``); :class:`LiveSet` follows each deck and,
when a track leaves its deck (another track is loaded, the deck is emptied, the
engine goes away, the link stops), logs it into the active session playlist if it
played for at least ``LIVE_SET_MIN_PLAY_SECONDS`` (default 30): an entry with
``played_at`` (unix s when it started playing) and ``play_duration`` (s of play,
pauses left out), the track's ``play_count`` and ``last_played`` raised
(:meth:`taperoom.playlists.sessions.SessionService.log_play`), and the event
``session:track_played``. Tracks loaded and taken off unplayed, or played for
less, are not logged; neither is anything while no session is active (the most
recent session not finalized is the active one).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from taperoom.errors import TaperoomError
from taperoom.events import Event, EventBus, SessionTrackPlayedPayload

log = logging.getLogger(__name__)


class SessionLog(Protocol):
    """The session playlists (:class:`taperoom.playlists.sessions.SessionService`)."""

    def active(self) -> list[dict[str, Any]]: ...

    def log_play(self, playlist_id: str, track_id: str, *, played_at: int | None = None,
                 duration: int | None = None, notes: str | None = None) -> int: ...


@dataclass
class _Deck:
    track_id: str | None = None
    playing_since: float | None = None  # monotonic s, while playing
    played: float = 0.0  # s played before playing_since
    started_at: float | None = None  # unix s of the first play


class LiveSet:
    """Follows the engine's decks and logs the tracks that played (see the module).

    Parameters
    ----------
    sessions : SessionLog
        Where plays are logged.
    bus : EventBus
        Receives ``session:track_played``.
    min_play_seconds : float
        ``LIVE_SET_MIN_PLAY_SECONDS``: seconds of play that make a play.
    clock : callable, optional
        Monotonic seconds (default :func:`time.monotonic`).
    wall : callable, optional
        Unix seconds (default :func:`time.time`).
    """

    def __init__(self, sessions: SessionLog, bus: EventBus, *, min_play_seconds: float,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.sessions = sessions
        self.bus = bus
        self.min_play_seconds = min_play_seconds
        self.clock = clock
        self.wall = wall
        self._decks: dict[str, _Deck] = {}
        self._lock = threading.Lock()

    def track_on(self, deck: str) -> str | None:
        """The track on `deck` (None when empty or unknown)."""
        with self._lock:
            state = self._decks.get(deck)
            return state.track_id if state else None

    def load(self, deck: str, track_id: str) -> None:
        """`track_id` is on `deck` now; the track it replaces leaves (and is logged if
        it played). Loading the same track again changes nothing."""
        with self._lock:
            state = self._decks.get(deck)
            if state is not None and state.track_id == track_id:
                return
            ended = self._take(deck)
            self._decks[deck] = _Deck(track_id=track_id)
        self._log(deck, ended)

    def eject(self, deck: str) -> None:
        """`deck` is empty now; its track leaves (see :meth:`load`)."""
        with self._lock:
            ended = self._take(deck)
        self._log(deck, ended)

    def set_playing(self, deck: str, playing: bool) -> None:
        """`deck` plays (True) or stopped or paused (False); play time is counted."""
        with self._lock:
            state = self._decks.setdefault(deck, _Deck())
            now = self.clock()
            if playing and state.playing_since is None and state.track_id is not None:
                state.playing_since = now
                if state.started_at is None:
                    state.started_at = self.wall()
            elif not playing and state.playing_since is not None:
                state.played += now - state.playing_since
                state.playing_since = None

    def finish_all(self) -> None:
        """Every deck's track leaves (the engine went away, or the link stops)."""
        with self._lock:
            ended = [(deck, self._take(deck)) for deck in list(self._decks)]
        for deck, state in ended:
            self._log(deck, state)

    def decks(self) -> dict[str, dict[str, Any]]:
        """``{deck: {trackId, playing, playedSeconds}}`` now."""
        with self._lock:
            now = self.clock()
            return {deck: {"trackId": s.track_id, "playing": s.playing_since is not None,
                           "playedSeconds": s.played + (now - s.playing_since
                                                        if s.playing_since is not None
                                                        else 0.0)}
                    for deck, s in sorted(self._decks.items())}

    def _take(self, deck: str) -> _Deck | None:
        """Remove `deck`'s state, its play time counted up to now (lock held)."""
        state = self._decks.pop(deck, None)
        if state is not None and state.playing_since is not None:
            state.played += self.clock() - state.playing_since
            state.playing_since = None
        return state

    def _log(self, deck: str, state: _Deck | None) -> None:
        if state is None or state.track_id is None or state.started_at is None:
            return
        if state.played < self.min_play_seconds:
            return
        try:
            active = self.sessions.active()
            if not active:
                log.info("track %s played on deck %s for %.0f s; no session is active",
                         state.track_id, deck, state.played)
                return
            playlist_id = str(active[0]["id"])
            played_at, duration = int(state.started_at), round(state.played)
            occurrence = self.sessions.log_play(playlist_id, state.track_id,
                                                played_at=played_at, duration=duration)
        except TaperoomError as exc:
            log.warning("could not log the play of track %s on deck %s: %s",
                        state.track_id, deck, exc.message)
            return
        payload: SessionTrackPlayedPayload = {
            "playlistId": playlist_id, "trackId": state.track_id, "deck": deck,
            "playedAt": played_at, "duration": duration, "occurrence": occurrence}
        self.bus.send(Event.SESSION_TRACK_PLAYED, dict(payload))
