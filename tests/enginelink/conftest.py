"""Fixtures of the engine link's tests: the stand-in engine, and a library linked to it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from taperoom.db import transaction
from taperoom.enginelink.client import EngineLink
from taperoom.library import models
from taperoom.library.app import create_app
from taperoom.library.context import LibraryServices, build_services
from tests.conftest import LiveServer
from tests.enginelink.peer import EnginePeer
from tests.library.analysislib import scanned_library
from tests.polling import wait_for

#: The first frame of every connection.
IDENTIFY = '{"type":"appServerIdentify"}'


@pytest.fixture
def engine() -> Iterator[EnginePeer]:
    """The stand-in engine, listening on a free port of 127.0.0.1."""
    peer = EnginePeer().start()
    yield peer
    peer.stop()


@dataclass
class Linked:
    """A library server linked to a stand-in engine (``link``: the link the test
    talks through, the library's own unless the test built another)."""

    ctx: LibraryServices
    server: LiveServer
    engine: EnginePeer | None
    link: EngineLink | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def status(self) -> dict[str, Any]:
        """The link's status (as ``GET /api/engine/status`` gives it)."""
        return self.ctx.engine_status.status()


@pytest.fixture
def linked_library(lib_settings: Callable[..., Any],
                   live_server: Callable[[Any], LiveServer]
                   ) -> Iterator[Callable[..., Linked]]:
    """Start a library server linked to the engine at `url` (small waits between
    connection attempts: 50 ms doubling to 400 ms; 1 s of play makes a play; the
    analyses a deck load queues wait for a worker unless `max_concurrent_analysis`
    says otherwise)."""
    built: list[LibraryServices] = []

    def start(url: str, **overrides: Any) -> Linked:
        values: dict[str, Any] = {
            "engine_link_enabled": True, "audio_server_ws_url": url,
            "audio_server_reconnect_delay": 50, "audio_server_reconnect_max": 400,
            "live_set_min_play_seconds": 1.0,
            "max_concurrent_analysis": 0}
        values.update(overrides)
        ctx = build_services(lib_settings(**values))
        built.append(ctx)
        return Linked(ctx, live_server(create_app(services=ctx)), None, ctx.engine_link)

    yield start
    for ctx in reversed(built):
        ctx.close()


@pytest.fixture
def linked(engine: EnginePeer, linked_library: Callable[..., Linked]) -> Linked:
    """A library linked to `engine`, once the link has identified itself."""
    lib = linked_library(engine.url)
    lib.engine = engine
    engine.wait_connections(1)
    engine.wait_frame(lambda t: t == IDENTIFY)
    return lib


#: Real MP3s of the corpus (25-30 s each), one per track the tests make.
SOURCES = ("scanner/real_music_tagged/01 - Muldjord - Armygeddon.mp3",
           "scanner/real_music_tagged/08 - Maxstack - A New Journey.mp3",
           "scanner/real_music_tagged/09 - Maxstack - Aberrations.mp3",
           "scanner/real_music_tagged/17 - various (librosa example data) - "
           "Kevin MacLeod - Vibe Ace.mp3")


def library_tracks(ctx: LibraryServices, corpus: Path, folder: Path, count: int = 1
                   ) -> list[str]:
    """`count` tracks of a scanned library folder, each on a copy of its own corpus
    MP3 (``track0.mp3``, ...), with no analysis; returns their ids in order."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        shutil.copyfile(corpus / SOURCES[i], folder / f"track{i}.mp3")
    scanned_library(ctx, folder)
    ids = []
    with transaction(ctx.db) as s:
        for i in range(count):
            track = s.query(models.Track).filter(
                models.Track.relative_path == f"track{i}.mp3").one()
            track.bpm = track.musical_key = track.mode = None  # whatever the tags said
            ids.append(str(track.id))
    return ids


def set_fields(ctx: LibraryServices, track_id: str, **fields: Any) -> None:
    """Set columns of a track's row (as an analysis or an import would have)."""
    with transaction(ctx.db) as s:
        track = s.get(models.Track, track_id)
        assert track is not None
        for key, value in fields.items():
            setattr(track, key, value)


def wait_connected(lib: Linked, connected: bool = True) -> dict[str, Any]:
    """Wait until the link is (or is not) connected; its status."""
    return wait_for(lambda: (lambda st: st if st["connected"] is connected else None)(
        lib.status()), 30, f"the link to be {'up' if connected else 'down'}")
