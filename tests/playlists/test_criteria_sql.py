"""Smart-playlist criteria evaluated by SQL on real track rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from taperoom.db import transaction
from taperoom.library import models
from taperoom.playlists.criteria import parse_criteria
from taperoom.playlists.criteria_sql import track_ids_query

pytestmark = pytest.mark.backends("sqlite", "postgresql")

NOW = datetime(2025, 6, 1, 12, 0, 0)
DIR_A = "0b7d6a4c-8c2b-4e63-9f1f-2a2f3c4d5e6f"

#: title -> columns of the track rows every test starts from.
TRACKS: dict[str, dict[str, Any]] = {
    "deep": dict(artist="Moodymann", album="Silentintroduction", genre="House", bpm=122.0,
                 musical_key=9, mode=0, energy=5.0, danceability=0.8, valence=0.4,
                 arousal=0.5, rating=4, bit_rate=320, play_count=3, comment="from vinyl",
                 last_played=NOW - timedelta(days=2), date_added=datetime(2024, 1, 10),
                 date_analyzed=datetime(2024, 1, 11), relative_path="sets/deep.flac",
                 library_directory_id=DIR_A),
    "peak": dict(artist="Jeff Mills", album="Waveform", genre="Techno", bpm=134.0,
                 musical_key=4, mode=0, energy=8.5, danceability=0.6, rating=5,
                 bit_rate=1411, play_count=10, last_played=NOW - timedelta(days=40),
                 date_added=datetime(2024, 6, 1), stems_path="/stems/peak",
                 relative_path="peak.wav"),
    "halftime": dict(artist="Burial", genre="Dubstep", bpm=70.0, musical_key=0, mode=1,
                     energy=3.0, rating=2, bit_rate=256, play_count=0,
                     date_added=datetime(2025, 2, 1), relative_path="halftime.mp3"),
    "disco": dict(artist="Chic", title_override="Le Freak", genre="disco", bpm=120.0,
                  musical_key=7, mode=1, energy=7.0, rating=3, bit_rate=320, play_count=1,
                  last_played=NOW - timedelta(days=400), date_added=datetime(2023, 5, 5),
                  relative_path="classics/disco.mp3"),
    "untagged": dict(date_added=datetime(2025, 5, 1), play_count=0, rating=0,
                     relative_path="new/untagged.wav"),
    "gone": dict(genre="House", bpm=122.0, musical_key=9, mode=0, is_missing=True,
                 date_added=datetime(2025, 5, 2), relative_path="gone.mp3"),
}


@pytest.fixture
def db(lib_ctx: Any) -> Any:
    """The library's session factory, with the rows of :data:`TRACKS`."""
    with transaction(lib_ctx.db) as s:
        s.add(models.LibraryDirectory(id=DIR_A, path="/music/a"))
        s.flush()
        for name, values in TRACKS.items():
            values = dict(values)
            title = values.pop("title_override", name)
            s.add(models.Track(file_path=f"/music/{name}", title=title, **values))
    return lib_ctx.db


def titles(db: Any, raw: Any) -> list[str]:
    """Titles of the tracks `raw` criteria select, in the playlist's order."""
    query = track_ids_query(parse_criteria(raw), now=NOW)
    with db() as s:
        ids = list(s.scalars(query))
        by_id = dict(s.execute(models.Track.__table__.select()
                               .with_only_columns(models.Track.id, models.Track.title)).all())
    return [by_id[i] for i in ids]


def test_empty_criteria_select_every_present_track_newest_first(db: Any) -> None:
    """No criteria: every track not missing, by date added, newest first."""
    assert titles(db, {}) == ["untagged", "halftime", "peak", "deep", "Le Freak"]


@pytest.mark.parametrize(("raw", "expected"), [
    ({"bpm_min": 121, "bpm_max": 130}, {"deep"}),
    ({"bpm_max": 120}, {"halftime", "Le Freak"}),
    ({"key": 9}, {"deep"}),
    ({"key": "E", "mode": 0}, {"peak"}),
    ({"mode": "major"}, {"halftime", "Le Freak"}),
    ({"genres": ["house", "Disco"]}, {"deep", "Le Freak"}),
    ({"energy_min": 5, "energy_max": 7}, {"deep", "Le Freak"}),
    ({"danceability_min": 0.7}, {"deep"}),
    ({"valence_min": 0.1, "arousal_min": 0.5}, {"deep"}),
    ({"date_added_after": "2024-06-01", "date_added_before": "2025-02-01"},
     {"peak", "halftime"}),
    ({"date_added_before": 1_700_000_000}, {"Le Freak"}),
    ({"play_count_min": 1, "play_count_max": 3}, {"deep", "Le Freak"}),
    ({"last_played_before": "2025-05-01"}, {"peak", "Le Freak", "halftime", "untagged"}),
    ({"last_played_after": "2025-05-01"}, {"deep"}),
    ({"rating_min": 4}, {"deep", "peak"}),
    ({"bitrate_min": 1000}, {"peak"}),
    ({"library_directory_id": DIR_A}, {"deep"}),
    ({"relative_path_contains": "SETS/"}, {"deep"}),
    ({"relative_path_contains": "%"}, set()),
    ({"is_analyzed": True}, {"deep"}),
    ({"is_analyzed": False}, {"peak", "halftime", "Le Freak", "untagged"}),
    ({"has_stems": True}, {"peak"}),
])
def test_each_contract_criterion_selects_its_tracks(db: Any, raw: Any, expected: set[str]
                                                    ) -> None:
    """Every criterion of the contract selects what it names, never a missing track
    (LIKE wildcards in the text are literal)."""
    assert set(titles(db, raw)) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ({"title_contains": "FREAK"}, {"Le Freak"}),
    ({"artist_contains": "mills"}, {"peak"}),
    ({"album_contains": "wave"}, {"peak"}),
    ({"genre_contains": "step"}, {"halftime"}),
    ({"comment_contains": "vinyl"}, {"deep"}),
    # 8A (A minor): 8A, 9A (E minor), 7A, 8B (C major), 10A, 3A
    ({"compatible_with_key": "8A"}, {"deep", "peak", "halftime"}),
    # 9B (G major): 9B, 10B, 8B (C major), 9A (E minor), 11B, 4B
    ({"compatible_with_key": {"key": 7, "mode": 1}}, {"Le Freak", "halftime", "peak"}),
    # 124 ± 3 %: 120.3-127.7, 60.1-63.9, 240.6-255.4
    ({"bpm_near": {"bpm": 124, "percent": 3}}, {"deep"}),
    # 136 ± 3 %: 131.9-140.1 and 66-70 (half time)
    ({"bpm_near": {"bpm": 136, "percent": 3}}, {"peak", "halftime"}),
    ({"bpm_near": {"bpm": 136, "percent": 3, "half_double": False}}, {"peak"}),
    ({"bpm_near": {"bpm": 35, "percent": 1}}, {"halftime"}),  # double time
    ({"played_in_last_days": 30}, {"deep"}),
    ({"played_in_last_days": 60}, {"deep", "peak"}),
])
def test_new_criteria_select_their_tracks(db: Any, raw: Any, expected: set[str]) -> None:
    """Text contains (case-insensitive), harmonic compatibility, BPM near with half and
    double time, and played in the last N days."""
    assert set(titles(db, raw)) == expected


def test_any_all_groups_nest(db: Any) -> None:
    """``any`` of (House) or (all of major and BPM under 100) or (Techno rated 5)."""
    raw = {"any": [{"genres": ["House"]},
                   {"all": [{"mode": 1}, {"bpm_max": 100}]},
                   {"genres": ["Techno"], "rating_min": 5}]}
    assert set(titles(db, raw)) == {"deep", "halftime", "peak"}
    raw["bpm_min"] = 100  # ANDed with the group at the top level
    assert set(titles(db, raw)) == {"deep", "peak"}


def test_negation_keeps_tracks_with_unknown_values(db: Any) -> None:
    """``not`` House keeps the tracks without genre; ``not`` of a group negates it all."""
    assert set(titles(db, {"not": {"genres": ["House"]}})) == {
        "peak", "halftime", "Le Freak", "untagged"}
    assert set(titles(db, {"not": {"any": [{"bpm_min": 121}, {"mode": 1}]}})) == {"untagged"}
    assert set(titles(db, {"not": {"not": {"genres": ["House"]}}})) == {"deep"}


def test_sort_order_and_limit(db: Any) -> None:
    """sort_by/sort_order order the tracks (unknown values last either way); limit cuts."""
    assert titles(db, {"sort_by": "bpm", "sort_order": "asc"}) == [
        "halftime", "Le Freak", "deep", "peak", "untagged"]
    assert titles(db, {"sort_by": "bpm"}) == ["peak", "deep", "Le Freak", "halftime",
                                              "untagged"]
    assert titles(db, {"sort_by": "artist", "sort_order": "asc", "limit": 3}) == [
        "halftime", "Le Freak", "peak"]
    assert titles(db, {"sort_by": "rating", "limit": 2}) == ["peak", "deep"]
