"""The contract §3 client (:mod:`taperoom.analysis.remote`) against Taperoom's own
analysis server started for real, and against a small independent HTTP peer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import pytest

from taperoom.analysis.remote import (
    AnalysisServerClient,
    AnalysisServerError,
    AnalysisServerRefused,
    AnalysisServerUnavailable,
)
from taperoom.errors import InvalidInput
from tests.analysis.httppeer import CallbackReceiver, FakeAnalysisServer, Received
from tests.analysis.serverkit import SHORT, SHORT2, server_settings, start_server
from tests.conftest import free_port


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as peer:
        yield peer


def test_local_and_upload_jobs_on_the_real_server(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
        receiver: CallbackReceiver) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus))
    with AnalysisServerClient(srv.url, timeout_ms=30_000) as client:
        assert client.health()["status"] == "ok"
        job = client.submit(corpus / SHORT, track_hash="h-local",
                            options={"characteristics": False},
                            callback_url=receiver.callback_url)
        assert (job.job_id, job.status, job.stem_delivery_mode) == ("h-local", "queued", "path")
        up = client.upload(corpus / SHORT2, track_hash="h-up",
                           callback_url=receiver.callback_url)
        assert (up.job_id, up.stem_delivery_mode) == ("h-up", "callback")
        receiver.wait_stage("h-local", "job_completed")
        receiver.wait_stage("h-up", "job_completed")
        assert [c["stage"] for c in receiver.accepted("h-local")] == [
            "basic_features", "job_completed"]
        assert [c["stage"] for c in receiver.accepted("h-up")] == [
            "basic_features", "characteristics", "job_completed"]
        view = client.get("h-up")
        assert view is not None and view["status"] == "completed" and view["mode"] == "remote"
        assert client.stats()["jobs_completed"] == 2
        assert client.get("unknown") is None
        assert client.cancel("unknown") is False
        assert client.cancel("h-up") is True  # a finished job is forgotten
        assert client.get("h-up") is None


def test_refusals_and_token(tmp_path: Path, corpus: Path,
                            live_server: Callable[..., Any]) -> None:
    token = "k" * 40
    srv = start_server(live_server, server_settings(tmp_path, corpus, api_token=token))
    with AnalysisServerClient(srv.url) as anonymous, pytest.raises(AnalysisServerRefused) as exc:
        anonymous.stats()
    assert exc.value.status_code == 401 and exc.value.status == 502
    with AnalysisServerClient(srv.url, api_token=token) as client:
        with pytest.raises(AnalysisServerRefused) as refused:
            client.submit("/etc/passwd", track_hash="x")
        assert refused.value.status_code == 403
        assert "ALLOWED_ROOTS" in refused.value.reason
        assert client.stats()["jobs_submitted"] == 0
        with pytest.raises(InvalidInput):  # checked before anything is sent
            client.submit(corpus / SHORT, track_hash="x", callback_url="file:///tmp/x")


def test_unreachable_server() -> None:
    with AnalysisServerClient(f"http://127.0.0.1:{free_port()}") as client, \
            pytest.raises(AnalysisServerUnavailable, match="cannot be reached"):
        client.health()


def test_timeout_is_unavailable() -> None:
    with FakeAnalysisServer(lambda r: (200, {"status": "ok"})) as peer:
        peer.hold.clear()  # the peer holds its answer until the test releases it
        try:
            with AnalysisServerClient(peer.url, timeout_ms=200) as client, \
                    pytest.raises(AnalysisServerUnavailable, match="in time"):
                client.health()
        finally:
            peer.hold.set()


def _multipart(request: Received) -> dict[str, tuple[str | None, bytes, str]]:
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[str(name)] = (part.get_filename(), part.get_payload(decode=True),
                            part.get_content_type())
    return parts


def test_wire_format_seen_by_an_independent_peer(tmp_path: Path, corpus: Path) -> None:
    def script(request: Received) -> tuple[int, dict[str, Any]]:
        if request.path == "/jobs":
            return 200, {"job_id": "h1", "status": "queued", "track_hash": "h1",
                         "created_at": "2026-01-01T00:00:00Z",
                         "callback_url": "http://127.0.0.1:12047/api/analysis/callback",
                         "stem_delivery_mode": "path"}
        if request.path == "/health":
            return 200, {"status": "starting"}
        return 404, {"error": "Job not found"}

    callback = "http://127.0.0.1:12047/api/analysis/callback"
    with FakeAnalysisServer(script) as peer, \
            AnalysisServerClient(peer.url + "/", api_token="s" * 30) as client:
        client.submit("/music/a b.mp3", track_hash="h1", options={"stems": True},
                      callback_url=callback)
        client.upload(corpus / SHORT, track_hash="h1", options={"genre": True},
                      callback_url=callback)
        assert client.get("h/1") is None
        with pytest.raises(AnalysisServerUnavailable, match="not healthy"):
            client.health()
        local, upload, get, health = peer.requests
    assert (local.method, local.path) == ("POST", "/jobs")
    assert local.headers["content-type"] == "application/json"
    assert local.headers["authorization"] == "Bearer " + "s" * 30
    assert local.json() == {
        "file_path": "/music/a b.mp3", "track_hash": "h1", "callback_url": callback,
        "stem_delivery_mode": "path",
        "options": {"basic_features": True, "characteristics": True, "genre": False,
                    "stems": True, "segments": False, "transitions": False}}
    parts = _multipart(upload)
    assert parts["file"][0] == Path(SHORT).name
    assert parts["file"][1] == (corpus / SHORT).read_bytes()
    assert parts["file"][2] == "audio/ogg"
    assert parts["track_hash"][1] == b"h1"
    assert parts["stem_delivery_mode"][1] == b"callback"
    assert parts["callback_url"][1] == callback.encode()
    assert json.loads(parts["options"][1])["genre"] is True
    assert get.path == "/jobs/h%2F1"
    assert health.path == "/health"


def test_answers_off_the_contract_are_errors() -> None:
    with FakeAnalysisServer(lambda r: (200, {"no": "job id"})) as peer, \
            AnalysisServerClient(peer.url) as client, \
            pytest.raises(AnalysisServerError, match="without a job_id"):
        client.submit("/music/a.mp3", track_hash="h2")
    with FakeAnalysisServer(lambda r: (500, {"error": "boom"})) as peer, \
            AnalysisServerClient(peer.url) as client, \
            pytest.raises(AnalysisServerUnavailable, match="boom"):
        client.stats()


def test_client_needs_an_http_url() -> None:
    for bad in ("ftp://host", "127.0.0.1:8000", ""):
        with pytest.raises(ValueError):
            AnalysisServerClient(bad)
