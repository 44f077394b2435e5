"""HLS streams whose segments are raw AAC (ADTS "packed audio", RFC 8216 section 3.4)
instead of MPEG-TS, served live by the test stream server from corpus audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taperoom.recorder.capture import CaptureOptions, probe_stream_url, record_stream
from taperoom.recorder.urlpolicy import UrlPolicy
from tests.recorder.mp3kit import decode_mp3
from tests.recorder.streamserver import StreamMedia, StreamServer, split_adts

LOCAL = UrlPolicy.from_networks("127.0.0.0/8,::1/128")
FAST = CaptureOptions(bitrate_kbps=128, stall_timeout=2.0, connect_timeout=2.0,
                      backoff_initial=0.5, backoff_max=2.0, policy=LOCAL,
                      healthy_seconds=1.0)


def test_raw_aac_segments_are_packed_audio(stream_media: StreamMedia) -> None:
    """The peer's segments are what a packed-audio HLS server sends: an ID3 tag with the
    90 kHz timestamp, then whole ADTS frames that FFmpeg's own ADTS demuxer reads."""
    data, seconds = stream_media.hls_aac_segments[1]
    assert data.startswith(b"ID3\x04") and b"com.apple.streaming.transportStreamTimestamp" in data
    tag_size = 10 + int.from_bytes(data[6:10], "big")  # small tag: no syncsafe carries
    assert int.from_bytes(data[tag_size - 8:tag_size], "big") == 47 * 1024 * 90_000 // 48_000
    assert len(split_adts(data[tag_size:])) == 47 and seconds == pytest.approx(1.0027, abs=1e-4)


@pytest.mark.slow
def test_hls_with_raw_aac_segments_is_recorded(stream_server: StreamServer,
                                               tmp_path: Path) -> None:
    """A live HLS playlist of ``.aac`` segments is recorded like one of MPEG-TS segments:
    the AAC is decoded and encoded to MP3 of the requested length, music throughout."""
    stream_server.mount("/aac.m3u8", kind="hls", hls_segment_type="aac")
    result = record_stream(stream_server.url("/aac.m3u8"), tmp_path / "rec.mp3", 3.0,
                           options=FAST)
    assert result.source_codec == "aac" and not result.stream_copy
    assert 2.6 < result.duration_seconds < 4.4
    paths = [r.path for r in stream_server.requests]
    assert sum(p.endswith(".aac") for p in paths) >= 2
    assert not any(p.endswith(".ts") for p in paths)
    assert not result.gaps
    pcm, rate = decode_mp3(result.path)
    assert rate == 44100 and len(pcm) > 2.5 * rate
    assert float(np.sqrt(np.mean(pcm ** 2))) > 0.01  # music, not silence


def test_probe_describes_an_hls_stream_of_raw_aac(stream_server: StreamServer) -> None:
    """The stations' URL test recognises the AAC inside ``.aac`` segments."""
    stream_server.mount("/aac.m3u8", kind="hls", hls_segment_type="aac")
    found = probe_stream_url(stream_server.url("/aac.m3u8"), timeout=10, policy=LOCAL)
    assert found["success"], found
    assert (found["codec"], found["sample_rate"], found["channels"]) == ("aac", 48_000, 2)
