"""The ephemeral HTTP API on a real server on 127.0.0.1, against real files on disk."""

from __future__ import annotations

import http.client
import io
import itertools
import json
import logging
import math
import os
import shutil
import struct
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from taperoom.audio import wav
from taperoom.ephemeral.app import create_app
from taperoom.ephemeral.names import track_key
from taperoom.ephemeral.settings import EphemeralSettings
from tests.wavgen import BEXT, ID3, LIST_INFO, tone, write_wav

JOHN_GARNER = "06 - John Garner - Partita No. 1 in B minor: Tempo di Borea (BWV1002).wav"


@dataclass
class Api:
    """A running ephemeral server and what it serves."""

    url: str
    client: httpx.Client
    settings: EphemeralSettings

    @property
    def audio(self) -> Path:
        return self.settings.audio_dir

    @property
    def meta(self) -> Path:
        return self.settings.metadata_dir

    def raw(self, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Send `path` byte for byte (no client-side normalisation of dots or escapes)."""
        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def meta_file(self, name: str) -> Path:
        """Where the metadata of track `name` is: ``tracks/<escaped name>.json``."""
        return self.meta / "tracks" / f"{track_key(name)}.json"

    def counts(self, name: str) -> list[int]:
        r = self.client.get(f"/stats/{quote(name)}")
        assert r.status_code == 200
        return r.json()["segment_play_counts"]

    def streams(self, name: str) -> int:
        return self.client.get(f"/stats/{quote(name)}").json()["total_streams"]

    def degrade(self, name: str, index: Any) -> httpx.Response:
        return self.client.post(f"/degrade/{quote(name)}", json={"segment_index": index})


@pytest.fixture
def api(eph_settings: Callable[..., EphemeralSettings],
        live_server: Callable[[Any], Any]) -> Iterator[Callable[..., Api]]:
    """Start an ephemeral server with settings overrides (degrade rate limit off by default)."""
    clients: list[httpx.Client] = []

    def start(**overrides: Any) -> Api:
        settings = eph_settings(**{"degrade_rate_limit": "off", **overrides})
        srv = live_server(create_app(settings))
        client = httpx.Client(base_url=srv.url, timeout=10)
        clients.append(client)
        return Api(srv.url, client, settings)

    yield start
    for c in clients:
        c.close()


def _noise(seconds: float, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    return rng.uniform(0.2, 0.9, (n, channels)) * rng.choice([-1.0, 1.0], (n, channels))


def _chunks(data: bytes) -> dict[bytes, bytes]:
    """Bodies of the top-level RIFF chunks of a file, by id."""
    out = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack("<4sI", data[pos:pos + 8])
        out[cid] = data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    return out


# -- catalogue -------------------------------------------------------------------


def test_root_reports_service_status(api: Callable[..., Api]) -> None:
    """GET / answers the contract's status body."""
    a = api(degradation_rate=2.5)
    r = a.client.get("/")
    assert r.status_code == 200
    assert r.json() == {"status": "running", "service": "Ephemeral Audio Decay System",
                        "audio_dir": str(a.settings.audio_dir),
                        "metadata_dir": str(a.settings.metadata_dir),
                        "degradation_rate": 2.5}


def test_player_page_is_html(api: Callable[..., Api]) -> None:
    """GET /player answers an HTML page."""
    r = api().client.get("/player")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower() or "<!doctype html" in r.text.lower()


def test_tracks_sorted_with_contract_fields(api: Callable[..., Api]) -> None:
    """GET /tracks lists tracks sorted by filename with the contract's fields and values."""
    a = api()
    for name, seconds in (("c.wav", 12.0), ("a.wav", 5.2), ("b.wav", 5.0)):
        write_wav(a.audio / name, tone(seconds, 8000, 2), rate=8000)
    r = a.client.get("/tracks")
    assert r.status_code == 200
    assert r.json() == [
        {"filename": "a.wav", "title": "a", "duration": 5.2, "overall_degradation": 0.0,
         "total_streams": 0, "total_chunks": 2},
        {"filename": "b.wav", "title": "b", "duration": 5.0, "overall_degradation": 0.0,
         "total_streams": 0, "total_chunks": 1},
        {"filename": "c.wav", "title": "c", "duration": 12.0, "overall_degradation": 0.0,
         "total_streams": 0, "total_chunks": 3},
    ]


def test_tracks_overall_degradation_and_streams(api: Callable[..., Api]) -> None:
    """overall_degradation = min(mean(play counts) * DEGRADATION_RATE, 100); streams counted."""
    a = api(degradation_rate=30.0)
    write_wav(a.audio / "a.wav", tone(5.2, 8000, 1), rate=8000)  # 11 segments
    write_wav(a.audio / "tiny.wav", tone(0.4, 8000, 1), rate=8000)  # 1 segment
    for index in (0, 0, 0, 5):
        assert a.degrade("a.wav", index).status_code == 200
    for _ in range(4):
        assert a.degrade("tiny.wav", 0).status_code == 200
    for _ in range(2):
        assert a.client.get("/stream/a.wav").status_code == 200
    tracks = {t["filename"]: t for t in a.client.get("/tracks").json()}
    assert tracks["a.wav"]["overall_degradation"] == pytest.approx(4 / 11 * 30.0)
    assert tracks["a.wav"]["total_streams"] == 2
    assert tracks["tiny.wav"]["overall_degradation"] == 100.0  # 4 * 30 capped
    assert tracks["tiny.wav"]["total_streams"] == 0


def test_new_file_appears_and_removed_file_disappears(api: Callable[..., Api]) -> None:
    """Files dropped into AUDIO_DIR show up at the next request; deleted ones vanish."""
    a = api()
    write_wav(a.audio / "one.wav", tone(1.0, 8000, 1), rate=8000)
    assert [t["filename"] for t in a.client.get("/tracks").json()] == ["one.wav"]
    write_wav(a.audio / "two.wav", tone(1.0, 8000, 1), rate=8000)
    assert [t["filename"] for t in a.client.get("/tracks").json()] == ["one.wav", "two.wav"]
    (a.audio / "one.wav").unlink()
    assert [t["filename"] for t in a.client.get("/tracks").json()] == ["two.wav"]
    assert a.client.get("/stream/one.wav").status_code == 404


def test_corrupt_and_non_wav_files_do_not_break_tracks(api: Callable[..., Api],
                                                       tmp_path: Path) -> None:
    """Corrupt, empty, frameless, non-WAV and escaping files are left out; /tracks stays 200."""
    a = api()
    write_wav(a.audio / "good.wav", tone(1.0, 8000, 1), rate=8000)
    (a.audio / "junk.wav").write_bytes(b"definitely not a wav file" * 20)
    (a.audio / "empty.wav").write_bytes(b"")
    write_wav(a.audio / "noframes.wav", np.zeros((0, 1)), rate=8000)
    (a.audio / "notes.txt").write_text("hello")
    (a.audio / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    (a.audio / "folder.wav").mkdir()
    write_wav(tmp_path / "outside.wav", tone(1.0, 8000, 1), rate=8000)
    os.symlink(tmp_path / "outside.wav", a.audio / "link.wav")
    for _ in range(2):
        r = a.client.get("/tracks")
        assert r.status_code == 200
        assert [t["filename"] for t in r.json()] == ["good.wav"]


def test_broken_metadata_file_is_recreated(api: Callable[..., Api]) -> None:
    """Garbage or damaged metadata JSON breaks no route: it is rebuilt in the contract format."""
    a = api()
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    write_wav(a.audio / "b.wav", tone(1.0, 8000, 1), rate=8000)
    assert a.client.get("/tracks").status_code == 200
    good = json.loads(a.meta_file("a.wav").read_text())
    for damaged in ("[1, 2", json.dumps({k: v for k, v in good.items() if k != "title"}),
                    json.dumps({**good, "total_streams": "many"})):
        a.meta_file("a.wav").write_text(damaged)
        r = a.client.get("/tracks")
        assert r.status_code == 200
        assert [t["filename"] for t in r.json()] == ["a.wav", "b.wav"]
        assert r.json()[0]["title"] == "a"
        a.meta_file("a.wav").write_text(damaged)
        assert a.client.get("/stream/a.wav").status_code == 200
        a.meta_file("a.wav").write_text(damaged)
        assert a.client.get("/stats/a.wav").status_code == 200
        assert a.degrade("a.wav", 1).status_code == 200
        meta = json.loads(a.meta_file("a.wav").read_text())
        assert meta["segment_play_counts"] == [0, 1]
        assert meta["title"] == "a"


def test_stats_body(api: Callable[..., Api]) -> None:
    """GET /stats/<f> answers counts, duration, degradation, streams and created_at."""
    a = api(degradation_rate=10.0)
    write_wav(a.audio / "a.wav", tone(2.0, 8000, 1), rate=8000)
    a.degrade("a.wav", 3)
    a.degrade("a.wav", 3)
    body = a.client.get("/stats/a.wav").json()
    meta = json.loads(a.meta_file("a.wav").read_text())
    assert body == {"filename": "a.wav", "title": "a", "duration": 2.0, "total_segments": 4,
                    "segment_duration": 0.5, "segment_play_counts": [0, 0, 0, 2],
                    "overall_degradation": 5.0, "total_streams": 0,
                    "created_at": meta["created_at"]}


def test_stats_of_hand_edited_metadata_keeps_the_declared_types(
        api: Callable[..., Api]) -> None:
    """A metadata file edited by hand with a created_at that is not a string and a
    segment_duration that is not a number still answers /stats with the declared types
    (null and SEGMENT_DURATION) and keeps its play counts."""
    a = api()
    write_wav(a.audio / "a.wav", tone(2.0, 8000, 1), rate=8000)
    a.degrade("a.wav", 1)
    meta = json.loads(a.meta_file("a.wav").read_text())
    meta.update(created_at=5, segment_duration="half a second")
    a.meta_file("a.wav").write_text(json.dumps(meta))
    r = a.client.get("/stats/a.wav")
    assert r.status_code == 200
    body = r.json()
    assert body["created_at"] is None
    assert body["segment_duration"] == 0.5
    assert body["segment_play_counts"] == [0, 1, 0, 0]


# -- /stream ---------------------------------------------------------------------


@pytest.fixture
def served(api: Callable[..., Api]) -> tuple[Api, bytes]:
    """A server with a.wav (extra chunks around data) and its bytes."""
    a = api()
    path = write_wav(a.audio / "a.wav", _noise(1.0, 8000, 2), rate=8000,
                     before=[LIST_INFO, BEXT], after=[ID3])
    return a, path.read_bytes()


def test_stream_sends_exact_file_bytes(served: tuple[Api, bytes]) -> None:
    """GET /stream/<f> answers 200 audio/wav with the file's bytes and the contract headers."""
    a, data = served
    r = a.client.get("/stream/a.wav")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-type"] == "audio/wav"
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["cache-control"] == "no-cache"


RANGES = [
    ("bytes=10-99", 10, 100),
    ("bytes=0-0", 0, 1),
    ("bytes=100-", 100, None),
    ("bytes=-100", -100, None),
    ("bytes=-1", -1, None),
    ("bytes=-999999999", 0, None),      # suffix longer than the file: the whole file
    ("bytes=20-999999999", 20, None),   # end past the file: clamped to the last byte
]


def test_stream_ranges(served: tuple[Api, bytes]) -> None:
    """Single, open and suffix ranges answer 206 with exactly those bytes (suffix = last N)."""
    a, data = served
    size = len(data)
    for header, start, stop in RANGES:
        expected = data[start:stop]
        first = start % size if start < 0 else start
        r = a.client.get("/stream/a.wav", headers={"Range": header})
        assert r.status_code == 206, header
        assert r.content == expected, header
        assert r.headers["content-range"] == \
            f"bytes {first}-{first + len(expected) - 1}/{size}", header
        assert r.headers["content-length"] == str(len(expected)), header
        assert r.headers["accept-ranges"] == "bytes"
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["content-type"] == "audio/wav"


def test_suffix_range_is_the_last_bytes_not_the_first(served: tuple[Api, bytes]) -> None:
    """Range bytes=-100 gives the last 100 bytes (the original wrongly sent bytes 0-100)."""
    a, data = served
    r = a.client.get("/stream/a.wav", headers={"Range": "bytes=-100"})
    assert r.status_code == 206
    assert len(r.content) == 100
    assert r.content == data[-100:]
    assert r.content != data[:100]
    assert r.headers["content-range"] == f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}"


def test_unsatisfiable_range_is_416(served: tuple[Api, bytes]) -> None:
    """A range starting at or past the end answers 416 with Content-Range: bytes */size."""
    a, data = served
    size = len(data)
    for header in (f"bytes={size}-", f"bytes={size}-{size + 10}", f"bytes={size + 5}-",
                   "bytes=-0"):
        r = a.client.get("/stream/a.wav", headers={"Range": header})
        assert r.status_code == 416, header
        assert r.headers["content-range"] == f"bytes */{size}", header
    assert a.streams("a.wav") == 0


def test_head_sends_headers_without_body(served: tuple[Api, bytes]) -> None:
    """HEAD /stream/<f> answers the GET headers, no body, and counts no stream."""
    a, data = served
    status, headers, body = a.raw("HEAD", "/stream/a.wav")
    assert status == 200
    assert body == b""
    assert headers["content-length"] == str(len(data))
    assert headers["content-type"] == "audio/wav"
    assert headers["accept-ranges"] == "bytes"
    assert headers["cache-control"] == "no-cache"
    assert a.streams("a.wav") == 0


def test_total_streams_counts_plain_gets_only(served: tuple[Api, bytes]) -> None:
    """Each plain GET counts one stream; HEAD, mid-file ranges and 404s count none."""
    a, _ = served
    assert a.client.get("/stream/a.wav").status_code == 200
    assert a.client.get("/stream/a.wav").status_code == 200
    assert a.raw("HEAD", "/stream/a.wav")[0] == 200
    assert a.client.get("/stream/a.wav", headers={"Range": "bytes=100-200"}).status_code == 206
    assert a.client.get("/stream/a.wav", headers={"Range": "bytes=-10"}).status_code == 206
    assert a.client.get("/stream/b.wav").status_code == 404
    assert a.streams("a.wav") == 2
    assert json.loads(a.meta_file("a.wav").read_text())["total_streams"] == 2


def test_range_from_byte_zero_counts_as_a_stream_start(served: tuple[Api, bytes]) -> None:
    """A player's first request (Range: bytes=0-) counts one stream; its later ranges do not."""
    a, _ = served
    assert a.client.get("/stream/a.wav", headers={"Range": "bytes=0-"}).status_code == 206
    assert a.client.get("/stream/a.wav", headers={"Range": "bytes=5000-"}).status_code == 206
    assert a.streams("a.wav") == 1


def test_invalid_range_sends_the_whole_track_and_counts_a_stream(
        served: tuple[Api, bytes]) -> None:
    """An invalid Range (bytes=5-1, bytes=abc, items=0-1) is ignored as RFC 9110 §14.2
    allows: 200 with the whole file, counted as a stream start like a plain GET; a valid
    but unsatisfiable range stays 416."""
    a, data = served
    for header in ("bytes=5-1", "bytes=abc", "items=0-1", "bytes=0-1,x"):
        r = a.client.get("/stream/a.wav", headers={"Range": header})
        assert r.status_code == 200, header
        assert r.content == data, header
        assert r.headers["content-type"] == "audio/wav"
        assert r.headers["cache-control"] == "no-cache"
    assert a.streams("a.wav") == 4
    r = a.client.get("/stream/a.wav", headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(data)}"
    assert a.streams("a.wav") == 4


def test_stream_serves_the_worn_state(api: Callable[..., Api]) -> None:
    """After wear on disk, /stream sends the file as it is now."""
    a = api(degradation_rate=100.0)
    path = write_wav(a.audio / "a.wav", _noise(1.0, 8000, 1), rate=8000)
    a.degrade("a.wav", 0)
    a.degrade("a.wav", 0)
    r = a.client.get("/stream/a.wav")
    assert r.content == path.read_bytes()
    info = wav.read_info(path)
    assert r.content[info.data_offset:info.frame_offset(4000)] == bytes(4000 * 2)


ODD_NAMES = ["ünïcödé ☆ 日本語.wav", "with space.wav", "100% mix.wav", "a#b.wav",
             "track: one (live).wav", "semi;colon.wav", "UPPER.WAV", "a+b&c=d.wav"]


def test_odd_file_names_stream_and_degrade(api: Callable[..., Api]) -> None:
    """Names with non-ASCII, spaces, %, #, colons and upper-case extensions work on every route."""
    a = api()
    for name in ODD_NAMES:
        write_wav(a.audio / name, tone(1.0, 8000, 1), rate=8000)
    listed = [t["filename"] for t in a.client.get("/tracks").json()]
    assert listed == sorted(ODD_NAMES)
    for name in ODD_NAMES:
        q = quote(name)
        r = a.client.get(f"/stream/{q}")
        assert r.status_code == 200, name
        assert r.content == (a.audio / name).read_bytes(), name
        assert a.degrade(name, 1).json() == {"success": True, "segment_index": 1,
                                             "play_count": 1}, name
        assert a.client.get(f"/stream/{q}/chunk/0").status_code == 200, name
        assert len(a.client.get(f"/waveform/{q}").json()) == 1000, name
        assert a.counts(name) == [0, 1], name
        assert a.streams(name) == 1, name


def test_long_name_streams_and_degrades(api: Callable[..., Api]) -> None:
    """A track whose name takes the whole 255 bytes a file name may have keeps its counts
    (its metadata, cache and temp file names stay within the limit)."""
    a = api()
    name = "Ü" * 125 + ".wav"  # 254 bytes in UTF-8
    write_wav(a.audio / name, tone(1.0, 8000, 1), rate=8000)
    for expected in (1, 2):
        assert a.degrade(name, 1).json()["play_count"] == expected
    assert a.client.get(f"/stream/{quote(name)}").status_code == 200
    assert len(a.client.get(f"/waveform/{quote(name)}").json()) == 1000
    assert a.counts(name) == [0, 2]
    assert a.streams(name) == 1


def test_names_differing_only_by_case_count_apart(api: Callable[..., Api],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """x.wav and x.WAV played alternately keep every play and stream on each, with no
    "starting afresh" reset of one by the other, and each keeps its own waveform."""
    a = api()
    write_wav(a.audio / "x.wav", tone(1.0, 8000, 1), rate=8000)
    write_wav(a.audio / "x.WAV", _noise(1.0, 8000, 1), rate=8000)
    lower = a.client.get("/waveform/x.wav").json()
    upper = a.client.get("/waveform/x.WAV").json()
    assert lower != upper
    with caplog.at_level(logging.INFO):
        for play in range(1, 7):
            assert a.degrade("x.wav", 0).json()["play_count"] == play
            assert a.degrade("x.WAV", 1).json()["play_count"] == play
            assert a.client.get("/stream/x.wav").status_code == 200
            assert a.client.get("/stream/x.WAV").status_code == 200
            assert a.client.get("/waveform/x.wav").json() == lower
            assert a.client.get("/waveform/x.WAV").json() == upper
    assert a.counts("x.wav") == [6, 0]
    assert a.counts("x.WAV") == [0, 6]
    assert a.streams("x.wav") == 6
    assert a.streams("x.WAV") == 6
    assert "starting afresh" not in caplog.text
    tracks = {t["filename"]: t for t in a.client.get("/tracks").json()}
    assert tracks["x.wav"]["total_streams"] == tracks["x.WAV"]["total_streams"] == 6


def test_track_named_like_a_waveform_cache_keeps_apart(api: Callable[..., Api],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """a.wav.waveform.wav and a.wav each have their own waveform and their own counts
    (the first's metadata was a.wav's waveform cache file)."""
    a = api()
    other = "a.wav.waveform.wav"
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    write_wav(a.audio / other, _noise(1.0, 8000, 1), rate=8000)
    first = a.client.get("/waveform/a.wav").json()
    second = a.client.get(f"/waveform/{other}").json()
    assert first != second
    with caplog.at_level(logging.INFO):
        for play in range(1, 5):
            assert a.degrade(other, 0).json()["play_count"] == play
            assert a.client.get("/waveform/a.wav").json() == first
            assert a.degrade("a.wav", 1).json()["play_count"] == play
            assert a.client.get(f"/waveform/{other}").json() == second
    assert a.counts(other) == [4, 0]
    assert a.counts("a.wav") == [0, 4]
    assert "starting afresh" not in caplog.text


def _original_meta(name: str, seconds: float, counts: list[int], streams: int) -> str:
    """Metadata as the original implementation writes it (indent=2)."""
    return json.dumps({"filename": name, "title": Path(name).stem, "duration": seconds,
                       "segment_duration": 0.5, "total_segments": len(counts),
                       "segment_play_counts": counts,
                       "created_at": "2025-11-09T12:00:00.123456Z", "total_streams": streams},
                      indent=2)


def test_original_stem_layout_keeps_its_play_counts(api: Callable[..., Api]) -> None:
    """METADATA_DIR/<stem>.json written by the original keeps its play counts: it is moved
    once to the new layout and counted on from there, also by a restarted server."""
    a = api()
    write_wav(a.audio / "x.wav", tone(2.0, 8000, 1), rate=8000)
    legacy = a.meta / "x.json"
    legacy.write_text(_original_meta("x.wav", 2.0, [3, 0, 0, 1], 7))
    assert a.counts("x.wav") == [3, 0, 0, 1]
    assert a.streams("x.wav") == 7
    assert not legacy.exists()
    assert a.degrade("x.wav", 0).json()["play_count"] == 4
    assert a.client.get("/stream/x.wav").status_code == 200
    again = api(audio_dir=a.audio, metadata_dir=a.meta)
    assert again.counts("x.wav") == [4, 0, 0, 1]
    assert again.streams("x.wav") == 8
    assert not legacy.exists()


def test_original_stem_layout_goes_to_the_track_it_names(api: Callable[..., Api]) -> None:
    """When two tracks share a stem (y.wav, y.WAV), the original's y.json goes to the one
    its "filename" names; a <stem>.json naming a track that is not there is left alone."""
    a = api()
    write_wav(a.audio / "y.wav", tone(1.0, 8000, 1), rate=8000)
    write_wav(a.audio / "y.WAV", tone(1.0, 8000, 1), rate=8000)
    write_wav(a.audio / "z.WAV", tone(1.0, 8000, 1), rate=8000)
    (a.meta / "y.json").write_text(_original_meta("y.WAV", 1.0, [5, 2], 3))
    stray = _original_meta("z.wav", 1.0, [9, 9], 9)
    (a.meta / "z.json").write_text(stray)
    assert a.counts("y.wav") == [0, 0]
    assert a.counts("y.WAV") == [5, 2]
    assert a.streams("y.WAV") == 3
    assert a.counts("z.WAV") == [0, 0]
    assert (a.meta / "z.json").read_text() == stray
    assert not (a.meta / "y.json").exists()


# -- /stream/<f>/chunk/<i> -------------------------------------------------------


@pytest.mark.parametrize(("fmt", "channels", "rate"), [("pcm16", 2, 8000), ("pcm24", 1, 11025),
                                                       ("float32", 2, 8000)])
def test_chunk_is_a_wav_of_the_right_five_seconds(api: Callable[..., Api], fmt: str,
                                                  channels: int, rate: int) -> None:
    """Chunk i is a complete WAV holding exactly source frames [5*i*rate, 5*(i+1)*rate)."""
    a = api()
    path = write_wav(a.audio / "a.wav", _noise(12.0, rate, channels), rate=rate, fmt=fmt,
                     before=[LIST_INFO], after=[ID3])
    info = wav.read_info(path)
    source = path.read_bytes()
    per = 5 * rate
    for i, frames in ((0, per), (1, per), (2, info.n_frames - 2 * per)):
        r = a.client.get(f"/stream/a.wav/chunk/{i}")
        assert r.status_code == 200
        assert r.headers["content-type"] == "audio/wav"
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["content-length"] == str(len(r.content))
        out = Path(a.settings.metadata_dir) / f"chunk{i}.bin"
        out.write_bytes(r.content)
        got = wav.read_info(out)
        assert (got.format_tag, got.channels, got.sample_rate, got.bits_per_sample) == \
            (info.format_tag, channels, rate, info.bits_per_sample)
        assert got.n_frames == frames
        expected = source[info.frame_offset(i * per):info.frame_offset(i * per + frames)]
        assert r.content[got.data_offset:got.data_offset + got.data_size] == expected
        if fmt.startswith("pcm"):
            with wave.open(io.BytesIO(r.content)) as w:
                assert w.getnframes() == frames
                assert w.readframes(frames) == expected
    assert a.streams("a.wav") == 0
    assert a.counts("a.wav") == [0] * 24


def test_chunk_index_out_of_range_is_400(api: Callable[..., Api]) -> None:
    """A chunk index outside [0, total_chunks) or not an integer answers 400."""
    a = api()
    write_wav(a.audio / "a.wav", tone(12.0, 8000, 1), rate=8000)
    for index in ("3", "-1", "99999999999999999999", "abc", "1.5"):
        r = a.client.get(f"/stream/a.wav/chunk/{index}")
        assert r.status_code == 400, index
        assert isinstance(r.json()["error"], str)
    assert a.client.get("/stream/a.wav/chunk/2").status_code == 200


def test_chunk_of_unknown_track_is_404(api: Callable[..., Api]) -> None:
    """A chunk of a missing track answers 404 JSON."""
    r = api().client.get("/stream/nope.wav/chunk/0")
    assert r.status_code == 404
    assert r.json() == {"error": "Audio file not found"}


# -- /waveform -------------------------------------------------------------------


def test_waveform_peaks_and_cache(api: Callable[..., Api]) -> None:
    """/waveform answers ~1000 {min, max} pairs in [-1, 1] and caches them in METADATA_DIR."""
    a = api()
    write_wav(a.audio / "a.wav", tone(10.0, 8000, 2, amp=0.3), rate=8000)
    r = a.client.get("/waveform/a.wav")
    assert r.status_code == 200
    peaks = r.json()
    assert len(peaks) == 1000
    assert all(set(p) == {"min", "max"} for p in peaks)
    lo = np.array([p["min"] for p in peaks])
    hi = np.array([p["max"] for p in peaks])
    assert (lo <= hi).all()
    assert lo.min() >= -1.0
    assert hi.max() <= 1.0
    assert max(-lo.min(), hi.max()) == 1.0  # normalised
    cache = a.meta / "waveforms" / "a.wav.json"
    assert cache.is_file()
    assert json.loads(cache.read_text()) == peaks
    assert a.client.get("/waveform/a.wav").json() == peaks


def test_waveform_is_recomputed_when_the_file_is_replaced(api: Callable[..., Api]) -> None:
    """A track replaced by a file of another length gets fresh peaks, not the stale cache."""
    a = api()
    path = write_wav(a.audio / "a.wav", tone(10.0, 8000, 1), rate=8000)
    first = a.client.get("/waveform/a.wav").json()
    y = np.zeros((6 * 8000, 1))
    y[: 3 * 8000] = 0.5  # loud first half, silent second half
    write_wav(path, y, rate=8000)
    second = a.client.get("/waveform/a.wav").json()
    assert second != first
    assert len(second) == 1000
    assert all(p == {"min": 1.0, "max": 1.0} for p in second[:500])
    assert all(p == {"min": 0.0, "max": 0.0} for p in second[500:])
    assert json.loads((a.meta / "waveforms" / "a.wav.json").read_text()) == second


def test_damaged_waveform_cache_is_computed_again(api: Callable[..., Api]) -> None:
    """A waveform cache that is not a list of {min, max} peaks (damaged, or edited by
    hand) is computed again instead of being sent as it is."""
    a = api()
    write_wav(a.audio / "a.wav", tone(2.0, 8000, 1), rate=8000)
    good = a.client.get("/waveform/a.wav").json()
    cache = a.meta / "waveforms" / "a.wav.json"
    for damaged in ('[{"lo": 1}]', '[{"min": 0, "max": 1, "extra": true}]', '{"min": 0}',
                    "[1, 2]", "not json"):
        cache.write_text(damaged)
        r = a.client.get("/waveform/a.wav")
        assert r.status_code == 200, damaged
        assert r.json() == good, damaged
        assert json.loads(cache.read_text()) == good, damaged


def test_waveform_of_unknown_track_is_404(api: Callable[..., Api]) -> None:
    """/waveform of a missing track answers 404 JSON."""
    r = api().client.get("/waveform/nope.wav")
    assert r.status_code == 404
    assert r.json() == {"error": "Audio file not found"}


# -- /degrade --------------------------------------------------------------------


def test_degrade_success_body_and_exact_counts(api: Callable[..., Api]) -> None:
    """POST /degrade answers {success, segment_index, play_count} and counts every play."""
    a = api()
    write_wav(a.audio / "a.wav", tone(2.0, 8000, 1), rate=8000)
    r = a.degrade("a.wav", 3)
    assert r.status_code == 200
    assert r.json() == {"success": True, "segment_index": 3, "play_count": 1}
    for expected in range(2, 8):
        assert a.degrade("a.wav", 3).json()["play_count"] == expected
    assert a.degrade("a.wav", 0).json() == {"success": True, "segment_index": 0,
                                             "play_count": 1}
    assert a.counts("a.wav") == [1, 0, 0, 7]


def test_degrade_wears_audio_from_the_second_play(api: Callable[..., Api]) -> None:
    """The first play of a segment leaves the file intact; the second wears its frames only."""
    a = api(degradation_rate=50.0)
    path = write_wav(a.audio / "a.wav", _noise(2.0, 8000, 2), rate=8000, after=[ID3])
    info = wav.read_info(path)
    original = path.read_bytes()
    a.degrade("a.wav", 1)
    assert path.read_bytes() == original
    a.degrade("a.wav", 1)
    after = path.read_bytes()
    lo, hi = info.frame_offset(4000), info.frame_offset(8000)
    assert after[:lo] == original[:lo]
    assert after[hi:] == original[hi:]
    assert after[lo:hi] != original[lo:hi]


BAD_BODIES = [
    (b"{}", "segment_index required"),
    (b'{"segment_index": null}', "segment_index required"),
    (b'{"index": 1}', "segment_index required"),
    (b"", "segment_index required"),
    (b"[1]", "segment_index required"),
    (b'"segment_index"', "segment_index required"),
    (b"hello", None),
    (b"\xff\xfe\x00", None),
    (b'{"segment_index": -1}', "Invalid segment index"),
    (b'{"segment_index": 4}', "Invalid segment index"),
    (b'{"segment_index": 99999999999999999999999}', "Invalid segment index"),
    (b'{"segment_index": true}', "Invalid segment index"),
    (b'{"segment_index": false}', "Invalid segment index"),
    (b'{"segment_index": 1.5}', "Invalid segment index"),
    (b'{"segment_index": 1.0}', "Invalid segment index"),
    (b'{"segment_index": 1e400}', "Invalid segment index"),
    (b'{"segment_index": "1"}', "Invalid segment index"),
    (b'{"segment_index": [1]}', "Invalid segment index"),
    (b'{"segment_index": ' + b"9" * 5000 + b"}", None),
]


def test_degrade_bad_body_or_index_is_400(api: Callable[..., Api]) -> None:
    """Missing, non-JSON, negative, too large, bool, float or string indexes answer 400."""
    a = api()
    path = write_wav(a.audio / "a.wav", tone(2.0, 8000, 1), rate=8000)
    original = path.read_bytes()
    for body, message in BAD_BODIES:
        r = a.client.post("/degrade/a.wav", content=body,
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 400, body[:40]
        if message is not None:
            assert r.json() == {"error": message}, body[:40]
        else:
            assert isinstance(r.json()["error"], str), body[:40]
    assert a.counts("a.wav") == [0, 0, 0, 0]
    assert path.read_bytes() == original


def test_degrade_body_over_64_kib_is_413(api: Callable[..., Api]) -> None:
    """A /degrade body over 64 KiB answers 413 with the contract's error shape, counting nothing."""
    a = api()
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    body = b'{"segment_index": 1, "pad": "' + b"x" * (70 * 1024) + b'"}'
    r = a.client.post("/degrade/a.wav", content=body,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert isinstance(r.json()["error"], str)
    assert a.counts("a.wav") == [0, 0]
    assert a.degrade("a.wav", 1).json() == {"success": True, "segment_index": 1,
                                             "play_count": 1}


def test_degrade_answers_carry_cors_headers(api: Callable[..., Api]) -> None:
    """POST /degrade from a browser origin gets CORS headers on success and on errors."""
    a = api(cors_origin="https://a.example")
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    origin = {"Origin": "https://a.example", "Content-Type": "text/plain"}
    ok = a.client.post("/degrade/a.wav", content=b'{"segment_index": 0}', headers=origin)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://a.example"
    assert ok.headers["content-type"] == "application/json"
    bad = a.client.post("/degrade/a.wav", content=b'{"segment_index": 9}', headers=origin)
    assert bad.status_code == 400
    assert bad.json() == {"error": "Invalid segment index"}
    assert bad.headers["access-control-allow-origin"] == "https://a.example"
    missing = a.client.post("/degrade/nope.wav", content=b'{"segment_index": 0}',
                            headers=origin)
    assert missing.status_code == 404
    assert missing.json() == {"error": "Track not found"}


def test_degrade_accepts_json_without_content_type(api: Callable[..., Api]) -> None:
    """A JSON body sent as text/plain is read like the original client's fetch() sends it."""
    a = api()
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    r = a.client.post("/degrade/a.wav", content=b'{"segment_index": 1}',
                      headers={"Content-Type": "text/plain"})
    assert r.status_code == 200
    assert r.json()["play_count"] == 1


def test_degrade_unknown_track_is_404(api: Callable[..., Api]) -> None:
    """Degrading a missing, corrupt, non-WAV or folder name answers 404 Track not found."""
    a = api()
    (a.audio / "junk.wav").write_bytes(b"junk" * 50)
    (a.audio / "notes.txt").write_text("x")
    (a.audio / "folder.wav").mkdir()
    for name in ("nope.wav", "junk.wav", "notes.txt", "folder.wav"):
        r = a.degrade(name, 0)
        assert r.status_code == 404, name
        assert r.json() == {"error": "Track not found"}, name


TRAVERSALS = [
    "..%2F..%2Fetc%2Fpasswd",
    "..%2Fsecret.wav",
    "%2e%2e%2Fsecret.wav",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%2e%2e",
    "..",
    "%2Fetc%2Fpasswd",
    "%2F" + "tmp%2Fsecret.wav",
    "..%5Csecret.wav",
    "link.wav",
]


def test_path_traversal_is_404_on_every_route(api: Callable[..., Api], tmp_path: Path) -> None:
    """Names that leave AUDIO_DIR answer 404 on every route and never leak the file."""
    a = api(admin_token="t0k", keep_originals=True)
    secret = write_wav(tmp_path / "secret.wav", _noise(1.0, 8000, 1), rate=8000).read_bytes()
    os.symlink(tmp_path / "secret.wav", a.audio / "link.wav")
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    body = json.dumps({"segment_index": 0}).encode()
    auth = {"Authorization": "Bearer t0k"}
    for name, (method, path, data, headers) in itertools.product(TRAVERSALS, (
            ("GET", "/stream/{name}", None, {}),
            ("HEAD", "/stream/{name}", None, {}),
            ("GET", "/stream/{name}?degrade=1", None, {}),
            ("GET", "/stream/{name}/chunk/0", None, {}),
            ("GET", "/waveform/{name}", None, {}),
            ("GET", "/stats/{name}", None, {}),
            ("POST", "/degrade/{name}", body, {"Content-Type": "application/json"}),
            ("POST", "/reset/{name}", None, auth))):
        path = path.format(name=name)
        status, _, content = a.raw(method, path, data, headers)
        assert status == 404, (method, path)
        assert secret[44:200] not in content
        assert b"root:" not in content


# -- rate limit and CORS ---------------------------------------------------------


def test_degrade_rate_limit_answers_429_with_retry_after(api: Callable[..., Api]) -> None:
    """With DEGRADE_RATE_LIMIT=5/second the 6th quick call answers 429 with Retry-After."""
    a = api(degrade_rate_limit="5/second")
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    a.client.get("/tracks")  # metadata made before the timed burst
    t0 = time.monotonic()
    codes = [a.degrade("a.wav", 0).status_code for _ in range(5)]
    r = a.degrade("a.wav", 0)
    if time.monotonic() - t0 >= 1.0:
        pytest.fail("six requests took a second or more; the window was not exercised")
    assert codes == [200] * 5
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert "error" in r.json()
    assert a.counts("a.wav") == [5, 0]


def test_cors_preflight_on_degrade_allows_any_origin_by_default(
        api: Callable[..., Api]) -> None:
    """OPTIONS /degrade/<f> from any origin is allowed when CORS_ORIGIN is *."""
    a = api()
    r = a.client.request("OPTIONS", "/degrade/a.wav", headers={
        "Origin": "https://player.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "content-type" in r.headers["access-control-allow-headers"].lower()
    g = a.client.get("/tracks", headers={"Origin": "https://player.example"})
    assert g.headers["access-control-allow-origin"] == "*"


def test_cors_restricted_origin(api: Callable[..., Api]) -> None:
    """With CORS_ORIGIN=https://a.example only that origin is allowed, preflight or not."""
    a = api(cors_origin="https://a.example")
    pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers":
           "content-type"}
    ok = a.client.request("OPTIONS", "/degrade/a.wav",
                          headers={"Origin": "https://a.example", **pre})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://a.example"
    bad = a.client.request("OPTIONS", "/degrade/a.wav",
                           headers={"Origin": "https://b.example", **pre})
    assert bad.status_code == 400
    assert "access-control-allow-origin" not in bad.headers
    g = a.client.get("/tracks", headers={"Origin": "https://b.example"})
    assert g.status_code == 200
    assert "access-control-allow-origin" not in g.headers
    g = a.client.get("/tracks", headers={"Origin": "https://a.example"})
    assert g.headers["access-control-allow-origin"] == "https://a.example"


# -- /reset ----------------------------------------------------------------------


def test_reset_is_403_without_admin_token(api: Callable[..., Api]) -> None:
    """POST /reset answers 403 when no ADMIN_TOKEN is configured, whatever is sent."""
    a = api(keep_originals=True)
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer x"}):
        r = a.client.post("/reset/a.wav", headers=headers)
        assert r.status_code == 403
        assert "error" in r.json()


def test_reset_is_401_with_wrong_token(api: Callable[..., Api]) -> None:
    """POST /reset answers 401 for a missing, malformed or wrong bearer token."""
    a = api(keep_originals=True, admin_token="secret")
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    a.degrade("a.wav", 0)
    for authorization in (None, "Bearer wrong", "Basic c2VjcmV0", "secret", "Bearer secret2",
                          "Bearer", "bearer secre"):
        headers = {} if authorization is None else {"Authorization": authorization}
        r = a.client.post("/reset/a.wav", headers=headers)
        assert r.status_code == 401, authorization
        assert isinstance(r.json()["error"], str)
    assert a.counts("a.wav") == [1, 0]


def test_reset_with_a_non_ascii_token_is_401(api: Callable[..., Api]) -> None:
    """A bearer token with bytes outside ASCII is a wrong token: 401, not a 500 from
    comparing it with the configured one."""
    a = api(keep_originals=True, admin_token="secret")
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    for token in (b"\xe9", b"secr\xe9t", "s\u00e9cret".encode()):
        status, _, content = a.raw("POST", "/reset/a.wav",
                                   headers={"Authorization": b"Bearer " + token})
        assert status == 401, token
        assert "error" in json.loads(content)


def test_reset_restores_bytes_and_zeroes_counts(api: Callable[..., Api]) -> None:
    """With the right token, reset restores the pristine bytes and zeroes counts and streams."""
    a = api(keep_originals=True, admin_token="secret", degradation_rate=60.0)
    path = write_wav(a.audio / "a.wav", _noise(2.0, 8000, 2), rate=8000,
                     before=[LIST_INFO], after=[ID3])
    pristine = path.read_bytes()
    for _ in range(3):
        for i in range(4):
            assert a.degrade("a.wav", i).status_code == 200
    a.client.get("/stream/a.wav")
    assert path.read_bytes() != pristine
    r = a.client.post("/reset/a.wav", headers={"Authorization": "Bearer secret"})
    assert r.status_code == 200
    body = r.json()
    assert body["segment_play_counts"] == [0, 0, 0, 0]
    assert body["total_streams"] == 0
    assert body["overall_degradation"] == 0.0
    assert path.read_bytes() == pristine
    assert a.client.get("/stream/a.wav").content == pristine


def test_reset_without_pristine_copy_is_404(api: Callable[..., Api]) -> None:
    """With the right token but no pristine copy (KEEP_ORIGINALS off), reset answers 404."""
    a = api(admin_token="secret")
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    a.degrade("a.wav", 0)
    r = a.client.post("/reset/a.wav", headers={"Authorization": "Bearer secret"})
    assert r.status_code == 404
    assert "error" in r.json()
    assert a.counts("a.wav") == [1, 0]
    r = a.client.post("/reset/nope.wav", headers={"Authorization": "Bearer secret"})
    assert r.status_code == 404


# -- a real recording ------------------------------------------------------------


def test_degrade_real_corpus_wav_keeps_it_valid(api: Callable[..., Api],
                                                corpus: Path) -> None:
    """Wearing a real tagged WAV keeps it parseable with its LIST and id3 chunks unchanged."""
    a = api(degradation_rate=100.0)
    src = corpus / "scanner" / "real_music_tagged" / JOHN_GARNER
    path = Path(shutil.copyfile(src, a.audio / JOHN_GARNER))
    original = path.read_bytes()
    info = wav.read_info(path)
    tracks = a.client.get("/tracks").json()
    assert [t["filename"] for t in tracks] == [JOHN_GARNER]
    assert tracks[0]["title"] == JOHN_GARNER[:-4]
    assert tracks[0]["duration"] == pytest.approx(30.0, abs=0.01)
    assert tracks[0]["total_chunks"] == math.ceil(info.duration / 5.0)
    assert a.degrade(JOHN_GARNER, 10).json()["play_count"] == 1
    assert path.read_bytes() == original
    assert a.degrade(JOHN_GARNER, 10).json()["play_count"] == 2
    after = path.read_bytes()
    assert wav.read_info(path) == info
    before_chunks, after_chunks = _chunks(original), _chunks(after)
    assert after_chunks[b"LIST"] == before_chunks[b"LIST"]
    assert after_chunks[b"id3 "] == before_chunks[b"id3 "]
    lo, hi = info.frame_offset(5 * 44100), info.frame_offset(int(5.5 * 44100))
    assert after[lo:hi] == bytes(hi - lo)  # 100 %/play: the 2nd play silences it
    assert after[:lo] == original[:lo]
    assert after[hi:] == original[hi:]
    r = a.client.get(f"/stream/{quote(JOHN_GARNER)}")
    assert r.status_code == 200
    assert r.content == after


# -- no 500 for bad input ---------------------------------------------------------


BAD_REQUESTS = [
    ("GET", "/stream/missing.wav", None, {}, 404),
    ("GET", "/stream/notes.txt", None, {}, 404),
    ("GET", "/stream/folder.wav", None, {}, 404),
    ("GET", "/stream/" + "a" * 300 + ".wav", None, {}, 404),
    ("GET", "/stream/a%00.wav", None, {}, 404),
    ("GET", "/stream/junk.wav", None, {}, 200),
    ("GET", "/stream/empty.wav", None, {}, 200),
    ("GET", "/stream/a.wav", None, {"Range": "bytes=abc"}, 200),  # invalid Range: ignored
    ("GET", "/stream/a.wav", None, {"Range": "bytes=50-10"}, 200),
    ("GET", "/stream/a.wav", None, {"Range": "items=0-10"}, 200),
    ("HEAD", "/stream/a.wav", None, {"Range": "bytes=5-1"}, 200),
    ("GET", "/stream/empty.wav", None, {"Range": "bytes=0-"}, 416),
    ("GET", "/stream/a.wav?degrade=maybe", None, {}, 400),
    ("GET", "/stream/a.wav?degrade=1&start=-1", None, {}, 400),
    ("GET", "/stream/a.wav?degrade=1&start=abc", None, {}, 400),
    ("GET", "/stream/a.wav?degrade=1&start=nan", None, {}, 400),
    ("GET", "/stream/a.wav?degrade=1&start=inf", None, {}, 400),
    ("GET", "/stream/a.wav?degrade=1&start=3600", None, {}, 400),
    # start so large that start * sample rate overflows (and its siblings)
    ("GET", "/stream/a.wav?degrade=1&start=1e308", None, {}, 400),
    ("HEAD", "/stream/a.wav?degrade=1&start=1e308", None, {}, 400),
    ("GET", "/stream/a.wav?degrade=1&start=1.7976931348623157e308", None, {}, 400),
    ("GET", "/stream/a.wav?degrade=1&start=-1e308", None, {}, 400),
    ("GET", "/stream/a.wav?degrade=1&start=1e309", None, {}, 400),
    ("GET", "/stream/a.wav?degrade=1&start=-inf", None, {}, 400),
    ("HEAD", "/stream/a.wav?degrade=1&start=nan", None, {}, 400),
    ("HEAD", "/stream/a.wav?degrade=1&start=" + "9" * 400, None, {}, 400),
    ("GET", "/stream/a.wav?degrade=1&start=" + "9" * 5000, None, {}, 400),
    ("GET", "/stream/a.wav?degrade=1&start=%D9%A1e308", None, {}, 400),  # Arabic-Indic 1
    ("GET", "/stream/a.wav/chunk/" + "9" * 400, None, {}, 400),
    ("GET", "/stream/missing.wav?degrade=1", None, {}, 404),
    ("GET", "/stream/junk.wav?degrade=1", None, {}, 404),
    ("GET", "/stream/a.wav/chunk/x", None, {}, 400),
    ("GET", "/stream/a.wav/chunk/-5", None, {}, 400),
    ("GET", "/stream/missing.wav/chunk/0", None, {}, 404),
    ("GET", "/stream/junk.wav/chunk/0", None, {}, 422),
    ("GET", "/stream/empty.wav/chunk/0", None, {}, 422),
    ("GET", "/waveform/missing.wav", None, {}, 404),
    ("GET", "/waveform/junk.wav", None, {}, 422),
    ("GET", "/waveform/noframes.wav", None, {}, 422),
    ("GET", "/stats/missing.wav", None, {}, 404),
    ("GET", "/stats/junk.wav", None, {}, 404),
    ("GET", "/stats/notes.txt", None, {}, 404),
    ("POST", "/degrade/missing.wav", b'{"segment_index": 0}', {}, 404),
    ("POST", "/degrade/junk.wav", b'{"segment_index": 0}', {}, 404),
    ("POST", "/degrade/empty.wav", b'{"segment_index": 0}', {}, 404),
    ("POST", "/degrade/a.wav", b"{", {"Content-Type": "application/json"}, 400),
    ("POST", "/degrade/a.wav", b'{"segment_index": {"a": 1}}', {}, 400),
    # nested deeper than the JSON parser's recursion limit, at the top and inside the object
    ("POST", "/degrade/a.wav", b"[" * 60_000, {}, 400),
    ("POST", "/degrade/a.wav", b"[" * 30_000 + b"]" * 30_000, {}, 400),
    ("POST", "/degrade/a.wav", b'{"segment_index": ' + b'{"a": ' * 8_000 + b"1"
     + b"}" * 8_001, {}, 400),
    ("POST", "/degrade/a.wav", b'{"segment_index": 1e400}', {}, 400),
    ("POST", "/degrade/a.wav", b'{"segment_index": ' + b"9" * 5000 + b"}", {}, 400),
    ("POST", "/degrade/a.wav", b'{"segment_index": ' + b"9" * 400 + b"}", {}, 400),
    ("POST", "/degrade/a.wav", b'{"segment_index": NaN}', {}, 400),
    ("POST", "/reset/junk.wav", None, {"Authorization": "Bearer s"}, 404),
    ("POST", "/reset/missing.wav", None, {"Authorization": "Bearer s"}, 404),
    ("GET", "/degrade/a.wav", None, {}, 405),
    ("PUT", "/tracks", None, {}, 405),
    ("DELETE", "/stream/a.wav", None, {}, 405),
    ("GET", "/no/such/route", None, {}, 404),
]


def test_bad_inputs_never_answer_500(api: Callable[..., Api]) -> None:
    """A sweep of malformed requests on every route answers the exact expected 4xx (or 200)."""
    a = api(admin_token="s", keep_originals=True)
    write_wav(a.audio / "a.wav", tone(2.0, 8000, 1), rate=8000)
    (a.audio / "junk.wav").write_bytes(b"not a wav" * 30)
    (a.audio / "empty.wav").write_bytes(b"")
    write_wav(a.audio / "noframes.wav", np.zeros((0, 1)), rate=8000)
    (a.audio / "notes.txt").write_text("x")
    (a.audio / "folder.wav").mkdir()
    failures = []
    for method, path, body, headers, expected in BAD_REQUESTS:
        status, resp_headers, content = a.raw(method, path, body, headers)
        if status != expected:
            failures.append((method, path, headers, status, content[:200]))
        if (status >= 400 and method != "HEAD"
                and resp_headers.get("content-type") == "application/json"):
            assert "error" in json.loads(content)
    assert not failures, "\n".join(map(repr, failures))
    assert a.client.get("/tracks").status_code == 200


def test_overflowing_start_and_deep_json_say_what_is_wrong(api: Callable[..., Api]) -> None:
    """start=1e308 (start x sample rate overflows) and a /degrade body nested past the JSON
    parser's recursion limit are 400s that name the problem, on GET and HEAD alike."""
    a = api()
    write_wav(a.audio / "a.wav", tone(2.0, 8000, 1), rate=8000)
    for method in ("GET", "HEAD"):
        status, headers, _ = a.raw(method, "/stream/a.wav?degrade=1&start=1e308")
        assert status == 400, method
        assert headers["content-type"] == "application/json"
    r = a.client.get("/stream/a.wav", params={"degrade": "1", "start": "1e308"})
    assert r.json() == {"error": "start is past the end of the track (2.000 s)"}
    r = a.client.post("/degrade/a.wav", content=b'{"segment_index": ' + b"[" * 50_000)
    assert r.status_code == 400
    assert "nested too deeply" in r.json()["error"]
    assert a.counts("a.wav") == [0, 0, 0, 0]


# -- OpenAPI document --------------------------------------------------------------


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with a top-level ``$ref`` into ``components`` followed."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return _resolve(doc, node)


def test_openapi_declares_the_degrade_body(api: Callable[..., Api]) -> None:
    """/openapi.json declares the JSON body of POST /degrade/<f> (answered ahead of FastAPI
    by the hot path) and its answer, and the parser accepts exactly what it declares."""
    a = api()
    doc = a.client.get("/openapi.json").json()
    op = doc["paths"]["/degrade/{filename}"]["post"]
    body = op["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"application/json"}
    schema = _resolve(doc, body["content"]["application/json"]["schema"])
    assert schema["type"] == "object"
    assert schema["required"] == ["segment_index"]
    index = schema["properties"]["segment_index"]
    assert index["type"] == "integer"
    assert index["minimum"] == 0
    ok = _resolve(doc, op["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(ok["required"]) == {"success", "segment_index", "play_count"}
    for status in ("400", "404", "429", "503"):
        error = op["responses"][status]["content"]["application/json"]["schema"]
        assert _resolve(doc, error)["required"] == ["error"]
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    assert a.degrade("a.wav", 1).json() == {"success": True, "segment_index": 1, "play_count": 1}
    assert a.client.post("/degrade/a.wav", json={}).status_code == 400


def test_405_allow_lists_every_method_of_the_path(api: Callable[..., Api]) -> None:
    """A method a path does not take answers 405 with every method it does take in Allow
    (GET and HEAD for /stream, documented as two operations)."""
    a = api()
    for method, path, allowed in (("DELETE", "/stream/a.wav", {"GET", "HEAD"}),
                                  ("POST", "/stream/a.wav", {"GET", "HEAD"}),
                                  ("GET", "/degrade/a.wav", {"POST"}),
                                  ("PUT", "/stats/a.wav", {"GET"})):
        status, headers, _ = a.raw(method, path)
        assert status == 405, (method, path)
        assert {m.strip() for m in headers["allow"].split(",")} == allowed, (method, path)


def test_openapi_documents_audio_routes_with_their_media_types(api: Callable[..., Api]) -> None:
    """The audio routes are documented as audio/wav (206 and 416 for /stream), not as
    application/json, and every answer of a real request is one the document declares,
    with a declared media type."""
    a = api()
    doc = a.client.get("/openapi.json").json()
    paths = doc["paths"]
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for method in ("get", "head"):
        responses = paths["/stream/{filename}"][method]["responses"]
        assert set(responses["200"]["content"]) == {"audio/wav"}, method
        assert "audio/wav" in responses["206"]["content"], method
        assert "application/json" not in responses["206"]["content"], method
        assert "Content-Range" in responses["206"]["headers"], method
        assert "Content-Range" in responses["416"]["headers"], method
        assert "422" not in responses, method
    chunk = paths["/stream/{filename}/chunk/{chunk_index}"]["get"]["responses"]
    assert set(chunk["200"]["content"]) == {"audio/wav"}
    waveform = paths["/waveform/{filename}"]["get"]["responses"]["200"]["content"]
    points = _resolve(doc, waveform["application/json"]["schema"])
    assert points["type"] == "array"
    assert set(_resolve(doc, points["items"])["required"]) == {"min", "max"}

    data = write_wav(a.audio / "a.wav", tone(6.0, 8000, 1), rate=8000).read_bytes()
    size = len(data)
    requests = [
        ("GET", "/stream/a.wav", {}, "/stream/{filename}"),
        ("HEAD", "/stream/a.wav", {}, "/stream/{filename}"),
        ("GET", "/stream/a.wav", {"Range": "bytes=0-9"}, "/stream/{filename}"),
        ("GET", "/stream/a.wav", {"Range": "bytes=0-9,20-29"}, "/stream/{filename}"),
        ("GET", "/stream/a.wav", {"Range": f"bytes={size}-"}, "/stream/{filename}"),
        ("GET", "/stream/missing.wav", {}, "/stream/{filename}"),
        ("GET", "/stream/a.wav?degrade=1&start=99", {}, "/stream/{filename}"),
        ("GET", "/stream/a.wav/chunk/1", {}, "/stream/{filename}/chunk/{chunk_index}"),
        ("GET", "/stream/a.wav/chunk/9", {}, "/stream/{filename}/chunk/{chunk_index}"),
        ("GET", "/waveform/a.wav", {}, "/waveform/{filename}"),
        ("GET", "/stats/a.wav", {}, "/stats/{filename}"),
    ]
    for method, path, headers, template in requests:
        status, got, _ = a.raw(method, path, headers=headers)
        declared = paths[template][method.lower()]["responses"]
        assert str(status) in declared, (method, path, status)
        content = declared[str(status)].get("content")
        if content is not None:
            media = got["content-type"].split(";")[0]
            assert media in content, (method, path, media)


def _problems(doc: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> list[str]:
    """Where `value` departs from `schema` (the JSON Schema subset FastAPI writes): wrong
    type, an object whose keys are not exactly its declared properties, in their order."""
    schema = _resolve(doc, schema)
    if "anyOf" in schema:
        if any(not _problems(doc, s, value, where) for s in schema["anyOf"]):
            return []
        return [f"{where}: {value!r} matches none of {schema['anyOf']}"]
    kind = schema.get("type")
    checks: dict[str, Callable[[Any], bool]] = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    }
    if kind not in checks:
        return [f"{where}: the schema names no type ({schema})"]
    if not checks[kind](value):
        return [f"{where}: {value!r} is not {kind}"]
    problems = []
    if kind == "object":
        declared = list(schema.get("properties", {}))
        if list(value) != declared:
            problems.append(f"{where}: keys {list(value)} but the schema names {declared}")
        for key in set(value) & set(declared):
            problems += _problems(doc, schema["properties"][key], value[key], f"{where}.{key}")
    if kind == "array":
        for i, item in enumerate(value):
            problems += _problems(doc, schema["items"], item, f"{where}[{i}]")
    return problems


def test_openapi_declares_every_answer_body_with_its_keys(api: Callable[..., Api]) -> None:
    """Every operation declares its 2xx body: a JSON object schema naming every key it
    sends (all required, no others allowed), a list of such objects, or its audio, HTML,
    CSV or tar media type; every declared JSON error answer is the {"error"} body."""
    doc = api(admin_token="tok").client.get("/openapi.json").json()  # with the curator's page
    failures = []
    operations = [(m.upper(), p, op) for p, item in doc["paths"].items()
                  for m, op in item.items()]
    assert len(operations) == 22
    for method, path, op in operations:
        ok = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        if not ok:
            failures.append(f"{method} {path}: no 2xx answer declared")
        for status, response in ok.items():
            content = response.get("content") or {}
            if not content:
                failures.append(f"{method} {path} {status}: no body declared")
            for media, body in content.items():
                schema = _resolve(doc, body.get("schema", {}))
                if media == "application/json":
                    objects = [schema] if schema.get("type") == "object" else (
                        [_resolve(doc, schema["items"])] if schema.get("type") == "array"
                        else [])
                    if not objects:
                        failures.append(f"{method} {path} {status}: {schema}")
                    for obj in objects:
                        names = list(obj.get("properties", {}))
                        if (not names or obj.get("additionalProperties") is not False
                                or sorted(obj.get("required", [])) != sorted(names)):
                            failures.append(f"{method} {path} {status}: loose schema {obj}")
                elif media in ("audio/wav", "multipart/byteranges", "application/x-tar"):
                    if schema != {"type": "string", "format": "binary"}:
                        failures.append(f"{method} {path} {status} {media}: {schema}")
                elif media in ("text/html", "text/csv"):
                    if schema.get("type") != "string":
                        failures.append(f"{method} {path} {status} {media}: {schema}")
                elif media == "text/event-stream":  # GET /events/wear: data of each event
                    for obj in map(lambda o: _resolve(doc, o), schema.get("oneOf", [])):
                        names = list(obj.get("properties", {}))
                        if (not names or obj.get("additionalProperties") is not False
                                or sorted(obj.get("required", [])) != sorted(names)):
                            failures.append(f"{method} {path} {status}: loose event {obj}")
                    if not schema.get("oneOf"):
                        failures.append(f"{method} {path} {status} {media}: {schema}")
                else:
                    failures.append(f"{method} {path} {status}: unexpected {media}")
        for status, response in op["responses"].items():
            if status.startswith("2"):
                continue
            json_body = (response.get("content") or {}).get("application/json")
            if json_body is not None:
                error = _resolve(doc, json_body["schema"])
                if (error.get("required") != ["error"]
                        or error.get("additionalProperties") is not False):
                    failures.append(f"{method} {path} {status}: error body {error}")
    assert not failures, "\n".join(failures)


def test_json_answers_are_exactly_what_the_document_declares(api: Callable[..., Api]) -> None:
    """Real answers of every JSON route, and of errors on each route, have exactly the
    keys and types that /openapi.json declares for their status, in the declared order."""
    a = api(admin_token="tok", keep_originals=True, degrade_rate_limit="2/minute")
    write_wav(a.audio / "a.wav", tone(6.0, 8000, 2), rate=8000)
    write_wav(a.audio / "b é.wav", tone(1.1, 8000, 1), rate=8000)
    (a.audio / "junk.wav").write_bytes(b"junk" * 20)
    doc = a.client.get("/openapi.json").json()
    size = (a.audio / "a.wav").stat().st_size
    auth = {"Authorization": "Bearer tok"}
    requests: list[tuple[str, str, bytes | None, dict[str, str], str, int]] = [
        ("GET", "/", None, {}, "/", 200),
        ("GET", "/tracks", None, {}, "/tracks", 200),
        ("POST", "/degrade/a.wav", b'{"segment_index": 2}', {}, "/degrade/{filename}", 200),
        ("GET", "/stats/a.wav", None, {}, "/stats/{filename}", 200),
        ("GET", "/stats/b%20%C3%A9.wav", None, {}, "/stats/{filename}", 200),
        ("GET", "/waveform/a.wav", None, {}, "/waveform/{filename}", 200),
        ("POST", "/reset/a.wav", None, auth, "/reset/{filename}", 200),
        ("GET", "/stats/nope.wav", None, {}, "/stats/{filename}", 404),
        ("GET", "/waveform/junk.wav", None, {}, "/waveform/{filename}", 422),
        ("POST", "/degrade/a.wav", b"{}", {}, "/degrade/{filename}", 400),
        ("POST", "/degrade/a.wav", b'{"segment_index": 0}', {}, "/degrade/{filename}", 429),
        ("POST", "/reset/a.wav", None, {}, "/reset/{filename}", 401),
        ("GET", "/stream/nope.wav", None, {}, "/stream/{filename}", 404),
        ("GET", "/stream/a.wav", None, {"Range": f"bytes={size}-"}, "/stream/{filename}", 416),
        ("GET", "/stream/a.wav?degrade=1&start=x", None, {}, "/stream/{filename}", 400),
        ("GET", "/stream/a.wav/chunk/9", None, {}, "/stream/{filename}/chunk/{chunk_index}",
         400),
        ("GET", "/api/analytics", None, {}, "/api/analytics", 200),
        ("GET", "/api/analytics?filename=a.wav&bucket=hour", None, {}, "/api/analytics", 200),
        ("GET", "/api/analytics?filename=nope.wav", None, {}, "/api/analytics", 404),
        ("GET", "/api/analytics?from=yesterday", None, {}, "/api/analytics", 400),
        ("GET", "/api/analytics?format=xml", None, {}, "/api/analytics", 400),
    ]
    failures = []
    for method, path, body, headers, template, expected in requests:
        status, got, content = a.raw(method, path, body, headers)
        assert status == expected, (method, path, status, content[:200])
        responses = doc["paths"][template][method.lower()]["responses"]
        declared = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
        assert declared is not None, (method, path, status)
        media = got["content-type"].split(";")[0]
        assert media == "application/json", (method, path, status, media)
        schema = declared["content"][media]["schema"]
        failures += _problems(doc, schema, json.loads(content), f"{method} {path} {status}")
    assert not failures, "\n".join(failures)


def test_unsatisfiable_range_answers_the_shared_error_body(served: tuple[Api, bytes]) -> None:
    """A 416 on /stream is answered like every other error of the app: {"error": ...} as
    JSON, with Content-Range: bytes */size (RFC 9110 §15.5.17), and documented so."""
    a, data = served
    r = a.client.get("/stream/a.wav", headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-range"] == f"bytes */{len(data)}"
    assert r.json() == {"error": f"Range not satisfiable: the file has {len(data)} bytes"}
    doc = a.client.get("/openapi.json").json()
    declared = doc["paths"]["/stream/{filename}"]["get"]["responses"]["416"]
    assert _resolve(doc, declared["content"]["application/json"]["schema"])["required"] == [
        "error"]


def test_degrade_route_behind_a_root_path_answers_as_the_hot_path(
        eph_settings: Callable[..., EphemeralSettings]) -> None:
    """Under uvicorn --root-path the hot path steps aside and the FastAPI route answers
    /degrade with the same bodies, statuses and rate limit."""
    import threading

    import uvicorn

    from tests.conftest import free_port
    from tests.polling import wait_for

    settings = eph_settings(degrade_rate_limit="3/minute")
    settings.audio_dir.mkdir(parents=True)
    write_wav(settings.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           root_path="/eph", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 10, "the server to start", interval=0.02)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            ok = c.post("/degrade/a.wav", json={"segment_index": 1})
            assert (ok.status_code, ok.json()) == (
                200, {"success": True, "segment_index": 1, "play_count": 1})
            bad = c.post("/degrade/a.wav", json={"segment_index": 9})
            assert (bad.status_code, bad.json()) == (400, {"error": "Invalid segment index"})
            missing = c.post("/degrade/nope.wav", json={"segment_index": 0})
            assert (missing.status_code, missing.json()) == (404, {"error": "Track not found"})
            limited = c.post("/degrade/a.wav", json={"segment_index": 1})
            assert limited.status_code == 429
            assert int(limited.headers["retry-after"]) >= 1
            assert c.get("/stats/a.wav").json()["segment_play_counts"] == [0, 1]
    finally:
        server.should_exit = True
        thread.join(10)
