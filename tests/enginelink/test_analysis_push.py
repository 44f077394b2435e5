"""A track the engine asks for before it is analysed: ``Analysis in progress`` at once,
a quick analysis at the highest priority (a real one, on a corpus MP3), then the
full reply pushed unasked with the request's requestId, and ``updateFirstBeatOffset``
since the analysis placed the first beat."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from taperoom.library import models
from tests.enginelink.conftest import IDENTIFY, Linked, library_tracks
from tests.enginelink.peer import EnginePeer

#: Seconds a real analysis may take on a loaded machine.
ANALYSIS_DEADLINE = 180.0


def test_unanalysed_track_is_analysed_first_and_pushed(
        engine: EnginePeer, linked_library: Callable[..., Linked], corpus: Path,
        tmp_path: Path) -> None:
    """getTrackInfo of an unanalysed track: the contract's error reply, a deck job
    (priority high, quick pass first), then the success reply pushed with the same
    requestId and the tempo and key the analysis found, and the new first beat."""
    lib = linked_library(engine.url, max_concurrent_analysis=1)
    engine.wait_connections(1)
    engine.wait_frame(lambda t: t == IDENTIFY)
    (track_id,) = library_tracks(lib.ctx, corpus, tmp_path / "music")
    mark = engine.send({"command": "getTrackInfo", "trackId": track_id, "requestId": "a1",
                        "deck": "A"})
    assert engine.next_frame(mark) == (
        '{"success":false,"trackId":"' + track_id + '","error":"Analysis in progress"}')
    with lib.ctx.db() as s:
        track = s.get(models.Track, track_id)
        assert track is not None
        file_hash = track.file_hash
    job = lib.ctx.analysis.job(str(file_hash))
    assert job["priority"] == "high"
    assert job["callback_metadata"] == {"type": "deck_load", "trackId": track_id}
    pushed = engine.wait_frame(lambda t: t.startswith('{"success":true,"requestId":"a1"'),
                               after=mark, timeout=ANALYSIS_DEADLINE)
    reply = json.loads(pushed)
    assert list(reply) == ["success", "requestId", "trackId", "filePath", "bpm", "key",
                           "mode", "firstBeatOffset", "firstPhraseBeatNo", "hotCues"]
    assert reply["trackId"] == track_id and reply["bpm"] > 0
    assert reply["key"] in {str(k) for k in range(12)} and reply["mode"] in ("0", "1")
    first = engine.wait_frame(lambda t: '"updateFirstBeatOffset"' in t, after=mark,
                              timeout=ANALYSIS_DEADLINE)
    assert json.loads(first) == {"command": "updateFirstBeatOffset", "trackId": track_id,
                                 "firstBeatOffset": reply["firstBeatOffset"]}
    # the pushed reply is what a request now answers
    assert engine.ask({"command": "getTrackInfo", "trackId": track_id,
                       "requestId": "a1"}) == pushed
