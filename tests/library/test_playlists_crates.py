"""/api/playlists/folders: crates (a tree of playlist folders)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.library.playlistkit import (
    api_client,  # noqa: F401 (the api fixture)
    create,
)

pytestmark = pytest.mark.backends()

FOLDER_KEYS = {"id", "name", "parent_id", "created_at", "updated_at", "folders", "playlists"}


def folder(api: httpx.Client, name: str, parent_id: str | None = None) -> dict[str, Any]:
    r = api.post("/api/playlists/folders", json={"name": name, "parent_id": parent_id})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_tree_create_rename_move(api: httpx.Client) -> None:
    """Folders nest; playlists are filed by ``folder_id``; renames and moves show in the
    tree; a move into its own sub-tree is 409."""
    house = folder(api, "House")
    assert set(house) == FOLDER_KEYS and house["parent_id"] is None
    deep = folder(api, "Deep", house["id"])
    techno = folder(api, "Techno")
    in_deep = create(api, name="Sunday", folder_id=deep["id"])
    assert in_deep["folder_id"] == deep["id"]
    loose = create(api, name="Loose")

    tree = api.get("/api/playlists/folders").json()
    assert tree["count"] == 3
    assert [f["name"] for f in tree["folders"]] == ["House", "Techno"]
    sub = tree["folders"][0]["folders"]
    assert [f["name"] for f in sub] == ["Deep"]
    assert [p["id"] for p in sub[0]["playlists"]] == [in_deep["id"]]
    assert sub[0]["playlists"][0]["track_count"] == 0
    assert [p["id"] for p in tree["playlists"]] == [loose["id"]]
    listed = api.get("/api/playlists", params={"folder_id": deep["id"]}).json()
    assert [p["id"] for p in listed["playlists"]] == [in_deep["id"]]

    r = api.put(f"/api/playlists/folders/{deep['id']}", json={"name": "Deeper"})
    assert r.status_code == 200 and r.json()["name"] == "Deeper"
    r = api.put(f"/api/playlists/folders/{deep['id']}", json={"parent_id": techno["id"]})
    assert r.json()["parent_id"] == techno["id"]
    assert api.get(f"/api/playlists/folders/{techno['id']}").json()["folders"][0]["id"] == \
        deep["id"]
    for target in (techno["id"], deep["id"]):  # itself, its own child
        r = api.put(f"/api/playlists/folders/{techno['id']}", json={"parent_id": target})
        assert r.status_code == 409 and r.json()["error"] == "Folder cycle"
    r = api.put(f"/api/playlists/folders/{deep['id']}", json={"parent_id": None})
    assert r.json()["parent_id"] is None

    r = api.put(f"/api/playlists/{loose['id']}", json={"folder_id": house["id"]})
    assert r.json()["folder_id"] == house["id"]
    r = api.put(f"/api/playlists/{loose['id']}", json={"folder_id": None})
    assert r.json()["folder_id"] is None


def test_errors(api: httpx.Client) -> None:
    """404 for unknown folders and parents, 400 for malformed bodies."""
    ghost = str(uuid.uuid4())
    for r in (api.get(f"/api/playlists/folders/{ghost}"),
              api.put(f"/api/playlists/folders/{ghost}", json={"name": "x"}),
              api.delete(f"/api/playlists/folders/{ghost}"),
              api.post("/api/playlists/folders", json={"name": "x", "parent_id": ghost}),
              api.post("/api/playlists", json={"name": "x", "folder_id": ghost})):
        assert r.status_code == 404 and r.json()["error"] == "Folder not found", r.text
    made = folder(api, "A")
    for r in (api.post("/api/playlists/folders", json={}),
              api.post("/api/playlists/folders", json={"name": ""}),
              api.put(f"/api/playlists/folders/{made['id']}", json={}),
              api.put(f"/api/playlists/folders/{made['id']}", json={"name": None}),
              api.get("/api/playlists/folders/nope")):
        assert r.status_code == 400 and "message" in r.json(), r.text


def test_delete_needs_recursive_when_not_empty(api: httpx.Client, lib_ctx: Any) -> None:
    """A folder holding folders or playlists is 409 without ``recursive=true``; with it,
    the sub-tree and its playlists go."""
    seen: list[dict[str, Any]] = []
    lib_ctx.bus.on("playlist:updated", seen.append)
    top = folder(api, "Top")
    child = folder(api, "Child", top["id"])
    inner = create(api, name="Inner", folder_id=child["id"])
    outside = create(api, name="Outside")
    r = api.delete(f"/api/playlists/folders/{top['id']}")
    assert r.status_code == 409 and r.json()["error"] == "Folder not empty"
    r = api.delete(f"/api/playlists/folders/{child['id']}")
    assert r.status_code == 409
    seen.clear()
    r = api.delete(f"/api/playlists/folders/{top['id']}", params={"recursive": "true"})
    assert r.json() == {"message": "Folder deleted successfully", "id": top["id"],
                        "folders_deleted": 2, "playlists_deleted": 1}
    assert api.get(f"/api/playlists/{inner['id']}").status_code == 404
    assert api.get(f"/api/playlists/{outside['id']}").status_code == 200
    assert api.get("/api/playlists/folders").json() == {
        "folders": [], "playlists": [api.get("/api/playlists").json()["playlists"][0]],
        "count": 0}
    assert seen == [{"playlistId": inner["id"], "reason": "deleted"}]
    empty = folder(api, "Empty")
    assert api.delete(f"/api/playlists/folders/{empty['id']}").status_code == 200
