"""Duplicate tracks: grouping by audio hash, listing, statistics and resolution.

Two tracks are duplicates when their ``file_hash`` (xxh3-128 over the demuxed
audio packets, :func:`taperoom.audio.hashing.audio_hash`) is equal: the same
encoding of the same recording, whatever its tags, cover art or file name. A
128 kbit/s MP3 and the FLAC it was made from are *not* duplicates.

:func:`rebuild_groups` is the set-based pass that the scanner (after a scan) and
``POST /api/duplicates/scan`` run. :func:`resolve` keeps one copy of a group:

* **which copy** - the ``canonicalTrackId`` of the request, else the first by
  the request's ``policy`` (:func:`taperoom.library.repository.duplicates.rank_order`):
  lossless over lossy, higher bit rate, more complete tags, inside the preferred
  library folder, oldest ``date_added``, smallest id;
* **keepMetadata** - the kept track takes, from the other copies (best-ranked
  first), every tag, user field and analysis field it lacks, the highest play
  count and rating, the latest ``last_played``, and each hot cue whose
  ``(cue_index, source)`` it lacks;
* **updatePlaylists** - playlist entries of the other copies are repointed to
  the kept track in place; where a playlist already holds the kept track, the
  duplicate entry is dropped and the positions after it close up;
* then the other copies' tracks are removed (``deleteFiles=true`` also deletes
  their files, through the file operations (:class:`FileDeleter`), logged
  in ``file_operations``). Without ``deleteFiles`` the files stay on disk, so the
  next scan of their folders adds them again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.errors import InvalidInput, NotFound, TaperoomError
from taperoom.events import Event, EventBus, send_playlist_updates
from taperoom.library import models
from taperoom.library.repository import duplicates as repo
from taperoom.library.repository import fileops as files_repo
from taperoom.library.schemas import group_row_dict, iso, track_dict

__all__ = ["POLICIES", "DuplicateService", "ResolveOptions", "rebuild_groups"]

POLICIES = repo.POLICIES

#: Tag fields the kept track takes from a copy when it lacks them.
TAG_FIELDS = ("title", "artist", "album", "album_artist", "genre", "year", "track_number",
              "comment", "key_tag")
#: User fields the kept track takes from a copy when it lacks them.
USER_FIELDS = ("color_tag", "energy_level")
#: Analysis fields the kept track takes from a copy when it lacks them.
ANALYSIS_FIELDS = ("bpm", "musical_key", "mode", "time_signature", "beats_data",
                   "downbeats_data", "first_beat_offset", "first_phrase_beat_no",
                   "audible_start_time", "audible_end_time", "stems_path", "danceability",
                   "energy", "loudness", "valence", "arousal", "acousticness",
                   "instrumentalness", "spectral_centroid", "spectral_rolloff",
                   "spectral_bandwidth", "zero_crossing_rate", "date_analyzed")


def rebuild_groups(session: Session) -> dict[str, Any]:
    """Regroup every track by audio hash in one set-based pass (the caller commits).

    Parameters
    ----------
    session : Session
        Open session, e.g. ``with transaction(db) as s: rebuild_groups(s)``.

    Returns
    -------
    dict
        ``groupsCreated``, ``tracksProcessed`` (tracks in a group),
        ``totalGroups``, ``groupsRemoved`` and ``newGroupIds``. Send
        ``duplicate:detected`` for the new groups with
        :meth:`DuplicateService.announce`, or call :meth:`DuplicateService.scan`,
        which does both.
    """
    return repo.rebuild_groups(session)


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------

def group_dict(group: models.DuplicateGroup,
               members: list[tuple[models.Track, str | None]]) -> dict[str, Any]:
    """A group as the API returns it.

    ``{id, file_hash, canonical_track_id, total_duplicates, created_at,
    updated_at, track_count, wasted_bytes, file_paths, tracks}``; ``tracks`` are
    track objects plus ``is_canonical`` (0/1) and ``library_path``, canonical
    first, then larger files, then higher bit rate. ``file_paths`` is the
    original's ``||``-joined list of paths; ``wasted_bytes`` sums the sizes of
    the copies other than the canonical one.
    """
    canonical = group.canonical_track_id
    ordered = sorted(members, key=lambda m: (m[0].id != canonical, -(m[0].file_size or 0),
                                             -(m[0].bit_rate or 0), m[0].id))
    tracks = []
    for track, lib_path in ordered:
        tracks.append({**track_dict(track), "is_canonical": int(track.id == canonical),
                       "library_path": lib_path})
    return {**group_row_dict(group), "track_count": len(tracks),
            "wasted_bytes": sum(t.file_size or 0 for t, _ in members if t.id != canonical),
            "file_paths": "||".join(t.file_path for t, _ in ordered), "tracks": tracks}


# ---------------------------------------------------------------------------
# resolving
# ---------------------------------------------------------------------------

@dataclass
class ResolveOptions:
    """What :func:`resolve` does (the request body of ``POST /:id/resolve``).

    Attributes
    ----------
    canonical_track_id : str, optional
        Track to keep; must be in the group. Chosen by `policy` when None.
    policy : str
        One of :data:`POLICIES` (default ``quality``).
    preferred_directory_id : str, optional
        Library folder whose copies the ranking prefers (required by ``location``).
    delete_files : bool
        Also delete the other copies' files (default False).
    keep_metadata : bool
        Merge the other copies' data into the kept track (default True).
    update_playlists : bool
        Repoint the other copies' playlist entries (default True); otherwise
        those entries are removed with their tracks.
    """

    canonical_track_id: str | None = None
    policy: str = "quality"
    preferred_directory_id: str | None = None
    delete_files: bool = False
    keep_metadata: bool = True
    update_playlists: bool = True


def _lacks(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def merge_metadata(session: Session, keep: models.Track, donors: list[models.Track]
                   ) -> dict[str, Any]:
    """Fill the kept track from the other copies (see the module docstring).

    Parameters
    ----------
    session : Session
        Session holding `keep` and `donors`; hot-cue copies are added to it.
    keep : Track
        The track that stays (modified in place).
    donors : list of Track
        The other copies, best first: the first that has a value gives it.

    Returns
    -------
    dict
        ``fields`` (field -> id of the copy it came from), ``playCount``,
        ``rating``, ``lastPlayed`` (ISO or None) and ``hotCuesCopied``
        (``[{cueIndex, source, fromTrackId}]``).
    """
    fields: dict[str, str] = {}
    for name in (*TAG_FIELDS, *USER_FIELDS, *ANALYSIS_FIELDS):
        if not _lacks(getattr(keep, name)):
            continue
        for donor in donors:
            value = getattr(donor, name)
            if not _lacks(value):
                setattr(keep, name, value)
                fields[name] = donor.id
                break
    everyone = [keep, *donors]
    keep.play_count = max(t.play_count or 0 for t in everyone)
    keep.rating = max(t.rating or 0 for t in everyone)
    played = [t.last_played for t in everyone if t.last_played is not None]
    keep.last_played = max(played) if played else None

    cues = repo.hot_cues_of(session, [keep.id, *(d.id for d in donors)])
    have = {(c.cue_index, c.source) for c in cues if c.track_id == keep.id}
    by_track: dict[str, list[models.HotCue]] = defaultdict(list)
    for cue in cues:
        by_track[cue.track_id].append(cue)
    copied = []
    for donor in donors:
        for cue in by_track.get(donor.id, []):
            key = (cue.cue_index, cue.source)
            if key in have:
                continue
            repo.add_hot_cue(session, keep.id, cue)
            have.add(key)
            copied.append({"cueIndex": cue.cue_index, "source": cue.source,
                           "fromTrackId": donor.id})
    session.flush()
    return {"fields": fields, "playCount": keep.play_count, "rating": keep.rating,
            "lastPlayed": iso(keep.last_played), "hotCuesCopied": copied}


class FileDeleter(Protocol):
    """What resolving uses of the file operations: delete a track with its file."""

    def delete(self, track_id: str, *, confirm: bool) -> dict[str, Any]: ...


class DuplicateService:
    """Duplicate groups: scan, list, statistics and resolution.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``duplicate:*``, ``track:updated`` and ``track:deleted`` events.
    fileops : FileDeleter
        Deletes the files of removed copies when a resolution asks for it.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus, fileops: FileDeleter
                 ) -> None:
        self.db = db
        self.bus = bus
        self.fileops = fileops

    def announce(self, group_ids: list[int]) -> None:
        """Send ``duplicate:detected`` ``{groupId, fileHash, trackIds, canonicalTrackId,
        totalDuplicates}`` for each group of `group_ids` (after their transaction committed)."""
        if not group_ids:
            return
        with self.db() as s:
            members = repo.group_members(s, group_ids)
            payloads = []
            for gid in group_ids:
                group = repo.get_group(s, gid)
                if group is None:
                    continue
                payloads.append({"groupId": gid, "fileHash": group.file_hash,
                                 "trackIds": sorted(t.id for t, _ in members.get(gid, [])),
                                 "canonicalTrackId": group.canonical_track_id,
                                 "totalDuplicates": group.total_duplicates})
        for payload in payloads:
            self.bus.send(Event.DUPLICATE_DETECTED, payload)


    def scan(self) -> dict[str, Any]:
        """Rebuild the groups of the whole library and announce the new ones.

        Returns
        -------
        dict
            ``groupsCreated``, ``tracksProcessed``, ``totalGroups``,
            ``groupsRemoved``, ``duplicateHashes`` (= ``totalGroups``, as the original
            reported) and ``newGroupIds``.
        """
        with transaction(self.db) as s:
            result = repo.rebuild_groups(s)
        self.announce(result["newGroupIds"])
        return {**result, "duplicateHashes": result["totalGroups"]}

    def list_groups(self, page: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """One page of groups (largest first) with their tracks, and the number of groups.

        Parameters
        ----------
        page : int
            1-based page.
        limit : int
            Groups per page.
        """
        with self.db() as s:
            groups, total = repo.list_groups(s, page, limit)
            members = repo.group_members(s, [g.id for g in groups])
            return [group_dict(g, members.get(g.id, [])) for g in groups], total


    def get_group(self, group_id: int) -> dict[str, Any]:
        """One group with its tracks.

        Raises
        ------
        NotFound
            No group has this id.
        """
        with self.db() as s:
            group = repo.get_group(s, group_id)
            if group is None:
                raise NotFound("Duplicate group not found")
            return group_dict(group, repo.group_members(s, [group_id]).get(group_id, []))


    def stats(self) -> dict[str, Any]:
        """Duplicate statistics of the library.

        Returns
        -------
        dict
            ``total_groups``; ``total_duplicate_tracks`` (tracks in a group, copies
            to keep included); ``redundant_tracks`` (copies beyond one per group);
            ``avg_duplicates_per_group``, ``max_duplicates_in_group``;
            ``wasted_bytes`` (sizes of the non-canonical copies, also as the
            original's ``wasted_space_bytes``); ``by_format``: file extension ->
            ``{groups, tracks, wasted_bytes}``.
        """
        with self.db() as s:
            rows = repo.stats_rows(s)
        groups: dict[int, list[tuple[str | None, str, str, int | None]]] = defaultdict(list)
        for gid, canonical, tid, path, size in rows:
            groups[gid].append((canonical, tid, path, size))
        by_format: dict[str, dict[str, int]] = {}
        wasted = 0
        for members in groups.values():
            canonical = members[0][0]
            if canonical not in {m[1] for m in members}:  # unset: count the largest as kept
                canonical = max(members, key=lambda m: (m[3] or 0, m[1]))[1]
            seen: set[str] = set()
            for _, tid, path, size in members:
                fmt = Path(path).suffix.lower().lstrip(".") or "unknown"
                entry = by_format.setdefault(fmt, {"groups": 0, "tracks": 0, "wasted_bytes": 0})
                entry["tracks"] += 1
                if fmt not in seen:
                    entry["groups"] += 1
                    seen.add(fmt)
                if tid != canonical:
                    entry["wasted_bytes"] += size or 0
                    wasted += size or 0
        sizes = [len(m) for m in groups.values()]
        return {"total_groups": len(groups), "total_duplicate_tracks": sum(sizes),
                "redundant_tracks": sum(sizes) - len(groups),
                "avg_duplicates_per_group": round(sum(sizes) / len(sizes), 2) if sizes else 0,
                "max_duplicates_in_group": max(sizes, default=0),
                "wasted_bytes": wasted, "wasted_space_bytes": wasted,
                "by_format": dict(sorted(by_format.items()))}

    def resolve(self, group_id: int, options: ResolveOptions) -> dict[str, Any]:
        """Keep one copy of a duplicate group and remove the others.

        Parameters
        ----------
        group_id : int
            Duplicate group id.
        options : ResolveOptions

        Returns
        -------
        dict
            ``groupId``, ``policy``, ``chosenBy`` (``"canonicalTrackId"`` or
            ``"policy"``), ``canonicalTrackId``, ``kept`` (track object afterwards),
            ``ranking`` (every copy with the facts the policy used, best first),
            ``merged`` (see :func:`merge_metadata`, None without keepMetadata),
            ``playlists`` (``{repointed, removed, playlistIds}``),
            ``removedTrackIds``, ``duplicatesRemoved``, ``deletedFiles`` (paths),
            ``filesDeleted``, ``failed`` (``[{trackId, filePath, error}]``: copies
            whose file could not be deleted; they stay in the group) and
            ``groupDissolved``.

        Raises
        ------
        NotFound
            Unknown group, or unknown ``preferred_directory_id``.
        InvalidInput
            ``canonical_track_id`` not in the group; unknown policy; ``location``
            without ``preferred_directory_id``.
        """
        if options.policy not in POLICIES:
            raise InvalidInput(f"policy must be one of {', '.join(POLICIES)}")
        if options.policy == "location" and not options.preferred_directory_id:
            raise InvalidInput("policy 'location' needs preferredDirectoryId")
        with transaction(self.db) as s:
            group = repo.get_group(s, group_id)
            if group is None:
                raise NotFound("Duplicate group not found")
            if options.preferred_directory_id and \
                    files_repo.get_directory(s, options.preferred_directory_id) is None:
                raise NotFound("Library directory not found")
            ranked = repo.ranked_members(s, group_id, options.policy,
                                         options.preferred_directory_id)
            if not ranked:  # a stale group: nothing to keep
                repo.dissolve_group(s, group_id)
                return {"groupId": group_id, "policy": options.policy, "chosenBy": "policy",
                        "canonicalTrackId": None, "kept": None, "ranking": [], "merged": None,
                        "playlists": {"repointed": 0, "removed": 0, "playlistIds": []},
                        "removedTrackIds": [], "duplicatesRemoved": 0, "deletedFiles": [],
                        "filesDeleted": 0, "failed": [], "groupDissolved": True}
            by_id = {t.id: t for t, _ in ranked}
            if options.canonical_track_id:
                if options.canonical_track_id not in by_id:
                    raise InvalidInput(f"Track {options.canonical_track_id} is not in duplicate "
                                       f"group {group_id}")
                keep = by_id[options.canonical_track_id]
            else:
                keep = ranked[0][0]
            others = [t for t, _ in ranked if t.id != keep.id]
            other_ids = [t.id for t in others]
            ranking = [{"trackId": t.id, "filePath": t.file_path, **facts,
                        "date_added": iso(t.date_added), "play_count": t.play_count}
                       for t, facts in ranked]
            merged = merge_metadata(s, keep, others) if options.keep_metadata else None
            playlists = (repo.repoint_playlists(s, keep.id, other_ids) if options.update_playlists
                         else {"repointed": 0, "removed": 0, "playlistIds": []})
            repo.set_canonical(s, group_id, keep.id)
            doomed = [(t.id, t.file_path) for t in others]
            removed_ids: list[str] = []
            touched: set[str] = set(cast(list[str], playlists["playlistIds"]))
            if not options.delete_files:
                touched.update(files_repo.remove_tracks(s, other_ids)["playlistIds"])
                removed_ids = other_ids
        deleted_files: list[str] = []
        failed: list[dict[str, Any]] = []
        if options.delete_files:
            for track_id, path in doomed:
                try:
                    result = self.fileops.delete(track_id, confirm=True)
                except TaperoomError as exc:
                    failed.append({"trackId": track_id, "filePath": path, "error": exc.message})
                    continue
                removed_ids.append(track_id)
                if result["fileDeleted"]:
                    deleted_files.append(path)
        else:
            for track_id, path in doomed:
                self.bus.send(Event.TRACK_DELETED, {"trackId": track_id, "filePath": path,
                                                   "fileDeleted": False})
        with transaction(self.db) as s:
            repo.refresh_groups(s, [group_id])
            kept_row = files_repo.get_track(s, keep.id)
            kept = track_dict(kept_row) if kept_row is not None else None
            dissolved = repo.get_group(s, group_id) is None
        if merged and (merged["fields"] or merged["hotCuesCopied"]):
            self.bus.send(Event.TRACK_UPDATED, {"trackId": keep.id,
                                               "changes": sorted(merged["fields"])})
        send_playlist_updates(self.bus, sorted(touched), "duplicate:resolved")
        self.bus.send(Event.DUPLICATE_RESOLVED, {
            "groupId": group_id, "canonicalTrackId": keep.id, "removedTrackIds": removed_ids,
            "filesDeleted": len(deleted_files), "failed": [f["trackId"] for f in failed]})
        return {"groupId": group_id, "policy": options.policy,
                "chosenBy": "canonicalTrackId" if options.canonical_track_id else "policy",
                "canonicalTrackId": keep.id, "kept": kept, "ranking": ranking, "merged": merged,
                "playlists": playlists, "removedTrackIds": removed_ids,
                "duplicatesRemoved": len(removed_ids), "deletedFiles": deleted_files,
                "filesDeleted": len(deleted_files), "failed": failed,
                "groupDissolved": dissolved}
