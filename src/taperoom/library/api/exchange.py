"""Routes of the exchange with other DJ software: playlist exports, the rekordbox
collection export, and imports.

* ``GET /api/playlists/{id}/export?format=m3u|m3u8|rekordbox``: ``m3u`` is the
  contract's body and headers; ``m3u8`` extended M3U in UTF-8 with absolute paths
  (``application/vnd.apple.mpegurl``, ``<name>.m3u8``); ``rekordbox`` rekordbox XML
  of the playlist and its tracks (``application/xml``, ``<name>.xml``). Another
  format is 400 ``Invalid format``, an unknown playlist 404; missing tracks are
  left out.
* ``GET /api/export/rekordbox``: the collection and every playlist in its crate
  folders as one rekordbox XML file (``taperoom.xml``).
* ``POST /api/import``: multipart field ``file`` (``.m3u``, ``.m3u8`` or rekordbox
  ``.xml``, by its file name) and optional ``base`` (the folder an M3U's relative
  paths start from). 413 beyond 64 MiB, 415 another kind of file, 400 no file or
  a file that does not read. See :mod:`taperoom.playlists.importer`.

Errors are bare ``{"error", "message"[, "details"]}`` as the playlist routes'.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from taperoom.library.api.deps import (
    PlaylistExporterDep,
    PlaylistImporterDep,
    PlaylistServiceDep,
)
from taperoom.library.api.playlists import PlaylistRoute
from taperoom.library.schemas import ERROR_RESPONSES, ErrorPublic, ImportPublic
from taperoom.playlists.errors import PlaylistInvalid
from taperoom.playlists.export import M3U_MEDIA_TYPE, attachment_header
from taperoom.playlists.exporter import M3U8_MEDIA_TYPE, XML_MEDIA_TYPE
from taperoom.playlists.guards import valid_id
from taperoom.playlists.importer import ImportTooLarge

#: Export formats of ``GET /api/playlists/{id}/export``.
EXPORT_FORMATS = ("m3u", "m3u8", "rekordbox")
#: Bytes a multipart body may carry beyond the file itself (headers, boundaries, base).
MULTIPART_OVERHEAD = 64 * 1024
#: File name of the collection export.
COLLECTION_FILE = "taperoom"
#: OpenAPI request body of the import: the route reads the form itself (to refuse a
#: too large body before reading it), so FastAPI cannot infer it.
IMPORT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "A .m3u, .m3u8 or rekordbox .xml file, at most 64 MiB"},
            "base": {"type": "string",
                     "description": "Absolute folder an M3U's relative paths start from"}}}}}}}
_FILE_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorPublic, "description": "The file is larger than 64 MiB"},
    415: {"model": ErrorPublic, "description": "Not a .m3u, .m3u8 or .xml file"}}

router = APIRouter(tags=["exchange"], route_class=PlaylistRoute,
                   responses=dict(ERROR_RESPONSES))


@router.get("/api/playlists/{playlist_id}/export", response_class=Response, responses={
    200: {"description": "The playlist as a file (an attachment)",
          "content": {media: {"schema": {"type": "string"}}
                      for media in (M3U_MEDIA_TYPE, M3U8_MEDIA_TYPE, XML_MEDIA_TYPE)}}})
def export_playlist(playlist_id: str, playlists: PlaylistServiceDep,
                    exporter: PlaylistExporterDep,
                    format: str = Query("m3u", max_length=16, description=(
                        "m3u (the contract's), m3u8 (UTF-8, absolute paths) or rekordbox"))
                    ) -> Response:
    """The playlist as ``m3u``, ``m3u8`` or ``rekordbox`` XML; 400 another format, 404."""
    kind = format.lower()
    if kind not in EXPORT_FORMATS:
        raise PlaylistInvalid("Invalid format",
                              "Supported formats are m3u, m3u8 and rekordbox")
    pid = valid_id(playlist_id)
    if kind == "m3u":
        name, text = playlists.export_m3u(pid)
        return Response(text, media_type=M3U_MEDIA_TYPE,
                        headers={"Content-Disposition": attachment_header(name)})
    if kind == "m3u8":
        name, data = exporter.playlist_m3u8(pid)
        return Response(data, media_type=M3U8_MEDIA_TYPE,
                        headers={"Content-Disposition": attachment_header(name, "m3u8")})
    name, data = exporter.playlist_rekordbox(pid)
    return Response(data, media_type=XML_MEDIA_TYPE,
                    headers={"Content-Disposition": attachment_header(name, "xml")})


@router.get("/api/export/rekordbox", response_class=Response, responses={
    200: {"description": "The collection and every playlist as rekordbox XML",
          "content": {XML_MEDIA_TYPE: {"schema": {"type": "string"}}}}})
def export_collection(exporter: PlaylistExporterDep) -> Response:
    """Every track that is not missing (BPM, key, grid, hot cues, rating, colour, play
    count) and every playlist in its folders, as one rekordbox XML file."""
    return Response(exporter.collection_rekordbox(), media_type=XML_MEDIA_TYPE,
                    headers={"Content-Disposition": attachment_header(COLLECTION_FILE, "xml")})


@router.post("/api/import", response_model=ImportPublic, openapi_extra=IMPORT_BODY,
             responses=_FILE_ERRORS)
async def import_file(request: Request, importer: PlaylistImporterDep) -> dict[str, Any]:
    """Import a playlist file: ``{imported: {playlists, folders, entries, cues, grids},
    created, unmatched, unmatched_count, problems}``; 400, 413, 415."""
    limit = importer.max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise ImportTooLarge("File too large", f"The request of {declared} bytes is larger "
                             f"than the {limit} bytes an import takes")
    form = await request.form(max_files=1, max_fields=5)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise PlaylistInvalid.from_fields([{
                "field": "file", "message": "a file is required (multipart field 'file')"}])
        data = await upload.read(limit + 1)
        filename = upload.filename or ""
        base = form.get("base")
    finally:
        await form.close()
    if len(data) > limit:
        raise ImportTooLarge("File too large",
                             f"The file is larger than the {limit} bytes an import takes")
    return await run_in_threadpool(
        importer.import_file, filename, data,
        base=base.strip() if isinstance(base, str) and base.strip() else None)
