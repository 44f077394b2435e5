"""Routes of /api/streams: stations (contracts/recorder.md "HTTP API").

Contract routes: list/create, get/update/delete, ``/<id>/test``, ``/test-url``,
``/<id>/artwork`` (upload, delete), ``/export``, ``/import``. Besides the
contract: ``POST /<id>/record {"duration_seconds": S}`` starts a recording now
(202 with the new session), through the same pipeline as a scheduled one. Every
station object also carries ``feed_url``, its podcast feed with the feed's token
(:mod:`taperoom.recorder.feeds`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from taperoom.errors import InvalidInput, TooLarge
from taperoom.recorder.api.deps import (
    ExportServiceDep,
    FeedBaseDep,
    FeedServiceDep,
    RecordingServiceDep,
    SettingsDep,
    StationServiceDep,
)
from taperoom.recorder.feeds.schemas import StationFeedPublic
from taperoom.recorder.feeds.service import FeedService
from taperoom.recorder.repository import MAX_ID, check_id
from taperoom.recorder.schemas import (
    API_ERRORS,
    CONFLICT,
    INSUFFICIENT_STORAGE,
    TOO_LARGE,
    UNPROCESSABLE,
    ArtworkDeletedPublic,
    ArtworkPublic,
    ExportPublic,
    ImportBody,
    ImportPublic,
    MessagePublic,
    RecordNow,
    SessionPublic,
    StationCreate,
    StationTestPublic,
    StationUpdate,
    UrlTest,
    UrlTestPublic,
)

#: Bytes a multipart body may carry beyond the artwork itself (headers, boundaries).
MULTIPART_OVERHEAD = 64 * 1024
#: Field name of the artwork file (contract).
ARTWORK_FIELD = "artwork"
#: OpenAPI request body of the artwork upload: the route reads the form itself (to
#: refuse a too large body before reading it), so FastAPI cannot infer it.
ARTWORK_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": [ARTWORK_FIELD],
        "properties": {ARTWORK_FIELD: {
            "type": "string", "format": "binary",
            "description": "The image: png, jpg, jpeg, gif, bmp or webp, at most "
                           "MAX_ARTWORK_SIZE_MB"}}}}}}}

router = APIRouter(prefix="/api/streams", tags=["streams"], responses=API_ERRORS)


def with_feed_url(station: dict[str, Any], feeds: FeedService, base: str) -> dict[str, Any]:
    """`station` with its ``feed_url``."""
    return {**station, "feed_url": feeds.feed_url(station["id"], base)}


@router.get("", response_model=list[StationFeedPublic])
@router.get("/", response_model=list[StationFeedPublic], include_in_schema=False)
def list_streams(stations: StationServiceDep, feeds: FeedServiceDep, base: FeedBaseDep,
                 skip: int = Query(0, ge=0, le=MAX_ID),
                 limit: int = Query(100, ge=1, le=1000),
                 search: str | None = Query(None, max_length=200)) -> list[dict[str, Any]]:
    """``[StreamConfigurationResponse]`` ordered by name (each with its ``feed_url``)."""
    rows = stations.list(skip=skip, limit=limit, search=search)
    urls = feeds.feed_urls([s["id"] for s in rows], base)
    return [{**s, "feed_url": urls[s["id"]]} for s in rows if s["id"] in urls]


@router.post("", status_code=201, response_model=StationFeedPublic, responses=CONFLICT)
@router.post("/", status_code=201, response_model=StationFeedPublic, include_in_schema=False)
def create_stream(body: StationCreate, stations: StationServiceDep, feeds: FeedServiceDep,
                  base: FeedBaseDep) -> dict[str, Any]:
    """201 with the station; 400 invalid fields; 409 duplicate name."""
    return with_feed_url(stations.create(body), feeds, base)


@router.get("/export", response_model=ExportPublic)
def export_streams(exports: ExportServiceDep) -> dict[str, Any]:
    """``{streams, schedules, exported_at, version: "1.0"}``."""
    return exports.export_document()


@router.post("/import", response_model=ImportPublic)
def import_streams(body: ImportBody, exports: ExportServiceDep) -> dict[str, Any]:
    """``{imported_streams, imported_schedules, stream_ids, schedule_ids, errors,
    message}``; items that fail validation are listed in ``errors``."""
    return exports.import_document(body)


@router.post("/test-url", response_model=UrlTestPublic)
def test_url(body: UrlTest, stations: StationServiceDep) -> dict[str, Any]:
    """``{stream_url, connection_test: {success, message, content_type, codec,
    bitrate, sample_rate, channels, icy_name, status_code, stream_url}}``."""
    return stations.test_url(body.stream_url)


@router.get("/{stream_id:int}", response_model=StationFeedPublic)
def get_stream(stream_id: int, stations: StationServiceDep, feeds: FeedServiceDep,
               base: FeedBaseDep) -> dict[str, Any]:
    """The station (with its ``feed_url``); 404."""
    return with_feed_url(stations.get(stream_id), feeds, base)


@router.put("/{stream_id:int}", response_model=StationFeedPublic, responses=CONFLICT)
def update_stream(stream_id: int, body: StationUpdate, stations: StationServiceDep,
                  feeds: FeedServiceDep, base: FeedBaseDep) -> dict[str, Any]:
    """The updated station; 400/404/409."""
    return with_feed_url(stations.update(stream_id, body), feeds, base)


@router.delete("/{stream_id:int}", response_model=MessagePublic)
def delete_stream(stream_id: int, stations: StationServiceDep) -> dict[str, Any]:
    """``{"message": "Stream configuration N deleted successfully"}``; 404."""
    return stations.delete(stream_id)


@router.post("/{stream_id:int}/test", response_model=StationTestPublic)
def test_stream(stream_id: int, stations: StationServiceDep) -> dict[str, Any]:
    """``{stream_id, stream_url, connection_test}``; 404."""
    return stations.test_station(stream_id)


@router.post("/{stream_id:int}/record", status_code=202, response_model=SessionPublic,
             response_model_exclude_unset=True,
             responses={**CONFLICT, **UNPROCESSABLE, **INSUFFICIENT_STORAGE})
def record_now(stream_id: int, body: RecordNow, recordings: RecordingServiceDep
               ) -> dict[str, Any]:
    """202 with the new session (status ``recording``); 404 unknown station,
    409 ``MAX_CONCURRENT_RECORDINGS`` reached, 422 a stored file name pattern
    that cannot be rendered, 507 disk too full."""
    check_id(stream_id, "stream configuration")
    return recordings.record(stream_id, body.duration_seconds, trigger="manual")


@router.post("/{stream_id:int}/artwork", openapi_extra=ARTWORK_BODY,
             response_model=ArtworkPublic, responses={**TOO_LARGE, **UNPROCESSABLE})
async def upload_artwork(stream_id: int, request: Request, stations: StationServiceDep,
                         settings: SettingsDep) -> dict[str, Any]:
    """Multipart field ``artwork`` (png, jpg, jpeg, gif, bmp, webp ≤
    ``MAX_ARTWORK_SIZE_MB``): ``{stream_id, artwork_path, filename, file_size,
    message}``; 400 no file / bad type, 404, 413 too large, 422 not an image."""
    await run_in_threadpool(stations.get, stream_id)
    limit = settings.max_artwork_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise TooLarge(f"request of {declared} bytes; the artwork limit is "
                       f"{settings.max_artwork_size_mb:g} MB")
    form = await request.form(max_files=1, max_fields=20)
    try:
        upload = form.get(ARTWORK_FIELD)
        if not isinstance(upload, UploadFile):
            raise InvalidInput("No artwork file provided (multipart field 'artwork')")
        data = await upload.read(limit + 1)
        filename = upload.filename or ""
    finally:
        await form.close()
    return await run_in_threadpool(stations.save_artwork, stream_id, filename, data)


@router.delete("/{stream_id:int}/artwork", response_model=ArtworkDeletedPublic)
def delete_artwork(stream_id: int, stations: StationServiceDep) -> dict[str, Any]:
    """``{stream_id, message: "Artwork deleted successfully"}``; 400 none; 404."""
    return stations.delete_artwork(stream_id)
