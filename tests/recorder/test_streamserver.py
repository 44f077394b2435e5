"""The test stream server's station clock (tests/recorder/streamserver.py).

The recorder tests describe a station's programme in station seconds (ICY titles,
refusals, HLS segments) and expect their first listener to hear it from the start,
however long the test took to set up: a station goes on air with its first request,
like an Icecast on-demand mount, and from then on runs on wall-clock time.
"""

from __future__ import annotations

import time

import httpx

from tests.polling import wait_for
from tests.recorder.streamserver import StreamServer

#: How long the "slow test setup" between mounting and the first request lasts: longer
#: than every timeline below, so a clock started by ``mount()`` would have run past them.
SETUP_DELAY = 1.0


def _first_title(url: str) -> tuple[str, int]:
    """Read an ICY stream until its first non-empty metadata block: (block text, audio
    bytes before it)."""
    with httpx.stream("GET", url, headers={"Icy-MetaData": "1"}, timeout=10) as r:
        assert r.status_code == 200
        metaint = int(r.headers["icy-metaint"])
        buf, audio = b"", 0
        for chunk in r.iter_bytes():
            buf += chunk
            while len(buf) > metaint and len(buf) >= metaint + 1 + buf[metaint] * 16:
                size = buf[metaint] * 16
                audio += metaint
                text = buf[metaint + 1:metaint + 1 + size].rstrip(b"\x00").decode()
                buf = buf[metaint + 1 + size:]
                if text:
                    return text, audio
    raise AssertionError("the stream ended before any title")


def _status(url: str) -> int:
    """The status a request gets (the body, an endless stream on 200, is not read)."""
    with httpx.stream("GET", url, timeout=10) as r:
        return r.status_code


def test_first_listener_hears_the_first_title_however_late_it_connects(
        stream_server: StreamServer) -> None:
    """Titles are timed from the first request, not from mount(): a listener arriving
    after the first title's slot still starts at station time 0, in the first title, and
    its audio starts with the first frame of the material."""
    stream_server.mount("/t.mp3", metaint=1024, titles=[(0.0, "A - One"), (0.5, "B - Two")])
    time.sleep(SETUP_DELAY)
    text, at = _first_title(stream_server.url("/t.mp3"))
    assert text == "StreamTitle='A - One';" and at == 1024
    [req] = stream_server.requests_for("/t.mp3")
    assert req.audio_start == 0.0 and req.first_frame == 0
    assert req.titles_sent[0] == (1024, "A - One")


def test_reconnecting_listener_has_missed_the_time_away(stream_server: StreamServer) -> None:
    """Once on air the station runs on: a second request starts at the live position,
    in the title on air by then."""
    stream_server.mount("/t.mp3", metaint=1024, titles=[(0.0, "A - One"), (0.3, "B - Two")])
    assert _first_title(stream_server.url("/t.mp3"))[0] == "StreamTitle='A - One';"
    time.sleep(SETUP_DELAY)
    assert _first_title(stream_server.url("/t.mp3"))[0] == "StreamTitle='B - Two';"
    first, second = stream_server.requests_for("/t.mp3")
    assert first.audio_start == 0.0
    assert second.audio_start is not None and second.audio_start >= SETUP_DELAY


def test_refusals_are_timed_from_the_first_request(stream_server: StreamServer) -> None:
    """``refuse_for`` refuses the first request however late it comes, then lets a
    request through once that much station time has passed."""
    stream_server.mount("/r.mp3", refuse_for=0.5)
    time.sleep(SETUP_DELAY)
    url = stream_server.url("/r.mp3")
    assert _status(url) == 503
    wait_for(lambda: _status(url) == 200, 30, "a request let through")
    reqs = stream_server.requests_for("/r.mp3")
    assert reqs[0].station_time < 0.5 and reqs[-1].status == 200


def test_hls_playlist_starts_at_segment_zero_for_its_first_listener(
        stream_server: StreamServer) -> None:
    """The live HLS window opens at segment 0 for the first listener, however late it
    comes, instead of listing the segments of a programme nobody heard."""
    stream_server.mount("/h.m3u8", kind="hls")
    time.sleep(SETUP_DELAY * 2)
    r = httpx.get(stream_server.url("/h.m3u8"), timeout=10)
    assert r.status_code == 200
    assert "#EXT-X-MEDIA-SEQUENCE:0\n" in r.text
    assert [line for line in r.text.splitlines() if line.endswith(".ts")] == [
        "/h.m3u8.seg0.ts"]


def test_first_listener_gets_a_full_burst_from_station_time_zero(
        stream_server: StreamServer) -> None:
    """With burst-on-connect the station went on air ``burst_seconds`` before its first
    listener: that listener gets the burst at once, from the first frame and title."""
    stream_server.mount("/b.mp3", metaint=1024, burst_seconds=1.0,
                        titles=[(0.0, "A - One"), (0.5, "B - Two")])
    assert _first_title(stream_server.url("/b.mp3"))[0] == "StreamTitle='A - One';"
    [req] = stream_server.requests_for("/b.mp3")
    assert req.audio_start == 0.0 and req.first_frame == 0
    assert req.station_time >= 1.0
    # the burst is the first write, one second at 128 kbit/s; the record counts it just
    # after the write, which the listener may have read first
    wait_for(lambda: req.audio_bytes, 10, "the burst to be counted")
    assert req.audio_bytes >= 1.0 * 128_000 / 8
