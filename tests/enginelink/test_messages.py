"""Every frame of contract section 4 against a stand-in engine: the getTrackInfo reply
and its error strings byte for byte, hot cues from cuePointSet / cuePointRemoved and
their source preference, deck.setCue, the error replies, the frames answered with
nothing, and updateFirstBeatOffset after a first-beat edit through the HTTP API."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from taperoom.db import transaction
from taperoom.library import models
from tests.enginelink.conftest import Linked, library_tracks, set_fields, wait_connected
from tests.enginelink.peer import EnginePeer
from tests.polling import wait_for

UNKNOWN = "7d444840-9dc0-11d1-b245-5ffdce74fad2"


def _engine(linked: Linked) -> EnginePeer:
    assert linked.engine is not None
    return linked.engine


def _analysed(linked: Linked, corpus: Path, tmp_path: Path) -> tuple[str, str]:
    """An analysed track (128 BPM, key 9, minor, first beat 0.12 s); (id, file path)."""
    (track_id,) = library_tracks(linked.ctx, corpus, tmp_path / "music")
    set_fields(linked.ctx, track_id, bpm=128.0, musical_key=9, mode=0,
               first_beat_offset=0.12, first_phrase_beat_no=None)
    return track_id, str(tmp_path / "music" / "track0.mp3")


def test_get_track_info_reply_byte_for_byte(linked: Linked, corpus: Path,
                                            tmp_path: Path) -> None:
    """The contract's example reply, key for key and byte for byte; without a requestId
    the key is left out (JSON.stringify drops undefined)."""
    engine = _engine(linked)
    track_id, path = _analysed(linked, corpus, tmp_path)
    reply = engine.ask({"command": "getTrackInfo", "trackId": track_id, "requestId": "r1"})
    path_json = json.dumps(path, ensure_ascii=False)
    assert reply == ('{"success":true,"requestId":"r1","trackId":"' + track_id + '",'
                     '"filePath":' + path_json + ',"bpm":128,"key":"9","mode":"0",'
                     '"firstBeatOffset":0.12,"firstPhraseBeatNo":0,"hotCues":[]}')
    reply = engine.ask({"command": "getTrackInfo", "trackId": track_id, "deck": "A"})
    assert reply == ('{"success":true,"trackId":"' + track_id + '","filePath":' + path_json
                     + ',"bpm":128,"key":"9","mode":"0","firstBeatOffset":0.12,'
                     '"firstPhraseBeatNo":0,"hotCues":[]}')
    set_fields(linked.ctx, track_id, bpm=127.5, musical_key=11, mode=1,
               first_beat_offset=0.0, first_phrase_beat_no=3)
    reply = json.loads(engine.ask({"command": "getTrackInfo", "trackId": track_id,
                                   "requestId": 7}))
    assert reply["requestId"] == 7 and reply["bpm"] == 127.5
    assert (reply["key"], reply["mode"]) == ("11", "1")
    assert reply["firstBeatOffset"] == 0 and reply["firstPhraseBeatNo"] == 3


def test_cue_events_change_the_hot_cues_of_the_next_reply(linked: Linked, corpus: Path,
                                                          tmp_path: Path) -> None:
    """trackLoadRequested then cuePointSet {index 2, 12.5 s} makes the next reply carry
    ``[{"index":2,"position":12.5,"isLoop":false}]`` (a user cue stored); a second
    cuePointSet moves it, keeping its name; cuePointRemoved deletes it; unsuccessful
    cue events change nothing."""
    engine = _engine(linked)
    track_id, _ = _analysed(linked, corpus, tmp_path)
    engine.send({"event": "trackLoadRequested", "deck": "A", "trackId": track_id})
    engine.send({"event": "trackLoaded", "deck": "A", "trackId": track_id, "success": True})
    engine.send({"event": "cuePointSet", "deck": "A", "index": 2, "position": 12.5,
                 "success": True})
    reply = engine.ask({"command": "getTrackInfo", "trackId": track_id, "requestId": "r2"})
    assert reply.endswith(',"hotCues":[{"index":2,"position":12.5,"isLoop":false}]}')
    cue = linked.ctx.tracks.hot_cue(track_id, 2, "user")
    assert cue["position"] == 12.5 and cue["source"] == "user"
    r = httpx.put(f"{linked.url}/api/tracks/{track_id}/hot-cues/2",
                  json={"name": "Drop"}, timeout=30)
    assert r.status_code == 200, r.text
    engine.send({"event": "cuePointSet", "deck": "A", "index": 2, "position": 14,
                 "success": True})
    engine.send({"event": "cuePointSet", "deck": "A", "index": 5, "position": 1,
                 "success": False})
    reply = engine.ask({"command": "getTrackInfo", "trackId": track_id})
    assert reply.endswith(',"hotCues":[{"index":2,"position":14,"isLoop":false}]}')
    assert linked.ctx.tracks.hot_cue(track_id, 2, "user")["name"] == "Drop"
    engine.send({"event": "cuePointRemoved", "deck": "A", "index": 2, "success": False})
    assert '"hotCues":[{"index":2' in engine.ask({"command": "getTrackInfo",
                                                   "trackId": track_id})
    engine.send({"event": "cuePointRemoved", "deck": "A", "index": 2, "success": True})
    engine.send({"event": "cuePointRemoved", "deck": "A", "index": 6, "success": True})
    reply = engine.ask({"command": "getTrackInfo", "trackId": track_id})
    assert reply.endswith(',"hotCues":[]}')
    # a cue event naming its track, on a deck the link has not seen
    engine.send({"event": "cuePointSet", "deck": "C", "trackId": track_id, "index": 0,
                 "position": 3.25, "success": True})
    reply = engine.ask({"command": "getTrackInfo", "trackId": track_id})
    assert reply.endswith(',"hotCues":[{"index":0,"position":3.25,"isLoop":false}]}')


def test_hot_cues_one_per_index_in_the_contract_preference(
        linked: Linked, corpus: Path, tmp_path: Path) -> None:
    """user > rekordbox > serato > mixedInKey > virtual dj, one cue per index, by index;
    a loop carries its loopEnd."""
    engine = _engine(linked)
    track_id, _ = _analysed(linked, corpus, tmp_path)
    cues = [(1, "serato", 10.0), (1, "rekordbox", 11.0), (2, "user", 20.0),
            (2, "rekordbox", 21.0), (3, "virtual dj", 30.0), (3, "mixedInKey", 31.0),
            (0, "virtual dj", 5.5)]
    for index, source, position in cues:
        r = httpx.post(f"{linked.url}/api/tracks/{track_id}/hot-cues/{index}",
                       json={"position": position, "source": source}, timeout=30)
        assert r.status_code in (200, 201), r.text
    r = httpx.post(f"{linked.url}/api/tracks/{track_id}/hot-cues/4",
                   json={"position": 40, "isLoop": True, "loopEnd": 44.5}, timeout=30)
    assert r.status_code in (200, 201), r.text
    reply = engine.ask({"command": "getTrackInfo", "trackId": track_id})
    assert reply.endswith(
        ',"hotCues":[{"index":0,"position":5.5,"isLoop":false},'
        '{"index":1,"position":11,"isLoop":false},{"index":2,"position":20,"isLoop":false},'
        '{"index":3,"position":31,"isLoop":false},'
        '{"index":4,"position":40,"isLoop":true,"loopEnd":44.5}]}')


def test_get_track_info_errors(linked: Linked, corpus: Path, tmp_path: Path) -> None:
    """Each error string of the contract, as ``{"success":false,"trackId","error"}``."""
    engine = _engine(linked)
    track_id, path = _analysed(linked, corpus, tmp_path)

    def ask(**body: object) -> str:
        return engine.ask({"command": "getTrackInfo", **body})

    assert ask(trackId=UNKNOWN, requestId="x") == (
        '{"success":false,"trackId":"' + UNKNOWN + '","error":"Track not found"}')
    assert ask(trackId="not-a-uuid") == (
        '{"success":false,"trackId":"not-a-uuid","error":"Track not found"}')
    assert ask(requestId="x") == (
        '{"success":false,"trackId":"","error":"Missing trackId parameter"}')
    assert ask(trackId="") == (
        '{"success":false,"trackId":"","error":"Missing trackId parameter"}')
    os.rename(path, path + ".away")
    assert ask(trackId=track_id) == (
        '{"success":false,"trackId":"' + track_id + '","error":"Track file missing"}')
    os.rename(path + ".away", path)
    set_fields(linked.ctx, track_id, is_missing=True)
    assert ask(trackId=track_id) == (
        '{"success":false,"trackId":"' + track_id + '","error":"Track file missing"}')
    set_fields(linked.ctx, track_id, is_missing=False, library_directory_id=None)
    assert ask(trackId=track_id) == (
        '{"success":false,"trackId":"' + track_id
        + '","error":"Library directory not found"}')


def test_unanalysed_track_without_audio_hash_cannot_start_analysis(
        linked: Linked, corpus: Path, tmp_path: Path) -> None:
    """A track without analysis whose audio was never hashed: ``Failed to start
    analysis`` (its analysis cannot be queued)."""
    engine = _engine(linked)
    (track_id,) = library_tracks(linked.ctx, corpus, tmp_path / "music")
    with transaction(linked.ctx.db) as s:
        track = s.get(models.Track, track_id)
        assert track is not None
        track.file_hash = None
    assert engine.ask({"command": "getTrackInfo", "trackId": track_id}) == (
        '{"success":false,"trackId":"' + track_id + '","error":"Failed to start analysis"}')


def test_error_replies_of_the_contract(linked: Linked) -> None:
    """Unknown command, a frame that is not JSON, JSON without a command: the contract's
    replies byte for byte."""
    engine = _engine(linked)
    assert engine.ask({"command": "bogus"}) == (
        '{"success":false,"trackId":"","error":"Unknown command: bogus"}')
    assert engine.ask({"command": "bogus", "trackId": "t1"}) == (
        '{"success":false,"trackId":"t1","error":"Unknown command: bogus"}')
    assert engine.ask("this is not json") == (
        '{"success":false,"trackId":"","error":"Failed to parse message"}')
    assert engine.ask({"hello": 1}) == (
        '{"success":false,"trackId":"","error":"Invalid message format: missing command field"}')
    assert engine.ask("[1,2]") == (
        '{"success":false,"trackId":"","error":"Invalid message format: missing command field"}')


def test_greetings_and_engine_errors_are_not_answered(linked: Linked) -> None:
    """``welcome``, the registration answer and ``{success:false,...}`` get no reply (the
    original answered the last with an error): the next frame the engine receives is
    the reply to the command sent after them."""
    engine = _engine(linked)
    mark = engine.send({"type": "welcome", "message": "hi"})
    engine.send({"success": True, "message": "App server registered successfully"})
    engine.send({"success": False, "error": "Deck B is busy"})
    engine.send({"event": "someFutureEvent", "deck": "A"})
    engine.send({"command": "bogus"})
    assert engine.next_frame(mark) == (
        '{"success":false,"trackId":"","error":"Unknown command: bogus"}')


def test_deck_set_cue(linked: Linked, corpus: Path, tmp_path: Path) -> None:
    """deck.setCue saves a user hot cue of the named track (or of the deck's track) and
    answers with it; bad cues, unknown tracks and a missing track are error replies."""
    engine = _engine(linked)
    track_id, _ = _analysed(linked, corpus, tmp_path)
    assert engine.ask({"command": "deck.setCue", "trackId": track_id, "index": 1,
                       "position": 32.5, "requestId": "c1"}) == (
        '{"success":true,"requestId":"c1","trackId":"' + track_id + '",'
        '"command":"deck.setCue","hotCue":{"index":1,"position":32.5,"isLoop":false}}')
    engine.send({"event": "trackLoaded", "deck": "B", "trackId": track_id, "success": True})
    assert engine.ask({"command": "deck.setCue", "deck": "B", "index": 3, "position": 8,
                       "isLoop": True, "loopEnd": 16}) == (
        '{"success":true,"trackId":"' + track_id + '","command":"deck.setCue",'
        '"hotCue":{"index":3,"position":8,"isLoop":true,"loopEnd":16}}')
    reply = engine.ask({"command": "getTrackInfo", "trackId": track_id})
    assert reply.endswith('"hotCues":[{"index":1,"position":32.5,"isLoop":false},'
                          '{"index":3,"position":8,"isLoop":true,"loopEnd":16}]}')
    assert engine.ask({"command": "deck.setCue", "trackId": UNKNOWN, "index": 1,
                       "position": 1}) == (
        '{"success":false,"trackId":"' + UNKNOWN + '","error":"Track not found"}')
    assert engine.ask({"command": "deck.setCue", "deck": "D", "index": 1, "position": 1}) == (
        '{"success":false,"trackId":"","error":"Missing trackId parameter"}')
    assert engine.ask({"command": "deck.setCue", "trackId": track_id, "index": 9,
                       "position": 1}) == (
        '{"success":false,"trackId":"' + track_id
        + '","error":"Invalid cue: index must be an integer 0-7"}')
    reply = json.loads(engine.ask({"command": "deck.setCue", "trackId": track_id,
                                   "index": 2, "position": -1}))
    assert reply["success"] is False and reply["error"].startswith("Invalid cue: position")
    reply = json.loads(engine.ask({"command": "deck.setCue", "trackId": track_id,
                                   "index": 2, "position": 5, "isLoop": True}))
    assert reply["success"] is False and "loopEnd is required" in reply["error"]


def test_first_beat_edit_is_sent_to_the_engine(linked: Linked, corpus: Path,
                                               tmp_path: Path) -> None:
    """POST /api/tracks/:id/first-beat-offset sends ``updateFirstBeatOffset``; an edit
    made while the engine is away goes out once it is back."""
    engine = _engine(linked)
    track_id, _ = _analysed(linked, corpus, tmp_path)
    mark = len(engine.frames)
    r = httpx.post(f"{linked.url}/api/tracks/{track_id}/first-beat-offset",
                   json={"first_beat_offset": 0.5}, timeout=30)
    assert r.status_code == 200, r.text
    assert engine.next_frame(mark) == (
        '{"command":"updateFirstBeatOffset","trackId":"' + track_id
        + '","firstBeatOffset":0.5}')
    port = engine.port
    engine.stop()
    wait_connected(linked, False)
    r = httpx.post(f"{linked.url}/api/tracks/{track_id}/first-beat-offset",
                   json={"first_beat_offset": 2}, timeout=30)
    assert r.status_code == 200, r.text
    back = EnginePeer(port).start()
    try:
        back.wait_connections(1)
        assert back.next_frame(0) == '{"type":"appServerIdentify"}'
        assert back.next_frame(1) == (
            '{"command":"updateFirstBeatOffset","trackId":"' + track_id
            + '","firstBeatOffset":2}')
        wait_for(lambda: linked.status()["connected"], 30, "the link to be up")
    finally:
        back.stop()
