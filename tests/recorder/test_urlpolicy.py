"""The stream URL policy (taperoom.recorder.urlpolicy) against real peers on 127.0.0.1.

Station URLs come from users, but everything after them (playlist entries, redirects,
HLS variants and segments) comes from whichever server answers. These tests serve
hostile answers from a real HTTP server — playlists naming ``file:`` and ``gopher:``
URLs, a redirect to ``file:``, HLS playlists whose segments are local files — and check
that neither the URL test nor a recording ever reads the local file, and that both
answer the same whether the named file exists or not. They also check the
destination-address rule: loopback and private addresses are refused unless
``STREAM_ALLOWED_NETWORKS`` names them, after DNS resolution.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.errors import InvalidInput
from taperoom.recorder.capture import CaptureOptions, probe_stream_url, record_stream
from taperoom.recorder.settings import RecorderSettings
from taperoom.recorder.urlpolicy import UrlPolicy, UrlRefused
from tests.conftest import LiveServer
from tests.polling import wait_for
from tests.recorder.streamserver import StreamMedia, StreamServer

#: Loopback only: what the test peers on 127.0.0.1 need.
LOOPBACK = UrlPolicy.from_networks("127.0.0.0/8,::1/128")
FAST = CaptureOptions(bitrate_kbps=128, stall_timeout=2.0, connect_timeout=2.0,
                      backoff_initial=0.5, backoff_max=2.0, policy=LOOPBACK)


# -- peers --------------------------------------------------------------------------------


@dataclass
class Answer:
    """What the hostile server answers on one path."""

    status: int = 200
    content_type: str = "text/plain"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class HostileServer:
    """A real HTTP/1.1 server on 127.0.0.1 serving fixed answers, recording each request."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.paths: list[str] = []
        self.ranges: list[tuple[str, str]] = []  # (path, Range header) of ranged requests
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                outer.paths.append(self.path)
                answer = outer.answers.get(self.path, Answer(404, body=b"not here"))
                status, body = answer.status, answer.body
                ranged = self.headers.get("Range")
                if ranged and status == 200:  # RFC 9110 section 14.2, one range
                    outer.ranges.append((self.path, ranged))
                    first, _, last = ranged.removeprefix("bytes=").partition("-")
                    end = int(last) + 1 if last else len(body)
                    status, body = 206, body[int(first):end]
                self.send_response(status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Trap:
    """A TCP listener on 127.0.0.1 that counts the connections it gets (the gopher target)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.close()


@pytest.fixture
def trap() -> Iterator[Trap]:
    t = Trap()
    yield t
    t.close()


@pytest.fixture
def secret(stream_media: StreamMedia, tmp_path: Path) -> Path:
    """A real local MP3 (10 s of the corpus recording) that no stream may read."""
    path = tmp_path / "private" / "secret.mp3"
    path.parent.mkdir()
    path.write_bytes(b"".join(stream_media.mp3_frames[:383]))
    return path


def _hostile_answers(case: str, local: str, server: HostileServer, trap: Trap) -> str:
    """Serve the hostile answers of `case` naming the local path `local`; return the
    station URL."""
    file_url = f"file://{local}"
    if case == "pls":
        server.answers["/listen.pls"] = Answer(
            content_type="audio/x-scpls",
            body=f"[playlist]\nNumberOfEntries=1\nFile1={file_url}\nLength1=-1\n".encode())
        return server.url("/listen.pls")
    if case == "m3u":
        server.answers["/listen.m3u"] = Answer(content_type="audio/x-mpegurl",
                                               body=f"#EXTM3U\n{file_url}\n".encode())
        return server.url("/listen.m3u")
    if case == "xspf":
        server.answers["/listen.xspf"] = Answer(
            content_type="application/xspf+xml",
            body=("<?xml version='1.0' encoding='UTF-8'?>\n"
                  "<playlist version='1' xmlns='http://xspf.org/ns/0/'><trackList><track>"
                  f"<location>{file_url}</location></track></trackList></playlist>\n").encode())
        return server.url("/listen.xspf")
    if case == "gopher":
        server.answers["/listen.pls"] = Answer(
            content_type="audio/x-scpls",
            body=(f"[playlist]\nFile1=gopher://127.0.0.1:{trap.port}/1{local}\n").encode())
        return server.url("/listen.pls")
    if case == "redirect":
        server.answers["/live.mp3"] = Answer(302, headers={"Location": file_url})
        return server.url("/live.mp3")
    if case == "hls":
        server.answers["/live.m3u8"] = Answer(
            content_type="application/vnd.apple.mpegurl",
            body=("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n"
                  f"#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\n{file_url}\n").encode())
        return server.url("/live.m3u8")
    if case == "hls-redirect":
        server.answers["/live.m3u8"] = Answer(
            content_type="application/vnd.apple.mpegurl",
            body=(b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n"
                  b"#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\n/seg0.mp3\n"))
        server.answers["/seg0.mp3"] = Answer(302, headers={"Location": file_url})
        return server.url("/live.m3u8")
    raise AssertionError(case)


CASES = ["pls", "m3u", "xspf", "gopher", "redirect", "hls", "hls-redirect"]



@pytest.fixture
def recorder(rec_settings: Callable[..., RecorderSettings],
             live_server: Callable[[Any], LiveServer]) -> Iterator[Callable[..., str]]:
    """Start a recorder API with settings overrides; returns its base URL."""
    from taperoom.recorder.app import create_app
    from taperoom.recorder.context import build_services

    opened: list[Any] = []

    def start(**overrides: Any) -> str:
        services = build_services(rec_settings(**overrides))
        opened.append(services)
        return live_server(create_app(services=services)).url

    yield start
    for services in opened:
        services.close()


def _station(client: httpx.Client, url: str) -> int:
    r = client.post("/api/streams", json={
        "name": "Hostile FM", "stream_url": url, "artist": "A", "album": "B",
        "album_artist": "C"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


# -- local files through playlists, redirects and HLS -------------------------------------


@pytest.mark.parametrize("case", [pytest.param(c, marks=[pytest.mark.slow] if c == "hls-redirect"
                                              else []) for c in CASES])
def test_url_test_never_describes_a_local_file(case: str, recorder: Callable[..., str],
                                               hostile: HostileServer, trap: Trap,
                                               secret: Path) -> None:
    """test-url on a station whose playlist, redirect or HLS segment names a local file
    (or a gopher URL) is refused with a 400 naming the rule, and the answer is the same
    whether the file exists or not."""
    base = recorder()
    answers = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for local in (str(secret), str(secret.with_name("absent.mp3"))):
            url = _hostile_answers(case, local, hostile, trap)
            r = client.post("/api/streams/test-url", json={"stream_url": url})
            answers.append((r.status_code, r.text.replace(local, "<path>")))
    assert answers[0] == answers[1]
    status, text = answers[0]
    assert status == 400, text
    assert "not allowed" in text
    assert "mp3" not in text.replace("<path>", "").lower().replace(".mp3", "")
    assert trap.connections == 0


@pytest.mark.parametrize("case", CASES)
def test_recording_never_records_a_local_file(case: str, recorder: Callable[..., str],
                                              hostile: HostileServer, trap: Trap,
                                              secret: Path, tmp_path: Path) -> None:
    """Recording such a station fails with a clear reason, and nothing of the local file
    (no MP3 at all) lands in RECORDINGS_DIR."""
    base = recorder()
    url = _hostile_answers(case, str(secret), hostile, trap)
    with httpx.Client(base_url=base, timeout=60) as client:
        sid = _station(client, url)
        r = client.post(f"/api/streams/{sid}/record", json={"duration_seconds": 3})
        assert r.status_code == 202, r.text
        session_id = r.json()["id"]

        def finished() -> dict[str, Any] | None:
            s = client.get(f"/api/sessions/{session_id}").json()
            return s if s["status"] in ("completed", "failed") else None

        session = wait_for(finished, 60, "the recording to end")
    assert session["status"] == "failed", session
    assert "not allowed" in (session["error_message"] or ""), session
    recordings = tmp_path / "recordings"
    assert [p for p in recordings.rglob("*") if p.is_file()] == []
    assert trap.connections == 0


def test_hls_segment_naming_a_local_file_is_never_read(hostile: HostileServer,
                                                       secret: Path, tmp_path: Path) -> None:
    """Straight at the capture: an HLS playlist whose segment is a ``file:`` URL raises
    UrlRefused from the URL test and records nothing."""
    url = _hostile_answers("hls", str(secret), hostile, Trap.__new__(Trap))
    with pytest.raises(UrlRefused, match="not allowed"):
        probe_stream_url(url, timeout=5, policy=LOOPBACK)
    out = tmp_path / "rec.mp3"
    with pytest.raises(Exception, match="not allowed"):
        record_stream(url, out, 2.0, options=FAST)
    assert not out.exists()


# -- destination addresses ------------------------------------------------------------------


def test_loopback_station_is_refused_by_default(recorder: Callable[..., str],
                                                stream_server: StreamServer,
                                                tmp_path: Path) -> None:
    """With default settings a station on 127.0.0.1: test-url is a 400 naming the setting,
    and a recording fails with that reason; the stream server never gets a request."""
    stream_server.mount("/live.mp3")
    url = stream_server.url("/live.mp3")
    base = recorder(stream_allowed_networks="")
    with httpx.Client(base_url=base, timeout=60) as client:
        r = client.post("/api/streams/test-url", json={"stream_url": url})
        assert r.status_code == 400, r.text
        message = r.json()["message"]
        assert "127.0.0.1" in message and "loopback" in message
        assert "STREAM_ALLOWED_NETWORKS" in message
        sid = _station(client, url)
        r = client.post(f"/api/streams/{sid}/record", json={"duration_seconds": 2})
        assert r.status_code == 202, r.text
        session_id = r.json()["id"]

        def finished() -> dict[str, Any] | None:
            s = client.get(f"/api/sessions/{session_id}").json()
            return s if s["status"] in ("completed", "failed") else None

        session = wait_for(finished, 60, "the recording to end")
    assert session["status"] == "failed"
    assert "loopback" in session["error_message"], session
    assert stream_server.requests_for("/live.mp3") == []
    assert [p for p in (tmp_path / "recordings").rglob("*") if p.is_file()] == []


def test_allow_listed_network_is_recorded(recorder: Callable[..., str],
                                          stream_server: StreamServer) -> None:
    """STREAM_ALLOWED_NETWORKS=127.0.0.1/32 lets the URL test reach the local stream."""
    stream_server.mount("/live.mp3", name="LAN FM")
    base = recorder(stream_allowed_networks="127.0.0.1/32")
    r = httpx.post(f"{base}/api/streams/test-url",
                   json={"stream_url": stream_server.url("/live.mp3")}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["connection_test"]["success"] is True
    assert r.json()["connection_test"]["icy_name"] == "LAN FM"


def test_names_are_checked_after_dns_resolution(stream_server: StreamServer) -> None:
    """``localhost`` is a name, not an address: it resolves to loopback and is refused by
    default and under an allow-list that does not cover it; the server sees nothing."""
    stream_server.mount("/live.mp3")
    url = stream_server.url("/live.mp3").replace("127.0.0.1", "localhost")
    for policy in (UrlPolicy(), UrlPolicy.from_networks("10.0.0.0/8")):
        with pytest.raises(UrlRefused, match=r"localhost.*loopback"):
            probe_stream_url(url, timeout=5, policy=policy)
    assert stream_server.requests_for("/live.mp3") == []
    ok = probe_stream_url(url, timeout=5, policy=LOOPBACK)
    assert ok["success"] is True


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "10.1.2.3",
                                  "192.168.0.10", "169.254.169.254", "0.0.0.0", "224.0.0.1",
                                  "100.64.0.1", "[fe80::1]", "[fc00::1]", "240.0.0.1"])
def test_non_public_addresses_are_refused_by_default(host: str) -> None:
    """Loopback, private, link-local (cloud metadata), unspecified, multicast, shared and
    reserved addresses are refused before any connection, IPv4-mapped ones included."""
    with pytest.raises(UrlRefused, match="STREAM_ALLOWED_NETWORKS"):
        probe_stream_url(f"http://{host}:8000/live.mp3", timeout=2)


def test_redirect_to_a_private_address_is_refused(hostile: HostileServer,
                                                  stream_server: StreamServer) -> None:
    """A public-looking first hop that redirects into an address outside the allow-list is
    refused at the redirect: the allow-list here covers the hostile server only."""
    stream_server.mount("/live.mp3")
    target = stream_server.url("/live.mp3").replace("127.0.0.1", "127.0.0.2")
    hostile.answers["/go"] = Answer(302, headers={"Location": target})
    policy = UrlPolicy.from_networks("127.0.0.1/32")
    with pytest.raises(UrlRefused, match=r"127\.0\.0\.2"):
        probe_stream_url(hostile.url("/go"), timeout=5, policy=policy)
    assert stream_server.requests_for("/live.mp3") == []


def test_settings_parse_the_allow_list(rec_settings: Callable[..., RecorderSettings]) -> None:
    """STREAM_ALLOWED_NETWORKS takes comma- or space-separated addresses and CIDR blocks;
    a bad entry is a settings error."""
    s = rec_settings(stream_allowed_networks="192.168.1.0/24, 10.0.0.5 fd00::/8")
    assert [str(n) for n in s.stream_allowed_networks] == ["192.168.1.0/24", "10.0.0.5/32",
                                                           "fd00::/8"]
    assert rec_settings(stream_allowed_networks="").stream_allowed_networks == ()
    with pytest.raises(ValueError, match="not-a-network"):
        rec_settings(stream_allowed_networks="10.0.0.0/8,not-a-network")


def test_refused_urls_are_invalid_input() -> None:
    """UrlRefused is an InvalidInput: the API maps it to 400 in one place."""
    assert issubclass(UrlRefused, InvalidInput)
    with pytest.raises(UrlRefused, match="'ftp' is not allowed"):
        UrlPolicy().normalize("ftp://example.org/a.mp3")


# -- what the policy still lets through ---------------------------------------------------


def test_xspf_playlist_is_followed(hostile: HostileServer, stream_server: StreamServer,
                                   tmp_path: Path) -> None:
    """An Icecast-style ``.xspf`` playlist is followed to the stream its track names."""
    stream_server.mount("/live.mp3", name="XSPF FM")
    hostile.answers["/live.mp3.xspf"] = Answer(
        content_type="application/xspf+xml",
        body=("<?xml version='1.0' encoding='UTF-8'?>\n"
              "<playlist version='1' xmlns='http://xspf.org/ns/0/'><trackList><track>"
              f"<location>{stream_server.url('/live.mp3')}</location>"
              "</track></trackList></playlist>\n").encode())
    url = hostile.url("/live.mp3.xspf")
    info = probe_stream_url(url, timeout=5, policy=LOOPBACK)
    assert info["success"] and info["codec"] == "mp3" and info["icy_name"] == "XSPF FM"
    result = record_stream(url, tmp_path / "rec.mp3", 1.5, options=FAST)
    assert result.stream_copy and result.duration_seconds > 1.0


def _aes(data: bytes, key: bytes, iv: bytes) -> bytes:
    """AES-128-CBC with PKCS#7 padding, as an HLS packager encrypts a segment."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padder.update(data) + padder.finalize()) + enc.finalize()


def test_hls_segments_that_cannot_be_fetched_report_the_first_failure_quietly(
        hostile: HostileServer, stream_media: StreamMedia,
        capfd: pytest.CaptureFixture[str]) -> None:
    """Two segments in a row answer 404 before one that plays: the URL test fails
    naming the first 404, and nothing is printed to standard error. Before, the second
    failed open replaced the first pending exception inside PyAV, which printed the
    first's traceback ("PyAV library exception being dropped")."""
    data, seconds = stream_media.hls_segments[0]
    hostile.answers["/s2.ts"] = Answer(content_type="video/mp2t", body=data)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2",
             "#EXT-X-MEDIA-SEQUENCE:0"]
    for name in ("gone0.ts", "gone1.ts", "s2.ts"):
        lines += [f"#EXTINF:{seconds:.3f},", name]
    lines.append("#EXT-X-ENDLIST")
    hostile.answers["/vod.m3u8"] = Answer(content_type="application/vnd.apple.mpegurl",
                                          body=("\n".join(lines) + "\n").encode())
    capfd.readouterr()
    info = probe_stream_url(hostile.url("/vod.m3u8"), timeout=10, policy=LOOPBACK)
    assert not info["success"]
    assert "404" in info["message"], info
    assert "/gone0.ts" in hostile.paths
    assert "being dropped" not in capfd.readouterr().err


def test_aes128_hls_with_byte_ranges_is_decrypted(hostile: HostileServer,
                                                  stream_media: StreamMedia,
                                                  tmp_path: Path) -> None:
    """An AES-128 HLS playlist (RFC 8216 4.3.2.4), two of whose segments are byte ranges
    of one file, goes through the checked opener: the key and the ranges are fetched
    over HTTP and the audio decrypts to the AAC music of the source."""
    import av
    import numpy as np

    key = bytes(range(16))
    segments = stream_media.hls_segments[:4]
    enc = [_aes(data, key, (k).to_bytes(16, "big")) for k, (data, _) in enumerate(segments)]
    hostile.answers["/key.bin"] = Answer(content_type="application/octet-stream", body=key)
    hostile.answers["/s0.ts"] = Answer(content_type="video/mp2t", body=enc[0])
    hostile.answers["/s1.ts"] = Answer(content_type="video/mp2t", body=enc[1])
    hostile.answers["/pack.ts"] = Answer(content_type="video/mp2t", body=enc[2] + enc[3])
    lines = ["#EXTM3U", "#EXT-X-VERSION:4", "#EXT-X-TARGETDURATION:2",
             "#EXT-X-MEDIA-SEQUENCE:0", '#EXT-X-KEY:METHOD=AES-128,URI="key.bin"']
    lines += [f"#EXTINF:{segments[0][1]:.3f},", "s0.ts", f"#EXTINF:{segments[1][1]:.3f},",
              "s1.ts", f"#EXTINF:{segments[2][1]:.3f},", f"#EXT-X-BYTERANGE:{len(enc[2])}@0",
              "pack.ts", f"#EXTINF:{segments[3][1]:.3f},",
              f"#EXT-X-BYTERANGE:{len(enc[3])}@{len(enc[2])}", "pack.ts", "#EXT-X-ENDLIST"]
    hostile.answers["/vod.m3u8"] = Answer(content_type="application/vnd.apple.mpegurl",
                                          body=("\n".join(lines) + "\n").encode())
    url = hostile.url("/vod.m3u8")
    info = probe_stream_url(url, timeout=10, policy=LOOPBACK)
    assert info["success"] and info["codec"] == "aac" and info["sample_rate"] == 48000
    result = record_stream(url, tmp_path / "rec.mp3", 2.5, options=FAST)
    assert not result.stream_copy and result.duration_seconds > 2.0
    assert "/key.bin" in hostile.paths
    assert ("/pack.ts", f"bytes=0-{len(enc[2]) - 1}") in hostile.ranges
    assert ("/pack.ts", f"bytes={len(enc[2])}-{len(enc[2]) + len(enc[3]) - 1}") in hostile.ranges
    with av.open(str(result.path)) as c:
        pcm = np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])
    assert float(np.sqrt(np.mean(pcm ** 2))) > 0.01  # music, not silence or noise bursts
