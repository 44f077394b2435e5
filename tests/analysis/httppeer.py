"""Small real HTTP peers for the analysis-server tests (on :class:`tests.localhttp.LocalHTTP`).

:class:`CallbackReceiver` takes the server's callbacks (and records every attempt);
:class:`FakeAnalysisServer` plays an analysis server for the client's tests, recording
each request and answering what the test scripted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.localhttp import Answer, LocalHTTP, Received

__all__ = ["CallbackReceiver", "FakeAnalysisServer", "Received"]


class _Peer:
    def __init__(self, answer: Callable[[Received], tuple[int, dict[str, Any]]]) -> None:
        self.requests: list[Received] = []
        self._cond = threading.Condition()
        self._answer = answer
        self._http = LocalHTTP(self._serve, sent=self._record)
        self.url = self._http.url

    def _serve(self, got: Received) -> Answer:
        status, payload = self._answer(got)
        return status, json.dumps(payload).encode(), "application/json"

    def _record(self, got: Received) -> None:
        with self._cond:
            self.requests.append(got)
            self._cond.notify_all()

    def __enter__(self) -> _Peer:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 60.0
                 ) -> list[Received]:
        """Wait until `predicate(requests)` holds; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"peer did not see the expected requests in "
                                         f"{timeout} s; got {[r.path for r in self.requests]}"
                                         f" {[self._brief(r) for r in self.requests]}")
                self._cond.wait(left)
            return list(self.requests)

    @staticmethod
    def _brief(r: Received) -> str:
        try:
            body = r.json()
        except ValueError:
            return r.method
        if isinstance(body, dict):
            return f"{body.get('job_id')}:{body.get('stage')}:{body.get('status')}"
        return r.method


class CallbackReceiver(_Peer):
    """Receives callbacks at ``/api/analysis/callback``; ``fail_first[stage]`` attempts
    of a stage are answered 503 before it is accepted."""

    def __init__(self, fail_first: dict[str, int] | None = None) -> None:
        self.fail_first = dict(fail_first or {})
        super().__init__(self._reply)
        self.callback_url = self.url + "/api/analysis/callback"

    def _reply(self, got: Received) -> tuple[int, dict[str, Any]]:
        stage = got.headers.get("x-mismo-stage", "")
        if self.fail_first.get(stage, 0) > 0:
            self.fail_first[stage] -= 1
            return 503, {"error": "busy"}
        return 200, {"message": "Callback acknowledged"}

    def accepted(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """Bodies of the callbacks answered 200 (of one job), in arrival order."""
        with self._cond:
            bodies = [r.json() for r in self.requests if r.answered == 200]
        return [b for b in bodies if job_id is None or b["job_id"] == job_id]

    def wait_stage(self, job_id: str, stage: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait for an accepted callback of `stage` for `job_id`; its body."""
        def seen(requests: list[Received]) -> bool:
            return any(r.answered == 200 and r.json().get("job_id") == job_id
                       and r.json().get("stage") == stage for r in requests)

        self.wait_for(seen, timeout)
        return next(b for b in self.accepted(job_id) if b["stage"] == stage)


class FakeAnalysisServer(_Peer):
    """Answers each request with ``script(request) -> (status, body)``; while
    ``hold`` is clear, requests wait for it (up to 60 s) before being answered."""

    def __init__(self, script: Callable[[Received], tuple[int, dict[str, Any]]]) -> None:
        self.hold = threading.Event()
        self.hold.set()
        self._script = script
        super().__init__(self._reply)

    def _reply(self, got: Received) -> tuple[int, dict[str, Any]]:
        self.hold.wait(60)
        return self._script(got)
