"""Backup archives of the ephemeral app: written under the tracks' locks, read with care.

An archive is a POSIX (pax) tar file, uncompressed (WAV does not compress much),
holding, for every track,

``audio/<filename>``
    the WAV file as it is now (worn);
``metadata/tracks/<key>.json``
    its metadata (play counts, streams, wear model), ``<key>`` being
    :func:`~taperoom.ephemeral.names.track_key` of its name;
``metadata/pristine/<key>``
    its pristine copy, when there is one;

and last ``manifest.json``: the format name and version, when it was taken, and
per track the size and SHA-256 of each of its files.

Reading (:func:`read_archive`) refuses, with 400, anything but regular files
and the folders above (no links, devices or FIFOs), names that are absolute,
hold ``..``, a backslash or NUL, or are not one of the names above, duplicates,
files the manifest does not list or whose size or digest differ, WAV files this
app cannot read and metadata that does not fit its track. Members are copied
out one by one with ``extractfile`` into a staging folder chosen here, never
with ``extract``, so no name from the archive ever becomes a path.

Restoring is atomic through a journal (:class:`RestorePlan`): every file is
staged first beside its destination (same file system), the plan is written
(temp file, fsync, rename), then each staged file is renamed over its
destination and the tracks the archive does not hold are removed; a crash
after the plan was written is rolled forward at the next start
(:meth:`RestorePlan.apply` is idempotent), a crash before leaves the tracks as
they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from taperoom import __version__
from taperoom.ephemeral import metafile
from taperoom.ephemeral.names import track_key
from taperoom.ephemeral.store import EphemeralStore, is_wav_name, now_iso, wearable_info
from taperoom.errors import InvalidInput, MediaError
from taperoom.fslock import atomic_write, fsync_dir

log = logging.getLogger(__name__)

#: The ``format`` of a manifest.
FORMAT = "taperoom-ephemeral-backup"
#: The ``version`` of the manifests written (and the only one read).
VERSION = 1
MANIFEST = "manifest.json"
#: Folders an archive may list as members of their own.
FOLDERS = frozenset({"audio", "metadata", "metadata/tracks", "metadata/pristine"})
#: Most members read from one archive.
MAX_MEMBERS = 100_000
#: Largest manifest read, in bytes.
MAX_MANIFEST = 64 * 1024 * 1024
_BLOCK = 1 << 20


def _digest(fh: IO[bytes], out: IO[bytes] | None = None) -> tuple[int, str]:
    """(size, SHA-256 hex) of what `fh` holds from where it is, copied to `out` if given."""
    h = hashlib.sha256()
    size = 0
    while True:
        block = fh.read(_BLOCK)
        if not block:
            return size, h.hexdigest()
        h.update(block)
        size += len(block)
        if out is not None:
            out.write(block)


def _entry(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        size, sha = _digest(fh)
    return {"size": size, "sha256": sha}


def _add(tar: tarfile.TarFile, name: str, path: Path) -> None:
    st = os.stat(path)
    info = tarfile.TarInfo(name)
    info.size = st.st_size
    info.mtime = int(st.st_mtime)
    info.mode = 0o644
    with open(path, "rb") as fh:
        tar.addfile(info, fh)


def write_archive(store: EphemeralStore, names: Iterable[str], dest: Path) -> int:
    """Write the archive of tracks `names` to `dest`; the number of tracks in it.

    The caller holds every track's locks (:meth:`EphemeralStore.holding`), so
    no file changes while it is read.
    """
    tracks = []
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            key = track_key(name)
            audio, meta = store.path_of(name), store.meta_path(name)
            pristine = store.original_path(name)
            entry: dict[str, Any] = {"filename": name, "audio": _entry(audio),
                                     "metadata": _entry(meta), "pristine": None}
            _add(tar, f"audio/{name}", audio)
            _add(tar, f"metadata/tracks/{key}.json", meta)
            if pristine.is_file():
                entry["pristine"] = _entry(pristine)
                _add(tar, f"metadata/pristine/{key}", pristine)
            tracks.append(entry)
        manifest = json.dumps({"format": FORMAT, "version": VERSION, "created_at": now_iso(),
                               "taperoom": __version__, "tracks": tracks},
                              ensure_ascii=False, indent=1).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(manifest))
    return len(tracks)


@dataclass
class StagedTrack:
    """One track of an archive, staged beside its destinations.

    Attributes
    ----------
    filename : str
        Track name.
    pristine : bool
        The archive holds a pristine copy of it.
    """

    filename: str
    pristine: bool


@dataclass
class RestorePlan:
    """What a restore replaces and removes; its JSON form is the journal.

    Attributes
    ----------
    audio_stage, meta_stage : Path
        Staging folders in ``AUDIO_DIR`` and ``METADATA_DIR`` (hidden).
    tracks : list of StagedTrack
        The archive's tracks.
    remove : list of str
        Tracks there now that the archive does not hold.
    """

    audio_stage: Path
    meta_stage: Path
    tracks: list[StagedTrack] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    def staged_audio(self, name: str) -> Path:
        """Where the WAV file of `name` is staged."""
        return self.audio_stage / track_key(name)

    def staged_meta(self, name: str) -> Path:
        """Where the metadata of `name` is staged."""
        return self.meta_stage / "tracks" / f"{track_key(name)}.json"

    def staged_pristine(self, name: str) -> Path:
        """Where the pristine copy of `name` is staged."""
        return self.meta_stage / "pristine" / track_key(name)

    def to_json(self) -> bytes:
        """The journal's content."""
        return json.dumps({"audio_stage": str(self.audio_stage),
                           "meta_stage": str(self.meta_stage),
                           "tracks": [{"filename": t.filename, "pristine": t.pristine}
                                      for t in self.tracks],
                           "remove": self.remove}, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> RestorePlan:
        """Read a journal (written by :meth:`to_json`)."""
        raw = json.loads(data)
        return cls(Path(raw["audio_stage"]), Path(raw["meta_stage"]),
                   [StagedTrack(t["filename"], bool(t["pristine"])) for t in raw["tracks"]],
                   list(raw["remove"]))

    def apply(self, store: EphemeralStore, *, fsync: bool) -> None:
        """Move every staged file into place and remove the tracks not restored.

        Idempotent: a file already moved is not staged any more and is skipped,
        so a plan interrupted by a crash is finished by applying it again. For
        each track the metadata and pristine copy go first and the WAV file last;
        the waveform cache is dropped. The caller holds the locks of every track
        concerned.
        """
        for t in self.tracks:
            name = t.filename
            store.tracks_dir.mkdir(parents=True, exist_ok=True)
            _move(self.staged_meta(name), store.meta_path(name))
            if t.pristine:
                store.originals_dir.mkdir(parents=True, exist_ok=True)
                _move(self.staged_pristine(name), store.original_path(name))
            elif self.staged_audio(name).exists():
                store.original_path(name).unlink(missing_ok=True)
            store.waveform_path(name).unlink(missing_ok=True)
            _move(self.staged_audio(name), store.audio_dir / name)
        for name in self.remove:
            (store.audio_dir / name).unlink(missing_ok=True)
            for own in store.own_files(name):
                own.unlink(missing_ok=True)
        if fsync:
            for folder in (store.audio_dir, store.tracks_dir, store.originals_dir):
                if folder.is_dir():
                    fsync_dir(folder)
        for name in [t.filename for t in self.tracks] + self.remove:
            store.forget(name)

    def discard(self) -> None:
        """Remove the staging folders."""
        shutil.rmtree(self.audio_stage, ignore_errors=True)
        shutil.rmtree(self.meta_stage, ignore_errors=True)


def _move(src: Path, dest: Path) -> None:
    with contextlib.suppress(FileNotFoundError):  # moved before a crash
        os.replace(src, dest)


def _bad(reason: str) -> InvalidInput:
    return InvalidInput(f"Not a backup archive of this app: {reason}")


def _check_name(name: str) -> tuple[str, str]:
    """(kind, rest) of a member name: kind ``audio``, ``meta``, ``pristine``, ``manifest``
    or ``folder``.

    Raises
    ------
    InvalidInput
        Any other name, or a name that could leave a folder.
    """
    if (not name or name.startswith("/") or "\\" in name or "\x00" in name
            or any(part in ("", ".", "..") for part in name.rstrip("/").split("/"))):
        raise _bad(f"unsafe member name {name!r}")
    if name.rstrip("/") in FOLDERS:
        return "folder", name.rstrip("/")
    if name == MANIFEST:
        return "manifest", name
    head, _, rest = name.rpartition("/")
    if head == "audio" and is_wav_name(rest):
        return "audio", rest
    if head == "metadata/tracks" and rest.endswith(".json") and not rest.startswith("."):
        return "meta", rest.removesuffix(".json")
    if head == "metadata/pristine" and rest and not rest.startswith("."):
        return "pristine", rest
    raise _bad(f"unexpected member {name!r}")


def read_archive(archive: Path, store: EphemeralStore, audio_stage: Path, meta_stage: Path
                 ) -> RestorePlan:
    """Check archive `archive` and stage its files; the plan of its restore.

    Parameters
    ----------
    archive : Path
        The archive received.
    store : EphemeralStore
        Where it will be restored (segment layout, to check the metadata).
    audio_stage, meta_stage : Path
        Empty staging folders (created here), in ``AUDIO_DIR`` and ``METADATA_DIR``.

    Returns
    -------
    RestorePlan
        Without ``remove`` (filled in under the locks).

    Raises
    ------
    InvalidInput
        Anything that is not such an archive (see the module's documentation);
        the staging folders are removed then.
    """
    plan = RestorePlan(audio_stage, meta_stage)
    for d in (audio_stage, meta_stage / "tracks", meta_stage / "pristine"):
        d.mkdir(parents=True)
    try:
        _stage(archive, store, plan)
    except BaseException:
        plan.discard()
        raise
    return plan


def _stage(archive: Path, store: EphemeralStore, plan: RestorePlan) -> None:
    found: dict[tuple[str, str], tuple[int, str]] = {}
    manifest_bytes: bytes | None = None
    try:
        tar = tarfile.open(archive, "r:")  # noqa: SIM115 -- closed by the with below
    except (tarfile.TarError, OSError) as exc:
        raise _bad(f"not a tar archive ({exc})") from None
    with tar:
        try:
            for count, member in enumerate(tar):
                if count >= MAX_MEMBERS:
                    raise _bad(f"more than {MAX_MEMBERS} members")
                kind, rest = _check_name(member.name)
                if kind == "folder":
                    if not member.isdir():
                        raise _bad(f"{member.name} is not a folder")
                    continue
                if not member.isreg():
                    raise _bad(f"{member.name} is not a regular file (links, devices "
                               "and FIFOs are refused)")
                if (kind, rest) in found or (kind == "manifest" and manifest_bytes is not None):
                    raise _bad(f"{member.name} appears twice")
                src = tar.extractfile(member)
                assert src is not None
                if kind == "manifest":
                    if member.size > MAX_MANIFEST:
                        raise _bad("the manifest is too large")
                    manifest_bytes = src.read()
                    continue
                if kind == "audio":
                    dest = plan.audio_stage / track_key(rest)
                elif kind == "meta":
                    dest = plan.meta_stage / "tracks" / f"{rest}.json"
                else:
                    dest = plan.meta_stage / "pristine" / rest
                with open(dest, "xb") as out:
                    found[(kind, rest)] = _digest(src, out)
        except tarfile.TarError as exc:
            raise _bad(f"damaged tar archive ({exc})") from None
    if manifest_bytes is None:
        raise _bad("no manifest.json")
    _check_manifest(manifest_bytes, found, store, plan)


def _check_manifest(data: bytes, found: dict[tuple[str, str], tuple[int, str]],
                    store: EphemeralStore, plan: RestorePlan) -> None:
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise _bad("manifest.json is not JSON") from None
    if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
            or manifest.get("version") != VERSION or not isinstance(manifest.get("tracks"), list)):
        raise _bad(f"manifest.json is not a {FORMAT} manifest of version {VERSION}")
    listed: set[tuple[str, str]] = set()
    for entry in manifest["tracks"]:
        name = entry.get("filename") if isinstance(entry, dict) else None
        if not isinstance(name, str) or "/" in name or "\x00" in name or not is_wav_name(name):
            raise _bad(f"bad track entry {entry!r}")
        key = track_key(name)
        if any(t.filename == name for t in plan.tracks):
            raise _bad(f"{name} is listed twice")
        parts = [("audio", name, entry.get("audio")), ("meta", key, entry.get("metadata"))]
        if entry.get("pristine") is not None:
            parts.append(("pristine", key, entry.get("pristine")))
        for kind, rest, expected in parts:
            got = found.get((kind, rest))
            if (not isinstance(expected, dict) or got is None
                    or got != (expected.get("size"), expected.get("sha256"))):
                raise _bad(f"the {kind} file of {name} is missing or does not match the "
                           "manifest")
            listed.add((kind, rest))
        audio = plan.staged_audio(name)
        try:
            info = wearable_info(audio)
        except MediaError as exc:
            raise _bad(f"{name}: {exc.reason}") from None
        meta = metafile.parse(plan.staged_meta(name).read_bytes())
        if not store.fits(meta, info, name):
            raise _bad(f"the metadata of {name} does not fit its audio")
        plan.tracks.append(StagedTrack(name, entry.get("pristine") is not None))
    extra = set(found) - listed
    if extra:
        raise _bad(f"members the manifest does not list: {sorted(r for _, r in extra)[:5]}")


def write_plan(path: Path, plan: RestorePlan, *, fsync: bool) -> None:
    """Write the journal of `plan` (temp file, fsync, rename)."""
    atomic_write(path, plan.to_json(), fsync=fsync)
