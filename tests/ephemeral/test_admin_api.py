"""The curator's JSON API (/admin/api/...) and sign-in, on a real server on 127.0.0.1,
with real recordings from the shared corpus."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from taperoom.ephemeral.app import create_app
from taperoom.ephemeral.names import track_key
from taperoom.ephemeral.settings import EphemeralSettings
from tests.ephemeral.test_api import Api
from tests.wavgen import tone, write_wav

TOKEN = "curator-secret"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
TAGGED = ("scanner", "real_music_tagged")
WAV = "06 - John Garner - Partita No. 1 in B minor: Tempo di Borea (BWV1002).wav"
MP3 = "08 - Maxstack - A New Journey.mp3"


@dataclass
class Admin(Api):
    """A running ephemeral server with the curator's page."""

    def upload(self, name: str, data: bytes, headers: dict[str, str] | None = None
               ) -> httpx.Response:
        return self.client.post("/admin/api/tracks", files={"file": (name, data)},
                                headers=BEARER if headers is None else headers)

    def names(self) -> list[str]:
        r = self.client.get("/admin/api/tracks", headers=BEARER)
        assert r.status_code == 200, r.text
        return [t["filename"] for t in r.json()]

    def sign_in(self, client: httpx.Client | None = None, token: str = TOKEN
                ) -> httpx.Response:
        """GET the form, POST it back with its CSRF token; the POST's answer."""
        c = client or self.client
        page = c.get("/admin")
        assert page.status_code == 200
        form_token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert form_token is not None
        return c.post("/admin/login", data={"csrf_token": form_token.group(1), "token": token})

    def csrf(self, client: httpx.Client | None = None) -> str:
        """The session's CSRF token, from the page's meta tag."""
        page = (client or self.client).get("/admin")
        found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
        assert found is not None, page.text[:300]
        return found.group(1)


@pytest.fixture
def admin(eph_settings: Callable[..., EphemeralSettings],
          live_server: Callable[[Any], Any]) -> Iterator[Callable[..., Admin]]:
    """Start an ephemeral server (ADMIN_TOKEN set, KEEP_ORIGINALS on unless overridden)."""
    clients: list[httpx.Client] = []

    def start(**overrides: Any) -> Admin:
        values = {"admin_token": TOKEN, "keep_originals": True, "degrade_rate_limit": "off",
                  **overrides}
        settings = eph_settings(**values)
        srv = live_server(create_app(settings))
        client = httpx.Client(base_url=srv.url, timeout=30)
        clients.append(client)
        return Admin(srv.url, client, settings)

    yield start
    for c in clients:
        c.close()


def _real(corpus: Path, name: str) -> bytes:
    return corpus.joinpath(*TAGGED, name).read_bytes()


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m)
            out[m.name] = f.read() if f is not None else b""
        return out


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


# -- no ADMIN_TOKEN --------------------------------------------------------------


def test_without_admin_token_the_curators_page_does_not_exist(
        admin: Callable[..., Admin]) -> None:
    """No ADMIN_TOKEN: /admin, its sign-in and every /admin/api route are 404 with the
    app's error body, whatever credentials are sent; none is in /openapi.json."""
    a = admin(admin_token="")
    for method, path in (("GET", "/admin"), ("POST", "/admin/login"), ("POST", "/admin/logout"),
                         ("GET", "/admin/api/tracks"), ("POST", "/admin/api/tracks"),
                         ("PUT", "/admin/api/tracks/a.wav"), ("GET", "/admin/api/backup"),
                         ("POST", "/admin/api/restore")):
        for headers in ({}, BEARER, {"Authorization": "Bearer x"}):
            r = a.client.request(method, path, headers=headers)
            assert r.status_code == 404, (method, path, r.status_code)
            assert r.json() == {"error": "Not Found"}
    paths = a.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/admin")]


# -- bearer token ------------------------------------------------------------------


def test_api_needs_the_token_or_a_session(admin: Callable[..., Admin]) -> None:
    """Without credentials 401; a wrong bearer token 401; the right one 200; a page
    visitor's cookie-less change 401 too."""
    a = admin()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer"},
                    {"Authorization": "Basic Y3VyYXRvcjpzZWNyZXQ="}):
        r = a.client.get("/admin/api/tracks", headers=headers)
        assert r.status_code == 401, headers
        assert set(r.json()) == {"error"}
    assert a.client.get("/admin/api/tracks", headers=BEARER).json() == []
    assert a.client.put("/admin/api/tracks/a.wav", json={"wear_model": "lowpass"}
                        ).status_code == 401


def test_wrong_bearer_tokens_are_rate_limited(admin: Callable[..., Admin]) -> None:
    """Failed tokens count like failed sign-ins: over the limit even the right token is
    refused with 429 and Retry-After."""
    a = admin(admin_login_rate_limit="3/minute")
    for _ in range(3):
        assert a.client.get("/admin/api/tracks", headers={"Authorization": "Bearer no"}
                            ).status_code == 401
    r = a.client.get("/admin/api/tracks", headers=BEARER)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1


# -- upload ------------------------------------------------------------------------


def test_upload_a_real_wav_makes_a_track(admin: Callable[..., Admin], corpus: Path) -> None:
    """A real WAV recording uploaded as multipart becomes a track: 201 with its row, its
    bytes unchanged, metadata and a pristine copy made; /tracks lists it."""
    a = admin()
    data = _real(corpus, WAV)
    r = a.upload(WAV, data)
    assert r.status_code == 201, r.text
    row = r.json()
    assert row["filename"] == WAV
    assert row["pristine"] is True and row["wear_model"] == "dropout"
    assert row["own_wear_model"] is False
    assert (a.audio / WAV).read_bytes() == data
    assert (a.meta / "tracks" / f"{track_key(WAV)}.json").is_file()
    assert (a.meta / "pristine" / track_key(WAV)).read_bytes() == data
    assert [t["filename"] for t in a.client.get("/tracks").json()] == [WAV]
    assert not [p for p in a.audio.iterdir() if p.name.startswith(".")]


def test_upload_of_another_format_is_converted(admin: Callable[..., Admin],
                                               corpus: Path) -> None:
    """A real MP3 is decoded through the intake's conversion into <stem>.wav."""
    a = admin()
    r = a.upload(MP3, _real(corpus, MP3))
    assert r.status_code == 201, r.text
    name = MP3.removesuffix(".mp3") + ".wav"
    assert r.json()["filename"] == name
    assert 20 < r.json()["duration"] < 40
    assert (a.audio / name).read_bytes()[:4] == b"RIFF"
    assert a.names() == [name]


def test_upload_refusals(admin: Callable[..., Admin], corpus: Path) -> None:
    """409 for an existing name; 400 for a file that is not audio, a bad extension, a
    missing file part or a non-multipart body; names are confined and cleaned; 413
    over ADMIN_UPLOAD_MAX_BYTES. Nothing is left behind in AUDIO_DIR."""
    a = admin(admin_upload_max_bytes=2_000_000)
    small = write_wav(a.meta / "small.wav", tone(1.0, 8000, 1), rate=8000).read_bytes()
    raw = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="../../etc/ '
           b'.x\x07y.wav"\r\n\r\n' + small + b"\r\n--B--\r\n")
    r = a.client.post("/admin/api/tracks", content=raw, headers={
        **BEARER, "Content-Type": "multipart/form-data; boundary=B"})
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "xy.wav"
    r = a.upload("..\\xy.wav", small)
    assert r.status_code == 409
    assert r.json() == {"error": "A track named 'xy.wav' exists"}
    for name, body in (("fake.wav", b"RIFF" + b"\x00" * 100), ("fake.mp3", b"not audio" * 50),
                       ("notes.txt", small), ("...", small), (".wav", small)):
        r = a.upload(name, body)
        assert r.status_code == 400, (name, r.text)
        assert set(r.json()) == {"error"}
    r = a.client.post("/admin/api/tracks", data={"other": "x"}, headers=BEARER)
    assert r.status_code == 400
    r = a.client.post("/admin/api/tracks", content=small, headers={
        **BEARER, "Content-Type": "audio/wav"})
    assert r.status_code == 400
    big = _real(corpus, WAV)
    assert len(big) > 2_000_000
    r = a.upload("big.wav", big)
    assert r.status_code == 413
    assert "ADMIN_UPLOAD_MAX_BYTES" in r.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is met while reading
        boundary = b"XyZ"
        yield (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
               b'filename="big.wav"\r\n\r\n')
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]
        yield b"\r\n--" + boundary + b"--\r\n"

    r = a.client.post("/admin/api/tracks", content=chunks(), headers={
        **BEARER, "Content-Type": "multipart/form-data; boundary=XyZ"})
    assert r.status_code == 413
    assert sorted(p.name for p in a.audio.iterdir()) == ["xy.wav"]


# -- wear model, reset, delete -------------------------------------------------------


def test_wear_model_reset_and_delete(admin: Callable[..., Admin], corpus: Path) -> None:
    """PUT sets the wear model (GET /wear-models names); reset restores the pristine
    bytes and zeroes counts; delete removes the track and its own files."""
    a = admin(degradation_rate=50.0)
    data = _real(corpus, WAV)
    assert a.upload(WAV, data).status_code == 201
    path = f"/admin/api/tracks/{quote(WAV)}"
    models = [m["name"] for m in a.client.get("/wear-models").json()]
    assert "lowpass" in models
    r = a.client.put(path, json={"wear_model": "lowpass"}, headers=BEARER)
    assert r.status_code == 200, r.text
    assert (r.json()["wear_model"], r.json()["own_wear_model"]) == ("lowpass", True)
    assert json.loads((a.meta / "tracks" / f"{track_key(WAV)}.json").read_text())[
        "wear_model"] == "lowpass"
    assert a.client.put(path, json={"wear_model": "nope"}, headers=BEARER).status_code == 400
    assert a.client.put(path, json={}, headers=BEARER).status_code == 400
    assert a.client.put("/admin/api/tracks/missing.wav", json={"wear_model": "lowpass"},
                        headers=BEARER).status_code == 404
    for _ in range(3):
        for i in range(4):
            assert a.client.post(f"/degrade/{quote(WAV)}", json={"segment_index": i}
                                 ).status_code == 200
    assert (a.audio / WAV).read_bytes() != data
    r = a.client.post(f"{path}/reset", headers=BEARER)
    assert r.status_code == 200, r.text
    assert r.json()["overall_degradation"] == 0.0
    assert r.json()["wear_model"] == "lowpass"
    assert (a.audio / WAV).read_bytes() == data
    r = a.client.delete(path, headers=BEARER)
    assert r.status_code == 200
    assert r.json() == {"deleted": WAV}
    assert not (a.audio / WAV).exists()
    assert not (a.meta / "tracks" / f"{track_key(WAV)}.json").exists()
    assert not (a.meta / "pristine" / track_key(WAV)).exists()
    assert a.client.delete(path, headers=BEARER).status_code == 404
    assert a.client.get(f"/stats/{quote(WAV)}").status_code == 404


def test_reset_without_a_pristine_copy_is_404(admin: Callable[..., Admin]) -> None:
    """KEEP_ORIGINALS off: the row says pristine false and reset answers 404."""
    a = admin(keep_originals=False)
    small = write_wav(a.meta / "s.wav", tone(1.0, 8000, 1), rate=8000).read_bytes()
    assert a.upload("s.wav", small).json()["pristine"] is False
    assert a.client.post("/admin/api/tracks/s.wav/reset", headers=BEARER).status_code == 404


# -- backup and restore ----------------------------------------------------------------


def test_backup_and_restore_round_trip(admin: Callable[..., Admin], corpus: Path) -> None:
    """A backup holds every track's audio, metadata and pristine copy with a manifest;
    restoring it after changes brings back exactly that state (worn bytes, counts, wear
    model) and removes tracks added since."""
    a = admin(degradation_rate=50.0)
    data = _real(corpus, WAV)
    assert a.upload(WAV, data).status_code == 201
    small = write_wav(a.meta / "s.wav", tone(2.0, 8000, 2), rate=8000).read_bytes()
    assert a.upload("s é.wav", small).status_code == 201
    a.client.put(f"/admin/api/tracks/{quote(WAV)}", json={"wear_model": "bitcrush"},
                 headers=BEARER)
    for _ in range(3):
        a.client.post(f"/degrade/{quote(WAV)}", json={"segment_index": 1})
    worn = (a.audio / WAV).read_bytes()
    counts = a.client.get(f"/stats/{quote(WAV)}").json()["segment_play_counts"]
    r = a.client.get("/admin/api/backup", headers=BEARER)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-tar"
    assert "attachment" in r.headers["content-disposition"]
    archive = r.content
    members = _members(archive)
    assert members[f"audio/{WAV}"] == worn
    assert members[f"metadata/pristine/{track_key(WAV)}"] == data
    assert set(members) == {f"audio/{WAV}", "audio/s é.wav", "manifest.json",
                            f"metadata/tracks/{track_key(WAV)}.json",
                            f"metadata/tracks/{track_key('s é.wav')}.json",
                            f"metadata/pristine/{track_key(WAV)}",
                            f"metadata/pristine/{track_key('s é.wav')}"}
    assert not list(a.meta.joinpath(".admin").glob(".backup-*"))

    a.client.post(f"/admin/api/tracks/{quote(WAV)}/reset", headers=BEARER)
    a.client.delete(f"/admin/api/tracks/{quote('s é.wav')}", headers=BEARER)
    assert a.upload("later.wav", small).status_code == 201
    r = a.client.post("/admin/api/restore", content=archive,
                      headers={**BEARER, "Content-Type": "application/x-tar"})
    assert r.status_code == 200, r.text
    assert r.json() == {"restored": sorted([WAV, "s é.wav"]), "removed": ["later.wav"]}
    assert a.names() == sorted([WAV, "s é.wav"])
    assert (a.audio / WAV).read_bytes() == worn
    assert a.client.get(f"/stats/{quote(WAV)}").json()["segment_play_counts"] == counts
    rows = {t["filename"]: t for t in a.client.get("/admin/api/tracks", headers=BEARER).json()}
    assert rows[WAV]["wear_model"] == "bitcrush"
    assert not (a.audio / "later.wav").exists()
    assert not [p for p in a.audio.iterdir() if p.name.startswith(".")]
    assert not (a.meta / ".admin" / "restore.json").exists()
    # the restored pristine copy still resets the track
    assert a.client.post(f"/admin/api/tracks/{quote(WAV)}/reset", headers=BEARER
                         ).status_code == 200
    assert (a.audio / WAV).read_bytes() == data


def _valid_archive(a: Admin) -> bytes:
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    archive = a.client.get("/admin/api/backup", headers=BEARER).content
    (a.audio / "a.wav").unlink()
    return archive


def test_malformed_archives_are_400_and_change_nothing(admin: Callable[..., Admin]) -> None:
    """Junk, path escapes, links, unexpected or unlisted members, digests that do not
    match, metadata that does not fit: 400, and the tracks stay as they were."""
    a = admin()
    archive = _valid_archive(a)
    members = _members(archive)
    write_wav(a.audio / "keep.wav", tone(1.0, 8000, 1), rate=8000)
    before = a.names()

    def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
        return tarfile.TarInfo(name), data

    def link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        return info, None

    good = [regular(n, d) for n, d in members.items()]
    bad_manifest = json.loads(members["manifest.json"])
    bad_manifest["tracks"][0]["audio"]["sha256"] = "0" * 64
    cases = {
        "junk": b"this is not a tar archive" * 100,
        "escape": _tar([*good, regular("../escape.wav", b"x")]),
        "absolute": _tar([*good, regular("/tmp/x.wav", b"x")]),
        "dotdot inside": _tar([*good, regular("audio/../../x.wav", b"x")]),
        "symlink": _tar([*good, link("audio/l.wav", "/etc/passwd", tarfile.SYMTYPE)]),
        "hard link": _tar([*good, link("audio/h.wav", "audio/a.wav", tarfile.LNKTYPE)]),
        "unexpected": _tar([*good, regular("metadata/other.json", b"{}")]),
        "unlisted": _tar([*good, regular("audio/extra.wav", members["audio/a.wav"])]),
        "digest": _tar([*[g for g in good if g[0].name != "manifest.json"],
                        regular("manifest.json", json.dumps(bad_manifest).encode())]),
        "no manifest": _tar([g for g in good if g[0].name != "manifest.json"]),
        "bad metadata": _tar([*[g for g in good if not g[0].name.startswith("metadata/t")],
                              regular(f"metadata/tracks/{track_key('a.wav')}.json",
                                      b'{"filename": "a.wav"}')]),
        "truncated": archive[:len(archive) // 2],
    }
    for case, body in cases.items():
        r = a.client.post("/admin/api/restore", content=body,
                          headers={**BEARER, "Content-Type": "application/x-tar"})
        assert r.status_code == 400, (case, r.status_code, r.text)
        assert set(r.json()) == {"error"}, case
        assert a.names() == before, case
    assert not (a.audio.parent / "escape.wav").exists()
    assert not [p for p in a.audio.iterdir() if p.name.startswith(".")]
    assert not [p for p in (a.meta / ".admin").iterdir() if p.name.startswith(".")]
    r = a.client.post("/admin/api/restore", content=b"", headers=BEARER)
    assert r.status_code == 400


def test_restore_over_the_size_limit_is_413(admin: Callable[..., Admin]) -> None:
    """An archive over ADMIN_RESTORE_MAX_BYTES: 413 before it is read."""
    a = admin(admin_restore_max_bytes=4096)
    archive = _valid_archive(a)
    assert len(archive) > 4096
    r = a.client.post("/admin/api/restore", content=archive, headers=BEARER)
    assert r.status_code == 413


def test_interrupted_restore_is_finished_at_the_next_start(
        admin: Callable[..., Admin], eph_settings: Callable[..., EphemeralSettings]) -> None:
    """A restore whose journal was written but not applied (a crash) is rolled forward
    when the app is built again."""
    from taperoom.ephemeral.admin.archive import read_archive, write_plan
    from taperoom.ephemeral.context import build_services

    a = admin()
    archive = _valid_archive(a)
    write_wav(a.audio / "old.wav", tone(1.0, 8000, 1), rate=8000)
    (a.meta / "arch.tar").write_bytes(archive)
    services = build_services(a.settings)
    try:
        assert services.curator is not None
        store = services.store
        plan = read_archive(a.meta / "arch.tar", store, store.audio_dir / ".restore-x",
                            services.curator.work_dir / ".restore-x")
        plan.remove = ["old.wav"]
        write_plan(services.curator.journal, plan, fsync=False)  # then "crash"
    finally:
        services.close()
    assert (a.audio / "old.wav").exists()
    services = build_services(a.settings)
    services.close()
    assert sorted(p.name for p in a.audio.iterdir()) == ["a.wav"]
    assert not (a.meta / ".admin" / "restore.json").exists()


# -- the session cookie and CSRF -------------------------------------------------------


def test_sign_in_sets_a_strict_session_cookie_and_csrf_guards_changes(
        admin: Callable[..., Admin]) -> None:
    """The form's sign-in sets an HttpOnly, SameSite=Strict cookie with a lifetime;
    cookie-authenticated changes need the page's CSRF token (403 without, or with
    another); reads do not; signing out revokes the cookie everywhere."""
    a = admin(admin_session_minutes=30)
    write_wav(a.audio / "a.wav", tone(1.0, 8000, 1), rate=8000)
    r = a.sign_in()
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    cookie = r.headers["set-cookie"]
    assert "taperoom_ephemeral_admin=" in cookie
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/admin", "Max-Age=1800"):
        assert attribute.lower() in cookie.lower(), cookie
    value = a.client.cookies.get("taperoom_ephemeral_admin")
    assert value
    assert a.client.get("/admin/api/tracks").status_code == 200
    csrf = a.csrf()
    body = {"wear_model": "lowpass"}
    for headers in ({}, {"X-CSRF-Token": "forged"}, {"X-CSRF-Token": ""}):
        r = a.client.put("/admin/api/tracks/a.wav", json=body, headers=headers)
        assert r.status_code == 403, headers
        assert "CSRF" in r.json()["error"]
    r = a.client.put("/admin/api/tracks/a.wav", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    # a token of another session does not do
    other = httpx.Client(base_url=a.url, timeout=10)
    try:
        a.sign_in(other)
        assert a.csrf(other) != csrf
        assert other.put("/admin/api/tracks/a.wav", json=body,
                         headers={"X-CSRF-Token": csrf}).status_code == 403
    finally:
        other.close()
    # a forged cookie is no session
    forged = httpx.Client(base_url=a.url, timeout=10,
                          cookies={"taperoom_ephemeral_admin": value[:-2] + "xx"})
    try:
        assert forged.get("/admin/api/tracks").status_code == 401
    finally:
        forged.close()
    assert a.client.post("/admin/logout", data={"csrf_token": "wrong"}).status_code == 403
    r = a.client.post("/admin/logout", data={"csrf_token": csrf})
    assert r.status_code == 303
    stolen = httpx.Client(base_url=a.url, timeout=10, cookies={"taperoom_ephemeral_admin": value})
    try:
        assert stolen.get("/admin/api/tracks").status_code == 401
    finally:
        stolen.close()


def test_sign_in_refusals(admin: Callable[..., Admin]) -> None:
    """A wrong token is 401; a form without its CSRF cookie 403; after
    ADMIN_LOGIN_RATE_LIMIT failures even the right token is 429."""
    a = admin(admin_login_rate_limit="3/minute")
    r = a.sign_in(token="wrong")
    assert r.status_code == 401
    assert "Wrong token" in r.text
    assert "taperoom_ephemeral_admin=" not in r.headers.get("set-cookie", "")
    fresh = httpx.Client(base_url=a.url, timeout=10)
    try:
        r = fresh.post("/admin/login", data={"csrf_token": "x", "token": TOKEN})
        assert r.status_code == 403
    finally:
        fresh.close()
    assert a.sign_in(token="wrong").status_code == 401
    assert a.sign_in(token="wrong").status_code == 401
    r = a.sign_in()
    assert r.status_code == 429
    assert "retry-after" in r.headers


def test_expired_session_is_refused(admin: Callable[..., Admin]) -> None:
    """A cookie older than ADMIN_SESSION_MINUTES is no session (its signed time stamp
    is checked, whatever the browser keeps)."""
    import time

    a = admin(admin_session_minutes=1 / 60)  # one second
    assert a.sign_in().status_code == 303
    assert a.client.get("/admin/api/tracks").status_code == 200
    deadline = time.monotonic() + 10
    while a.client.get("/admin/api/tracks").status_code == 200:
        assert time.monotonic() < deadline, "the session never expired"
        time.sleep(0.2)
    assert a.client.get("/admin/api/tracks").status_code == 401
