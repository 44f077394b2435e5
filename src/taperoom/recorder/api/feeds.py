"""Podcast feed routes: the feeds themselves (``/feeds/...``, opened by their token)
and their links and token rotation (``/api/feeds``, behind the dashboard's credentials).

``/feeds/...`` is open without credentials (the app lists it among its public
prefixes); each route lets a request in only with the feed's secret token
(``?token=``) or with ``PUBLIC_FEEDS`` (:class:`~taperoom.recorder.feeds.service.FeedService`):

=============================================  =====================================
``GET /feeds/{station_id}.xml``                a station's RSS podcast feed
``GET /feeds/all.xml``                         the feed of all stations
``GET|HEAD /feeds/audio/{session_id}.mp3``     a recording (``Range``: 206 / 416)
``GET /feeds/chapters/{session_id}.json``      its chapters (``application/json+chapters``)
``GET /feeds/artwork/{station_id}.jpg|.png``   a station's cover art
``GET /api/feeds``                             every feed link
``POST /api/feeds/{station_id}/rotate``        new token for a station's feed
``POST /api/feeds/all/rotate``                 new token for the feed of all stations
=============================================  =====================================

A feed answers with an ``ETag`` and a 304 to ``If-None-Match`` (podcast apps poll).
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from taperoom.errors import NotFound
from taperoom.recorder.api.deps import FeedBaseDep, FeedServiceDep
from taperoom.recorder.feeds.chapters import CHAPTERS_MEDIA_TYPE
from taperoom.recorder.feeds.schemas import FeedLinksPublic, FeedRotatedPublic
from taperoom.recorder.feeds.service import NO_FEED
from taperoom.recorder.schemas import API_ERRORS, ErrorPublic

#: Media type of the feeds.
RSS_MEDIA_TYPE = "application/rss+xml; charset=utf-8"
#: The token of a feed URL (``secrets.token_urlsafe`` strings are 32 characters).
Token = Query(None, max_length=200, description="The feed's secret token")

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic,
          "description": "Unknown feed or recording, or a wrong or missing token"},
    "4XX": {"model": ErrorPublic, "description": "Other client errors (a token too long...)"}}

public_router = APIRouter(prefix="/feeds", tags=["feeds"], responses=_NOT_FOUND)
router = APIRouter(prefix="/api/feeds", tags=["feeds"], responses=API_ERRORS)


def _feed_response(body: bytes, request: Request) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    sent = request.headers.get("if-none-match", "")
    if etag in (t.strip() for t in sent.split(",")) or sent.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=RSS_MEDIA_TYPE, headers=headers)


_RSS: dict[int | str, dict[str, Any]] = {
    200: {"description": "RSS 2.0 podcast feed",
          "content": {"application/rss+xml": {"schema": {"type": "string"}}}},
    304: {"description": "Not modified (If-None-Match)"}}


@public_router.get("/all.xml", response_class=Response, responses=_RSS)
async def all_feed(request: Request, feeds: FeedServiceDep, base: FeedBaseDep,
                   token: str | None = Token) -> Response:
    """The feed of every station's recordings, newest first."""
    body = await run_in_threadpool(feeds.all_feed, token, base)
    return _feed_response(body, request)


@public_router.get("/{station_id:int}.xml", response_class=Response, responses=_RSS)
async def station_feed(station_id: int, request: Request, feeds: FeedServiceDep,
                       base: FeedBaseDep, token: str | None = Token) -> Response:
    """A station's feed: one item per completed recording kept here, newest first."""
    body = await run_in_threadpool(feeds.station_feed, station_id, token, base)
    return _feed_response(body, request)


#: Success answers of the audio route.
_AUDIO: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"audio/mpeg": {"schema": {
        "type": "string", "format": "binary"}}}}
    for code, text in ((200, "The recording"), (206, "The part asked for with Range"))}
_AUDIO[416] = {"description": "Range not satisfiable (Content-Range: bytes */size)"}


@public_router.get("/audio/{session_id:int}.mp3", response_class=FileResponse,
                   responses=_AUDIO)
@public_router.head("/audio/{session_id:int}.mp3", response_class=FileResponse,
                    include_in_schema=False)
async def audio(session_id: int, feeds: FeedServiceDep, token: str | None = Token
                ) -> Response:
    """A recording's audio, with ``Range`` (206, ``Content-Range``; 416 past its end)
    and ``If-Range``, as podcast apps and ``<audio>`` elements seek."""
    found = await run_in_threadpool(feeds.audio, session_id, token)
    return FileResponse(found.path, media_type=found.media_type, stat_result=found.stat,
                        filename=found.download_name, content_disposition_type="inline",
                        headers={"Cache-Control": "private, max-age=86400"})


@public_router.get("/chapters/{session_id:int}.json", response_class=Response,
                   responses={200: {"description": "JSON chapters (podcast namespace)",
                                    "content": {CHAPTERS_MEDIA_TYPE: {"schema": {
                                        "type": "object"}}}}})
async def chapters(session_id: int, feeds: FeedServiceDep, token: str | None = Token
                   ) -> Response:
    """The chapters of a recording: the ICY titles of its cue sheet."""
    doc = await run_in_threadpool(feeds.chapters, session_id, token)
    return JSONResponse(doc, media_type=CHAPTERS_MEDIA_TYPE,
                        headers={"Cache-Control": "no-cache"})


@public_router.get("/artwork/{station_id:int}.{ext}", response_class=Response, responses={
    200: {"description": "Cover art", "content": {
        t: {"schema": {"type": "string", "format": "binary"}}
        for t in ("image/jpeg", "image/png")}}})
async def artwork(station_id: int, ext: str, feeds: FeedServiceDep,
                  token: str | None = Token) -> Response:
    """A station's cover art as JPEG or PNG (other formats converted, large ones shrunk)."""
    if ext not in ("jpg", "png"):
        raise NotFound(NO_FEED)
    data, media = await run_in_threadpool(feeds.artwork, station_id, token)
    return Response(data, media_type=media, headers={"Cache-Control": "no-cache"})


@router.get("", response_model=FeedLinksPublic)
def links(feeds: FeedServiceDep, base: FeedBaseDep) -> dict[str, Any]:
    """Every feed link: ``{public, all_feed_url, stations: [{station_id, name, feed_url}]}``."""
    return feeds.links(base)


@router.post("/all/rotate", response_model=FeedRotatedPublic)
def rotate_all(feeds: FeedServiceDep, base: FeedBaseDep) -> dict[str, Any]:
    """A new token for the feed of all stations: its old links answer 404 from now on."""
    return feeds.rotate_all(base)


@router.post("/{station_id:int}/rotate", response_model=FeedRotatedPublic)
def rotate_station(station_id: int, feeds: FeedServiceDep, base: FeedBaseDep
                   ) -> dict[str, Any]:
    """A new token for a station's feed (its audio and chapter links too); 404."""
    return feeds.rotate_station(station_id, base)
