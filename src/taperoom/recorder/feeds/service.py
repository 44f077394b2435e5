"""Podcast feeds: who may read them, their URLs, the feed documents and the files.

:class:`FeedService` checks the secret token of a request against the feed's
token (constant-time; ``PUBLIC_FEEDS`` lets every request in), builds the RSS
document of a station or of all stations from the completed recordings still on
this machine, and hands the routes the audio file (the route serves it with HTTP
ranges), the chapters of a recording and the cover art. A wrong or missing token
and an unknown feed are the same :class:`~taperoom.errors.NotFound`, so a URL
never tells whether a station or recording exists.

Which token opens what: a station's token opens its feed, the audio, chapters
and cover art of its recordings; the token of the feed of all stations opens that
feed and everything it links to. Rotating a token makes every URL with the old
one a 404.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session, sessionmaker

from taperoom import __version__
from taperoom.db import transaction
from taperoom.errors import NotFound
from taperoom.recorder import repository as repo
from taperoom.recorder.artwork import ArtworkFolder
from taperoom.recorder.feeds import repository as feeds_repo
from taperoom.recorder.feeds.chapters import Chapter, chapters_document, parse_cue_sheet
from taperoom.recorder.feeds.rss import Channel, Episode, clock, render_feed
from taperoom.recorder.logs import log_operation
from taperoom.recorder.models import RecordingSession, Station, utcnow
from taperoom.recorder.repository import check_id
from taperoom.recorder.settings import RecorderSettings
from taperoom.recorder.tagging import recording_title, track_number
from taperoom.web.auth.middleware import same_secret

log = logging.getLogger(__name__)

#: Most recordings one feed lists (the newest).
FEED_MAX_ITEMS = 500
#: Apple Podcasts category of every feed.
CATEGORY = "Music"
#: Namespace of the items' GUIDs (UUID version 5 of the session's id and start).
GUID_NAMESPACE = uuid.UUID("5b0f8a2e-4c1d-5e7a-9f3b-7a1e2d9c4b60")
#: The one answer to a wrong token and to an unknown feed or recording.
NO_FEED = "no such feed"


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def episode_guid(session_id: int, start_time: datetime) -> str:
    """Stable GUID of a recording: ``urn:uuid:`` + UUID5 of its id and start time.

    It does not change with tokens, host names or file names; the start time keeps
    two databases that reuse an id apart.
    """
    key = f"taperoom-recorder/session/{session_id}/{_aware(start_time):%Y%m%dT%H%M%S.%f}"
    return f"urn:uuid:{uuid.uuid5(GUID_NAMESPACE, key)}"


@dataclass(frozen=True)
class AudioFile:
    """A recording's file for the audio route.

    Attributes
    ----------
    path : Path
    stat : os.stat_result
        Taken when the access was checked (size and times of the answer).
    media_type : str
        ``audio/mpeg`` for MP3.
    download_name : str
        Name a browser saves it under.
    """

    path: Path
    stat: os.stat_result
    media_type: str
    download_name: str


class FeedService:
    """Podcast feeds of the recorder (see the module docstring).

    Parameters
    ----------
    db : sessionmaker
        Session factory of the recorder database.
    settings : RecorderSettings
        ``PUBLIC_FEEDS``, ``PUBLIC_BASE_URL``, ``TZ`` (titles and descriptions),
        ``MAX_ARTWORK_SIZE_MB`` (cover art larger than this is shrunk).
    artwork : ArtworkFolder
        The stations' cover art files.
    """

    def __init__(self, db: sessionmaker[Session], settings: RecorderSettings,
                 artwork: ArtworkFolder) -> None:
        self.db = db
        self.settings = settings
        self.covers = artwork

    # -- URLs -----------------------------------------------------------------------

    def base_url(self, request_base: str) -> str:
        """Start of every absolute link: ``PUBLIC_BASE_URL``, else `request_base`
        (the URL the request came to), without a trailing slash."""
        return (self.settings.public_base_url or request_base).rstrip("/")

    @staticmethod
    def _url(base: str, path: str, token: str) -> str:
        return f"{base}{path}?{urlencode({'token': token})}"

    def feed_urls(self, station_ids: Iterable[int], base: str) -> dict[int, str]:
        """``{station id: feed URL with its token}`` of the stations that exist."""
        with transaction(self.db) as db:
            tokens = feeds_repo.station_tokens(db, station_ids)
        return {sid: self._url(base, f"/feeds/{sid}.xml", tok) for sid, tok in tokens.items()}

    def feed_url(self, station_id: int, base: str) -> str:
        """The feed URL of a station (with its token); NotFound for an unknown station."""
        check_id(station_id, "stream configuration")
        with transaction(self.db) as db:
            token = feeds_repo.station_token(db, station_id)
        return self._url(base, f"/feeds/{station_id}.xml", token)

    def all_feed_url(self, base: str) -> str:
        """The URL of the feed of all stations (with its token)."""
        with transaction(self.db) as db:
            token = feeds_repo.all_token(db)
        return self._url(base, "/feeds/all.xml", token)

    def links(self, base: str) -> dict[str, Any]:
        """``{public, all_feed_url, stations: [{station_id, name, feed_url}]}`` (by name)."""
        with transaction(self.db) as db:
            stations = repo.list_stations(db, limit=1_000_000)
            tokens = feeds_repo.station_tokens(db, [s.id for s in stations])
            names = [(s.id, s.name) for s in stations]
            everything = feeds_repo.all_token(db)
        return {"public": self.settings.public_feeds,
                "all_feed_url": self._url(base, "/feeds/all.xml", everything),
                "stations": [{"station_id": sid, "name": name,
                              "feed_url": self._url(base, f"/feeds/{sid}.xml", tokens[sid])}
                             for sid, name in names]}

    # -- rotation -------------------------------------------------------------------

    def rotate_station(self, station_id: int, base: str) -> dict[str, Any]:
        """New token for a station's feed: ``{station_id, feed_url, message}``.

        Raises
        ------
        NotFound
            Unknown station.
        """
        check_id(station_id, "stream configuration")
        with transaction(self.db) as db:
            token = feeds_repo.rotate_station_token(db, station_id)
        log_operation("configuration", f"feed token of stream configuration {station_id} "
                      "rotated", station_id=station_id)
        return {"station_id": station_id,
                "feed_url": self._url(base, f"/feeds/{station_id}.xml", token),
                "message": "Feed link renewed; the old link no longer works"}

    def rotate_all(self, base: str) -> dict[str, Any]:
        """New token for the feed of all stations: ``{station_id: None, feed_url, message}``."""
        with transaction(self.db) as db:
            token = feeds_repo.rotate_all_token(db)
        log_operation("configuration", "feed token of all stations rotated")
        return {"station_id": None, "feed_url": self._url(base, "/feeds/all.xml", token),
                "message": "Feed link renewed; the old link no longer works"}

    # -- access ---------------------------------------------------------------------

    def _open(self, sent: str | None, *expected: str | None) -> None:
        """Let the request in when feeds are public or `sent` is one of `expected`."""
        if self.settings.public_feeds:
            return
        if sent and any(same_secret(sent, e) for e in expected if e):
            return
        raise NotFound(NO_FEED)

    @staticmethod
    def _valid_id(value: int) -> int:
        try:
            return check_id(value, "feed")
        except NotFound:
            raise NotFound(NO_FEED) from None

    # -- feeds ----------------------------------------------------------------------

    def station_feed(self, station_id: int, token: str | None, base: str) -> bytes:
        """The RSS document of a station's feed.

        Raises
        ------
        NotFound
            Unknown station, or a wrong or missing token (feeds not public).
        """
        self._valid_id(station_id)
        with transaction(self.db) as db:
            station = db.get(Station, station_id)
            if station is None:
                raise NotFound(NO_FEED)
            own = feeds_repo.station_token(db, station_id)
            self._open(token, own)
            rows = feeds_repo.feed_recordings(db, station_id=station_id,
                                              limit=FEED_MAX_ITEMS)
            info = _StationInfo.of(station)
            recordings = [_Recording.of(r) for r in rows]
        image = self._image_url(info, base, own)
        episodes = [e for r in recordings
                    if (e := self._episode(r, info, base, own, image)) is not None]
        updated = max([_aware(info.updated_at), *(e.published for e in episodes)])
        channel = Channel(
            title=info.name, link=f"{base}/",
            self_url=self._url(base, f"/feeds/{station_id}.xml", own),
            description=f"Recordings of {info.name} ({info.album}), made by the "
                        "Taperoom recorder.",
            author=info.artist, image_url=image, category=CATEGORY, explicit=False,
            updated=updated, generator=f"Taperoom recorder {__version__}")
        return render_feed(channel, episodes)

    def all_feed(self, token: str | None, base: str) -> bytes:
        """The RSS document of the feed of all stations (recordings of stations since
        deleted included).

        Raises
        ------
        NotFound
            A wrong or missing token (feeds not public).
        """
        with transaction(self.db) as db:
            own = feeds_repo.all_token(db)
            self._open(token, own)
            rows = feeds_repo.feed_recordings(db, station_id=None, limit=FEED_MAX_ITEMS)
            stations = feeds_repo.stations_by_id(
                db, [r.station_id for r in rows if r.station_id is not None])
            infos = {sid: _StationInfo.of(s) for sid, s in stations.items()}
            recordings = [_Recording.of(r) for r in rows]
        episodes: list[Episode] = []
        for r in recordings:
            info = infos.get(r.station_id) if r.station_id is not None else None
            image = self._image_url(info, base, own) if info else None
            ep = self._episode(r, info, base, own, image)
            if ep is not None:
                episodes.append(ep)
        channel = Channel(
            title="Taperoom recordings", link=f"{base}/",
            self_url=self._url(base, "/feeds/all.xml", own),
            description="Recordings of every station, made by the Taperoom recorder.",
            author="Taperoom recorder", image_url=None, category=CATEGORY, explicit=False,
            updated=episodes[0].published if episodes else _aware(utcnow()),
            generator=f"Taperoom recorder {__version__}")
        return render_feed(channel, episodes)

    def _image_url(self, info: _StationInfo | None, base: str, token: str) -> str | None:
        if info is None or not info.artwork_path:
            return None
        ext = "png" if info.artwork_path.lower().endswith(".png") else "jpg"
        return self._url(base, f"/feeds/artwork/{info.id}.{ext}", token)

    def _episode(self, r: _Recording, info: _StationInfo | None, base: str, token: str,
                 image: str | None) -> Episode | None:
        """The item of a recording; None when its file is gone."""
        path = Path(r.output_file_path)
        try:
            size = path.stat().st_size
        except OSError:
            return None
        started = _aware(r.start_time).astimezone(self.settings.zone)
        name = info.name if info is not None else r.station_name
        chapters = read_chapters(r.cue_sheet_path)
        lines = [f"{name}, recorded {started:%Y-%m-%d %H:%M} ({self.settings.zone_name})"
                 + (f" for {clock(r.duration_seconds)}." if r.duration_seconds else ".")]
        if r.gaps:
            lost = sum(float(g.get("length_seconds") or 0) for g in r.gaps)
            lines.append(f"The stream dropped {len(r.gaps)} time(s), {lost:.0f} s in all.")
        if chapters:
            lines.append("Played: " + "; ".join(
                f"{clock(c.start_seconds)} {c.title}" for c in chapters))
        return Episode(
            guid=episode_guid(r.id, r.start_time),
            title=recording_title(started, name), description=" ".join(lines),
            published=_aware(r.end_time or r.start_time),
            audio_url=self._url(base, f"/feeds/audio/{r.id}.mp3", token), length=size,
            media_type=media_type(path), duration_seconds=r.duration_seconds,
            number=track_number(started.date()), image_url=image,
            chapters_url=(self._url(base, f"/feeds/chapters/{r.id}.json", token)
                          if chapters else None))

    # -- files ----------------------------------------------------------------------

    def _recording(self, session_id: int, token: str | None) -> _Recording:
        """A recording of some feed, if `token` opens it (NotFound otherwise)."""
        self._valid_id(session_id)
        with transaction(self.db) as db:
            row = feeds_repo.feed_recording(db, session_id)
            if row is None:
                raise NotFound(NO_FEED)
            own: str | None = None
            if row.station_id is not None and db.get(Station, row.station_id) is not None:
                own = feeds_repo.station_token(db, row.station_id)
            self._open(token, own, feeds_repo.all_token(db))
            return _Recording.of(row)

    def audio(self, session_id: int, token: str | None) -> AudioFile:
        """The audio file of a recording (for a ranged answer).

        Raises
        ------
        NotFound
            Unknown or unfinished recording, its file gone, or a wrong token.
        """
        r = self._recording(session_id, token)
        path = Path(r.output_file_path)
        try:
            st = path.stat()
        except OSError:
            raise NotFound(NO_FEED) from None
        if not path.is_file():
            raise NotFound(NO_FEED)
        return AudioFile(path=path, stat=st, media_type=media_type(path),
                         download_name=path.name)

    def chapters(self, session_id: int, token: str | None) -> dict[str, Any]:
        """The JSON chapters of a recording (podcast namespace).

        Raises
        ------
        NotFound
            As :meth:`audio`, or the recording has no cue sheet.
        """
        r = self._recording(session_id, token)
        chapters = read_chapters(r.cue_sheet_path)
        if not chapters:
            raise NotFound("this recording has no chapters")
        started = _aware(r.start_time).astimezone(self.settings.zone)
        return chapters_document(chapters, title=recording_title(started, r.station_name))

    def artwork(self, station_id: int, token: str | None) -> tuple[bytes, str]:
        """The cover art of a station as JPEG or PNG: ``(bytes, media type)``.

        Raises
        ------
        NotFound
            Unknown station, no artwork, or a wrong token.
        """
        from taperoom.recorder.tagging import prepare_artwork

        self._valid_id(station_id)
        with transaction(self.db) as db:
            station = db.get(Station, station_id)
            if station is None:
                raise NotFound(NO_FEED)
            self._open(token, feeds_repo.station_token(db, station_id),
                       feeds_repo.all_token(db))
            stored = station.artwork_path
        path = self.covers.file(stored)
        if path is None or not path.is_file():
            raise NotFound("this station has no artwork")
        return prepare_artwork(path, max_bytes=self.settings.max_artwork_bytes)


def media_type(path: Path) -> str:
    """Media type of an audio file by its name (``audio/mpeg`` when unknown)."""
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed if guessed and guessed.startswith("audio/") else "audio/mpeg"


def read_chapters(cue_sheet_path: str | None) -> list[Chapter]:
    """The chapters in a recording's cue sheet; empty without a readable sheet."""
    if not cue_sheet_path:
        return []
    try:
        text = Path(cue_sheet_path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return parse_cue_sheet(text)


@dataclass(frozen=True)
class _StationInfo:
    """What a feed needs of a station, read inside the transaction."""

    id: int
    name: str
    artist: str
    album: str
    artwork_path: str | None
    updated_at: datetime

    @classmethod
    def of(cls, row: Station) -> _StationInfo:
        return cls(id=row.id, name=row.name, artist=row.artist, album=row.album,
                   artwork_path=row.artwork_path, updated_at=row.updated_at)


@dataclass(frozen=True)
class _Recording:
    """What a feed needs of a recording, read inside the transaction."""

    id: int
    station_id: int | None
    station_name: str
    start_time: datetime
    end_time: datetime | None
    output_file_path: str
    duration_seconds: float | None
    cue_sheet_path: str | None
    gaps: list[dict[str, Any]]

    @classmethod
    def of(cls, row: RecordingSession) -> _Recording:
        return cls(id=row.id, station_id=row.station_id, station_name=row.station_name,
                   start_time=row.start_time, end_time=row.end_time,
                   output_file_path=row.output_file_path or "",
                   duration_seconds=row.duration_seconds, cue_sheet_path=row.cue_sheet_path,
                   gaps=list(row.gaps or []))
