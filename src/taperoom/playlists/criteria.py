"""Smart-playlist criteria: the JSON a smart playlist stores, parsed into a typed tree.

The JSON is the contract's (contracts/library.md, "Smart playlist criteria JSON"):
an object whose keys are all optional and ANDed, a null or empty value counting
as absent:

``bpm_min``, ``bpm_max``, ``key`` (pitch class 0-11, or a key name such as
``"F#"``), ``mode`` (1 major, 0 minor, or ``"major"``/``"minor"``), ``genres``
(list: the genre is one of them, case-insensitively), ``energy_min``,
``energy_max``, ``danceability_min``, ``valence_min``, ``arousal_min``,
``date_added_after``, ``date_added_before``, ``play_count_min``,
``play_count_max``, ``last_played_before`` (tracks never played match too),
``last_played_after``, ``rating_min``, ``bitrate_min`` (``bit_rate``),
``library_directory_id`` (a UUID), ``relative_path_contains``, ``is_analyzed``,
``has_stems``; and at the top level only ``sort_by`` (one of :data:`SORT_FIELDS`,
default ``date_added``), ``sort_order`` (``asc``/``desc``, default ``desc``) and
``limit`` (a positive integer, capped at :data:`MAX_LIMIT`). Dates are Unix
seconds (as the original sent them) or ISO 8601 text, read as UTC.

Beyond the contract, what DJ software offers (Navidrome's ``all``/``any`` rules,
rekordbox's and Lexicon's intelligent playlists):

* ``title_contains``, ``artist_contains``, ``album_contains``, ``genre_contains``,
  ``comment_contains``: case-insensitive substring;
* ``compatible_with_key``: a key name (``"8A"``, ``"F#m"``, ``"1d"``) or
  ``{"key": 0-11, "mode": 0|1}``: the track's key mixes harmonically after it
  (:func:`taperoom.playlists.harmony.compatible_keys`);
* ``bpm_near``: ``{"bpm": X, "percent": N (default 6), "half_double": true}``: the
  tempo lies within N % of X, or of X/2 or 2X;
* ``played_in_last_days``: last played within the last N days;
* ``all`` / ``any``: a non-empty list of criteria objects (without sorting or
  limit) of which every one / at least one must hold; they nest;
* ``not``: a criteria object that must not hold (a criterion on an unknown
  value, e.g. a genre of a track without one, does not hold, so its negation does).

Unknown keys and malformed values raise :class:`~taperoom.errors.InvalidInput`
(HTTP 400) naming the key. The tree is evaluated by SQL only
(:mod:`taperoom.playlists.criteria_sql`); :func:`explain` describes it in words
and :func:`fields` names the track columns it reads.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Union

from taperoom.analysis.keynames import camelot, mode_name
from taperoom.errors import InvalidInput
from taperoom.playlists.harmony import parse_key_text

__all__ = [
    "MAX_LIMIT",
    "SORT_FIELDS",
    "All",
    "AnyOf",
    "Between",
    "BpmNear",
    "Contains",
    "Criteria",
    "DateBetween",
    "Equals",
    "InLastDays",
    "InList",
    "IsSet",
    "KeyCompatible",
    "Node",
    "Not",
    "explain",
    "fields",
    "parse_criteria",
]

#: Most tracks a smart playlist's ``limit`` may ask for (larger limits are capped).
MAX_LIMIT = 1000
#: Values of ``sort_by`` (the contract's list; each is a track column).
SORT_FIELDS = ("bpm", "musical_key", "mode", "energy", "danceability", "valence", "arousal",
               "date_added", "date_analyzed", "play_count", "last_played", "rating",
               "artist", "title", "album", "genre", "year", "duration_seconds", "bit_rate",
               "sample_rate")
#: Default ``percent`` of ``bpm_near``.
DEFAULT_BPM_PERCENT = 6.0
#: Deepest nesting of ``all``/``any``/``not`` groups, most criteria in one tree,
#: longest text and longest genre list.
MAX_DEPTH = 8
MAX_NODES = 200
MAX_TEXT = 200
MAX_GENRES = 100
#: Names of the keys for the tonic in explanations (as the original wrote them).
KEY_LABELS = ("C", "C#/Db", "D", "D#/Eb", "E", "F", "F#/Gb", "G", "G#/Ab", "A", "A#/Bb", "B")

# --------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Between:
    """A numeric column within an inclusive range (either end may be open).

    Attributes
    ----------
    field : str
        Track column (``bpm``, ``energy``, ``play_count``, ``bit_rate`` ...).
    low, high : float or None
        Inclusive bounds; None is open.
    """

    field: str
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Equals:
    """A column equal to a value (``musical_key``, ``mode``, ``library_directory_id``)."""

    field: str
    value: int | str


@dataclass(frozen=True)
class InList:
    """A text column equal, ignoring case, to one of `values` (``genre``)."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Contains:
    """A text column containing `text`, ignoring case (``title``, ``relative_path`` ...)."""

    field: str
    text: str


@dataclass(frozen=True)
class DateBetween:
    """A time column within an inclusive range.

    Attributes
    ----------
    field : str
        ``date_added`` or ``last_played``.
    after, before : datetime or None
        Naive UTC bounds; None is open.
    before_or_never : bool
        A NULL time matches too (``last_played_before``: never played counts as
        played before any date).
    """

    field: str
    after: datetime | None
    before: datetime | None
    before_or_never: bool = False


@dataclass(frozen=True)
class InLastDays:
    """A time column within the last `days` days (``played_in_last_days``)."""

    field: str
    days: float


@dataclass(frozen=True)
class IsSet:
    """A column is known (``is_set``) or NULL: ``date_analyzed``, ``stems_path``."""

    field: str
    is_set: bool


@dataclass(frozen=True)
class KeyCompatible:
    """The track's key mixes harmonically after this key (Camelot wheel).

    Attributes
    ----------
    musical_key : int
        Pitch class 0-11 of the reference key's tonic.
    mode : int
        1 major, 0 minor.
    """

    musical_key: int
    mode: int


@dataclass(frozen=True)
class BpmNear:
    """The tempo within `percent` % of `bpm` (or of its half and double).

    Attributes
    ----------
    bpm : float
        Reference tempo, beats per minute.
    percent : float
        Largest difference, per cent.
    half_double : bool
        Half and double time match too.
    """

    bpm: float
    percent: float
    half_double: bool = True


@dataclass(frozen=True)
class All:
    """Every item holds (an empty group holds for every track)."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one item holds."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The item does not hold (unknown values count as not holding)."""

    item: Node


#: A node of a criteria tree.
Node = Union[Between, Equals, InList, Contains, DateBetween, InLastDays, IsSet,  # noqa: UP007
             KeyCompatible, BpmNear, All, AnyOf, Not]


@dataclass(frozen=True)
class Criteria:
    """A parsed smart playlist: which tracks, in which order, how many.

    Attributes
    ----------
    where : All
        The criteria (missing tracks are always left out, by the SQL).
    sort_by : str
        Track column of :data:`SORT_FIELDS`.
    sort_order : {"asc", "desc"}
    limit : int or None
        At most this many tracks (1-:data:`MAX_LIMIT`); None is no limit.
    sort_given : bool
        Whether the JSON named ``sort_by`` (the explanation then says so).
    """

    where: All
    sort_by: str = "date_added"
    sort_order: Literal["asc", "desc"] = "desc"
    limit: int | None = None
    sort_given: bool = False


# --------------------------------------------------------------------------- parsing


def _fail(key: str, message: str) -> InvalidInput:
    return InvalidInput(f"Invalid smart playlist criteria: {key} {message}")


def _number(key: str, value: Any, *, low: float | None = None, high: float | None = None,
            integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(key, "must be a number")
    if not math.isfinite(value):
        raise _fail(key, "must be a finite number")
    if integer and value != int(value):
        raise _fail(key, "must be a whole number")
    if low is not None and value < low:
        raise _fail(key, f"must be at least {_num(low)}")
    if high is not None and value > high:
        raise _fail(key, f"must be at most {_num(high)}")
    return int(value) if integer else float(value)


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _fail(key, "must be true or false")


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(key, "must be text")
    if len(value) > MAX_TEXT:
        raise _fail(key, f"must be at most {MAX_TEXT} characters")
    if "\x00" in value:
        raise _fail(key, "must not contain a NUL character")
    return value


def _date(key: str, value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
        except (ValueError, OverflowError, OSError):
            raise _fail(key, "is not a valid time") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _fail(key, "must be Unix seconds or an ISO 8601 date") from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed
    raise _fail(key, "must be Unix seconds or an ISO 8601 date")


def _key(key: str, value: Any) -> int:
    if isinstance(value, str):
        try:
            return parse_key_text(value).musical_key
        except ValueError:
            raise _fail(key, f"names no musical key: {value!r}") from None
    return int(_number(key, value, low=0, high=11, integer=True))


def _mode(key: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().lower() in ("major", "minor"):
        return 1 if value.strip().lower() == "major" else 0
    if isinstance(value, bool):
        raise _fail(key, "must be 0 (minor), 1 (major), \"minor\" or \"major\"")
    if value in (0, 1):
        return int(value)
    raise _fail(key, "must be 0 (minor), 1 (major), \"minor\" or \"major\"")


def _key_compatible(key: str, value: Any) -> KeyCompatible:
    if isinstance(value, str):
        try:
            parsed = parse_key_text(value)
        except ValueError:
            raise _fail(key, f"names no musical key: {value!r}") from None
        return KeyCompatible(parsed.musical_key, parsed.mode)
    if isinstance(value, Mapping):
        unknown = set(value) - {"key", "mode"}
        if unknown or "key" not in value or "mode" not in value:
            raise _fail(key, "must be a key name or {\"key\": 0-11, \"mode\": 0|1}")
        return KeyCompatible(_key(f"{key}.key", value["key"]),
                             _mode(f"{key}.mode", value["mode"]))
    raise _fail(key, "must be a key name or {\"key\": 0-11, \"mode\": 0|1}")


def _bpm_near(key: str, value: Any) -> BpmNear:
    if not isinstance(value, Mapping):
        raise _fail(key, "must be {\"bpm\": X, \"percent\": N, \"half_double\": true}")
    unknown = set(value) - {"bpm", "percent", "half_double"}
    if unknown:
        raise _fail(key, f"has unknown keys: {', '.join(sorted(map(str, unknown)))}")
    if value.get("bpm") is None:
        raise _fail(f"{key}.bpm", "is required")
    bpm = _number(f"{key}.bpm", value["bpm"], low=1, high=1000)
    percent = (DEFAULT_BPM_PERCENT if value.get("percent") is None
               else _number(f"{key}.percent", value["percent"], low=0, high=50))
    half_double = (True if value.get("half_double") is None
                   else _bool(f"{key}.half_double", value["half_double"]))
    return BpmNear(bpm, percent, half_double)


#: ``<name>_min``/``<name>_max`` keys (those of :data:`_RANGE_KEYS`):
#: ``name -> (column, lowest value, highest value, integer)``.
_RANGES: dict[str, tuple[str, float | None, float | None, bool]] = {
    "bpm": ("bpm", 0, None, False),
    "energy": ("energy", None, None, False),
    "danceability": ("danceability", None, None, False),
    "valence": ("valence", None, None, False),
    "arousal": ("arousal", None, None, False),
    "play_count": ("play_count", 0, None, True),
    "rating": ("rating", 0, 5, True),
    "bitrate": ("bit_rate", 0, None, True),
}
#: The range keys the contract has.
_RANGE_KEYS = ("bpm_min", "bpm_max", "energy_min", "energy_max", "danceability_min",
               "valence_min", "arousal_min", "play_count_min", "play_count_max",
               "rating_min", "bitrate_min")
_CONTAINS = {"title_contains": "title", "artist_contains": "artist",
             "album_contains": "album", "genre_contains": "genre",
             "comment_contains": "comment", "relative_path_contains": "relative_path"}
_DATES = {"date_added": ("date_added_after", "date_added_before"),
          "last_played": ("last_played_after", "last_played_before")}
_TOP_ONLY = ("sort_by", "sort_order", "limit")
_KNOWN = frozenset({*_RANGE_KEYS, *_CONTAINS, *(k for pair in _DATES.values() for k in pair),
                    "key", "mode", "genres", "library_directory_id", "is_analyzed",
                    "has_stems", "compatible_with_key", "bpm_near", "played_in_last_days",
                    "all", "any", "not", *_TOP_ONLY})


class _Parser:
    """Parses one criteria object and its groups, counting the nodes."""

    def __init__(self) -> None:
        self.nodes = 0

    def _add(self, out: list[Node], node: Node) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InvalidInput(
                f"Invalid smart playlist criteria: more than {MAX_NODES} criteria")
        out.append(node)

    def group(self, raw: Any, path: str, depth: int) -> All:
        if not isinstance(raw, Mapping):
            raise _fail(path or "criteria", "must be a JSON object")
        if depth > MAX_DEPTH:
            raise _fail(path, f"nests groups deeper than {MAX_DEPTH} levels")
        prefix = f"{path}." if path else ""
        unknown = sorted(str(k) for k in raw if k not in _KNOWN)
        if unknown:
            raise _fail(prefix + unknown[0], "is not a known criterion")
        if depth > 0:
            for key in _TOP_ONLY:
                if raw.get(key) is not None:
                    raise _fail(prefix + key, "is only allowed at the top level")
        given = {k: v for k, v in raw.items() if v is not None}
        out: list[Node] = []
        # in the order of the original's explanation
        self._ranges(("bpm",), given, prefix, out)
        if "key" in given:
            self._add(out, Equals("musical_key", _key(prefix + "key", given["key"])))
        if "mode" in given:
            self._add(out, Equals("mode", _mode(prefix + "mode", given["mode"])))
        if "genres" in given:
            self._genres(given["genres"], prefix + "genres", out)
        self._ranges(("energy", "danceability", "valence", "arousal"), given, prefix, out)
        self._dates("date_added", given, prefix, out)
        self._ranges(("play_count",), given, prefix, out)
        self._dates("last_played", given, prefix, out)
        self._ranges(("rating", "bitrate"), given, prefix, out)
        if "library_directory_id" in given:
            value = _text(prefix + "library_directory_id", given["library_directory_id"])
            try:
                directory = str(uuid.UUID(value.strip()))
            except ValueError:
                raise _fail(prefix + "library_directory_id", "must be a UUID") from None
            self._add(out, Equals("library_directory_id", directory))
        for key, column in _CONTAINS.items():
            if key in given:
                text = _text(prefix + key, given[key])
                if text:
                    self._add(out, Contains(column, text))
        if "is_analyzed" in given:
            self._add(out, IsSet("date_analyzed", _bool(prefix + "is_analyzed",
                                                       given["is_analyzed"])))
        if "has_stems" in given:
            self._add(out, IsSet("stems_path", _bool(prefix + "has_stems", given["has_stems"])))
        if "compatible_with_key" in given:
            self._add(out, _key_compatible(prefix + "compatible_with_key",
                                           given["compatible_with_key"]))
        if "bpm_near" in given:
            self._add(out, _bpm_near(prefix + "bpm_near", given["bpm_near"]))
        if "played_in_last_days" in given:
            days = _number(prefix + "played_in_last_days", given["played_in_last_days"],
                           low=0, high=36_500)
            if days <= 0:
                raise _fail(prefix + "played_in_last_days", "must be more than 0")
            self._add(out, InLastDays("last_played", days))
        for key, kind in (("all", All), ("any", AnyOf)):
            if key in given:
                items = given[key]
                if not isinstance(items, list) or not items:
                    raise _fail(prefix + key, "must be a non-empty list of criteria objects")
                parsed = tuple(_unwrap(self.group(item, f"{prefix}{key}[{i}]", depth + 1))
                               for i, item in enumerate(items))
                self._add(out, kind(parsed))
        if "not" in given:
            inner = self.group(given["not"], prefix + "not", depth + 1)
            if not inner.items:
                raise _fail(prefix + "not", "must hold at least one criterion")
            self._add(out, Not(_unwrap(inner)))
        return All(tuple(out))

    def _ranges(self, names: tuple[str, ...], given: dict[str, Any], prefix: str,
                out: list[Node]) -> None:
        for name in names:
            column, lowest, highest, integer = _RANGES[name]
            low_key, high_key = f"{name}_min", f"{name}_max"
            low, high = (
                _number(prefix + k, given[k], low=lowest, high=highest, integer=integer)
                if k in given else None for k in (low_key, high_key))
            if low is not None and high is not None and low > high:
                raise _fail(prefix + low_key, f"must not be greater than {high_key}")
            if low is not None or high is not None:
                self._add(out, Between(column, low, high))

    def _genres(self, value: Any, key: str, out: list[Node]) -> None:
        if not isinstance(value, list):
            raise _fail(key, "must be a list of genre names")
        if len(value) > MAX_GENRES:
            raise _fail(key, f"must list at most {MAX_GENRES} genres")
        names = tuple(_text(f"{key}[{i}]", v) for i, v in enumerate(value))
        if names:
            self._add(out, InList("genre", names))

    def _dates(self, column: str, given: dict[str, Any], prefix: str, out: list[Node]
               ) -> None:
        after_key, before_key = _DATES[column]
        after = _date(prefix + after_key, given[after_key]) if after_key in given else None
        before = _date(prefix + before_key, given[before_key]) if before_key in given else None
        if after is not None and before is not None and after > before:
            raise _fail(prefix + after_key, f"must not be later than {before_key}")
        if after is not None or before is not None:
            self._add(out, DateBetween(column, after, before,
                                       before_or_never=(column == "last_played"
                                                        and before is not None)))


def _unwrap(group: All) -> Node:
    """A group of one criterion is that criterion."""
    return group.items[0] if len(group.items) == 1 else group


def parse_criteria(raw: str | bytes | Mapping[str, Any] | None) -> Criteria:
    """Parse smart-playlist criteria (the JSON text stored in ``smart_criteria``, or
    the object of a request body).

    Parameters
    ----------
    raw : str, bytes or mapping
        The criteria object (see the module docstring), or its JSON text.

    Returns
    -------
    Criteria

    Raises
    ------
    InvalidInput
        Not a JSON object, an unknown key, a malformed value, a minimum above its
        maximum, groups nested deeper than :data:`MAX_DEPTH` or more than
        :data:`MAX_NODES` criteria; the message names the key
        (``"Invalid smart playlist criteria: bpm_min must be a number"``).
    """
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InvalidInput("Invalid smart playlist criteria: not valid JSON") from None
    if not isinstance(raw, Mapping):
        raise InvalidInput("Invalid smart playlist criteria: must be a JSON object")
    where = _Parser().group(raw, "", 0)
    sort_by, sort_given = "date_added", False
    if raw.get("sort_by") is not None:
        if raw["sort_by"] not in SORT_FIELDS:
            raise _fail("sort_by", f"must be one of {', '.join(SORT_FIELDS)}")
        sort_by, sort_given = str(raw["sort_by"]), True
    order: Literal["asc", "desc"] = "desc"
    if raw.get("sort_order") is not None:
        given = raw["sort_order"]
        if not isinstance(given, str) or given.strip().lower() not in ("asc", "desc"):
            raise _fail("sort_order", "must be asc or desc")
        order = "asc" if given.strip().lower() == "asc" else "desc"
    limit = None
    if raw.get("limit") is not None:
        value = raw["limit"]
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())  # the original read it with parseInt
        limit = min(int(_number("limit", value, low=1, integer=True)), MAX_LIMIT)
    return Criteria(where=where, sort_by=sort_by, sort_order=order, limit=limit,
                    sort_given=sort_given)


# --------------------------------------------------------------------------- explain


def _num(value: float) -> str:
    """``120`` for 120.0, ``0.75`` for 0.75."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _day(value: datetime) -> str:
    """``2025-01-31``, or ``2025-01-31 12:30`` when not midnight (UTC)."""
    if (value.hour, value.minute, value.second) == (0, 0, 0):
        return value.strftime("%Y-%m-%d")
    return value.strftime("%Y-%m-%d %H:%M")


#: Phrases of ranges: column -> (both ends, low only, high only).
_RANGE_PHRASES = {
    "bpm": ("BPM between {a} and {b}", "BPM at least {a}", "BPM up to {b}"),
    "energy": ("Energy {a}-{b}", "Energy at least {a}", "Energy up to {b}"),
    "danceability": ("Danceability {a}-{b}", "Danceability at least {a}",
                     "Danceability up to {b}"),
    "valence": ("Positivity {a}-{b}", "Positivity at least {a}", "Positivity up to {b}"),
    "arousal": ("Arousal {a}-{b}", "Arousal at least {a}", "Arousal up to {b}"),
    "play_count": ("Played {a}-{b} times", "Played at least {a} times",
                   "Played at most {b} times"),
    "rating": ("Rating {a}-{b}/5", "Rating at least {a}/5", "Rating up to {b}/5"),
    "bit_rate": ("Bitrate {a}-{b}kbps", "Bitrate at least {a}kbps", "Bitrate up to {b}kbps"),
}
_CONTAINS_NAMES = {"title": "Title", "artist": "Artist", "album": "Album", "genre": "Genre",
                   "comment": "Comment", "relative_path": "Path"}


def _explain_between(node: Between) -> str:
    both, low_only, high_only = _RANGE_PHRASES[node.field]
    a = _num(node.low) if node.low is not None else ""
    b = _num(node.high) if node.high is not None else ""
    if node.low is not None and node.high is not None:
        return both.format(a=a, b=b)
    return low_only.format(a=a) if node.low is not None else high_only.format(b=b)


def _explain_dates(node: DateBetween) -> str:
    what = "Added" if node.field == "date_added" else "Last played"
    if node.after is not None and node.before is not None:
        text = f"{what} between {_day(node.after)} and {_day(node.before)}"
    elif node.after is not None:
        text = f"{what} after {_day(node.after)}"
    else:
        assert node.before is not None
        text = f"{what} before {_day(node.before)}"
    if node.before_or_never and node.after is None:
        text += " (or never played)"
    return text


def _explain_equals(node: Equals) -> str:
    if node.field == "musical_key":
        return f"Key: {KEY_LABELS[int(node.value)]}"
    if node.field == "mode":
        return "Major" if node.value == 1 else "Minor"
    return f"In library folder {node.value}"


def _explain_key(node: KeyCompatible) -> str:
    return (f"Harmonically compatible with {camelot(node.musical_key, node.mode)} "
            f"({KEY_LABELS[node.musical_key]} {mode_name(node.mode)})")


def _explain_bpm(node: BpmNear) -> str:
    text = f"BPM near {_num(node.bpm)} ± {_num(node.percent)} %"
    return text + (" (half and double time too)" if node.half_double else "")


def _explain_node(node: Node, nested: bool) -> str:
    if isinstance(node, All):
        inner = " and ".join(_explain_node(n, True) for n in node.items)
        return f"({inner})" if nested and len(node.items) > 1 else inner
    if isinstance(node, AnyOf):
        return "(" + " or ".join(_explain_node(n, True) for n in node.items) + ")"
    if isinstance(node, Not):
        return f"Not ({_explain_node(node.item, False)})"
    simple: dict[type, Callable[[Any], str]] = {
        Between: _explain_between,
        Equals: _explain_equals,
        InList: lambda n: f"Genres: {', '.join(n.values)}",
        Contains: lambda n: f"{_CONTAINS_NAMES[n.field]} contains \"{n.text}\"",
        DateBetween: _explain_dates,
        InLastDays: lambda n: f"Played in the last {_num(n.days)} days",
        IsSet: lambda n: ({"date_analyzed": ("Analyzed tracks", "Unanalyzed tracks"),
                           "stems_path": ("Has stems", "No stems")}[n.field][0 if n.is_set
                                                                           else 1]),
        KeyCompatible: _explain_key,
        BpmNear: _explain_bpm,
    }
    return simple[type(node)](node)


def explain(criteria: Criteria) -> str:
    """Describe parsed criteria in words, in the contract's phrases.

    Parameters
    ----------
    criteria : Criteria
        From :func:`parse_criteria`.

    Returns
    -------
    str
        The top-level criteria joined by ``", "`` ("BPM between 120 and 130,
        Key: C#/Db, Minor, Genres: House, Techno, Energy at least 6"), groups
        in parentheses joined by ``and``/``or``, ``Not (...)``, then ``Sorted by
        <field> (ascending|descending)`` when a sort was given and ``Limited to N
        tracks``; ``"All tracks (no filters applied)"`` when there is nothing.
    """
    parts = [_explain_node(node, False) for node in criteria.where.items]
    if criteria.sort_given:
        order = "ascending" if criteria.sort_order == "asc" else "descending"
        parts.append(f"Sorted by {criteria.sort_by} ({order})")
    if criteria.limit is not None:
        parts.append(f"Limited to {criteria.limit} tracks")
    return ", ".join(parts) if parts else "All tracks (no filters applied)"


# --------------------------------------------------------------------------- fields


def _node_fields(node: Node) -> set[str]:
    if isinstance(node, All | AnyOf):
        return set().union(*(_node_fields(n) for n in node.items))
    if isinstance(node, Not):
        return _node_fields(node.item)
    if isinstance(node, KeyCompatible):
        return {"musical_key", "mode"}
    if isinstance(node, BpmNear):
        return {"bpm"}
    return {node.field}


def fields(criteria: Criteria) -> frozenset[str]:
    """Track columns whose values decide which tracks match and in what order.

    A change of a track that touches none of them (nor adds, deletes or moves
    the track) leaves the smart playlist as it is. ``is_missing`` is always one
    (missing tracks are left out), and so is the sort column (it decides which
    tracks a ``limit`` keeps).

    Parameters
    ----------
    criteria : Criteria

    Returns
    -------
    frozenset of str
        Names of columns of :class:`taperoom.library.models.Track`.
    """
    return frozenset({"is_missing", criteria.sort_by, *_node_fields(criteria.where)})
