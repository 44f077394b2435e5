"""/api/settings: seeded defaults, typed values, bulk atomicity, deletes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.backends()


@pytest.fixture
def api(lib_server: Any) -> Any:
    """An HTTP client of the running library server."""
    with httpx.Client(base_url=lib_server.url, timeout=30) as client:
        yield client


def stored(ctx: Any, key: str) -> tuple[str | None, str] | None:
    """The raw (value, type) row of a setting, read on a connection of its own."""
    with ctx.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT value, type FROM settings WHERE key = :key"),
                           {"key": key}).first()
    return None if row is None else (row[0], row[1])


def test_defaults_are_listed_parsed(api) -> None:
    """GET lists the 19 seeded settings with values parsed by type; category filters."""
    body = api.get("/api/settings").json()
    assert body["success"] is True and body["count"] == 19 == len(body["data"])
    by_key = {s["key"]: s for s in body["data"]}
    assert by_key["master_volume"] == {
        "key": "master_volume", "value": 0.8, "type": "float", "category": "audio",
        "description": "Master output volume (0.0 - 1.0)"}
    assert by_key["auto_analyze"]["value"] is True
    assert by_key["enable_stem_separation"]["value"] is False
    assert by_key["buffer_size"]["value"] == 512
    assert by_key["ui_theme"]["value"] == "dark"
    audio = api.get("/api/settings", params={"category": "audio"}).json()
    assert {s["key"] for s in audio["data"]} == {"audio_engine_url", "master_volume",
                                                  "buffer_size"}
    assert audio["count"] == 3
    assert api.get("/api/settings", params={"category": "nope"}).json()["count"] == 0
    cats = api.get("/api/settings/categories").json()
    assert cats == {"success": True, "data": ["analysis", "audio", "library", "maintenance",
                                              "performance", "ui"]}


def test_get_one_and_404(api) -> None:
    """GET /:key returns one setting or 404 'Setting not found'."""
    assert api.get("/api/settings/ui_theme").json()["data"]["value"] == "dark"
    r = api.get("/api/settings/missing_key")
    assert r.status_code == 404
    assert r.json() == {"success": False, "error": "Setting not found"}


def test_put_checks_value_against_type(api, lib_ctx) -> None:
    """PUT /:key validates the value against the stored or given type; stored as text."""
    ok_cases = [("buffer_size", 1024, 1024, "1024"), ("buffer_size", "256", 256, "256"),
                ("master_volume", 1, 1.0, "1.0"), ("master_volume", "0.25", 0.25, "0.25"),
                ("auto_analyze", False, False, "false"), ("auto_analyze", "yes", True, "true"),
                ("ui_theme", "light", "light", "light")]
    for key, value, parsed, text in ok_cases:
        r = api.put(f"/api/settings/{key}", json={"value": value})
        assert r.status_code == 200, (key, value, r.text)
        assert r.json()["data"]["value"] == parsed
        assert stored(lib_ctx, key)[0] == text
    bad_cases = [("buffer_size", "abc"), ("buffer_size", 1.5), ("buffer_size", True),
                 ("master_volume", "loud"), ("master_volume", "NaN"),
                 ("auto_analyze", "maybe"), ("auto_analyze", 2), ("ui_theme", {"a": 1})]
    for key, value in bad_cases:
        r = api.put(f"/api/settings/{key}", json={"value": value})
        assert r.status_code == 400, (key, value, r.text)
        body = r.json()
        assert body["success"] is False and body["error"] == "Validation failed"
        assert body["details"][0]["field"] == "value"
        assert f"for type '{stored(lib_ctx, key)[1]}'" in body["details"][0]["message"]
    assert api.get("/api/settings/buffer_size").json()["data"]["value"] == 256
    r = api.put("/api/settings/buffer_size", json={"value": "abc", "type": "int"})
    assert r.status_code == 400
    r = api.put("/api/settings/buffer_size", json={"value": "x", "type": "text"})
    assert r.status_code == 400 and r.json()["error"] == "Validation failed"
    r = api.put("/api/settings/buffer_size", json={"type": "int"})
    assert r.status_code == 400 and r.json()["details"][0]["field"] == "value"


def test_put_creates_new_settings_with_types(api, lib_ctx) -> None:
    """A new key gets the given type or one inferred from the JSON value; json round-trips."""
    r = api.put("/api/settings/crossfader_curve",
                json={"value": {"shape": "s", "points": [0, 0.5, 1]}, "category": "audio",
                      "description": "Crossfader curve"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"key": "crossfader_curve",
                                "value": {"shape": "s", "points": [0, 0.5, 1]},
                                "type": "json", "category": "audio",
                                "description": "Crossfader curve"}
    assert stored(lib_ctx, "crossfader_curve") == ('{"shape":"s","points":[0,0.5,1]}', "json")
    assert api.put("/api/settings/deck_count", json={"value": 4}).json()["data"]["type"] == "int"
    assert api.put("/api/settings/pitch", json={"value": 8.0}).json()["data"]["type"] == "float"
    assert api.put("/api/settings/sync", json={"value": True}).json()["data"]["type"] == "bool"
    r = api.put("/api/settings/deck_label", json={"value": 7, "type": "string"})
    assert r.json()["data"]["value"] == "7"
    r = api.put("/api/settings/cleared", json={"value": None, "type": "int"})
    assert r.status_code == 200 and r.json()["data"]["value"] is None
    r = api.put("/api/settings/buffer_size", json={"value": "[1, 2]", "type": "json"})
    assert (r.json()["data"]["value"], r.json()["data"]["type"]) == ("[1, 2]", "json")
    assert api.get("/api/settings/buffer_size").json()["data"]["category"] == "audio"
    assert api.get("/api/settings").json()["count"] == 19 + 6


def test_bulk_put_is_all_or_nothing(api, lib_ctx) -> None:
    """PUT / applies every entry in one transaction; one bad entry leaves everything as it was."""
    r = api.put("/api/settings", json={"settings": [
        {"key": "ui_theme", "value": "light"},
        {"key": "buffer_size", "value": 2048},
        {"key": "new_flag", "value": "true", "type": "bool", "category": "ui"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 3
    assert [(s["key"], s["value"]) for s in body["data"]] == [
        ("ui_theme", "light"), ("buffer_size", 2048), ("new_flag", True)]

    r = api.put("/api/settings", json={"settings": [
        {"key": "ui_theme", "value": "dark"},
        {"key": "another_new", "value": 1},
        {"key": "buffer_size", "value": "lots"}]})
    assert r.status_code == 400
    assert r.json()["details"] == [{"field": "settings.2.value",
                                    "message": "must be an integer for type 'int'"}]
    assert stored(lib_ctx, "ui_theme") == ("light", "string")
    assert stored(lib_ctx, "another_new") is None
    assert stored(lib_ctx, "buffer_size") == ("2048", "int")

    for body in ({"settings": []}, {}, {"settings": [{"value": 1}]},
                 {"settings": [{"key": "", "value": 1}]}, {"settings": "x"}):
        r = api.put("/api/settings", json=body)
        assert r.status_code == 400, body
        assert r.json()["error"] == "Validation failed"


def test_delete(api, lib_ctx) -> None:
    """DELETE /:key removes the row; a second DELETE (or an unknown key) is 404."""
    r = api.delete("/api/settings/ui_theme")
    assert r.json() == {"success": True, "message": "Setting deleted successfully"}
    assert stored(lib_ctx, "ui_theme") is None
    assert api.get("/api/settings/ui_theme").status_code == 404
    r = api.delete("/api/settings/ui_theme")
    assert r.status_code == 404 and r.json()["error"] == "Setting not found"
    assert api.get("/api/settings").json()["count"] == 18
