"""``GET /stream/<f>?start=<s>&degrade=1``: a real-time stream that wears what it sends."""

from __future__ import annotations

import io
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

from taperoom.audio import wav
from taperoom.ephemeral.app import create_app
from tests.polling import wait_for
from tests.wavgen import BEXT, tone, write_wav


def _counts(url: str, name: str) -> list[int]:
    return httpx.get(f"{url}/stats/{name}").json()["segment_play_counts"]


def test_stream_from_start_is_valid_wav_paced_and_counts_sent_segments(
        tmp_path, eph_settings, live_server) -> None:
    """From 1.2 s: a WAV of the rest, paced at real time, segments 2..7 worn once each."""
    settings = eph_settings(stream_prebuffer=0.5)
    settings.audio_dir.mkdir(parents=True)
    path = write_wav(settings.audio_dir / "t.wav", tone(4.0, 44100, 2), before=[BEXT])
    info = wav.read_info(path)
    original = path.read_bytes()
    srv = live_server(create_app(settings))
    t0 = time.monotonic()
    r = httpx.get(f"{srv.url}/stream/t.wav", params={"start": 1.2, "degrade": 1}, timeout=30)
    elapsed = time.monotonic() - t0
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/wav"
    assert int(r.headers["content-length"]) == len(r.content)
    start = int(1.2 * 44100)
    with wave.open(io.BytesIO(r.content)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 44100)
        assert w.getnframes() == info.n_frames - start
        frames = w.readframes(w.getnframes())
    # first plays wear nothing, so the frames sent are the file's frames from 1.2 s
    assert frames == original[info.frame_offset(start): info.data_offset + info.data_size]
    assert elapsed >= (4.0 - 1.2) - 0.5 - 0.6
    wait_for(lambda: sum(_counts(srv.url, "t.wav")) >= 6, 5, "six segments counted")
    assert _counts(srv.url, "t.wav") == [0, 0, 1, 1, 1, 1, 1, 1]
    assert httpx.get(f"{srv.url}/stats/t.wav").json()["total_streams"] == 1


def test_second_worn_stream_wears_the_audio(tmp_path, eph_settings, live_server) -> None:
    """At 100 % per play, the second stream of a segment finds it silenced on disk."""
    settings = eph_settings(stream_prebuffer=5.0, degradation_rate=100.0)
    settings.audio_dir.mkdir(parents=True)
    path = write_wav(settings.audio_dir / "t.wav", tone(1.0, 8000, 1), rate=8000)
    srv = live_server(create_app(settings))
    for _ in range(2):
        assert httpx.get(f"{srv.url}/stream/t.wav?degrade=1", timeout=30).status_code == 200
    wait_for(lambda: sum(_counts(srv.url, "t.wav")) >= 4, 5, "four plays counted")
    assert _counts(srv.url, "t.wav") == [2, 2]
    info = wav.read_info(path)
    fd = path.open("rb")
    y = wav.read_frames(fd.fileno(), info, 0, info.n_frames)
    fd.close()
    assert np.all(y == 0.0)


@pytest.mark.slow
def test_client_that_disconnects_stops_the_wear(tmp_path, eph_settings, live_server) -> None:
    """Reading 1 s of a 20 s stream then closing wears only the segments sent, and no more later."""
    settings = eph_settings(stream_prebuffer=0.5)
    settings.audio_dir.mkdir(parents=True)
    write_wav(settings.audio_dir / "t.wav", tone(20.0, 44100, 2))
    srv = live_server(create_app(settings))
    with httpx.Client(timeout=30) as client, \
            client.stream("GET", f"{srv.url}/stream/t.wav?degrade=1") as r:
        got = 0
        for block in r.iter_bytes():
            got += len(block)
            if got >= 44100 * 4:  # one second of audio
                break
    time.sleep(1.5)
    after_close = sum(_counts(srv.url, "t.wav"))
    time.sleep(2.0)
    assert sum(_counts(srv.url, "t.wav")) == after_close
    # sent: about 1 s read + 0.5 s prebuffer + socket buffers; far from all 40 segments
    assert 1 <= after_close <= 12


def test_fast_reader_cannot_wear_faster_than_real_time(tmp_path, eph_settings,
                                                       live_server) -> None:
    """A client reading as fast as it can for 1.5 s has worn at most ~(1.5 + prebuffer) s."""
    settings = eph_settings(stream_prebuffer=1.0)
    settings.audio_dir.mkdir(parents=True)
    write_wav(settings.audio_dir / "t.wav", tone(30.0, 44100, 2))
    srv = live_server(create_app(settings))
    with httpx.Client(timeout=30) as client, \
            client.stream("GET", f"{srv.url}/stream/t.wav?degrade=1") as r:
        t0 = time.monotonic()
        for _ in r.iter_bytes():
            if time.monotonic() - t0 > 1.5:
                break
    time.sleep(0.5)
    worn = sum(_counts(srv.url, "t.wav"))
    assert worn <= (1.5 + 1.0 + 0.6) / 0.5 + 1
    assert worn >= 3


def test_worn_stream_rejects_bad_start(tmp_path, eph_settings, live_server) -> None:
    """A start past the end or negative is a 400, an unknown track a 404."""
    settings = eph_settings()
    settings.audio_dir.mkdir(parents=True)
    write_wav(settings.audio_dir / "t.wav", tone(1.0, 8000, 1))
    srv = live_server(create_app(settings))
    assert httpx.get(f"{srv.url}/stream/t.wav?degrade=1&start=5").status_code == 400
    assert httpx.get(f"{srv.url}/stream/t.wav?degrade=1&start=-1").status_code == 400
    assert httpx.get(f"{srv.url}/stream/t.wav?degrade=1&start=abc").status_code == 400
    assert httpx.get(f"{srv.url}/stream/no.wav?degrade=1").status_code == 404
    assert sum(_counts(srv.url, "t.wav")) == 0


def test_head_of_worn_stream_sends_headers_only(tmp_path, eph_settings, live_server) -> None:
    """HEAD with degrade=1 gives the length of the stream and wears nothing."""
    settings = eph_settings()
    settings.audio_dir.mkdir(parents=True)
    path: Path = write_wav(settings.audio_dir / "t.wav", tone(1.0, 8000, 1))
    srv = live_server(create_app(settings))
    r = httpx.head(f"{srv.url}/stream/t.wav?degrade=1")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) == 44 + 8000 * 2
    assert path.stat().st_size == 44 + 8000 * 2
    assert sum(_counts(srv.url, "t.wav")) == 0
