"""/api/backup on a real server: create, list, validate, restore and delete real zip files,
with artwork; tampered and foreign archives and path-traversal names are refused."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

http = httpx.Client(timeout=30)
STATION = {"stream_url": "http://127.0.0.1:9/live", "artist": "Artist", "album": "Album",
           "album_artist": "Album Artist", "scp_destination": "u@127.0.0.1:/srv/"}


@pytest.fixture
def base(rec_server: Any) -> str:
    """Base URL of the server."""
    return rec_server.url


def assert_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    """The response has `status` and the contract's error body."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status_code"] == status and "error" in body and "message" in body
    return body


def jpeg() -> bytes:
    """A real JPEG made with Pillow."""
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (10, 120, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def populate(base: str) -> dict[str, Any]:
    """Two stations (one with artwork) and three schedules; returns their ids."""
    a = http.post(f"{base}/api/streams", json={**STATION, "name": "Alpha"}).json()
    b = http.post(f"{base}/api/streams", json={**STATION, "name": "Beta",
                                               "output_filename_pattern": "{album}.mp3"}).json()
    art = http.post(f"{base}/api/streams/{a['id']}/artwork",
                    files={"artwork": ("cover.jpg", jpeg(), "image/jpeg")}).json()
    s = [http.post(f"{base}/api/schedules", json={
        "stream_config_id": sid, "cron_expression": cron, "duration_minutes": 30}).json()
        for sid, cron in ((a["id"], "0 21 * * *"), (a["id"], "0 6 * * 1"), (b["id"], "5 4 * * *"))]
    return {"alpha": a, "beta": b, "artwork": art, "schedules": s}


def create(base: str, **body: Any) -> dict[str, Any]:
    """POST /api/backup/create; asserts 201."""
    resp = http.post(f"{base}/api/backup/create", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_create_list_validate_delete(base: str, rec_services: Any) -> None:
    """A backup holds metadata, the export document and the artwork; list, validate, delete."""
    populate(base)
    b = create(base)
    assert b["success"] is True and b["streams_count"] == 2 and b["schedules_count"] == 3
    assert b["include_artwork"] is True
    assert b["backup_filename"].startswith("backup_") and b["backup_filename"].endswith(".zip")
    assert len(b["backup_filename"]) == len("backup_YYYYMMDD_HHMMSS.zip")
    assert b["backup_name"] == b["backup_filename"][:-4]
    path = Path(b["backup_path"])
    assert path.parent == rec_services.settings.backups_dir.resolve()
    assert path.stat().st_size == b["file_size_bytes"]
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        meta = json.loads(zf.read("metadata.json"))
        doc = json.loads(zf.read("configuration.json"))
        art_name = next(n for n in names if n.startswith("artwork/"))
        assert zf.read(art_name) == jpeg()
    assert {"metadata.json", "configuration.json"} <= names
    assert meta["version"] == "1.0" and meta["streams_count"] == 2
    assert meta["include_artwork"] is True and meta["created_at"] == b["created_at"]
    assert [s["name"] for s in doc["streams"]] == ["Alpha", "Beta"]

    listed = http.get(f"{base}/api/backup/list").json()
    assert [x["filename"] for x in listed] == [b["backup_filename"]]
    assert listed[0]["valid"] is True and listed[0]["metadata"]["streams_count"] == 2
    assert listed[0]["file_size_bytes"] == b["file_size_bytes"]

    v = http.post(f"{base}/api/backup/validate", json={"backup_filename": b["backup_filename"]})
    assert v.status_code == 200 and v.json()["valid"] is True and v.json()["errors"] == []

    named = create(base, backup_name="before-upgrade", include_artwork=False)
    assert named["backup_filename"] == "before-upgrade.zip"
    with zipfile.ZipFile(named["backup_path"]) as zf:
        assert not [n for n in zf.namelist() if n.startswith("artwork/")]
    assert_error(http.post(f"{base}/api/backup/create",
                           json={"backup_name": "before-upgrade"}), 409)

    resp = http.request("DELETE", f"{base}/api/backup/delete",
                        json={"backup_filename": b["backup_filename"]})
    assert resp.status_code == 200 and resp.json()["success"] is True
    assert not path.exists()
    assert [x["filename"] for x in http.get(f"{base}/api/backup/list").json()] == [
        "before-upgrade.zip"]
    assert_error(http.request("DELETE", f"{base}/api/backup/delete",
                              json={"backup_filename": b["backup_filename"]}), 404)


def test_restore_into_empty_recorder(base: str, rec_settings: Any, live_server: Any,
                                     tmp_path: Path) -> None:
    """Restoring into a fresh recorder recreates stations, schedules, jobs and artwork."""
    populate(base)
    b = create(base)
    from taperoom.recorder.app import create_app
    from taperoom.recorder.context import build_services

    services2 = build_services(rec_settings(data_dir=tmp_path / "d2", artwork_dir=tmp_path / "a2"))
    try:
        srv = live_server(create_app(services=services2))
        http.post(f"{srv.url}/api/streams", json={**STATION, "name": "Zeta"})  # shifts ids
        services2.settings.backups_dir.mkdir(parents=True, exist_ok=True)
        (services2.settings.backups_dir / b["backup_filename"]).write_bytes(
            Path(b["backup_path"]).read_bytes())
        resp = http.post(f"{srv.url}/api/backup/restore",
                         json={"backup_filename": b["backup_filename"]})
        assert resp.status_code == 200, resp.text
        r = resp.json()
        assert r["success"] is True and r["errors"] == []
        assert (r["restored_streams"], r["restored_schedules"], r["restored_artwork"]) == (2, 3, 1)
        streams = {s["name"]: s for s in http.get(f"{srv.url}/api/streams").json()}
        alpha = streams["Alpha"]
        assert alpha["artwork_path"] == f"artwork/stream_{alpha['id']}_cover.jpg"
        assert (tmp_path / "a2" / f"stream_{alpha['id']}_cover.jpg").read_bytes() == jpeg()
        assert streams["Beta"]["output_filename_pattern"] == "{album}.mp3"
        scheds = http.get(f"{srv.url}/api/schedules").json()
        assert sorted((s["stream_config_id"], s["cron_expression"]) for s in scheds) == sorted(
            [(alpha["id"], "0 21 * * *"), (alpha["id"], "0 6 * * 1"),
             (streams["Beta"]["id"], "5 4 * * *")])
        assert all(services2.scheduler.next_run(s["id"]) is not None for s in scheds)
    finally:
        services2.close()


def test_restore_merges_by_name(base: str, rec_services: Any) -> None:
    """Without overwrite, existing stations are skipped; with it, they take the backup's
    fields and schedules (no duplicates after two restores)."""
    ids = populate(base)
    b = create(base)
    alpha = ids["alpha"]["id"]
    http.put(f"{base}/api/streams/{alpha}", json={"album": "Changed"})
    http.delete(f"{base}/api/streams/{ids['beta']['id']}")

    r = http.post(f"{base}/api/backup/restore",
                  json={"backup_filename": b["backup_filename"]}).json()
    assert (r["restored_streams"], r["skipped_streams"], r["updated_streams"]) == (1, 1, 0)
    assert r["restored_schedules"] == 1 and r["skipped_schedules"] == 2
    assert http.get(f"{base}/api/streams/{alpha}").json()["album"] == "Changed"

    for _ in range(2):
        r = http.post(f"{base}/api/backup/restore",
                      json={"backup_filename": b["backup_filename"],
                            "overwrite_existing": True}).json()
        assert r["updated_streams"] == 2 and r["restored_streams"] == 0, r
    assert http.get(f"{base}/api/streams/{alpha}").json()["album"] == "Album"
    scheds = http.get(f"{base}/api/schedules").json()
    assert len(scheds) == 3
    assert rec_services.scheduler.job_ids() == {s["id"] for s in scheds}


def test_tampered_and_foreign_archives_are_422(base: str, rec_services: Any) -> None:
    """A damaged zip, a non-zip, a zip without metadata and a schema-invalid document are
    refused by validate and restore with 422, and restore changes nothing."""
    populate(base)
    b = create(base)
    folder = rec_services.settings.backups_dir
    raw = bytearray(Path(b["backup_path"]).read_bytes())
    # flip bytes inside the compressed configuration.json (after its local header)
    start = raw.find(b"configuration.json") + len("configuration.json") + 20
    for i in range(start, start + 40):
        raw[i] ^= 0xFF
    (folder / "tampered.zip").write_bytes(bytes(raw))
    (folder / "truncated.zip").write_bytes(bytes(raw[: len(raw) // 2]))
    (folder / "notazip.zip").write_bytes(b"PK\x03\x04 this is not really a zip file")
    with zipfile.ZipFile(folder / "nometa.zip", "w") as zf:
        zf.writestr("configuration.json", "{}")
    with zipfile.ZipFile(folder / "badschema.zip", "w") as zf:
        zf.writestr("metadata.json", json.dumps({"version": "1.0", "streams_count": 1,
                                                 "schedules_count": 1}))
        zf.writestr("configuration.json", json.dumps({
            "version": "1.0", "streams": [{"name": "", "stream_url": "gopher://x"}],
            "schedules": [{"stream_config_id": 5, "cron_expression": "x",
                           "duration_minutes": 5}]}))
    with zipfile.ZipFile(folder / "slip.zip", "w") as zf:
        zf.writestr("metadata.json", json.dumps({"version": "1.0"}))
        zf.writestr("configuration.json", json.dumps({"version": "1.0", "streams": [],
                                                      "schedules": []}))
        zf.writestr("artwork/../../evil.jpg", jpeg())
    before = http.get(f"{base}/api/streams/export").json()
    for name in ("tampered.zip", "truncated.zip", "notazip.zip", "nometa.zip",
                 "badschema.zip", "slip.zip"):
        resp = http.post(f"{base}/api/backup/validate", json={"backup_filename": name})
        assert resp.status_code == 422, (name, resp.text)
        body = resp.json()
        assert body["valid"] is False and body["errors"], name
        assert_error(http.post(f"{base}/api/backup/restore",
                               json={"backup_filename": name, "overwrite_existing": True}), 422)
    after = http.get(f"{base}/api/streams/export").json()
    assert after["streams"] == before["streams"] and after["schedules"] == before["schedules"]
    assert not (rec_services.settings.data_dir / "evil.jpg").exists()
    listed = {x["filename"]: x["valid"] for x in http.get(f"{base}/api/backup/list").json()}
    assert listed[b["backup_filename"]] is True
    assert not any(v for k, v in listed.items() if k != b["backup_filename"])


@pytest.mark.parametrize("name", ["../recorder.db", "../../etc/passwd", "/etc/passwd",
                                  "sub/x.zip", "..\\x.zip", "..", ".hidden.zip",
                                  "backup.txt", ""])
def test_path_traversal_names_are_400(base: str, rec_services: Any, name: str) -> None:
    """File names with a path part, hidden or non-zip names are 400 on every route."""
    db_file = rec_services.settings.data_dir / "recorder.db"
    assert db_file.exists()
    for method, route in (("POST", "validate"), ("POST", "restore"), ("DELETE", "delete")):
        resp = http.request(method, f"{base}/api/backup/{route}",
                            json={"backup_filename": name})
        assert_error(resp, 400)
    assert db_file.exists()


def test_unknown_backup_is_404(base: str) -> None:
    """A well-formed name of a missing backup is 404 on validate, restore and delete."""
    for method, route in (("POST", "validate"), ("POST", "restore"), ("DELETE", "delete")):
        assert_error(http.request(method, f"{base}/api/backup/{route}",
                                  json={"backup_filename": "backup_20990101_000000.zip"}), 404)


@pytest.mark.parametrize("body", [{"backup_name": "../up"}, {"backup_name": "a/b"},
                                  {"backup_name": "x" * 101}, {"include_artwork": "lots"}])
def test_bad_create_bodies_are_400(base: str, body: dict[str, Any]) -> None:
    """Backup names with path characters or bad types are 400."""
    assert_error(http.post(f"{base}/api/backup/create", json=body), 400)


def test_bad_bodies_are_400(base: str) -> None:
    """Missing or malformed bodies on validate/restore/delete are 400."""
    for method, route in (("POST", "validate"), ("POST", "restore"), ("DELETE", "delete")):
        assert_error(http.request(method, f"{base}/api/backup/{route}", json={}), 400)
        assert_error(http.request(method, f"{base}/api/backup/{route}", content=b"{bad",
                                  headers={"Content-Type": "application/json"}), 400)


def test_auto_create_keeps_ten(base: str, rec_services: Any) -> None:
    """auto-create writes auto_backup_*.zip (201) and keeps only the newest ten."""
    folder = rec_services.settings.backups_dir
    for i in range(11):
        with zipfile.ZipFile(folder / f"auto_backup_2020010{i // 10}_00000{i % 10}.zip",
                             "w") as zf:
            zf.writestr("metadata.json", "{}")
    resp = http.post(f"{base}/api/backup/auto-create")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["backup_filename"].startswith("auto_backup_") and body["success"] is True
    autos = sorted(p.name for p in folder.glob("auto_backup_*.zip"))
    assert len(autos) == 10 and body["backup_filename"] in autos
    assert len(body["removed_backups"]) == 2
