"""Names that clients encode twice (Tone.js 14.8), served on a real server, confined."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taperoom.ephemeral.app import create_app
from taperoom.ephemeral.names import decoded_again
from taperoom.ephemeral.settings import EphemeralSettings
from tests.wavgen import tone, write_wav


def _request(url: str, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Send `path` byte for byte (no client-side normalisation of escapes)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def server(eph_settings: Callable[..., EphemeralSettings],
           live_server: Callable[[Any], Any], tmp_path: Path) -> tuple[str, Path]:
    settings = eph_settings(degrade_rate_limit="off")
    audio = settings.audio_dir
    audio.mkdir(parents=True)
    write_wav(audio / "My Song.wav", tone(1.2, 8000, 2), rate=8000)
    write_wav(audio / "a%20b.wav", tone(0.6, 8000, 1), rate=8000)
    write_wav(audio / "a b.wav", tone(1.7, 8000, 1), rate=8000)
    write_wav(tmp_path / "secret.wav", tone(0.5, 8000, 1), rate=8000)  # outside AUDIO_DIR
    return live_server(create_app(settings)).url, audio


def test_decoded_again() -> None:
    """One more percent-decoding, None when nothing changes."""
    assert decoded_again("My%20Song.wav") == "My Song.wav"
    assert decoded_again("My Song.wav") is None
    assert decoded_again("100%.wav") is None
    assert decoded_again("..%2Fx.wav") == "../x.wav"
    assert decoded_again("%FF.wav") == "\udcff.wav"


def test_tone_js_double_encoded_name_is_served(server: tuple[str, Path]) -> None:
    """``/stream/My%2520Song.wav`` (Tone.js's request for ``My Song.wav``) is that file,
    whole and by ranges; its chunks, stats, waveform and plays work the same way."""
    url, audio = server
    data = (audio / "My Song.wav").read_bytes()
    status, body = _request(url, "GET", "/stream/My%2520Song.wav?v=1712345678")
    assert (status, body) == (200, data)
    status, body = _request(url, "GET", "/stream/My%2520Song.wav",
                            headers={"Range": "bytes=0-99"})
    assert (status, body) == (206, data[:100])
    assert _request(url, "HEAD", "/stream/My%2520Song.wav")[0] == 200
    assert _request(url, "GET", "/stream/My%2520Song.wav/chunk/0")[0] == 200
    assert _request(url, "GET", "/waveform/My%2520Song.wav")[0] == 200
    status, body = _request(url, "POST", "/degrade/My%2520Song.wav",
                            body=b'{"segment_index": 1}',
                            headers={"Content-Type": "application/json"})
    assert status == 200 and b'"play_count":1' in body
    status, body = _request(url, "GET", "/stats/My%2520Song.wav")
    assert status == 200 and b'"filename":"My Song.wav"' in body
    assert b'"segment_play_counts":[0,1,0]' in body
    assert _request(url, "GET", "/stream/My%2520Song.wav?degrade=1&start=0.9")[0] == 200


def test_the_once_decoded_name_wins_when_it_exists(server: tuple[str, Path]) -> None:
    """``a%2520b.wav`` is the file named ``a%20b.wav`` when there is one, never ``a b.wav``."""
    url, audio = server
    status, body = _request(url, "GET", "/stream/a%2520b.wav")
    assert (status, body) == (200, (audio / "a%20b.wav").read_bytes())
    status, body = _request(url, "GET", "/stream/a%20b.wav")
    assert (status, body) == (200, (audio / "a b.wav").read_bytes())


@pytest.mark.parametrize("path", [
    "/stream/..%252Fsecret.wav",
    "/stream/%252E%252E%252Fsecret.wav",
    "/stream/..%255Csecret.wav",
    "/stream/My%2520Song.wav%2500.wav",
    "/stream/..%25252Fsecret.wav",
    "/stream/%2Fetc%2Fpasswd",
    "/stats/..%252Fsecret.wav",
    "/waveform/..%252Fsecret.wav",
    "/stream/..%252Fsecret.wav/chunk/0",
])
def test_decoding_again_never_leaves_audio_dir(server: tuple[str, Path], path: str) -> None:
    """A twice-encoded ``../``, ``\\`` or NUL names nothing: 404 (or the router's 404),
    never the file beside AUDIO_DIR."""
    url, _ = server
    status, body = _request(url, "GET", path)
    assert status in (400, 404), (path, status)
    assert b"RIFF" not in body


def test_degrade_with_a_twice_encoded_escape_stays_confined(server: tuple[str, Path]) -> None:
    """POST /degrade/..%252Fsecret.wav is 404 "Track not found" and changes nothing."""
    url, audio = server
    secret = audio.parent / "secret.wav"
    before = secret.read_bytes()
    for _ in range(3):
        status, body = _request(url, "POST", "/degrade/..%252Fsecret.wav",
                                body=b'{"segment_index": 0}',
                                headers={"Content-Type": "application/json"})
        assert (status, body) == (404, b'{"error":"Track not found"}')
    assert secret.read_bytes() == before
