"""The track object's analysis fields beyond the contract: key strength, Camelot and Open
Key names, beat consistency, tuning, loudness and the fields the user set.

They go *beside* the contract's fields: the contract's keys keep their names, types,
nulls and order at the head of every track object, and the new keys follow. Real
server, real SQLite/PostgreSQL database, real scans of corpus files.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.analysis.keynames import camelot, open_key
from taperoom.db import transaction
from taperoom.events import Event
from taperoom.library import models
from tests.library.test_scanner import Recorder, add_directory

pytestmark = pytest.mark.backends()

#: The track object's keys as the contract's clients get them, in wire order
#: (``shared/contracts/library.md`` §2 Tracks, plus the scanner's keys).
WIRE_KEYS = (
    "id", "file_path", "file_size", "file_modified", "file_hash", "quick_hash",
    "library_directory_id", "relative_path", "is_missing", "missing_since",
    "duplicate_group_id", "scan_error", "title", "artist", "album", "album_artist", "genre",
    "year", "track_number", "comment", "key_tag", "has_artwork", "codec",
    "duration_seconds", "sample_rate", "bit_rate", "channels", "bpm", "musical_key", "mode",
    "time_signature", "first_beat_offset", "first_phrase_beat_no", "audible_start_time",
    "audible_end_time", "stems_path", "danceability", "energy", "loudness", "valence",
    "arousal", "acousticness", "instrumentalness", "spectral_centroid", "spectral_rolloff",
    "spectral_bandwidth", "zero_crossing_rate", "date_added", "date_analyzed",
    "analysis_version", "last_played", "play_count", "rating", "color_tag", "energy_level",
)
#: The analysis keys beside them, in wire order.
ANALYSIS_KEYS = (
    "key_strength", "camelot", "open_key", "beat_consistency", "tuning_frequency",
    "true_peak", "replaygain_gain", "replaygain_peak", "loudness_range",
    "dynamic_complexity", "user_fields",
)
FLOATS = {"key_strength": 0.82, "beat_consistency": 0.97, "tuning_frequency": 443.5,
          "true_peak": -0.4, "replaygain_gain": -7.25, "replaygain_peak": 0.954993,
          "loudness_range": 6.1, "dynamic_complexity": 2.875}


def _add(ctx: Any, rows: list[dict[str, Any]]) -> list[str]:
    with transaction(ctx.db) as s:
        objs = [models.Track(**row) for row in rows]
        s.add_all(objs)
    return [o.id for o in objs]


def _listed(client: httpx.Client) -> dict[str, dict[str, Any]]:
    body = client.get("/api/tracks", params={"limit": 1000}).json()
    return {t["id"]: t for t in body["data"]}


def test_analysis_fields_follow_the_contract_fields(lib_server: Any, lib_ctx: Any,
                                                    tmp_path: Path) -> None:
    """Lists, search and single tracks carry the contract's keys first, unchanged, then
    the analysis keys with their values: Camelot and Open Key names of every key and
    mode (null without a key or a mode), the fields the user set (null when none)."""
    rows: list[dict[str, Any]] = []
    for key in range(12):
        for mode in (0, 1):
            rows.append({"file_path": str(tmp_path / f"k{key}m{mode}.flac"),
                         "title": f"wheel {key} {mode}", "musical_key": key, "mode": mode})
    rows.append({"file_path": str(tmp_path / "full.flac"), "title": "wheel full",
                 "bpm": 126.0, "musical_key": 9, "mode": 0, "user_fields": ["bpm"],
                 **FLOATS})
    rows.append({"file_path": str(tmp_path / "nokey.flac"), "title": "wheel none"})
    rows.append({"file_path": str(tmp_path / "nomode.flac"), "title": "wheel half",
                 "musical_key": 4})
    ids = _add(lib_ctx, rows)
    with httpx.Client(base_url=lib_server.url, timeout=30) as client:
        listed = _listed(client)
        found = {t["id"]: t for t in client.get(
            "/api/tracks/search", params={"q": "wheel", "limit": 1000}).json()["data"]}
        for i, row in enumerate(rows[:24]):
            track = listed[ids[i]]
            assert tuple(track) == WIRE_KEYS + ANALYSIS_KEYS
            key, mode = row["musical_key"], row["mode"]
            assert (track["camelot"], track["open_key"]) == (camelot(key, mode),
                                                             open_key(key, mode))
            assert found[ids[i]] == track
        assert listed[ids[0]]["camelot"] == "5A" and listed[ids[1]]["camelot"] == "8B"
        full = client.get(f"/api/tracks/{ids[24]}").json()["data"]
        assert full.pop("hotCues") == []
        assert full == listed[ids[24]]
        assert tuple(full) == WIRE_KEYS + ANALYSIS_KEYS
        assert {k: full[k] for k in FLOATS} == FLOATS
        assert (full["camelot"], full["open_key"], full["user_fields"]) == ("8A", "1m", ["bpm"])
        assert (full["bpm"], full["musical_key"], full["mode"]) == (126.0, 9, 0)
        for tid in ids[25:]:
            single = client.get(f"/api/tracks/{tid}").json()["data"]
            single.pop("hotCues")
            assert single == listed[tid]
            assert {k: single[k] for k in ANALYSIS_KEYS} == dict.fromkeys(ANALYSIS_KEYS)


def test_a_users_edit_shows_in_user_fields(lib_server: Any, lib_ctx: Any,
                                           tmp_path: Path) -> None:
    """``PUT /api/tracks/:id`` answers the track with the analysis field the user set in
    ``user_fields`` and the key's names; handing it back to the analysis (null) leaves
    ``user_fields`` null again."""
    (tid,) = _add(lib_ctx, [{"file_path": str(tmp_path / "a.mp3"), "title": "A"}])
    with httpx.Client(base_url=lib_server.url, timeout=30) as client:
        r = client.put(f"/api/tracks/{tid}", json={"musical_key": 6, "mode": 0})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert tuple(data) == WIRE_KEYS + ANALYSIS_KEYS
        assert (data["user_fields"], data["camelot"], data["open_key"]) == (
            ["mode", "musical_key"], "11A", "4m")
        r = client.put(f"/api/tracks/{tid}", json={"musical_key": None, "mode": None})
        data = r.json()["data"]
        assert (data["user_fields"], data["camelot"], data["open_key"]) == (None, None, None)
        assert _listed(client)[tid] == data


def test_scanned_tracks_carry_them_in_their_event(lib_ctx: Any, corpus: Path,
                                                 tmp_path: Path) -> None:
    """``track:added`` of a scan carries the whole track object, analysis keys included
    (the key names from the file's key tag)."""
    root = tmp_path / "music"
    root.mkdir()
    name = "05 - John Garner - Partita No. 1 in B minor: Double (BWV1002) (ünïcödé ☆ 日本語).opus"
    shutil.copyfile(corpus / "scanner/real_music_tagged" / name, root / "partita.opus")
    did = add_directory(lib_ctx, root)
    events = Recorder(lib_ctx)
    lib_ctx.scans.scan_sync(did, "hybrid")
    [added] = events.named(Event.TRACK_ADDED)
    track = added["track"]
    assert tuple(track) == WIRE_KEYS + ANALYSIS_KEYS
    assert (track["musical_key"], track["mode"]) == (11, 0)
    assert (track["camelot"], track["open_key"], track["key_strength"]) == ("10A", "3m", None)
