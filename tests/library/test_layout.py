"""The library's skeleton: one composition root, no import cycles, a typed wire."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

import taperoom
from tests.imports import cycles, import_graph

SRC = Path(taperoom.__file__).resolve().parent
LIBRARY = "taperoom.library"
#: Modules allowed to import the composition root: the app, its routers and the CLI.
ROOT_USERS = ("taperoom.library.app", "taperoom.library.api.", "taperoom.library.cli")


def _graph() -> dict[str, set[str]]:
    """Library module -> the library modules it imports (lazily and for type checking too)."""
    return {name: {t for t in targets if t.startswith(LIBRARY)}
            for name, targets in import_graph().items() if name.startswith(LIBRARY)}


def test_no_import_cycle_in_the_library() -> None:
    """No library module imports, even lazily or for type checking only, a module that
    imports it back (the context used to: context <-> directories, scanner, watcher...)."""
    assert cycles(_graph()) == []


def test_no_service_imports_the_composition_root() -> None:
    """Only the app, its routers and the CLI import ``library.context``; services get
    their collaborators in their constructors."""
    importers = sorted(name for name, targets in _graph().items()
                       if f"{LIBRARY}.context" in targets and not name.startswith(ROOT_USERS))
    assert importers == []


def test_the_reader_processes_import_neither_the_orm_nor_the_web_stack() -> None:
    """A scan's reader processes (``forkserver``) import ``scanner.read`` alone; it must
    not pull in the ORM, the job queue or FastAPI, whose import cost every pool
    process would pay again (it made full scans use 40 % more CPU)."""
    code = ("import sys, taperoom.library.scanner.read\n"
            "print(' '.join(m for m in ('sqlalchemy', 'fastapi', 'huey', 'pydantic',"
            " 'taperoom.library.models', 'taperoom.library.jobqueue') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.split() == []


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return dict(doc["components"]["schemas"][ref.rsplit("/", 1)[-1]])


def test_every_route_documents_its_answers(lib_server: Any) -> None:
    """Every route of /openapi.json names a schema with properties for its 2xx JSON body
    (or the schema of its file answer's media type), and documents the error envelope."""
    doc = httpx.get(f"{lib_server.url}/openapi.json", timeout=30).json()
    undocumented = []
    operations = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            operations += 1
            ok = [r for status, r in op["responses"].items() if status.startswith("2")]
            schemas = [r.get("content", {}).get("application/json", {}).get("schema")
                       for r in ok]
            named = [s for s in schemas if s and "$ref" in s
                     and _resolve(doc, s).get("properties")]
            # a file answer (an M3U export) documents its media type and schema instead
            named += [media for r in ok for kind, media in r.get("content", {}).items()
                      if kind != "application/json" and media.get("schema")]
            if not named:
                undocumented.append(f"{method.upper()} {path}")
            if path.startswith("/api/"):
                errors = op["responses"].get("404", {}).get("content", {})
                schema = errors.get("application/json", {}).get("schema", {})
                if not schema.get("$ref", "").endswith("/ErrorPublic"):
                    undocumented.append(f"{method.upper()} {path} (404)")
    assert operations > 50
    assert undocumented == []


def test_track_schema_names_its_fields_not_the_table() -> None:
    """A column added to the tracks table does not reach the wire until the schema names it:
    the track object's fields are listed in ``TrackPublic`` (table columns, and the names
    derived from them), and the blobs are not among them."""
    from taperoom.library import models
    from taperoom.library.schemas import TRACK_DERIVED, TRACK_FIELDS, TrackPublic

    columns = {c.key for c in models.Track.__table__.columns}
    assert set(TRACK_FIELDS) - set(TRACK_DERIVED) <= columns
    assert set(TRACK_DERIVED).isdisjoint(columns) and set(TRACK_DERIVED) <= set(TRACK_FIELDS)
    assert {"beats_data", "downbeats_data", "file_mtime_ns"}.isdisjoint(TRACK_FIELDS)
    assert TrackPublic.model_config.get("extra") == "forbid"


def test_track_list_answers_fit_their_schema(lib_server: Any, lib_ctx: Any, corpus: Path,
                                             tmp_path: Path) -> None:
    """The track list pages, which skip the per-row model check for speed, still answer
    exactly what ``Envelope[list[TrackPublic]]`` documents (every key named, no other)."""
    from taperoom.library.schemas import Envelope, TrackPublic
    from tests.library.test_scanner import add_directory, copy_corpus

    did = add_directory(lib_ctx, copy_corpus(corpus, tmp_path / "lib"))
    lib_ctx.scans.scan_sync(did, "hybrid")
    for path in ("/api/tracks?limit=1000", "/api/tracks/search?q=a"):
        body = httpx.get(f"{lib_server.url}{path}", timeout=30).json()
        assert body["data"], path
        checked = Envelope[list[TrackPublic]].model_validate(body)
        assert checked.model_dump(exclude_unset=True) == body
        assert all(set(t) == set(TrackPublic.model_fields) for t in body["data"])
