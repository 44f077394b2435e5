"""Helpers of the analysis-server tests: the server on a real socket, jobs polled."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from taperoom.analysis.server.app import create_app
from taperoom.analysis.server.settings import AnalysisServerSettings
from tests.polling import wait_for

#: A short real track of the corpus (13.7 s, Ogg Vorbis, 140 BPM).
SHORT = "dev/lmms_Greshz-CoolSnip.ogg"
#: Another short one (15.1 s).
SHORT2 = "dev/lmms_Surrender-Main.ogg"
#: Not audio at all, with an audio extension.
NOT_AUDIO = "scanner/real_music_tagged/odd/not_audio.ogg"
#: Keys of the contract's basic_features payload (§3, docs/plan.md sample).
BASIC_KEYS = ("key", "key_name", "mode", "mode_name", "key_strength", "tempo", "beats",
              "downbeats", "beat_consistency", "num_beats", "num_downbeats",
              "firstBeatOffset", "firstPhraseBeatNo", "audibleStartTime", "audibleEndTime",
              "waveforms")
#: Keys the Node.js client requires in characteristics (analysisCallback.service.js).
CHARACTERISTICS_KEYS = ("danceability", "valence", "arousal", "energy", "loudness",
                        "acousticness", "instrumentalness")


def server_settings(tmp_path: Path, corpus: Path, **overrides: Any) -> AnalysisServerSettings:
    """Settings on tmp_path: roots are the corpus and tmp_path/music, uploads in
    tmp_path/uploads, quick callback retries."""
    (tmp_path / "music").mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "allowed_roots": f"{corpus}:{tmp_path / 'music'}",
        "upload_dir": tmp_path / "uploads",
        "callback_backoff": 0.05,
        "callback_retries": 3,
        "callback_timeout": 10,
        "concurrency": 1,
    }
    values.update(overrides)
    return AnalysisServerSettings(_env_file=None, **values)  # type: ignore[call-arg]


def start_server(live_server: Callable[[Any], Any], settings: AnalysisServerSettings) -> Any:
    """The analysis server with `settings` on 127.0.0.1 (stopped by `live_server`)."""
    return live_server(create_app(settings))


def wait_job(base_url: str, job_id: str, statuses: tuple[str, ...], timeout: float = 120.0,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Poll ``GET /jobs/{id}`` until its status is one of `statuses`; returns the job."""
    def job() -> dict[str, Any] | None:
        answer = httpx.get(f"{base_url}/jobs/{job_id}", headers=headers, timeout=10).json()
        return answer if answer.get("status") in statuses else None

    found: dict[str, Any] = wait_for(job, timeout, f"job {job_id} to be {'/'.join(statuses)}")
    return found


def wait_callbacks(base_url: str, job_id: str, total: int, timeout: float = 60.0
                   ) -> dict[str, Any]:
    """Poll ``GET /jobs/{id}`` until `total` callbacks were sent or lost (the server
    counts one after its receiver answered, so the receiver sees it first)."""
    def job() -> dict[str, Any] | None:
        answer = httpx.get(f"{base_url}/jobs/{job_id}", timeout=10).json()
        done = answer["callbacks_sent"] + answer["callbacks_failed"] >= total
        return answer if done else None

    found: dict[str, Any] = wait_for(job, timeout, f"{total} callbacks of job {job_id}")
    return found
