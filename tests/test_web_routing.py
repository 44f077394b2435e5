"""The ``Allow`` header of 405 responses (taperoom.web.routing), on a real server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, HTTPException
from starlette.routing import Mount, Route, Router

from taperoom.web.routing import install_allow_header
from tests.allowprobe import assert_405s_list_the_documented_methods


def build_app(fixed: bool) -> FastAPI:
    """An app whose paths are served by several routes: included routers, a nested
    router, a path converter and a mounted Starlette router."""
    app = FastAPI()
    items = APIRouter()

    @items.get("/{item_id}")
    def get_item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @items.delete("/{item_id}")
    def delete_item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @items.post("/export")
    def export() -> dict[str, str]:
        return {}

    notes = APIRouter()

    @notes.put("/{item_id}/note")
    def put_note(item_id: str) -> dict[str, str]:
        return {}

    @notes.get("/{number:int}/note")
    def get_note(number: int) -> dict[str, int]:
        return {"number": number}

    @notes.patch("/{item_id}/own")
    def own_405(item_id: str) -> dict[str, str]:
        raise HTTPException(405, headers={"Allow": "LOCK"})

    items.include_router(notes)
    app.include_router(items, prefix="/items")

    async def endpoint(request: Any) -> Any:
        from starlette.responses import PlainTextResponse
        return PlainTextResponse("ok")

    app.router.routes.append(Mount("/legacy", app=Router(routes=[
        Route("/thing", endpoint, methods=["POST"]),
        Route("/thing", endpoint, methods=["PUT"])])))
    if fixed:
        install_allow_header(app)
    return app


def allow(r: httpx.Response) -> set[str]:
    assert r.status_code == 405, r.text
    return {m.strip() for m in r.headers["allow"].split(",")}


def test_405_lists_every_method_of_the_path(live_server: Callable[[Any], Any]) -> None:
    """Methods of every route at the path, across included and mounted routers; a path
    converter that does not match does not count; a handler's own 405 is left alone."""
    url = live_server(build_app(fixed=True)).url
    with httpx.Client(base_url=url, timeout=10) as c:
        assert allow(c.put("/items/a")) == {"GET", "DELETE"}
        assert allow(c.put("/items/export")) == {"GET", "DELETE", "POST"}
        assert allow(c.post("/items/a/note")) == {"PUT"}  # "a" is no int
        assert allow(c.post("/items/7/note")) == {"GET", "PUT"}
        assert allow(c.get("/legacy/thing")) == {"POST", "PUT"}
        assert allow(c.patch("/items/a/own")) == {"LOCK"}
        assert c.get("/items/a").status_code == 200
        assert c.get("/nowhere").status_code == 404


def test_without_the_middleware_the_router_names_one_route_only(
        live_server: Callable[[Any], Any]) -> None:
    """The defect the middleware fixes: the router's 405 names the first route's methods."""
    url = live_server(build_app(fixed=False)).url
    with httpx.Client(base_url=url, timeout=10) as c:
        assert allow(c.put("/items/a")) == {"GET"}


@pytest.mark.slow
def test_every_library_path_lists_all_its_methods(lib_server: Any) -> None:
    """On the library app, each documented path's 405 lists every documented method."""
    with httpx.Client(base_url=lib_server.url, timeout=10) as c:
        assert assert_405s_list_the_documented_methods(c) > 20


def test_every_ephemeral_path_lists_all_its_methods(eph_settings: Any,
                                                    live_server: Callable[[Any], Any]) -> None:
    """On the ephemeral app, each documented path's 405 lists every documented method."""
    from taperoom.ephemeral.app import create_app

    server = live_server(create_app(eph_settings(degrade_rate_limit="off")))
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert assert_405s_list_the_documented_methods(c) > 5
