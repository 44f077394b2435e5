"""``getTrackInfo {stems: true}``: stems from the provider's cache at once, from a stems
job when its ``stems:ready`` event comes, an error reply when it fails or when the
analysis server is down (and the stems as soon as the provider makes them once it is
back, without being asked again), a clear error without any stems provider.

The provider is a small implementation of
:class:`taperoom.enginelink.stems.StemsProvider` that answers as the library's stem
cache does (a peer of the link, as the engine is)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from taperoom.enginelink.client import EngineLink
from taperoom.enginelink.stems import STEMS_FAILED, STEMS_READY, StemsUnavailable
from taperoom.events import EventBus
from taperoom.library.context import engine_link_of
from tests.enginelink.conftest import IDENTIFY, Linked, library_tracks, set_fields
from tests.enginelink.peer import EnginePeer


class Stems:
    """A stems provider: ``cached`` answers at once, ``job`` starts a job (None),
    ``down`` raises StemsUnavailable and keeps the request, as the analysis server
    being down does (:meth:`back` makes the stems kept), ``none`` raises it and
    keeps nothing."""

    def __init__(self, folder: Path) -> None:
        self.mode = "cached"
        self.asked: list[str] = []
        self.kept: list[str] = []
        self.paths = {name: folder / f"{name}.wav" for name in ("vocals", "other", "drums",
                                                                  "bass")}
        self._lock = threading.Lock()

    async def request_stems(self, track_id: str) -> Mapping[str, Path] | None:
        await asyncio.sleep(0)
        with self._lock:
            self.asked.append(track_id)
            mode = self.mode
        if mode == "down":
            with self._lock:
                self.kept.append(track_id)
            raise StemsUnavailable("the analysis server at http://127.0.0.1:9 does not "
                                   "answer", kept=True)
        if mode == "none":
            raise StemsUnavailable("no analysis server separates stems here")
        return self.paths if mode == "cached" else None

    def back(self, bus: EventBus) -> None:
        """The server is back: the stems kept are made (``stems:ready`` of each)."""
        with self._lock:
            kept, self.kept = self.kept, []
            self.mode = "cached"
        for track_id in kept:
            bus.send(STEMS_READY, {"trackId": track_id,
                                   "stems": {k: str(v) for k, v in self.paths.items()}})

    def times_asked(self) -> int:
        with self._lock:
            return len(self.asked)


@pytest.fixture
def stems_link(engine: EnginePeer, linked_library: Callable[..., Linked], tmp_path: Path,
               corpus: Path) -> Iterator[tuple[Linked, Stems, str]]:
    """A library whose link (built as the composition root builds it) has a stems
    provider; (library, provider, an analysed track id)."""
    lib = linked_library(engine.url, engine_link_enabled=False)
    stems = Stems(tmp_path / "stems")
    ctx = lib.ctx
    link: EngineLink = engine_link_of(ctx.settings, ctx.db, ctx.bus, ctx.tracks,
                                      ctx.analysis, ctx.sessions, stems=stems)
    link.start()
    lib.link = link
    lib.engine = engine
    engine.wait_connections(1)
    engine.wait_frame(lambda t: t == IDENTIFY)
    (track_id,) = library_tracks(ctx, corpus, tmp_path / "music")
    set_fields(ctx, track_id, bpm=124.0, musical_key=2, mode=1, first_beat_offset=0.02)
    yield lib, stems, track_id
    link.stop()


def _ready(stems: Stems, request_id: str, track_id: str) -> str:
    paths = {name: str(stems.paths[name]) for name in ("bass", "drums", "other", "vocals")}
    return ('{"success":true,"type":"stemsReady","requestId":"' + request_id
            + '","trackId":"' + track_id + '","stems":'
            + json.dumps(paths, separators=(",", ":"), ensure_ascii=False) + "}")


def test_cached_stems_follow_the_reply(stems_link: tuple[Linked, Stems, str]) -> None:
    """Cached stems: the track reply, then stemsReady with absolute WAV paths in the
    contract's order (bass, drums, other, vocals)."""
    lib, stems, track_id = stems_link
    engine = lib.engine
    assert engine is not None
    mark = engine.send({"command": "getTrackInfo", "trackId": track_id, "stems": True,
                        "requestId": "s1"})
    assert json.loads(engine.next_frame(mark))["success"] is True
    assert engine.next_frame(mark + 1) == _ready(stems, "s1", track_id)


def test_stems_of_a_job_come_when_it_ends(stems_link: tuple[Linked, Stems, str]) -> None:
    """A stems job: nothing more until ``stems:ready``, then stemsReady with the
    request's requestId; a failed job is an error reply."""
    lib, stems, track_id = stems_link
    engine = lib.engine
    assert engine is not None
    stems.mode = "job"
    mark = engine.send({"command": "getTrackInfo", "trackId": track_id, "stems": True,
                        "requestId": "s2"})
    assert json.loads(engine.next_frame(mark))["success"] is True
    assert engine.ask({"command": "bogus"}).endswith('"Unknown command: bogus"}')
    mark = len(engine.frames)
    lib.ctx.bus.send(STEMS_READY, {"trackId": track_id, "stems": {
        k: str(v) for k, v in stems.paths.items()}})
    assert engine.next_frame(mark) == _ready(stems, "s2", track_id)
    # a second request, whose job fails
    mark = engine.send({"command": "getTrackInfo", "trackId": track_id, "stems": True,
                        "requestId": "s3"})
    assert json.loads(engine.next_frame(mark))["success"] is True
    lib.ctx.bus.send(STEMS_FAILED, {"trackId": track_id, "error": "demucs ran out of memory"})
    assert engine.next_frame(mark + 1) == (
        '{"success":false,"trackId":"' + track_id
        + '","error":"Stem separation failed: demucs ran out of memory"}')


def test_stems_while_the_analysis_server_is_down(
        stems_link: tuple[Linked, Stems, str]) -> None:
    """The analysis server is down: a clear error reply at once, and the request waits
    (the provider keeps it; the link never asks again); the moment the provider makes
    the stems, stemsReady goes out with the request's requestId."""
    lib, stems, track_id = stems_link
    engine, link = lib.engine, lib.link
    assert engine is not None and link is not None
    stems.mode = "down"
    mark = engine.send({"command": "getTrackInfo", "trackId": track_id, "stems": True,
                        "requestId": "s4"})
    assert json.loads(engine.next_frame(mark))["success"] is True
    assert engine.next_frame(mark + 1) == (
        '{"success":false,"trackId":"' + track_id + '","error":"Stems unavailable: the '
        'analysis server at http://127.0.0.1:9 does not answer (the stems follow when it '
        'is back)"}')
    assert link.handlers.waiting_for_stems() == {track_id: 1}
    assert engine.ask({"command": "bogus"}).endswith('"Unknown command: bogus"}')
    mark = len(engine.frames)
    stems.back(lib.ctx.bus)
    assert engine.next_frame(mark) == _ready(stems, "s4", track_id)
    assert stems.times_asked() == 1 and link.handlers.waiting_for_stems() == {}


def test_stems_that_cannot_come_end_with_the_error(
        stems_link: tuple[Linked, Stems, str]) -> None:
    """A provider that cannot make the stems and keeps nothing: the error reply, and
    nothing waits (a later stems:ready of the track is not sent for it)."""
    lib, stems, track_id = stems_link
    engine, link = lib.engine, lib.link
    assert engine is not None and link is not None
    stems.mode = "none"
    mark = engine.send({"command": "getTrackInfo", "trackId": track_id, "stems": True,
                        "requestId": "s5"})
    assert json.loads(engine.next_frame(mark))["success"] is True
    assert engine.next_frame(mark + 1) == (
        '{"success":false,"trackId":"' + track_id + '","error":"Stems unavailable: no '
        'analysis server separates stems here"}')
    assert link.handlers.waiting_for_stems() == {}
    lib.ctx.bus.send(STEMS_READY, {"trackId": track_id, "stems": {
        k: str(v) for k, v in stems.paths.items()}})
    assert engine.ask({"command": "bogus"}).endswith('"Unknown command: bogus"}')
    assert not any('"stemsReady"' in t for t in engine.frames_of(1))


def test_stems_without_a_provider(linked: Linked, corpus: Path, tmp_path: Path) -> None:
    """No stems provider is configured: a clear error reply after the track's reply."""
    engine = linked.engine
    assert engine is not None
    (track_id,) = library_tracks(linked.ctx, corpus, tmp_path / "music")
    set_fields(linked.ctx, track_id, bpm=124.0, musical_key=2, mode=1)
    mark = engine.send({"command": "getTrackInfo", "trackId": track_id, "stems": True})
    assert json.loads(engine.next_frame(mark))["success"] is True
    assert engine.next_frame(mark + 1) == (
        '{"success":false,"trackId":"' + track_id + '","error":"Stems unavailable: stem '
        'separation is not configured in the library"}')
