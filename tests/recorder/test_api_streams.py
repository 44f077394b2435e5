"""/api/streams on a real server and a real SQLite database: CRUD, artwork, export/import,
URL tests against a local HTTP stream, and every client-error path."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import free_port

http = httpx.Client(timeout=30)

STATION = {"name": "KUVO Jazz", "stream_url": "http://127.0.0.1:9/stream",
           "artist": "KUVO", "album": "Jazz Nights", "album_artist": "KUVO 89.3",
           "output_filename_pattern": "{date}_{name}.mp3",
           "scp_destination": "radio@127.0.0.1:/srv/recordings/"}


@pytest.fixture
def api(rec_server: Any) -> str:
    """Base URL of the station routes."""
    return f"{rec_server.url}/api/streams"


@pytest.fixture
def events(rec_services: Any) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every (name, data) sent on the context's bus during the test."""
    got: list[tuple[str, dict[str, Any]]] = []
    unsubscribe = rec_services.bus.subscribe(lambda name, data: got.append((name, data)))
    yield got
    unsubscribe()


def create(api: str, **overrides: Any) -> dict[str, Any]:
    """POST a station (STATION with overrides); asserts 201."""
    resp = http.post(api, json={**STATION, **overrides})
    assert resp.status_code == 201, resp.text
    return resp.json()


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    """A real image made with Pillow, in `fmt` (JPEG, PNG, ...)."""
    img = Image.new("RGB", size, (200, 30, 90))
    for x in range(size[0]):
        img.putpixel((x, x % size[1]), (x * 3 % 256, 10, 255 - x % 256))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def assert_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    """The response has `status` and the contract's error body."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status_code"] == status
    assert isinstance(body["error"], str) and isinstance(body["message"], str)
    return body


# --------------------------------------------------------------------------- CRUD


def test_create_get_list_update_delete(api: str, events: list[Any]) -> None:
    """A station goes through create (201), get, list, update and delete with contract shapes."""
    st = create(api)
    keys = {"id", "name", "stream_url", "artist", "album", "album_artist", "artwork_path",
            "output_filename_pattern", "scp_destination", "created_at", "updated_at"}
    assert keys <= set(st)
    assert st["artwork_path"] is None and st["name"] == "KUVO Jazz"
    assert st["created_at"][-6] in "+-"  # ISO 8601 with offset (America/Denver)

    assert http.get(f"{api}/{st['id']}").json() == st
    listed = http.get(api).json()
    assert [s["id"] for s in listed] == [st["id"]]
    assert http.get(api, params={"search": "jazz n"}).json()[0]["id"] == st["id"]
    assert http.get(api, params={"search": "nothing"}).json() == []

    resp = http.put(f"{api}/{st['id']}", json={"album": "Late Jazz", "bitrate_kbps": 128})
    assert resp.status_code == 200
    assert resp.json()["album"] == "Late Jazz" and resp.json()["name"] == "KUVO Jazz"
    assert resp.json()["bitrate_kbps"] == 128

    resp = http.delete(f"{api}/{st['id']}")
    assert resp.json() == {"message": f"Stream configuration {st['id']} deleted successfully"}
    assert_error(http.get(f"{api}/{st['id']}"), 404)
    assert [n for n, _ in events] == ["station:changed"] * 3
    assert [d["action"] for _, d in events] == ["created", "updated", "deleted"]


def test_pattern_gets_mp3_and_list_paging(api: str) -> None:
    """The pattern without extension gains .mp3; skip/limit page the name-ordered list."""
    a = create(api, name="b station", output_filename_pattern="{timestamp}_{artist}")
    create(api, name="A station")
    create(api, name="c station")
    assert a["output_filename_pattern"] == "{timestamp}_{artist}.mp3"
    names = [s["name"] for s in http.get(api, params={"skip": 1, "limit": 1}).json()]
    assert names == ["b station"]


def test_duplicate_name_is_409(api: str) -> None:
    """A second station of the same name (any case) is a 409, on create and on rename."""
    create(api)
    assert_error(http.post(api, json={**STATION, "name": "kuvo jazz"}), 409)
    other = create(api, name="Other")
    assert_error(http.put(f"{api}/{other['id']}", json={"name": "KUVO JAZZ"}), 409)


@pytest.mark.parametrize("body", [
    {},
    {**STATION, "name": ""},
    {**STATION, "name": "x" * 101},
    {**STATION, "stream_url": "ftp://host/x"},
    {**STATION, "stream_url": "not a url"},
    {**STATION, "artist": ""},
    {**STATION, "output_filename_pattern": "{nope}.mp3"},
    {**STATION, "output_filename_pattern": "fixed.mp3"},
    {**STATION, "output_filename_pattern": "../{name}.mp3"},
    {**STATION, "scp_destination": "no-at-sign"},
    {**STATION, "bitrate_kbps": 1000},
    {**STATION, "name": ["list"]},
])
def test_bad_bodies_are_400_validation_errors(api: str, body: dict[str, Any]) -> None:
    """Invalid station bodies are 400 with the contract's validation error shape."""
    body_out = assert_error(http.post(api, json=body), 400)
    assert body_out["error"] == "Validation Error"
    assert body_out["details"] and {"field", "message", "type"} <= set(body_out["details"][0])


def test_non_json_and_non_object_bodies_are_400(api: str) -> None:
    """A body that is not JSON, or JSON that is not an object, is a 400 (never a 500)."""
    st = create(api)
    for content in (b"{not json", b"[1, 2]", b'"text"', b""):
        assert_error(http.post(api, content=content,
                               headers={"Content-Type": "application/json"}), 400)
        assert_error(http.put(f"{api}/{st['id']}", content=content,
                              headers={"Content-Type": "application/json"}), 400)


@pytest.mark.parametrize("path", ["999", "0", "99999999999999999999", "9223372036854775808"])
def test_unknown_ids_are_404(api: str, path: str) -> None:
    """Unknown, zero and out-of-range ids are 404 on every per-station route."""
    assert_error(http.get(f"{api}/{path}"), 404)
    assert_error(http.put(f"{api}/{path}", json={"album": "x"}), 404)
    assert_error(http.delete(f"{api}/{path}"), 404)
    assert_error(http.post(f"{api}/{path}/test"), 404)
    assert_error(http.post(f"{api}/{path}/record", json={"duration_seconds": 5}), 404)
    assert_error(http.delete(f"{api}/{path}/artwork"), 404)
    assert_error(http.post(f"{api}/{path}/artwork",
                           files={"artwork": ("a.png", image_bytes("PNG"), "image/png")}), 404)


@pytest.mark.parametrize("path", ["abc", "-1", "1.5", "1/extra"])
def test_non_numeric_ids_are_404(api: str, path: str) -> None:
    """Ids that are not digits match no route (404 in the error shape), as in the original."""
    assert_error(http.get(f"{api}/{path}"), 404)


@pytest.mark.parametrize("params", [{"skip": -1}, {"limit": 0}, {"limit": 100000},
                                    {"skip": "x"}, {"search": "x" * 500}])
def test_bad_list_params_are_400(api: str, params: dict[str, Any]) -> None:
    """Out-of-range or malformed paging parameters are 400."""
    assert_error(http.get(api, params=params), 400)


def test_delete_station_removes_its_schedules_and_jobs(api: str, rec_server: Any,
                                                        rec_services: Any) -> None:
    """Deleting a station deletes its schedules and their scheduler jobs."""
    st = create(api)
    resp = http.post(f"{rec_server.url}/api/schedules",
                     json={"stream_config_id": st["id"], "cron_expression": "0 21 * * *",
                           "duration_minutes": 60})
    sid = resp.json()["id"]
    assert rec_services.scheduler.next_run(sid) is not None
    http.delete(f"{api}/{st['id']}")
    assert rec_services.scheduler.next_run(sid) is None
    assert_error(http.get(f"{rec_server.url}/api/schedules/{sid}"), 404)


# --------------------------------------------------------------------------- artwork


def test_artwork_upload_replace_and_delete(api: str, rec_services: Any) -> None:
    """A real JPEG is stored as stream_<id>_<name>.jpg; a PNG replaces it; delete removes it."""
    st = create(api)
    art_dir: Path = rec_services.settings.artwork_dir
    jpeg = image_bytes("JPEG")
    resp = http.post(f"{api}/{st['id']}/artwork",
                     files={"artwork": ("My Cover (1).jpeg", jpeg, "image/jpeg")})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body == {"stream_id": st["id"],
                    "artwork_path": f"artwork/stream_{st['id']}_My_Cover_1.jpeg",
                    "filename": f"stream_{st['id']}_My_Cover_1.jpeg", "file_size": len(jpeg),
                    "message": "Artwork uploaded successfully"}
    assert (art_dir / body["filename"]).read_bytes() == jpeg
    assert http.get(f"{api}/{st['id']}").json()["artwork_path"] == body["artwork_path"]

    png = image_bytes("PNG")
    resp = http.post(f"{api}/{st['id']}/artwork",
                     files={"artwork": ("logo.png", png, "image/png")})
    assert resp.json()["artwork_path"] == f"artwork/stream_{st['id']}_logo.png"
    assert sorted(p.name for p in art_dir.iterdir()) == [f"stream_{st['id']}_logo.png"]

    resp = http.delete(f"{api}/{st['id']}/artwork")
    assert resp.json() == {"stream_id": st["id"], "message": "Artwork deleted successfully"}
    assert list(art_dir.iterdir()) == []
    assert http.get(f"{api}/{st['id']}").json()["artwork_path"] is None
    assert_error(http.delete(f"{api}/{st['id']}/artwork"), 400)


def test_artwork_with_wrong_extension_for_its_type_gets_the_real_one(api: str) -> None:
    """A PNG uploaded as .jpg is stored with .png, the type Pillow found."""
    st = create(api)
    resp = http.post(f"{api}/{st['id']}/artwork",
                     files={"artwork": ("cover.jpg", image_bytes("PNG"), "image/jpeg")})
    assert resp.json()["filename"] == f"stream_{st['id']}_cover.png"


def test_artwork_too_large_is_413(api: str, rec_services: Any) -> None:
    """An upload above MAX_ARTWORK_SIZE_MB is a 413 and stores nothing."""
    st = create(api)
    big = image_bytes("BMP", (2400, 1600))  # ~11.5 MB uncompressed BMP > 10 MB
    assert len(big) > rec_services.settings.max_artwork_bytes
    assert_error(http.post(f"{api}/{st['id']}/artwork",
                           files={"artwork": ("big.bmp", big, "image/bmp")}), 413)
    assert list(rec_services.settings.artwork_dir.iterdir()) == []


@pytest.mark.parametrize(("name", "data", "status"), [
    ("fake.jpg", b"this is not an image at all" * 10, 422),
    ("truncated.png", image_bytes("PNG", (300, 300))[:200], 422),
    ("empty.png", b"", 422),
    ("cover.tiff", image_bytes("TIFF"), 400),
    ("noext", image_bytes("PNG"), 400),
    ("cover.png.exe", image_bytes("PNG"), 400),
])
def test_bad_artwork_is_rejected(api: str, rec_services: Any, name: str, data: bytes,
                                 status: int) -> None:
    """Fake, damaged, empty or disallowed files are refused (400/422) and nothing is stored."""
    st = create(api)
    assert_error(http.post(f"{api}/{st['id']}/artwork",
                           files={"artwork": (name, data, "application/octet-stream")}), status)
    assert list(rec_services.settings.artwork_dir.iterdir()) == []
    assert http.get(f"{api}/{st['id']}").json()["artwork_path"] is None


def test_artwork_without_file_field_is_400(api: str) -> None:
    """A multipart body without ``artwork`` or with two files, a broken multipart body,
    or a JSON body, is a 400."""
    st = create(api)
    assert_error(http.post(f"{api}/{st['id']}/artwork",
                           files={"other": ("a.png", image_bytes("PNG"), "image/png")}), 400)
    assert_error(http.post(f"{api}/{st['id']}/artwork", json={"artwork": "x"}), 400)
    assert_error(http.post(f"{api}/{st['id']}/artwork", data={"artwork": "text"}), 400)
    assert_error(http.post(f"{api}/{st['id']}/artwork", content=b"--x\r\nbroken",
                           headers={"Content-Type": "multipart/form-data; boundary=x"}), 400)
    two = [("artwork", ("a.png", image_bytes("PNG"), "image/png")),
           ("artwork", ("b.png", image_bytes("PNG"), "image/png"))]
    assert_error(http.post(f"{api}/{st['id']}/artwork", files=two), 400)


def test_delete_station_deletes_its_artwork(api: str, rec_services: Any) -> None:
    """Deleting a station removes its artwork file."""
    st = create(api)
    http.post(f"{api}/{st['id']}/artwork",
              files={"artwork": ("c.webp", image_bytes("WEBP"), "image/webp")})
    assert len(list(rec_services.settings.artwork_dir.iterdir())) == 1
    http.delete(f"{api}/{st['id']}")
    assert list(rec_services.settings.artwork_dir.iterdir()) == []


# --------------------------------------------------------------------------- export / import


def test_export_import_round_trip(api: str, rec_server: Any, rec_settings: Any,
                                  live_server: Any, tmp_path: Path) -> None:
    """An export imported into an empty recorder recreates the stations and schedules."""
    a = create(api, name="Alpha")
    b = create(api, name="Beta", output_filename_pattern="{album}-{timestamp}.mp3")
    sched = f"{rec_server.url}/api/schedules"
    http.post(sched, json={"stream_config_id": b["id"], "cron_expression": "30 6 * * 1-5",
                           "duration_minutes": 90, "max_retries": 5})
    http.post(sched, json={"stream_config_id": a["id"], "cron_expression": "0 21 * * *",
                           "duration_minutes": 60, "is_active": False})
    doc = http.get(f"{api}/export").json()
    assert doc["version"] == "1.0" and doc["exported_at"][-6] in "+-"
    assert [s["name"] for s in doc["streams"]] == ["Alpha", "Beta"]
    assert len(doc["schedules"]) == 2

    from taperoom.recorder.app import create_app
    from taperoom.recorder.context import build_services

    services2 = build_services(rec_settings(data_dir=tmp_path / "data2",
                                     artwork_dir=tmp_path / "art2"))
    try:
        srv2 = live_server(create_app(services=services2))
        # a station already in the second recorder shifts the ids
        http.post(f"{srv2.url}/api/streams", json={**STATION, "name": "Pre-existing"})
        resp = http.post(f"{srv2.url}/api/streams/import", json=doc)
        assert resp.status_code == 200, resp.text
        result = resp.json()
        assert result["imported_streams"] == 2 and result["imported_schedules"] == 2
        assert result["errors"] == []
        assert set(result) >= {"stream_ids", "schedule_ids", "message"}
        doc2 = http.get(f"{srv2.url}/api/streams/export").json()
        by_name = {s["name"]: s for s in doc2["streams"]}
        for s in doc["streams"]:
            got = by_name[s["name"]]
            for key in ("stream_url", "artist", "album", "album_artist",
                        "output_filename_pattern", "scp_destination"):
                assert got[key] == s[key]
        pairs = {(by_name[x["stream_name"]]["id"], x["cron_expression"], x["duration_minutes"],
                  x["is_active"], x["max_retries"]) for x in doc2["schedules"]}
        assert pairs == {(by_name["Beta"]["id"], "30 6 * * 1-5", 90, True, 5),
                         (by_name["Alpha"]["id"], "0 21 * * *", 60, False, 3)}
        beta_sched = next(x for x in doc2["schedules"] if x["stream_name"] == "Beta")
        assert services2.scheduler.next_run(beta_sched["id"]) is not None
    finally:
        services2.close()


def test_import_reports_per_item_errors(api: str) -> None:
    """Bad items are listed in ``errors``; good ones are imported; schedules map by id/index."""
    create(api, name="Existing")
    doc = {"version": "1.0", "streams": [
        {**STATION, "id": 41, "name": "Good"},
        {**STATION, "id": 42, "name": ""},
        {**STATION, "id": 43, "name": "existing"},
        {**STATION, "id": 44, "stream_url": "gopher://old.example/"},
        {**STATION, "name": "By Index"},
    ], "schedules": [
        {"stream_config_id": 41, "cron_expression": "0 8 * * *", "duration_minutes": 30},
        {"stream_config_id": 42, "cron_expression": "0 8 * * *", "duration_minutes": 30},
        {"stream_config_id": 41, "cron_expression": "61 8 * * *", "duration_minutes": 30},
        {"stream_config_id": 41, "cron_expression": "0 8 * * *", "duration_minutes": 0},
        {"stream_index": 4, "cron_expression": "*/15 * * * *", "duration_minutes": 5},
        {"stream_config_id": 999, "cron_expression": "0 8 * * *", "duration_minutes": 30},
        {"stream_name": "Existing", "cron_expression": "0 9 * * 0", "duration_minutes": 45},
        {"stream_config_id": 44, "cron_expression": "0 8 * * *", "duration_minutes": 30},
    ]}
    resp = http.post(f"{api}/import", json=doc)
    assert resp.status_code == 200, resp.text
    r = resp.json()
    assert r["imported_streams"] == 2 and r["imported_schedules"] == 3
    assert len(r["errors"]) == 8, r["errors"]
    assert any("streams[1]" in e for e in r["errors"])
    assert any("streams[2]" in e and "already exists" in e for e in r["errors"])
    assert any("schedules[2]" in e and "cron" in e.lower() for e in r["errors"])
    assert any("schedules[5]" in e for e in r["errors"])
    names = {s["name"] for s in http.get(api).json()}
    assert names == {"Existing", "Good", "By Index"}


@pytest.mark.parametrize("body", [[1, 2], {"streams": "x"}, {"streams": [], "version": "2.0"},
                                  {"schedules": {"a": 1}}, {"streams": ["not an object"]},
                                  {"schedules": [7]}])
def test_bad_import_documents_are_400(api: str, body: Any) -> None:
    """A document that is not an export (wrong types, other major version) is a 400."""
    assert_error(http.post(f"{api}/import", json=body), 400)


# --------------------------------------------------------------------------- URL test


class _IcyHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/live":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("icy-name", "Test FM")
        self.send_header("icy-br", "128")
        self.end_headers()
        frame = bytes.fromhex("fffb9064") + bytes(413)  # MPEG-1 L3 128 kb/s 44.1 kHz frames
        try:
            for _ in range(200):
                self.wfile.write(frame)
        except OSError:
            pass

    do_HEAD = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def icy_url() -> Iterator[str]:
    """URL of a small Icecast-like MP3 stream on 127.0.0.1."""
    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), _IcyHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/live"
    srv.shutdown()
    srv.server_close()


def test_test_url_and_station_test(api: str, icy_url: str) -> None:
    """test-url and /<id>/test probe a real local stream; a closed port is a failed test."""
    resp = http.post(f"{api}/test-url", json={"stream_url": icy_url})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["stream_url"] == icy_url
    test = body["connection_test"]
    assert test["success"] is True and isinstance(test["message"], str)
    assert "audio/mpeg" in (test.get("content_type") or "")
    assert test.get("icy_name") == "Test FM"

    st = create(api, stream_url=icy_url)
    body = http.post(f"{api}/{st['id']}/test").json()
    assert body["stream_id"] == st["id"] and body["connection_test"]["success"] is True

    dead = f"http://127.0.0.1:{free_port()}/x"
    body = http.post(f"{api}/test-url", json={"stream_url": dead}).json()
    assert body["connection_test"]["success"] is False
    body = http.post(f"{api}/test-url", json={"stream_url": icy_url[:-4] + "nope"}).json()
    assert body["connection_test"]["success"] is False


def test_test_url_rejects_bad_urls(api: str) -> None:
    """test-url validates the URL (400) before connecting."""
    for body in ({"stream_url": "file:///etc/passwd"}, {"stream_url": ""}, {}):
        assert_error(http.post(f"{api}/test-url", json=body), 400)


# --------------------------------------------------------------------------- record now


@pytest.mark.parametrize("body", [{}, {"duration_seconds": 0}, {"duration_seconds": -5},
                                  {"duration_seconds": 90000}, {"duration_seconds": "x"}])
def test_record_now_bad_durations_are_400(api: str, body: dict[str, Any]) -> None:
    """Record-now requires a positive duration of at most a day."""
    st = create(api)
    assert_error(http.post(f"{api}/{st['id']}/record", json=body), 400)


def test_split_tracks_defaults_to_the_setting(rec_settings: Any, live_server: Any) -> None:
    """SPLIT_TRACKS=true makes split_tracks the default of new stations (API and the new
    station form); a station that says split_tracks=false keeps it."""
    from taperoom.recorder.app import create_app
    from taperoom.recorder.context import build_services

    services = build_services(rec_settings(split_tracks=True))
    try:
        base = live_server(create_app(services=services)).url
        api = f"{base}/api/streams"
        assert create(api)["split_tracks"] is True
        assert create(api, name="Other", split_tracks=False)["split_tracks"] is False
        form = http.get(f"{base}/streams/new").text
        assert 'id="split_tracks" name="split_tracks" type="checkbox" checked' in form
    finally:
        services.close()


# --------------------------------------------------------------------------- file name pattern


@pytest.mark.parametrize("pattern", ["{name:d}.mp3", "{name!r}.mp3", "{name:_>50000000}.mp3"])
def test_pattern_with_format_spec_is_refused_when_saved(api: str, pattern: str) -> None:
    """A pattern with a format spec or a conversion is refused on create, on update and in
    an import (the contract's 400 validation error, naming the field and saying why),
    and nothing is saved; the original accepted it and failed after the capture."""
    body = assert_error(http.post(api, json={**STATION, "output_filename_pattern": pattern}),
                        400)
    detail = body["details"][0]
    assert detail["field"] == "output_filename_pattern"
    assert "format spec" in detail["message"], detail
    st = create(api)
    body = assert_error(http.put(f"{api}/{st['id']}", json={"output_filename_pattern": pattern}),
                        400)
    assert "format spec" in body["details"][0]["message"]
    assert http.get(f"{api}/{st['id']}").json()["output_filename_pattern"] == "{date}_{name}.mp3"
    result = http.post(f"{api}/import", json={"streams": [
        {**STATION, "name": "Imported", "output_filename_pattern": pattern}]}).json()
    assert result["imported_streams"] == 0 and "format spec" in str(result["errors"])
    assert [s["name"] for s in http.get(api).json()] == ["KUVO Jazz"]
