"""Client of an analysis server that speaks contract §3 (``ANALYSIS_SERVER_URL``).

What the library uses to hand its analysis to an external server (Taperoom's own
``taperoom analysis serve`` or the original, unpublished one): submit a job in
local mode (JSON naming a path the server can read) or remote mode (the file
uploaded as multipart), read or cancel it, check the server's health and stats.
The results arrive later as callbacks to the ``callback_url`` given with the job.

Every request has the timeout ``PYTHON_REQUEST_TIMEOUT_MS`` (contract §0, default
30 000 ms). Failures are :class:`AnalysisServerError` subclasses, so they reach
the API and the command line through the one error mapping: the server cannot
be reached or does not answer in time → :class:`AnalysisServerUnavailable`
(HTTP 503); it refuses the request → :class:`AnalysisServerRefused` (HTTP 502,
with its status and message); it answers something that is not the contract →
:class:`AnalysisServerError` (HTTP 502).
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from taperoom import __version__
from taperoom.analysis.contract import AnalysisOptions, check_callback_url, check_track_hash
from taperoom.errors import TaperoomError

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "AnalysisServerClient",
    "AnalysisServerError",
    "AnalysisServerRefused",
    "AnalysisServerUnavailable",
    "SubmittedJob",
]

#: ``PYTHON_REQUEST_TIMEOUT_MS`` default (contract §0).
DEFAULT_TIMEOUT_MS = 30_000
#: Longest error message of a server quoted in ours (characters).
_QUOTE_MAX = 300


class AnalysisServerError(TaperoomError):
    """The analysis server answered something that is not the contract (HTTP 502)."""

    status = 502
    exit_code = 1


class AnalysisServerUnavailable(AnalysisServerError):
    """The analysis server cannot be reached, or did not answer in time (HTTP 503)."""

    status = 503


class AnalysisServerRefused(AnalysisServerError):
    """The analysis server refused a request (HTTP 502 to our own clients).

    Attributes
    ----------
    status_code : int
        The server's HTTP status.
    reason : str
        Its error message (``error``, ``message`` or ``detail`` of its JSON body).
    """

    def __init__(self, status_code: int, reason: str, what: str) -> None:
        super().__init__(f"The analysis server refused {what}: HTTP {status_code}"
                         + (f" ({reason})" if reason else ""))
        self.status_code = status_code
        self.reason = reason


@dataclass(frozen=True)
class SubmittedJob:
    """A job the server accepted (its answer to ``POST /jobs``).

    Attributes
    ----------
    job_id : str
        The job id (the track hash).
    status : str
        ``queued``, or the state of a job of that hash already queued or processing.
    track_hash : str
    created_at : str or None
    callback_url : str or None
    stem_delivery_mode : str or None
    raw : dict
        The whole answer.
    """

    job_id: str
    status: str
    track_hash: str
    created_at: str | None
    callback_url: str | None
    stem_delivery_mode: str | None
    raw: dict[str, Any]


def _reason(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text.strip()[:_QUOTE_MAX]
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:_QUOTE_MAX]
    return ""


class AnalysisServerClient:
    """Talks to one analysis server (thread-safe; close it, or use it as a context manager).

    Parameters
    ----------
    base_url : str
        ``ANALYSIS_SERVER_URL`` (``http://127.0.0.1:8000``).
    timeout_ms : int
        ``PYTHON_REQUEST_TIMEOUT_MS``: limit of each request (connect, send, answer).
    api_token : str
        Sent as ``Authorization: Bearer`` when not empty (Taperoom's server with
        ``ANALYSIS_SERVER_API_TOKEN``).
    transport : httpx.BaseTransport, optional
        The HTTP transport (default: httpx's own).

    Raises
    ------
    ValueError
        `base_url` is not an http(s) URL, or `timeout_ms` is not positive.
    """

    def __init__(self, base_url: str, *, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                 api_token: str = "", transport: httpx.BaseTransport | None = None) -> None:
        url = httpx.URL(base_url.strip())
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"the analysis server URL must be http(s)://host[:port]: "
                             f"{base_url!r}")
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be positive")
        headers = {"User-Agent": f"taperoom/{__version__}"}
        if api_token:
            headers["Authorization"] = f"Bearer {api_token}"
        self.base_url = str(url).rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_ms / 1000,
                                    headers=headers, transport=transport,
                                    follow_redirects=False)

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def __enter__(self) -> AnalysisServerClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- jobs -------------------------------------------------------------------------

    def submit(self, file_path: str | Path, *, track_hash: str,
               options: Mapping[str, Any] | None = None, callback_url: str | None = None,
               stem_delivery_mode: str = "path") -> SubmittedJob:
        """Submit a job in local mode: the server reads `file_path` itself.

        Parameters
        ----------
        file_path : str or Path
            Absolute path of the audio file, as the server sees it.
        track_hash : str
            The track's audio hash: the job id.
        options : mapping, optional
            Stages (contract §3): ``basic_features`` and ``characteristics``
            default to true, the others to false.
        callback_url : str, optional
            Where the server posts each stage.
        stem_delivery_mode : str
            ``path`` (default in local mode) or ``callback``.

        Returns
        -------
        SubmittedJob

        Raises
        ------
        InvalidInput
            A bad `track_hash` or `callback_url` (nothing is sent).
        AnalysisServerUnavailable, AnalysisServerRefused, AnalysisServerError
        """
        body = {"file_path": str(file_path), **self._job_fields(
            track_hash, options, callback_url, stem_delivery_mode)}
        answer = self._request("POST", "/jobs", "the job", json=body)
        return self._submitted(answer)

    def upload(self, file_path: str | Path, *, track_hash: str,
               options: Mapping[str, Any] | None = None, callback_url: str | None = None,
               stem_delivery_mode: str = "callback") -> SubmittedJob:
        """Submit a job in remote mode: the file is uploaded (multipart field ``file``,
        its content type from its extension; ``options`` as a JSON string).

        Parameters
        ----------
        file_path : str or Path
            The local audio file.
        track_hash, options, callback_url
            As :meth:`submit`.
        stem_delivery_mode : str
            ``callback`` (default in remote mode) or ``path``.

        Raises
        ------
        InvalidInput
            A bad `track_hash` or `callback_url` (nothing is sent).
        OSError
            The file cannot be read.
        AnalysisServerUnavailable, AnalysisServerRefused, AnalysisServerError
        """
        path = Path(file_path)
        fields = self._job_fields(track_hash, options, callback_url, stem_delivery_mode)
        fields["options"] = json.dumps(fields["options"])
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as fh:
            answer = self._request("POST", "/jobs", "the upload", data=fields,
                                   files={"file": (path.name, fh, kind)})
        return self._submitted(answer)

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The server's view of a job, or None when it does not know it (404)."""
        answer = self._request("GET", self._job_path(job_id), "the job status",
                               missing_ok=True)
        return None if answer is None else self._object(answer, "job")

    def cancel(self, job_id: str) -> bool:
        """Cancel (or, finished, forget) a job; False when the server does not know it."""
        answer = self._request("DELETE", self._job_path(job_id), "the cancellation",
                               missing_ok=True)
        return answer is not None

    def health(self) -> dict[str, Any]:
        """``GET /health``: the server's ``{"status": "ok", ...}``.

        Raises
        ------
        AnalysisServerUnavailable
            Not reachable, or its status is not ``ok``.
        """
        answer = self._request("GET", "/health", "the health check")
        body = self._object(answer, "health")
        if body.get("status") != "ok":
            raise AnalysisServerUnavailable(
                f"The analysis server at {self.base_url} is not healthy: status "
                f"{str(body.get('status'))[:_QUOTE_MAX]!r}")
        return body

    def stats(self) -> dict[str, Any]:
        """``GET /stats``: the server's counters."""
        return self._object(self._request("GET", "/stats", "the stats request"), "stats")

    # -- inside -------------------------------------------------------------------------

    @staticmethod
    def _job_fields(track_hash: str, options: Mapping[str, Any] | None,
                    callback_url: str | None, stem_delivery_mode: str) -> dict[str, Any]:
        fields: dict[str, Any] = {"track_hash": check_track_hash(track_hash),
                                  "options": AnalysisOptions.parse(options).model_dump(),
                                  "stem_delivery_mode": stem_delivery_mode}
        if callback_url:
            fields["callback_url"] = check_callback_url(callback_url)
        return fields

    @staticmethod
    def _job_path(job_id: str) -> str:
        return "/jobs/" + quote(job_id, safe="")

    def _request(self, method: str, path: str, what: str, *, missing_ok: bool = False,
                 **kwargs: Any) -> httpx.Response | None:
        try:
            answer = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise AnalysisServerUnavailable(
                f"The analysis server at {self.base_url} did not answer {what} in time "
                f"({self._client.timeout.read:g} s)") from None
        except httpx.HTTPError as exc:
            raise AnalysisServerUnavailable(
                f"The analysis server at {self.base_url} cannot be reached for {what}: "
                f"{type(exc).__name__}") from None
        if missing_ok and answer.status_code == 404:
            return None
        if answer.status_code >= 500:
            raise AnalysisServerUnavailable(
                f"The analysis server at {self.base_url} failed {what}: HTTP "
                f"{answer.status_code}" + (f" ({r})" if (r := _reason(answer)) else ""))
        if not answer.is_success:
            raise AnalysisServerRefused(answer.status_code, _reason(answer), what)
        return answer

    def _object(self, answer: httpx.Response | None, what: str) -> dict[str, Any]:
        try:
            body = None if answer is None else answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise AnalysisServerError(f"The analysis server at {self.base_url} answered "
                                      f"the {what} request with no JSON object")
        return body

    def _submitted(self, answer: httpx.Response | None) -> SubmittedJob:
        body = self._object(answer, "job")
        job_id = body.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise AnalysisServerError(f"The analysis server at {self.base_url} accepted "
                                      "the job without a job_id")

        def text(key: str) -> str | None:
            value = body.get(key)
            return value if isinstance(value, str) else None

        return SubmittedJob(job_id=job_id, status=text("status") or "queued",
                            track_hash=text("track_hash") or job_id,
                            created_at=text("created_at"), callback_url=text("callback_url"),
                            stem_delivery_mode=text("stem_delivery_mode"), raw=body)
