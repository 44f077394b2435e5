"""The library's analysis on Taperoom's own analysis server (``taperoom analysis serve``),
started for real on 127.0.0.1, in local mode (the server reads the file) and remote
mode (the file is uploaded), on a short real recording of the corpus."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.library import models
from tests.analysis.serverkit import SHORT, server_settings, start_server
from tests.library.analysislib import analysis_events, fresh, scanned_library, track_by_name
from tests.library.externalkit import library
from tests.polling import wait_for

DEADLINE = 180.0


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
def test_taperoom_analysis_server_analyses_for_the_library(
        remote: bool, tmp_path: Path, corpus: Path, live_server: Callable[[Any], Any],
        lib_settings: Callable[..., Any]) -> None:
    """A requested analysis runs on the analysis server (local mode: it reads the file;
    remote mode: the library uploads it, the server being allowed no folder at all); its
    callbacks put tempo, beats, key, waveforms and characteristics on both copies, and a
    WebSocket client sees the job start, progress and complete."""
    music = tmp_path / "music"
    music.mkdir(exist_ok=True)
    shutil.copyfile(corpus / SHORT, music / "snip.ogg")
    (music / "copies").mkdir()
    shutil.copyfile(corpus / SHORT, music / "copies" / "snip copy.ogg")
    overrides = {"allowed_roots": ""} if remote else {}
    server = start_server(live_server, server_settings(tmp_path, corpus, **overrides))
    with library(lib_settings, analysis_server_url=server.url,
                 analysis_server_remote=remote) as (ctx, url):
        scanned_library(ctx, music)
        a, b = track_by_name(ctx, "snip.ogg"), track_by_name(ctx, "copies/snip copy.ogg")
        answers: list[httpx.Response] = []
        body = {"track_id": a.id, "options": {"stems": remote}}  # it has no stem model
        events = asyncio.run(analysis_events(url, a.file_hash, lambda: answers.append(
            httpx.post(f"{url}/api/analysis/request", json=body, timeout=30)),
            deadline=DEADLINE))
        assert answers[0].status_code == 200, answers[0].text

        names = [e["event"] for e in events]
        assert names[0] == "analysis:started" and names[-1] == "analysis:complete", names
        progress = [(e["data"]["stage"], e["data"]["progress"]) for e in events
                    if e["event"] == "analysis:progress"]
        assert progress == ([("basic_features", 33), ("characteristics", 67)] if remote
                            else [("basic_features", 50)])
        complete = events[-1]["data"]
        assert sorted(complete["trackIds"]) == sorted([a.id, b.id])
        assert complete["results"]["date_analyzed"]

        job = httpx.get(f"{url}/api/analysis/jobs/{a.file_hash}", timeout=30).json()["job"]
        assert (job["status"], job["progress_percent"]) == ("completed", 100)
        if remote:  # asked for stems, which this server cannot make: done, and said why
            assert job["stages_completed"] == ["basic_features", "characteristics", "stems"]
            assert job["last_error"].startswith("stems skipped by the analysis server: ")
            assert fresh(ctx, a.id).stems_path is None
        else:
            assert job["stages_completed"] == ["basic_features", "characteristics"]
            assert job["last_error"] is None
        with ctx.db() as s:
            row = s.query(models.AnalysisJob).one()
            assert row.remote_job_id == a.file_hash and row.callback_token
        there = wait_for(lambda: (j := httpx.get(f"{server.url}/jobs/{a.file_hash}",
                                                 timeout=30).json())["callbacks_sent"]
                         == (4 if remote else 3)
                         and j, DEADLINE, "the server's job_completed callback")
        assert there["mode"] == ("remote" if remote else "local")
        assert (there["status"], there["callbacks_failed"]) == ("completed", 0)
        if remote:
            assert there["file_name"] in (Path(a.file_path).name, Path(b.file_path).name)
        else:
            assert there["file_path"] in (a.file_path, b.file_path)

        for track in (fresh(ctx, a.id), fresh(ctx, b.id)):
            assert track.bpm == pytest.approx(140.0, rel=0.04)
            assert track.musical_key is not None and track.mode in (0, 1)
            beats = json.loads(track.beats_data or b"[]")
            assert len(beats) > 20 and track.first_beat_offset is not None
            assert track.loudness is not None and track.date_analyzed is not None
            assert track.valence is None  # no model: never invented
        waves = httpx.get(f"{url}/api/analysis/waveforms/{b.id}", timeout=30).json()
        assert [w["num_pixels"] for w in waves["waveforms"]] == [1000, 4000, 16000]
        assert max(waves["waveforms"][0]["low_freq_amplitude"]) > 0
