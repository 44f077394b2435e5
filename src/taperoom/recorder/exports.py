"""Export and import of the configuration: every station and schedule as one document.

The document is the contract's ``{streams, schedules, exported_at, version: "1.0"}``
(``GET /api/streams/export``, ``POST /api/streams/import``, and the
``configuration.json`` of a backup, :mod:`taperoom.recorder.backup`). Schedules
refer to streams of the same document (see :func:`resolve_stream_ref`). On
import every item is validated on its own, with the API's own request models;
a bad item is reported and the others are still imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import InvalidInput, TaperoomError
from taperoom.events import Event, EventBus
from taperoom.recorder import repository as repo
from taperoom.recorder.logs import log_operation
from taperoom.recorder.models import utcnow
from taperoom.recorder.scheduler import parse_cron
from taperoom.recorder.schedules import ScheduleService
from taperoom.recorder.schemas import (
    ImportBody,
    ScheduleCreate,
    StationCreate,
    iso,
    schedule_dict,
    station_dict,
)
from taperoom.recorder.settings import RecorderSettings

#: Version of the export document (contract: ``"1.0"``).
EXPORT_VERSION = "1.0"


def _errors_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'item'}: {e.get('msg')}"
        for e in exc.errors())


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


def schedule_values(item: Any, station_id: int, zone: Any) -> dict[str, Any]:
    """Validated schedule fields of one exported/imported schedule item, attached to
    the station `station_id`.

    Raises
    ------
    InvalidInput
        Not an object, fails :class:`ScheduleCreate`'s checks, or a bad cron expression.
    """
    if not isinstance(item, dict):
        raise InvalidInput("item is not an object")
    try:
        body = ScheduleCreate.model_validate({**item, "stream_config_id": station_id})
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


@dataclass
class ScheduleImport:
    """What :func:`import_schedules` did.

    Attributes
    ----------
    ids : list of int
        Ids of the schedules created, in document order.
    skipped : int
        Items left out because their station was not imported (``skip_unresolved``).
    errors : list of str
        ``"schedules[i]: reason"`` for each item refused.
    """

    ids: list[int] = field(default_factory=list)
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def import_schedules(db: sessionmaker[Session], schedules: ScheduleService,
                     items: list[Any], refs: tuple[dict[Any, int | None], list[int | None],
                                                   dict[str, int]],
                     zone: Any, *, skip_unresolved: bool = False) -> ScheduleImport:
    """Create the schedules of an imported or restored document, each in its own
    transaction, then give them their scheduler jobs.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the recorder database.
    schedules : ScheduleService
        Gives each created schedule its scheduler job (after every row is written).
    items : list
        The document's ``schedules`` items (validated one by one).
    refs : tuple
        ``(by_old_id, by_index, by_name)`` for :func:`resolve_stream_ref`.
    zone : tzinfo
        Zone of the cron expressions.
    skip_unresolved : bool
        Count an item whose station was not imported as skipped instead of an error
        (a restore that keeps existing stations).

    Returns
    -------
    ScheduleImport
    """
    done = ScheduleImport()
    synced: list[tuple[int, str, bool]] = []
    for i, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise InvalidInput("item is not an object")
            try:
                station_id = resolve_stream_ref(item, *refs)
            except InvalidInput:
                if not skip_unresolved:
                    raise
                done.skipped += 1
                continue
            values = schedule_values(item, station_id, zone)
            with transaction(db) as s:
                sid = repo.create_schedule(s, values).id
            done.ids.append(sid)
            synced.append((sid, values["cron_expression"], bool(values["is_active"])))
        except TaperoomError as exc:
            done.errors.append(f"schedules[{i}]: {exc}")
    for sid, expression, active in synced:
        schedules.sync(sid, expression, active)
    return done


class ExportService:
    """Exports and imports the configuration document.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the recorder database.
    bus : EventBus
        Receives ``station:changed`` / ``schedule:changed`` ``imported``.
    settings : RecorderSettings
        ``TZ`` (times in the document, zone of the cron expressions).
    schedules : ScheduleService
        Gives the imported schedules their scheduler jobs.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, settings: RecorderSettings,
                 schedules: ScheduleService) -> None:
        self.db = db
        self.bus = bus
        self.settings = settings
        self.schedules = schedules

    def export_document(self) -> dict[str, Any]:
        """All stations and schedules: ``{streams, schedules, exported_at, version: "1.0"}``.

        Schedules also carry ``stream_name`` (beside the contract's fields), so a
        document edited by hand still says which station each schedule belongs to.
        """
        zone = self.settings.zone
        with self.db() as db:
            stations = repo.list_stations(db, limit=1_000_000)
            names = {s.id: s.name for s in stations}
            streams = [station_dict(s, zone) for s in sorted(stations, key=lambda s: s.id)]
            schedules = []
            for row in repo.all_schedules(db):
                d = schedule_dict(row, zone)
                d["stream_name"] = names.get(row.station_id)
                schedules.append(d)
        return {"streams": streams, "schedules": schedules,
                "exported_at": iso(utcnow(), zone), "version": EXPORT_VERSION}

    def import_document(self, body: ImportBody) -> dict[str, Any]:
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
        zone = self.settings.zone
        errors: list[str] = []
        stream_ids: list[int] = []
        by_old_id: dict[Any, int | None] = {}
        by_index: list[int | None] = []
        for i, item in enumerate(body.streams):
            new_id: int | None = None
            try:
                values = station_values(item)
                with transaction(self.db) as db:
                    new_id = repo.create_station(db, values).id
                stream_ids.append(new_id)
            except TaperoomError as exc:
                errors.append(f"{_label('streams', i, item)}: {exc}")
            by_index.append(new_id)
            if isinstance(item, dict) and isinstance(item.get("id"), int | str):
                by_old_id[item["id"]] = new_id
        with self.db() as db:
            by_name = {s.name.lower(): s.id for s in repo.list_stations(db, limit=1_000_000)}
        imported = import_schedules(self.db, self.schedules, body.schedules,
                                    (by_old_id, by_index, by_name), zone)
        schedule_ids = imported.ids
        errors.extend(imported.errors)
        message = (f"Imported {len(stream_ids)} streams and {len(schedule_ids)} schedules"
                   + (f" with {len(errors)} errors" if errors else ""))
        log_operation("configuration", message, errors=len(errors))
        if stream_ids:
            self.bus.send(Event.STATION_CHANGED, {"action": "imported", "station_id": None,
                                                  "station_ids": stream_ids, "station": None})
        if schedule_ids:
            self.bus.send(Event.SCHEDULE_CHANGED, {
                "action": "imported", "schedule_id": None, "schedule_ids": schedule_ids,
                "schedule": None})
        return {"imported_streams": len(stream_ids), "imported_schedules": len(schedule_ids),
                "stream_ids": stream_ids, "schedule_ids": schedule_ids, "errors": errors,
                "message": message}
