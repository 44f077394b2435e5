"""Routes of /api/streams: stations (contracts/recorder.md "HTTP API").

Contract routes: list/create, get/update/delete, ``/<id>/test``, ``/test-url``,
``/<id>/artwork`` (upload, delete), ``/export``, ``/import``. Besides the
contract: ``POST /<id>/record {"duration_seconds": S}`` starts a recording now
(202 with the new session), through the same pipeline as a scheduled one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from taperoom.errors import InvalidInput, TooLarge
from taperoom.recorder import stations as service
from taperoom.recorder.context import RecorderContext
from taperoom.recorder.schemas import ImportBody, RecordNow, StationCreate, StationUpdate, UrlTest

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


def build_router(ctx: RecorderContext) -> APIRouter:
    """Router of the station routes (mounted at ``/api/streams``)."""
    r = APIRouter(tags=["streams"])

    @r.get("")
    @r.get("/", include_in_schema=False)
    def list_streams(skip: int = Query(0, ge=0, le=service.MAX_ID),
                     limit: int = Query(100, ge=1, le=1000),
                     search: str | None = Query(None, max_length=200)) -> list[dict[str, Any]]:
        """``[StreamConfigurationResponse]`` ordered by name."""
        return service.list_stations(ctx, skip=skip, limit=limit, search=search)

    @r.post("", status_code=201)
    @r.post("/", status_code=201, include_in_schema=False)
    def create_stream(body: StationCreate) -> dict[str, Any]:
        """201 with the station; 400 invalid fields; 409 duplicate name."""
        return service.create_station(ctx, body)

    @r.get("/export")
    def export_streams() -> dict[str, Any]:
        """``{streams, schedules, exported_at, version: "1.0"}``."""
        return service.export_document(ctx)

    @r.post("/import")
    def import_streams(body: ImportBody) -> dict[str, Any]:
        """``{imported_streams, imported_schedules, stream_ids, schedule_ids, errors,
        message}``; items that fail validation are listed in ``errors``."""
        return service.import_document(ctx, body)

    @r.post("/test-url")
    def test_url(body: UrlTest) -> dict[str, Any]:
        """``{stream_url, connection_test: {success, message, content_type, codec,
        bitrate, icy_name, status_code}}``."""
        return service.test_url(ctx, body.stream_url)

    @r.get("/{stream_id:int}")
    def get_stream(stream_id: int) -> dict[str, Any]:
        """The station; 404."""
        return service.get_station(ctx, stream_id)

    @r.put("/{stream_id:int}")
    def update_stream(stream_id: int, body: StationUpdate) -> dict[str, Any]:
        """The updated station; 400/404/409."""
        return service.update_station(ctx, stream_id, body)

    @r.delete("/{stream_id:int}")
    def delete_stream(stream_id: int) -> dict[str, Any]:
        """``{"message": "Stream configuration N deleted successfully"}``; 404."""
        return service.delete_station(ctx, stream_id)

    @r.post("/{stream_id:int}/test")
    def test_stream(stream_id: int) -> dict[str, Any]:
        """``{stream_id, stream_url, connection_test}``; 404."""
        return service.test_station(ctx, stream_id)

    @r.post("/{stream_id:int}/record", status_code=202)
    def record_now(stream_id: int, body: RecordNow) -> dict[str, Any]:
        """202 with the new session (status ``recording``); 404 unknown station,
        409 ``MAX_CONCURRENT_RECORDINGS`` reached, 507 disk too full."""
        service.check_id(stream_id, "stream configuration")
        return ctx.recordings.record(stream_id, body.duration_seconds, trigger="manual")

    @r.post("/{stream_id:int}/artwork", openapi_extra=ARTWORK_BODY)
    async def upload_artwork(stream_id: int, request: Request) -> dict[str, Any]:
        """Multipart field ``artwork`` (png, jpg, jpeg, gif, bmp, webp ≤
        ``MAX_ARTWORK_SIZE_MB``): ``{stream_id, artwork_path, filename, file_size,
        message}``; 400 no file / bad type, 404, 413 too large, 422 not an image."""
        await run_in_threadpool(service.get_station, ctx, stream_id)
        limit = ctx.settings.max_artwork_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
            raise TooLarge(f"request of {declared} bytes; the artwork limit is "
                           f"{ctx.settings.max_artwork_size_mb:g} MB")
        form = await request.form(max_files=1, max_fields=20)
        try:
            upload = form.get(ARTWORK_FIELD)
            if not isinstance(upload, UploadFile):
                raise InvalidInput("No artwork file provided (multipart field 'artwork')")
            data = await upload.read(limit + 1)
            filename = upload.filename or ""
        finally:
            await form.close()
        return await run_in_threadpool(service.save_artwork, ctx, stream_id, filename, data)

    @r.delete("/{stream_id:int}/artwork")
    def delete_artwork(stream_id: int) -> dict[str, Any]:
        """``{stream_id, message: "Artwork deleted successfully"}``; 400 none; 404."""
        return service.delete_artwork(ctx, stream_id)

    return r
