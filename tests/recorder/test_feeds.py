"""Podcast feeds on a real recorder server on 127.0.0.1 with a real SQLite database:
feeds read back by a third-party reader (feedparser), every enclosure fetched with
ranged requests, tokens (missing, wrong, rotated), public feeds, chapters from cue
sheets, a feed of a recording made through the whole pipeline, and the migration
that gives existing stations their tokens."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import feedparser
import httpx
import pytest
from alembic import command
from PIL import Image

from taperoom.db import make_engine, sqlite_url
from taperoom.recorder import migrate
from taperoom.recorder.feeds.chapters import parse_cue_sheet
from taperoom.recorder.settings import RecorderSettings
from taperoom.recorder.tagging import write_cue_sheet
from tests.conftest import LiveServer
from tests.polling import wait_for
from tests.recorder.feedkit import Cue, make_recording
from tests.recorder.streamserver import StreamMedia, StreamServer

JAZZ = {"name": "KUVO Jazz", "stream_url": "http://127.0.0.1:9/jazz", "artist": "KUVO",
        "album": "Jazz Nights", "album_artist": "KUVO 89.3"}
NEWS = {"name": "Night News", "stream_url": "http://127.0.0.1:9/news", "artist": "KNEW",
        "album": "News", "album_artist": "KNEW 90.1"}
DAY = datetime(2025, 10, 3, 3, 0, tzinfo=UTC)  # 2025-10-02 21:00 in Denver


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (20, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


class Setup:
    """A recorder with two stations (the first with artwork) and their recordings."""

    def __init__(self, server: LiveServer, services: Any, media: StreamMedia) -> None:
        self.url = server.url
        self.services = services
        self.http = httpx.Client(base_url=server.url, timeout=30)
        self.jazz = self._station(JAZZ)
        r = self.http.post(f"/api/streams/{self.jazz['id']}/artwork",
                           files={"artwork": ("cover.png", _png(), "image/png")})
        assert r.status_code == 200, r.text
        self.news = self._station(NEWS)
        rec = lambda st, **kw: make_recording(services, media, st, **kw)  # noqa: E731
        self.jazz_old = rec(self.jazz, start=DAY, seconds=6)
        self.jazz_new = rec(self.jazz, start=DAY + timedelta(days=2), seconds=9,
                            titles=[(0.0, "Miles Davis - So What"),
                                    (3.5, 'Bill Evans - "Peace" Piece')])
        self.news_mid = rec(self.news, start=DAY + timedelta(days=1), seconds=4)
        # not in any feed: failed, its file removed, still recording
        rec(self.jazz, start=DAY + timedelta(days=3), seconds=2, status="failed")
        rec(self.jazz, start=DAY + timedelta(days=4), seconds=2, local_deleted=True)
        rec(self.jazz, start=DAY + timedelta(days=5), seconds=2, status="recording")

    def _station(self, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post("/api/streams", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def feed_url(self, station_id: int) -> str:
        r = self.http.get(f"/api/streams/{station_id}")
        assert r.status_code == 200, r.text
        return str(r.json()["feed_url"])

    def all_feed_url(self) -> str:
        return str(self.http.get("/api/feeds").json()["all_feed_url"])

    def parse(self, url: str) -> Any:
        r = httpx.get(url, timeout=30)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/rss+xml")
        parsed = feedparser.parse(r.content)
        assert not parsed.bozo, parsed.bozo_exception
        assert parsed.version == "rss20"
        return parsed


@pytest.fixture
def setup(rec_services: Any, rec_server: LiveServer, stream_media: StreamMedia) -> Setup:
    return Setup(rec_server, rec_services, stream_media)


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def _file_of(services: Any, session_id: int) -> Path:
    return Path(services.sessions.get(session_id)["output_file_path"])


# --------------------------------------------------------------------------- feeds


def test_station_feed_has_itunes_tags_and_its_completed_recordings_newest_first(
        setup: Setup) -> None:
    """A station's feed read by feedparser: channel tags (title, author, image from the
    artwork, explicit, category), one item per completed recording kept here, newest
    first, with title, GUID, enclosure, duration, episode number and chapters."""
    url = setup.feed_url(setup.jazz["id"])
    assert url.startswith(f"{setup.url}/feeds/{setup.jazz['id']}.xml?token=")
    feed = setup.parse(url)
    ch = feed.feed
    assert ch.title == "KUVO Jazz"
    assert ch.author == "KUVO"  # itunes:author
    assert [t.term for t in ch.tags] == ["Music"]  # itunes:category
    assert not ch.itunes_explicit
    assert ch.image.href.startswith(f"{setup.url}/feeds/artwork/{setup.jazz['id']}.png?token=")
    art = httpx.get(ch.image.href)
    assert art.status_code == 200 and art.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(art.content)).size == (300, 300)

    entries = feed.entries
    ids = [setup.jazz_new, setup.jazz_old]
    assert [e.enclosures[0].href.split("?")[0] for e in entries] == [
        f"{setup.url}/feeds/audio/{i}.mp3" for i in ids]
    dates = [datetime(*e.published_parsed[:6], tzinfo=UTC) for e in entries]
    assert dates == sorted(dates, reverse=True)
    new, old = entries
    assert new.title == "2025-10-04 KUVO Jazz" and old.title == "2025-10-02 KUVO Jazz"
    # episode number = the recording's ID3 track number (days since 2020-01-01, plus one)
    assert int(new.itunes_episode) == (date(2025, 10, 4) - date(2020, 1, 1)).days + 1
    assert int(old.itunes_episode) == (date(2025, 10, 2) - date(2020, 1, 1)).days + 1
    assert new.itunes_duration == "0:00:09" and old.itunes_duration == "0:00:06"
    assert new.id.startswith("urn:uuid:") and new.id != old.id
    assert not new.guidislink
    for entry, sid in zip(entries, ids, strict=True):
        enclosure = entry.enclosures[0]
        assert enclosure.type == "audio/mpeg"
        assert int(enclosure.length) == _file_of(setup.services, sid).stat().st_size
        assert entry.image.href == ch.image.href
    assert new.podcast_chapters["type"] == "application/json+chapters"
    assert new.podcast_chapters["url"].startswith(
        f"{setup.url}/feeds/chapters/{setup.jazz_new}.json?token=")
    assert "podcast_chapters" not in old
    assert "Miles Davis - So What" in new.description

    news = setup.parse(setup.feed_url(setup.news["id"]))
    assert [e.enclosures[0].href.split("?")[0] for e in news.entries] == [
        f"{setup.url}/feeds/audio/{setup.news_mid}.mp3"]
    assert "image" not in news.feed  # no artwork: no image


def test_feed_of_all_stations_lists_every_recording_newest_first(setup: Setup) -> None:
    """The feed of all stations interleaves the stations' recordings by date; its
    links carry its own token, which opens the audio of every station."""
    url = setup.all_feed_url()
    feed = setup.parse(url)
    assert feed.feed.title == "Taperoom recordings"
    assert [e.enclosures[0].href.split("?")[0] for e in feed.entries] == [
        f"{setup.url}/feeds/audio/{i}.mp3"
        for i in (setup.jazz_new, setup.news_mid, setup.jazz_old)]
    for e in feed.entries:
        assert _token(e.enclosures[0].href) == _token(url)
        assert httpx.get(e.enclosures[0].href, headers={"Range": "bytes=0-9"}
                         ).status_code == 206
    assert [e.title for e in feed.entries] == [
        "2025-10-04 KUVO Jazz", "2025-10-03 Night News", "2025-10-02 KUVO Jazz"]


def test_every_enclosure_answers_ranged_requests(setup: Setup) -> None:
    """Each enclosure: HEAD and GET give its length; ranges give 206 with the right
    Content-Range and bytes (first, middle, open-ended, suffix); a range past the end
    is a 416 with ``bytes */size``."""
    for url in (setup.feed_url(setup.jazz["id"]), setup.all_feed_url()):
        for entry in setup.parse(url).entries:
            href = entry.enclosures[0].href
            sid = int(urlsplit(href).path.rsplit("/", 1)[1].removesuffix(".mp3"))
            data = _file_of(setup.services, sid).read_bytes()
            size = len(data)
            assert int(entry.enclosures[0].length) == size
            head = httpx.head(href)
            assert head.status_code == 200
            assert int(head.headers["content-length"]) == size
            assert head.headers["accept-ranges"] == "bytes"
            assert head.headers["content-type"] == "audio/mpeg"
            full = httpx.get(href)
            assert full.status_code == 200 and full.content == data
            mid = size // 2
            for header, start, end in (("bytes=0-99", 0, 99),
                                       (f"bytes={mid}-{mid + 999}", mid, mid + 999),
                                       (f"bytes={mid}-", mid, size - 1),
                                       ("bytes=-500", size - 500, size - 1)):
                part = httpx.get(href, headers={"Range": header})
                assert part.status_code == 206, (header, part.status_code)
                assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
                assert part.content == data[start:end + 1]
            past = httpx.get(href, headers={"Range": f"bytes={size}-{size + 10}"})
            assert past.status_code == 416
            assert past.headers["content-range"] == f"bytes */{size}"


def test_guids_stay_when_links_change(setup: Setup) -> None:
    """GUIDs do not change between reads nor when the token (hence every link) changes."""
    sid = setup.jazz["id"]
    first = setup.parse(setup.feed_url(sid))
    again = setup.parse(setup.feed_url(sid))
    assert [e.id for e in first.entries] == [e.id for e in again.entries]
    r = setup.http.post(f"/api/feeds/{sid}/rotate")
    assert r.status_code == 200, r.text
    rotated = setup.parse(r.json()["feed_url"])
    assert [e.id for e in rotated.entries] == [e.id for e in first.entries]
    assert [e.enclosures[0].href for e in rotated.entries] != [
        e.enclosures[0].href for e in first.entries]
    # the same recording has the same GUID in the feed of all stations
    everything = {e.enclosures[0].href.split("?")[0]: e.id
                  for e in setup.parse(setup.all_feed_url()).entries}
    for e in first.entries:
        assert everything[e.enclosures[0].href.split("?")[0]] == e.id


def test_feed_answers_etag_and_304(setup: Setup) -> None:
    """A feed read again with If-None-Match of its ETag is a 304 without a body."""
    url = setup.feed_url(setup.jazz["id"])
    r = httpx.get(url)
    again = httpx.get(url, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


# --------------------------------------------------------------------------- tokens


def test_wrong_or_missing_token_is_the_same_404_as_an_unknown_feed(setup: Setup) -> None:
    """Without the token (or with another feed's) feeds, audio, chapters and artwork are
    404s with the same body as an unknown feed, so nothing tells what exists."""
    jazz_url = setup.feed_url(setup.jazz["id"])
    news_token = _token(setup.feed_url(setup.news["id"]))
    jazz_token = _token(jazz_url)
    base, sid = setup.url, setup.jazz["id"]
    unknown = httpx.get(f"{base}/feeds/987654.xml", params={"token": jazz_token})
    assert unknown.status_code == 404
    body = unknown.json()
    assert body["status_code"] == 404
    for path in (f"/feeds/{sid}.xml", f"/feeds/audio/{setup.jazz_new}.mp3",
                 f"/feeds/chapters/{setup.jazz_new}.json", f"/feeds/artwork/{sid}.png",
                 "/feeds/all.xml"):
        for params in ({}, {"token": news_token}, {"token": jazz_token + "x"},
                       {"token": ""}):
            r = httpx.get(base + path, params=params)
            assert r.status_code == 404, (path, params, r.status_code)
            assert r.json() == body, (path, params)
    # the station's own token opens its things, not another station's
    assert httpx.get(f"{base}/feeds/audio/{setup.news_mid}.mp3",
                     params={"token": jazz_token}).status_code == 404
    assert httpx.get(f"{base}/feeds/audio/{setup.jazz_new}.mp3",
                     params={"token": jazz_token}).status_code == 200
    # recordings that are in no feed are 404 even with the right token
    for sid_ in range(setup.news_mid + 1, setup.news_mid + 4):
        assert httpx.get(f"{base}/feeds/audio/{sid_}.mp3",
                         params={"token": jazz_token}).status_code == 404


def test_rotating_a_token_turns_the_old_links_into_404s(setup: Setup) -> None:
    """Rotation (API) gives a new link; the old feed, audio and chapter links are 404;
    the station object carries the new feed_url. The same for the feed of all stations."""
    sid = setup.jazz["id"]
    old_url = setup.feed_url(sid)
    old = setup.parse(old_url)
    old_audio = old.entries[0].enclosures[0].href
    old_chapters = old.entries[0].podcast_chapters["url"]
    r = setup.http.post(f"/api/feeds/{sid}/rotate")
    assert r.status_code == 200
    new_url = r.json()["feed_url"]
    assert r.json()["station_id"] == sid and new_url != old_url
    assert setup.feed_url(sid) == new_url
    listed = {s["id"]: s["feed_url"] for s in setup.http.get("/api/streams").json()}
    assert listed[sid] == new_url
    for link in (old_url, old_audio, old_chapters):
        assert httpx.get(link).status_code == 404, link
    new = setup.parse(new_url)
    assert httpx.get(new.entries[0].enclosures[0].href).status_code == 200
    assert httpx.get(new.entries[0].podcast_chapters["url"]).status_code == 200
    # the other station's feed is untouched
    setup.parse(setup.feed_url(setup.news["id"]))

    old_all = setup.all_feed_url()
    old_all_audio = setup.parse(old_all).entries[0].enclosures[0].href
    r = setup.http.post("/api/feeds/all/rotate")
    assert r.status_code == 200 and r.json()["station_id"] is None
    assert httpx.get(old_all).status_code == 404
    assert httpx.get(old_all_audio).status_code == 404
    setup.parse(r.json()["feed_url"])
    assert setup.all_feed_url() == r.json()["feed_url"]
    assert setup.http.post("/api/feeds/424242/rotate").status_code == 404


def test_public_feeds_open_without_a_token(
        rec_settings: Callable[..., RecorderSettings], live_server: Any,
        stream_media: StreamMedia) -> None:
    """With PUBLIC_FEEDS the feeds and their audio open without a token (links still
    carry it); PUBLIC_BASE_URL starts every link."""
    from taperoom.recorder.app import create_app
    from taperoom.recorder.context import build_services

    services = build_services(rec_settings(public_feeds=True,
                                           public_base_url="https://radio.example.org/rec/"))
    try:
        server = live_server(create_app(services=services))
        st = httpx.post(f"{server.url}/api/streams", json=JAZZ).json()
        assert st["feed_url"].startswith(f"https://radio.example.org/rec/feeds/{st['id']}.xml?")
        sid = make_recording(services, stream_media, st, start=DAY, seconds=3)
        r = httpx.get(f"{server.url}/feeds/{st['id']}.xml")
        assert r.status_code == 200
        feed = feedparser.parse(r.content)
        href = feed.entries[0].enclosures[0].href
        assert href.startswith(f"https://radio.example.org/rec/feeds/audio/{sid}.mp3?token=")
        audio = httpx.get(f"{server.url}/feeds/audio/{sid}.mp3", headers={"Range": "bytes=0-0"})
        assert audio.status_code == 206
        assert httpx.get(f"{server.url}/feeds/all.xml").status_code == 200
        assert httpx.get(f"{server.url}/feeds/{st['id'] + 1}.xml").status_code == 404
    finally:
        services.close()


def test_feeds_open_with_their_token_where_the_dashboard_needs_credentials(
        rec_settings: Callable[..., RecorderSettings], live_server: Any,
        exposed_address: str, stream_media: StreamMedia) -> None:
    """On a non-loopback address with a user: the API wants credentials, a feed and its
    audio open with the token alone; rotating from a signed-in session needs the
    session's CSRF token, as the dashboard's other actions do."""
    from taperoom.recorder.app import create_app
    from taperoom.recorder.context import build_services
    from tests.access import meta_csrf, sign_in
    from tests.recorder.test_access import add_user

    services = build_services(rec_settings(host=exposed_address))
    add_user(services, "dj")
    try:
        server = live_server(create_app(services=services), host=exposed_address)
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            sign_in(browser, "dj")
            csrf = meta_csrf(browser.get("/streams", headers={"Accept": "text/html"}).text)
            r = browser.post("/api/streams", json=JAZZ, headers={"X-CSRF-Token": csrf})
            assert r.status_code == 201, r.text
            st = r.json()
            sid = make_recording(services, stream_media, st, start=DAY, seconds=3)
            assert httpx.get(f"{server.url}/api/streams/{st['id']}").status_code == 401
            feed_url = st["feed_url"]
            assert feed_url.startswith(f"{server.url}/feeds/")
            assert httpx.get(feed_url).status_code == 200
            audio = httpx.get(f"{server.url}/feeds/audio/{sid}.mp3",
                              params={"token": _token(feed_url)}, headers={"Range": "bytes=5-"})
            assert audio.status_code == 206
            assert httpx.get(f"{server.url}/feeds/{st['id']}.xml").status_code == 404
            assert browser.post(f"/api/feeds/{st['id']}/rotate").status_code == 403
            assert httpx.get(feed_url).status_code == 200
            r = browser.post(f"/api/feeds/{st['id']}/rotate", headers={"X-CSRF-Token": csrf})
            assert r.status_code == 200
            assert httpx.get(feed_url).status_code == 404
            assert httpx.get(r.json()["feed_url"]).status_code == 200
    finally:
        services.close()


# --------------------------------------------------------------------------- chapters


def test_chapters_of_a_recording_with_icy_titles(setup: Setup) -> None:
    """The chapters JSON (podcast namespace) lists the cue sheet's titles at their
    offsets; a recording without titles has none (404)."""
    feed = setup.parse(setup.feed_url(setup.jazz["id"]))
    r = httpx.get(feed.entries[0].podcast_chapters["url"])
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json+chapters")
    doc = r.json()
    assert doc["version"] == "1.2.0"
    # offsets to the cue sheet's frame (1/75 s)
    assert [c["title"] for c in doc["chapters"]] == ["Miles Davis - So What",
                                                      'Bill Evans - "Peace" Piece']
    assert [c["startTime"] for c in doc["chapters"]] == [0.0, pytest.approx(3.5, abs=1 / 75)]
    token = _token(setup.feed_url(setup.jazz["id"]))
    assert httpx.get(f"{setup.url}/feeds/chapters/{setup.jazz_old}.json",
                     params={"token": token}).status_code == 404


def test_cue_sheets_read_back_as_the_writer_wrote_them(tmp_path: Path) -> None:
    """parse_cue_sheet reads the recorder's own sheets: an intro track before a late
    first title, performers, quotes and offsets to the cue frame (1/75 s)."""
    audio = tmp_path / "show.mp3"
    audio.write_bytes(b"")
    sheet = write_cue_sheet(audio, [Cue(12.0, "A - One"), Cue(75.5, 'Two "live"'),
                                    Cue(3600 + 61.2, "C - Three")],
                            performer="KUVO", title="2025-10-03 KUVO Jazz")
    chapters = parse_cue_sheet(sheet.read_text(encoding="utf-8"))
    assert [c.title for c in chapters] == ["2025-10-03 KUVO Jazz", "A - One", 'Two "live"',
                                           "C - Three"]
    assert [c.start_seconds for c in chapters] == [
        0.0, 12.0, pytest.approx(75.5, abs=1 / 75), pytest.approx(3661.2, abs=1 / 75)]
    assert parse_cue_sheet("FILE \"x.mp3\" MP3\r\n") == []


# --------------------------------------------------------------------------- pipeline


@pytest.mark.slow
def test_a_recording_made_by_the_pipeline_is_in_the_feed_with_its_chapters(
        rec_services: Any, rec_server: LiveServer, stream_server: StreamServer) -> None:
    """Record a real Icecast-like stream with ICY titles through the whole pipeline; the
    station's feed lists it with its file's length, and its chapters are the titles."""
    stream_server.mount("/jazz.mp3", titles=[(0.0, "Miles Davis - So What"),
                                             (2.0, "Bill Evans - Peace Piece")])
    with httpx.Client(base_url=rec_server.url, timeout=30) as client:
        st = client.post("/api/streams", json={
            **JAZZ, "stream_url": stream_server.url("/jazz.mp3")}).json()
        r = client.post(f"/api/streams/{st['id']}/record", json={"duration_seconds": 4})
        assert r.status_code == 202, r.text
        sid = r.json()["id"]

        def done() -> dict[str, Any] | None:
            s = client.get(f"/api/sessions/{sid}").json()
            return s if s["status"] in ("completed", "failed") else None

        session = wait_for(done, 60, "the recording")
    assert session["status"] == "completed", session
    feed = feedparser.parse(httpx.get(st["feed_url"]).content)
    assert not feed.bozo
    (entry,) = feed.entries
    assert int(entry.enclosures[0].length) == Path(session["output_file_path"]).stat().st_size
    assert int(entry.enclosures[0].length) == session["file_size_bytes"]
    chapters = httpx.get(entry.podcast_chapters["url"]).json()["chapters"]
    assert [c["title"] for c in chapters] == ["Miles Davis - So What",
                                              "Bill Evans - Peace Piece"]
    assert chapters[0]["startTime"] == 0 and 1.0 < chapters[1]["startTime"] < 3.5
    audio = httpx.get(entry.enclosures[0].href, headers={"Range": "bytes=0-2"})
    assert audio.status_code == 206 and audio.content == b"ID3"


# --------------------------------------------------------------------------- migration


@pytest.mark.empty_database
def test_migration_gives_existing_stations_distinct_tokens(tmp_path: Path) -> None:
    """A database made before feeds (revision 0002) with stations gets a token for each
    and one for the feed of all stations when it is brought to head."""
    path = tmp_path / "recorder.db"
    command.upgrade(migrate.alembic_config(sqlite_url(path)), "0002")
    engine = make_engine(sqlite_url(path))
    try:
        import sqlalchemy as sa

        with engine.begin() as conn:
            for name in ("A", "B", "C"):
                conn.execute(sa.text(
                    "INSERT INTO stream_configurations (name, stream_url, artist, album, "
                    "album_artist, output_filename_pattern, scp_destination, split_tracks, "
                    "created_at, updated_at) VALUES (:n, 'http://x/', 'a', 'b', 'c', "
                    "'{date}_{name}.mp3', '', 0, '2025-01-01', '2025-01-01')"), {"n": name})
        migrate.upgrade(engine)
        with engine.connect() as conn:
            tokens = [t for (t,) in conn.execute(sa.text(
                "SELECT feed_token FROM stream_configurations"))]
            (everything,) = conn.execute(sa.text(
                "SELECT token FROM recorder_feed_tokens WHERE feed = 'all'")).one()
        assert len(set(tokens)) == 3 and all(len(t) == 32 for t in tokens)
        assert everything not in tokens and len(everything) == 32
    finally:
        engine.dispose()


def test_station_object_keeps_the_contract_fields_and_adds_feed_url(setup: Setup) -> None:
    """GET /api/streams/{id} is the contract's object plus feed_url (additive)."""
    st = setup.http.get(f"/api/streams/{setup.jazz['id']}").json()
    assert {"id", "name", "stream_url", "artist", "album", "album_artist", "artwork_path",
            "output_filename_pattern", "scp_destination", "created_at", "updated_at",
            "feed_url"} <= set(st)
    assert json.loads(json.dumps(st)) == st
