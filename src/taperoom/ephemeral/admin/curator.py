"""The curator's operations: upload, delete, reset, wear model, backup, restore.

Every operation that adds, removes or replaces tracks holds the curator lock
(``METADATA_DIR/.locks/curator.lock``, an ``flock`` every worker process sees),
so that a backup or a restore never overlaps another one, an upload or a
delete; and the locks of each track concerned (:meth:`EphemeralStore.holding`),
so that no play is half done meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import time
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

from taperoom.ephemeral.admin.archive import RestorePlan, read_archive, write_archive, write_plan
from taperoom.ephemeral.admin.schemas import AdminTrackPublic, DeletedPublic, RestoredPublic
from taperoom.ephemeral.admin.upload import TEMP_SUFFIX, ReceivedFile, clean_upload_name
from taperoom.ephemeral.intake import Intake
from taperoom.ephemeral.service import EphemeralService
from taperoom.ephemeral.store import EphemeralStore, wear_model_in, wearable_info
from taperoom.errors import Conflict, InvalidInput, MediaError, NotFound
from taperoom.fslock import file_lock, fsync_dir

log = logging.getLogger(__name__)

#: Prefix of the hidden staging folders of a restore.
STAGE_PREFIX = ".restore-"
#: Temp files of uploads and backups older than this (seconds) belong to no request.
STALE_TEMP_SECONDS = 6 * 3600.0


class Curator:
    """What the curator's page does, over the store.

    Parameters
    ----------
    service : EphemeralService
        The app's service (tracks, stats, wear models, reset), over `store`.
    store : EphemeralStore
        The tracks on disk.
    intake : Intake
        Decodes uploads of other formats into WAV files.
    """

    def __init__(self, service: EphemeralService, store: EphemeralStore, intake: Intake) -> None:
        self.service = service
        self.store = store
        self.intake = intake
        self.settings = service.settings
        self.work_dir = store.metadata_dir / ".admin"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.journal = self.work_dir / "restore.json"
        self.recover()

    # -- locks -----------------------------------------------------------

    def curator_lock(self) -> AbstractContextManager[None]:
        """The curator lock (context manager; ``Busy`` after ``LOCK_TIMEOUT``)."""
        return file_lock(self.store.lock_dir / "curator.lock", timeout=self.settings.lock_timeout)

    def recover(self) -> None:
        """Finish a restore interrupted after its journal was written; remove what
        interrupted restores left (staging folders, which only exist under the
        curator lock) and uploads and backups left (temp files older than
        :data:`STALE_TEMP_SECONDS`: another worker process may be receiving one, or
        sending a backup, right now)."""
        with self.curator_lock():
            if self.journal.exists():
                try:
                    plan = RestorePlan.from_json(self.journal.read_bytes())
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    log.error("unreadable restore journal %s (%s): left alone", self.journal, exc)
                else:
                    log.warning("finishing an interrupted restore")
                    plan.apply(self.store, fsync=self.settings.fsync)
                    self.journal.unlink()
            for folder in (self.store.audio_dir, self.work_dir):
                for entry in folder.glob(f"{STAGE_PREFIX}*"):
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                for tmp in folder.glob(f".*{TEMP_SUFFIX}"):
                    with contextlib.suppress(OSError):
                        if tmp.stat().st_mtime < time.time() - STALE_TEMP_SECONDS:
                            tmp.unlink()

    # -- tracks ----------------------------------------------------------

    def track(self, filename: str) -> AdminTrackPublic:
        """One track as the page shows it (404 "Track not found")."""
        stats = self.service.stats(filename)
        name = stats.filename
        own = wear_model_in(self.store.load_meta(name))
        return AdminTrackPublic(
            filename=name, title=stats.title, duration=stats.duration,
            overall_degradation=stats.overall_degradation, total_streams=stats.total_streams,
            wear_model=own or self.settings.wear_model, own_wear_model=own is not None,
            pristine=self.store.original_path(name).is_file()
            or (self.store.legacy_originals_dir / name).is_file())

    def tracks(self) -> list[AdminTrackPublic]:
        """Every readable track, sorted by file name."""
        out = []
        for t in self.service.tracks():
            try:
                out.append(self.track(t.filename))
            except NotFound:  # removed meanwhile
                continue
        return out

    def set_wear_model(self, filename: str, wear_model: str | None) -> AdminTrackPublic:
        """Give a track its own wear model (None: ``WEAR_MODEL``'s); the track."""
        done = self.service.set_wear_model(filename, wear_model)
        return self.track(done.filename)

    def reset(self, filename: str) -> AdminTrackPublic:
        """Restore a track from its pristine copy; the track."""
        stats = self.service.reset(filename)
        self.store.waveform_path(stats.filename).unlink(missing_ok=True)
        return self.track(stats.filename)

    def delete(self, filename: str) -> DeletedPublic:
        """Remove a track and its files (404 "Track not found")."""
        name = self.service.stats(filename).filename
        with self.curator_lock():
            try:
                self.store.delete(name)
            except NotFound:
                raise NotFound("Track not found") from None
        return DeletedPublic(deleted=name)

    def add(self, received: ReceivedFile) -> AdminTrackPublic:
        """Make an uploaded file a track, once it proved to be audio this app can wear.

        A WAV file must be readable as it is; a file of another format is decoded
        to WAV first (:meth:`Intake.decode`). The WAV file is then linked to its
        name with ``link(2)``, which never replaces a file, and its metadata (and,
        with ``KEEP_ORIGINALS``, its pristine copy) is made. `received`'s temp file
        is removed in every case.

        Raises
        ------
        InvalidInput
            A name that cannot be a track's, or not decodable audio.
        Conflict
            A track of that name exists.
        """
        made: list[Path] = [received.path]
        try:
            name, ext = clean_upload_name(received.filename)
            if os.path.lexists(self.store.audio_dir / name):
                raise Conflict(f"A track named {name!r} exists")
            track_file = received.path
            if ext != ".wav":
                track_file = received.path.with_name(f".{secrets.token_hex(8)}{TEMP_SUFFIX}")
                made.append(track_file)
                try:
                    self.intake.decode(received.path, track_file, received.filename)
                except (MediaError, OSError) as exc:
                    reason = exc.reason if isinstance(exc, MediaError) else str(exc)
                    raise InvalidInput(f"Not decodable audio: {reason}") from None
            try:
                wearable_info(track_file)
            except MediaError as exc:
                raise InvalidInput(f"Not a WAV file this app can wear: {exc.reason}") from None
            if self.settings.fsync:
                with open(track_file, "rb+") as fh:
                    os.fsync(fh.fileno())
            with self.curator_lock():
                try:
                    os.link(track_file, self.store.audio_dir / name)
                except FileExistsError:
                    raise Conflict(f"A track named {name!r} exists") from None
                if self.settings.fsync:
                    fsync_dir(self.store.audio_dir)
                self.store.forget(name)
                self.store.ensure_meta(name)
        finally:
            for path in made:
                path.unlink(missing_ok=True)
        log.info("added track %s (%d bytes uploaded)", name, received.size)
        return self.track(name)

    # -- backup and restore ----------------------------------------------

    def backup(self) -> tuple[Path, int]:
        """Write an archive of every track (:mod:`~taperoom.ephemeral.admin.archive`)
        into a temp file; (its path, its number of tracks). The caller removes it.

        Every track's metadata is settled first; then the archive is written while
        holding read locks on every track's audio and its metadata lock (no play,
        reset or wear-model change meanwhile), taken in name order.
        """
        dest = self.work_dir / f".backup-{secrets.token_hex(8)}{TEMP_SUFFIX}"
        with self.curator_lock():
            names = self.service.scan()
            try:
                with ExitStack() as held:
                    kept = []
                    for name in names:
                        try:
                            held.enter_context(self.store.holding(name, shared=True))
                        except NotFound:  # removed by hand meanwhile
                            continue
                        kept.append(name)
                    count = write_archive(self.store, kept, dest)
            except BaseException:
                dest.unlink(missing_ok=True)
                raise
        log.info("backup of %d tracks written (%d bytes)", count, dest.stat().st_size)
        return dest, count

    def restore(self, archive: Path) -> RestoredPublic:
        """Replace every track by those of a backup archive, all or nothing.

        The archive is checked and staged (400 for anything that is not a backup
        of this app), then, holding the curator lock and the locks of every track
        now there and of every track restored, the journal is written and applied
        (:class:`~taperoom.ephemeral.admin.archive.RestorePlan`).
        """
        stage = f"{STAGE_PREFIX}{secrets.token_hex(8)}"
        with self.curator_lock():
            plan = read_archive(archive, self.store, self.store.audio_dir / stage,
                                self.work_dir / stage)
            try:
                restored = {t.filename for t in plan.tracks}
                current = [n for n in self.store.list_filenames()
                           if self.store.try_info(n) is not None]
                plan.remove = [n for n in current if n not in restored]
                with ExitStack() as held:
                    for name in sorted(set(current) | restored):
                        if name in current:
                            try:
                                held.enter_context(self.store.holding(name))
                                continue
                            except NotFound:
                                pass
                        held.enter_context(self.store.meta_lock(name))
                    write_plan(self.journal, plan, fsync=self.settings.fsync)
                    plan.apply(self.store, fsync=self.settings.fsync)
                    self.journal.unlink()
            finally:
                plan.discard()
        log.info("restored %d tracks, removed %d", len(plan.tracks), len(plan.remove))
        return RestoredPublic(restored=sorted(restored), removed=plan.remove)
