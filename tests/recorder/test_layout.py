"""The recorder's skeleton: one composition root, no import cycle, a documented wire.

* Every import among ``taperoom.recorder`` modules is read with :mod:`ast` (module
  level, inside functions and under ``if TYPE_CHECKING:`` alike) and the graph
  must have no cycle; no module but the web and command-line layers imports the
  composition root (``recorder/context.py``).
* ``RecorderServices`` is built whole: a frozen dataclass whose every field is a
  constructor argument (no ``init=False``, no ``extras``).
* ``/openapi.json`` of a running recorder documents the 2xx body of every route:
  JSON answers by a named schema that admits no other key, pages and files by
  their media type; only the trailing-slash aliases stay out of it (the shared
  sign-in routes of :mod:`taperoom.web.auth` are not the recorder's).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from tests.imports import SRC, cycles
from tests.imports import import_graph as whole_graph

PACKAGE = "taperoom.recorder"
RECORDER = SRC / "recorder"
#: Modules that may import the composition root: the app, its routers and the CLI.
ROOT_USERS = ("taperoom.recorder.app", "taperoom.recorder.cli", "taperoom.recorder.api")
#: JSON bodies whose keys are open by nature (a structured log line carries the
#: ``extra`` fields of its record).
OPEN_SCHEMAS = {"LogEntryPublic"}


def import_graph() -> dict[str, set[str]]:
    """Edges module -> recorder modules it imports (every import statement counts)."""
    return {name: {t for t in targets if t.startswith(PACKAGE)}
            for name, targets in whole_graph().items() if name.startswith(PACKAGE)}


def test_no_import_cycle_in_the_recorder() -> None:
    """No two recorder modules import each other, directly or around a loop."""
    graph = import_graph()
    assert "taperoom.recorder.context" in graph
    assert cycles(graph) == []


def test_only_the_web_and_cli_layers_import_the_composition_root() -> None:
    """Services get their collaborators in their constructor, never from the root."""
    importers = sorted(m for m, deps in import_graph().items()
                       if "taperoom.recorder.context" in deps
                       and not m.startswith(ROOT_USERS))
    assert importers == []


def test_services_are_built_whole() -> None:
    """RecorderServices is frozen and every field is given to its constructor."""
    from taperoom.recorder.context import RecorderServices

    assert dataclasses.is_dataclass(RecorderServices)
    assert RecorderServices.__dataclass_params__.frozen  # type: ignore[attr-defined]
    fields = dataclasses.fields(RecorderServices)
    assert [f.name for f in fields if not f.init] == []
    assert "extras" not in {f.name for f in fields}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ref = schema["$ref"]
    name = ref.rsplit("/", 1)[-1]
    return name, spec["components"]["schemas"][name]


def _named_objects(spec: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Names of the object schemas a response schema is made of; fails on anything
    anonymous (a bare object, ``additionalProperties: true``)."""
    if "$ref" in schema:
        name, target = _resolve(spec, schema)
        assert target.get("type") == "object" and target.get("properties"), name
        if name not in OPEN_SCHEMAS:
            assert target.get("additionalProperties") is False, name
        return [name]
    if schema.get("type") == "array":
        return _named_objects(spec, schema["items"])
    if "anyOf" in schema or "oneOf" in schema:
        names = []
        for part in schema.get("anyOf", schema.get("oneOf", [])):
            names += _named_objects(spec, part)
        return names
    raise AssertionError(f"anonymous response schema {schema}")


@pytest.fixture
def openapi(rec_server: Any) -> dict[str, Any]:
    """The running recorder's OpenAPI document."""
    resp = httpx.get(f"{rec_server.url}/openapi.json", timeout=10)
    assert resp.status_code == 200
    return dict(resp.json())


def test_every_route_documents_its_success_body(openapi: dict[str, Any]) -> None:
    """Each operation has a 2xx answer; JSON ones name a closed schema, others a media type."""
    seen = 0
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
            assert ok, (method, path)
            for code, answer in ok.items():
                content = answer.get("content")
                assert content, (method, path, code)
                for media, body in content.items():
                    seen += 1
                    if media == "application/json":
                        assert _named_objects(openapi, body["schema"]), (method, path)
                    else:
                        assert media.startswith((
                            "text/html", "image/", "audio/", "application/rss+xml",
                            "application/json+chapters")), (method, path, media)
    assert seen >= 45


def test_every_route_is_in_the_document(openapi: dict[str, Any]) -> None:
    """Each route of the recorder's routers (module-level ``router`` of every
    ``recorder/api`` module) is documented; only trailing-slash aliases are left out."""
    import importlib
    import pkgutil

    from fastapi.routing import APIRoute

    import taperoom.recorder.api as api

    documented = {(p, m.upper()) for p, item in openapi["paths"].items() for m in item}
    routes = []
    for info in pkgutil.iter_modules(api.__path__):
        module = importlib.import_module(f"{api.__name__}.{info.name}")
        if hasattr(module, "router"):
            routes += [r for r in module.router.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 45
    missing = []
    for route in routes:
        for method in route.methods - {"HEAD"}:
            key = (route.path_format, method)
            alias = (route.path_format.rstrip("/"), method)
            if key not in documented and not (route.path_format.endswith("/")
                                              and alias in documented):
                missing.append(key)
    assert missing == []


def test_error_answers_are_documented(openapi: dict[str, Any]) -> None:
    """Every /api operation documents the contract's error body for 400 and 404, and no
    operation documents FastAPI's 422 validation body (the recorder answers 400)."""
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    for path, item in openapi["paths"].items():
        if not path.startswith("/api/") or path == "/api/health":
            continue
        for method, op in item.items():
            for code in ("400", "404"):
                assert code in op["responses"], (method, path, code)
                schema = op["responses"][code]["content"]["application/json"]["schema"]
                assert _named_objects(openapi, schema), (method, path, code)


def test_one_word_for_one_concept() -> None:
    """A station is a ``Station`` in the code (its table and the wire keep the
    contract's ``stream_configurations`` / ``stream_config_id``), and the session
    factory is ``db`` (``sessions`` are recording sessions)."""
    from taperoom.recorder import models
    from taperoom.recorder.context import RecorderServices
    from taperoom.recorder.sessions import SessionService

    assert models.Station.__tablename__ == "stream_configurations"
    for model in (models.RecordingSchedule, models.RecordingSession):
        assert model.__table__.c.stream_config_id is model.station_id.property.columns[0]
    assert not hasattr(models, "StreamConfiguration")
    sources = [p.read_text(encoding="utf-8") for p in RECORDER.rglob("*.py")]
    assert not [s for s in sources if "StreamConfiguration(" in s or "ctx.sessions" in s]
    hints = RecorderServices.__annotations__
    assert hints["db"] == "sessionmaker[Session]" and hints["sessions"] == "SessionService"
    assert SessionService.__module__ == "taperoom.recorder.sessions"


def test_modules_with_one_job() -> None:
    """Capture is a package of sources, output, supervisor and probe; schedules have
    their own service module, apart from the stations'."""
    import importlib

    from taperoom.recorder import stations

    for name in ("types", "sources", "output", "supervisor", "probe"):
        importlib.import_module(f"taperoom.recorder.capture.{name}")
    assert (RECORDER / "capture" / "__init__.py").is_file()
    assert not (RECORDER / "capture.py").exists()
    schedules = importlib.import_module("taperoom.recorder.schedules")
    assert {"create", "update", "delete"} <= set(vars(schedules.ScheduleService))
    assert not [n for n in vars(stations) if "schedule" in n.lower()]
