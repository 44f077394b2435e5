"""Stems for the audio engine (``StemsService.request_stems``) against a stand-in analysis
server on 127.0.0.1 that calls back the library's real ``/api/analysis/callback``: a miss
queues a stems-only job and ``stems:ready`` brings absolute WAV paths (FLAC or WAV, by
path, URL or base64), a hit answers at once, a server that is down is a clear error and
the request is made when it is back, a malformed delivery is refused and leaves nothing."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from taperoom.errors import TaperoomError
from taperoom.library import models
from taperoom.library.stems import StemsUnavailable
from tests.conftest import free_port
from tests.library.analysislib import copy_file, fresh, scanned_library, track_by_name
from tests.library.busevents import Events
from tests.library.externalkit import StandIn, library
from tests.library.stemskit import b64, corpus_stems, encoded, stems_script, write_audio
from tests.polling import wait_for

DEADLINE = 120.0
NAMES = ["bass", "drums", "other", "vocals"]
#: Corpus recordings put in the library (three different ones).
TRACKS = ["06 - John Garner - Partita No. 1 in B minor: Tempo di Borea (BWV1002).wav",
          "14 - various (librosa example data) - Hungarian Dance number 5 - Allegro in F "
          "sharp minor (string orchestra).wav",
          "22 - LMMS demo - CapDan-TwilightArea-OriginalByAlf42red.wav"]


@pytest.fixture(scope="module")
def stems(corpus: Path) -> dict[str, np.ndarray]:
    """Four stems made from a corpus recording."""
    return corpus_stems(corpus)


@pytest.fixture
def music(corpus: Path, tmp_path: Path) -> Path:
    """A library folder: three corpus recordings, and a copy of the first."""
    folder = tmp_path / "music"
    for i, name in enumerate(TRACKS):
        copy_file(corpus / "scanner" / "real_music_tagged" / name, folder / f"t{i}.wav")
    copy_file(folder / "t0.wav", folder / "copies" / "t0 copy.wav")
    return folder


def request(ctx: Any, track_id: str) -> dict[str, Path] | None:
    """``await request_stems(track_id)``, as the engine link calls it."""
    got = asyncio.run(ctx.stems.request_stems(track_id))
    return None if got is None else dict(got)


def ready_for(events: Events, track_id: str) -> dict[str, Any]:
    """The ``stems:ready`` payload of `track_id` once it came, else ``{}``."""
    return next((d for d in events.of("stems:ready") if d["trackId"] == track_id), {})


def answered(peer: StandIn, jobs: int) -> None:
    """Wait until the stand-in's callbacks of `jobs` jobs (two each) were answered, so
    that none comes after the library stopped."""
    wait_for(lambda: len(peer.callbacks) >= 2 * jobs, DEADLINE, "the last callbacks")


def assert_stems(paths: dict[str, str] | dict[str, Path], folder: Path,
                 stems: dict[str, np.ndarray]) -> None:
    """The four stems are absolute WAV paths in `folder`, 16-bit PCM at 44.1 kHz, holding
    exactly the stems delivered (FLAC and WAV are lossless)."""
    assert sorted(paths) == NAMES
    for name in NAMES:
        path = Path(paths[name])
        assert path.is_absolute() and path == folder / f"{name}.wav", path
        info = sf.info(str(path))
        assert (info.format, info.subtype, info.samplerate, info.channels) == (
            "WAV", "PCM_16", 44100, 2)
        got, _ = sf.read(str(path), dtype="int16")
        assert np.array_equal(got, stems[name]), name


def no_leftovers(ctx: Any) -> list[str]:
    """Hidden (temporary) folders left in the stem cache."""
    root = ctx.settings.data_path / "stem_cache"
    return [p.name for p in root.iterdir() if p.is_dir() and p.name.startswith(".")] if (
        root.is_dir()) else []


@pytest.mark.parametrize("form", ["url-flac", "path-flac", "path-wav", "base64-wav"])
def test_a_miss_queues_a_stems_job_and_stems_ready_brings_wav_paths(
        form: str, music: Path, stems: dict[str, np.ndarray], tmp_path: Path,
        lib_settings: Callable[..., Any]) -> None:
    """A track without stems: ``request_stems`` answers None and queues a stems-only job
    (local mode, path delivery asked); the server's ``stems`` callback (FLAC downloads,
    FLAC or WAV files by path, base64 WAV) is converted to WAV in the cache and
    ``stems:ready`` gives their absolute paths; then the track, and its copy, get the
    paths at once without another job."""
    kind, fmt = form.split("-")
    server_dir = tmp_path / "server-stems"
    files = {f"{n}.{fmt}": encoded(stems[n], fmt, tmp_path / "enc", n) for n in NAMES}
    for name, data in files.items():
        (server_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (server_dir / name).write_bytes(data)

    def sources(peer: StandIn) -> dict[str, str]:
        if kind == "url":
            return {n: f"{peer.url}/files/{n}.{fmt}" for n in NAMES}
        if kind == "path":
            return {n: str(server_dir / f"{n}.{fmt}") for n in NAMES}
        return {n: b64(files[f"{n}.{fmt}"]) for n in NAMES}

    with StandIn(script=stems_script(sources, fmt=fmt), files=files) as peer, \
            library(lib_settings, analysis_server_url=peer.url,
                    analysis_stem_roots=str(server_dir)) as (ctx, _):
        scanned_library(ctx, music)
        a, copy = track_by_name(ctx, "t0.wav"), track_by_name(ctx, "copies/t0 copy.wav")
        assert a.file_hash == copy.file_hash
        events = Events(ctx)
        assert request(ctx, a.id) is None
        ready = wait_for(lambda: ready_for(events, a.id), DEADLINE, "stems:ready")
        folder = ctx.settings.data_path.absolute() / "stem_cache" / str(a.file_hash)
        assert_stems(ready["stems"], folder, stems)
        assert events.of("stems:failed") == []

        (job,) = peer.jobs
        assert job["track_hash"] == a.file_hash and job["stem_delivery_mode"] == "path"
        assert job["options"] == {"basic_features": False, "characteristics": False,
                                  "genre": False, "stems": True, "segments": False,
                                  "transitions": False}
        assert ctx.analysis.job(str(a.file_hash))["callback_metadata"] == {
            "type": "audio_server_stems", "trackId": a.id}
        assert fresh(ctx, copy.id).stems_path == str(folder)
        # separating the sources analyses nothing: neither copy counts as analysed
        assert fresh(ctx, a.id).date_analyzed is None
        assert fresh(ctx, copy.id).date_analyzed is None

        for track in (a, copy):  # cached: at once, no job
            assert_stems(request(ctx, track.id) or {}, folder, stems)
        assert len(peer.jobs) == 1 and len(events.of("stems:ready")) == 1
        assert no_leftovers(ctx) == []
        answered(peer, 1)


def test_several_requests_of_one_recording_share_one_job(
        music: Path, stems: dict[str, np.ndarray], tmp_path: Path,
        lib_settings: Callable[..., Any]) -> None:
    """Both copies asked for before the stems came: one job, ``stems:ready`` for each."""
    wav = {n: encoded(stems[n], "wav", tmp_path, n) for n in NAMES}
    gate = threading.Event()

    def sources(peer: StandIn) -> dict[str, str]:
        assert gate.wait(DEADLINE)
        return {n: b64(wav[n]) for n in NAMES}

    with StandIn(script=stems_script(sources, fmt="wav")) as peer, \
            library(lib_settings, analysis_server_url=peer.url) as (ctx, _):
        scanned_library(ctx, music)
        a, copy = track_by_name(ctx, "t0.wav"), track_by_name(ctx, "copies/t0 copy.wav")
        events = Events(ctx)
        assert request(ctx, a.id) is None
        assert request(ctx, copy.id) is None
        gate.set()
        for track_id in (a.id, copy.id):
            wait_for(lambda: ready_for(events, track_id), DEADLINE, "stems:ready")  # noqa: B023
        assert len(peer.jobs) == 1
        answered(peer, 1)


def test_least_recently_used_stems_are_evicted_by_size(
        music: Path, stems: dict[str, np.ndarray], tmp_path: Path,
        lib_settings: Callable[..., Any]) -> None:
    """With room for two sets, a third evicts the least recently used one (not the one
    asked for again meanwhile): its folder goes, its tracks' ``stems_path`` is cleared,
    and asking for it again queues a new job."""
    wav = {n: encoded(stems[n], "wav", tmp_path, n) for n in NAMES}
    one_set = sum(len(wav[n]) for n in NAMES)

    def sources(peer: StandIn) -> dict[str, str]:
        return {n: b64(wav[n]) for n in NAMES}

    with StandIn(script=stems_script(sources, fmt="wav")) as peer, \
            library(lib_settings, analysis_server_url=peer.url,
                    stem_cache_max_bytes=int(one_set * 2.5)) as (ctx, _):
        scanned_library(ctx, music)
        t0, t1, t2 = (track_by_name(ctx, f"t{i}.wav") for i in range(3))
        cache = ctx.settings.data_path.absolute() / "stem_cache"
        events = Events(ctx)

        def made(track: Any) -> dict[str, Any]:
            assert request(ctx, track.id) is None
            return wait_for(lambda: ready_for(events, track.id), DEADLINE, "stems:ready")

        made(t0)
        made(t1)
        assert request(ctx, t0.id) is not None  # t0 used again: t1 is the oldest now
        made(t2)
        assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == sorted(
            [str(t0.file_hash), str(t2.file_hash)])
        assert fresh(ctx, t1.id).stems_path is None
        assert fresh(ctx, t0.id).stems_path == str(cache / str(t0.file_hash))
        assert set(ctx.stems.cache.usage()) == {t0.file_hash, t2.file_hash}
        assert len(peer.jobs) == 3
        events.items.clear()
        made(t1)  # evicted: made again
        assert len(peer.jobs) == 4
        assert_stems(request(ctx, t1.id) or {}, cache / str(t1.file_hash), stems)
        answered(peer, 4)


def test_a_server_that_is_down_is_a_clear_error_and_the_stems_come_when_it_is_back(
        music: Path, stems: dict[str, np.ndarray], tmp_path: Path,
        lib_settings: Callable[..., Any]) -> None:
    """With nothing listening at ANALYSIS_SERVER_URL, ``request_stems`` raises
    StemsUnavailable (a 503 error naming the server, the request kept) and queues
    nothing; once the server listens, the request is made and ``stems:ready`` follows."""
    port = free_port()
    wav = {n: encoded(stems[n], "wav", tmp_path, n) for n in NAMES}
    with library(lib_settings, analysis_server_url=f"http://127.0.0.1:{port}",
                 stems_retry_seconds=0.2) as (ctx, _):
        scanned_library(ctx, music)
        a = track_by_name(ctx, "t0.wav")
        events = Events(ctx)
        with pytest.raises(StemsUnavailable) as refused:
            request(ctx, a.id)
        assert isinstance(refused.value, TaperoomError) and refused.value.status == 503
        assert refused.value.kept is True  # the engine link waits for stems:ready
        assert refused.value.message.startswith(
            f"The analysis server at http://127.0.0.1:{port} cannot be reached")
        with pytest.raises(StemsUnavailable):  # asked again while down: the same answer
            request(ctx, a.id)
        assert ctx.stems.pending() == {a.file_hash: "server"}
        with ctx.db() as s:  # nothing was queued
            assert s.query(models.AnalysisJob).count() == 0
        script = stems_script(lambda peer: {n: b64(wav[n]) for n in NAMES}, fmt="wav")
        with StandIn(script=script, port=port) as peer:
            ready = wait_for(lambda: ready_for(events, a.id), DEADLINE, "stems:ready")
            assert_stems(ready["stems"], ctx.settings.data_path.absolute() / "stem_cache"
                         / str(a.file_hash), stems)
            assert len(peer.jobs) == 1 and len(events.of("stems:ready")) == 1
            answered(peer, 1)
        assert ctx.stems.pending() == {}


def test_a_request_that_waits_too_long_for_the_server_fails_with_stems_failed(
        music: Path, tmp_path: Path, lib_settings: Callable[..., Any]) -> None:
    """A request kept for a server that stays down ends after STEMS_WAIT_SECONDS:
    ``stems:failed`` names the server, nothing is kept or queued, and a new request
    is kept again (the wait starts anew)."""
    port = free_port()
    with library(lib_settings, analysis_server_url=f"http://127.0.0.1:{port}",
                 stems_retry_seconds=0.1, stems_wait_seconds=1.0) as (ctx, _):
        scanned_library(ctx, music)
        a = track_by_name(ctx, "t0.wav")
        events = Events(ctx)
        asked = time.monotonic()
        with pytest.raises(StemsUnavailable):
            request(ctx, a.id)
        assert ctx.stems.pending() == {a.file_hash: "server"}
        failed = wait_for(lambda: [e for e in events.of("stems:failed")
                                   if e["trackId"] == a.id], DEADLINE, "stems:failed")
        assert time.monotonic() - asked >= 1.0
        assert failed[0]["error"] == (f"The analysis server at http://127.0.0.1:{port} "
                                      "could not be reached for 1 s: no stems")
        assert ctx.stems.pending() == {} and events.of("stems:ready") == []
        with ctx.db() as s:
            assert s.query(models.AnalysisJob).count() == 0
        with pytest.raises(StemsUnavailable):
            request(ctx, a.id)
        assert ctx.stems.pending() == {a.file_hash: "server"}


def test_a_job_that_fails_with_its_server_is_made_again_when_the_server_is_back(
        music: Path, stems: dict[str, np.ndarray], tmp_path: Path,
        lib_settings: Callable[..., Any]) -> None:
    """The server takes the stems job, stops listening and fails the job (a crash): the
    server being down, the request waits for it instead of failing; when the server
    listens again the job is queued again and ``stems:ready`` follows."""
    wav = {n: encoded(stems[n], "wav", tmp_path, n) for n in NAMES}
    first = StandIn()
    with first, library(lib_settings, analysis_server_url=first.url,
                        stems_retry_seconds=0.2) as (ctx, _):
        scanned_library(ctx, music)
        a = track_by_name(ctx, "t0.wav")
        events = Events(ctx)
        assert request(ctx, a.id) is None
        remote = wait_for(lambda: ctx.analysis.job(str(a.file_hash)).get("status") ==
                          "processing" and _remote_id(ctx, str(a.file_hash)), DEADLINE,
                          "the job to reach the server")
        first.stop()
        answer = first.call_back(first.jobs[0], remote, "job_failed",
                                 {"error": "the stem model crashed"})
        assert answer.status_code == 200, answer.text
        assert ctx.stems.pending() == {a.file_hash: "server"}
        assert ctx.analysis.job(str(a.file_hash))["status"] == "failed"
        script = stems_script(lambda peer: {n: b64(wav[n]) for n in NAMES}, fmt="wav")
        port = int(first.url.rsplit(":", 1)[1])
        with StandIn(script=script, port=port) as peer:
            ready = wait_for(lambda: ready_for(events, a.id), DEADLINE, "stems:ready")
            assert sorted(ready["stems"]) == NAMES
            assert len(peer.jobs) == 1 and events.of("stems:failed") == []
            answered(peer, 1)


def _remote_id(ctx: Any, file_hash: str) -> str | None:
    """The job id the server gave the newest job of `file_hash`."""
    with ctx.db() as s:
        row = (s.query(models.AnalysisJob).filter(models.AnalysisJob.job_id == file_hash)
               .order_by(models.AnalysisJob.id.desc()).first())
        return row.remote_job_id if row is not None else None


def test_without_a_server_stems_are_unavailable(lib_ctx: Any, music: Path) -> None:
    """Without ANALYSIS_SERVER_URL the answer is StemsUnavailable at once, saying so; an
    unknown track is a NotFound."""
    scanned_library(lib_ctx, music)
    a = track_by_name(lib_ctx, "t0.wav")
    with pytest.raises(StemsUnavailable, match="set ANALYSIS_SERVER_URL") as refused:
        request(lib_ctx, a.id)
    assert refused.value.kept is False  # nothing follows
    assert lib_ctx.stems.pending() == {}
    with pytest.raises(TaperoomError) as unknown:
        request(lib_ctx, "00000000-0000-4000-8000-000000000000")
    assert unknown.value.status == 404


@pytest.mark.parametrize("bad", ["not-an-object", "garbage-base64", "not-audio",
                                 "truncated-second", "outside-roots"])
def test_a_malformed_stems_callback_is_refused_and_leaves_nothing(
        bad: str, music: Path, stems: dict[str, np.ndarray], tmp_path: Path,
        lib_settings: Callable[..., Any]) -> None:
    """A ``stems`` callback that is not an object of stems, holds garbage base64, bytes
    that are not audio, a good stem then a broken one, or a path outside
    ANALYSIS_STEM_ROOTS is answered 400 (never 500), leaves no set and no temporary
    folder in the cache; the server then fails the job and ``stems:failed`` says why."""
    good = b64(encoded(stems["bass"], "wav", tmp_path, "bass"))
    broken = encoded(stems["drums"], "flac", tmp_path, "drums")[:200]
    outside = write_audio(tmp_path / "elsewhere" / "bass.wav", stems["bass"], "wav")
    bodies: dict[str, Any] = {
        "not-an-object": "bass drums", "garbage-base64": {"bass": "@@@ not base64 @@@"},
        "not-audio": {"bass": b64(b"RIFF....WAVEjunk" * 64)},
        "truncated-second": {"bass": good, "drums": b64(broken)},
        "outside-roots": {"bass": str(outside)}}
    answers: list[int] = []

    def script(peer: StandIn, job: dict[str, Any], job_id: str) -> None:
        answer = peer.call_back(job, job_id, "stems", {"delivery_mode": "callback",
                                                       "stems": bodies[bad]})
        answers.append(answer.status_code)
        peer.call_back(job, job_id, "job_failed", {"error": "the stems were refused"})

    with StandIn(script=script) as peer, \
            library(lib_settings, analysis_server_url=peer.url,
                    analysis_stem_roots=str(tmp_path / "server-stems")) as (ctx, _):
        scanned_library(ctx, music)
        a = track_by_name(ctx, "t0.wav")
        events = Events(ctx)
        assert request(ctx, a.id) is None
        failed = wait_for(lambda: events.of("stems:failed"), DEADLINE, "stems:failed")
        assert failed == [{"trackId": a.id,
                           "error": "The stems job failed: the stems were refused"}]
        assert answers == [400]
        job = ctx.analysis.job(str(a.file_hash))
        assert job["status"] == "failed" and job["last_error"]
        assert not (ctx.settings.data_path / "stem_cache" / str(a.file_hash)).exists()
        assert no_leftovers(ctx) == []
        assert fresh(ctx, a.id).stems_path is None
        assert events.of("stems:ready") == [] and ctx.stems.pending() == {}
        assert len(peer.jobs) == 1
        answered(peer, 1)
