"""Stations: create, read, update, delete, their cover art, and URL tests.

Every write runs in one :func:`taperoom.db.transaction`, is announced on the bus
(``station:changed`` with ``{action, station_id, station}``) and written to the
structured log (operation type ``configuration``). Deleting a station deletes its
schedules with it, and their scheduler jobs (``schedule:changed`` ``deleted``
for each). Schedules have their own service (:mod:`taperoom.recorder.schedules`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import InvalidInput, NotFound
from taperoom.events import Event, EventBus
from taperoom.recorder import repository as repo
from taperoom.recorder.artwork import ARTWORK_PREFIX, ArtworkFolder
from taperoom.recorder.logs import log_operation
from taperoom.recorder.repository import check_id
from taperoom.recorder.schemas import StationCreate, StationUpdate, station_dict
from taperoom.recorder.settings import RecorderSettings

log = logging.getLogger(__name__)

#: What the API calls a station in its messages (the contract's word).
WHAT = "stream configuration"


class JobRemover(Protocol):
    """Removes the scheduler job of a schedule (:class:`~taperoom.recorder.scheduler.CronJobs`)."""

    def remove(self, schedule_id: int) -> None:
        """Remove the job of `schedule_id`, if any."""


class StationService:
    """Stations of the recorder.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the recorder database.
    bus : EventBus
        Receives ``station:changed`` (and ``schedule:changed`` when a deleted
        station takes its schedules with it).
    settings : RecorderSettings
        ``TZ`` (times in answers), ``SPLIT_TRACKS`` (default of new stations),
        ``STREAM_ALLOWED_NETWORKS`` (URL tests).
    artwork : ArtworkFolder
        The cover art files.
    jobs : JobRemover
        The scheduler, whose jobs of a deleted station's schedules go with it.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, settings: RecorderSettings,
                 artwork: ArtworkFolder, jobs: JobRemover) -> None:
        self.db = db
        self.bus = bus
        self.settings = settings
        self.artwork = artwork
        self.jobs = jobs

    # -- reads ----------------------------------------------------------------------

    def list(self, *, skip: int = 0, limit: int = 100, search: str | None = None
             ) -> list[dict[str, Any]]:
        """Stations (``StreamConfigurationResponse`` dicts) ordered by name.

        Parameters
        ----------
        skip, limit : int
            Paging (rows skipped, most rows returned).
        search : str, optional
            Case-insensitive substring of name, artist or album.
        """
        with self.db() as db:
            rows = repo.list_stations(db, skip=skip, limit=limit, search=search or None)
            return [station_dict(r, self.settings.zone) for r in rows]

    def get(self, station_id: int) -> dict[str, Any]:
        """One station; NotFound when unknown."""
        check_id(station_id, WHAT)
        with self.db() as db:
            return station_dict(repo.get_station(db, station_id), self.settings.zone)

    def find(self, ref: str) -> tuple[int, str]:
        """``(id, name)`` of the station whose id or name (case-insensitive) is `ref`.

        Raises
        ------
        NotFound
            No such station.
        """
        with self.db() as db:
            row = repo.find_station(db, ref)
            return row.id, row.name

    def artwork_file(self, station_id: int) -> Path | None:
        """The cover image file of a station, None when it has none (or it is gone).

        Raises
        ------
        NotFound
            Unknown station.
        """
        check_id(station_id, WHAT)
        with self.db() as db:
            stored = repo.get_station(db, station_id).artwork_path
        path = self.artwork.file(stored)
        return path if path is not None and path.is_file() else None

    # -- writes ---------------------------------------------------------------------

    def create(self, body: StationCreate) -> dict[str, Any]:
        """Insert a station.

        Raises
        ------
        Conflict
            A station with the same name (case-insensitive) exists.
        """
        values = body.model_dump()
        if "split_tracks" not in body.model_fields_set:
            values["split_tracks"] = self.settings.split_tracks
        with transaction(self.db) as db:
            data = station_dict(repo.create_station(db, values), self.settings.zone)
        log_operation("configuration", f"stream configuration {data['id']} created: "
                      f"{data['name']}", station_id=data["id"])
        self.bus.send(Event.STATION_CHANGED, {"action": "created", "station_id": data["id"],
                                              "station": data})
        return data

    def update(self, station_id: int, body: StationUpdate) -> dict[str, Any]:
        """Change the fields present in `body` (``bitrate_kbps: null`` clears the bit
        rate; a null for any other field leaves it unchanged).

        Raises
        ------
        NotFound, Conflict
        """
        check_id(station_id, WHAT)
        values = {k: v for k, v in body.model_dump(exclude_unset=True).items()
                  if v is not None or k == "bitrate_kbps"}
        with transaction(self.db) as db:
            data = station_dict(repo.update_station(db, station_id, values),
                                self.settings.zone)
        log_operation("configuration", f"stream configuration {station_id} updated",
                      station_id=station_id, changed=sorted(values))
        self.bus.send(Event.STATION_CHANGED, {"action": "updated", "station_id": station_id,
                                              "station": data})
        return data

    def delete(self, station_id: int) -> dict[str, Any]:
        """Delete a station, its schedules (and their jobs) and its artwork file.

        Sessions keep their history (``station_name`` stays on them).

        Returns
        -------
        dict
            ``{"message": "Stream configuration N deleted successfully"}``.
        """
        check_id(station_id, WHAT)
        with transaction(self.db) as db:
            schedule_ids = [s.id for s in repo.list_schedules(db, limit=1_000_000,
                                                              station_id=station_id)]
            row = repo.delete_station(db, station_id)
            artwork, name = row.artwork_path, row.name
        for sid in schedule_ids:
            self.jobs.remove(sid)
        self.artwork.remove(artwork)
        log_operation("configuration", f"stream configuration {station_id} deleted: {name}",
                      station_id=station_id, schedules_deleted=schedule_ids)
        self.bus.send(Event.STATION_CHANGED, {"action": "deleted", "station_id": station_id,
                                              "station": None})
        for sid in schedule_ids:
            self.bus.send(Event.SCHEDULE_CHANGED, {"action": "deleted", "schedule_id": sid,
                                                   "schedule": None})
        return {"message": f"Stream configuration {station_id} deleted successfully"}

    # -- artwork --------------------------------------------------------------------

    def save_artwork(self, station_id: int, filename: str, data: bytes) -> dict[str, Any]:
        """Store the cover art of a station, replacing its previous file.

        The image is checked and written by :meth:`ArtworkFolder.write`; the
        station's ``artwork_path`` becomes ``artwork/<that name>`` (the contract's form).

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
        check_id(station_id, WHAT)
        with self.db() as db:
            repo.get_station(db, station_id)
        name = self.artwork.write(station_id, filename, data)
        path = self.settings.artwork_dir / name
        stored = f"{ARTWORK_PREFIX}/{name}"
        try:
            with transaction(self.db) as db:
                old = repo.get_station(db, station_id).artwork_path
                row = repo.update_station(db, station_id, {"artwork_path": stored})
                station = station_dict(row, self.settings.zone)
        except NotFound:  # deleted while we wrote the file
            path.unlink(missing_ok=True)
            raise
        if old and self.artwork.file(old) != path:
            self.artwork.remove(old)
        log_operation("configuration", f"artwork of stream configuration {station_id} "
                      "uploaded", station_id=station_id, file=name, size=len(data))
        self.bus.send(Event.STATION_CHANGED, {"action": "artwork", "station_id": station_id,
                                              "station": station})
        return {"stream_id": station_id, "artwork_path": stored, "filename": name,
                "file_size": len(data), "message": "Artwork uploaded successfully"}

    def delete_artwork(self, station_id: int) -> dict[str, Any]:
        """Remove a station's cover art (file and reference).

        Raises
        ------
        NotFound
            Unknown station.
        InvalidInput
            The station has no artwork.
        """
        check_id(station_id, WHAT)
        with transaction(self.db) as db:
            old = repo.get_station(db, station_id).artwork_path
            if not old:
                raise InvalidInput(f"stream configuration {station_id} has no artwork")
            station = station_dict(repo.update_station(db, station_id, {"artwork_path": None}),
                                   self.settings.zone)
        self.artwork.remove(old)
        self.bus.send(Event.STATION_CHANGED, {"action": "artwork", "station_id": station_id,
                                              "station": station})
        return {"stream_id": station_id, "message": "Artwork deleted successfully"}

    # -- URL tests ------------------------------------------------------------------

    def test_url(self, url: str) -> dict[str, Any]:
        """Probe a stream URL: ``{stream_url, connection_test: {success, message, ...}}``.

        ``connection_test`` is :func:`taperoom.recorder.capture.probe_stream_url`'s
        answer (content type, codec, bit rate, ICY name, HTTP status).

        Raises
        ------
        UrlRefused
            (an InvalidInput, HTTP 400) The URL, or a playlist entry, redirect, HLS
            entry or destination address it leads to, is outside the stream policy
            (``STREAM_ALLOWED_NETWORKS``).
        """
        from taperoom.recorder.capture import probe_stream_url
        from taperoom.recorder.urlpolicy import UrlRefused

        try:
            result = probe_stream_url(url, policy=self.settings.stream_policy)
        except UrlRefused as exc:
            log_operation("configuration", f"stream URL refused: {url}: {exc}")
            raise
        log_operation("configuration", f"stream URL tested: {url}: "
                      f"{'ok' if result.get('success') else result.get('message')}")
        return {"stream_url": url, "connection_test": result}

    def test_station(self, station_id: int) -> dict[str, Any]:
        """Probe a station's URL: ``{stream_id, stream_url, connection_test}``; NotFound."""
        url = self.get(station_id)["stream_url"]
        return {"stream_id": station_id, **self.test_url(url)}
