"""Exports of playlists and of the whole collection for other DJ software.

* ``m3u8``: one playlist as extended M3U in UTF-8 (:func:`taperoom.playlists.m3u.write_m3u`),
  absolute paths, ``#PLAYLIST:<name>``;
* ``rekordbox``: one playlist, or the collection and every playlist in its crate
  folder tree, as rekordbox XML (:func:`taperoom.playlists.rekordbox.write_rekordbox`).

What a track becomes in rekordbox XML: ``AverageBpm`` the library's BPM; ``Tonality``
the key as rekordbox writes it (``"Am"``, ``"F#"``; the key tag's text, read by
:func:`taperoom.library.keys.parse_key`, when there is no analysed key); the
beatgrid as ``TEMPO`` anchors from the stored beats, downbeats, first beat and BPM
(:func:`taperoom.playlists.grids.tempos_from_beats`); hot cues as ``POSITION_MARK``
with ``Num`` their index and their colour (one cue per index, preferring the
sources as ``?source=preferred`` does: user > rekordbox > serato > mixedInKey >
virtual dj; a loop as ``Type`` 4 with ``End``); rating 0-5 as 0/51/.../255;
``color_tag`` as ``Colour`` (``#RRGGBB``, or one of rekordbox's colour names);
``PlayCount``; bit rate in kbit/s. Missing tracks are left out, as the contract's
M3U export leaves them out, and so is the thinking playlist (a scratch list).

The collection is read in a handful of queries (tracks, hot cues, entries,
playlists, folders), not one per track, and the file is built in memory: a 10,000
track library with grids is a few megabytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from taperoom.analysis.keynames import key_name
from taperoom.library.keys import parse_key
from taperoom.library.repository import exchange as repo
from taperoom.library.schemas import HOT_CUE_SOURCES
from taperoom.playlists.exchange import (
    CueKind,
    CuePoint,
    ExchangeTrack,
    FolderNode,
    PlaylistNode,
    is_colour,
)
from taperoom.playlists.grids import tempos_from_beats
from taperoom.playlists.guards import existing
from taperoom.playlists.m3u import write_m3u
from taperoom.playlists.rekordbox import write_rekordbox

#: Content type of an M3U8 export (RFC 8216 section 4).
M3U8_MEDIA_TYPE = "application/vnd.apple.mpegurl"
#: Content type of a rekordbox XML export.
XML_MEDIA_TYPE = "application/xml"
#: rekordbox's track colours by name (rekordbox 6 writes these ``Colour`` values).
COLOUR_NAMES = {"pink": "#ff007f", "red": "#ff0000", "orange": "#ffa500",
                "yellow": "#ffff00", "green": "#00ff00", "aqua": "#25fde9",
                "blue": "#0000ff", "purple": "#660099"}


class PlaylistExporter:
    """Playlists and the collection as M3U8 or rekordbox XML.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    """

    def __init__(self, db: sessionmaker[Session]) -> None:
        self.db = db

    def playlist_m3u8(self, playlist_id: str) -> tuple[str, bytes]:
        """``(name, file)``: the playlist as extended M3U in UTF-8, absolute paths.

        Raises
        ------
        PlaylistNotFound
            No such playlist (404).
        """
        name, ids, rows, _ = self._playlist(playlist_id, with_cues=False)
        items = [exchange_track(rows[t], ()) for t in ids if t in rows]
        return name, write_m3u(items, title=name)

    def playlist_rekordbox(self, playlist_id: str) -> tuple[str, bytes]:
        """``(name, file)``: rekordbox XML of the playlist and its tracks (one playlist
        under ``ROOT``).

        Raises
        ------
        PlaylistNotFound
            No such playlist (404).
        """
        name, ids, rows, cues = self._playlist(playlist_id, with_cues=True)
        order = list(dict.fromkeys(t for t in ids if t in rows))
        tracks = [exchange_track(rows[t], cues.get(t, ())) for t in order]
        node = PlaylistNode(name, [t for t in ids if t in rows])
        return name, write_rekordbox(tracks, [node])

    def _playlist(self, playlist_id: str, *, with_cues: bool
                  ) -> tuple[str, list[str], dict[str, Mapping[Any, Any]],
                             dict[str, list[Mapping[Any, Any]]]]:
        """``(name, track ids, export row by track id, hot cues by track id)`` of a
        playlist: its entries in order (repeats kept), the rows of those not missing,
        their hot cues when `with_cues` (else ``{}``).

        Raises
        ------
        PlaylistNotFound
            No such playlist (404).
        """
        with self.db() as s:
            playlist = existing(s, playlist_id)
            ids = repo.playlist_track_ids(s, playlist.id)
            rows: dict[str, Mapping[Any, Any]] = {
                r["id"]: r for r in repo.export_tracks(s, ids)}
            cues = _by_track(repo.hot_cues(s, list(rows))) if with_cues else {}
            return playlist.name, ids, rows, cues

    def collection_rekordbox(self) -> bytes:
        """rekordbox XML of every track that is not missing and of every playlist (the
        thinking playlist excepted), filed in the crate folder tree."""
        with self.db() as s:
            rows = repo.export_tracks(s)
            cues = _by_track(repo.hot_cues(s))
            playlists = repo.exported_playlists(s)
            entries = repo.all_entries(s)
            folders = repo.folders(s)
        tracks = [exchange_track(r, cues.get(r["id"], ())) for r in rows]
        held: dict[str, list[str]] = {}
        for playlist_id, track_id in entries:
            held.setdefault(playlist_id, []).append(track_id)
        return write_rekordbox(tracks, playlist_tree(folders, playlists, held))


def playlist_tree(folders: Sequence[Mapping[Any, Any]], playlists: Sequence[Mapping[Any, Any]],
                  entries: Mapping[str, list[str]]) -> FolderNode:
    """The folder tree of an export: folders (by name) then playlists (by name) in
    each folder, the playlists of no folder (or of an unknown one) at the top.

    Parameters
    ----------
    folders : sequence of mapping
        ``id, name, parent_id`` per folder.
    playlists : sequence of mapping
        ``id, name, folder_id`` per playlist.
    entries : mapping
        Track ids of each playlist, in order.
    """
    nodes = {f["id"]: FolderNode(f["name"]) for f in folders}
    root = FolderNode("ROOT")
    for f in folders:
        parent = nodes.get(f["parent_id"]) if f["parent_id"] is not None else None
        (parent or root).children.append(nodes[f["id"]])
    for p in playlists:
        folder = nodes.get(p["folder_id"]) if p["folder_id"] is not None else None
        (folder or root).children.append(PlaylistNode(p["name"], entries.get(p["id"], [])))
    return root


def _by_track(rows: Sequence[Mapping[Any, Any]]) -> dict[str, list[Mapping[Any, Any]]]:
    """One hot cue per index of each track, the preferred source's."""
    rank = {source: i for i, source in enumerate(HOT_CUE_SOURCES)}
    best: dict[tuple[str, int], Mapping[Any, Any]] = {}
    for row in rows:
        key = (row["track_id"], row["cue_index"])
        held = best.get(key)
        if held is None or rank.get(row["source"], 99) < rank.get(held["source"], 99):
            best[key] = row
    out: dict[str, list[Mapping[Any, Any]]] = {}
    for (track_id, _), row in sorted(best.items()):
        out.setdefault(track_id, []).append(row)
    return out


def tonality(musical_key: int | None, mode: int | None, key_tag: str | None) -> str | None:
    """The key as rekordbox's ``Tonality`` (``"Am"``, ``"F#"``, ``"Eb"``): from the
    analysed key, else from the key tag's text; None when neither is known."""
    if musical_key is None or mode is None or not 0 <= musical_key <= 11:
        parsed = parse_key(key_tag)
        if parsed is None:
            return None
        musical_key, mode = parsed
    return key_name(musical_key) + ("m" if mode == 0 else "")


def colour_of(color_tag: str | None) -> str | None:
    """``#rrggbb`` of a ``color_tag`` (hex, or a rekordbox colour name); None otherwise."""
    if not color_tag:
        return None
    text = color_tag.strip()
    if is_colour(text):
        return text.lower()
    return COLOUR_NAMES.get(text.lower())


def _times(blob: bytes | None) -> np.ndarray:
    """Seconds of a stored beat list (a JSON list, or ``{beats: [...]}``); [] if unreadable."""
    none = np.zeros(0)
    if not blob:
        return none
    try:
        values = json.loads(blob)
    except (ValueError, UnicodeDecodeError):
        return none
    if isinstance(values, dict):
        values = next((v for v in values.values() if isinstance(v, list)), [])
    if not isinstance(values, list):
        return none
    try:
        times = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):  # not all numbers: keep those that are
        times = np.asarray([v for v in values if isinstance(v, int | float)
                            and not isinstance(v, bool)], dtype=np.float64)
    if times.ndim != 1:
        return none
    return times[np.isfinite(times)]


def exchange_track(row: Mapping[Any, Any], cues: Sequence[Mapping[Any, Any]]
                   ) -> ExchangeTrack:
    """An :class:`ExchangeTrack` of a track row (:data:`repository.exchange.EXPORT_COLUMNS`)
    and its hot cues (one per index)."""
    tempos = tempos_from_beats(_times(row["beats_data"]),
                               downbeats=_times(row["downbeats_data"]).tolist(),
                               bpm=row["bpm"], first_beat=row["first_beat_offset"],
                               bar=row["time_signature"])
    points = []
    for cue in cues:
        loop = bool(cue["is_loop"]) and cue["loop_end"] is not None
        colour = cue["color"].lower() if cue["color"] and is_colour(cue["color"]) else None
        points.append(CuePoint(start=float(cue["position"]),
                               end=float(cue["loop_end"]) if loop else None,
                               number=int(cue["cue_index"]), name=cue["name"] or "",
                               kind=CueKind.LOOP if loop else CueKind.CUE, colour=colour))
    added = row["date_added"]
    return ExchangeTrack(
        path=row["file_path"], track_id=row["id"], title=row["title"] or "",
        artist=row["artist"] or "", album=row["album"] or "", genre=row["genre"] or "",
        comment=row["comment"] or "", size=row["file_size"], duration=row["duration_seconds"],
        year=row["year"] if row["year"] and row["year"] > 0 else None, bpm=row["bpm"],
        date_added=added.date() if added is not None else None,
        bit_rate=round(row["bit_rate"] / 1000) if row["bit_rate"] else None,
        sample_rate=row["sample_rate"], play_count=row["play_count"] or 0,
        rating=row["rating"] or 0,
        key=tonality(row["musical_key"], row["mode"], row["key_tag"]),
        colour=colour_of(row["color_tag"]), tempos=tempos, cues=points)
