"""Schemathesis over the OpenAPI documents of the three apps, on real servers with real ids.

Each app runs on a real uvicorn on 127.0.0.1 over a sandbox of real files: the
ephemeral app over real WAV files, the library over a folder of corpus tracks
that it has scanned (tracks, a duplicate group, hot cues, settings), the
recorder over a station that points at the test stream server on 127.0.0.1, a
schedule and a finished recording. Schemathesis generates requests from each
app's ``/openapi.json`` (schema-conforming and, where possible, non-conforming
data); for every path parameter the sandbox knows real values of, the value
sent is a real one or the generated one (Hypothesis chooses), so the requests
reach the code behind the "not found" answers too.

What must hold: no answer is a 5xx and no request breaks the connection.
:func:`fuzz` collects every failure with the request and a summary of the
server's traceback (read from the app's error log), so one run lists them all.
With ``conformance=True`` it also checks every answer against the documented
status codes' response schemas and content types (``make fuzz`` only: the
documents do not declare every answer yet).

The requests are kept on this machine and in the sandbox: station URLs and
upload destinations are pointed at the local test servers, recordings are
kept short, library folders are confined to the sandbox, and file names have
no path parts (so a request can never touch a file outside it, whatever the
app's own checks do).

References: Schemathesis 4 Python API (``schemathesis.openapi.from_dict``,
``APIOperation.as_strategy``, ``Case.call``, ``Case.validate_response``).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

#: Loggers that report the exceptions behind 5xx answers (the one error mapper of
#: ``taperoom.web.errors`` and uvicorn's, for errors outside it).
ERROR_LOGGERS = ("taperoom.web.errors", "uvicorn.error")
#: Order of the operations: reads first, deletions last, so that deleting the
#: sandbox's resources happens after everything else had them.
METHOD_ORDER = {"get": 0, "head": 0, "options": 0, "post": 1, "put": 2, "patch": 2, "delete": 3}
#: Checks of ``conformance=True``.
CONFORMANCE: list[CheckFunction] = [response_schema_conformance, content_type_conformance]


@dataclass
class Finding:
    """One failed request: what was sent, what came back, and the server's traceback."""

    app: str
    kind: str  # "5xx", "connection" or "conformance"
    method: str
    route: str
    url: str
    body: Any
    status: int | None
    detail: str
    known: str | None = None  # issue item of a known failure, when the bounded test allows it

    def __str__(self) -> str:
        body = "" if self.body is None else f" body={self.body!r:.200}"
        known = f" [known: {self.known}]" if self.known else ""
        return (f"{self.app} {self.kind} {self.status} {self.method} {self.route}: "
                f"{self.url}{body}{known}\n    {self.detail}")


@dataclass
class Report:
    """What a :func:`fuzz` run sent and found.

    Attributes
    ----------
    findings : list of Finding
        Every failed request.
    sent : int
        Requests answered by the server.
    reached : set of str
        Path parameters for which a request with a real value got a 2xx answer
        (evidence that the sandbox's ids were used, not only random ones).
    """

    findings: list[Finding] = field(default_factory=list)
    sent: int = 0
    reached: set[str] = field(default_factory=set)


class ErrorLog(logging.Handler):
    """Collects the exceptions the servers log, for the traceback summaries of findings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def summary_since(self, start: int) -> str:
        """One line per record logged after index `start`: message, exception, last frames."""
        lines = []
        for record in self.records[start:]:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                frames = traceback.extract_tb(exc.__traceback__)
                ours = [f for f in frames if "/taperoom/" in f.filename] or frames
                where = ", ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}"
                                  for f in ours[-2:])
                text += f" | {type(exc).__name__}: {str(exc)[:200]} at {where}"
            lines.append(text)
        return " || ".join(lines) or "(nothing logged)"


@contextlib.contextmanager
def capture_errors() -> Iterator[ErrorLog]:
    """Attach an :class:`ErrorLog` to the apps' error loggers for the duration."""
    handler = ErrorLog()
    loggers = [logging.getLogger(name) for name in ERROR_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@dataclass
class Target:
    """One app under test.

    Attributes
    ----------
    name : str
        App name, for the findings.
    url : str
        Base URL of the running server.
    path_values : dict
        Real values per path parameter name (the sandbox's ids and file names).
    sanitize : callable
        Rewrites a generated case in place so that it stays on this machine and
        in the sandbox (see the module docstring).
    known : callable
        ``known(finding)`` returns the issue item of a failure that another
        change fixes, or None.
    """

    name: str
    url: str
    path_values: dict[str, list[Any]] = field(default_factory=dict)
    sanitize: Callable[[Any], None] = lambda case: None
    known: Callable[[Finding], str | None] = lambda finding: None


def group(findings: list[Finding]) -> list[tuple[int, Finding]]:
    """Findings grouped by app, kind, route, status and the first line of their detail:
    ``(count, first finding)`` per group, most frequent first."""
    groups: dict[tuple[object, ...], list[Finding]] = {}
    for f in findings:
        key = (f.app, f.kind, f.method, f.route, f.status, f.detail.split("\n")[0][:120])
        groups.setdefault(key, []).append(f)
    return sorted(((len(v), v[0]) for v in groups.values()), key=lambda item: -item[0])


def load_schema(url: str) -> Any:
    """The app's OpenAPI document as a Schemathesis schema (no configuration file read)."""
    document = httpx.get(url + "/openapi.json", timeout=30).json()
    return schemathesis.openapi.from_dict(document, config=schemathesis.Config())


def fuzz(target: Target, *, examples: int, derandomize: bool, conformance: bool = False,
         timeout: float = 30.0) -> Report:
    """Send generated requests to every operation of `target`; return the failures.

    Parameters
    ----------
    target : Target
        The app and its sandbox.
    examples : int
        Hypothesis examples per operation and generation mode (positive, and
        negative where the operation has something to get wrong).
    derandomize : bool
        Derive the examples from the test itself (the same requests every run).
    conformance : bool
        Also check each answer against the document (response schema, content type).
    timeout : float
        Seconds a request may take before it counts as a broken connection.

    Returns
    -------
    Report
        Every 5xx, broken connection and (with `conformance`) non-conforming
        answer, and how many requests were answered.
    """
    schema = load_schema(target.url)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: (METHOD_ORDER.get(op.method.lower(), 1), op.path))
    report = Report()
    session = requests.Session()
    with capture_errors() as errors:
        for operation in operations:
            modes = [GenerationMode.POSITIVE]
            if can_be_invalid(operation.definition.raw):
                modes.append(GenerationMode.NEGATIVE)
            for mode in modes:
                run = _operation_test(target, operation, mode, session, errors, report,
                                      examples, derandomize, conformance, timeout)
                with contextlib.suppress(Unsatisfiable):  # nothing to get wrong: no negatives
                    run()
    session.close()
    for finding in report.findings:
        finding.known = target.known(finding)
    return report


def can_be_invalid(definition: dict[str, Any]) -> bool:
    """Whether an operation has anything for negative examples to get wrong.

    String path parameters do not count: a generated string is as good as an
    "invalid" one there, and Hypothesis can spend seconds on proving that no
    invalid request exists, or on negating a pattern.
    """
    if definition.get("requestBody"):
        return True
    return any(parameter.get("in") != "path"
               or parameter.get("schema", {}).get("type") != "string"
               for parameter in definition.get("parameters", []))


def _operation_test(target: Target, operation: Any, mode: GenerationMode,
                    session: requests.Session, errors: ErrorLog, report: Report,
                    examples: int, derandomize: bool, conformance: bool,
                    timeout: float) -> Callable[[], None]:
    """A Hypothesis test that sends `examples` requests of one operation and records failures."""

    @settings(max_examples=examples, derandomize=derandomize, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
              print_blob=False)
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        used = set()
        for name, generated in list((case.path_parameters or {}).items()):
            real = target.path_values.get(name)
            if real:
                value = data.draw(st.sampled_from([*real, generated]), label=name)
                case.path_parameters[name] = value
                if value in real:
                    used.add(name)
        target.sanitize(case)
        start = len(errors.records)
        try:
            response = case.call(base_url=target.url, session=session, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as exc:
            report.findings.append(Finding(target.name, "connection", case.method,
                                           operation.path, _url(case), _body(case), None,
                                           f"{type(exc).__name__}: {exc}"))
            return
        except (requests.RequestException, ValueError):
            return  # a request the HTTP client cannot send (a header with a newline, ...)
        report.sent += 1
        if 200 <= response.status_code < 300:
            report.reached |= used
        findings = report.findings
        if response.status_code >= 500:
            _settle(errors, start)
            findings.append(Finding(target.name, "5xx", case.method, operation.path,
                                    _url(case), _body(case), response.status_code,
                                    errors.summary_since(start)))
        elif conformance:
            try:
                case.validate_response(response, checks=CONFORMANCE)
            except FailureGroup as group:
                for failure in group.exceptions:
                    findings.append(Finding(target.name, "conformance", case.method,
                                            operation.path, _url(case), _body(case),
                                            response.status_code,
                                            f"{failure.title}: {failure.message[:300]}"))

    return run


def _settle(errors: ErrorLog, start: int, wait: float = 0.5) -> None:
    """Give the server a moment to log the exception behind an answer it already sent."""
    deadline = time.monotonic() + wait
    while len(errors.records) == start and time.monotonic() < deadline:
        time.sleep(0.01)


def _url(case: Any) -> str:
    query = "&".join(f"{k}={v}" for k, v in (case.query or {}).items())
    return case.formatted_path + (f"?{query}" if query else "")


def _body(case: Any) -> Any:
    body = getattr(case, "body", None)
    return None if body is None or type(body).__name__ == "NotSet" else body


# --------------------------------------------------------------------------- keeping requests local


def local_url(value: Any, local: list[str]) -> Any:
    """`value` when it cannot reach another host, else one of the `local` test server URLs.

    Strings without a scheme separator, a dot or a colon stay (they exercise the
    app's URL validation); anything that could name another host is replaced by
    a local URL picked by its length (so the choice is the same on every run).
    """
    if not isinstance(value, str):
        return value
    try:
        host = urlsplit(value).hostname
    except ValueError:
        host = None
    if host == "127.0.0.1" or not any(c in value for c in "/.:"):
        return value
    return local[len(value) % len(local)]


def bare_name(value: Any) -> Any:
    """`value` without path separators or ``..`` (a file name that stays in its folder)."""
    if not isinstance(value, str):
        return value
    return value.replace("/", "_").replace("\\", "_").replace("..", "_") or "_"


def inside(root: Path, value: Any) -> Any:
    """A path under `root` made from `value` (which keeps its odd characters)."""
    if not isinstance(value, str):
        return value
    if value.startswith(str(root) + "/") and ".." not in value:
        return value
    return str(root / ("fuzz-" + bare_name(value)[:200]))


def copy_into(src: Path, dest: Path) -> Path:
    """Copy `src` to `dest` (parents created); return `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest
