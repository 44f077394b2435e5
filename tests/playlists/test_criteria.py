"""Smart-playlist criteria: parsing into a tree, refusals, explanations, fields."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from taperoom.errors import InvalidInput
from taperoom.playlists.criteria import (
    MAX_LIMIT,
    All,
    AnyOf,
    Between,
    BpmNear,
    Contains,
    DateBetween,
    Equals,
    InLastDays,
    InList,
    IsSet,
    KeyCompatible,
    Not,
    explain,
    fields,
    parse_criteria,
)


def test_every_contract_key_becomes_a_node() -> None:
    """Each key of the contract's criteria JSON parses into its node."""
    c = parse_criteria({
        "bpm_min": 120, "bpm_max": 130, "key": 1, "mode": 0, "genres": ["House", "Techno"],
        "energy_min": 5, "energy_max": 8, "danceability_min": 0.5, "valence_min": 0.2,
        "arousal_min": 0.3, "date_added_after": 1_700_000_000,
        "date_added_before": "2024-01-01T00:00:00Z", "play_count_min": 1,
        "play_count_max": 9, "last_played_before": 1_700_000_000,
        "last_played_after": 1_600_000_000, "rating_min": 3, "bitrate_min": 320,
        "library_directory_id": "0B7D6A4C-8C2B-4E63-9F1F-2A2F3C4D5E6F",
        "relative_path_contains": "sets/", "is_analyzed": True, "has_stems": 0,
        "sort_by": "bpm", "sort_order": "ASC", "limit": 50})
    nodes = set(c.where.items)
    assert Between("bpm", 120, 130) in nodes
    assert Equals("musical_key", 1) in nodes and Equals("mode", 0) in nodes
    assert InList("genre", ("House", "Techno")) in nodes
    assert Between("energy", 5, 8) in nodes and Between("danceability", 0.5, None) in nodes
    assert Between("valence", 0.2, None) in nodes and Between("arousal", 0.3, None) in nodes
    assert Between("play_count", 1, 9) in nodes and Between("rating", 3, None) in nodes
    assert Between("bit_rate", 320, None) in nodes
    assert DateBetween("date_added", datetime(2023, 11, 14, 22, 13, 20),
                       datetime(2024, 1, 1)) in nodes
    assert DateBetween("last_played", datetime(2020, 9, 13, 12, 26, 40),
                       datetime(2023, 11, 14, 22, 13, 20), before_or_never=True) in nodes
    assert Equals("library_directory_id", "0b7d6a4c-8c2b-4e63-9f1f-2a2f3c4d5e6f") in nodes
    assert Contains("relative_path", "sets/") in nodes
    assert IsSet("date_analyzed", True) in nodes and IsSet("stems_path", False) in nodes
    assert (c.sort_by, c.sort_order, c.limit, c.sort_given) == ("bpm", "asc", 50, True)
    assert len(nodes) == 17


def test_nulls_and_empty_values_are_absent_and_defaults_hold() -> None:
    """Nulls, an empty genre list and empty text count as absent; the default order is
    date added, newest first, without limit."""
    c = parse_criteria({"bpm_min": None, "genres": [], "title_contains": "", "limit": None})
    assert c.where == All(())
    assert (c.sort_by, c.sort_order, c.limit, c.sort_given) == ("date_added", "desc", None,
                                                                False)


def test_limit_is_capped_at_1000() -> None:
    """A limit above 1000 is cut to 1000, as the contract says."""
    assert parse_criteria({"limit": 5000}).limit == MAX_LIMIT == 1000


def test_new_criteria_parse() -> None:
    """Text contains, key compatibility, BPM near, play history, groups and negation."""
    c = parse_criteria({
        "title_contains": "dub", "artist_contains": "Moodymann", "album_contains": "EP",
        "genre_contains": "house", "comment_contains": "vinyl",
        "compatible_with_key": "8A", "bpm_near": {"bpm": 126, "percent": 4},
        "played_in_last_days": 30,
        "any": [{"genres": ["Disco"]}, {"all": [{"bpm_min": 120}, {"key": "F#"}]}],
        "not": {"has_stems": True}})
    nodes = c.where.items
    assert Contains("title", "dub") in nodes and Contains("comment", "vinyl") in nodes
    assert Contains("genre", "house") in nodes
    assert KeyCompatible(9, 0) in nodes
    assert BpmNear(126, 4, True) in nodes
    assert InLastDays("last_played", 30) in nodes
    assert AnyOf((InList("genre", ("Disco",)),
                  All((Between("bpm", 120, None), Equals("musical_key", 6))))) in nodes
    assert Not(IsSet("stems_path", True)) in nodes


def test_compatible_key_accepts_an_object_and_bpm_near_defaults() -> None:
    """``{"key", "mode"}`` works as a key; ``bpm_near`` defaults to 6 % with half/double."""
    c = parse_criteria({"compatible_with_key": {"key": 0, "mode": 1},
                        "bpm_near": {"bpm": 70}})
    assert KeyCompatible(0, 1) in c.where.items
    assert BpmNear(70, 6, True) in c.where.items


def test_criteria_parse_from_stored_json_text() -> None:
    """The ``smart_criteria`` column's JSON text parses as its object does."""
    raw = {"bpm_min": 100, "any": [{"mode": "minor"}, {"rating_min": 4}]}
    assert parse_criteria(json.dumps(raw)) == parse_criteria(raw)


@pytest.mark.parametrize(("raw", "message"), [
    ("[1, 2]", "must be a JSON object"),
    ("{not json", "not valid JSON"),
    ({"bpm_min": "fast"}, "bpm_min must be a number"),
    ({"bpm_min": True}, "bpm_min must be a number"),
    ({"bpm_min": 140, "bpm_max": 120}, "bpm_min must not be greater than bpm_max"),
    ({"bpm_min": -1}, "bpm_min must be at least 0"),
    ({"key": 12}, "key must be at most 11"),
    ({"key": "H"}, "key names no musical key"),
    ({"mode": 2}, "mode must be 0 (minor)"),
    ({"genres": "House"}, "genres must be a list"),
    ({"genres": ["House", 3]}, "genres[1] must be text"),
    ({"rating_min": 6}, "rating_min must be at most 5"),
    ({"play_count_min": 1.5}, "play_count_min must be a whole number"),
    ({"date_added_after": "yesterday"}, "date_added_after must be Unix seconds"),
    ({"date_added_after": 2_000_000_000, "date_added_before": 1_000_000_000},
     "date_added_after must not be later than date_added_before"),
    ({"library_directory_id": "not-a-uuid"}, "library_directory_id must be a UUID"),
    ({"is_analyzed": "yes"}, "is_analyzed must be true or false"),
    ({"bmp_min": 120}, "bmp_min is not a known criterion"),
    ({"sort_by": "file_path"}, "sort_by must be one of"),
    ({"sort_order": "up"}, "sort_order must be asc or desc"),
    ({"limit": 0}, "limit must be at least 1"),
    ({"compatible_with_key": "X9"}, "compatible_with_key names no musical key"),
    ({"compatible_with_key": {"key": 1}}, "compatible_with_key must be a key name"),
    ({"bpm_near": {"percent": 5}}, "bpm_near.bpm is required"),
    ({"bpm_near": {"bpm": 120, "percent": 80}}, "bpm_near.percent must be at most 50"),
    ({"bpm_near": {"bpm": 120, "width": 3}}, "bpm_near has unknown keys: width"),
    ({"played_in_last_days": 0}, "played_in_last_days must be more than 0"),
    ({"any": []}, "any must be a non-empty list"),
    ({"any": [{"bpm_min": "x"}]}, "any[0].bpm_min must be a number"),
    ({"all": [{"limit": 3}]}, "all[0].limit is only allowed at the top level"),
    ({"not": {}}, "not must hold at least one criterion"),
    ({"not": [1]}, "not must be a JSON object"),
    ({"title_contains": "x" * 201}, "title_contains must be at most 200 characters"),
])
def test_invalid_criteria_are_refused_with_the_key_named(raw: object, message: str) -> None:
    """Malformed criteria raise InvalidInput (HTTP 400) whose message names the key."""
    with pytest.raises(InvalidInput) as caught:
        parse_criteria(raw)  # type: ignore[arg-type]
    assert caught.value.status == 400
    assert message in str(caught.value)
    assert str(caught.value).startswith("Invalid smart playlist criteria")


def test_nesting_too_deep_is_refused() -> None:
    """Groups nested beyond eight levels are refused (no unbounded recursion)."""
    raw: dict[str, object] = {"bpm_min": 1}
    for _ in range(10):
        raw = {"not": raw}
    with pytest.raises(InvalidInput, match="deeper than 8 levels"):
        parse_criteria(raw)


def test_explain_uses_the_contract_phrases() -> None:
    """The explanation describes the parsed criteria in the original's phrases."""
    text = explain(parse_criteria({
        "bpm_min": 120, "bpm_max": 135, "key": 1, "mode": 0,
        "genres": ["House", "Techno", "Trance"], "energy_min": 6, "rating_min": 3,
        "bitrate_min": 320, "is_analyzed": True, "has_stems": False,
        "sort_by": "bpm", "sort_order": "asc", "limit": 20}))
    assert text == ("BPM between 120 and 135, Key: C#/Db, Minor, Genres: House, Techno, "
                    "Trance, Energy at least 6, Rating at least 3/5, Bitrate at least 320kbps, "
                    "Analyzed tracks, No stems, Sorted by bpm (ascending), Limited to 20 tracks")


@pytest.mark.parametrize(("raw", "text"), [
    ({}, "All tracks (no filters applied)"),
    ({"bpm_min": 128}, "BPM at least 128"),
    ({"bpm_max": 100}, "BPM up to 100"),
    ({"bpm_min": 0}, "BPM at least 0"),
    ({"mode": 1}, "Major"),
    ({"play_count_min": 2, "play_count_max": 5}, "Played 2-5 times"),
    ({"date_added_after": "2025-03-01"}, "Added after 2025-03-01"),
    ({"last_played_before": "2025-03-01T12:30:00"},
     "Last played before 2025-03-01 12:30 (or never played)"),
    ({"played_in_last_days": 14}, "Played in the last 14 days"),
    ({"artist_contains": "Ron"}, 'Artist contains "Ron"'),
    ({"compatible_with_key": "8A"}, "Harmonically compatible with 8A (A minor)"),
    ({"bpm_near": {"bpm": 126, "percent": 3}},
     "BPM near 126 ± 3 % (half and double time too)"),
    ({"bpm_near": {"bpm": 126, "percent": 3, "half_double": False}}, "BPM near 126 ± 3 %"),
    ({"any": [{"genres": ["Disco"]}, {"bpm_min": 120, "mode": 0}]},
     "(Genres: Disco or (BPM at least 120 and Minor))"),
    ({"not": {"genres": ["Schlager"]}}, "Not (Genres: Schlager)"),
    ({"not": {"key": 0, "mode": 1}}, "Not (Key: C and Major)"),
])
def test_explain_describes_each_criterion(raw: dict[str, object], text: str) -> None:
    """Each criterion, group and negation has its phrase (a zero bound is not dropped)."""
    assert explain(parse_criteria(raw)) == text


def test_fields_lists_the_columns_a_tree_reads() -> None:
    """The fields of a tree are the columns of its leaves, the sort column and is_missing."""
    c = parse_criteria({"any": [{"genres": ["House"]}, {"compatible_with_key": "8A"}],
                        "not": {"bpm_near": {"bpm": 120}}, "played_in_last_days": 7,
                        "sort_by": "rating"})
    assert fields(c) == {"genre", "musical_key", "mode", "bpm", "last_played", "rating",
                         "is_missing"}
    assert fields(parse_criteria({})) == {"is_missing", "date_added"}
