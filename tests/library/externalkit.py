"""Helpers of the external analysis server tests: the library on a port known before its
services are built (its callback URL names it), and a stand-in analysis server.

:class:`StandIn` plays the original, unpublished Python analysis server of contract
§3 with the standard library's ``http.server``: it takes ``POST /jobs`` (JSON),
answers ``GET /health``, ``GET``/``DELETE /jobs/{id}`` as the test scripts them,
serves files under ``/files/``, and posts the callbacks a test's script gives
(from a thread, as a server does), recording everything.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from tests.conftest import LiveServer, free_port
from tests.localhttp import Answer, LocalHTTP, Received


class LibraryAt(LiveServer):
    """The library app on a port chosen before its services are built."""

    def __init__(self, app: Any, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)


@contextmanager
def library(lib_settings: Callable[..., Any], **overrides: Any) -> Iterator[tuple[Any, str]]:
    """Build the library's services with `overrides` and serve them on 127.0.0.1;
    yields ``(services, base URL)``, stops and closes them after."""
    from taperoom.library.app import create_app
    from taperoom.library.context import build_services

    port = free_port()
    ctx = build_services(lib_settings(port=port, host="127.0.0.1", **overrides))
    try:
        with LibraryAt(create_app(services=ctx), port) as server:
            yield ctx, server.url
    finally:
        ctx.close()


#: A callback script: (stand-in, the job's body, the job id it gave) -> None.
Script = Callable[["StandIn", dict[str, Any], str], None]


@dataclass
class StandIn:
    """A stand-in analysis server (see the module docstring).

    Attributes
    ----------
    script : callable, optional
        Run in a thread after each accepted job: posts its callbacks.
    view : callable(job_id) -> (status, body bytes), optional
        The answer to ``GET /jobs/{id}`` (default 404).
    submit : callable() -> (status, body bytes), optional
        The answer to ``POST /jobs`` instead of accepting the job.
    files : dict
        Bytes served at ``GET /files/<name>``.
    first : bool
        Run `script` before answering ``POST /jobs`` (a server that calls back
        before its answer arrives).
    port : int
        The port to listen on (default: a free one).
    """

    script: Script | None = None
    view: Callable[[str], tuple[int, bytes]] | None = None
    submit: Callable[[], tuple[int, bytes]] | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    first: bool = False
    port: int = 0
    seen: list[Received] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[httpx.Response] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # a stopped peer is really gone
        self._http = LocalHTTP(self._answer, close=True, port=self.port)
        self.url = self._http.url

    def __enter__(self) -> StandIn:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for thread in list(self._threads):
            thread.join(30)
        self.stop()

    def stop(self) -> None:
        """Stop serving: the stand-in is gone (again at exit, harmlessly)."""
        self._http.stop()

    def _answer(self, got: Received) -> Answer:
        with self._lock:
            self.seen.append(got)
        method, path, body = got.method, got.path, got.body
        kind = "application/json"
        if method == "GET" and path == "/health":
            return 200, b'{"status": "ok", "version": "stand-in"}', kind
        if method == "GET" and path.startswith("/files/"):
            data = self.files.get(path.removeprefix("/files/"))
            if data is None:
                return 404, b'{"error": "not found"}', kind
            return 200, data, "audio/flac"
        if method == "POST" and path == "/jobs":
            if self.submit is not None:
                status, payload = self.submit()
                return status, payload, kind
            job = json.loads(body)
            job_id = f"standin-{uuid.uuid4().hex[:12]}"
            with self._lock:
                self.jobs.append(job)
            if self.script is not None and self.first:
                self.script(self, job, job_id)
            elif self.script is not None:
                thread = threading.Thread(target=self.script, args=(self, job, job_id),
                                          daemon=True)
                self._threads.append(thread)
                thread.start()
            return 202, json.dumps({"job_id": job_id, "status": "queued",
                                    "track_hash": job["track_hash"],
                                    "created_at": "2026-12-07T06:00:00Z",
                                    "callback_url": job.get("callback_url"),
                                    "stem_delivery_mode": job.get("stem_delivery_mode")
                                    }).encode(), kind
        if path.startswith("/jobs/"):
            job_id = path.removeprefix("/jobs/")
            if method == "DELETE":
                return 200, json.dumps({"message": "Job cancelled", "job_id": job_id}
                                       ).encode(), kind
            if self.view is not None:
                status, payload = self.view(job_id)
                return status, payload, kind
        return 404, b'{"error": "Not found"}', kind

    def call_back(self, job: dict[str, Any], job_id: str, stage: str, data: dict[str, Any],
                  status: str = "completed") -> httpx.Response:
        """Post one callback of `job` as a server does (contract §3)."""
        answer = httpx.post(job["callback_url"], json={
            "job_id": job_id, "stage": stage, "status": status,
            "timestamp": "2026-12-07T06:00:00Z", "data": data},
            headers={"X-Mismo-Job-ID": job_id, "X-Mismo-Stage": stage}, timeout=60)
        with self._lock:
            self.callbacks.append(answer)
        return answer

    def requests(self, method: str, prefix: str) -> list[Received]:
        """The requests of `method` whose path starts with `prefix`."""
        with self._lock:
            return [s for s in self.seen if s.method == method and s.path.startswith(prefix)]
