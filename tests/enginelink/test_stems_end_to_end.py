"""Stems from end to end: the stand-in engine asks the library (a real server, its real
stems service and stem cache) for a track's stems with ``getTrackInfo {stems: true}``,
and the stand-in analysis server of contract §3 makes them through the library's real
``/api/analysis/callback``.

With the analysis server up, the track's reply is followed by ``stemsReady`` with
absolute paths of WAV files that decode to the stems delivered. With the server down,
the reply is followed by a clear error; when the server comes back, ``stemsReady``
follows without the engine asking again."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from taperoom.enginelink.stems import STEM_NAMES
from tests.conftest import free_port
from tests.enginelink.conftest import IDENTIFY, set_fields
from tests.enginelink.peer import EnginePeer
from tests.library.analysislib import copy_file, scanned_library, track_by_name
from tests.library.externalkit import StandIn, library
from tests.library.stemskit import b64, corpus_stems, encoded, stems_script
from tests.polling import wait_for

#: Seconds a wait may take at most (generous: the machine is shared).
DEADLINE = 120.0
#: The corpus recording the library holds.
TRACK = ("scanner/real_music_tagged/06 - John Garner - Partita No. 1 in B minor: Tempo di "
         "Borea (BWV1002).wav")


@pytest.fixture(scope="module")
def stems(corpus: Path) -> dict[str, np.ndarray]:
    """Four stems made from a corpus recording (int16, shape (frames, 2), 44.1 kHz)."""
    return corpus_stems(corpus)


@pytest.fixture
def server_script(stems: dict[str, np.ndarray], tmp_path: Path
                  ) -> Callable[[StandIn, dict[str, Any], str], None]:
    """The stand-in's answer to a stems job: the four stems as base64 WAV, then the end."""
    wav = {name: b64(encoded(stems[name], "wav", tmp_path / "encoded", name))
           for name in STEM_NAMES}
    return stems_script(lambda peer: wav, fmt="wav")


@contextmanager
def linked_library(lib_settings: Callable[..., Any], engine: EnginePeer, music: Path,
                   server_url: str) -> Iterator[tuple[Any, str]]:
    """The library (real server, ANALYSIS_SERVER_URL = `server_url`, linked to `engine`)
    holding `music`; yields (services, the id of its track, analysed) once the link is
    up."""
    with library(lib_settings, analysis_server_url=server_url, stems_retry_seconds=0.2,
                 engine_link_enabled=True, audio_server_ws_url=engine.url,
                 audio_server_reconnect_delay=50, audio_server_reconnect_max=400) as (ctx, _):
        scanned_library(ctx, music)
        track_id = str(track_by_name(ctx, "t0.wav").id)
        set_fields(ctx, track_id, bpm=124.0, musical_key=2, mode=1, first_beat_offset=0.02)
        engine.wait_connections(1, DEADLINE)
        engine.wait_frame(lambda t: t == IDENTIFY, timeout=DEADLINE)
        yield ctx, track_id


@pytest.fixture
def music(corpus: Path, tmp_path: Path) -> Path:
    """The library folder: one corpus recording, ``t0.wav``."""
    copy_file(corpus / TRACK, tmp_path / "music" / "t0.wav")
    return tmp_path / "music"


def ask(engine: EnginePeer, track_id: str, request_id: str) -> tuple[dict[str, Any], int]:
    """Send ``getTrackInfo {stems: true}``; (its reply, the mark after which the frames
    that follow it come)."""
    mark = engine.send({"command": "getTrackInfo", "trackId": track_id, "stems": True,
                        "requestId": request_id})
    return json.loads(engine.next_frame(mark, DEADLINE)), mark + 1


def stems_ready(engine: EnginePeer, after: int) -> dict[str, Any]:
    """The first ``stemsReady`` received after frame number `after`."""
    return json.loads(engine.wait_frame(lambda t: '"stemsReady"' in t, after=after,
                                        timeout=DEADLINE))


def assert_wav_stems(message: dict[str, Any], request_id: str, track_id: str, folder: Path,
                     stems: dict[str, np.ndarray]) -> None:
    """`message` is the contract's stemsReady: its keys in order, the stems in the
    contract's order, each an absolute path in `folder` of a WAV file that decodes to
    exactly the stem delivered."""
    assert list(message) == ["success", "type", "requestId", "trackId", "stems"]
    assert (message["success"], message["type"], message["requestId"], message["trackId"]) == (
        True, "stemsReady", request_id, track_id)
    assert list(message["stems"]) == list(STEM_NAMES)
    for name, text in message["stems"].items():
        path = Path(text)
        assert path.is_absolute() and path == folder / f"{name}.wav", path
        assert sf.info(str(path)).format == "WAV"
        got, rate = sf.read(str(path), dtype="int16")
        assert rate == 44100 and np.array_equal(got, stems[name]), name


def test_stems_reach_the_engine(engine: EnginePeer, lib_settings: Callable[..., Any],
                                music: Path, stems: dict[str, np.ndarray],
                                server_script: Any) -> None:
    """getTrackInfo with stems: the reply, then stemsReady with absolute WAV paths that
    decode to the stems the server delivered; asked again, the cached stems follow the
    reply at once, without another job."""
    with StandIn(script=server_script) as peer, \
            linked_library(lib_settings, engine, music, peer.url) as (ctx, track_id):
        reply, after = ask(engine, track_id, "e1")
        assert reply["success"] is True and reply["requestId"] == "e1"
        assert reply["filePath"] == str(music / "t0.wav") and reply["bpm"] == 124
        file_hash = str(track_by_name(ctx, "t0.wav").file_hash)
        folder = ctx.settings.data_path.absolute() / "stem_cache" / file_hash
        assert_wav_stems(stems_ready(engine, after), "e1", track_id, folder, stems)
        assert len(peer.jobs) == 1 and peer.jobs[0]["options"]["stems"] is True

        reply, after = ask(engine, track_id, "e2")
        assert reply["success"] is True
        assert_wav_stems(json.loads(engine.next_frame(after, DEADLINE)), "e2", track_id,
                         folder, stems)
        assert len(peer.jobs) == 1
        assert ctx.engine_link.handlers.waiting_for_stems() == {}
        wait_for(lambda: len(peer.callbacks) >= 2, DEADLINE, "the last callbacks")


def test_stems_follow_when_the_analysis_server_is_back(
        engine: EnginePeer, lib_settings: Callable[..., Any], music: Path,
        stems: dict[str, np.ndarray], server_script: Any) -> None:
    """The analysis server is down: the reply, then a clear error naming the server;
    the request waits in the library, and once the server listens, stemsReady with the
    request's requestId arrives without the engine asking again."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with linked_library(lib_settings, engine, music, url) as (ctx, track_id):
        reply, after = ask(engine, track_id, "e3")
        assert reply["success"] is True and reply["requestId"] == "e3"
        error = json.loads(engine.next_frame(after, DEADLINE))
        assert list(error) == ["success", "trackId", "error"]
        assert error["success"] is False and error["trackId"] == track_id
        assert error["error"].startswith(
            f"Stems unavailable: The analysis server at {url} cannot be reached"), error
        assert error["error"].endswith("(the stems follow when it is back)"), error
        assert ctx.engine_link.handlers.waiting_for_stems() == {track_id: 1}
        file_hash = str(track_by_name(ctx, "t0.wav").file_hash)
        assert ctx.stems.pending() == {file_hash: "server"}

        with StandIn(script=server_script, port=port) as peer:
            folder = ctx.settings.data_path.absolute() / "stem_cache" / file_hash
            assert_wav_stems(stems_ready(engine, after + 1), "e3", track_id, folder, stems)
            assert len(peer.jobs) == 1
            wait_for(lambda: len(peer.callbacks) >= 2, DEADLINE, "the last callbacks")
        assert ctx.engine_link.handlers.waiting_for_stems() == {}
        assert ctx.stems.pending() == {}
        sent = [json.loads(t) for t in engine.frames_of(1)]
        assert [m.get("type") or m.get("error", "reply")[:18] for m in sent[1:]] == [
            "reply", "Stems unavailable:", "stemsReady"]
