"""Stream capture against a real Icecast-like server on 127.0.0.1 (taperoom.recorder.capture)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from taperoom.clock import SimulatedClock
from taperoom.errors import InvalidInput, MediaError
from taperoom.recorder.capture import (
    CaptureOptions,
    CaptureProgress,
    probe_stream_url,
    record_stream,
)
from taperoom.recorder.encode import parse_header
from taperoom.recorder.urlpolicy import UrlPolicy, UrlRefused
from tests.conftest import free_port
from tests.polling import wait_for
from tests.recorder.mp3kit import decode_mp3, mp3_packets
from tests.recorder.streamserver import Plan, StreamMedia, StreamServer

# the stream server's fixtures

# every timing scaled down to test sizes (a 1 s connection is a healthy stretch here)
#: The test peers listen on 127.0.0.1: loopback is allowed explicitly.
LOCAL = UrlPolicy.from_networks("127.0.0.0/8,::1/128")
FAST = CaptureOptions(bitrate_kbps=128, stall_timeout=2.0, connect_timeout=2.0,
                      backoff_initial=0.5, backoff_max=2.0, policy=LOCAL,
                      healthy_seconds=1.0)


def _sent_run(media: StreamMedia, first: int, last: int) -> bytes:
    """The bytes of the source frames first..last (global indexes, the material loops)."""
    n = len(media.mp3_frames)
    return b"".join(media.mp3_frames[k % n] for k in range(first, last + 1))


@pytest.mark.slow
def test_mp3_stream_is_copied_frame_for_frame(stream_server: StreamServer,
                                              stream_media: StreamMedia,
                                              tmp_path: Path) -> None:
    """An MP3 stream is kept byte for byte (ID3 start tag and ICY blocks removed), ~3 s long."""
    stream_server.mount("/live.mp3", id3_prefix=True, metaint=1000, titles=[(0, "A - One")])
    out = tmp_path / "rec.mp3"
    t0 = time.monotonic()
    result = record_stream(stream_server.url("/live.mp3"), out, 3.0, options=FAST)
    assert result.stream_copy and result.source_codec == "mp3"
    assert result.gaps == [] and result.reconnects == 0 and not result.stopped
    assert result.bytes_written == out.stat().st_size
    req = stream_server.requests_for("/live.mp3")[0]
    # audio flows from the moment the request reaches the server until the end
    assert abs(result.duration_seconds - (3.0 - (req.received - t0))) < 0.25
    assert req.headers["icy-metadata"] == "1"
    assert req.headers["user-agent"].startswith("Taperoom/")
    data = out.read_bytes()
    assert data[:3] != b"ID3"
    source = set(stream_media.mp3_frames)
    packets = mp3_packets(out)
    assert all(p in source for p in packets)
    assert sum(map(len, packets)) == len(data)
    assert req.first_frame is not None and req.last_frame is not None
    assert _sent_run(stream_media, req.first_frame, req.last_frame - 8) in data
    pcm, rate = decode_mp3(out)
    assert rate == 44100 and abs(len(pcm) / rate - result.duration_seconds) < 0.03


@pytest.mark.slow
def test_icy_title_changes_become_cues_at_their_audio_offsets(
        stream_server: StreamServer, stream_media: StreamMedia, tmp_path: Path) -> None:
    """StreamTitle changes give cues at the audio offset of the change (within ~0.2 s)."""
    stream_server.mount("/live.mp3", metaint=1024,
                        titles=[(0, "Artist A - First"), (1.2, "Artist B - Second's"),
                                (2.4, "Artist C - Third")])
    result = record_stream(stream_server.url("/live.mp3"), tmp_path / "rec.mp3", 3.3,
                           options=FAST)
    assert [c.title for c in result.cues] == ["Artist A - First", "Artist B - Second's",
                                              "Artist C - Third"]
    start = stream_server.requests_for("/live.mp3")[0].audio_start
    assert start is not None
    assert result.cues[0].offset_seconds == 0.0
    for cue, at in zip(result.cues[1:], (1.2, 2.4), strict=True):
        # a block follows every 1024 bytes (64 ms at 128 kbit/s) after the change
        assert -0.05 < cue.offset_seconds - (at - start) < 0.2
        assert cue.wall_time.tzinfo is not None
    assert all(p in set(stream_media.mp3_frames) for p in mp3_packets(result.path))


@pytest.mark.slow
def test_drops_reconnect_into_one_valid_file_with_gap_records(
        stream_server: StreamServer, stream_media: StreamMedia, tmp_path: Path) -> None:
    """Two drops (FIN, then RST), each new connection starting mid-frame: one valid file, 2 gaps."""
    stream_server.mount("/live.mp3", start_offset_bytes=150,
                        plans=[Plan(drop_after=1.0), Plan(drop_after=1.0, reset=True)])
    out = tmp_path / "rec.mp3"
    t0 = time.monotonic()
    result = record_stream(stream_server.url("/live.mp3"), out, 4.0, options=FAST)
    assert time.monotonic() - t0 < 4.6
    assert result.stream_copy and result.reconnects == 2
    assert [g.reason for g in result.gaps] == ["dropped", "dropped"]
    assert all(0.0 <= g.length_seconds < 0.6 for g in result.gaps)
    assert result.gaps[0].at_seconds == pytest.approx(1.0, abs=0.2)
    assert result.gaps[1].at_seconds == pytest.approx(2.0, abs=0.35)
    assert result.gaps[0].started_at < result.gaps[1].started_at
    lost = sum(g.length_seconds for g in result.gaps)
    late = stream_server.requests_for("/live.mp3")[0].received - t0
    assert abs(result.duration_seconds + lost - (4.0 - late)) < 0.35
    packets = mp3_packets(out)
    assert sum(map(len, packets)) == out.stat().st_size  # no partial frame anywhere
    assert all(p in set(stream_media.mp3_frames) for p in packets)
    data = out.read_bytes()
    for req in stream_server.requests_for("/live.mp3")[:2]:
        assert req.first_frame is not None and req.last_frame is not None
        assert _sent_run(stream_media, req.first_frame, req.last_frame) in data
    pcm, _ = decode_mp3(out)
    assert len(pcm) > 0


@pytest.mark.slow
def test_stall_is_detected_and_reconnected(stream_server: StreamServer,
                                           tmp_path: Path) -> None:
    """No data for stall_timeout seconds: the capture reconnects and records a 'stalled' gap."""
    stream_server.mount("/live.mp3", plans=[Plan(stall_after=1.0, stall_for=30.0)])
    options = CaptureOptions(bitrate_kbps=128, stall_timeout=1.0, connect_timeout=2.0,
                             policy=LOCAL)
    t0 = time.monotonic()
    result = record_stream(stream_server.url("/live.mp3"), tmp_path / "rec.mp3", 3.5,
                           options=options)
    assert result.reconnects == 1
    assert [g.reason for g in result.gaps] == ["stalled"]
    gap = result.gaps[0]
    assert gap.at_seconds == pytest.approx(1.0, abs=0.2)
    assert 1.0 <= gap.length_seconds < 1.6
    reqs = stream_server.requests_for("/live.mp3")
    assert len(reqs) == 2
    late = reqs[0].received - t0
    assert abs(result.duration_seconds + gap.length_seconds - (3.5 - late)) < 0.35


def test_short_stall_below_timeout_is_tolerated(stream_server: StreamServer,
                                                tmp_path: Path) -> None:
    """A pause shorter than stall_timeout neither reconnects nor records a gap."""
    stream_server.mount("/live.mp3", plans=[Plan(stall_after=0.8, stall_for=0.6)])
    result = record_stream(stream_server.url("/live.mp3"), tmp_path / "rec.mp3", 2.5,
                           options=FAST)
    assert result.reconnects == 0 and result.gaps == []
    assert len(stream_server.requests_for("/live.mp3")) == 1


@pytest.mark.slow
def test_http_503_then_recovery_opens_a_gap_at_zero(stream_server: StreamServer,
                                                    tmp_path: Path) -> None:
    """503 answers at the start back off, then the stream is recorded after a gap at 0 s."""
    stream_server.mount("/live.mp3", refuse_for=1.2)
    result = record_stream(stream_server.url("/live.mp3"), tmp_path / "rec.mp3", 3.5,
                           options=FAST)
    reqs = stream_server.requests_for("/live.mp3")
    statuses = [r.status for r in reqs]
    assert statuses[-1] == 200 and set(statuses[:-1]) == {503}
    assert result.reconnects == len(reqs) - 1 >= 2
    gap = result.gaps[0]
    assert len(result.gaps) == 1 and gap.reason == "http 503" and gap.at_seconds == 0.0
    assert gap.length_seconds == pytest.approx(reqs[-1].station_time - reqs[0].station_time,
                                               abs=0.3)
    assert abs(result.duration_seconds + gap.length_seconds - 3.5) < 0.35


@pytest.mark.slow
def test_aac_stream_is_reencoded_to_mp3_at_the_chosen_bitrate(
        stream_server: StreamServer, tmp_path: Path) -> None:
    """An AAC (ADTS) stream becomes a 96 kbit/s 44.1 kHz stereo MP3 of the same length."""
    stream_server.mount("/live.aac", kind="aac", metaint=2000,
                        titles=[(0, "AAC - One"), (1.5, "AAC - Two")])
    options = CaptureOptions(bitrate_kbps=96, stall_timeout=2.0, policy=LOCAL)
    t0 = time.monotonic()
    result = record_stream(stream_server.url("/live.aac"), tmp_path / "rec.mp3", 3.0,
                           options=options)
    assert not result.stream_copy and result.source_codec == "aac"
    late = stream_server.requests_for("/live.aac")[0].received - t0
    assert abs(result.duration_seconds - (3.0 - late)) < 0.3
    headers = [parse_header(p) for p in mp3_packets(result.path)]
    assert all(h is not None and h.bitrate_kbps == 96 and h.sample_rate == 44100
               and h.channels == 2 for h in headers)
    assert [c.title for c in result.cues] == ["AAC - One", "AAC - Two"]
    assert result.cues[1].offset_seconds == pytest.approx(1.5, abs=0.4)
    pcm, rate = decode_mp3(result.path)
    assert rate == 44100 and float(np.sqrt(np.mean(pcm ** 2))) > 0.01  # music, not silence


@pytest.mark.slow
def test_a_reencoded_recording_does_not_import_numpy(stream_server: StreamServer,
                                                     tmp_path: Path) -> None:
    """The recorder's process does not otherwise import NumPy: a re-encode must not pull
    it (and its BLAS threads) in on its first recording (0.05 to 0.1 s of CPU, against
    about 1.3 s for the whole of a 30 s re-encode)."""
    stream_server.mount("/live.aac", kind="aac")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from taperoom.recorder.capture import CaptureOptions, record_stream\n"
        "from taperoom.recorder.urlpolicy import UrlPolicy\n"
        "assert 'numpy' not in sys.modules\n"
        "r = record_stream(sys.argv[1], Path(sys.argv[2]), 2.0, options=CaptureOptions(\n"
        "    policy=UrlPolicy.from_networks('127.0.0.0/8')))\n"
        "assert not r.stream_copy and r.duration_seconds > 0, r\n"
        "print('numpy' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code, stream_server.url("/live.aac"),
                           str(tmp_path / "rec.mp3")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_hls_master_playlist_best_variant_is_recorded(stream_server: StreamServer,
                                                      tmp_path: Path) -> None:
    """An HLS master playlist: its highest-bandwidth live variant is read and re-encoded."""
    stream_server.mount("/live.m3u8", kind="hls", hls_master=True)
    result = record_stream(stream_server.url("/live.m3u8"), tmp_path / "rec.mp3", 3.0,
                           options=FAST)
    assert result.source_codec == "aac" and not result.stream_copy
    assert 2.6 < result.duration_seconds < 4.4  # at most one segment of burst on join
    paths = [r.path for r in stream_server.requests]
    assert "/live.m3u8.v2.m3u8" in paths
    assert not any(p.endswith((".v1.m3u8", ".v3.m3u8")) for p in paths)
    assert sum(p.endswith(".ts") for p in paths) >= 2
    pcm, rate = decode_mp3(result.path)
    assert rate == 44100 and len(pcm) > 2 * rate


def test_stop_event_ends_early_and_keeps_the_audio(stream_server: StreamServer,
                                                   tmp_path: Path) -> None:
    """Setting `stop` ends a 60 s recording at once; the 1.5 s recorded are kept."""
    stream_server.mount("/live.mp3")
    stop = threading.Event()
    seen: list[CaptureProgress] = []
    t0 = time.monotonic()
    threading.Timer(1.5, stop.set).start()
    result = record_stream(stream_server.url("/live.mp3"), tmp_path / "rec.mp3", 60.0,
                           options=FAST, stop=stop, progress=seen.append)
    assert time.monotonic() - t0 < 2.2
    late = stream_server.requests_for("/live.mp3")[0].received - t0
    assert result.stopped and abs(result.duration_seconds - (1.5 - late)) < 0.3
    assert len(seen) >= 2 and seen[-1].bytes_written == result.bytes_written
    assert any(p.connected for p in seen)
    audio = [p.audio_seconds for p in seen]
    assert audio == sorted(audio) and audio[-1] > 1.0


@pytest.mark.parametrize("case", ["404", "refused"])
def test_nothing_recordable_raises_media_error(stream_server: StreamServer, tmp_path: Path,
                                               case: str) -> None:
    """A mount that answers 404 throughout, or a closed port: MediaError, no file left,
    after three attempts (at once, then after 0.5 s and 1 s, the rest of the 1.5 s:
    simulated time)."""
    stream_server.mount("/gone.mp3", refuse_for=60, refuse_status=404)
    url = (stream_server.url("/gone.mp3") if case == "404"
           else f"http://127.0.0.1:{free_port()}/x.mp3")
    out = tmp_path / "rec.mp3"
    clock = SimulatedClock()
    with pytest.raises(MediaError, match="http 404" if case == "404" else "connect failed"):
        record_stream(url, out, 1.5, options=replace(FAST, clock=clock))
    assert not out.exists()
    assert clock.waits == [0.5, 1.0] and clock.monotonic() == 1.5
    if case == "404":
        assert [r.status for r in stream_server.requests_for("/gone.mp3")] == [404] * 3


def test_invalid_requests_are_refused_before_connecting(tmp_path: Path) -> None:
    """Unknown URL schemes, a zero duration or an impossible bit rate raise InvalidInput."""
    with pytest.raises(InvalidInput):
        record_stream("ftp://example.org/a.mp3", tmp_path / "a.mp3", 5)
    with pytest.raises(InvalidInput):
        record_stream("http://127.0.0.1/a.mp3", tmp_path / "a.mp3", 0)
    with pytest.raises(InvalidInput):
        record_stream("http://127.0.0.1/a.mp3", tmp_path / "a.mp3", 5,
                      options=CaptureOptions(bitrate_kbps=100))


def test_shoutcast_status_line_and_pls_playlist(stream_server: StreamServer,
                                                tmp_path: Path) -> None:
    """A .pls naming a SHOUTcast 1 stream ('ICY 200 OK') is followed and recorded."""
    stream_server.mount("/listen.pls", kind="pls", target="/sc")
    stream_server.mount("/sc", icy_status_line=True, metaint=4096, titles=[(0, "SC - Song")])
    result = record_stream(stream_server.url("/listen.pls"), tmp_path / "rec.mp3", 1.5,
                           options=FAST)
    assert [r.path for r in stream_server.requests][:2] == ["/listen.pls", "/sc"]
    assert result.stream_copy and result.duration_seconds > 1.0
    assert [c.title for c in result.cues] == ["SC - Song"]


def test_probe_stream_url_describes_streams_and_never_raises(
        stream_server: StreamServer) -> None:
    """The URL test names codec, bit rate and station, and reports failures in `message`;
    a URL outside the policy is refused (UrlRefused), not probed."""
    stream_server.mount("/live.mp3", name="Probe FM")
    stream_server.mount("/live.aac", kind="aac")
    stream_server.mount("/busy", refuse_for=60)
    ok = probe_stream_url(stream_server.url("/live.mp3"), timeout=5, policy=LOCAL)
    assert ok["success"] and ok["codec"] == "mp3" and ok["bitrate"] == 128
    assert ok["icy_name"] == "Probe FM" and ok["status_code"] == 200
    assert ok["sample_rate"] == 44100 and "MP3" in ok["message"]
    aac = probe_stream_url(stream_server.url("/live.aac"), timeout=5, policy=LOCAL)
    assert aac["success"] and aac["codec"] == "aac" and aac["sample_rate"] == 48000
    busy = probe_stream_url(stream_server.url("/busy"), timeout=5, policy=LOCAL)
    assert not busy["success"] and busy["status_code"] == 503 and "503" in busy["message"]
    closed = probe_stream_url(f"http://127.0.0.1:{free_port()}/", timeout=2, policy=LOCAL)
    assert not closed["success"] and closed["message"]
    with pytest.raises(UrlRefused, match="scheme 'gopher' is not allowed"):
        probe_stream_url("gopher://x/", timeout=2, policy=LOCAL)


def test_codec_change_across_reconnect_switches_to_encoding(
        stream_server: StreamServer, tmp_path: Path) -> None:
    """MP3 then AAC after a reconnect: one MP3 file, copied then encoded at the copy's format."""
    stream_server.mount("/live", plans=[Plan(drop_after=1.0)])

    def switch() -> None:  # once the first connection streams, well before its drop
        wait_for(lambda: any(r.audio_bytes for r in stream_server.requests_for("/live")), 30,
                 "the first connection to stream", interval=0.01)
        stream_server.mount("/live", kind="aac")

    threading.Thread(target=switch, daemon=True).start()
    t0 = time.monotonic()
    result = record_stream(stream_server.url("/live"), tmp_path / "rec.mp3", 2.5,
                           options=FAST)
    assert result.source_codec == "mp3" and not result.stream_copy
    assert len(result.gaps) == 1
    headers = [parse_header(p) for p in mp3_packets(result.path)]
    assert all(h is not None and h.sample_rate == 44100 for h in headers)
    assert {h.bitrate_kbps for h in headers if h is not None} == {128}
    late = stream_server.requests_for("/live")[0].received - t0
    assert abs(result.duration_seconds + result.gaps[0].length_seconds - (2.5 - late)) < 0.4
    pcm, _ = decode_mp3(result.path)
    assert len(pcm) > 0


def test_icy_scheme_is_read_as_http(stream_server: StreamServer, tmp_path: Path) -> None:
    """An ``icy://host:port/path`` station URL (SHOUTcast style) is recorded over HTTP."""
    stream_server.mount("/sc.mp3", metaint=2048, titles=[(0, "ICY - Song")])
    url = stream_server.url("/sc.mp3").replace("http://", "icy://")
    result = record_stream(url, tmp_path / "rec.mp3", 1.5, options=FAST)
    assert result.stream_copy and result.duration_seconds > 1.0
    assert [c.title for c in result.cues] == ["ICY - Song"]
    assert stream_server.requests_for("/sc.mp3")[0].status == 200
    probe = probe_stream_url(url, timeout=5, policy=LOCAL)
    assert probe["success"] and probe["codec"] == "mp3"


def test_every_scheme_the_api_accepts_is_recordable(tmp_path: Path) -> None:
    """No station URL that the API stores is refused by the capture for its scheme."""
    from taperoom.recorder.schemas import STREAM_SCHEMES

    port = free_port()  # closed: every attempt fails, but not for its scheme
    for scheme in sorted(STREAM_SCHEMES):
        info = probe_stream_url(f"{scheme}://127.0.0.1:{port}/live/x", timeout=2,
                                policy=LOCAL)
        assert not info["success"]
        assert "scheme" not in info["message"], (scheme, info["message"])


@pytest.mark.slow
def test_rtmp_stream_is_recorded_through_ffmpeg(stream_media: StreamMedia,
                                                tmp_path: Path) -> None:
    """An ``rtmp://`` URL goes to FFmpeg's RTMP client (in PyAV), against a real RTMP
    server: the MP3 inside the FLV audio messages is copied frame for frame, and a
    dropped connection is reconnected with its gap recorded."""
    from tests.recorder.rtmpserver import RtmpServer

    source = set(stream_media.mp3_frames)
    with RtmpServer(stream_media.mp3_frames, stream_media.mp3_frame_seconds,
                    drop_after=1.5) as server:
        out = tmp_path / "rtmp.mp3"
        result = record_stream(server.url("live/radio"), out, 4.5, options=FAST)
        plays = list(server.plays)
    assert plays[:2] == ["radio", "radio"]
    assert result.source_codec == "mp3" and result.stream_copy
    assert result.reconnects >= 1 and len(result.gaps) >= 1
    assert 1.2 < result.gaps[0].at_seconds < 1.8
    packets = mp3_packets(out)
    assert packets and all(p in source for p in packets)
    pcm, rate = decode_mp3(out)
    assert rate == 44100 and 2.0 < len(pcm) / rate < 4.6


def test_recording_ends_on_time_when_the_source_outruns_the_encoder(
        stream_server: StreamServer, stream_media: StreamMedia, tmp_path: Path) -> None:
    """A source faster than the encoder (here an AAC file served as fast as the socket
    goes, as on an overloaded machine a live stream outruns a slow encoder) keeps the
    event queue full; the recording still ends at its end time instead of encoding
    whatever keeps arriving."""
    body = b"".join(stream_media.aac_frames) * 30  # ~10 min of audio, sent at once
    stream_server.mount("/fast.aac", kind="bytes", body=body, content_type="audio/aac")
    t0 = time.monotonic()
    result = record_stream(stream_server.url("/fast.aac"), tmp_path / "rec.mp3", 1.0,
                           options=FAST)
    took = time.monotonic() - t0
    assert not result.stream_copy
    # what was encoded is the recording's duration in media time, not what kept arriving
    # (a wall-clock bound here failed on a loaded machine; this one holds on any machine)
    assert result.duration_seconds < 1.1, result  # an MP3 frame and the encoder delay over
    pcm, rate = decode_mp3(tmp_path / "rec.mp3")
    assert len(pcm) / rate < 1.2
    assert took < 60, took  # and it ended, long before 10 min of audio


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (IP SAN) and its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_stream_is_verified_and_recorded(stream_media: StreamMedia, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """An Icecast stream over HTTPS (real TLS on 127.0.0.1) is recorded once its
    certificate is trusted (SSL_CERT_FILE, as httpx reads it); an untrusted one is refused
    with the reason, and nothing is written."""
    import ssl

    from taperoom.recorder import icy

    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    with StreamServer(stream_media, tls=tls) as server:
        server.mount("/secure.mp3", metaint=8192, titles=[(0, "TLS - Song")])
        url = server.url("/secure.mp3")
        assert url.startswith("https://127.0.0.1:")
        try:
            monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the public CAs only
            monkeypatch.delenv("SSL_CERT_DIR", raising=False)
            icy._ssl_context.cache_clear()  # the context is built once per process
            with pytest.raises(MediaError, match="certificate verify failed"):
                record_stream(url, tmp_path / "no.mp3", 1.0, options=FAST)
            assert not (tmp_path / "no.mp3").exists()
            monkeypatch.setenv("SSL_CERT_FILE", str(cert))
            icy._ssl_context.cache_clear()
            result = record_stream(url, tmp_path / "rec.mp3", 1.5, options=FAST)
        finally:
            monkeypatch.undo()
            icy._ssl_context.cache_clear()
    assert result.stream_copy and result.duration_seconds > 1.0
    assert [c.title for c in result.cues] == ["TLS - Song"]


# -- real-time pacing: files served over HTTP, reconnection backoff ---------------------------

#: A real 30 s MP3 file of the corpus (Kevin MacLeod, "Vibe Ace"; VBR, ID3v2 tag first).
VIBE_ACE = ("17 - various (librosa example data) - Kevin MacLeod - Vibe Ace.mp3")


def test_static_mp3_served_over_http_gives_the_recording_duration(
        stream_server: StreamServer, corpus: Path, tmp_path: Path) -> None:
    """A 3 s recording of a 30 s MP3 file served over HTTP (all at once, as any web server
    sends a file) holds about 3 s of audio, counted in media time, over at most two
    connections (the original wrote 2,332 s of audio over 77 reconnections)."""
    body = (corpus / "scanner" / "real_music_tagged" / VIBE_ACE).read_bytes()
    stream_server.mount("/episode.mp3", kind="bytes", body=body, content_type="audio/mpeg")
    out = tmp_path / "rec.mp3"
    result = record_stream(stream_server.url("/episode.mp3"), out, 3.0, options=FAST)
    pcm, rate = decode_mp3(out)
    assert abs(len(pcm) / rate - 3.0) < 0.15, len(pcm) / rate
    assert abs(result.duration_seconds - len(pcm) / rate) < 0.05
    assert result.stream_copy and result.finite_source
    assert len(stream_server.requests_for("/episode.mp3")) <= 2
    source = {bytes(p) for p in mp3_packets(corpus / "scanner" / "real_music_tagged" / VIBE_ACE)}
    assert all(p in source for p in mp3_packets(out))


@pytest.mark.parametrize("codec", ["mp3", "aac"])
def test_file_shorter_than_the_recording_is_recorded_once(
        stream_server: StreamServer, stream_media: StreamMedia, tmp_path: Path,
        codec: str) -> None:
    """A 5 s file served over HTTP, recorded for 12 s: the file is recorded once (not
    reconnected and appended again and again), and the recording ends with it. An MP3
    is copied frame for frame; an AAC file is decoded, and the next connection is known
    to start with the same audio by the samples of its first decoded frame."""
    if codec == "mp3":
        frames, frame_s, mime = (stream_media.mp3_frames[:190],
                                 stream_media.mp3_frame_seconds, "audio/mpeg")
    else:
        frames, frame_s, mime = (stream_media.aac_frames[:235],
                                 stream_media.aac_frame_seconds, "audio/aac")
    path = f"/clip.{codec}"
    stream_server.mount(path, kind="bytes", body=b"".join(frames), content_type=mime)
    out = tmp_path / "rec.mp3"
    result = record_stream(stream_server.url(path), out, 12.0, options=FAST)
    pcm, rate = decode_mp3(out)
    file_seconds = len(frames) * frame_s
    assert abs(len(pcm) / rate - file_seconds) < 0.1, (len(pcm) / rate, file_seconds)
    assert result.stream_copy == (codec == "mp3")
    if codec == "mp3":
        assert mp3_packets(out) == frames
    assert result.finite_source and not result.stopped
    assert len(stream_server.requests_for(path)) <= 2


@pytest.mark.parametrize("seconds", [20.0, 60.0])
def test_a_file_is_recorded_up_to_the_duration_once_recognised(
        stream_server: StreamServer, corpus: Path, tmp_path: Path, seconds: float) -> None:
    """Once its audio runs ``burst_allowance`` (here 5 s) ahead of real time, a 30 s MP3
    file is known to be a file: it is still recorded on, as fast as it comes, up to the
    duration (20 s), or whole when it is shorter (60 s), over one connection, and the
    recording ends with it instead of waiting for its end time."""
    path = corpus / "scanner" / "real_music_tagged" / VIBE_ACE
    stream_server.mount("/episode.mp3", kind="bytes", body=path.read_bytes(),
                        content_type="audio/mpeg")
    options = CaptureOptions(bitrate_kbps=128, stall_timeout=2.0, connect_timeout=2.0,
                             burst_allowance=5.0, policy=LOCAL)
    t0 = time.monotonic()
    result = record_stream(stream_server.url("/episode.mp3"), tmp_path / "rec.mp3", seconds,
                           options=options)
    assert time.monotonic() - t0 < seconds / 2  # it did not wait for the end time
    whole = sum(1152 for _ in mp3_packets(path)) / 44100
    pcm, rate = decode_mp3(result.path)
    assert abs(len(pcm) / rate - min(seconds, whole)) < 0.1, (len(pcm) / rate, whole)
    assert result.finite_source and result.note is not None and "file" in result.note
    assert len(stream_server.requests_for("/episode.mp3")) == 1


@pytest.mark.slow
def test_live_burst_on_connect_is_kept(stream_server: StreamServer, tmp_path: Path) -> None:
    """A live stream that sends 2 s of audio at once on connect (Icecast's burst) is not
    taken for a file: a 3 s recording holds the burst and the 3 s it was connected."""
    # the mount goes on air 2 s before its first listener, who gets those 2 s at once
    stream_server.mount("/live.mp3", burst_seconds=2.0)
    t0 = time.monotonic()
    result = record_stream(stream_server.url("/live.mp3"), tmp_path / "rec.mp3", 3.0,
                           options=FAST)
    req = stream_server.requests_for("/live.mp3")[0]
    assert req.audio_start is not None
    # the burst, then live audio from the connection until the end time
    sent = (req.station_time - req.audio_start) + (t0 + 3.0 - req.received)
    assert abs(result.duration_seconds - sent) < 0.3, (result.duration_seconds, sent)
    assert result.duration_seconds > 4.0
    assert not result.finite_source and result.note is None and result.gaps == []


@pytest.mark.slow
def test_reconnects_back_off_and_reset_after_a_healthy_stretch(
        stream_server: StreamServer, tmp_path: Path) -> None:
    """A live stream that keeps dropping after 0.3 s is retried at once, then after 0.6 s,
    1.2 s, 1.2 s (the cap); a connection that then stays up 1.5 s (healthy) resets the
    backoff, so the next retry is immediate again, then 0.6 s, 1.2 s ... until the end
    time. The connections are real and last as long as in real time (the simulated
    clock runs at the real rate); only the backoff waits pass at once."""
    short = Plan(drop_after=0.3)
    stream_server.mount("/live.mp3", plans=[short, short, short, short,
                                            Plan(drop_after=1.5)], default=short)
    clock = SimulatedClock(rate=1.0)
    options = CaptureOptions(bitrate_kbps=128, stall_timeout=2.0, connect_timeout=2.0,
                             backoff_initial=0.6, backoff_max=1.2, healthy_seconds=1.0,
                             policy=LOCAL, clock=clock)
    # the six waits checked below are over after about 9.6 s when connecting costs nothing
    result = record_stream(stream_server.url("/live.mp3"), tmp_path / "rec.mp3", 12.0,
                           options=options)
    reqs = stream_server.requests_for("/live.mp3")
    # the waits: capped at backoff_max, reset by the 1.5 s connection (the immediate
    # retries wait for nothing); a wait at the end time is cut there
    waits = [round(w, 2) for w in clock.waits]
    assert waits[:6] == [0.6, 1.2, 1.2, 0.6, 1.2, 1.2], waits
    assert all(w == 1.2 for w in waits[6:-1]) and 0 < waits[-1] <= 1.2, waits
    # two immediate retries; the last wait was followed by a connection unless it was cut
    assert len(reqs) - 3 in (len(waits), len(waits) - 1), (len(reqs), waits)
    assert result.reconnects == len(reqs) - 1
    # each gap is its backoff wait (0 s for an immediate retry) plus a real reconnection
    lengths = [g.length_seconds for g in result.gaps]
    expected = [0.0, 0.6, 1.2, 1.2, 0.0, *clock.waits[3:]]
    assert len(lengths) == len(expected)
    assert all(-0.001 <= got - want < 0.5 for got, want in zip(lengths, expected, strict=True)), \
        (lengths, expected)
    assert {g.reason for g in result.gaps} == {"dropped"}
    assert 12.0 <= clock.monotonic() < 12.5  # the recording ended at its (virtual) end time


# -- simulated time: an hour of reconnections against the real server -----------------------


def test_an_hour_of_drops_and_backoff_runs_in_simulated_time(
        stream_server: StreamServer, tmp_path: Path) -> None:
    """A one-hour recording of a live stream that drops every connection after 0.1 s:
    the capture retries at once, then after 1, 2, 4 ... 256 s, then every 300 s (the
    cap), until the end time, where the last wait is cut. Every connection is a real
    one to the test server; the virtual time stands still while it lasts, so each gap is
    exactly its backoff wait, the gaps fill the hour, and the recording ends exactly at
    its simulated end time after a second or two of real time."""
    stream_server.mount("/live.mp3", default=Plan(drop_after=0.1))
    start = datetime(2030, 3, 1, 20, 0, tzinfo=UTC)
    clock = SimulatedClock(start)
    options = CaptureOptions(bitrate_kbps=128, stall_timeout=2.0, connect_timeout=2.0,
                             backoff_initial=1.0, backoff_max=300.0, no_audio_timeout=None,
                             policy=LOCAL, clock=clock)
    t0 = time.monotonic()
    result = record_stream(stream_server.url("/live.mp3"), tmp_path / "rec.mp3", 3600.0,
                           options=options)
    real = time.monotonic() - t0
    doubling = [2.0 ** i for i in range(9)]  # 1 ... 256 s: 511 s
    waits = doubling + [300.0] * 10 + [89.0]  # 511 + 3000 + the last 89 s to the end time
    assert clock.waits == waits
    assert clock.monotonic() == 3600.0 and clock.now() == start + timedelta(hours=1)
    reqs = stream_server.requests_for("/live.mp3")
    assert len(reqs) == 21 and result.reconnects == 20  # no connection after the last wait
    assert [r.ended for r in reqs] == ["dropped"] * 21
    # one gap per drop, as long as the wait that followed it (the immediate first retry:
    # 0 s), each starting where the one before ended: the gaps fill the hour
    assert [g.length_seconds for g in result.gaps] == [0.0, *waits]
    assert {g.reason for g in result.gaps} == {"dropped"}
    lengths = [0.0, *waits]
    assert [g.started_at for g in result.gaps] == [
        start + timedelta(seconds=sum(lengths[:i])) for i in range(len(lengths))]
    # the audio of the 21 connections (about 0.15 s each), joined into one valid file
    pcm, rate = decode_mp3(result.path)
    assert abs(len(pcm) / rate - result.duration_seconds) < 0.05
    assert 21 * 0.08 < result.duration_seconds < 21 * 0.5, result.duration_seconds
    assert [g.at_seconds for g in result.gaps] == sorted(g.at_seconds for g in result.gaps)
    assert result.stream_copy and not result.stopped and result.note is None
    assert real < 15.0, real  # about 2 s of real time for the hour


# -- no audio for too long: the recording ends and frees its slot ----------------------------


@pytest.mark.parametrize("case", ["closed port", "silent server"])
def test_a_url_without_audio_ends_the_recording_after_the_no_audio_timeout(
        stream_server: StreamServer, tmp_path: Path, case: str) -> None:
    """A URL that never gives audio (a closed port; a server that accepts the request and
    never answers, longer than the connect and stall timeouts) ends a 60 s recording
    after ``no_audio_timeout`` (1.5 s) with a MediaError that says so, instead of trying
    until the end time; nothing is left on disk. The clock runs at the real rate (the
    silent server is waited for in real time) and the backoff waits at the closed port
    pass at once, cut at the no-audio timeout."""
    stream_server.mount("/silent", kind="hang")
    url = (f"http://127.0.0.1:{free_port()}/live.mp3" if case == "closed port"
           else stream_server.url("/silent"))
    options = CaptureOptions(bitrate_kbps=128, stall_timeout=10.0, connect_timeout=10.0,
                             backoff_initial=0.5, backoff_max=2.0, no_audio_timeout=1.5,
                             policy=LOCAL, clock=SimulatedClock(rate=1.0))
    out = tmp_path / "rec.mp3"
    t0 = time.monotonic()
    expected = "connect failed" if case == "closed port" else "no answer"
    with pytest.raises(MediaError, match=rf"no audio for 1\.5 s \(.*{expected}"):
        record_stream(url, out, 60.0, options=options)
    assert time.monotonic() - t0 < 30.0  # the end time is 60 s away
    assert 1.5 <= options.clock.monotonic() < 30.0
    assert not out.exists()
    if case == "silent server":
        assert [r.ended for r in stream_server.requests_for("/silent")] == ["hung"]
    else:  # 0.5 s, then the rest of the 1.5 s
        assert sum(options.clock.waits) == pytest.approx(1.5, abs=0.2)


def test_audio_that_stops_for_the_no_audio_timeout_is_kept(stream_server: StreamServer,
                                                           tmp_path: Path) -> None:
    """A stream that gives 1 s of audio, then nothing (within the stall timeout), ends
    after ``no_audio_timeout``: the audio recorded is kept, and the result says why the
    recording ended early."""
    stream_server.mount("/live.mp3", plans=[Plan(stall_after=1.0, stall_for=60.0)])
    options = CaptureOptions(bitrate_kbps=128, stall_timeout=10.0, connect_timeout=2.0,
                             no_audio_timeout=1.5, policy=LOCAL)
    result = record_stream(stream_server.url("/live.mp3"), tmp_path / "rec.mp3", 60.0,
                           options=options)
    late = stream_server.requests_for("/live.mp3")[0].station_time
    assert abs(result.duration_seconds - (1.0 - late)) < 0.3
    assert result.note is not None and result.note.startswith("no audio for 1.5 s")
    assert not result.stopped and not result.finite_source
    assert [g.reason for g in result.gaps] == ["no audio"]
