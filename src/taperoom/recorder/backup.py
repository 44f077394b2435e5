"""Configuration backups: zip files of stations, schedules and artwork in ``DATA_DIR/backups``.

A backup ``backup_YYYYMMDD_HHMMSS.zip`` (local time; ``auto_backup_...`` for
automatic ones, or the name the client chose) holds

* ``metadata.json`` -- ``{version, format, created_at, streams_count,
  schedules_count, include_artwork, artwork_files: [...]}``;
* ``configuration.json`` -- the export document of ``GET /api/streams/export``;
* ``artwork/<file>`` -- the stations' cover art, when asked for.

It is written to a hidden temporary file and renamed, so a crash never leaves a
half-written backup under a backup's name. Every file name a client sends is a
bare name of a ``.zip`` in the backups folder: anything with a path part is
refused (400) and a missing file is a 404. Archives are read member by member,
by exact names, never extracted by the names they contain (no "zip slip"), and
every member's declared size is checked before it is read (no zip bomb).
A damaged archive is reported as 422, never as a server error.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import Conflict, InvalidInput, NotFound, TaperoomError, Unprocessable
from taperoom.events import Event, EventBus
from taperoom.recorder import repository as repo
from taperoom.recorder.artwork import ArtworkFolder
from taperoom.recorder.exports import (
    ExportService,
    check_version,
    import_schedules,
    resolve_stream_ref,
    schedule_values,
    station_values,
)
from taperoom.recorder.logs import log_operation
from taperoom.recorder.schedules import ScheduleService
from taperoom.recorder.schemas import ImportBody, iso
from taperoom.recorder.settings import RecorderSettings
from taperoom.recorder.stations import StationService

#: Version of the backup format written into ``metadata.json``.
BACKUP_VERSION = "1.0"
FORMAT = "taperoom-recorder-backup"
METADATA = "metadata.json"
CONFIGURATION = "configuration.json"
ARTWORK_FOLDER = "artwork/"
#: Automatic backups kept; older ``auto_backup_*`` files are deleted.
AUTO_BACKUPS_KEPT = 10
#: Largest ``configuration.json`` / ``metadata.json`` read (bytes, uncompressed).
MAX_JSON_BYTES = 32 * 1024 * 1024
_BARE = re.compile(r"^[\w][\w.() -]*\.zip$")
_ARTWORK_NAME = re.compile(r"^stream_(\d+)_([\w.-]+)$")


class InvalidBackup(Unprocessable):
    """A backup checked with ``POST /api/backup/validate`` does not pass (HTTP 422).

    Its answer is the whole check report (``{backup_filename, valid: false, errors,
    metadata, artwork_files, streams_count, schedules_count, message}``) with the
    recorder's ``error`` and ``status_code`` (see :meth:`answer`).

    Parameters
    ----------
    report : dict
        The report of :meth:`BackupService.validate`.
    """

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(str(report["message"]))
        self.report = report

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The report first, then the keys of the usual `body` that it lacks."""
        return {**self.report, **{k: v for k, v in body.items() if k not in self.report}}


# -- read and validate ------------------------------------------------------------------


def _read_json(zf: zipfile.ZipFile, name: str) -> Any:
    try:
        info = zf.getinfo(name)
    except KeyError as exc:
        raise Unprocessable(f"the backup has no {name}") from exc
    if info.file_size > MAX_JSON_BYTES:
        raise Unprocessable(f"{name} is too large ({info.file_size} bytes)")
    try:
        raw = zf.read(info)
        return json.loads(raw.decode("utf-8"))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError,
            ValueError, RuntimeError, NotImplementedError) as exc:
        raise Unprocessable(f"{name} cannot be read: {exc}") from exc


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise Unprocessable(f"{path.name} is not a readable zip archive: {exc}") from exc


def inspect_backup(path: Path, max_artwork_bytes: int) -> dict[str, Any]:
    """Check one backup archive without changing anything.

    Checks: the zip's CRC of every member (``ZipFile.testzip``), ``metadata.json``
    (an object of a 1.x version), ``configuration.json`` (an export document whose
    every stream and schedule passes the API's validation, counts matching the
    metadata), and the artwork members (sizes within ``MAX_ARTWORK_SIZE_MB``).

    Parameters
    ----------
    path : Path
        The archive.
    max_artwork_bytes : int
        Largest artwork member accepted.

    Returns
    -------
    dict
        ``{valid, errors: [str], metadata, document, artwork_files, streams_count,
        schedules_count}``; ``document`` is None when unreadable.
    """
    errors: list[str] = []
    metadata: dict[str, Any] | None = None
    document: dict[str, Any] | None = None
    artwork: list[str] = []
    try:
        with _open(path) as zf:
            try:
                bad = zf.testzip()
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError,
                    RuntimeError, NotImplementedError) as exc:
                bad = f"({exc})"
            if bad is not None:
                errors.append(f"archive member {bad} is damaged (CRC or header error)")
            meta = _read_json(zf, METADATA)
            if not isinstance(meta, dict):
                errors.append("metadata.json is not an object")
            else:
                metadata = meta
                if str(meta.get("version", "")).split(".")[0] != BACKUP_VERSION.split(".")[0]:
                    errors.append(f"unsupported backup version {meta.get('version')!r}")
            doc = _read_json(zf, CONFIGURATION)
            if not isinstance(doc, dict):
                errors.append("configuration.json is not an object")
            else:
                document = doc
                errors.extend(_check_document(doc))
            for info in zf.infolist():
                if info.filename.startswith(ARTWORK_FOLDER) and not info.is_dir():
                    name = info.filename[len(ARTWORK_FOLDER):]
                    if "/" in name or "\\" in name or name in ("", ".", ".."):
                        errors.append(f"artwork member {info.filename!r} has a path")
                    elif info.file_size > max_artwork_bytes:
                        errors.append(f"artwork {name} is larger than the artwork limit")
                    else:
                        artwork.append(name)
    except Unprocessable as exc:
        errors.append(exc.message)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError,
            NotImplementedError) as exc:
        errors.append(f"the archive cannot be read: {exc}")
    streams = document.get("streams") if document else None
    schedules = document.get("schedules") if document else None
    n_streams = len(streams) if isinstance(streams, list) else 0
    n_schedules = len(schedules) if isinstance(schedules, list) else 0
    if metadata is not None and document is not None:
        for key, n in (("streams_count", n_streams), ("schedules_count", n_schedules)):
            if key in metadata and metadata[key] != n:
                errors.append(f"metadata {key} is {metadata[key]!r} but the configuration "
                              f"holds {n}")
    return {"valid": not errors, "errors": errors, "metadata": metadata, "document": document,
            "artwork_files": sorted(artwork), "streams_count": n_streams,
            "schedules_count": n_schedules}


def _check_document(doc: dict[str, Any]) -> list[str]:
    """Schema errors of an export document (same rules as the import)."""
    errors: list[str] = []
    try:
        body = ImportBody.model_validate(doc)
        check_version(body.version)
    except (ValueError, TaperoomError) as exc:  # pydantic ValidationError is a ValueError
        return [f"configuration.json: {exc}"]
    by_old_id: dict[Any, int | None] = {}
    by_index: list[int | None] = []
    by_name: dict[str, int] = {}
    for i, item in enumerate(body.streams):
        try:
            values = station_values(item)
            by_name[values["name"].lower()] = i + 1
            by_index.append(i + 1)
        except TaperoomError as exc:
            errors.append(f"streams[{i}]: {exc}")
            by_index.append(None)
        if isinstance(item, dict) and isinstance(item.get("id"), int | str):
            by_old_id[item["id"]] = by_index[-1]
    for i, item in enumerate(body.schedules):
        try:
            if not isinstance(item, dict):
                raise InvalidInput("item is not an object")
            ref = resolve_stream_ref(item, by_old_id, by_index, by_name)
            schedule_values(item, ref, UTC)
        except TaperoomError as exc:
            errors.append(f"schedules[{i}]: {exc}")
    return errors


# -- the service ------------------------------------------------------------------------


class BackupService:
    """Backups of the configuration in ``DATA_DIR/backups``.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the recorder database.
    bus : EventBus
        Receives ``station:changed`` / ``schedule:changed`` ``restored``.
    settings : RecorderSettings
        ``DATA_DIR`` (the backups folder), ``TZ`` and ``MAX_ARTWORK_SIZE_MB``.
    exports : ExportService
        Writes the configuration document of a backup.
    stations : StationService
        Stores the artwork of restored stations.
    schedules : ScheduleService
        Gives restored schedules their jobs and drops those of replaced ones.
    artwork : ArtworkFolder
        The artwork files copied into backups.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, settings: RecorderSettings,
                 exports: ExportService, stations: StationService, schedules: ScheduleService,
                 artwork: ArtworkFolder) -> None:
        self.db = db
        self.bus = bus
        self.settings = settings
        self.exports = exports
        self.stations = stations
        self.schedules = schedules
        self.artwork = artwork

    def path(self, filename: str, *, must_exist: bool = True) -> Path:
        """The file of the backup `filename`, confined to ``DATA_DIR/backups``.

        Raises
        ------
        InvalidInput
            A name with a path part (``/``, ``\\``, ``..``), a hidden name, or not a ``.zip``.
        NotFound
            `must_exist` and there is no such backup.
        """
        if (not filename or "/" in filename or "\\" in filename or "\0" in filename
                or filename in (".", "..") or Path(filename).name != filename):
            raise InvalidInput(f"Invalid backup filename {filename!r}: a bare file name is "
                               "required")
        if not _BARE.match(filename):
            raise InvalidInput(f"Invalid backup filename {filename!r}: expected a .zip file "
                               "name")
        folder = self.settings.backups_dir.resolve()
        path = (folder / filename).resolve()
        if path.parent != folder:
            raise InvalidInput(f"Invalid backup filename {filename!r}")
        if must_exist and not path.is_file():
            raise NotFound(f"backup {filename} not found")
        return path

    def _new_name(self, prefix: str) -> str:
        stamp = datetime.now(self.settings.zone).strftime("%Y%m%d_%H%M%S")
        name = f"{prefix}_{stamp}.zip"
        n = 2
        while (self.settings.backups_dir / name).exists():
            name = f"{prefix}_{stamp}_{n}.zip"
            n += 1
        return name

    def create(self, *, backup_name: str | None = None, include_artwork: bool = True,
               prefix: str = "backup") -> dict[str, Any]:
        """Write a backup of every station and schedule (and their artwork).

        Parameters
        ----------
        backup_name : str, optional
            File name without ``.zip`` (``.zip`` is added); default
            ``<prefix>_YYYYMMDD_HHMMSS``.
        include_artwork : bool
            Also store the stations' artwork files.
        prefix : str
            Prefix of generated names (``backup`` or ``auto_backup``).

        Returns
        -------
        dict
            ``{backup_name, backup_path, backup_filename, created_at, file_size_bytes,
            streams_count, schedules_count, include_artwork, artwork_count, success: true}``.

        Raises
        ------
        InvalidInput
            A name that is not a bare file name.
        Conflict
            A backup of that name exists.
        """
        folder = self.settings.backups_dir
        folder.mkdir(parents=True, exist_ok=True)
        if backup_name:
            filename = (backup_name if backup_name.lower().endswith(".zip")
                        else backup_name + ".zip")
            path = self.path(filename, must_exist=False)
            if path.exists():
                raise Conflict(f"a backup named {filename} already exists")
        else:
            filename = self._new_name(prefix)
            path = self.path(filename, must_exist=False)
        document = self.exports.export_document()
        artwork: dict[str, Path] = {}
        if include_artwork:
            for st in document["streams"]:
                f = self.artwork.file(st.get("artwork_path"))
                if f is not None and f.is_file():
                    artwork[f.name] = f
        created = datetime.now(UTC)
        metadata = {
            "version": BACKUP_VERSION, "format": FORMAT,
            "created_at": iso(created, self.settings.zone),
            "streams_count": len(document["streams"]),
            "schedules_count": len(document["schedules"]),
            "include_artwork": include_artwork, "artwork_files": sorted(artwork),
            "timezone": self.settings.zone_name,
        }
        fd, tmp = tempfile.mkstemp(prefix=".backup-", suffix=".tmp", dir=folder)
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(METADATA, json.dumps(metadata, indent=2, ensure_ascii=False))
                zf.writestr(CONFIGURATION, json.dumps(document, indent=2, ensure_ascii=False))
                for name, f in sorted(artwork.items()):
                    zf.write(f, ARTWORK_FOLDER + name, compress_type=zipfile.ZIP_STORED)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        size = path.stat().st_size
        log_operation("configuration", f"backup {filename} created", backup=filename,
                      size=size, streams=metadata["streams_count"])
        return {"backup_name": filename[:-4], "backup_path": str(path),
                "backup_filename": filename, "created_at": metadata["created_at"],
                "file_size_bytes": size, "streams_count": metadata["streams_count"],
                "schedules_count": metadata["schedules_count"],
                "include_artwork": include_artwork, "artwork_count": len(artwork),
                "success": True}

    def auto_create(self) -> dict[str, Any]:
        """An ``auto_backup_YYYYMMDD_HHMMSS.zip`` with artwork; keeps the newest
        :data:`AUTO_BACKUPS_KEPT` automatic backups and deletes older ones."""
        result = self.create(include_artwork=True, prefix="auto_backup")
        autos = sorted(self.settings.backups_dir.glob("auto_backup_*.zip"),
                       key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
        removed = []
        for old in autos[AUTO_BACKUPS_KEPT:]:
            old.unlink(missing_ok=True)
            removed.append(old.name)
        result["removed_backups"] = removed
        return result

    def list_backups(self) -> list[dict[str, Any]]:
        """Backups in the folder, newest first:
        ``[{filename, file_size_bytes, created_at, valid, metadata, errors}]``;
        ``created_at`` is the metadata's, or the file's time when the metadata has
        none (or not a text)."""
        folder = self.settings.backups_dir
        if not folder.is_dir():
            return []
        out = []
        for path in folder.glob("*.zip"):
            if not path.is_file() or not _BARE.match(path.name):
                continue
            st = path.stat()
            report = inspect_backup(path, self.settings.max_artwork_bytes)
            meta = report["metadata"]
            stamp = meta.get("created_at") if isinstance(meta, dict) else None
            created = stamp if isinstance(stamp, str) and stamp else iso(
                datetime.fromtimestamp(st.st_mtime, UTC), self.settings.zone)
            out.append({"filename": path.name, "file_size_bytes": st.st_size,
                        "created_at": created, "valid": report["valid"], "metadata": meta,
                        "errors": report["errors"], "_mtime": st.st_mtime})
        out.sort(key=lambda d: (d["_mtime"], d["filename"]), reverse=True)
        for d in out:
            d.pop("_mtime")
        return out

    def validate(self, filename: str) -> dict[str, Any]:
        """Check a backup (see :func:`inspect_backup`).

        Returns
        -------
        dict
            ``{backup_filename, valid: true, errors: [], metadata, artwork_files,
            streams_count, schedules_count, message}``.

        Raises
        ------
        InvalidInput, NotFound
            Bad or unknown file name.
        InvalidBackup
            (HTTP 422) The backup does not pass; it carries the same report, with
            ``valid: false`` and the ``errors``.
        """
        path = self.path(filename)
        report = inspect_backup(path, self.settings.max_artwork_bytes)
        report.pop("document")
        message = ("Backup is valid" if report["valid"]
                   else f"Backup is invalid: {'; '.join(report['errors'])}")
        result = {"backup_filename": filename, **report, "message": message}
        if not result["valid"]:
            raise InvalidBackup(result)
        return result

    def delete(self, filename: str) -> dict[str, Any]:
        """Delete a backup: ``{success, backup_filename, message}``; InvalidInput/NotFound."""
        path = self.path(filename)
        path.unlink()
        log_operation("configuration", f"backup {filename} deleted", backup=filename)
        return {"success": True, "backup_filename": filename,
                "message": f"Backup {filename} deleted successfully"}

    def restore(self, filename: str, *, overwrite_existing: bool = False) -> dict[str, Any]:
        """Restore the stations, schedules and artwork of a backup.

        Stations are matched by name (case-insensitive). A station that is not in the
        database is created with its schedules. One that exists is left alone, with
        its schedules, unless `overwrite_existing`: then its fields are replaced by the
        backup's and its schedules by the backup's schedules. Artwork files are
        written under the restored station's id (``stream_<id>_...``) after being
        checked with Pillow; a station whose artwork is not in the archive gets none.

        Returns
        -------
        dict
            ``{success, backup_filename, restored_streams, updated_streams,
            skipped_streams, restored_schedules, skipped_schedules, restored_artwork,
            errors, message}``.

        Raises
        ------
        InvalidInput, NotFound
            Bad or unknown file name.
        Unprocessable
            The archive is damaged or does not pass validation (nothing is changed).
        """
        path = self.path(filename)
        report = inspect_backup(path, self.settings.max_artwork_bytes)
        if not report["valid"]:
            raise Unprocessable(f"backup {filename} is invalid: {'; '.join(report['errors'])}")
        doc = ImportBody.model_validate(report["document"])
        zone = self.settings.zone
        errors: list[str] = []
        created: list[int] = []
        updated: list[int] = []
        skipped: list[str] = []
        by_old_id: dict[Any, int | None] = {}
        by_index: list[int | None] = []
        art_of: dict[int, str] = {}
        by_name: dict[str, int] = {}
        with self.db() as db:
            existing = {s.name.lower(): s.id for s in repo.list_stations(db, limit=1_000_000)}
        removed_jobs: list[int] = []
        for i, item in enumerate(doc.streams):
            new_id: int | None = None
            try:
                values = station_values(item)
                values["artwork_path"] = None
                own = existing.get(values["name"].lower())
                with transaction(self.db) as db:
                    if own is None:
                        new_id = repo.create_station(db, values).id
                        created.append(new_id)
                    elif overwrite_existing:
                        old_art = repo.get_station(db, own).artwork_path
                        for sched in repo.list_schedules(db, limit=1_000_000,
                                                         station_id=own):
                            removed_jobs.append(sched.id)
                            repo.delete_schedule(db, sched.id)
                        repo.update_station(db, own, values)
                        new_id = own
                        updated.append(own)
                        self.artwork.remove(old_art)
                    else:
                        skipped.append(values["name"])
            except TaperoomError as exc:
                errors.append(f"streams[{i}]: {exc}")
            by_index.append(new_id)
            if new_id is not None:
                by_name[values["name"].lower()] = new_id
            if isinstance(item, dict) and isinstance(item.get("id"), int | str):
                by_old_id[item["id"]] = new_id
            if new_id is not None and isinstance(item, dict) and item.get("artwork_path"):
                art_of[new_id] = Path(str(item["artwork_path"])).name
        for sid in removed_jobs:
            self.schedules.remove_job(sid)
        restored_art = self._restore_artwork(path, art_of, set(report["artwork_files"]), errors)
        restored = import_schedules(self.db, self.schedules, doc.schedules,
                                    (by_old_id, by_index, by_name), zone,
                                    skip_unresolved=True)
        restored_ids, skipped_schedules = restored.ids, restored.skipped
        errors.extend(restored.errors)
        message = (f"Restored {len(created)} streams ({len(updated)} overwritten, "
                   f"{len(skipped)} skipped) and {len(restored_ids)} schedules from {filename}")
        log_operation("configuration", message, backup=filename, errors=len(errors))
        self.bus.send(Event.STATION_CHANGED, {
            "action": "restored", "station_id": None, "station_ids": created + updated,
            "station": None})
        self.bus.send(Event.SCHEDULE_CHANGED, {
            "action": "restored", "schedule_id": None, "schedule_ids": restored_ids,
            "schedule": None})
        return {"success": not errors, "backup_filename": filename,
                "restored_streams": len(created), "updated_streams": len(updated),
                "skipped_streams": len(skipped), "skipped_stream_names": skipped,
                "restored_schedules": len(restored_ids), "skipped_schedules": skipped_schedules,
                "restored_artwork": restored_art, "stream_ids": created + updated,
                "schedule_ids": restored_ids, "errors": errors, "message": message}

    def _restore_artwork(self, path: Path, art_of: dict[int, str],
                         members: set[str], errors: list[str]) -> int:
        """Write each restored station's artwork from the archive; returns how many."""
        if not art_of:
            return 0
        count = 0
        with _open(path) as zf:
            for station_id, old_name in art_of.items():
                if old_name not in members:
                    continue
                m = _ARTWORK_NAME.match(old_name)
                rest = m.group(2) if m else old_name
                try:
                    data = zf.read(ARTWORK_FOLDER + old_name)
                    self.stations.save_artwork(station_id, rest, data)
                    count += 1
                except (TaperoomError, zipfile.BadZipFile, zlib.error, OSError,
                        ValueError) as exc:
                    errors.append(f"artwork {old_name}: {exc}")
        return count
