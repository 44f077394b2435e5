"""Stations and schedules: CRUD, cron checks, artwork, export/import, URL tests.

Every write runs in one :func:`taperoom.db.transaction`; schedule writes then
bring the scheduler's job in line (:meth:`RecorderScheduler.sync`) and store the
job's next fire time on the row. The scheduler keeps its jobs in the same
database, so it is called *after* the row's transaction has committed (a second
writer inside an open SQLite write transaction would wait for it). Each change
is announced on the bus (``station:changed`` / ``schedule:changed`` with
``{action, station_id|schedule_id, station|schedule}``) and written to the
structured log (operation type ``configuration`` or ``scheduling``).
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from taperoom.db import transaction
from taperoom.errors import InvalidInput, NotFound, TaperoomError, TooLarge, Unprocessable
from taperoom.events import Event
from taperoom.recorder import repository as repo
from taperoom.recorder.logs import log_operation
from taperoom.recorder.models import utcnow
from taperoom.recorder.scheduler import describe, next_runs, parse_cron
from taperoom.recorder.schemas import (
    ImportBody,
    ScheduleCreate,
    ScheduleUpdate,
    StationCreate,
    StationUpdate,
    iso,
    schedule_dict,
    station_dict,
)

if TYPE_CHECKING:
    from taperoom.recorder.context import RecorderContext

log = logging.getLogger(__name__)

#: Largest id SQLite (and PostgreSQL ``BIGINT``) can hold; bigger ids do not exist.
MAX_ID = 2**63 - 1
#: Version of the export document (contract: ``"1.0"``).
EXPORT_VERSION = "1.0"
#: Artwork file types the original accepted, mapped to the Pillow format they must be.
ARTWORK_EXTENSIONS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "gif": "GIF",
                      "bmp": "BMP", "webp": "WEBP"}
#: Extension written for each Pillow format when the upload's own does not fit.
_CANONICAL_EXT = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp", "WEBP": "webp"}
#: Folder prefix of ``artwork_path`` values, as the contract shows them (``artwork/...``).
ARTWORK_PREFIX = "artwork"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


# -- helpers ----------------------------------------------------------------------------


def check_id(value: int, what: str) -> int:
    """`value` if it can be an id; NotFound (`what` names the kind) otherwise."""
    if value < 1 or value > MAX_ID:
        raise NotFound(f"{what} {value} not found")
    return value


def _utc_naive(when: datetime | None) -> datetime | None:
    return None if when is None else when.astimezone(UTC).replace(tzinfo=None)


def _errors_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'item'}: {e.get('msg')}"
        for e in exc.errors())


def _send(ctx: RecorderContext, event: Event, data: dict[str, Any]) -> None:
    ctx.bus.send(event, data)


# -- stations ---------------------------------------------------------------------------


def list_stations(ctx: RecorderContext, *, skip: int = 0, limit: int = 100,
                  search: str | None = None) -> list[dict[str, Any]]:
    """Stations (``StreamConfigurationResponse`` dicts) ordered by name.

    Parameters
    ----------
    skip, limit : int
        Paging (rows skipped, most rows returned).
    search : str, optional
        Case-insensitive substring of name, artist or album.
    """
    with ctx.sessions() as db:
        rows = repo.list_stations(db, skip=skip, limit=limit, search=search or None)
        return [station_dict(r, ctx.settings.zone) for r in rows]


def get_station(ctx: RecorderContext, station_id: int) -> dict[str, Any]:
    """One station; NotFound when unknown."""
    check_id(station_id, "stream configuration")
    with ctx.sessions() as db:
        return station_dict(repo.get_station(db, station_id), ctx.settings.zone)


def create_station(ctx: RecorderContext, body: StationCreate) -> dict[str, Any]:
    """Insert a station.

    Raises
    ------
    Conflict
        A station with the same name (case-insensitive) exists.
    """
    values = body.model_dump()
    if "split_tracks" not in body.model_fields_set:
        values["split_tracks"] = ctx.settings.split_tracks
    with transaction(ctx.sessions) as db:
        data = station_dict(repo.create_station(db, values), ctx.settings.zone)
    log_operation("configuration", f"stream configuration {data['id']} created: {data['name']}",
                  station_id=data["id"])
    _send(ctx, Event.STATION_CHANGED, {"action": "created", "station_id": data["id"],
                                       "station": data})
    return data


def update_station(ctx: RecorderContext, station_id: int, body: StationUpdate
                   ) -> dict[str, Any]:
    """Change the fields present in `body` (``bitrate_kbps: null`` clears the bit rate;
    a null for any other field leaves it unchanged).

    Raises
    ------
    NotFound, Conflict
    """
    check_id(station_id, "stream configuration")
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items()
              if v is not None or k == "bitrate_kbps"}
    with transaction(ctx.sessions) as db:
        data = station_dict(repo.update_station(db, station_id, values), ctx.settings.zone)
    log_operation("configuration", f"stream configuration {station_id} updated",
                  station_id=station_id, changed=sorted(values))
    _send(ctx, Event.STATION_CHANGED, {"action": "updated", "station_id": station_id,
                                       "station": data})
    return data


def delete_station(ctx: RecorderContext, station_id: int) -> dict[str, Any]:
    """Delete a station, its schedules (and their jobs) and its artwork file.

    Sessions keep their history (``station_name`` stays on them).

    Returns
    -------
    dict
        ``{"message": "Stream configuration N deleted successfully"}``.
    """
    check_id(station_id, "stream configuration")
    with transaction(ctx.sessions) as db:
        schedule_ids = [s.id for s in repo.list_schedules(db, limit=1_000_000,
                                                          stream_config_id=station_id)]
        row = repo.delete_station(db, station_id)
        artwork, name = row.artwork_path, row.name
    for sid in schedule_ids:
        ctx.scheduler.remove(sid)
    remove_artwork_file(ctx, artwork)
    log_operation("configuration", f"stream configuration {station_id} deleted: {name}",
                  station_id=station_id, schedules_deleted=schedule_ids)
    _send(ctx, Event.STATION_CHANGED, {"action": "deleted", "station_id": station_id,
                                       "station": None})
    for sid in schedule_ids:
        _send(ctx, Event.SCHEDULE_CHANGED, {"action": "deleted", "schedule_id": sid,
                                            "schedule": None})
    return {"message": f"Stream configuration {station_id} deleted successfully"}


# -- artwork ----------------------------------------------------------------------------


def artwork_file(ctx: RecorderContext, artwork_path: str | None) -> Path | None:
    """The file in ``ARTWORK_DIR`` that a stored ``artwork_path`` names (None if none).

    Only the base name is used, so a stored value can never point outside
    ``ARTWORK_DIR``.
    """
    if not artwork_path:
        return None
    name = Path(artwork_path).name
    if not name or name in (".", ".."):
        return None
    return ctx.settings.artwork_dir / name


def remove_artwork_file(ctx: RecorderContext, artwork_path: str | None) -> bool:
    """Delete the artwork file a stored ``artwork_path`` names; True if one was deleted."""
    path = artwork_file(ctx, artwork_path)
    if path is None or not path.is_file():
        return False
    path.unlink()
    return True


def safe_stem(filename: str, *, max_length: int = 60) -> str:
    """An ASCII file-name stem made of `filename`'s stem (``werkzeug.secure_filename``
    style: runs of other characters become ``_``); ``artwork`` when nothing is left."""
    stem = Path(filename.replace("\\", "/")).stem
    stem = _SAFE.sub("_", stem).strip("._-")
    return stem[:max_length] or "artwork"


def check_image(data: bytes) -> str:
    """Verify that `data` is a whole image of an accepted type; returns its Pillow format.

    Parameters
    ----------
    data : bytes
        The uploaded file.

    Raises
    ------
    Unprocessable
        Not an image, a truncated one, a type other than PNG/JPEG/GIF/BMP/WebP,
        or a decompression bomb (Pillow's ``MAX_IMAGE_PIXELS`` guard).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = str(img.format or "")
            img.verify()
        with Image.open(io.BytesIO(data)) as img:  # verify() leaves the image unusable
            img.load()
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise Unprocessable(f"the uploaded file is not a valid image: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Unprocessable(f"the uploaded image is damaged: {exc}") from exc
    if fmt not in _CANONICAL_EXT:
        raise Unprocessable(f"unsupported image type {fmt or 'unknown'}; allowed: "
                            f"{', '.join(sorted(ARTWORK_EXTENSIONS))}")
    return fmt


def save_artwork(ctx: RecorderContext, station_id: int, filename: str, data: bytes
                 ) -> dict[str, Any]:
    """Store the cover art of a station, replacing its previous file.

    The file is written as ``ARTWORK_DIR/stream_<id>_<safe stem>.<ext>`` (through
    a temporary file and a rename); the station's ``artwork_path`` becomes
    ``artwork/<that name>`` (the contract's form). ``<ext>`` is the upload's own
    extension when it matches the image's real type, else that type's usual one.

    Parameters
    ----------
    station_id : int
    filename : str
        Name the client gave the file (its extension selects the accepted type).
    data : bytes
        File contents.

    Returns
    -------
    dict
        ``{stream_id, artwork_path, filename, file_size, message}``.

    Raises
    ------
    NotFound
        Unknown station.
    InvalidInput
        No file name or a disallowed extension.
    TooLarge
        Larger than ``MAX_ARTWORK_SIZE_MB``.
    Unprocessable
        Empty, not really an image, or damaged.
    """
    check_id(station_id, "stream configuration")
    with ctx.sessions() as db:
        repo.get_station(db, station_id)
    if not filename:
        raise InvalidInput("No artwork file provided")
    ext = Path(filename).suffix.lower().lstrip(".")
    if ext not in ARTWORK_EXTENSIONS:
        raise InvalidInput(f"Invalid file type {('.' + ext) if ext else '(none)'}; allowed: "
                           f"{', '.join(sorted(ARTWORK_EXTENSIONS))}")
    limit = ctx.settings.max_artwork_bytes
    if len(data) > limit:
        raise TooLarge(f"artwork is {len(data)} bytes; the limit is "
                       f"{ctx.settings.max_artwork_size_mb:g} MB")
    if not data:
        raise Unprocessable("the uploaded file is empty")
    fmt = check_image(data)
    if ARTWORK_EXTENSIONS[ext] != fmt:
        ext = _CANONICAL_EXT[fmt]
    name = f"stream_{station_id}_{safe_stem(filename)}.{ext}"
    folder = ctx.settings.artwork_dir
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, folder / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    stored = f"{ARTWORK_PREFIX}/{name}"
    try:
        with transaction(ctx.sessions) as db:
            old = repo.get_station(db, station_id).artwork_path
            row = repo.update_station(db, station_id, {"artwork_path": stored})
            station = station_dict(row, ctx.settings.zone)
    except NotFound:  # deleted while we wrote the file
        (folder / name).unlink(missing_ok=True)
        raise
    if old and artwork_file(ctx, old) != folder / name:
        remove_artwork_file(ctx, old)
    log_operation("configuration", f"artwork of stream configuration {station_id} uploaded",
                  station_id=station_id, file=name, size=len(data))
    _send(ctx, Event.STATION_CHANGED, {"action": "artwork", "station_id": station_id,
                                       "station": station})
    return {"stream_id": station_id, "artwork_path": stored, "filename": name,
            "file_size": len(data), "message": "Artwork uploaded successfully"}


def delete_artwork(ctx: RecorderContext, station_id: int) -> dict[str, Any]:
    """Remove a station's cover art (file and reference).

    Raises
    ------
    NotFound
        Unknown station.
    InvalidInput
        The station has no artwork.
    """
    check_id(station_id, "stream configuration")
    with transaction(ctx.sessions) as db:
        old = repo.get_station(db, station_id).artwork_path
        if not old:
            raise InvalidInput(f"stream configuration {station_id} has no artwork")
        station = station_dict(repo.update_station(db, station_id, {"artwork_path": None}),
                               ctx.settings.zone)
    remove_artwork_file(ctx, old)
    _send(ctx, Event.STATION_CHANGED, {"action": "artwork", "station_id": station_id,
                                       "station": station})
    return {"stream_id": station_id, "message": "Artwork deleted successfully"}


# -- URL tests --------------------------------------------------------------------------


def test_url(ctx: RecorderContext, url: str) -> dict[str, Any]:
    """Probe a stream URL: ``{stream_url, connection_test: {success, message, ...}}``.

    ``connection_test`` is :func:`taperoom.recorder.capture.probe_stream_url`'s
    answer (content type, codec, bit rate, ICY name, HTTP status).

    Raises
    ------
    UrlRefused
        (an InvalidInput, HTTP 400) The URL, or a playlist entry, redirect, HLS entry
        or destination address it leads to, is outside the stream policy
        (``STREAM_ALLOWED_NETWORKS``).
    """
    from taperoom.recorder.capture import probe_stream_url
    from taperoom.recorder.urlpolicy import UrlRefused

    try:
        result = probe_stream_url(url, policy=ctx.settings.stream_policy)
    except UrlRefused as exc:
        log_operation("configuration", f"stream URL refused: {url}: {exc}")
        raise
    log_operation("configuration", f"stream URL tested: {url}: "
                  f"{'ok' if result.get('success') else result.get('message')}")
    return {"stream_url": url, "connection_test": result}


def test_station(ctx: RecorderContext, station_id: int) -> dict[str, Any]:
    """Probe a station's URL: ``{stream_id, stream_url, connection_test}``; NotFound."""
    url = get_station(ctx, station_id)["stream_url"]
    return {"stream_id": station_id, **test_url(ctx, url)}


# -- schedules --------------------------------------------------------------------------


def list_schedules(ctx: RecorderContext, *, skip: int = 0, limit: int = 100,
                   active: bool | None = None, stream_config_id: int | None = None
                   ) -> list[dict[str, Any]]:
    """Schedules (``RecordingScheduleResponse`` dicts) ordered by id, with the filters."""
    with ctx.sessions() as db:
        rows = repo.list_schedules(db, skip=skip, limit=limit, active=active,
                                   stream_config_id=stream_config_id)
        return [schedule_dict(r, ctx.settings.zone) for r in rows]


def get_schedule(ctx: RecorderContext, schedule_id: int) -> dict[str, Any]:
    """One schedule; NotFound when unknown."""
    check_id(schedule_id, "recording schedule")
    with ctx.sessions() as db:
        return schedule_dict(repo.get_schedule(db, schedule_id), ctx.settings.zone)


def sync_schedule(ctx: RecorderContext, schedule_id: int, expression: str, active: bool
          ) -> dict[str, Any]:
    """Create/replace/remove the job of a committed schedule, store its next fire
    time (naive UTC) on the row, and return the schedule's dict."""
    nxt = ctx.scheduler.sync(schedule_id, expression, active)
    with transaction(ctx.sessions) as db:
        repo.set_next_run(db, schedule_id, _utc_naive(nxt))
        db.flush()
        row = repo.get_schedule(db, schedule_id)
        db.refresh(row)
        return schedule_dict(row, ctx.settings.zone)


def create_schedule(ctx: RecorderContext, body: ScheduleCreate) -> dict[str, Any]:
    """Insert a schedule and its scheduler job (when active); ``max_retries``
    defaults to ``DEFAULT_MAX_RETRIES``.

    Raises
    ------
    InvalidInput
        Bad cron expression.
    NotFound
        Unknown station.
    """
    check_id(body.stream_config_id, "stream configuration")
    expression = " ".join(body.cron_expression.split())
    parse_cron(expression, ctx.settings.zone)
    values = body.model_dump()
    values["cron_expression"] = expression
    if "max_retries" not in body.model_fields_set:
        values["max_retries"] = ctx.settings.default_max_retries
    with transaction(ctx.sessions) as db:
        sid = repo.create_schedule(db, values).id
    try:
        data = sync_schedule(ctx, sid, expression, body.is_active)
    except BaseException:
        with transaction(ctx.sessions) as db:
            repo.delete_schedule(db, sid)
        ctx.scheduler.remove(sid)
        raise
    log_operation("scheduling", f"recording schedule {sid} created: {expression} "
                  f"for {body.duration_minutes} min", schedule_id=sid,
                  station_id=body.stream_config_id)
    _send(ctx, Event.SCHEDULE_CHANGED, {"action": "created", "schedule_id": sid,
                                        "schedule": data})
    return data


def update_schedule(ctx: RecorderContext, schedule_id: int, body: ScheduleUpdate
                    ) -> dict[str, Any]:
    """Change the fields present in `body` and re-sync the job.

    Raises
    ------
    InvalidInput
        Bad cron expression.
    NotFound
        Unknown schedule or station.
    """
    check_id(schedule_id, "recording schedule")
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    if "cron_expression" in values:
        values["cron_expression"] = " ".join(values["cron_expression"].split())
        parse_cron(values["cron_expression"], ctx.settings.zone)
    if "stream_config_id" in values:
        check_id(values["stream_config_id"], "stream configuration")
    with transaction(ctx.sessions) as db:
        row = repo.update_schedule(db, schedule_id, values)
        expression, active = row.cron_expression, bool(row.is_active)
    data = sync_schedule(ctx, schedule_id, expression, active)
    log_operation("scheduling", f"recording schedule {schedule_id} updated",
                  schedule_id=schedule_id, changed=sorted(values))
    _send(ctx, Event.SCHEDULE_CHANGED, {"action": "updated", "schedule_id": schedule_id,
                                        "schedule": data})
    return data


def delete_schedule(ctx: RecorderContext, schedule_id: int) -> dict[str, Any]:
    """Delete a schedule and its job: ``{"message": "Recording schedule N deleted
    successfully"}``; NotFound when unknown."""
    check_id(schedule_id, "recording schedule")
    with transaction(ctx.sessions) as db:
        repo.delete_schedule(db, schedule_id)
    ctx.scheduler.remove(schedule_id)
    log_operation("scheduling", f"recording schedule {schedule_id} deleted",
                  schedule_id=schedule_id)
    _send(ctx, Event.SCHEDULE_CHANGED, {"action": "deleted", "schedule_id": schedule_id,
                                        "schedule": None})
    return {"message": f"Recording schedule {schedule_id} deleted successfully"}


def set_active(ctx: RecorderContext, schedule_id: int, active: bool) -> dict[str, Any]:
    """Activate or deactivate a schedule (adds or removes its job).

    Returns
    -------
    dict
        ``{schedule_id, is_active, message: "Schedule activated|deactivated
        successfully", next_run_time}``.
    """
    data = update_schedule(ctx, schedule_id, ScheduleUpdate(is_active=active))
    return {"schedule_id": schedule_id, "is_active": active,
            "message": f"Schedule {'activated' if active else 'deactivated'} successfully",
            "next_run_time": data["next_run_time"]}


def next_run(ctx: RecorderContext, schedule_id: int) -> dict[str, Any]:
    """``{schedule_id, next_run_time ISO|null, is_active, cron_expression}``.

    The time is the scheduler job's; while the scheduler is not running (CLI) it
    is computed from the cron expression. Inactive schedules have none.
    """
    sched = get_schedule(ctx, schedule_id)
    when: datetime | None = None
    if sched["is_active"]:
        when = ctx.scheduler.next_run(schedule_id)
        if when is None:
            runs = next_runs(sched["cron_expression"], ctx.settings.zone, 1)
            when = runs[0] if runs else None
    return {"schedule_id": schedule_id, "next_run_time": iso(when, ctx.settings.zone),
            "is_active": sched["is_active"], "cron_expression": sched["cron_expression"]}


def check_after(after: datetime | None, zone: Any) -> datetime | None:
    """The start instant of a next-runs listing, aware (naive = in `zone`).

    Raises
    ------
    InvalidInput
        Outside the years 1970-9000 (fire times near the ends of ``datetime``'s
        range overflow).
    """
    if after is None:
        return None
    if after.tzinfo is None:
        after = after.replace(tzinfo=zone)
    if not 1970 <= after.year <= 9000:
        raise InvalidInput("after must lie between the years 1970 and 9000")
    return after


def validate_cron(ctx: RecorderContext, expression: str, *, after: datetime | None = None,
                  count: int = 5) -> dict[str, Any]:
    """Check a cron expression and list its next fire times in ``TZ``.

    Parameters
    ----------
    expression : str
        5-field cron expression.
    after : datetime, optional
        Start instant (naive = in ``TZ``); default now.
    count : int
        How many fire times (contract: 5).

    Returns
    -------
    dict
        ``{valid: true, cron_expression, next_run_time, next_runs: [ISO...],
        description, timezone}``.

    Raises
    ------
    InvalidInput
        Invalid expression (message starts with "Invalid cron expression format"),
        or `after` out of range (see :func:`check_after`).
    """
    zone = ctx.settings.zone
    expression = " ".join(expression.split())
    after = check_after(after, zone)
    runs = next_runs(expression, zone, count, after)
    return {"valid": True, "cron_expression": expression,
            "next_run_time": iso(runs[0], zone) if runs else None,
            "next_runs": [iso(r, zone) for r in runs], "description": describe(expression),
            "timezone": ctx.settings.zone_name}


# -- export / import --------------------------------------------------------------------


def export_document(ctx: RecorderContext) -> dict[str, Any]:
    """All stations and schedules: ``{streams, schedules, exported_at, version: "1.0"}``.

    Schedules also carry ``stream_name`` (beside the contract's fields), so a
    document edited by hand still says which station each schedule belongs to.
    """
    zone = ctx.settings.zone
    with ctx.sessions() as db:
        stations = repo.list_stations(db, limit=1_000_000)
        names = {s.id: s.name for s in stations}
        streams = [station_dict(s, zone) for s in sorted(stations, key=lambda s: s.id)]
        schedules = []
        for row in repo.all_schedules(db):
            d = schedule_dict(row, zone)
            d["stream_name"] = names.get(row.stream_config_id)
            schedules.append(d)
    return {"streams": streams, "schedules": schedules,
            "exported_at": iso(utcnow(), zone), "version": EXPORT_VERSION}


def check_version(version: str) -> None:
    """Accept export documents of format 1.x; InvalidInput otherwise."""
    if str(version).split(".")[0] != EXPORT_VERSION.split(".")[0]:
        raise InvalidInput(f"unsupported export version {version!r} (expected {EXPORT_VERSION})")


def _label(kind: str, index: int, item: Any) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return f"{kind}[{index}]" + (f" ({name})" if name else "")


def station_values(item: Any) -> dict[str, Any]:
    """Validated station fields of one exported/imported stream item.

    Raises
    ------
    InvalidInput
        The item is not an object or fails :class:`StationCreate`'s checks.
    """
    if not isinstance(item, dict):
        raise InvalidInput("item is not an object")
    try:
        return StationCreate.model_validate(item).model_dump()
    except ValidationError as exc:
        raise InvalidInput(_errors_text(exc)) from exc


def schedule_values(item: Any, stream_config_id: int, zone: Any) -> dict[str, Any]:
    """Validated schedule fields of one exported/imported schedule item, attached to
    `stream_config_id`.

    Raises
    ------
    InvalidInput
        Not an object, fails :class:`ScheduleCreate`'s checks, or a bad cron expression.
    """
    if not isinstance(item, dict):
        raise InvalidInput("item is not an object")
    try:
        body = ScheduleCreate.model_validate({**item, "stream_config_id": stream_config_id})
    except ValidationError as exc:
        raise InvalidInput(_errors_text(exc)) from exc
    values = body.model_dump()
    values["cron_expression"] = " ".join(body.cron_expression.split())
    parse_cron(values["cron_expression"], zone)
    return values


def resolve_stream_ref(item: dict[str, Any], by_old_id: dict[Any, int | None],
                       by_index: list[int | None], by_name: dict[str, int]) -> int:
    """The new station id a schedule item refers to.

    Tried in order: ``stream_config_id`` as the ``id`` of a stream of the same
    document; ``stream_index`` (0-based position in ``streams``); ``stream_name``
    (a station of the document or already in the database, case-insensitive).

    Raises
    ------
    InvalidInput
        The reference matches nothing, or the stream it names failed to import.
    """
    old = item.get("stream_config_id")
    if isinstance(old, int | str) and old in by_old_id:
        new = by_old_id[old]
        if new is None:
            raise InvalidInput(f"its stream (id {old}) was not imported")
        return new
    index = item.get("stream_index")
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(by_index):
        new = by_index[index]
        if new is None:
            raise InvalidInput(f"its stream (index {index}) was not imported")
        return new
    name = item.get("stream_name")
    if isinstance(name, str) and name.lower() in by_name:
        return by_name[name.lower()]
    raise InvalidInput("refers to no stream of the document (stream_config_id, "
                       "stream_index or stream_name)")


def import_document(ctx: RecorderContext, body: ImportBody) -> dict[str, Any]:
    """Create the stations and schedules of an export document.

    Every item is validated on its own; a bad item is reported in ``errors`` and
    the others are still imported (each in its own transaction). Schedules refer
    to streams of the same document (see :func:`resolve_stream_ref`).

    Returns
    -------
    dict
        ``{imported_streams, imported_schedules, stream_ids, schedule_ids,
        errors: [str], message}``.

    Raises
    ------
    InvalidInput
        Unsupported document version.
    """
    check_version(body.version)
    zone = ctx.settings.zone
    errors: list[str] = []
    stream_ids: list[int] = []
    by_old_id: dict[Any, int | None] = {}
    by_index: list[int | None] = []
    for i, item in enumerate(body.streams):
        new_id: int | None = None
        try:
            values = station_values(item)
            with transaction(ctx.sessions) as db:
                new_id = repo.create_station(db, values).id
            stream_ids.append(new_id)
        except TaperoomError as exc:
            errors.append(f"{_label('streams', i, item)}: {exc}")
        by_index.append(new_id)
        if isinstance(item, dict) and isinstance(item.get("id"), int | str):
            by_old_id[item["id"]] = new_id
    with ctx.sessions() as db:
        by_name = {s.name.lower(): s.id for s in repo.list_stations(db, limit=1_000_000)}
    schedule_ids: list[int] = []
    synced: list[tuple[int, str, bool]] = []
    for i, item in enumerate(body.schedules):
        try:
            if not isinstance(item, dict):
                raise InvalidInput("item is not an object")
            station_id = resolve_stream_ref(item, by_old_id, by_index, by_name)
            values = schedule_values(item, station_id, zone)
            with transaction(ctx.sessions) as db:
                sid = repo.create_schedule(db, values).id
            schedule_ids.append(sid)
            synced.append((sid, values["cron_expression"], bool(values["is_active"])))
        except TaperoomError as exc:
            errors.append(f"schedules[{i}]: {exc}")
    for sid, expression, active in synced:
        sync_schedule(ctx, sid, expression, active)
    message = (f"Imported {len(stream_ids)} streams and {len(schedule_ids)} schedules"
               + (f" with {len(errors)} errors" if errors else ""))
    log_operation("configuration", message, errors=len(errors))
    if stream_ids:
        _send(ctx, Event.STATION_CHANGED, {"action": "imported", "station_id": None,
                                           "station_ids": stream_ids, "station": None})
    if schedule_ids:
        _send(ctx, Event.SCHEDULE_CHANGED, {"action": "imported", "schedule_id": None,
                                            "schedule_ids": schedule_ids, "schedule": None})
    return {"imported_streams": len(stream_ids), "imported_schedules": len(schedule_ids),
            "stream_ids": stream_ids, "schedule_ids": schedule_ids, "errors": errors,
            "message": message}
