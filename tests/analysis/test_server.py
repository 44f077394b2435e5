"""The analysis server (``taperoom analysis serve``) against contract §3, on real sockets,
with real corpus audio and a real callback receiver."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.analysis.httppeer import CallbackReceiver
from tests.analysis.serverkit import (
    BASIC_KEYS,
    CHARACTERISTICS_KEYS,
    NOT_AUDIO,
    SHORT,
    SHORT2,
    server_settings,
    start_server,
    wait_callbacks,
    wait_job,
)
from tests.polling import wait_for
from tests.wavgen import write_wav


@pytest.fixture
def receiver() -> Any:
    with CallbackReceiver() as peer:
        yield peer


def _post_local(url: str, path: Path | str, job_id: str, callback: str | None,
                **options: bool) -> httpx.Response:
    body: dict[str, Any] = {"file_path": str(path), "track_hash": job_id,
                            "options": options, "stem_delivery_mode": "path"}
    if callback is not None:
        body["callback_url"] = callback
    return httpx.post(f"{url}/jobs", json=body, timeout=30)


def _post_upload(url: str, path: Path, job_id: str, callback: str | None,
                 options: dict[str, bool] | None = None) -> httpx.Response:
    data = {"track_hash": job_id, "options": json.dumps(options or {}),
            "stem_delivery_mode": "callback"}
    if callback is not None:
        data["callback_url"] = callback
    with path.open("rb") as fh:
        return httpx.post(f"{url}/jobs", data=data,
                          files={"file": (path.name, fh, "audio/ogg")}, timeout=60)


def test_local_job_calls_back_every_stage_in_order(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
        receiver: CallbackReceiver) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus))
    answer = _post_local(srv.url, corpus / SHORT, "abc123", receiver.callback_url,
                         genre=True, stems=True)
    assert answer.status_code == 202
    accepted = answer.json()
    assert accepted["job_id"] == "abc123" and accepted["track_hash"] == "abc123"
    assert accepted["status"] == "queued"
    assert accepted["callback_url"] == receiver.callback_url
    assert accepted["stem_delivery_mode"] == "path"
    assert accepted["created_at"]

    receiver.wait_stage("abc123", "job_completed")
    calls = receiver.accepted("abc123")
    assert [(c["stage"], c["status"]) for c in calls] == [
        ("basic_features", "completed"), ("characteristics", "completed"),
        ("genre", "skipped"), ("stems", "skipped"), ("job_completed", "completed")]
    for request in receiver.requests:
        assert request.path == "/api/analysis/callback"
        assert request.headers["x-mismo-job-id"] == "abc123"
        assert request.headers["x-mismo-stage"] == request.json()["stage"]
        assert request.json()["timestamp"]
    basic = calls[0]["data"]
    assert list(basic)[:len(BASIC_KEYS)] == list(BASIC_KEYS)
    assert 60 < basic["tempo"] < 200
    assert basic["num_beats"] == len(basic["beats"]) > 10
    assert all(0 <= t <= 14 for t in basic["beats"])
    assert basic["key"] in range(12) and basic["mode"] in (0, 1)
    assert [w["num_pixels"] for w in basic["waveforms"]] == [1000, 4000, 16000]
    assert len(basic["waveforms"][0]["low_freq_amplitude"]) == 1000
    chars = calls[1]["data"]
    for key in CHARACTERISTICS_KEYS:
        assert key in chars
    assert chars["valence"] is None and chars["arousal"] is None  # no model: not invented
    assert chars["loudness"] < 0
    assert calls[2]["data"]["error"].startswith("not available")
    assert calls[3]["data"]["error"].startswith("not available")
    done = calls[4]["data"]
    assert done["stages_completed"] == ["basic_features", "characteristics"]
    assert set(done["stages_skipped"]) == {"genre", "stems"}

    job = wait_callbacks(srv.url, "abc123", 5)
    assert job["status"] == "completed" and job["progress"] == 100
    assert job["stages"]["stems"]["status"] == "skipped"
    assert job["stages"]["basic_features"] == {"status": "completed"}
    assert job["callbacks_sent"] == 5 and job["callbacks_failed"] == 0
    assert job["file_path"] == str(corpus / SHORT)


def test_options_false_leaves_stage_out_and_quick(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
        receiver: CallbackReceiver) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus))
    assert _post_local(srv.url, corpus / SHORT, "basic-only", receiver.callback_url,
                       characteristics=False).status_code == 202
    receiver.wait_stage("basic-only", "job_completed")
    assert [c["stage"] for c in receiver.accepted("basic-only")] == [
        "basic_features", "job_completed"]


def test_remote_upload_job_and_upload_removed(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
        receiver: CallbackReceiver) -> None:
    settings = server_settings(tmp_path, corpus, allowed_roots="")  # uploads need no roots
    srv = start_server(live_server, settings)
    answer = _post_upload(srv.url, corpus / SHORT2, "up1", receiver.callback_url)
    assert answer.status_code == 202, answer.text
    assert answer.json()["stem_delivery_mode"] == "callback"
    basic = receiver.wait_stage("up1", "basic_features")["data"]
    assert 60 < basic["tempo"] < 200
    receiver.wait_stage("up1", "job_completed")
    job = wait_job(srv.url, "up1", ("completed",))
    assert job["mode"] == "remote" and job["file_name"] == Path(SHORT2).name
    assert job["file_path"] is None
    assert list((tmp_path / "uploads").iterdir()) == []


def test_missing_file_fails_with_job_failed(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
        receiver: CallbackReceiver) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus))
    missing = tmp_path / "music" / "gone.mp3"
    assert _post_local(srv.url, missing, "gone", receiver.callback_url).status_code == 202
    failed = receiver.wait_stage("gone", "job_failed")
    assert failed["status"] == "failed"
    assert "gone.mp3" in failed["data"]["error"]
    assert [c["stage"] for c in receiver.accepted("gone")] == ["job_failed"]
    job = wait_job(srv.url, "gone", ("failed",))
    assert job["error"] == failed["data"]["error"]
    assert job["stages"]["basic_features"]["status"] == "failed"


def test_pipes_and_folders_fail_without_blocking(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
        receiver: CallbackReceiver) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus))
    fifo = tmp_path / "music" / "pipe.wav"
    os.mkfifo(fifo)  # opening it would wait for a writer for ever
    _post_local(srv.url, fifo, "fifo", receiver.callback_url)
    failed = receiver.wait_stage("fifo", "job_failed", timeout=60)
    assert failed["data"]["error"] == "pipe.wav: not a regular file"
    _post_local(srv.url, tmp_path / "music", "dir", receiver.callback_url)
    assert "not a regular file" in receiver.wait_stage("dir", "job_failed")["data"]["error"]


def test_undecodable_upload_fails_with_job_failed(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
        receiver: CallbackReceiver) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus))
    assert _post_upload(srv.url, corpus / NOT_AUDIO, "junk",
                        receiver.callback_url).status_code == 202
    failed = receiver.wait_stage("junk", "job_failed")
    assert failed["data"]["error"].startswith("not_audio.ogg: ")  # its name, not our copy's
    wait_job(srv.url, "junk", ("failed",))
    assert list((tmp_path / "uploads").iterdir()) == []


def test_paths_outside_the_roots_are_refused(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
        receiver: CallbackReceiver) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus))
    secret = tmp_path / "secret.ogg"
    secret.write_bytes((corpus / SHORT).read_bytes())
    link = tmp_path / "music" / "link.ogg"
    os.symlink(secret, link)
    for path in (secret, link, tmp_path / "music" / ".." / "secret.ogg", "/etc/passwd"):
        answer = _post_local(srv.url, path, "out", receiver.callback_url)
        assert answer.status_code == 403, (path, answer.text)
        assert "ALLOWED_ROOTS" in answer.json()["error"]
    answer = _post_local(srv.url, "music/relative.ogg", "rel", receiver.callback_url)
    assert answer.status_code == 400
    assert httpx.get(f"{srv.url}/jobs/out").status_code == 404
    assert receiver.requests == []


def test_local_mode_is_off_without_roots(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any]) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus, allowed_roots=""))
    answer = _post_local(srv.url, corpus / SHORT, "x1", None)
    assert answer.status_code == 403
    assert "ANALYSIS_SERVER_ALLOWED_ROOTS" in answer.json()["error"]


def test_oversize_upload_is_413_and_leaves_nothing(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
        receiver: CallbackReceiver) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus, max_upload_mb=0.1))
    answer = _post_upload(srv.url, corpus / SHORT, "big", receiver.callback_url)  # 223 kB
    assert answer.status_code == 413, answer.text
    assert httpx.get(f"{srv.url}/jobs/big").status_code == 404
    uploads = tmp_path / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


@pytest.mark.parametrize("callback", ["file:///etc/passwd", "ftp://127.0.0.1/x",
                                      "127.0.0.1:12047/api/analysis/callback",
                                      "http:///nohost"])
def test_callback_url_must_be_http(tmp_path: Path, corpus: Path,
                                   live_server: Callable[..., Any], callback: str) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus))
    answer = _post_local(srv.url, corpus / SHORT, "cb", callback)
    assert answer.status_code == 400
    assert "callback_url" in answer.json()["error"]


def test_bad_requests_are_400(tmp_path: Path, corpus: Path,
                              live_server: Callable[..., Any]) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus))
    path = str(corpus / SHORT)
    cases: list[Any] = [
        {"file_path": path},  # no track hash
        {"file_path": path, "track_hash": "../etc"},
        {"file_path": path, "track_hash": "h", "options": {"stems": "yes"}},
        {"file_path": path, "track_hash": "h", "stem_delivery_mode": "email"},
        {"file_path": path, "track_hash": "h", "stem_delivery_mode": ["path"]},
        {"file_path": path, "track_hash": ["h"]},
        {"file_path": ["/"], "track_hash": "h"},
        {"file_path": path, "track_hash": "h", "callback_url": {"url": "http://x"}},
        {"file_path": path, "track_hash": "h", "options": ["stems"]},
        ["not", "an", "object"],
    ]
    for body in cases:
        answer = httpx.post(f"{srv.url}/jobs", json=body)
        assert answer.status_code == 400, (body, answer.text)
    assert httpx.post(f"{srv.url}/jobs", content=b"{not json",
                      headers={"Content-Type": "application/json"}).status_code == 400
    assert httpx.post(f"{srv.url}/jobs", content=b"x",
                      headers={"Content-Type": "text/plain"}).status_code == 400
    not_allowed = httpx.put(f"{srv.url}/jobs", json={})
    assert not_allowed.status_code == 405 and not_allowed.headers["allow"] == "POST"
    answer = httpx.post(f"{srv.url}/jobs", data={"track_hash": "nofile"},
                        files={"other": ("a.txt", b"x", "text/plain")})
    assert answer.status_code == 400


def test_callbacks_are_retried_with_backoff(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any]) -> None:
    with CallbackReceiver(fail_first={"basic_features": 2}) as receiver:
        srv = start_server(live_server, server_settings(tmp_path, corpus))
        assert _post_local(srv.url, corpus / SHORT, "retry", receiver.callback_url
                           ).status_code == 202
        receiver.wait_stage("retry", "job_completed")
        attempts = [r.answered for r in receiver.requests
                    if r.headers["x-mismo-stage"] == "basic_features"]
        assert attempts == [503, 503, 200]
        job = wait_callbacks(srv.url, "retry", 3)
        assert job["callbacks_failed"] == 0 and job["callbacks_sent"] == 3


def test_undeliverable_callback_is_recorded(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any]) -> None:
    with CallbackReceiver(fail_first={"basic_features": 100}) as receiver:
        srv = start_server(live_server, server_settings(tmp_path, corpus,
                                                        callback_retries=2))
        _post_local(srv.url, corpus / SHORT, "lost", receiver.callback_url)
        receiver.wait_stage("lost", "job_completed")
        attempts = [r for r in receiver.requests
                    if r.headers["x-mismo-stage"] == "basic_features"]
        assert len(attempts) == 3  # one try and two retries
        job = wait_callbacks(srv.url, "lost", 3)
        assert job["callbacks_failed"] == 1 and job["callbacks_sent"] == 2
        assert job["last_callback_error"] == "basic_features: HTTP 503"


def test_after_a_lost_callback_the_next_ones_are_tried_once(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="taperoom.analysis.server")
    stages = ("basic_features", "characteristics", "job_completed")
    with CallbackReceiver(fail_first=dict.fromkeys(stages, 100)) as receiver:
        srv = start_server(live_server, server_settings(tmp_path, corpus,
                                                        callback_retries=2))
        with_password = receiver.callback_url.replace("http://", "http://dj:s3cret@")
        _post_local(srv.url, corpus / SHORT, "gone", with_password)
        requests = receiver.wait_for(
            lambda rs: any(r.headers["x-mismo-stage"] == "job_completed" for r in rs))
        assert [r.headers["x-mismo-stage"] for r in requests] == [
            "basic_features"] * 3 + ["characteristics", "job_completed"]
        job = wait_callbacks(srv.url, "gone", 3)
        assert job["callbacks_failed"] == 3 and job["callbacks_sent"] == 0
    assert "not delivered" in caplog.text and "dj:***@" in caplog.text
    assert "s3cret" not in caplog.text


def _long_wav(path: Path, minutes: float) -> Path:
    """A long mono track (clicks on a beat over noise), 8 kHz to keep the file small."""
    rate = 8000
    n = int(minutes * 60 * rate)
    rng = np.random.default_rng(7)
    y = 0.05 * rng.standard_normal(n)
    y[:: rate // 2] = 0.9
    write_wav(path, y[:, None], rate=rate)
    return path


def test_delete_cancels_queued_and_running_jobs(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
        receiver: CallbackReceiver) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus, queue_size=1))
    long = _long_wav(tmp_path / "music" / "long.wav", 30)
    assert _post_local(srv.url, long, "long", receiver.callback_url).status_code == 202
    wait_for(lambda: wait_job(srv.url, "long", ("processing",))["progress"], 120,
             "the long job to decode")
    assert _post_upload(srv.url, corpus / SHORT, "waiting",
                        receiver.callback_url).status_code == 202
    # one job waits: the queue (size 1) is full
    full = _post_local(srv.url, corpus / SHORT, "third", receiver.callback_url)
    assert full.status_code == 503
    # the same track hash again is the same job
    again = _post_local(srv.url, corpus / SHORT2, "waiting", receiver.callback_url)
    assert again.status_code == 200 and again.json()["status"] == "queued"

    answer = httpx.delete(f"{srv.url}/jobs/waiting")
    assert answer.status_code == 200
    assert answer.json() == {"message": "Job cancelled successfully", "job_id": "waiting",
                             "status": "cancelled"}
    assert list((tmp_path / "uploads").iterdir()) == []  # its upload is gone
    assert httpx.delete(f"{srv.url}/jobs/long").json()["status"] == "cancelled"
    # the analysis stops at its next block: the worker is free while the job's progress
    # stays where decoding was (an analysis left running would reach the last stages)
    wait_for(lambda: not httpx.get(f"{srv.url}/stats").json()["workers_busy"], 120,
             "the cancelled analysis to stop")
    long_job = httpx.get(f"{srv.url}/jobs/long").json()
    assert long_job["status"] == "cancelled"
    assert long_job["stage"] == "decode" and long_job["progress"] < 80

    # the worker is free again: a new job runs, and the cancelled ones never call back
    assert _post_local(srv.url, corpus / SHORT, "after", receiver.callback_url
                       ).status_code == 202
    receiver.wait_stage("after", "job_completed", timeout=180)
    assert receiver.accepted("long") == [] and receiver.accepted("waiting") == []
    stats = httpx.get(f"{srv.url}/stats").json()
    assert stats["jobs_cancelled"] == 2 and stats["jobs_completed"] == 1
    # a finished job is forgotten by DELETE
    assert httpx.delete(f"{srv.url}/jobs/after").json()["message"] == "Job removed"
    assert httpx.get(f"{srv.url}/jobs/after").status_code == 404


def test_unknown_jobs_are_404(tmp_path: Path, corpus: Path,
                              live_server: Callable[..., Any]) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus))
    assert httpx.get(f"{srv.url}/jobs/nope").status_code == 404
    assert httpx.delete(f"{srv.url}/jobs/nope").status_code == 404
    assert "error" in httpx.get(f"{srv.url}/jobs/nope").json()


def test_health_and_stats(tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
                          receiver: CallbackReceiver) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus, concurrency=2))
    health = httpx.get(f"{srv.url}/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["version"]
    assert body["jobs_queued"] == 0 and body["jobs_processing"] == 0
    _post_local(srv.url, corpus / SHORT, "s1", receiver.callback_url)
    receiver.wait_stage("s1", "job_completed")
    wait_callbacks(srv.url, "s1", 3)
    stats = httpx.get(f"{srv.url}/stats").json()
    assert stats["jobs_submitted"] == 1 and stats["jobs_completed"] == 1
    assert stats["concurrency"] == 2
    assert stats["audio_seconds_analyzed"] == pytest.approx(13.7, abs=0.2)
    assert stats["callbacks_sent"] == 3


def test_api_token_when_set(tmp_path: Path, corpus: Path, live_server: Callable[..., Any],
                            receiver: CallbackReceiver) -> None:
    token = "t" * 32
    srv = start_server(live_server, server_settings(tmp_path, corpus, api_token=token))
    assert httpx.get(f"{srv.url}/health").status_code == 200  # open
    assert _post_local(srv.url, corpus / SHORT, "tok", None).status_code == 401
    assert httpx.get(f"{srv.url}/stats").status_code == 401
    wrong = httpx.get(f"{srv.url}/stats", headers={"Authorization": "Bearer " + "x" * 32})
    assert wrong.status_code == 401
    answer = httpx.post(f"{srv.url}/jobs", headers={"Authorization": f"Bearer {token}"},
                        json={"file_path": str(corpus / SHORT), "track_hash": "tok"})
    assert answer.status_code == 202


def test_foreign_web_pages_and_host_names_are_refused(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any]) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus))
    answer = httpx.post(f"{srv.url}/jobs", headers={"Origin": "https://evil.example"},
                        json={"file_path": str(corpus / SHORT), "track_hash": "csrf"})
    assert answer.status_code == 403
    rebound = httpx.get(f"{srv.url}/health", headers={"Host": "evil.example"})
    assert rebound.status_code == 400
    assert httpx.get(f"{srv.url}/jobs/csrf").status_code == 404


def test_exposed_without_token_does_not_start(tmp_path: Path, corpus: Path) -> None:
    from taperoom.analysis.server.app import create_app
    from taperoom.errors import Misconfigured

    with pytest.raises(Misconfigured, match="ANALYSIS_SERVER_API_TOKEN"):
        create_app(server_settings(tmp_path, corpus, host="0.0.0.0"))


def _raw_upload_head(srv: Any, boundary: str, length: str | None) -> bytes:
    host = srv.url.removeprefix("http://")
    framing = (f"Content-Length: {length}\r\n" if length is not None
               else "Transfer-Encoding: chunked\r\n")
    return (f"POST /jobs HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n{framing}\r\n"
            ).encode()


def _answer_status(sock: socket.socket) -> int:
    sock.settimeout(60)  # the body is never finished: only a refusal answers
    head = b""
    while b"\r\n" not in head:
        data = sock.recv(4096)
        if not data:
            break
        head += data
    return int(head.split(b" ", 2)[1])


def test_upload_over_the_limit_is_refused_while_streaming(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any]) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus, max_upload_mb=0.1))
    boundary = "b0undary"
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(_raw_upload_head(srv, boundary, None))
        chunk = b"\0" * 65536
        body = [part] + [chunk] * 8  # 512 kB, beyond 100 kB + the multipart allowance
        for piece in body:
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        assert _answer_status(sock) == 413  # before the body ended
    uploads = tmp_path / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_declared_length_over_the_limit_is_refused_at_once(
        tmp_path: Path, corpus: Path, live_server: Callable[..., Any]) -> None:
    srv = start_server(live_server, server_settings(tmp_path, corpus, max_upload_mb=0.1))
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(_raw_upload_head(srv, "b", "50000000") + b"--b\r\n")
        assert _answer_status(sock) == 413

