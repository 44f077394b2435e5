"""Imports of playlists from other DJ software (``POST /api/import``).

The file's kind comes from its name: ``.m3u`` / ``.m3u8`` (one playlist) or
``.xml`` (rekordbox XML: a collection, a playlist tree, cues and grids). Anything
else is refused (:class:`UnsupportedImport`, 415); a file that does not read is
400. An import never creates a track: each entry is matched to a library track,
and what does not match is skipped and reported.

Matching, in this order; a rule that finds several tracks does not match (the
entry is reported as ambiguous) and the next rule is tried:

1. the path, exactly (a ``file:`` URL or Windows path normalised first);
2. the path again, ignoring case and Unicode normalisation (NFC vs the NFD that
   macOS writes): the same file on the same root, written another way;
3. a relative M3U path (no ``base`` folder given): the one library track whose
   path ends with it (``../`` steps dropped);
4. the audio: when the path names a readable audio file on this machine that is
   not a library track (a copy elsewhere), its audio hash
   (:func:`taperoom.audio.hashing.audio_hash`) against the tracks' ``file_hash``
   (copies of one recording: the present track first, then by path). Only files
   in a folder the library would accept (:class:`~taperoom.library.folderpolicy.FolderPolicy`)
   with an audio extension are read, at most :data:`MAX_HASHED` per import;
5. the file name (case-insensitive) and the size in bytes (rekordbox's ``Size``):
   rekordbox XML carries no audio hash, so a file moved to another folder or
   machine is recognised by name and size;
6. the file name and the duration within :data:`DURATION_TOLERANCE` s
   (rekordbox's ``TotalTime``, an M3U ``#EXTINF``).

What is created:

* one static playlist per playlist of the file (even when none of its entries
  matched), named as in the file (an M3U's ``#PLAYLIST``, else the file name
  without extension); a name that a playlist already has (case-insensitively)
  gets the first free suffix `` (2)``, `` (3)``... (a taken ``Set (2)`` goes on
  to ``Set (3)``); a track a playlist names twice
  is added once (static playlists hold a track once) and reported;
* rekordbox folders become crate folders; a folder of the same name (any case)
  under the same parent is reused, so importing a tree twice fills the same
  folders with suffixed playlists;
* rekordbox cues become hot cues of source ``rekordbox``: ``Num`` 0-7 at that
  index, memory cues (``Num`` -1) in the indexes the hot cues leave free, in time
  order (a memory cue at the place of a hot cue is the same cue and is skipped;
  those that find no free index are reported). A loop keeps its end. The track's
  earlier ``rekordbox`` cues are replaced; the user's own cues (source ``user``)
  and other sources are never touched;
* a rekordbox grid (``TEMPO``) replaces the track's analysed grid (``bpm``,
  ``first_beat_offset``, beats, downbeats, beats per bar) unless the user set the
  BPM or the first beat himself (``user_fields``: the analysis leaves those alone
  and so does an import). The imported grid is not marked as user-set: a
  re-analysis the user asks for replaces it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.audio.hashing import audio_hash
from taperoom.db import transaction
from taperoom.errors import InvalidInput, TaperoomError
from taperoom.events import Event, EventBus, send_playlist_updates
from taperoom.library.models import utcnow
from taperoom.library.repository import exchange as repo
from taperoom.library.repository import playlists as playlist_repo
from taperoom.library.repository import tracks as track_repo
from taperoom.library.schemas import hot_cue_dict
from taperoom.playlists.errors import PlaylistError, PlaylistInvalid
from taperoom.playlists.exchange import (
    CueKind,
    CuePoint,
    ExchangeTrack,
    FolderNode,
    PlaylistNode,
    Tempo,
    is_absolute,
    normalise_path,
)
from taperoom.playlists.grids import beats_from_tempos, beats_per_bar
from taperoom.playlists.m3u import read_m3u
from taperoom.playlists.rekordbox import read_rekordbox
from taperoom.playlists.views import unix

#: Largest file ``POST /api/import`` takes (64 MiB: a rekordbox XML of some 50,000
#: tracks with grids and cues).
MAX_IMPORT_BYTES = 64 * 1024 * 1024
#: Extensions an import reads, and the kind of each.
IMPORT_KINDS = {".m3u": "m3u", ".m3u8": "m3u", ".xml": "rekordbox"}
#: Seconds two durations may differ by and still match (rekordbox and ``#EXTINF``
#: write whole seconds).
DURATION_TOLERANCE = 1.0
#: Files an import hashes at most (reading audio is slow: beyond, the name rules go on).
MAX_HASHED = 200
#: Unmatched entries listed at most in the answer (``unmatched_count`` counts them all).
MAX_UNMATCHED = 1000
#: Longest playlist name (as ``POST /api/playlists`` takes).
MAX_NAME = 200
#: Hot cue indexes (A-H).
CUE_SLOTS = 8
_NUMBERED = re.compile(r"^(.+) \((\d{1,6})\)$")


class UnsupportedImport(PlaylistError):
    """The uploaded file is not a kind the import reads (HTTP 415)."""

    status = 415


class ImportTooLarge(PlaylistError):
    """The uploaded file is larger than :data:`MAX_IMPORT_BYTES` (HTTP 413)."""

    status = 413


@dataclass(slots=True)
class Unmatched:
    """An entry of the file that matches no library track.

    Attributes
    ----------
    name : str
        ``Artist - Title`` as the file gives them, else the file name.
    path : str
        The path as the file gives it (normalised).
    reason : str
        Why it did not match.
    """

    name: str
    path: str
    reason: str


@dataclass(slots=True)
class ImportReport:
    """What an import did (the answer of ``POST /api/import``)."""

    playlists: list[dict[str, Any]] = field(default_factory=list)
    folders: int = 0
    entries: int = 0
    cues: int = 0
    grids: int = 0
    unmatched: list[Unmatched] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        """``{imported: {playlists, folders, entries, cues, grids}, created, unmatched,
        unmatched_count, problems}``; ``created`` lists ``{id, name, folder_id,
        entries}`` of the new playlists."""
        return {"imported": {"playlists": len(self.playlists), "folders": self.folders,
                             "entries": self.entries, "cues": self.cues, "grids": self.grids},
                "created": self.playlists,
                "unmatched": [{"name": u.name, "path": u.path, "reason": u.reason}
                              for u in self.unmatched[:MAX_UNMATCHED]],
                "unmatched_count": len(self.unmatched), "problems": self.problems}


def import_kind(filename: str) -> str:
    """``"m3u"`` or ``"rekordbox"`` from a file name's extension.

    Raises
    ------
    UnsupportedImport
        Another extension (415).
    """
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    kind = IMPORT_KINDS.get(suffix)
    if kind is None:
        raise UnsupportedImport(
            "Unsupported file type",
            f"Cannot import {filename!r}: upload a .m3u, .m3u8 or rekordbox .xml file")
    return kind


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def _file_name(path: str) -> str:
    return normalise_path(path).rsplit("/", 1)[-1]


class TrackIndex:
    """The library's tracks, indexed for matching (see the module docstring).

    Parameters
    ----------
    rows : iterable of mapping
        ``id, file_path, file_size, duration_seconds, file_hash, is_missing`` per track.
    readable : callable
        ``readable(path)`` is True when the audio of `path` (not a library track)
        may be read and hashed here.
    hasher : callable
        Audio hash of a file (``file_hash`` of the library).
    max_hashed : int
        Files hashed at most.
    """

    def __init__(self, rows: Iterable[Mapping[Any, Any]], readable: Callable[[str], bool],
                 hasher: Callable[[str], str], max_hashed: int = MAX_HASHED) -> None:
        self.rows = {r["id"]: r for r in rows}
        ordered = sorted(self.rows.values(), key=lambda r: (bool(r["is_missing"]),
                                                            r["file_path"]))
        self.by_path: dict[str, str] = {}
        self.by_fold: dict[str, list[str]] = {}
        self.by_name: dict[str, list[str]] = {}
        self.by_hash: dict[str, list[str]] = {}
        for r in ordered:
            path = normalise_path(r["file_path"])
            self.by_path[path] = r["id"]
            self.by_fold.setdefault(_fold(path), []).append(r["id"])
            self.by_name.setdefault(_fold(_file_name(path)), []).append(r["id"])
            if r["file_hash"]:
                self.by_hash.setdefault(r["file_hash"], []).append(r["id"])
        self.readable, self.hasher = readable, hasher
        self.hashes_left = max_hashed
        self.hash_budget_spent = False

    def match(self, path: str, *, size: int | None = None, duration: float | None = None
              ) -> tuple[str | None, str]:
        """``(track id, how)`` of the entry at `path`, or ``(None, reason)``.

        Parameters
        ----------
        path : str
            Normalised path from the file (absolute, or relative when no base).
        size : int or None
            File size in bytes the file gives.
        duration : float or None
            Duration in seconds the file gives.
        """
        absolute = is_absolute(path)
        ambiguous: list[str] = []
        if absolute:
            if path in self.by_path:
                return self.by_path[path], "path"
            found = self.by_fold.get(_fold(path), [])
            if len(found) == 1:
                return found[0], "path (case or Unicode form)"
            if found:
                ambiguous.append("path ignoring case")
        name = _fold(_file_name(path))
        named = self.by_name.get(name, [])
        if not absolute:
            tail = _fold("/".join(s for s in path.split("/") if s not in ("..", ".")))
            found = [t for t in named if _fold(self.rows[t]["file_path"]).endswith("/" + tail)]
            if len(found) == 1:
                return found[0], "relative path"
            if found:
                ambiguous.append("relative path")
        if absolute:
            same_audio = self._by_audio(path)
            if same_audio:
                return same_audio, "audio hash"
        if size is not None and size > 0:
            found = [t for t in named if self.rows[t]["file_size"] == size]
            if len(found) == 1:
                return found[0], "file name and size"
            if found:
                ambiguous.append("file name and size")
        if duration is not None and duration > 0:
            found = [t for t in named if self.rows[t]["duration_seconds"] is not None
                     and abs(self.rows[t]["duration_seconds"] - duration)
                     <= DURATION_TOLERANCE]
            if len(found) == 1:
                return found[0], "file name and duration"
            if found:
                ambiguous.append("file name and duration")
        if ambiguous:
            return None, ("several library tracks match by " + ", ".join(ambiguous)
                          + "; none was chosen")
        rules = ["path", "audio hash" if absolute else "relative path", "file name"
                 + (" and size" if size else "") + (" and duration" if duration else "")]
        return None, "no library track matches by " + ", ".join(rules)

    def _by_audio(self, path: str) -> str | None:
        if self.hashes_left <= 0:
            self.hash_budget_spent = True
            return None
        try:
            if not self.readable(path):
                return None
            self.hashes_left -= 1
            digest = self.hasher(path)
        except (OSError, TaperoomError, ValueError, RuntimeError):
            return None
        found = self.by_hash.get(digest, [])
        return found[0] if found else None


class PlaylistImporter:
    """Imports M3U/M3U8 playlists and rekordbox XML (see the module docstring).

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``playlist:updated`` (``created``) per new playlist and
        ``track:updated`` per track whose cues or grid changed.
    refusal : callable
        ``refusal(folder)``: why a folder may not be a library folder, None when it
        may (:meth:`FolderPolicy.refusal`); files are hashed only in folders it
        accepts.
    extensions : frozenset of str
        Audio file extensions (lower case, with the dot) that may be hashed.
    hasher : callable
        Audio hash of a file (default :func:`taperoom.audio.hashing.audio_hash`).
    max_bytes : int
        Largest file taken (:data:`MAX_IMPORT_BYTES`).
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus,
                 refusal: Callable[[Path], str | None], extensions: frozenset[str],
                 hasher: Callable[[str], str] = audio_hash,
                 max_bytes: int = MAX_IMPORT_BYTES) -> None:
        self.max_bytes = max_bytes
        self.db = db
        self.bus = bus
        self.refusal = refusal
        self.extensions = extensions
        self.hasher = hasher

    def _readable(self, path: str) -> bool:
        file = Path(path)
        return (file.suffix.lower() in self.extensions and file.is_file()
                and self.refusal(file.parent) is None)

    def _index(self, s: Session) -> TrackIndex:
        return TrackIndex(repo.match_rows(s), self._readable, self.hasher)

    def import_file(self, filename: str, data: bytes, *, base: str | None = None
                    ) -> dict[str, Any]:
        """Import one uploaded file.

        Parameters
        ----------
        filename : str
            Its name: the extension decides the kind; an M3U's playlist is named
            after it when the file names none.
        data : bytes
            Its content.
        base : str or None
            Folder an M3U's relative paths are relative to (where the playlist was
            saved); without it they match by path suffix.

        Returns
        -------
        dict
            :meth:`ImportReport.answer`.

        Raises
        ------
        UnsupportedImport
            Not ``.m3u``, ``.m3u8`` or ``.xml`` (415).
        ImportTooLarge
            Larger than `max_bytes` (413).
        PlaylistInvalid
            The file does not read: malformed XML, not rekordbox XML, not text (400).
        """
        kind = import_kind(filename)
        if len(data) > self.max_bytes:
            raise ImportTooLarge("File too large",
                                 f"The file is larger than the {self.max_bytes} bytes an "
                                 "import takes")
        if kind == "m3u":
            report = self._import_m3u(filename, data, base)
        else:
            report = self._import_rekordbox(data)
        send_playlist_updates(self.bus, [p["id"] for p in report.playlists], "created")
        return report.answer()

    # ----------------------------------------------------------------------- M3U

    def _import_m3u(self, filename: str, data: bytes, base: str | None) -> ImportReport:
        if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise PlaylistInvalid("Invalid file", f"{filename!r} is not a text playlist")
        if base is not None and not is_absolute(base):
            raise PlaylistInvalid.from_fields([{"field": "base",
                                                "message": "must be an absolute folder"}])
        playlist = read_m3u(data, name=filename, base=base)
        report = ImportReport()
        report.problems += [f"line {p.line}: {p.reason}" if p.line else p.reason
                            for p in playlist.problems]
        name = playlist.title or PurePosixPath(filename.replace("\\", "/")).stem
        with transaction(self.db) as s:
            index = self._index(s)
            ids = []
            for entry in playlist.entries:
                track_id, how = index.match(entry.path, duration=entry.duration)
                if track_id is None:
                    shown = (f"{entry.artist} - {entry.title}" if entry.artist and entry.title
                             else entry.title or _file_name(entry.path))
                    report.unmatched.append(Unmatched(shown, entry.path,
                                                      f"line {entry.line}: {how}"))
                else:
                    ids.append(track_id)
            self._note_hashing(index, report)
            taken = repo.playlist_names(s)
            self._create_playlist(s, report, name, None, ids, taken)
        return report

    # ----------------------------------------------------------------------- rekordbox

    def _import_rekordbox(self, data: bytes) -> ImportReport:
        try:
            library = read_rekordbox(data)
        except InvalidInput as exc:
            raise PlaylistInvalid("Invalid file", exc.message) from None
        report = ImportReport(problems=list(library.problems))
        touched: dict[str, dict[str, Any]] = {}
        with transaction(self.db) as s:
            index = self._index(s)
            matched: dict[str, str] = {}
            firsts: dict[str, ExchangeTrack] = {}
            for track in library.tracks:
                track_id, how = index.match(track.path, size=track.size,
                                            duration=track.duration)
                if track_id is None:
                    shown = (f"{track.artist} - {track.title}" if track.artist and track.title
                             else track.title or _file_name(track.path))
                    report.unmatched.append(Unmatched(shown, track.path, how))
                    continue
                if track.track_id is not None:
                    matched[track.track_id] = track_id
                if track_id in firsts:
                    report.problems.append(
                        f"track {track.track_id}: {track.path!r} is the same library track "
                        f"as {firsts[track_id].path!r}; its cues and grid are ignored")
                    continue
                firsts[track_id] = track
            self._note_hashing(index, report)
            states = repo.grid_state(s, list(firsts))
            for track_id, track in firsts.items():
                changes: dict[str, Any] = {}
                if track.cues:
                    cues = self._cue_rows(track, report)
                    repo.replace_source_cues(s, track_id, repo.REKORDBOX_SOURCE, cues)
                    report.cues += len(cues)
                    changes["hotCues"] = [hot_cue_dict(c)
                                          for c in track_repo.list_hot_cues(s, track_id)]
                if track.tempos:
                    grid = self._grid(track, states[track_id], report)
                    if grid is not None:
                        repo.set_grid(s, track_id, grid)
                        report.grids += 1
                        changes.update(bpm=grid["bpm"],
                                       first_beat_offset=grid["first_beat_offset"])
                if changes:
                    touched[track_id] = changes
            taken = repo.playlist_names(s)
            folders = repo.folder_children(s)
            self._create_tree(s, report, library.playlists, None, matched, taken, folders)
        for track_id, changes in touched.items():
            self.bus.send(Event.TRACK_UPDATED, {"trackId": track_id, "changes": changes})
        return report

    def _create_tree(self, s: Session, report: ImportReport, node: FolderNode,
                     folder_id: str | None, matched: Mapping[str, str], taken: set[str],
                     folders: dict[tuple[str | None, str], str]) -> None:
        for child in node.children:
            if isinstance(child, FolderNode):
                name = _clean_name(child.name, "Imported folder")
                key = (folder_id, name.lower())
                if key not in folders:
                    folders[key] = playlist_repo.create_folder(s, name, folder_id).id
                    report.folders += 1
                self._create_tree(s, report, child, folders[key], matched, taken, folders)
            else:
                self._create_playlist(s, report, child.name, folder_id,
                                      _entries(child, matched), taken)

    def _create_playlist(self, s: Session, report: ImportReport, name: str,
                         folder_id: str | None, track_ids: Sequence[str],
                         taken: set[str]) -> None:
        final = _unique_name(_clean_name(name, "Imported playlist"), taken)
        now = utcnow()
        playlist = playlist_repo.create(
            s, name=final, type="static", is_smart=False, folder_id=folder_id,
            date_created=now, date_modified=now, created_at=now, updated_at=now,
            last_accessed=unix(now))
        unique = list(dict.fromkeys(track_ids))
        if len(unique) < len(track_ids):
            report.problems.append(
                f"playlist {final!r}: {len(track_ids) - len(unique)} repeated "
                "entr(y/ies) added once (a static playlist holds a track once)")
        playlist_repo.insert_entries(s, playlist.id, [
            {"track_id": t, "occurrence": 0} for t in unique])
        report.entries += len(unique)
        report.playlists.append({"id": playlist.id, "name": final, "folder_id": folder_id,
                                 "entries": len(unique)})

    @staticmethod
    def _cue_rows(track: ExchangeTrack, report: ImportReport) -> list[dict[str, Any]]:
        """Hot cue rows of a track's rekordbox marks (see the module docstring)."""
        hot: dict[int, CuePoint] = {}
        for cue in track.cues:
            if cue.is_hot and cue.number not in hot:
                hot[cue.number] = cue
        memory = sorted((c for c in track.cues if not c.is_hot), key=lambda c: c.start)
        free = [i for i in range(CUE_SLOTS) if i not in hot]
        placed = [c.start for c in hot.values()]
        dropped = 0
        for cue in memory:
            if any(abs(cue.start - t) < 0.001 for t in placed):
                continue
            if not free:
                dropped += 1
                continue
            hot[free.pop(0)] = cue
            placed.append(cue.start)
        if dropped:
            report.problems.append(f"{track.path!r}: {dropped} memory cue(s) found no free "
                                   "hot cue index; skipped")
        rows = []
        for index in sorted(hot):
            cue = hot[index]
            loop = cue.kind == CueKind.LOOP and cue.end is not None and cue.end > cue.start
            rows.append({"cue_index": index, "position": cue.start, "name": cue.name or None,
                         "color": cue.colour, "is_loop": loop,
                         "loop_end": cue.end if loop else None})
        return rows

    @staticmethod
    def _grid(track: ExchangeTrack, state: Mapping[Any, Any], report: ImportReport
              ) -> dict[str, Any] | None:
        """Grid columns of a track's ``TEMPO`` marks; None when the user set the BPM
        or the first beat."""
        if {"bpm", "first_beat_offset"} & set(state["user_fields"] or ()):
            report.problems.append(f"{track.path!r}: the beatgrid was set by the user; "
                                   "the file's grid is not imported")
            return None
        tempos: list[Tempo] = sorted(track.tempos, key=lambda t: t.start)
        duration = state["duration_seconds"] or track.duration
        beats, downbeats = beats_from_tempos(tempos, duration)
        bpm = track.bpm if track.bpm else tempos[0].bpm
        return {"bpm": round(bpm, 2), "first_beat_offset": tempos[0].start,
                "beats_data": json.dumps(beats).encode() if len(beats) > 1 else None,
                "downbeats_data": json.dumps(downbeats).encode() if len(beats) > 1 else None,
                "time_signature": beats_per_bar(tempos[0].meter)}

    @staticmethod
    def _note_hashing(index: TrackIndex, report: ImportReport) -> None:
        if index.hash_budget_spent:
            report.problems.append(f"only {MAX_HASHED} files were read for their audio hash; "
                                   "the others were matched by path and name only")


def _entries(node: PlaylistNode, matched: Mapping[str, str]) -> list[str]:
    return [matched[t] for t in node.track_ids if t in matched]


def _clean_name(name: str, default: str) -> str:
    text = " ".join(name.replace("\x00", "").split())
    return text[:MAX_NAME] or default


def _unique_name(name: str, taken: set[str]) -> str:
    """`name`, or ``"<name> (n)"`` with the first n ≥ 2 no playlist has (case-insensitive;
    a taken ``"Set (2)"`` becomes ``"Set (3)"``, not ``"Set (2) (2)"``); the name is
    added to `taken`."""
    candidate, n = name, 2
    numbered = _NUMBERED.match(name)
    if numbered and name.lower() in taken:
        name, n = numbered.group(1), int(numbered.group(2)) + 1
    while candidate.lower() in taken:
        suffix = f" ({n})"
        candidate = name[:MAX_NAME - len(suffix)] + suffix
        n += 1
    taken.add(candidate.lower())
    return candidate
