"""Analytics on a real server: plays made through ``POST /degrade`` on real recordings of the
shared corpus, read back from ``GET /api/analytics`` as JSON and CSV."""

from __future__ import annotations

import csv
import io
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from taperoom.ephemeral.analytics.repository import PlayEventRepository
from taperoom.ephemeral.app import create_app
from taperoom.ephemeral.settings import EphemeralSettings

TAGGED = ("scanner", "real_music_tagged")
GARNER = "06 - John Garner - Partita No. 1 in B minor: Tempo di Borea (BWV1002).wav"
DANCE = ("14 - various (librosa example data) - Hungarian Dance number 5 - Allegro in F sharp "
         "minor (string orchestra).wav")
RATE = 10.0  # percent per play


@dataclass
class Server:
    """A running ephemeral server with two corpus recordings."""

    url: str
    client: httpx.Client
    settings: EphemeralSettings

    def play(self, name: str, index: int) -> int:
        r = self.client.post(f"/degrade/{quote(name)}", json={"segment_index": index})
        assert r.status_code == 200, r.text
        count: int = r.json()["play_count"]
        return count

    def degradation(self, name: str) -> float:
        r = self.client.get(f"/stats/{quote(name)}")
        assert r.status_code == 200, r.text
        value: float = r.json()["overall_degradation"]
        return value

    def analytics(self, **params: Any) -> dict[str, Any]:
        r = self.client.get("/api/analytics", params=params)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture
def start(corpus: Path, eph_settings: Callable[..., EphemeralSettings],
          live_server: Callable[[Any], Any]) -> Iterator[Callable[..., Server]]:
    """Start ephemeral servers on the same folders (settings overrides allowed)."""
    clients: list[httpx.Client] = []

    def run(**overrides: Any) -> Server:
        settings = eph_settings(**{"degrade_rate_limit": "off", "degradation_rate": RATE,
                                   **overrides})
        settings.audio_dir.mkdir(parents=True, exist_ok=True)
        for name in (GARNER, DANCE):
            if not (settings.audio_dir / name).exists():
                shutil.copyfile(corpus.joinpath(*TAGGED, name), settings.audio_dir / name)
        srv = live_server(create_app(settings))
        client = httpx.Client(base_url=srv.url, timeout=10)
        clients.append(client)
        return Server(srv.url, client, settings)

    yield run
    for c in clients:
        c.close()


@pytest.fixture
def server(start: Callable[..., Server]) -> Server:
    return start()


def test_plays_are_counted_per_track_and_for_all(server: Server) -> None:
    """Five plays of one recording and three of another: /api/analytics counts 8 for all
    tracks and 5 and 3 per track, in one-minute buckets that add up to the totals."""
    for i in range(5):
        server.play(GARNER, i)
    for i in (0, 0, 7):
        server.play(DANCE, i)

    every = server.analytics()
    assert every["filename"] is None
    assert every["total_plays"] == 8
    assert every["bucket"] == "minute" and every["bucket_seconds"] == 60
    assert sum(b["plays"] for b in every["buckets"]) == 8
    assert every["tracks"] == [
        {"filename": GARNER, "plays": 5, "degradation": server.degradation(GARNER)},
        {"filename": DANCE, "plays": 3, "degradation": server.degradation(DANCE)},
    ]
    assert every["from"] <= every["to"] <= time.time()

    garner = server.analytics(filename=GARNER)
    assert garner["filename"] == GARNER
    assert garner["total_plays"] == 5
    assert [t["filename"] for t in garner["tracks"]] == [GARNER]
    dance = server.analytics(filename=DANCE)
    assert dance["total_plays"] == 3
    assert dance["buckets"][-1]["degradation"] == server.degradation(DANCE)


def test_buckets_cover_the_range_in_aligned_steps(server: Server) -> None:
    """bucket=minute|hour|day: consecutive buckets aligned on their size (UTC), from the one
    holding `from` to the one holding `to`; ISO and Unix starts agree; no plays and no
    degradation before the first play."""
    for i in range(4):
        server.play(GARNER, i)
    now = time.time()
    for size, width, span in (("minute", 60, 600), ("hour", 3600, 5 * 3600),
                              ("day", 86400, 3 * 86400)):
        got = server.analytics(bucket=size, **{"from": now - span, "to": now})
        assert (got["bucket"], got["bucket_seconds"]) == (size, width)
        starts = [b["start_unix"] for b in got["buckets"]]
        first = math.floor((now - span) / width) * width
        assert starts == list(range(first, int(now) + 1, width))[:len(starts)]
        assert starts[-1] <= now < starts[-1] + width
        assert len(starts) == (now - first) // width + 1
        for b in got["buckets"]:
            assert b["start"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(b["start_unix"]))
        assert got["total_plays"] == 4 == sum(b["plays"] for b in got["buckets"])
        assert got["buckets"][0]["plays"] == 0 and got["buckets"][0]["degradation"] is None
        assert got["buckets"][-1]["degradation"] == server.degradation(GARNER)


def test_auto_bucket_follows_the_range(server: Server) -> None:
    """bucket=auto (the default) takes the smallest size that gives at most 240 buckets:
    minutes up to about 4 hours, hours up to about 10 days, then days; ISO times work."""
    now = time.time()
    for span, size in ((3600, "minute"), (3 * 3600, "minute"), (5 * 3600, "hour"),
                       (9 * 86400, "hour"), (11 * 86400, "day"), (3 * 365 * 86400, "day")):
        got = server.analytics(**{"from": now - span, "to": now})
        assert got["bucket"] == size, span
        assert len(got["buckets"]) <= 240 or size == "day"
    iso = server.analytics(**{"from": "2020-01-01T00:00:00Z", "to": "2020-01-02"})
    assert iso["bucket"] == "hour"
    assert (iso["from"], iso["to"]) == (1577836800, 1577923200)
    assert [b["start"] for b in iso["buckets"]][::24] == ["2020-01-01T00:00:00Z",
                                                            "2020-01-02T00:00:00Z"]
    assert iso["total_plays"] == 0 and iso["tracks"] == []


def test_degradation_grows_with_the_plays_as_stats_shows_it(server: Server) -> None:
    """The degradation at the end of a range is the track's /stats value after the last play
    up to then: it grows play by play; a range after the plays carries the last value (for
    one track and, as a mean, for all)."""
    seen = []
    marks = []
    for i in range(6):
        server.play(GARNER, i % 2)
        marks.append(time.time())
        seen.append(server.degradation(GARNER))
    assert seen == sorted(seen) and seen[0] < seen[-1]
    start = marks[0] - 600  # before every play, however slow the answers
    for mark, expected in zip(marks, seen, strict=True):
        got = server.analytics(filename=GARNER, **{"from": start, "to": mark})
        assert got["buckets"][-1]["degradation"] == expected
        assert got["tracks"] == [{"filename": GARNER, "plays": marks.index(mark) + 1,
                                  "degradation": expected}]
    server.play(DANCE, 3)
    dance = server.degradation(DANCE)
    later = time.time()
    quiet = server.analytics(**{"from": later, "to": later + 1})
    assert quiet["total_plays"] == 0
    assert quiet["buckets"][-1]["degradation"] == pytest.approx((seen[-1] + dance) / 2)
    assert quiet["tracks"] == [{"filename": GARNER, "plays": 0, "degradation": seen[-1]},
                               {"filename": DANCE, "plays": 0, "degradation": dance}]


def test_a_reset_shows_as_a_drop_in_degradation(start: Callable[..., Server]) -> None:
    """After POST /reset the next play records the degradation of the restored track, so
    the series falls back instead of replaying the old counts."""
    server = start(keep_originals=True, admin_token="tok")
    for _ in range(4):
        server.play(GARNER, 0)
    worn = server.degradation(GARNER)
    before_reset = time.time()
    r = server.client.post(f"/reset/{quote(GARNER)}", headers={"Authorization": "Bearer tok"})
    assert r.status_code == 200, r.text
    server.play(GARNER, 1)
    fresh = server.degradation(GARNER)
    assert 0 < fresh < worn
    assert server.analytics(filename=GARNER, to=before_reset)["buckets"][-1][
        "degradation"] == worn
    after = server.analytics(filename=GARNER)
    assert after["total_plays"] == 5
    assert after["buckets"][-1]["degradation"] == fresh


def test_csv_has_a_header_and_one_row_per_bucket(server: Server) -> None:
    """format=csv answers text/csv: the header row, then each bucket of the JSON answer."""
    for i in range(3):
        server.play(DANCE, i)
    now = time.time()
    params = {"filename": DANCE, "from": now - 300, "to": now, "bucket": "minute"}
    r = server.client.get("/api/analytics", params={**params, "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["bucket_start", "bucket_start_unix", "plays", "degradation"]
    data = server.analytics(**params)
    assert len(rows) == 1 + len(data["buckets"])
    for row, bucket in zip(rows[1:], data["buckets"], strict=True):
        assert row[:3] == [bucket["start"], str(bucket["start_unix"]), str(bucket["plays"])]
        assert row[3] == ("" if bucket["degradation"] is None else repr(bucket["degradation"]))
    assert sum(int(row[2]) for row in rows[1:]) == 3
    assert float(rows[-1][3]) == server.degradation(DANCE)


@pytest.mark.parametrize(("query", "status", "message"), [
    ("filename=nope.wav", 404, "Track not found"),
    ("filename=nope.wav&format=csv", 404, "Track not found"),
    ("filename=..%2F..%2Fetc%2Fpasswd", 404, "Track not found"),
    ("format=xml", 400, "format"),
    ("bucket=week", 400, "bucket"),
    ("from=yesterday", 400, "from must be Unix seconds or an ISO 8601 time"),
    ("to=nan", 400, "to must lie between"),
    ("from=-5", 400, "from must lie between"),
    ("from=1e400", 400, "from must lie between"),
    ("from=2026-01-02&to=2026-01-01", 400, "`from` must not be after `to`"),
    ("from=0&bucket=minute", 400, "at most 10000"),
    ("from=0&to=9999-12-31", 400, "at most 10000"),
])
def test_bad_requests_are_answered_with_their_status(server: Server, query: str, status: int,
                                                     message: str) -> None:
    """An unknown track is 404, a bad parameter 400, each with the app's {"error"} body."""
    r = server.client.get(f"/api/analytics?{query}")
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert list(r.json()) == ["error"] and message in r.json()["error"]


def test_events_outlive_the_server_and_the_file(start: Callable[..., Server]) -> None:
    """Events are on disk: a new server on the same folders shows them, and a track whose
    file was removed keeps its history (a name never played stays 404)."""
    first = start()
    for i in range(3):
        first.play(GARNER, i)
    second = start()
    assert second.analytics(filename=GARNER)["total_plays"] == 3
    (second.settings.audio_dir / GARNER).unlink()
    assert second.client.get(f"/stats/{quote(GARNER)}").status_code == 404
    gone = second.analytics(filename=GARNER)
    assert gone["total_plays"] == 3 and gone["filename"] == GARNER
    assert second.client.get("/api/analytics", params={"filename": "x.wav"}).status_code == 404


def test_each_event_records_time_track_segment_count_and_worker(server: Server) -> None:
    """The stored events: the time of each play, its track, segment and count after it, the
    degradation /stats showed after it, and this server's process."""
    import os

    before = time.time()
    counts = [server.play(GARNER, i) for i in (4, 4, 9)]
    after = time.time()
    repo = PlayEventRepository(server.settings.metadata_dir / "analytics" / "plays.sqlite")
    try:
        events = repo.events(GARNER)
    finally:
        repo.close()
    assert [(e.segment_index, e.play_count) for e in events] == [(4, 1), (4, 2), (9, 1)]
    assert counts == [1, 2, 1]
    assert all(before <= e.played_at <= after for e in events)
    assert [e.played_at for e in events] == sorted(e.played_at for e in events)
    assert {e.worker_pid for e in events} == {os.getpid()}
    assert events[-1].degradation == server.degradation(GARNER)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_every_worker_process_records_its_plays(
        corpus: Path, tmp_path: Path, server_process: Callable[..., Any]) -> None:
    """``taperoom ephemeral serve --workers 2``: plays on fresh connections are counted by
    both worker processes, and every one of them is in the analytics of either worker."""
    audio = tmp_path / "audio"
    audio.mkdir()
    shutil.copyfile(corpus.joinpath(*TAGGED, GARNER), audio / GARNER)
    meta = tmp_path / "meta"
    srv = server_process(["ephemeral", "serve", "--workers", "2"], {
        "AUDIO_DIR": str(audio), "METADATA_DIR": str(meta), "DEGRADE_RATE_LIMIT": "off",
        "LOG_LEVEL": "warning"})
    repo = PlayEventRepository(meta / "analytics" / "plays.sqlite")
    made = 0
    try:
        for _ in range(300):  # the kernel spreads new connections over the workers' accepts
            with httpx.Client(timeout=10) as client:  # a new connection each time
                r = client.post(f"{srv.url}/degrade/{quote(GARNER)}",
                                json={"segment_index": made % 11})
                assert r.status_code == 200, r.text
            made += 1
            if made >= 20 and len({e.worker_pid for e in repo.events(limit=10_000)}) == 2:
                break
        assert len({e.worker_pid for e in repo.events(limit=10_000)}) == 2, \
            "every connection went to one worker"
    finally:
        repo.close()
    for _ in range(4):  # whichever worker answers
        with httpx.Client(timeout=10) as client:
            got = client.get(f"{srv.url}/api/analytics", params={"filename": GARNER}).json()
        assert got["total_plays"] == made
        stats = httpx.get(f"{srv.url}/stats/{quote(GARNER)}", timeout=10).json()
        assert got["buckets"][-1]["degradation"] == stats["overall_degradation"]
