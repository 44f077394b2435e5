"""Frames of the engine link: inbound parsing and outbound building (contract section 4).

Every outbound frame is compact JSON as Node's ``JSON.stringify`` writes it: no
spaces, keys in the order the contract shows, absent optional keys left out
(``requestId`` when the request had none, ``loopEnd`` of a plain cue), and
numbers as JavaScript prints them (``128``, not ``128.0``; NaN and infinities as
``null``). :func:`dumps` is that serialisation; the builders give the keys.

Inbound frames are sorted by :func:`classify` in the order the original's
``handleMessage`` looked at them: not JSON, a greeting (``welcome``, the
registration reply), another reply (``{success: false, ...}``: logged, never
answered, which the original meant to do), an ``event``, a ``command``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from taperoom.enginelink.stems import STEM_NAMES

#: Error strings of the contract (``{"success":false,"trackId","error"}`` replies).
TRACK_NOT_FOUND = "Track not found"
DIRECTORY_NOT_FOUND = "Library directory not found"
FILE_MISSING = "Track file missing"
ANALYSIS_IN_PROGRESS = "Analysis in progress"
ANALYSIS_NOT_STARTED = "Failed to start analysis"
INTERNAL_ERROR = "Internal server error"
MISSING_TRACK_ID = "Missing trackId parameter"
PARSE_FAILED = "Failed to parse message"
MISSING_COMMAND = "Invalid message format: missing command field"
#: Beside the contract: the deck analysis a getTrackInfo started did not finish.
ANALYSIS_FAILED = "Analysis failed"

Kind = Literal["invalid", "greeting", "reply", "event", "command", "no_command"]


@dataclass(frozen=True)
class Inbound:
    """One inbound frame, sorted.

    Attributes
    ----------
    kind : {"invalid", "greeting", "reply", "event", "command", "no_command"}
        ``invalid``: not JSON; ``greeting``: ``{type: "welcome"}`` or a
        ``success: true`` reply without command (the registration answer);
        ``reply``: a ``success: false`` answer of the engine; ``event`` and
        ``command``: by their fields; ``no_command``: JSON with neither.
    name : str
        The event's or command's name ("" otherwise).
    body : dict
        The decoded object ({} when it was not a JSON object).
    """

    kind: Kind
    name: str
    body: dict[str, Any]

    def text(self, key: str) -> str:
        """Field `key` as the original's string interpolation wrote it ("" when absent)."""
        value = self.body.get(key)
        return "" if value is None else js_string(value)


def classify(frame: str | bytes) -> Inbound:
    """Sort one inbound frame (see :class:`Inbound`)."""
    try:
        body = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        return Inbound("invalid", "", {})
    if not isinstance(body, dict):
        return Inbound("no_command", "", {})
    if body.get("type") == "welcome":
        return Inbound("greeting", "welcome", body)
    if "success" in body and "command" not in body and "event" not in body:
        return Inbound("greeting" if body["success"] is True else "reply", "", body)
    if body.get("event") is not None:
        return Inbound("event", js_string(body["event"]), body)
    if body.get("command") is None or body.get("command") == "":
        return Inbound("no_command", "", body)
    return Inbound("command", js_string(body["command"]), body)


def js_string(value: Any) -> str:
    """``String(value)`` of JavaScript for JSON values (``null`` -> ``"null"``, ``true``
    -> ``"true"``, ``128.0`` -> ``"128"``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return dumps(value)
    return dumps(value)


def _js(value: Any) -> Any:
    """`value` with numbers as JavaScript holds them: integral floats as ints, NaN
    and infinities as None (``JSON.stringify`` writes ``null``)."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, Mapping):
        return {str(k): _js(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_js(v) for v in value]
    return value


def dumps(message: Any) -> str:
    """`message` as ``JSON.stringify`` writes it (compact, UTF-8 kept, JS numbers)."""
    return json.dumps(_js(message), separators=(",", ":"), ensure_ascii=False)


def identify() -> dict[str, Any]:
    """``{"type":"appServerIdentify"}``, sent on every open."""
    return {"type": "appServerIdentify"}


def error_reply(track_id: Any, error: str) -> dict[str, Any]:
    """``{"success":false,"trackId":<id>,"error":<error>}`` (`track_id` None -> "")."""
    return {"success": False, "trackId": "" if track_id is None else track_id, "error": error}


def _with_request(message: dict[str, Any], request_id: Any) -> dict[str, Any]:
    """`message` with ``requestId`` first after ``success`` (left out when None, as
    ``JSON.stringify`` leaves out ``undefined``)."""
    if request_id is None:
        return message
    head, *rest = message.items()
    return dict([head, ("requestId", request_id), *rest])


def hot_cue(index: int, position: float, is_loop: bool, loop_end: float | None
            ) -> dict[str, Any]:
    """``{"index","position","isLoop"[,"loopEnd"]}`` (``loopEnd`` only when set)."""
    cue: dict[str, Any] = {"index": index, "position": position, "isLoop": bool(is_loop)}
    if loop_end is not None:
        cue["loopEnd"] = loop_end
    return cue


def track_info_reply(request_id: Any, track_id: str, *, file_path: str,
                     bpm: float | None, key: Any, mode: Any,
                     first_beat_offset: float | None, first_phrase_beat_no: float | None,
                     hot_cues: list[dict[str, Any]]) -> dict[str, Any]:
    """The success reply of ``getTrackInfo``.

    ``{"success":true,"requestId","trackId","filePath","bpm","key","mode",
    "firstBeatOffset","firstPhraseBeatNo","hotCues"}``: ``bpm``,
    ``firstBeatOffset`` and ``firstPhraseBeatNo`` are 0 when unset (``x||0``),
    ``key`` and ``mode`` are strings (``String(x)``).
    """
    return _with_request({
        "success": True, "trackId": track_id, "filePath": file_path, "bpm": bpm or 0,
        "key": js_string(key), "mode": js_string(mode),
        "firstBeatOffset": first_beat_offset or 0,
        "firstPhraseBeatNo": first_phrase_beat_no or 0, "hotCues": hot_cues}, request_id)


def stems_ready(request_id: Any, track_id: str, stems: Mapping[str, Any]) -> dict[str, Any]:
    """``{"success":true,"type":"stemsReady","requestId","trackId","stems":{bass,drums,
    other,vocals}}`` (paths as strings, the contract's stem order first)."""
    ordered = {name: str(stems[name]) for name in STEM_NAMES if name in stems}
    ordered |= {name: str(path) for name, path in stems.items() if name not in ordered}
    message: dict[str, Any] = {"success": True, "type": "stemsReady"}
    if request_id is not None:
        message["requestId"] = request_id
    message |= {"trackId": track_id, "stems": ordered}
    return message


def update_first_beat_offset(track_id: str, offset: float) -> dict[str, Any]:
    """``{"command":"updateFirstBeatOffset","trackId","firstBeatOffset"}``."""
    return {"command": "updateFirstBeatOffset", "trackId": track_id, "firstBeatOffset": offset}


def set_cue_reply(request_id: Any, track_id: str, cue: dict[str, Any]) -> dict[str, Any]:
    """Success reply of ``deck.setCue`` (beside the contract):
    ``{"success":true,"requestId"?,"trackId","command":"deck.setCue","hotCue":{...}}``."""
    return _with_request({"success": True, "trackId": track_id, "command": "deck.setCue",
                          "hotCue": cue}, request_id)
