"""External analysis server mode against a stand-in of the original Python analysis server
(contract §3): jobs sent with a callback secret, stage callbacks stored like local
results, stems converted to WAV and cached, callbacks without their secret refused,
cancel on the server, status and health of the server, stems refused without one."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
import soundfile as sf

from taperoom.library import models
from tests.conftest import LiveServer
from tests.library.analysislib import (
    Timeline,
    copy_file,
    drum_loop,
    fresh,
    scanned_library,
    track_by_name,
)
from tests.library.externalkit import StandIn, library
from tests.polling import wait_for

DEADLINE = 120.0
RATE = 44100


def _tone(freq: float, seconds: float = 1.0) -> np.ndarray:
    """A stereo 16-bit tone, shape (frames, 2)."""
    t = np.arange(int(RATE * seconds)) / RATE
    y = (0.4 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    return np.stack([y, (y // 2).astype(np.int16)], axis=1)


def _encoded(y: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, RATE, format=fmt, subtype="PCM_16")
    return buf.getvalue()


STEM_TONES = {"bass": 55.0, "drums": 110.0, "other": 330.0, "vocals": 660.0}
LEVELS = [{"zoom_level": z, "samples_per_pixel": 352800 // n, "num_pixels": n,
           **{f"{band}_freq_{kind}": [0.5] * n for band in ("low", "mid", "high")
              for kind in ("amplitude", "intensity")}}
          for z, n in enumerate((1000, 4000, 16000))]
BASIC = {"key": 5, "key_name": "F", "mode": 1, "mode_name": "major", "key_strength": 0.757,
         "tempo": 130.43, "beats": [0.04, 0.5, 0.96], "downbeats": [0.04],
         "beat_consistency": 0.975, "num_beats": 3, "num_downbeats": 1, "waveforms": LEVELS}
CHARACTERISTICS = {"danceability": True, "valence": 6.49, "arousal": 6.51, "energy": -6.55,
                   "loudness": -12.01, "acousticness": False, "instrumentalness": False,
                   "processing_time": 2.66}


@pytest.fixture
def music(tmp_path: Path) -> Path:
    """A 120 BPM loop and a copy of it in a sub-folder."""
    folder = tmp_path / "music"
    loop = drum_loop(folder / "loop.wav", 120.0, seconds=4.0)
    copy_file(loop, folder / "copies" / "loop copy.wav")
    return folder


def _tracks(ctx: Any, music: Path) -> tuple[models.Track, models.Track]:
    scanned_library(ctx, music)
    a, b = track_by_name(ctx, "loop.wav"), track_by_name(ctx, "copies/loop copy.wav")
    assert a.file_hash and a.file_hash == b.file_hash
    return a, b


def _row(ctx: Any, file_hash: str) -> models.AnalysisJob:
    with ctx.db() as s:
        row = (s.query(models.AnalysisJob).filter(models.AnalysisJob.job_id == file_hash)
               .order_by(models.AnalysisJob.id.desc()).first())
        assert row is not None
        s.expunge(row)
        return row


def _ended(ctx: Any, file_hash: str) -> models.AnalysisJob | None:
    row = _row(ctx, file_hash)
    return row if row.status in ("completed", "failed", "cancelled") else None


def test_stages_and_stems_of_a_server_land_on_every_copy(
        music: Path, lib_settings: Callable[..., Any]) -> None:
    """A request goes to the server in local mode with a secret callback URL; its
    basic_features, characteristics and stems callbacks (stems as base64 WAV and as
    FLAC downloads from the server) land on both copies, the stems as WAV files in the
    stem cache, with progress per stage and a complete event."""
    flac = {name: _encoded(_tone(freq), "FLAC") for name, freq in STEM_TONES.items()}

    def script(peer: StandIn, job: dict[str, Any], job_id: str) -> None:
        assert peer.call_back(job, job_id, "basic_features", BASIC).status_code == 200
        assert peer.call_back(job, job_id, "characteristics", CHARACTERISTICS
                              ).status_code == 200
        stems = {"bass": base64.b64encode(_encoded(_tone(55.0), "WAV")).decode(),
                 "drums": f"{peer.url}/files/drums.flac",
                 "other": "data:audio/wav;base64,"
                          + base64.b64encode(_encoded(_tone(330.0), "WAV")).decode(),
                 "vocals": f"{peer.url}/files/vocals.flac"}
        answer = peer.call_back(job, job_id, "stems", {
            "delivery_mode": "callback", "stems": stems, "format": "flac",
            "processing_time": 3.1, "model": "htdemucs"})
        assert answer.status_code == 200, answer.text
        peer.call_back(job, job_id, "job_completed", {"stages_completed": [
            "basic_features", "characteristics", "stems"]})

    with StandIn(script=script, files={"drums.flac": flac["drums"],
                                       "vocals.flac": flac["vocals"]}) as peer, \
            library(lib_settings, analysis_server_url=peer.url) as (ctx, url):
        a, b = _tracks(ctx, music)
        events = Timeline(ctx)
        answer = httpx.post(f"{url}/api/analysis/request", json={
            "track_id": a.id, "options": {"stems": True}}, timeout=30)
        assert answer.status_code == 200, answer.text
        row = wait_for(lambda: _ended(ctx, a.file_hash), DEADLINE, "the job to end")
        assert row.status == "completed", row.last_error
        wait_for(lambda: len(peer.callbacks) == 4, DEADLINE, "the last callback")
        row = wait_for(lambda: (r := _row(ctx, a.file_hash)).remote_job_id and r, DEADLINE,
                       "the server's job id to be kept")

        job = peer.jobs[0]
        assert job["file_path"] in (a.file_path, b.file_path)  # either copy
        assert job["track_hash"] == a.file_hash
        assert job["stem_delivery_mode"] == "path"
        assert job["options"] == {"basic_features": True, "characteristics": True,
                                  "genre": False, "stems": True, "segments": False,
                                  "transitions": False}
        callback = urlsplit(job["callback_url"])
        assert f"{callback.scheme}://{callback.netloc}{callback.path}" == (
            f"{url}/api/analysis/callback")
        token = parse_qs(callback.query)["token"][0]
        assert len(token) >= 32 and row.callback_token == token
        assert row.remote_job_id and row.remote_job_id.startswith("standin-")
        assert row.stages_total == 3 and row.stages_completed == [
            "basic_features", "characteristics", "stems"]
        assert [c.status_code for c in peer.callbacks] == [200, 200, 200, 200]

        cache = ctx.settings.data_path / "stem_cache" / a.file_hash
        for track in (fresh(ctx, a.id), fresh(ctx, b.id)):
            assert (track.bpm, track.musical_key, track.mode) == (130.43, 5, 1)
            assert json.loads(track.beats_data or b"") == [0.04, 0.5, 0.96]
            assert (track.danceability, track.acousticness, track.valence) == (1.0, 0.0, 6.49)
            assert track.date_analyzed is not None
            assert track.stems_path == str(cache)
        assert sorted(p.name for p in cache.iterdir()) == [
            "bass.wav", "drums.wav", "other.wav", "vocals.wav"]
        for name, freq in STEM_TONES.items():
            info = sf.info(str(cache / f"{name}.wav"))
            assert (info.format, info.subtype, info.samplerate) == ("WAV", "PCM_16", RATE)
            got, _ = sf.read(str(cache / f"{name}.wav"), dtype="int16")
            assert np.array_equal(got, _tone(freq)), name  # lossless all the way
        assert not [p for p in cache.parent.iterdir() if p.name.startswith(".")]
        waves = httpx.get(f"{url}/api/analysis/waveforms/{b.id}", timeout=30).json()
        assert [w["num_pixels"] for w in waves["waveforms"]] == [1000, 4000, 16000]

        progress = [(d["stage"], d["progress"]) for _, d in
                    events.of("analysis:progress", a.file_hash)]
        assert progress == [("basic_features", 33), ("characteristics", 67)]
        assert len(events.of("analysis:started", a.file_hash)) == 1
        (_, complete), = events.of("analysis:complete", a.file_hash)
        assert complete["results"]["stems_path"] == str(cache)
        # the consumer that waited for the server's callbacks ended as done
        assert ctx.jobs.last_finished("analysis", a.file_hash).state == "done"
        # a late copy of a stage, once the job completed, changes nothing
        late = peer.call_back(job, str(row.remote_job_id), "basic_features",
                              BASIC | {"tempo": 99.0})
        assert late.status_code == 200 and fresh(ctx, a.id).bpm == 130.43


def test_callbacks_without_their_secret_are_refused_and_store_nothing(
        music: Path, lib_settings: Callable[..., Any]) -> None:
    """The callback route answers 403 without the job's token or with another one,
    404 for an unknown job, and stores nothing; with the token it stores. It stays
    open to the server when the library requires sign-in (API_TOKEN), and answers
    the CALLBACK_HOST name beside the usual ones."""
    api_token = "a-long-api-token-of-the-library-0123456789"
    with StandIn() as peer, library(lib_settings, analysis_server_url=peer.url,
                                    api_token=api_token,
                                    callback_host="callback.example") as (ctx, url):
        a, b = _tracks(ctx, music)
        auth = {"Authorization": f"Bearer {api_token}"}
        assert httpx.get(f"{url}/api/analysis/status", timeout=30).status_code == 401
        httpx.post(f"{url}/api/analysis/request", json={"track_id": a.id}, headers=auth,
                   timeout=30).raise_for_status()
        wait_for(lambda: _row(ctx, a.file_hash).remote_job_id, DEADLINE,
                 "the job to reach the server")
        sent = urlsplit(peer.jobs[0]["callback_url"])
        assert (sent.hostname, sent.port) == ("callback.example", int(url.rsplit(":", 1)[1]))
        right = parse_qs(sent.query)["token"][0]
        body = {"job_id": a.file_hash, "stage": "basic_features", "status": "completed",
                "data": BASIC}
        callback = f"{url}/api/analysis/callback"
        other_host = httpx.post(callback, params={"token": right}, json=body, timeout=30,
                                headers={"Host": "evil.example"})
        assert other_host.status_code == 400
        refused = [
            httpx.post(callback, json=body, timeout=30),
            httpx.post(callback, params={"token": ""}, json=body, timeout=30),
            httpx.post(callback, params={"token": right[:-1] + "x"}, json=body, timeout=30),
            httpx.post(callback, params={"token": right[:-1] + "x"}, json=body, timeout=30,
                       headers=auth),
        ]
        for answer in refused:
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"] == "Invalid callback"
        unknown = httpx.post(callback, params={"token": right}, timeout=30,
                             json=body | {"job_id": "0123456789abcdef"})
        assert unknown.status_code == 404 and unknown.json()["error"] == "Job not found"
        track = fresh(ctx, a.id)
        assert track.bpm is None and track.beats_data is None
        with ctx.db() as s:
            assert s.query(models.Waveform).count() == 0
        assert _row(ctx, a.file_hash).stages_completed == []

        ok = httpx.post(callback, params={"token": right}, json=body, timeout=30,
                        headers={"Host": f"callback.example:{sent.port}"})
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"message": "Callback acknowledged", "job_id": a.file_hash,
                             "stage": "basic_features"}
        assert fresh(ctx, b.id).bpm == 130.43
        assert _row(ctx, a.file_hash).progress_percent == 50


def test_cancel_reaches_the_server_and_later_callbacks_are_refused(
        music: Path, lib_settings: Callable[..., Any]) -> None:
    """DELETE /api/analysis/jobs/{id} cancels the job on the server too; a callback the
    server sends after that is refused (409) and stores nothing."""
    with StandIn() as peer, library(lib_settings, analysis_server_url=peer.url) as (ctx, url):
        a, _ = _tracks(ctx, music)
        httpx.post(f"{url}/api/analysis/request", json={"track_id": a.id}, timeout=30)
        wait_for(lambda: _row(ctx, a.file_hash).remote_job_id, DEADLINE,
                 "the job to reach the server")
        remote = _row(ctx, a.file_hash).remote_job_id
        answer = httpx.delete(f"{url}/api/analysis/jobs/{a.file_hash}", timeout=30)
        assert answer.json() == {"message": "Job cancelled successfully",
                                 "job_id": a.file_hash}
        wait_for(lambda: peer.requests("DELETE", f"/jobs/{remote}"), DEADLINE,
                 "the cancel to reach the server")
        assert _row(ctx, a.file_hash).status == "cancelled"
        late = peer.call_back(peer.jobs[0], str(remote), "basic_features", BASIC)
        assert late.status_code == 409, late.text
        assert fresh(ctx, a.id).bpm is None


def test_status_and_health_report_the_server(
        music: Path, lib_settings: Callable[..., Any]) -> None:
    """/api/analysis/status names the server's URL and port and whether its /health
    answers ok; /api/analysis/health is 503 while it cannot be reached."""
    with StandIn() as peer, library(lib_settings, analysis_server_url=peer.url) as (_, url):
        port = int(peer.url.rsplit(":", 1)[1])
        status = httpx.get(f"{url}/api/analysis/status", timeout=30).json()
        assert status == {"url": peer.url, "port": port, "isHealthy": True,
                          "isProcessRunning": True, "isReady": True, "autoStart": True,
                          "pid": None}
        health = httpx.get(f"{url}/api/analysis/health", timeout=30)
        assert health.status_code == 200 and peer.url in health.json()["message"]
        assert peer.requests("GET", "/health")
        peer.stop()
        down = httpx.get(f"{url}/api/analysis/status", timeout=30).json()
        assert (down["isHealthy"], down["isReady"], down["url"]) == (False, False, peer.url)
        health = httpx.get(f"{url}/api/analysis/health", timeout=30)
        assert health.status_code == 503
        assert "cannot be reached" in health.json()["message"]


def test_stems_that_are_not_confined_are_refused(
        music: Path, tmp_path: Path, lib_settings: Callable[..., Any]) -> None:
    """A stem URL on another host, a download over ANALYSIS_STEM_MAX_MB, a path outside
    ANALYSIS_STEM_ROOTS and bytes that are not audio are refused (400, last_error says
    why) and leave no stems; a path inside the roots is converted."""
    stems_dir = tmp_path / "server-stems"
    stems_dir.mkdir()
    (stems_dir / "bass.wav").write_bytes(_encoded(_tone(55.0, seconds=0.1), "WAV"))
    outside = tmp_path / "elsewhere.wav"
    outside.write_bytes(_encoded(_tone(55.0), "WAV"))
    big = _encoded(_tone(110.0, seconds=2.0), "FLAC")
    with StandIn(files={"big.flac": big}) as peer, library(
            lib_settings, analysis_server_url=peer.url, analysis_stem_roots=str(stems_dir),
            analysis_stem_max_mb=len(big) / 2 / 1e6) as (ctx, url):
        a, _ = _tracks(ctx, music)
        httpx.post(f"{url}/api/analysis/request", json={
            "track_id": a.id, "options": {"stems": True}}, timeout=30)
        wait_for(lambda: peer.jobs, DEADLINE, "the job to reach the server")
        job = peer.jobs[0]
        other_host = peer.url.replace("127.0.0.1", "localhost")
        cases = {
            f"{other_host}/files/big.flac": "only taken from the analysis server's host",
            f"{peer.url}/files/big.flac": "larger than",
            str(outside): "outside ANALYSIS_STEM_ROOTS",
            base64.b64encode(b"not audio at all" * 10).decode(): "not audio",
        }
        for source, why in cases.items():
            answer = peer.call_back(job | {"job_id": a.file_hash}, a.file_hash, "stems",
                                    {"stems": {"bass": source}})
            assert answer.status_code == 400, (source, answer.text)
            assert why in answer.json()["message"]
            assert why in (_row(ctx, a.file_hash).last_error or "")
            assert fresh(ctx, a.id).stems_path is None
        assert not (ctx.settings.data_path / "stem_cache" / a.file_hash).exists()
        ok = peer.call_back(job, a.file_hash, "stems",
                            {"stems": {"bass": str(stems_dir / "bass.wav")}})
        assert ok.status_code == 200, ok.text
        got, _ = sf.read(str(Path(fresh(ctx, a.id).stems_path or "") / "bass.wav"),
                         dtype="int16")
        assert np.array_equal(got, _tone(55.0, seconds=0.1))


def test_stems_need_an_external_server(lib_ctx: Any, lib_server: LiveServer,
                                       tmp_path: Path) -> None:
    """Without ANALYSIS_SERVER_URL a request or re-analysis asking for stems is a 400
    that says why, and nothing is queued."""
    drum_loop(tmp_path / "music" / "loop.wav", 120.0, seconds=4.0)
    scanned_library(lib_ctx, tmp_path / "music")
    track = track_by_name(lib_ctx, "loop.wav")
    for route, body in (("request", {"track_id": track.id, "options": {"stems": True}}),
                        ("reanalyze", {"track_ids": [track.id], "options": {"stems": True}})):
        answer = httpx.post(f"{lib_server.url}/api/analysis/{route}", json=body, timeout=30)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "Invalid request"
        assert "ANALYSIS_SERVER_URL" in answer.json()["message"]
    with lib_ctx.db() as s:
        assert s.query(models.AnalysisJob).count() == 0


def test_a_bad_server_url_stops_the_start_with_a_clear_error(
        lib_settings: Callable[..., Any]) -> None:
    """ANALYSIS_SERVER_URL that is not an http(s) URL is a configuration error (exit 78),
    not a traceback, and nothing is left open."""
    from taperoom.errors import Misconfigured
    from taperoom.library.context import build_services

    with pytest.raises(Misconfigured, match=r"ANALYSIS_SERVER_URL: .*http"):
        build_services(lib_settings(analysis_server_url="ftp://analysis.example"))


def test_asking_for_stems_of_an_analysed_track_sends_it_again(
        music: Path, lib_settings: Callable[..., Any]) -> None:
    """A track analysed without stems is sent again when stems are asked for (without
    ``force``); asked again once it has them, its job is answered."""

    def script(peer: StandIn, job: dict[str, Any], job_id: str) -> None:
        peer.call_back(job, job_id, "basic_features", BASIC)
        peer.call_back(job, job_id, "characteristics", CHARACTERISTICS)
        if job["options"]["stems"]:
            peer.call_back(job, job_id, "stems", {"stems": {"bass": base64.b64encode(
                _encoded(_tone(55.0, seconds=0.2), "WAV")).decode()}})

    with StandIn(script=script) as peer, library(lib_settings,
                                                 analysis_server_url=peer.url) as (ctx, url):
        a, _ = _tracks(ctx, music)
        httpx.post(f"{url}/api/analysis/request", json={"track_id": a.id}, timeout=30)
        assert wait_for(lambda: _ended(ctx, a.file_hash), DEADLINE, "the analysis"
                        ).status == "completed"
        wait_for(lambda: ctx.jobs.active("analysis", a.file_hash) is None, DEADLINE,
                 "the consumer to see the job's end")
        stems = {"track_id": a.id, "options": {"stems": True}}
        answer = httpx.post(f"{url}/api/analysis/request", json=stems, timeout=30).json()
        assert answer["job"]["status"] in ("queued", "processing")
        assert wait_for(lambda: _ended(ctx, a.file_hash), DEADLINE, "the stems"
                        ).status == "completed"
        assert [j["options"]["stems"] for j in peer.jobs] == [False, True]
        assert fresh(ctx, a.id).stems_path is not None
        again = httpx.post(f"{url}/api/analysis/request", json=stems, timeout=30).json()
        assert again["job"]["status"] == "completed" and len(peer.jobs) == 2


def test_the_contracts_python_server_url_names_the_server(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """PYTHON_SERVER_URL (contract §0) is read as ANALYSIS_SERVER_URL, which wins when
    both are set."""
    from taperoom.library.settings import LibrarySettings

    monkeypatch.delenv("ANALYSIS_SERVER_URL", raising=False)
    monkeypatch.setenv("PYTHON_SERVER_URL", "http://127.0.0.1:8000")
    assert LibrarySettings(_env_file=None).analysis_server_url == (  # type: ignore[call-arg]
        "http://127.0.0.1:8000")
    monkeypatch.setenv("ANALYSIS_SERVER_URL", "http://analysis.lan:5000")
    assert LibrarySettings(_env_file=None).analysis_server_url == (  # type: ignore[call-arg]
        "http://analysis.lan:5000")


def test_callbacks_before_the_servers_answer_are_taken(
        music: Path, lib_settings: Callable[..., Any]) -> None:
    """A server that names jobs its own way and calls back before answering POST /jobs
    (so the library does not know that id yet): its callbacks are found by their
    token and stored."""

    def script(peer: StandIn, job: dict[str, Any], job_id: str) -> None:
        peer.call_back(job, job_id, "basic_features", BASIC)
        peer.call_back(job, job_id, "characteristics", CHARACTERISTICS)

    with StandIn(script=script, first=True) as peer, library(
            lib_settings, analysis_server_url=peer.url) as (ctx, url):
        a, b = _tracks(ctx, music)
        httpx.post(f"{url}/api/analysis/request", json={"track_id": a.id}, timeout=30)
        row = wait_for(lambda: _ended(ctx, a.file_hash), DEADLINE, "the job to end")
        wait_for(lambda: len(peer.callbacks) == 2, DEADLINE, "the answer to the last callback")
        assert [c.status_code for c in peer.callbacks] == [200, 200]
        assert row.status == "completed" and fresh(ctx, b.id).bpm == 130.43
