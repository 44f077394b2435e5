"""Schemathesis over each app's OpenAPI document: no request may get a 5xx answer.

Each test starts one app on a real server on 127.0.0.1 over a sandbox of real
files and resources (see :mod:`tests.openapi_fuzz`) and sends it a few hundred
generated requests, the same ones on every run (derandomized). ``make fuzz``
sets ``TAPEROOM_FUZZ=1``: many more, random requests per operation, and every
answer is also checked against the document's response schemas and content
types, which the documents do not fully declare yet (``make test`` leaves that
check out).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.audio import wav
from tests.conftest import LiveServer
from tests.openapi_fuzz import (
    Finding,
    Report,
    Target,
    bare_name,
    copy_into,
    fuzz,
    group,
    inside,
    local_url,
)
from tests.polling import wait_for
from tests.recorder.streamserver import StreamServer, stream_media  # noqa: F401
from tests.wavgen import BEXT, ID3, LIST_INFO, tone, write_wav

#: ``make fuzz``: a long random run with response conformance checks.
FULL = bool(os.environ.get("TAPEROOM_FUZZ"))
#: Examples per operation and generation mode: a few hundred requests per app in
#: ``make test`` (10, 58 and 41 operations), many more in ``make fuzz``.
EXAMPLES = ({"ephemeral": 200, "library": 60, "recorder": 60} if FULL
            else {"ephemeral": 20, "library": 3, "recorder": 4})
TAGGED = ("scanner", "real_music_tagged")


def _check(report: Report, target: Target, minimum: int) -> None:
    """At least `minimum` requests answered, every real id answered 2xx at least once, and
    no failure (in ``make test`` known ones are only listed)."""
    print(f"{target.name}: {report.sent} requests answered, {len(report.findings)} failures")
    assert report.sent >= minimum, report.sent
    assert report.reached == set(target.path_values), set(target.path_values) - report.reached
    _fail_on(report.findings)


def _fail_on(findings: list[Finding]) -> None:
    """Fail with every finding, grouped; in ``make test`` known ones are only listed."""
    failing = group([f for f in findings if FULL or not f.known])
    known = group([f for f in findings if f.known and not FULL])
    report = "\n".join(f"[{n}x] {f}" for n, f in failing)
    if known:
        report += "\nknown, fixed by other items of issue 9:\n" + "\n".join(
            f"[{n}x] {f}" for n, f in known)
    assert not failing, f"{sum(n for n, _ in failing)} failures:\n{report}"


# --------------------------------------------------------------------------- ephemeral


def _real_excerpt(src: Path, dest: Path, seconds: float) -> Path:
    """The first `seconds` of a real WAV recording, as a WAV file of its own."""
    info = wav.read_info(src)
    fd = os.open(src, os.O_RDONLY)
    try:
        y = wav.read_frames(fd, info, 0, int(seconds * info.sample_rate))
    finally:
        os.close(fd)
    return write_wav(dest, y, rate=info.sample_rate)


def _ephemeral_known(finding: Finding) -> str | None:
    return None


@pytest.mark.slow
def test_ephemeral_openapi_fuzz(corpus: Path, tmp_path: Path,
                                live_server: Callable[[Any], LiveServer]) -> None:
    """Ephemeral: real WAV files (a corpus excerpt, 24-bit with extra chunks), no 5xx."""
    from taperoom.ephemeral.app import create_app
    from taperoom.ephemeral.settings import EphemeralSettings

    audio = tmp_path / "audio"
    audio.mkdir()
    real = corpus.joinpath(*TAGGED, "06 - John Garner - Partita No. 1 in B minor: Tempo di "
                           "Borea (BWV1002).wav")
    names = ["John Garner - Tempo di Borea.wav", "tone ünï 24-bit.wav"]
    _real_excerpt(real, audio / names[0], 1.5)
    write_wav(audio / names[1], tone(1.0, 22050, 2), rate=22050, fmt="pcm24", extensible=True,
              before=[LIST_INFO, BEXT], after=[ID3])
    settings = EphemeralSettings(_env_file=None, audio_dir=audio,  # type: ignore[call-arg]
                                 metadata_dir=tmp_path / "metadata", fsync=False,
                                 degrade_rate_limit="off")
    server = live_server(create_app(settings))
    target = Target("ephemeral", server.url,
                    path_values={"filename": [*names, "missing.wav"],
                                 "chunk_index": [0, 1, 2, 10**6]},
                    known=_ephemeral_known)
    _check(fuzz(target, examples=EXAMPLES["ephemeral"], derandomize=not FULL, conformance=FULL),
           target, minimum=150)


# --------------------------------------------------------------------------- library

#: Corpus files copied into the library sandbox (one per container; the MP3 twice).
LIBRARY_FILES = {
    "Muldjord - Armygeddon.mp3": "01 - Muldjord - Armygeddon.mp3",
    "copies/Armygeddon (copy).mp3": "01 - Muldjord - Armygeddon.mp3",
    "Muldjord - Mutilated Mime.ogg": "04 - Muldjord - Mutilated Mime.ogg",
    "Muldjord - Internal Degeneration.m4a": "03 - Muldjord - Internal Degeneration.m4a",
    "odd/mono 22k.wav": "odd/mono_22k.wav",
    "odd/cbr 8k mono.mp3": "odd/cbr_8k_mono.mp3",
}


def _library_sanitizer(sandbox: Path, music: Path) -> Callable[[Any], None]:
    """Keep library folders and file operations inside the sandbox."""

    def sanitize(case: Any) -> None:
        body = case.body if isinstance(case.body, dict) else None
        if body is None:
            return
        path = case.operation.path
        if path.startswith("/api/library/directories") and "path" in body:
            body["path"] = inside(sandbox / "folders", body["path"])
        if path.endswith("/move") and isinstance(body.get("destination_path"), str):
            dest = body["destination_path"]
            body["destination_path"] = (inside(music, dest) if dest.startswith("/")
                                        else dest.replace("..", "_"))
        if path.endswith("/rename") and "new_name" in body:
            body["new_name"] = bare_name(body["new_name"])

    return sanitize


def _library_known(finding: Finding) -> str | None:
    return None


@pytest.mark.slow
def test_library_openapi_fuzz(corpus: Path, tmp_path: Path, lib_ctx: Any,
                              live_server: Callable[[Any], LiveServer]) -> None:
    """Library: a scanned folder of corpus tracks with a duplicate group and hot cues."""
    from taperoom.library.app import create_app

    music = tmp_path / "music"
    for name, src in LIBRARY_FILES.items():
        copy_into(corpus.joinpath(*TAGGED, src), music / name)
    (tmp_path / "folders").mkdir()
    server = live_server(create_app(services=lib_ctx))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post("/api/library/directories", json={"path": str(music), "name": "Music"})
        assert r.status_code == 201, r.text
        did = r.json()["data"]["id"]
        assert http.post(f"/api/scan/library/{did}", json={}).status_code == 202
        wait_for(lambda: not http.get(f"/api/scan/library/{did}/status").json()["data"][
            "scanning"], 60, "the scan to end")
        assert http.post("/api/duplicates/scan").status_code == 200
        tracks = [t["id"] for t in http.get("/api/tracks").json()["data"]]
        groups = [g["id"] for g in http.get("/api/duplicates").json()["data"]]
        assert len(tracks) == len(LIBRARY_FILES) and groups, (tracks, groups)
        r = http.post(f"/api/tracks/{tracks[0]}/hot-cues/1", json={"position": 1.5})
        assert r.status_code in (200, 201), r.text
        keys = [s["key"] for s in http.get("/api/settings").json()["data"]][:3]
    target = Target("library", server.url,
                    path_values={"directory_id": [did], "id": [did], "track_id": tracks[:4],
                                 "group_id": groups, "index": [0, 1, 7],
                                 "key": [*keys, "fuzz.key"]},
                    sanitize=_library_sanitizer(tmp_path, music), known=_library_known)
    _check(fuzz(target, examples=EXAMPLES["library"], derandomize=not FULL, conformance=FULL),
           target, minimum=200)


# --------------------------------------------------------------------------- recorder


def _recorder_sanitizer(local: list[str]) -> Callable[[Any], None]:
    """Station URLs to the local stream server, no uploads, recordings of a few seconds."""

    def station(body: dict[str, Any]) -> None:
        if "stream_url" in body:
            body["stream_url"] = local_url(body["stream_url"], local)
        if body.get("scp_destination"):
            body["scp_destination"] = ""

    def sanitize(case: Any) -> None:
        body = case.body if isinstance(case.body, dict) else None
        if body is None:
            return
        station(body)
        streams = body.get("streams")  # an import document
        for item in streams if isinstance(streams, list) else []:
            if isinstance(item, dict):
                station(item)
        duration = body.get("duration_seconds")
        if isinstance(duration, int | float) and not isinstance(duration, bool):
            body["duration_seconds"] = min(duration, 2.0)

    return sanitize


def _recorder_known(finding: Finding) -> str | None:
    return None


@pytest.fixture
def fuzz_stream_server(stream_media: Any) -> Iterator[StreamServer]:  # noqa: F811
    """The test radio server on 127.0.0.1 with an MP3 station, a playlist and a web page."""
    server = StreamServer(stream_media).start()
    server.mount("/live.mp3", titles=[(0, "Artist - Title")])
    server.mount("/station.pls", kind="pls", target="/live.mp3")
    server.mount("/page.html", kind="bytes", body=b"<html></html>", content_type="text/html")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_recorder_openapi_fuzz(fuzz_stream_server: StreamServer, fuzz_rec_ctx: Any,
                               live_server: Callable[[Any], LiveServer]) -> None:
    """Recorder: a station on the local stream server, a schedule and a recording."""
    from taperoom.recorder.app import create_app

    live = fuzz_stream_server.url("/live.mp3")
    server = live_server(create_app(services=fuzz_rec_ctx))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post("/api/streams", json={"name": "Fuzz FM", "stream_url": live,
                                            "artist": "Fuzz", "album": "Fuzz Sessions",
                                            "album_artist": "Fuzz FM"})
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        r = http.post("/api/schedules", json={"stream_config_id": sid,
                                              "cron_expression": "0 3 * * *",
                                              "duration_minutes": 1, "is_active": False})
        assert r.status_code == 201, r.text
        schedule = r.json()["id"]
        r = http.post(f"/api/streams/{sid}/record", json={"duration_seconds": 1.0})
        assert r.status_code == 202, r.text
        session = r.json()["id"]
        wait_for(lambda: http.get(f"/api/sessions/{session}").json()["status"]
                 in ("completed", "failed"), 60, "the recording to end")
    target = Target("recorder", server.url,
                    path_values={"stream_id": [sid], "schedule_id": [schedule],
                                 "session_id": [session]},
                    sanitize=_recorder_sanitizer([fuzz_stream_server.url(path) for path in (
                        "/live.mp3", "/station.pls", "/page.html", "/missing.mp3")]),
                    known=_recorder_known)
    _check(fuzz(target, examples=EXAMPLES["recorder"], derandomize=not FULL, conformance=FULL),
           target, minimum=200)


@pytest.fixture
def fuzz_rec_ctx(tmp_path: Path) -> Iterator[Any]:
    """The recorder's services over settings in tmp_path (the server starts them); the
    stations may read the local stream server."""
    from taperoom.recorder.context import build_services
    from taperoom.recorder.settings import RecorderSettings

    settings = RecorderSettings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path / "data", recordings_dir=tmp_path / "recordings",
        artwork_dir=tmp_path / "artwork", ssh_config_dir=tmp_path / "config",
        log_dir=tmp_path / "logs", tz="Europe/Berlin", min_free_disk_mb=1.0,
        metrics_interval_seconds=0.5, stream_allowed_networks="127.0.0.0/8,::1/128")
    ctx = build_services(settings)
    try:
        yield ctx
    finally:
        ctx.close()


def test_fuzz_reports_server_errors_with_their_traceback(
        live_server: Callable[[Any], LiveServer]) -> None:
    """The harness itself: a route that fails for one real id is reported as a 5xx finding
    naming the exception and where it was raised, and known failures are told apart."""
    from fastapi import FastAPI

    from taperoom.web.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/items/{item_id}")
    def item(item_id: str) -> dict[str, str]:
        if item_id == "boom":
            raise ZeroDivisionError("the item divides by zero")
        return {"id": item_id}

    server = live_server(app)
    target = Target("demo", server.url, path_values={"item_id": ["boom", "fine"]},
                    known=lambda f: "demo item" if "ZeroDivisionError" in f.detail else None)
    report = fuzz(target, examples=10, derandomize=True)
    assert report.sent == 10 and report.reached == {"item_id"}
    [(count, finding)] = group(report.findings)
    assert count >= 1
    assert (finding.kind, finding.status, finding.method, finding.route, finding.url) == (
        "5xx", 500, "GET", "/items/{item_id}", "/items/boom")
    assert "ZeroDivisionError: the item divides by zero" in finding.detail
    assert "test_fuzz_openapi.py" in finding.detail and finding.known == "demo item"
