"""Schemathesis over the analysis server's OpenAPI document: no request may get a 5xx
answer (see :mod:`tests.openapi_fuzz`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.analysis.httppeer import CallbackReceiver
from tests.analysis.serverkit import SHORT, server_settings, start_server, wait_job
from tests.openapi_fuzz import Target, fuzz, group, inside, local_url

#: ``make fuzz``: many more, random requests with conformance checks.
FULL = bool(os.environ.get("TAPEROOM_FUZZ"))


def test_analysis_server_openapi_fuzz(tmp_path: Path, corpus: Path,
                                      live_server: Callable[..., Any]) -> None:
    """Job requests stay in the sandbox (files under the music root, callbacks to a
    local receiver); a finished job and an unknown id serve the path parameter."""
    with CallbackReceiver() as receiver:
        settings = server_settings(tmp_path, corpus, allowed_roots=str(tmp_path / "music"),
                                   max_upload_mb=1)
        music = tmp_path / "music"
        shutil.copyfile(corpus / SHORT, music / "track.ogg")
        srv = start_server(live_server, settings)
        answer = httpx.post(f"{srv.url}/jobs", json={
            "file_path": str(music / "track.ogg"), "track_hash": "known",
            "callback_url": receiver.callback_url})
        assert answer.status_code == 202
        wait_job(srv.url, "known", ("completed",))

        def sanitize(case: Any) -> None:
            body = case.body if isinstance(case.body, dict) else None
            if body is None:
                return
            if "callback_url" in body:
                body["callback_url"] = local_url(body["callback_url"], [receiver.callback_url])
            if "file_path" in body:
                body["file_path"] = inside(music, body["file_path"])

        target = Target("analysis", srv.url, path_values={"job_id": ["known", "unknown"]},
                        sanitize=sanitize)
        report = fuzz(target, examples=100 if FULL else 15, derandomize=not FULL,
                      conformance=FULL)
    print(f"analysis: {report.sent} requests answered, {len(report.findings)} failures")
    assert report.sent >= 40, report.sent
    failing = group(report.findings)
    assert not failing, "\n".join(f"[{n}x] {f}" for n, f in failing)
